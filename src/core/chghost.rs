//! A change of a client's user or host (chghost). Nothing changes hosts yet
//! (no cloaks, no vhosts); this is the one way to do it when something does.

use super::caps::Caps;
use super::{ClientId, State};
use crate::proto::Line;

impl State {
    /// Sets `id`'s user and host. chghost clients among its peers (itself
    /// and extended-monitor watchers included) get `CHGHOST`; other peers
    /// see it quit and rejoin with its channel status, as the spec suggests.
    pub fn change_host(&mut self, id: ClientId, user: &str, host: &str) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let old_source = client.source.clone();
        client.user = user.to_owned();
        client.host = host.to_owned();
        client.update_source();
        let (source, nick, realname) = (
            client.source.clone(),
            client.nick.clone(),
            client.realname.clone(),
        );
        let mut rooms: Vec<_> = client.channels.iter().cloned().collect();
        rooms.sort_unstable();
        let own = client.caps.contains(Caps::CHGHOST);
        let line = Line::new(Some(&old_source), "CHGHOST")
            .arg(user)
            .arg(host)
            .finish();
        let mut audience = self.audience(id, Caps::CHGHOST);
        if own {
            audience.insert(id);
        }
        let mut event = self.event_from(id, line);
        self.send_all(audience, &mut event);

        let without_cap =
            |member: &super::Client| member.id != id && !member.caps.contains(Caps::CHGHOST);
        let peers: Vec<ClientId> = self
            .peers(id)
            .into_iter()
            .filter(|peer| self.clients.get(peer).is_some_and(without_cap))
            .collect();
        let quit = Line::new(Some(&old_source), "QUIT")
            .trailing("Changing hostname")
            .finish();
        let mut quit = self.event_from(id, quit);
        self.send_all(peers, &mut quit);
        for folded in rooms {
            let Some(room) = self.channels.get(&folded) else {
                continue;
            };
            let (name, membership) = (
                room.name.clone(),
                room.members.get(&id).copied().unwrap_or_default(),
            );
            let join = Line::new(Some(&source), "JOIN").arg(&name).finish();
            let extended = Line::new(Some(&source), "JOIN")
                .arg(&name)
                .arg("*")
                .trailing(&realname)
                .finish();
            let mut join = self
                .event_from(id, join)
                .with_alternative(Caps::EXTENDED_JOIN, extended);
            self.send_to_members(&folded, &mut join, |member, _| without_cap(member));
            let letters = match (membership.op, membership.voice) {
                (true, true) => "+ov",
                (true, false) => "+o",
                (false, true) => "+v",
                (false, false) => continue,
            };
            let mut mode = Line::new(Some(self.server_name()), "MODE")
                .arg(&name)
                .arg(letters);
            for _ in 1..letters.len() {
                mode = mode.arg(&nick);
            }
            let mut mode = self.broadcast(mode.finish());
            self.send_to_members(&folded, &mut mode, |member, _| without_cap(member));
        }
    }
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
}
