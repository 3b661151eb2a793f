//! MONITOR's index, kept inverted in `State::monitors` (nick → watchers), so
//! that a sign-on, quit or nick change costs O(watchers), not O(clients).

use super::{ClientId, State};
use crate::proto::Line;
use crate::proto::numeric::{self, Numeric};

impl State {
    /// 730 to the watchers of `id`'s nick: it just came online.
    pub fn monitor_online(&mut self, id: ClientId) {
        let Some(client) = self.clients.get(&id).filter(|c| c.registered) else {
            return;
        };
        let source = client.source.clone();
        let folded = self.fold(&client.nick);
        self.tell_watchers(&folded, numeric::RPL_MONONLINE, &source);
    }

    /// 731 to the watchers of `nick`: it just went offline.
    pub fn monitor_offline(&mut self, nick: &str) {
        let folded = self.fold(nick);
        self.tell_watchers(&folded, numeric::RPL_MONOFFLINE, nick);
    }

    /// One line for every watcher: the spec lets the server put `*` where
    /// the watcher's nick would be.
    fn tell_watchers(&mut self, folded: &crate::proto::Folded, code: Numeric, target: &str) {
        let Some(watchers) = self.monitors.get(folded) else {
            return;
        };
        let watchers: Vec<ClientId> = watchers.iter().copied().collect();
        let code = code.as_str();
        let code = std::str::from_utf8(&code).unwrap_or("000");
        let line = Line::new(Some(self.server_name()), code)
            .arg("*")
            .trailing(target)
            .finish();
        for watcher in watchers {
            self.send(watcher, line.clone());
        }
    }

    /// Empties `id`'s monitor list on both sides.
    pub fn unwatch_all(&mut self, id: ClientId) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        for folded in std::mem::take(&mut client.monitoring).into_keys() {
            self.unwatch_index(id, &folded);
        }
    }

    /// Drops `id` from the watchers of `folded`; a nick nobody watches leaves the index.
    pub fn unwatch_index(&mut self, id: ClientId, folded: &crate::proto::Folded) {
        if let Some(watchers) = self.monitors.get_mut(folded) {
            watchers.remove(&id);
            if watchers.is_empty() {
                self.monitors.remove(folded);
            }
        }
    }
}
