//! Which nodes are alive: heartbeats, splits of silent or stopped nodes,
//! this node's lease, and fencing this node's users when it is cut off.

use std::sync::Arc;
use std::time::SystemTime;

use tracing::{info, warn};

use crate::core::{ClientId, State};
use crate::network::Renewal;

use super::{FENCED_REASON, Network, Node, SPLIT_REASON};

/// For how many node timeouts after joining a node counts as new: time
/// for every live node to hear it and send it their burst, with room for
/// a slow start.
const NEW_FOR_TIMEOUTS: u32 = 3;

impl State {
    /// Notes that `node` (in its boot `boot`) is alive. A node first heard,
    /// or heard in a new boot, is sent every local user: it joined late,
    /// or it restarted and lost what it knew. A new boot also ends the
    /// users of the old one.
    pub(super) fn network_node_heard(&mut self, node: &Arc<str>, boot: u64) {
        let now = self.clock.now();
        let Some(network) = &mut self.network else {
            return;
        };
        let server = match network.nodes.get(node) {
            Some(known) if known.boot == boot => known.server.clone(),
            _ => String::new(),
        };
        let previous = network.nodes.insert(
            Arc::clone(node),
            Node {
                boot,
                heard: now,
                server,
            },
        );
        match previous {
            Some(known) if known.boot == boot => return,
            Some(_) => {
                info!(node = %node, "node restarted");
                self.network_split(node, "Node restarted");
            }
            None => info!(node = %node, "node joined the network"),
        }
        let locals: Vec<ClientId> = self
            .clients
            .values()
            .filter(|client| client.registered && client.remote.is_none())
            .map(|client| client.id)
            .collect();
        for id in locals {
            self.network_user_up(id);
        }
        self.network_burst_klines(node);
    }

    /// Whether this node joined the network (or came back to it) so
    /// recently that it is still hearing the others' bursts: within
    /// [`NEW_FOR_TIMEOUTS`] node timeouts.
    pub(super) fn network_is_new(&self) -> bool {
        let now = self.clock.now();
        self.network.as_ref().is_some_and(|network| {
            now.duration_since(network.joined)
                .map_or(true, |since| since < network.timeout * NEW_FOR_TIMEOUTS)
        })
    }

    /// Whether the link to NATS is down, or this node's lease ran out: no
    /// nick can be claimed.
    pub(crate) fn network_is_down(&self) -> bool {
        let now = self.clock.now();
        self.network
            .as_ref()
            .is_some_and(|network| network.down_since.is_some() || network.lease_lost(now))
    }

    /// How a renewal of this node's lease went. A renewal counts from when
    /// it was sent; one written after the lease ran out ends the fencing,
    /// and the node listens anew, as when its link comes back.
    pub(super) fn network_lease(&mut self, renewal: Renewal) {
        let now = self.clock.now();
        let Some(network) = &mut self.network else {
            return;
        };
        match renewal {
            Renewal::Renewed { took } => {
                if network.lease_lost(now) {
                    info!("this node's lease is renewed: it is back in the network");
                    network.joined = now;
                }
                network.lease_failing = false;
                let sent = now.checked_sub(took).unwrap_or(now);
                network.leased = network.leased.max(Some(sent));
            }
            Renewal::Failed(reason) => {
                // A bucket a node just made may take a moment to be
                // written to; only a lease held once is news when it fails.
                if network.leased.is_none() {
                    info!(%reason, "this node's lease is not written yet");
                } else if !network.lease_failing {
                    warn!(%reason, "cannot renew this node's lease in JetStream");
                }
                network.lease_failing = true;
            }
        }
    }

    /// The link to NATS went down or came back.
    pub(super) fn network_link(&mut self, up: bool) {
        let now = self.clock.now();
        let Some(network) = &mut self.network else {
            return;
        };
        if up {
            if network.down_since.take().is_some() {
                info!("the link to the network is back");
                network.joined = now;
            }
        } else if network.down_since.is_none() {
            warn!("the link to the network is down");
            network.down_since = Some(now);
        }
    }

    /// A node cut off from the network longer than a node timeout (its
    /// link down, or its lease not renewed: it is on the minority side of
    /// a split NATS cluster) has been split off by the others, which may
    /// have given its users' nicks to someone else: it disconnects its own
    /// users, so that no nick is held twice (fencing). New ones cannot
    /// register until the link and the lease are back: NICK gets 437.
    pub(super) fn network_fence(&mut self) {
        let now = self.clock.now();
        let Some(network) = &self.network else {
            return;
        };
        let link_down = network.down_since.is_some_and(|since| {
            now.duration_since(since)
                .is_ok_and(|down| down > network.timeout)
        });
        let cut_off = link_down || network.lease_lost(now);
        if !cut_off {
            return;
        }
        let locals: Vec<ClientId> = self
            .clients
            .values()
            // Every local user holding a nick, registered or not yet.
            .filter(|client| client.remote.is_none() && !client.nick.is_empty())
            .map(|client| client.id)
            .collect();
        if !locals.is_empty() {
            warn!(
                users = locals.len(),
                "cut off from the network; disconnecting this node's users"
            );
        }
        for id in locals {
            self.disconnect(id, FENCED_REASON);
        }
    }

    /// Ends, as a netsplit, every node that was not heard from in time.
    pub(in crate::core) fn network_expire(&mut self) {
        self.expire_rehashes();
        self.network_overdue();
        self.network_expire_joins();
        let now = self.clock.now();
        let Some(network) = &self.network else {
            return;
        };
        let silent: Vec<Arc<str>> = network
            .nodes
            .iter()
            .filter(|(_, node)| {
                now.duration_since(node.heard)
                    .is_ok_and(|quiet| quiet > network.timeout)
            })
            .map(|(name, _)| Arc::clone(name))
            .collect();
        for node in silent {
            warn!(node = %node, "node went silent; its users split off");
            if let Some(network) = &mut self.network {
                network.nodes.remove(&node);
                network.order.forget(&node);
                network.silenced = Some(now);
            }
            self.network_split(&node, SPLIT_REASON);
        }
        // After the splits: a peer silenced now is evidence for the fence.
        self.network_fence();
    }

    /// Every user of `node` leaves with `reason`.
    pub(super) fn network_split(&mut self, node: &Arc<str>, reason: &str) {
        let Some(network) = &self.network else {
            return;
        };
        let users: Vec<ClientId> = network
            .remote
            .iter()
            .filter(|((from, _), _)| from == node)
            .map(|(_, &id)| id)
            .collect();
        for id in users {
            if let Some(nick) = self.clients.get(&id).map(|client| self.fold(&client.nick)) {
                self.release_nick(id, &nick);
            }
            self.disconnect(id, reason);
        }
    }
}

impl Network {
    /// Whether this node's lease was last renewed more than a node timeout
    /// before `now` and the others may have split it off: no other node is
    /// heard, or one went silent since the last renewal. A lease stale
    /// while every peer is still heard is a JetStream leader election
    /// (seconds, after a NATS server dies), not a split: the peers hear
    /// this node's heartbeats as it hears theirs.
    fn lease_lost(&self, now: SystemTime) -> bool {
        let Some(leased) = self.leased else {
            return false;
        };
        let stale = now
            .duration_since(leased)
            .is_ok_and(|age| age > self.timeout);
        let peer_lost = self.silenced.is_some_and(|at| at >= leased);
        stale && (self.nodes.is_empty() || peer_lost)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::core::Event;
    use crate::core::testing::Harness;
    use crate::network::{Heard, NetworkHandle};

    /// Puts the harness's node a in a network whose node timeout is 3 s
    /// (after its clients registered: a claim would wait for NATS).
    fn join_network(h: &mut Harness) {
        let now = h.state.clock.now();
        let link = NetworkHandle::detached("a");
        let network = Network::new(link, Duration::from_secs(3), now);
        h.state.network = Some(Box::new(network));
    }

    #[test]
    fn a_renewed_lease_keeps_the_users_and_lets_nicks_be_claimed() {
        let mut h = Harness::new();
        let alice = h.register("alice");
        join_network(&mut h);
        for _ in 0..4 {
            h.advance(2);
            let took = Duration::from_millis(100);
            h.state.network_lease(Renewal::Renewed { took });
            h.handle(Event::Tick);
        }
        assert!(h.state.clients.contains_key(&alice));
        assert!(!h.state.network_is_down());
    }

    /// Node b says it is alive.
    fn heartbeat_from_b(h: &mut Harness) {
        let envelope = crate::network::wire::Envelope {
            node: "b".to_owned(),
            boot: 1,
            seq: None,
            after: 0,
            body: crate::network::wire::Body::Heartbeat {
                server: "b.test".to_owned(),
            },
        };
        h.state.network_heard(Heard::Envelope(Box::new(envelope)));
    }

    #[test]
    fn a_server_name_that_cannot_be_one_is_not_taken() {
        let mut h = Harness::new();
        join_network(&mut h);
        for server in ["", "b test", "b@test", "b.test\u{1}", &"b".repeat(256)] {
            let envelope = crate::network::wire::Envelope {
                node: "b".to_owned(),
                boot: 1,
                seq: None,
                after: 0,
                body: crate::network::wire::Body::Heartbeat {
                    server: server.to_owned(),
                },
            };
            h.state.network_heard(Heard::Envelope(Box::new(envelope)));
            assert!(h.state.network_servers().is_empty(), "{server:?} taken");
        }
        heartbeat_from_b(&mut h);
        assert_eq!(h.state.network_servers(), ["b.test"]);
    }

    #[test]
    fn a_stale_lease_while_every_peer_is_heard_fences_only_once_one_goes_silent() {
        let mut h = Harness::new();
        let alice = h.register("alice");
        join_network(&mut h);
        h.state.network_lease(Renewal::Renewed {
            took: Duration::ZERO,
        });
        h.state
            .network_lease(Renewal::Failed("no stream leader".into()));
        for _ in 0..5 {
            h.advance(1);
            heartbeat_from_b(&mut h);
            h.handle(Event::Tick);
        }
        assert!(
            h.state.clients.contains_key(&alice),
            "fenced by an election"
        );
        assert!(!h.state.network_is_down());

        h.advance(4);
        h.handle(Event::Tick);
        assert!(!h.state.clients.contains_key(&alice), "b went silent");
        assert!(h.state.network_is_down());
    }

    #[test]
    fn a_node_whose_first_lease_is_slow_to_come_is_not_fenced() {
        let mut h = Harness::new();
        let alice = h.register("alice");
        join_network(&mut h);
        h.state
            .network_lease(Renewal::Failed("stream not ready".into()));
        h.advance(10);
        h.handle(Event::Tick);
        assert!(h.state.clients.contains_key(&alice));
        assert!(!h.state.network_is_down());
    }

    #[test]
    fn a_lease_not_renewed_for_a_node_timeout_fences_until_it_is_renewed() {
        let mut h = Harness::new();
        let alice = h.register("alice");
        join_network(&mut h);
        h.state.network_lease(Renewal::Renewed {
            took: Duration::ZERO,
        });
        h.state.network_lease(Renewal::Failed("no quorum".into()));
        h.advance(2);
        h.handle(Event::Tick);
        assert!(h.state.clients.contains_key(&alice), "fenced too soon");

        h.advance(2);
        h.handle(Event::Tick);
        assert!(!h.state.clients.contains_key(&alice));
        h.connect("newcomer");
        h.send("newcomer", "NICK newcomer");
        let refused = h.take("newcomer");
        assert!(
            refused.iter().any(|line| line.contains(" 437 * newcomer ")),
            "{refused:?}"
        );

        h.state.network_lease(Renewal::Renewed {
            took: Duration::ZERO,
        });
        assert!(!h.state.network_is_down());
    }
}
