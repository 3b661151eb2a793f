//! REHASH across the network: `REHASH <mask>` asks the nodes whose server
//! name matches to reload their own configuration file. Each reloads as
//! its local REHASH does and sends its answer to the asking node, which
//! shows it to the operator while it waits (a bounded time); the nodes
//! that did not answer by then are counted in a last notice.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

use crate::core::commands::rehash;
use crate::core::{ClientId, State};
use crate::network::wire::{Body, subject};

/// How long an operator's REHASH waits for the other nodes' answers.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// REHASH requests of local operators waiting for answers at most; a
/// newer one drops the oldest.
const MAX_ASKED: usize = 16;

/// Other nodes' requests one reload answers at most: a request that comes
/// while a reload for another node waits joins it, up to this many.
const MAX_ASKERS: usize = 16;

/// The shortest time between two reloads other nodes ask for: peers
/// cannot keep this node reloading.
const PEER_RELOAD_GAP: Duration = Duration::from_secs(5);

/// The longest text of an answer shown to an operator.
const MAX_ANSWER: usize = 400;

/// The longest server mask taken from a peer.
const MAX_MASK: usize = 255;

/// A local operator's REHASH waiting for the other nodes' answers.
#[derive(Debug)]
pub(super) struct Asked {
    request: u64,
    client: ClientId,
    /// How many nodes were asked.
    expected: usize,
    /// The nodes asked that have not answered: each answers once.
    waiting: Vec<Arc<str>>,
    until: SystemTime,
}

/// The node that asked for a reload this node is doing.
#[derive(Debug)]
pub(super) struct Asker {
    node: Arc<str>,
    request: u64,
}

/// The REHASH bookkeeping of a node in a network.
#[derive(Debug, Default)]
pub(super) struct Rehashes {
    /// This node's last number for its requests; the first of a boot
    /// starts from the boot's time, so an answer to an earlier boot's
    /// request is never taken for one of this boot.
    last_request: u64,
    asked: VecDeque<Asked>,
    /// One entry per reload handed to the admin worker, in order (it does
    /// them one at a time, in order): the nodes that asked for it (none
    /// for this node's own).
    reloads: VecDeque<Vec<Asker>>,
    /// When the last reload for other nodes was handed to the worker.
    last_for_nodes: Option<SystemTime>,
}

impl State {
    /// Whether `mask` names this node's server (its name, or a glob of it).
    pub(crate) fn names_this_server(&self, mask: &str) -> bool {
        let casemapping = self.config.server.casemapping;
        let server = self.server_name();
        casemapping.eq(mask, server)
            || crate::proto::mask::Mask::new(mask, casemapping).matches(server)
    }

    /// Asks the other nodes whose server name matches `mask` to reload
    /// their configuration for the operator `id`; returns how many were
    /// asked (none when this node is alone).
    pub(crate) fn network_rehash(&mut self, id: ClientId, mask: &str) -> usize {
        let now = self.clock.now();
        let casemapping = self.config.server.casemapping;
        let by = self
            .clients
            .get(&id)
            .map(|client| client.nick.clone())
            .unwrap_or_default();
        let Some(network) = &mut self.network else {
            return 0;
        };
        let pattern = crate::proto::mask::Mask::new(mask, casemapping);
        let waiting: Vec<Arc<str>> = network
            .nodes
            .iter()
            .filter(|(_, node)| !node.server.is_empty())
            .filter(|(_, node)| casemapping.eq(mask, &node.server) || pattern.matches(&node.server))
            .map(|(name, _)| Arc::clone(name))
            .collect();
        let expected = waiting.len();
        if expected == 0 {
            return 0;
        }
        let rehashes = &mut network.rehashes;
        let first_of_boot = network.link.boot().saturating_mul(1_000_000);
        rehashes.last_request = rehashes.last_request.max(first_of_boot) + 1;
        let request = rehashes.last_request;
        if rehashes.asked.len() >= MAX_ASKED {
            warn!("too many REHASH requests wait for answers; the oldest stops waiting");
            rehashes.asked.pop_front();
        }
        rehashes.asked.push_back(Asked {
            request,
            client: id,
            expected,
            waiting,
            until: now + ANSWER_WAIT,
        });
        let mask = mask.to_owned();
        network
            .link
            .publish(subject::EVENTS, Body::Rehash { mask, request, by });
        expected
    }

    /// Another node asks the nodes matching `mask` to reload.
    pub(super) fn remote_rehash(&mut self, node: &Arc<str>, mask: &str, request: u64, by: &str) {
        if mask.len() > MAX_MASK || !self.names_this_server(mask) {
            return;
        }
        let by = by.chars().filter(|c| !c.is_control()).take(64);
        let by: String = by.collect();
        info!(node = %node, ?by, "another node asks this one to reload its configuration");
        let now = self.clock.now();
        let asker = Asker {
            node: Arc::clone(node),
            request,
        };
        let Some(network) = &mut self.network else {
            return;
        };
        let rehashes = &mut network.rehashes;
        // A reload for other nodes that waits answers this request too.
        if let Some(askers) = rehashes.reloads.back_mut()
            && !askers.is_empty()
        {
            if askers.len() < MAX_ASKERS {
                askers.push(asker);
            } else {
                warn!(node = %node, "too many nodes wait for one reload; a request refused");
            }
            return;
        }
        let recent = rehashes
            .last_for_nodes
            .is_some_and(|last| now < last + PEER_RELOAD_GAP);
        if recent {
            let text = "REHASH refused: this node reloaded for another node moments ago";
            self.answer_rehash(node, request, text);
            return;
        }
        if let Err(text) = rehash::start_for_node(self) {
            self.answer_rehash(node, request, text);
            return;
        }
        if let Some(network) = &mut self.network {
            network.rehashes.last_for_nodes = Some(now);
            network.rehashes.reloads.push_back(vec![asker]);
        }
    }

    /// A reload for this node itself (an operator of it, or SIGHUP) was
    /// handed to the admin worker.
    pub(crate) fn network_local_reload_started(&mut self) {
        if let Some(network) = &mut self.network {
            network.rehashes.reloads.push_back(Vec::new());
        }
    }

    /// The oldest reload finished, as `notice` says (`failed` when the file
    /// did not load): the nodes that asked for it, if any, are told; a
    /// failure's reason stays in this node's log, since it may quote the
    /// file.
    pub(crate) fn network_reloaded(&mut self, notice: &str, failed: bool) {
        let askers = self
            .network
            .as_mut()
            .and_then(|network| network.rehashes.reloads.pop_front())
            .unwrap_or_default();
        let text = if failed {
            "REHASH failed, the running configuration is unchanged; the reason is in the node's log"
        } else {
            notice
        };
        for asker in askers {
            self.answer_rehash(&asker.node, asker.request, text);
        }
    }

    /// Tells `node` how its request `request` went here.
    fn answer_rehash(&self, node: &Arc<str>, request: u64, text: &str) {
        if let Some(network) = &self.network {
            let body = Body::Rehashed {
                request,
                server: self.server_name().to_owned(),
                text: text.to_owned(),
            };
            network.link.publish(&subject::node(node), body);
        }
    }

    /// Another node answered a REHASH of a local operator: shown to the
    /// operator while the request waits, once per node asked, under the
    /// server name this node knows for it; dropped otherwise.
    pub(super) fn remote_rehashed(&mut self, node: &Arc<str>, request: u64, text: &str) {
        let now = self.clock.now();
        let Some(network) = &mut self.network else {
            return;
        };
        let Some(asked) = network
            .rehashes
            .asked
            .iter_mut()
            .find(|asked| asked.request == request && asked.until > now)
        else {
            return;
        };
        let Some(at) = asked.waiting.iter().position(|waiting| waiting == node) else {
            return;
        };
        asked.waiting.swap_remove(at);
        let client = asked.client;
        let server = network
            .nodes
            .get(node)
            .map_or_else(|| node.to_string(), |known| known.server.clone());
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_ANSWER)
            .collect();
        // The node's own REHASH text, said of that node.
        let notice = match text.strip_prefix("REHASH") {
            Some(rest) => format!("REHASH on {server}{rest}"),
            None => format!("REHASH on {server}: {text}"),
        };
        self.server_notice(client, &notice);
    }

    /// Ends the REHASH requests that waited long enough, telling each
    /// operator how many nodes did not answer.
    pub(super) fn expire_rehashes(&mut self) {
        let now = self.clock.now();
        let Some(network) = &mut self.network else {
            return;
        };
        let asked = &mut network.rehashes.asked;
        let mut ended = Vec::new();
        while asked.front().is_some_and(|first| first.until <= now) {
            ended.extend(asked.pop_front());
        }
        for asked in ended {
            let missing = asked.waiting.len();
            if missing > 0 {
                let text = format!(
                    "REHASH: {missing} of {} nodes did not answer within {} s",
                    asked.expected,
                    ANSWER_WAIT.as_secs()
                );
                self.server_notice(asked.client, &text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::core::network::Network;
    use crate::core::testing::Harness;
    use crate::network::wire::{Body, Envelope};
    use crate::network::{Heard, NetworkHandle};

    /// Harness with alice, an operator, on node a of a network where
    /// nodes b and c have said who they are.
    fn network_with_operator() -> Harness {
        let mut h = Harness::new();
        let id = h.register("alice");
        if let Some(alice) = h.state.clients.get_mut(&id) {
            alice.modes.oper = true;
            alice.privileges = crate::config::Privilege::all();
        }
        let now = h.state.clock.now();
        let link = NetworkHandle::detached("a");
        let network = Network::new(link, Duration::from_secs(3), now);
        h.state.network = Some(Box::new(network));
        for node in ["b", "c"] {
            let server = format!("{node}.test");
            from(&mut h, node, Body::Heartbeat { server });
        }
        h
    }

    fn from(h: &mut Harness, node: &str, body: Body) {
        let envelope = Envelope {
            node: node.to_owned(),
            boot: 1,
            seq: None,
            after: 0,
            body,
        };
        h.state.network_heard(Heard::Envelope(Box::new(envelope)));
    }

    /// The number of the request alice's REHASH made.
    fn last_request(h: &Harness) -> u64 {
        let network = h.state.network.as_ref().expect("a network");
        network.rehashes.last_request
    }

    #[test]
    fn each_node_asked_answers_once_under_its_own_name_and_the_silent_are_counted() {
        let mut h = network_with_operator();
        h.send("alice", "REHASH *.test");
        let asked = h.take("alice");
        assert!(
            asked
                .iter()
                .any(|line| line.contains("asked 2 other nodes")),
            "{asked:?}"
        );
        let request = last_request(&h);
        let answer = |text: &str| Body::Rehashed {
            request,
            server: "forged.example".into(),
            text: text.into(),
        };
        from(&mut h, "b", answer("REHASH: configuration reloaded"));
        // Again from b, and from a node never asked: not shown.
        from(&mut h, "b", answer("REHASH: configuration reloaded"));
        from(&mut h, "d", answer("REHASH: configuration reloaded"));
        assert_eq!(
            h.take("alice"),
            [":irc.test NOTICE alice :REHASH on b.test: configuration reloaded"]
        );
        h.advance(11);
        h.state.expire_rehashes();
        assert_eq!(
            h.take("alice"),
            [":irc.test NOTICE alice :REHASH: 1 of 2 nodes did not answer within 10 s"]
        );
    }
}
