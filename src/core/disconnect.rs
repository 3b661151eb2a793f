//! Clients leaving: one at a time (QUIT, a closed connection, a kill or a
//! full send queue), or all at once when the server stops.

use tracing::{debug, info};

use super::{ClientId, State};
use crate::net::SERVER_SHUTTING_DOWN;
use crate::proto::Line;

impl State {
    /// Removes a client: its rooms and peers hear a QUIT with `reason`, and
    /// it gets an ERROR before its connection closes.
    pub fn disconnect(&mut self, id: ClientId, reason: &str) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        // Debug formatting escapes control bytes: a quit reason cannot
        // forge or overwrite log lines.
        info!(client = id.0, nick = ?client.nick, ?reason, "client leaves");
        if client.registered {
            let quit = Line::new(Some(&client.source), "QUIT")
                .trailing(reason)
                .finish();
            let nick = client.nick.clone();
            let mut quit = self.event_from(id, quit);
            self.record_event_in_rooms(id, &quit);
            let peers = self.peers(id);
            self.send_all(peers, &mut quit);
            self.monitor_offline(&nick);
            self.network_quit(id, reason);
        }
        self.network_release_on_leaving(id);
        self.unwatch_all(id);
        self.cancel_guest_deadline(id);
        self.remember_nick(id);
        // Its account has seen its rooms up to now (the client, leaving,
        // needs no marks of its own).
        let rooms: Vec<_> = self
            .clients
            .get(&id)
            .map(|client| client.channels.iter().cloned().collect())
            .unwrap_or_default();
        self.account_saw(id, &rooms);
        let Some(client) = self.clients.remove(&id) else {
            return;
        };
        super::state::shrink_if_sparse(&mut self.clients);
        self.network_forget(&client);
        // Counted once it is gone: a panic above, which disconnects the
        // client again, cannot count it twice.
        if client.registered && client.remote.is_none() {
            self.metrics.registered_client_left();
        }
        // The one way out of a room, as for PART and KICK: an emptied
        // room goes with its playback ring.
        let remote = client.remote.is_some();
        for name in &client.channels {
            self.leave_room(id, name, remote);
        }
        // Invites live in rooms the client may never have joined.
        for name in &client.invited_to {
            if let Some(channel) = self.channels.get_mut(name) {
                channel.invited.remove(&id);
            }
        }
        if !client.nick.is_empty() {
            let folded = self.fold(&client.nick);
            if self.nicks.get(&folded) == Some(&id) {
                self.nicks.remove(&folded);
                super::state::shrink_if_sparse(&mut self.nicks);
            }
        }
        let error = format!("Closing Link: {} ({reason})", client.host);
        client
            .outbox
            .close(Some(Line::new(None, "ERROR").trailing(&error).finish()));
        debug!(clients = self.clients.len(), "client removed");
    }

    /// Says goodbye to every client.
    pub(super) fn shutdown(&mut self) {
        self.network_bye();
        super::jobs::save_unsaved_bans(self);
        let error = Line::new(None, "ERROR")
            .trailing(SERVER_SHUTTING_DOWN)
            .finish();
        for client in self.clients.values() {
            client.outbox.close(Some(error.clone()));
        }
        self.clients.clear();
        self.nicks.clear();
        self.channels.clear();
        self.metrics.clients_cleared();
    }
}
