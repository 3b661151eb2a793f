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

/// Reloads asked for by other nodes and not done yet at most; past it a
/// request is refused, so peers cannot queue work without end.
const MAX_RELOADS_FOR_NODES: usize = 8;

/// The longest text of an answer shown to an operator.
const MAX_ANSWER: usize = 400;

/// The longest server mask taken from a peer.
const MAX_MASK: usize = 255;

/// A local operator's REHASH waiting for the other nodes' answers.
#[derive(Debug)]
pub(super) struct Asked {
    request: u64,
    client: ClientId,
    /// Nodes asked, and of them those that answered.
    expected: usize,
    answered: usize,
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
    /// This node's numbers for its requests.
    next_request: u64,
    asked: VecDeque<Asked>,
    /// One entry per reload handed to the admin worker, in order (it does
    /// them one at a time, in order): the node that asked for it, if one
    /// did.
    reloads: VecDeque<Option<Asker>>,
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
        let expected = network
            .nodes
            .values()
            .filter(|node| !node.server.is_empty())
            .filter(|node| casemapping.eq(mask, &node.server) || pattern.matches(&node.server))
            .count();
        if expected == 0 {
            return 0;
        }
        let rehashes = &mut network.rehashes;
        rehashes.next_request += 1;
        let request = rehashes.next_request;
        if rehashes.asked.len() >= MAX_ASKED {
            rehashes.asked.pop_front();
        }
        rehashes.asked.push_back(Asked {
            request,
            client: id,
            expected,
            answered: 0,
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
        let waiting = self.network.as_ref().map_or(0, |network| {
            network.rehashes.reloads.iter().flatten().count()
        });
        if waiting >= MAX_RELOADS_FOR_NODES {
            warn!(node = %node, "too many reloads asked for by other nodes; one refused");
            let text = "REHASH refused: too many reloads are waiting; try again";
            self.answer_rehash(node, request, text);
            return;
        }
        let asker = Asker {
            node: Arc::clone(node),
            request,
        };
        if let Err(text) = rehash::start_for_node(self) {
            self.answer_rehash(node, request, text);
            return;
        }
        self.network_reload_started(Some(asker));
    }

    /// A reload was handed to the admin worker, for `asker` or for this
    /// node (an operator of it, or SIGHUP).
    fn network_reload_started(&mut self, asker: Option<Asker>) {
        if let Some(network) = &mut self.network {
            network.rehashes.reloads.push_back(asker);
        }
    }

    /// A reload for this node itself was handed to the admin worker.
    pub(crate) fn network_local_reload_started(&mut self) {
        self.network_reload_started(None);
    }

    /// The oldest reload finished, as `notice` says: the node that asked
    /// for it, if one did, is told.
    pub(crate) fn network_reloaded(&mut self, notice: &str) {
        let asker = self
            .network
            .as_mut()
            .and_then(|network| network.rehashes.reloads.pop_front())
            .flatten();
        if let Some(asker) = asker {
            self.answer_rehash(&asker.node, asker.request, notice);
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
    /// operator while the request waits; dropped afterwards.
    pub(super) fn remote_rehashed(
        &mut self,
        node: &Arc<str>,
        request: u64,
        server: &str,
        text: &str,
    ) {
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
        asked.answered += 1;
        let client = asked.client;
        let server_fits = !server.is_empty()
            && server.len() <= 255
            && server.bytes().all(|b| b.is_ascii_graphic());
        let server = if server_fits { server } else { node.as_ref() };
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
            let missing = asked.expected.saturating_sub(asked.answered);
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
