//! Each node's events and messages applied in the order that node made
//! them.
//!
//! The events subject and the room and node subjects reach the core
//! through separate subscriptions, each read by its own task, so a
//! message can overtake the event it follows: a user's first line, sent
//! right after it registered or joined, could reach a node before its
//! introduction or its JOIN and be dropped or shown out of place there.
//! So a node numbers the events it sends (`Envelope::seq`), every other
//! envelope carries the number of the last event sent before it
//! (`Envelope::after`), and here a message waits until its node's event
//! of that number was applied. A heartbeat, on the events subject behind
//! the events sent before it, carries the last number too: a quiet node's
//! heartbeat lets go what waited for an event lost on the way. A gap in
//! the numbers is such a loss, and is logged. A message waits [`HOLD_FOR`] at most (then
//! goes, as it would have without the wait), and [`MAX_HELD`] wait per
//! node at most.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::{debug, warn};

use crate::network::wire::{Body, Envelope};

/// How long a message waits for the event it follows. The race it closes
/// is a few milliseconds long; past this, the event was lost. Waiting
/// messages are looked at as envelopes come and at each tick.
pub const HOLD_FOR: Duration = Duration::from_secs(1);

/// Messages that wait at once, all nodes together; past this a message is
/// applied at once, in whatever order.
pub const MAX_HELD: usize = 16_384;

/// A message bigger than this (text and tags) is applied at once rather
/// than held: what waits stays small.
const MAX_HELD_BYTES: usize = 8 * 1024;

/// A number further than this past the last one applied is no gap but a
/// peer's error (or forgery): it is ignored, not taken as the new count.
const MAX_JUMP: u64 = 1 << 20;

/// Nodes whose order is followed at most; a name past them (a peer making
/// names up) is not followed, its messages applied as they come.
const MAX_NODES: usize = 1024;

/// Where each other node's events stand here.
#[derive(Default)]
pub struct Order {
    nodes: HashMap<Arc<str>, Stream>,
    /// Messages held, all nodes together.
    held: usize,
}

/// One boot of one node: its last event applied and what waits for the
/// next ones.
struct Stream {
    boot: u64,
    /// The boot said Bye: what comes from it later is dropped.
    ended: bool,
    /// The number of its last event applied; none before the first.
    applied: Option<u64>,
    /// Messages waiting, in the order they came, with when they came.
    held: VecDeque<(SystemTime, Envelope)>,
    /// Whether an out-of-range number was logged in this boot.
    warned: bool,
}

impl Stream {
    fn new(boot: u64) -> Stream {
        Stream {
            boot,
            ended: false,
            applied: None,
            held: VecDeque::new(),
            warned: false,
        }
    }

    /// Whether what follows the event `after` may be applied now.
    fn caught_up(&self, after: u64) -> bool {
        after == 0 || self.applied.is_some_and(|applied| after <= applied)
    }

    /// Whether `number` is too far past the count to be believed.
    fn beyond(&self, number: u64) -> bool {
        self.applied
            .is_some_and(|applied| number > applied.saturating_add(MAX_JUMP))
    }

    /// Moves the count to `number` (never back), logging the events lost
    /// on the way; ignores a number out of range.
    fn reach(&mut self, node: &str, number: u64) {
        if self.beyond(number) {
            if !std::mem::replace(&mut self.warned, true) {
                warn!(node = %node, number, "a node numbered its events far out of order; the number is ignored");
            }
            return;
        }
        if let Some(applied) = self.applied
            && number > applied + 1
        {
            warn!(node = %node, lost = number - applied - 1, "events of a node were lost on the way");
        }
        self.applied = Some(self.applied.map_or(number, |applied| applied.max(number)));
    }
}

impl Order {
    /// The envelope to apply now, or none when it waits (a message whose
    /// event has not come, or behind one that waits) or is dropped (from
    /// an earlier boot of its node, or one that said Bye). For an event,
    /// the caller applies [`Order::released`] first (what was sent before
    /// it), then the event, then [`Order::passed`] and what it released.
    pub fn admit(
        &mut self,
        node: &Arc<str>,
        envelope: Envelope,
        now: SystemTime,
    ) -> Option<Envelope> {
        if !self.nodes.contains_key(node) && !self.make_room() {
            return Some(envelope);
        }
        let stream = self
            .nodes
            .entry(Arc::clone(node))
            .or_insert_with(|| Stream::new(envelope.boot));
        if envelope.boot < stream.boot && !stream.ended {
            debug!(node = %node, "an envelope of an earlier boot of a node; dropped");
            return None;
        }
        if envelope.boot != stream.boot {
            // A new boot: the old one's users are gone, and so is what
            // waited for them.
            self.held -= stream.held.len();
            *stream = Stream::new(envelope.boot);
        }
        if stream.ended {
            return None;
        }
        match (&envelope.body, envelope.seq) {
            // Everything sent before this event may go first.
            (_, Some(seq)) => stream.reach(node, seq.saturating_sub(1)),
            // A heartbeat comes behind the events sent before it.
            (Body::Heartbeat { .. }, None) => stream.reach(node, envelope.after),
            (Body::Message(message), None) => {
                let small = message.text.len() + message.tags.as_ref().map_or(0, String::len)
                    <= MAX_HELD_BYTES;
                if !stream.caught_up(envelope.after) && small && !stream.beyond(envelope.after) {
                    if self.held >= MAX_HELD {
                        warn!(node = %node, "too many messages wait for their events; applied out of order");
                        return Some(envelope);
                    }
                    // In the order of the events they follow: a room's
                    // lines come in the order sent, each after the same
                    // event or a later one, so they stay in that order,
                    // and a line sent before an event never goes after it.
                    let at = stream
                        .held
                        .partition_point(|(_, held)| held.after <= envelope.after);
                    stream.held.insert(at, (now, envelope));
                    self.held += 1;
                    return None;
                }
            }
            _ => {}
        }
        Some(envelope)
    }

    /// The event `seq` of `node` was applied.
    pub fn passed(&mut self, node: &str, seq: u64) {
        if let Some(stream) = self.nodes.get_mut(node) {
            stream.reach(node, seq);
        }
    }

    /// The next message of `node` whose event was applied, oldest first.
    pub fn released(&mut self, node: &str) -> Option<Envelope> {
        let stream = self.nodes.get_mut(node)?;
        let (_, first) = stream.held.front()?;
        if !stream.caught_up(first.after) {
            return None;
        }
        self.held -= 1;
        stream.held.pop_front().map(|(_, envelope)| envelope)
    }

    /// Messages that waited [`HOLD_FOR`] for an event that never came:
    /// that event is taken as lost, and they go with every message that
    /// waits for it or an earlier one, in order.
    pub fn overdue(&mut self, now: SystemTime) -> Vec<Envelope> {
        let mut due = Vec::new();
        if self.held == 0 {
            return due;
        }
        for (node, stream) in &mut self.nodes {
            let expired =
                |since: &SystemTime| now.duration_since(*since).unwrap_or_default() >= HOLD_FOR;
            let given_up = stream
                .held
                .iter()
                .filter(|(since, _)| expired(since))
                .map(|(_, envelope)| envelope.after)
                .max();
            let Some(given_up) = given_up else {
                continue;
            };
            stream.reach(node, given_up);
            while stream
                .held
                .front()
                .is_some_and(|(_, first)| stream.caught_up(first.after))
            {
                if let Some((_, envelope)) = stream.held.pop_front() {
                    due.push(envelope);
                }
            }
        }
        self.held -= due.len();
        due
    }

    /// A node said Bye: what it held goes with its users, and what comes
    /// later from the same boot is dropped.
    pub fn end(&mut self, node: &str) {
        if let Some(stream) = self.nodes.get_mut(node) {
            self.held -= stream.held.len();
            stream.held.clear();
            stream.ended = true;
        }
    }

    /// A node split off for its silence: forgotten, so whatever boot it
    /// comes back with is taken.
    pub fn forget(&mut self, node: &str) {
        if let Some(stream) = self.nodes.remove(node) {
            self.held -= stream.held.len();
        }
    }

    /// Whether another node may be followed, forgetting those that said
    /// Bye when [`MAX_NODES`] are.
    fn make_room(&mut self) -> bool {
        if self.nodes.len() >= MAX_NODES {
            self.nodes.retain(|_, stream| !stream.ended);
        }
        self.nodes.len() < MAX_NODES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::wire::{Message, To};

    fn event(seq: u64) -> Envelope {
        Envelope {
            node: "b".into(),
            boot: 1,
            seq: Some(seq),
            after: 0,
            body: Body::Nick {
                uid: 1,
                nick: format!("n{seq}"),
            },
        }
    }

    fn message(after: u64, text: &str) -> Envelope {
        Envelope {
            node: "b".into(),
            boot: 1,
            seq: None,
            after,
            body: Body::Message(Message {
                uid: 1,
                to: To::Room {
                    target: "#room".into(),
                },
                command: "PRIVMSG".into(),
                text: text.into(),
                msgid: text.into(),
                time: 0,
                tags: None,
                history: true,
            }),
        }
    }

    fn text(envelope: &Envelope) -> &str {
        match &envelope.body {
            Body::Message(message) => &message.text,
            _ => "",
        }
    }

    fn heartbeat(after: u64) -> Envelope {
        Envelope {
            seq: None,
            after,
            body: Body::Heartbeat {
                server: "b.test".into(),
            },
            ..event(0)
        }
    }

    /// What the core applies when `envelope` comes, in order, as
    /// `State::network_envelope` drives [`Order`]: events as `e<n>`,
    /// messages as their text.
    fn deliver(order: &mut Order, envelope: Envelope, now: SystemTime) -> Vec<String> {
        let node: Arc<str> = Arc::from("b");
        let label = |envelope: &Envelope| match envelope.seq {
            Some(seq) => format!("e{seq}"),
            None => text(envelope).to_owned(),
        };
        let mut applied: Vec<String> = order.overdue(now).iter().map(label).collect();
        let Some(envelope) = order.admit(&node, envelope, now) else {
            return applied;
        };
        let seq = envelope.seq;
        let releases = seq.is_some() || matches!(envelope.body, Body::Heartbeat { .. });
        if seq.is_some() {
            while let Some(released) = order.released("b") {
                applied.push(label(&released));
            }
        }
        applied.push(label(&envelope));
        if let Some(seq) = seq {
            order.passed("b", seq);
        }
        if releases {
            while let Some(released) = order.released("b") {
                applied.push(label(&released));
            }
        }
        applied
    }

    /// Delivers `envelopes` in turn; what was applied, in order.
    fn deliver_all(order: &mut Order, envelopes: Vec<Envelope>) -> Vec<String> {
        let now = SystemTime::UNIX_EPOCH;
        envelopes
            .into_iter()
            .flat_map(|envelope| deliver(order, envelope, now))
            .collect()
    }

    #[test]
    fn a_message_waits_for_the_event_it_follows_then_goes_in_order() {
        let mut order = Order::default();
        let applied = deliver_all(
            &mut order,
            vec![
                event(1),
                message(2, "first"),
                message(2, "second"),
                event(2),
            ],
        );
        assert_eq!(applied, ["e1", "e2", "first", "second"]);
        assert_eq!(
            deliver_all(&mut order, vec![message(2, "third")]),
            ["third"]
        );
    }

    #[test]
    fn lines_that_came_before_their_events_go_in_the_order_they_were_sent() {
        // Sent: e1..e4, e5, M1 and M2 to #y, e6, M0 to #x; received with
        // M0 and M1 first.
        let mut order = Order::default();
        let events = (1..=4).map(event).collect();
        deliver_all(&mut order, events);
        let applied = deliver_all(
            &mut order,
            vec![
                message(6, "M0"),
                message(5, "M1"),
                event(5),
                message(5, "M2"),
                event(6),
            ],
        );
        assert_eq!(applied, ["e5", "M1", "M2", "e6", "M0"]);
    }

    #[test]
    fn a_line_sent_before_a_lost_event_goes_before_the_next_event() {
        // M follows e5, which is lost; e6 (say, the sender's QUIT) must
        // not overtake M.
        let mut order = Order::default();
        deliver_all(&mut order, (1..=4).map(event).collect());
        let applied = deliver_all(&mut order, vec![message(5, "M"), event(6)]);
        assert_eq!(applied, ["M", "e6"]);
    }

    #[test]
    fn a_heartbeat_lets_go_what_waited_for_events_lost_before_it() {
        let mut order = Order::default();
        let applied = deliver_all(
            &mut order,
            vec![event(1), message(3, "after a lost event"), heartbeat(3)],
        );
        assert_eq!(applied, ["e1", "", "after a lost event"]);
    }

    #[test]
    fn a_number_far_out_of_range_is_ignored() {
        let mut order = Order::default();
        let applied = deliver_all(
            &mut order,
            vec![event(1), heartbeat(u64::MAX), message(2, "waits")],
        );
        assert_eq!(applied, ["e1", ""], "the heartbeat moved nothing");
        assert_eq!(deliver_all(&mut order, vec![event(2)]), ["e2", "waits"]);
    }

    #[test]
    fn a_message_whose_event_was_lost_goes_after_the_hold_with_those_behind_it() {
        let node: Arc<str> = Arc::from("b");
        let start = SystemTime::UNIX_EPOCH;
        let mut order = Order::default();
        assert!(order.admit(&node, event(1), start).is_some());
        order.passed("b", 1);
        assert!(order.admit(&node, message(7, "late"), start).is_none());
        let later = start + HOLD_FOR / 2;
        assert!(order.admit(&node, message(7, "later"), later).is_none());
        assert!(order.overdue(later).is_empty());
        let due = order.overdue(start + HOLD_FOR);
        assert_eq!(due.iter().map(text).collect::<Vec<_>>(), ["late", "later"]);
        assert!(order.admit(&node, message(7, "now"), later).is_some());
    }

    #[test]
    fn an_earlier_boot_or_a_finished_one_is_not_heard() {
        let node: Arc<str> = Arc::from("b");
        let now = SystemTime::UNIX_EPOCH;
        let booted = |envelope: Envelope, boot: u64| Envelope { boot, ..envelope };
        let mut order = Order::default();
        assert!(order.admit(&node, booted(event(1), 2), now).is_some());
        order.passed("b", 1);
        assert!(
            order
                .admit(&node, booted(message(2, "new"), 2), now)
                .is_none()
        );
        assert!(
            order
                .admit(&node, booted(message(9, "old"), 1), now)
                .is_none(),
            "a late envelope of the earlier boot"
        );
        assert!(order.admit(&node, booted(event(2), 2), now).is_some());
        order.passed("b", 2);
        assert_eq!(order.released("b").as_ref().map(text), Some("new"));

        order.end("b");
        assert!(
            order
                .admit(&node, booted(message(2, "after bye"), 2), now)
                .is_none()
        );
        assert!(
            order.admit(&node, booted(event(1), 3), now).is_some(),
            "a new boot"
        );
    }

    #[test]
    fn a_new_boot_or_a_split_drops_what_waited() {
        let node: Arc<str> = Arc::from("b");
        let now = SystemTime::UNIX_EPOCH;
        let mut order = Order::default();
        assert!(order.admit(&node, message(3, "old boot"), now).is_none());
        let mut rebooted = event(1);
        rebooted.boot = 2;
        assert!(order.admit(&node, rebooted, now).is_some());
        assert!(order.released("b").is_none());
        assert!(order.overdue(now + HOLD_FOR).is_empty());

        assert!(order.admit(&node, message(9, "split"), now).is_none());
        order.forget("b");
        assert!(order.overdue(now + HOLD_FOR).is_empty());
        assert_eq!(order.held, 0);
    }

    /// The wiring in the core: a message that overtook its sender's
    /// introduction reaches the room after the introduction's JOIN.
    #[test]
    fn a_first_line_that_overtook_its_senders_introduction_is_shown_after_it() {
        use crate::core::network::Network;
        use crate::core::testing::Harness;
        use crate::network::wire::{Room, User};
        use crate::network::{Heard, NetworkHandle};

        let mut h = Harness::new();
        h.register("alice");
        h.send("alice", "JOIN #room");
        let now = h.state.clock.now();
        let link = NetworkHandle::detached("a");
        h.state.network = Some(Box::new(Network::new(link, Duration::from_secs(3), now)));
        h.take("alice");

        let introduction = Envelope {
            seq: Some(1),
            body: Body::User(User {
                uid: 1,
                server: "b.test".into(),
                nick: "bob".into(),
                user: "bob".into(),
                host: "b.host".into(),
                realname: "Bob".into(),
                account: None,
                away: None,
                bot: false,
                invisible: false,
                rooms: vec![Room {
                    name: "#room".into(),
                    op: false,
                    voice: false,
                }],
            }),
            ..message(0, "")
        };
        let hear = |h: &mut Harness, envelope: Envelope| {
            h.state.network_heard(Heard::Envelope(Box::new(envelope)));
        };
        hear(&mut h, message(1, "hello"));
        assert_eq!(h.take("alice"), Vec::<String>::new(), "shown before bob");
        hear(&mut h, introduction);
        let seen = h.take("alice");
        let join = seen
            .iter()
            .position(|line| line.contains("bob!bob@b.host JOIN"));
        let hello = seen
            .iter()
            .position(|line| line.ends_with("PRIVMSG #room :hello"));
        assert!(join.is_some() && join < hello, "{seen:?}");
    }

    #[test]
    fn waiting_messages_are_bounded() {
        let node: Arc<str> = Arc::from("b");
        let now = SystemTime::UNIX_EPOCH;
        let mut order = Order::default();
        for n in 0..MAX_HELD {
            assert!(
                order
                    .admit(&node, message(1, &n.to_string()), now)
                    .is_none()
            );
        }
        assert!(order.admit(&node, message(1, "over"), now).is_some());
    }
}
