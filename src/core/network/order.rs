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

use tracing::warn;

use crate::network::wire::{Body, Envelope};

/// How long a message waits for the event it follows. The race it closes
/// is a few milliseconds long; past this, the event was lost.
pub const HOLD_FOR: Duration = Duration::from_secs(1);

/// Messages that wait at once for one node's events; past this a message
/// is applied at once, in whatever order.
pub const MAX_HELD: usize = 4096;

/// Where each other node's events stand here.
#[derive(Default)]
pub struct Order {
    nodes: HashMap<Arc<str>, Stream>,
}

/// One boot of one node: its last event applied and what waits for the
/// next ones.
struct Stream {
    boot: u64,
    /// The number of its last event applied; none before the first.
    applied: Option<u64>,
    /// Messages waiting, in the order they came, with when they came.
    held: VecDeque<(SystemTime, Envelope)>,
}

impl Stream {
    fn new(boot: u64) -> Stream {
        Stream {
            boot,
            applied: None,
            held: VecDeque::new(),
        }
    }

    /// Whether what follows the event `after` may be applied now.
    fn caught_up(&self, after: u64) -> bool {
        after == 0 || self.applied.is_some_and(|applied| after <= applied)
    }
}

impl Order {
    /// The envelope to apply now, or none when it waits for an event of
    /// its node. An event or a heartbeat moves its node's count on: the
    /// caller then applies what [`Order::released`] gives.
    pub fn admit(
        &mut self,
        node: &Arc<str>,
        envelope: Envelope,
        now: SystemTime,
    ) -> Option<Envelope> {
        let stream = self
            .nodes
            .entry(Arc::clone(node))
            .or_insert_with(|| Stream::new(envelope.boot));
        if stream.boot != envelope.boot {
            // A new boot: the old one's users are gone, and so is what
            // waited for them.
            *stream = Stream::new(envelope.boot);
        }
        // An event says its own number; a heartbeat, on the same subject
        // and so behind the events before it, says the last one's.
        let reached = match (&envelope.body, envelope.seq) {
            (_, Some(seq)) => Some((seq, seq.saturating_sub(1))),
            (Body::Heartbeat { .. }, None) => Some((envelope.after, envelope.after)),
            _ => None,
        };
        if let Some((number, expected)) = reached {
            if let Some(applied) = stream.applied
                && expected > applied
            {
                warn!(node = %node, lost = expected - applied, "events of a node were lost on the way");
            }
            stream.applied = Some(stream.applied.map_or(number, |applied| applied.max(number)));
            return Some(envelope);
        }
        let waits = matches!(envelope.body, Body::Message(_)) && !stream.caught_up(envelope.after);
        if !waits {
            return Some(envelope);
        }
        if stream.held.len() >= MAX_HELD {
            warn!(node = %node, "too many messages of a node wait for its events; applied out of order");
            return Some(envelope);
        }
        stream.held.push_back((now, envelope));
        None
    }

    /// The next message of `node` whose event was applied, oldest first.
    pub fn released(&mut self, node: &str) -> Option<Envelope> {
        let stream = self.nodes.get_mut(node)?;
        let (_, first) = stream.held.front()?;
        if !stream.caught_up(first.after) {
            return None;
        }
        stream.held.pop_front().map(|(_, envelope)| envelope)
    }

    /// Messages that waited [`HOLD_FOR`] for an event that never came,
    /// oldest first: they are applied anyway.
    pub fn overdue(&mut self, now: SystemTime) -> Vec<Envelope> {
        let mut due = Vec::new();
        for stream in self.nodes.values_mut() {
            while let Some((since, _)) = stream.held.front() {
                let waited = now.duration_since(*since).unwrap_or_default();
                if waited < HOLD_FOR {
                    break;
                }
                if let Some((_, envelope)) = stream.held.pop_front() {
                    due.push(envelope);
                }
            }
        }
        due
    }

    /// A node split off or stopped: what waited for it goes with its users.
    pub fn forget(&mut self, node: &str) {
        self.nodes.remove(node);
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

    #[test]
    fn a_message_waits_for_the_event_it_follows_then_goes_in_order() {
        let node: Arc<str> = Arc::from("b");
        let now = SystemTime::UNIX_EPOCH;
        let mut order = Order::default();
        assert!(order.admit(&node, event(1), now).is_some());
        assert!(order.admit(&node, message(2, "first"), now).is_none());
        assert!(order.admit(&node, message(2, "second"), now).is_none());
        assert!(order.released("b").is_none(), "event 2 not applied yet");

        assert!(order.admit(&node, event(2), now).is_some());
        let first = order.released("b").expect("released");
        let second = order.released("b").expect("released");
        assert_eq!((text(&first), text(&second)), ("first", "second"));
        assert!(order.released("b").is_none());
        assert!(order.admit(&node, message(2, "third"), now).is_some());
    }

    #[test]
    fn a_heartbeat_lets_go_what_waited_for_events_lost_before_it() {
        let node: Arc<str> = Arc::from("b");
        let now = SystemTime::UNIX_EPOCH;
        let mut order = Order::default();
        assert!(order.admit(&node, event(1), now).is_some());
        assert!(
            order
                .admit(&node, message(3, "after a lost event"), now)
                .is_none()
        );
        let heartbeat = Envelope {
            seq: None,
            after: 3,
            body: Body::Heartbeat {
                server: "b.test".into(),
            },
            ..event(0)
        };
        assert!(order.admit(&node, heartbeat, now).is_some());
        let released = order.released("b").expect("released by the heartbeat");
        assert_eq!(text(&released), "after a lost event");
    }

    #[test]
    fn a_message_whose_event_was_lost_goes_after_the_hold() {
        let node: Arc<str> = Arc::from("b");
        let start = SystemTime::UNIX_EPOCH;
        let mut order = Order::default();
        assert!(order.admit(&node, message(7, "late"), start).is_none());
        assert!(order.overdue(start + HOLD_FOR / 2).is_empty());
        let due = order.overdue(start + HOLD_FOR);
        assert_eq!(due.iter().map(text).collect::<Vec<_>>(), ["late"]);
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
