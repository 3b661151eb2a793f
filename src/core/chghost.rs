//! A change of a client's user or host (chghost). Nothing changes a host
//! after connecting yet (a cloak is set at connect; there are no vhosts);
//! this is the one way to do it when something does.

use super::caps::Caps;
use super::{Client, ClientId, State};
use crate::proto::{Folded, Line};

impl State {
    /// Sets `id`'s user and host. chghost clients among its peers (itself
    /// and extended-monitor watchers included) get `CHGHOST`; other peers
    /// see it quit and rejoin with its channel status, as the spec suggests.
    pub fn change_host(&mut self, id: ClientId, user: &str, host: &str) {
        let Some(old_source) = self.set_user_host(id, user, host) else {
            return;
        };
        self.send_chghost(id, &old_source, user, host);
        self.send_quit_and_rejoin(id, &old_source);
    }

    /// Changes the client's user and host; the source it had before.
    fn set_user_host(&mut self, id: ClientId, user: &str, host: &str) -> Option<String> {
        let client = self.clients.get_mut(&id)?;
        let old_source = client.source.clone();
        client.user = user.to_owned();
        client.host = host.to_owned();
        client.update_source();
        Some(old_source)
    }

    /// `CHGHOST` to the peers that negotiated chghost, and to the client
    /// itself if it did.
    fn send_chghost(&mut self, id: ClientId, old_source: &str, user: &str, host: &str) {
        let own = self
            .clients
            .get(&id)
            .is_some_and(|client| client.caps.contains(Caps::CHGHOST));
        let line = Line::new(Some(old_source), "CHGHOST")
            .arg(user)
            .arg(host)
            .finish();
        let mut audience = self.audience(id, Caps::CHGHOST);
        if own {
            audience.insert(id);
        }
        let mut event = self.event_from(id, line);
        self.send_all(audience, &mut event);
    }

    /// The peers without chghost see the old source quit, then the new one
    /// join each of its rooms again, in name order.
    fn send_quit_and_rejoin(&mut self, id: ClientId, old_source: &str) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let mut rooms: Vec<Folded> = client.channels.iter().cloned().collect();
        rooms.sort_unstable();
        let peers: Vec<ClientId> = self
            .peers(id)
            .into_iter()
            .filter(|peer| self.clients.get(peer).is_some_and(lacks_chghost(id)))
            .collect();
        let quit = Line::new(Some(old_source), "QUIT")
            .trailing("Changing hostname")
            .finish();
        let mut quit = self.event_from(id, quit);
        self.send_all(peers, &mut quit);
        for folded in rooms {
            self.rejoin(id, &folded);
        }
    }

    /// One room's JOIN (extended-join for those who asked) and the client's
    /// status in it as a server MODE, for its members without chghost.
    fn rejoin(&mut self, id: ClientId, folded: &Folded) {
        let (Some(client), Some(room)) = (self.clients.get(&id), self.channels.get(folded)) else {
            return;
        };
        let (source, nick) = (client.source.clone(), client.nick.clone());
        let name = room.name.clone();
        let membership = room.members.get(&id).copied().unwrap_or_default();
        let join = Line::new(Some(&source), "JOIN").arg(&name).finish();
        let extended = Line::new(Some(&source), "JOIN")
            .arg(&name)
            .arg("*")
            .trailing(&client.realname)
            .finish();
        let mut join = self
            .event_from(id, join)
            .with_alternative(Caps::EXTENDED_JOIN, extended);
        self.send_to_members(folded, &mut join, |member, _| lacks_chghost(id)(member));
        let statuses: String = membership.held().map(|mode| mode.letter).collect();
        if statuses.is_empty() {
            return;
        }
        let mut mode = Line::new(Some(self.server_name()), "MODE")
            .arg(&name)
            .arg(&format!("+{statuses}"));
        for _ in statuses.chars() {
            mode = mode.arg(&nick);
        }
        let mut mode = self.broadcast(mode.finish());
        self.send_to_members(folded, &mut mode, |member, _| lacks_chghost(id)(member));
    }
}

/// Peers of `id` that see a change of host as a quit and rejoin.
fn lacks_chghost(id: ClientId) -> impl Fn(&Client) -> bool {
    move |member| member.id != id && !member.caps.contains(Caps::CHGHOST)
}

#[cfg(test)]
mod tests {
    use crate::core::caps::Caps;
    use crate::core::testing::Harness;

    #[test]
    fn chghost_clients_get_chghost_and_others_a_rejoin() {
        let mut h = Harness::new();
        for nick in ["alice", "bob", "carol"] {
            h.register(nick);
        }
        h.room(
            "#room",
            &[("alice", true), ("bob", false), ("carol", false)],
        );
        let bob = h.id("bob");
        h.state
            .clients
            .get_mut(&bob)
            .unwrap()
            .caps
            .insert(Caps::CHGHOST);
        let alice = h.id("alice");
        h.state.change_host(alice, "~a", "cloak.example");
        assert_eq!(
            h.take("bob"),
            [":alice!~alice@127.0.0.1 CHGHOST ~a cloak.example"]
        );
        assert_eq!(
            h.take("carol"),
            [
                ":alice!~alice@127.0.0.1 QUIT :Changing hostname",
                ":alice!~a@cloak.example JOIN #room",
                ":irc.test MODE #room +o alice",
            ]
        );
        assert!(h.take("alice").is_empty());
        assert_eq!(h.state.clients[&alice].source, "alice!~a@cloak.example");
    }

    #[test]
    fn the_rejoin_restores_every_status_in_each_room_in_name_order() {
        let mut h = Harness::new();
        for nick in ["alice", "bob"] {
            h.register(nick);
        }
        h.room("#b", &[("alice", true), ("bob", false)]);
        h.room("#a", &[("alice", false), ("bob", false)]);
        let alice = h.id("alice");
        for room in ["#a", "#b"] {
            let folded = h.state.fold(room);
            if let Some(member) = h
                .state
                .channels
                .get_mut(&folded)
                .and_then(|room| room.members.get_mut(&alice))
            {
                member.voice = true;
            }
        }
        h.state.change_host(alice, "~a", "cloak.example");
        assert_eq!(
            h.take("bob"),
            [
                ":alice!~alice@127.0.0.1 QUIT :Changing hostname",
                ":alice!~a@cloak.example JOIN #a",
                ":irc.test MODE #a +v alice",
                ":alice!~a@cloak.example JOIN #b",
                ":irc.test MODE #b +ov alice alice",
            ]
        );
    }
}
