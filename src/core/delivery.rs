//! How lines reach clients: one line to one client, one event to many
//! (each in the form its capabilities ask for), and who hears of a change
//! to a client. A line to a client whose labeled command is running is
//! held for the labeled-response instead; an outbox that overflows gets its
//! client dropped once the current event is handled.

use std::sync::Arc;

use bytes::Bytes;

use super::broadcast::Broadcast;
use super::caps::Caps;
use super::labeled::Capture;
use super::{Client, ClientId, IdSet, Membership, State};
use crate::net::{Gate, Outbox, Overflow, Pushed};
use crate::proto::Folded;

/// Where lines go besides the outboxes, kept apart from the client table
/// so a fan-out can borrow both.
#[derive(Debug, Default)]
pub struct Sink {
    /// Replies held back for a labeled-response while its command runs.
    pub capture: Option<Capture>,
    /// Clients whose outbox overflowed while handling the current event.
    pub overflowed: Vec<ClientId>,
    /// Outboxes holding lines that wait for the journal, to release after
    /// the next flush; each once.
    owed: Vec<Arc<Outbox>>,
}

impl Sink {
    /// Queues `line` for `client`, or holds it when its command is
    /// labeled. `gate` is the history record the line must wait for.
    fn deliver(&mut self, client: &Client, line: Bytes, gate: Gate) {
        // Its own node delivers to a user of another node.
        if client.remote.is_some() {
            return;
        }
        if let Some(capture) = self
            .capture
            .as_mut()
            .filter(|capture| capture.id == client.id)
        {
            capture.lines.push(line);
            capture.gate = capture.gate.and(gate);
            return;
        }
        match client.outbox.push_durable(line, gate) {
            Ok(Pushed::Queued) => {}
            Ok(Pushed::ReleaseOwed) => self.owed.push(Arc::clone(&client.outbox)),
            Err(Overflow) => self.overflowed.push(client.id),
        }
    }
}

impl State {
    /// Queues a line for one client; an overflow disconnects it afterwards.
    pub fn send(&mut self, id: ClientId, line: Bytes) {
        self.send_after(id, line, Gate::NONE);
    }

    /// Queues a line that must wait for a history record.
    pub fn send_after(&mut self, id: ClientId, line: Bytes, gate: Gate) {
        if let Some(client) = self.clients.get(&id) {
            self.sink.deliver(client, line, gate);
        }
    }

    /// Writes the records of the events handled since the last call to the
    /// history journal, then wakes the connections whose lines waited for
    /// them. Called after each batch of events.
    pub fn flush_history(&mut self) {
        if let Some(history) = &self.history {
            history.flush();
        }
        for outbox in self.sink.owed.drain(..) {
            outbox.release();
        }
    }

    /// A server NOTICE to every registered operator.
    pub fn notice_operators(&mut self, text: &str) {
        let opers: Vec<ClientId> = self
            .clients
            .values()
            .filter(|client| client.registered && client.modes.oper)
            .map(|client| client.id)
            .collect();
        for id in opers {
            self.server_notice(id, text);
        }
    }

    /// An event line stamped with the current time, for a fan-out.
    pub fn broadcast(&self, line: Bytes) -> Broadcast {
        Broadcast::new(line, self.clock.now())
    }

    /// An event caused by `id`, tagged `bot` when it is a bot (bot-mode)
    /// and with its account (account-tag) when it is logged in.
    pub fn event_from(&self, id: ClientId, line: Bytes) -> Broadcast {
        let client = self.clients.get(&id);
        let bot = client.is_some_and(|c| c.modes.bot);
        let account = client.and_then(|c| c.account.clone());
        self.broadcast(line).with_bot(bot).with_account(account)
    }

    /// Sends an event to each of `ids` in the form its capabilities ask
    /// for; returns how many of them it reached, for the metrics.
    pub fn send_all(
        &mut self,
        ids: impl IntoIterator<Item = ClientId>,
        event: &mut Broadcast,
    ) -> usize {
        let mut reached = 0;
        for id in ids {
            if let Some(client) = self.clients.get(&id) {
                let gate = event.gate();
                event.each_line(client.caps, |line| {
                    self.sink.deliver(client, line, gate);
                });
                reached += 1;
            }
        }
        reached
    }

    /// Sends an event to the members of a room that `include` accepts, each
    /// in its own form; no list of members is built. Returns how many it
    /// reached, for the metrics.
    pub fn send_to_members(
        &mut self,
        channel: &Folded,
        event: &mut Broadcast,
        include: impl Fn(&Client, Membership) -> bool,
    ) -> usize {
        let Some(room) = self.channels.get(channel) else {
            return 0;
        };
        let mut reached = 0;
        for (member, &membership) in &room.members {
            let Some(client) = self.clients.get(member) else {
                continue;
            };
            if include(client, membership) {
                let gate = event.gate();
                event.each_line(client.caps, |line| {
                    self.sink.deliver(client, line, gate);
                });
                reached += 1;
            }
        }
        reached
    }

    /// Sends an event to `id` past a labeled-response capture: what a
    /// client sends itself is delivered as a side effect of its command,
    /// not as a reply, so only the echo carries the label. Returns
    /// whether the client was there to reach.
    pub fn send_unlabeled(&mut self, id: ClientId, event: &mut Broadcast) -> bool {
        let Some(client) = self.clients.get(&id) else {
            return false;
        };
        let gate = event.gate();
        let capture = self.sink.capture.take();
        event.each_line(client.caps, |line| {
            self.sink.deliver(client, line, gate);
        });
        self.sink.capture = capture;
        true
    }

    /// Everyone who shares a room with `id` and sees it there (not all of
    /// an auditorium, `Channel::seers_of`), each once, without `id`.
    pub fn peers(&self, id: ClientId) -> IdSet {
        let mut peers = IdSet::default();
        if let Some(client) = self.clients.get(&id) {
            for name in &client.channels {
                if let Some(channel) = self.channels.get(name) {
                    peers.extend(channel.seers_of(id, &self.clients));
                }
            }
        }
        peers.remove(&id);
        peers
    }

    /// Who hears of a change to `id` that only clients with `cap` are told
    /// about: its peers with `cap`, and its MONITOR watchers with `cap` and
    /// extended-monitor. Each once, without `id`.
    pub fn audience(&self, id: ClientId, cap: Caps) -> IdSet {
        let has = |other: &ClientId, wanted: Caps| {
            self.clients
                .get(other)
                .is_some_and(|c| c.caps.contains(wanted))
        };
        let mut audience: IdSet = self
            .peers(id)
            .into_iter()
            .filter(|peer| has(peer, cap))
            .collect();
        if let Some(client) = self.clients.get(&id)
            && let Some(watchers) = self.monitors.get(&self.fold(&client.nick))
        {
            let wanted = cap.union(Caps::EXTENDED_MONITOR);
            audience.extend(watchers.iter().filter(|w| **w != id && has(w, wanted)));
        }
        audience
    }
}
