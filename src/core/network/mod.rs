//! This node as one of a network: what it tells the other nodes of its
//! users, and how the users of the others appear here.
//!
//! A user of another node is a [`Client`] here too, marked
//! [`Client::remote`]: NAMES, WHOIS, WHO and the nick table see it as
//! they see a local one, and nothing is ever written to its outbox (the
//! [`super::delivery`] sink skips it); its own node delivers to it. What
//! a remote user does reaches this node as an event its node already
//! allowed ([`crate::network::wire`]): this node applies it and tells its
//! own clients, in the form each asked for.
//!
//! Here: the core's view of the network and what this node tells the
//! others. Beside it: `remote.rs` (applying what the others say),
//! `accounts.rs` (logins and account changes on every node),
//! `claims.rs` (nick claims), `rooms.rs` (each room's state in the
//! bucket), `liveness.rs` (heartbeats, splits,
//! fencing), `klines.rs` (K-lines on every node), `rehash.rs` (REHASH
//! of other nodes) and `order.rs` (messages held for the event before
//! them).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

use super::{Client, ClientId, Membership, State};
use crate::network::wire::{self, Body, Envelope, To, subject};
use crate::network::{Heard, NetworkHandle};
use crate::proto::Folded;

mod accounts;
mod claims;
pub(crate) mod klines;
mod liveness;
mod order;
mod rehash;
mod remote;
mod rooms;

/// The QUIT reason of the users of a node that went silent, as users
/// know it from netsplits.
pub const SPLIT_REASON: &str = "*.net *.split";

/// The QUIT reason of a node's own users when it is cut off from the
/// network.
pub const FENCED_REASON: &str = "Lost the link to the network";

/// Where a remote user lives.
#[derive(Debug)]
pub struct Remote {
    pub node: Arc<str>,
    /// That node's boot: its claims name it.
    pub boot: u64,
    /// The name of the server it is on (its node's `[server] name`).
    pub server: Box<str>,
    /// Its id on that node.
    pub uid: u64,
}

/// Local ids of remote users start here, far above any connection's.
const FIRST_REMOTE_ID: u64 = 1 << 62;

/// The core's view of the network.
pub struct Network {
    pub link: NetworkHandle,
    /// The other nodes heard from, by name.
    nodes: HashMap<Arc<str>, Node>,
    /// Each remote user's local id, by node and uid.
    remote: HashMap<(Arc<str>, u64), ClientId>,
    next_remote: u64,
    /// Silence longer than this and a node is taken for gone.
    timeout: Duration,
    /// Rooms whose messages this node hears: those with a local member.
    listening: std::collections::HashSet<Folded>,
    /// When this node joined, or came back after losing its link: until
    /// a node timeout has passed, it may not have heard every live node.
    joined: SystemTime,
    /// Since when the link to NATS is down.
    down_since: Option<SystemTime>,
    /// When the last renewal of this node's lease that was written was
    /// sent: older than a node timeout, and the others may have split this
    /// node off. None until the first is written: a start under load may
    /// take longer than a node timeout to write it, and a node that could
    /// not has granted no nick either (claims need the same quorum).
    leased: Option<SystemTime>,
    /// Whether the last renewal failed, so the failure is logged once.
    lease_failing: bool,
    /// When a node was last split off for its silence.
    silenced: Option<SystemTime>,
    /// REHASH requests sent to the others and reloads done for them.
    rehashes: rehash::Rehashes,
    /// Every room's value in the bucket, and joins waiting for a creation.
    rooms: rooms::Rooms,
    /// Messages waiting for the event they follow.
    order: order::Order,
}

/// Another node, as last heard.
struct Node {
    boot: u64,
    heard: SystemTime,
    /// Its `[server] name`, once a heartbeat said it.
    server: String,
}

impl Network {
    pub fn new(link: NetworkHandle, timeout: Duration, joined: SystemTime) -> Network {
        Network {
            link,
            nodes: HashMap::new(),
            remote: HashMap::new(),
            next_remote: FIRST_REMOTE_ID,
            timeout,
            listening: Default::default(),
            joined,
            down_since: None,
            leased: None,
            lease_failing: false,
            silenced: None,
            rehashes: Default::default(),
            rooms: Default::default(),
            order: Default::default(),
        }
    }
}

impl State {
    /// The name of the server `client` is on.
    pub fn server_of<'a>(&'a self, client: &'a Client) -> &'a str {
        match &client.remote {
            Some(remote) => &remote.server,
            None => self.server_name(),
        }
    }

    /// The server names of the other nodes heard from, sorted: for LINKS
    /// and LUSERS.
    pub fn network_servers(&self) -> Vec<String> {
        let Some(network) = &self.network else {
            return Vec::new();
        };
        let mut servers: Vec<String> = network
            .nodes
            .values()
            .filter(|node| !node.server.is_empty())
            .map(|node| node.server.clone())
            .collect();
        servers.sort();
        servers
    }

    /// The other nodes heard from, for MAP: each one's server name, node
    /// name and number of users, sorted by server name. A node whose
    /// server name is not known yet is left out, as LINKS leaves it out.
    pub fn network_nodes(&self) -> Vec<(String, String, usize)> {
        let Some(network) = &self.network else {
            return Vec::new();
        };
        let mut users: HashMap<&str, usize> = HashMap::new();
        for (node, _) in network.remote.keys() {
            *users.entry(node).or_default() += 1;
        }
        let mut nodes: Vec<(String, String, usize)> = network
            .nodes
            .iter()
            .filter(|(_, node)| !node.server.is_empty())
            .map(|(name, node)| {
                let count = users.get(name.as_ref()).copied().unwrap_or(0);
                (node.server.clone(), name.to_string(), count)
            })
            .collect();
        nodes.sort();
        nodes
    }

    /// This node's name in its network, if it is in one.
    pub fn network_node_name(&self) -> Option<&str> {
        self.network.as_ref().map(|network| network.link.node())
    }

    /// Whether `id` is a user of this node (or no user at all).
    fn is_local(&self, id: ClientId) -> bool {
        self.clients
            .get(&id)
            .is_some_and(|client| client.remote.is_none())
    }

    /// Tells every node something a local user did.
    fn tell_network(&self, body: Body) {
        if let Some(network) = &self.network {
            network.link.publish(wire::subject::EVENTS, body);
        }
    }

    /// This node is stopping: the others split its users off now rather
    /// than after a node timeout.
    pub(super) fn network_bye(&mut self) {
        self.tell_network(Body::Bye);
        self.network_rooms_bye();
    }

    /// A local user finished registering: the other nodes learn of it.
    pub(crate) fn network_user_up(&self, id: ClientId) {
        if self.network.is_some()
            && self.is_local(id)
            && let Some(user) = self.wire_user(id)
        {
            self.tell_network(Body::User(user));
        }
    }

    /// A local user took `nick`.
    pub(crate) fn network_nick(&self, id: ClientId, nick: &str) {
        if self.network.is_some() && self.is_local(id) {
            let nick = nick.to_owned();
            self.tell_network(Body::Nick { uid: id.0, nick });
        }
    }

    /// A local client is leaving: the nick it claimed is free again.
    pub(crate) fn network_release_on_leaving(&self, id: ClientId) {
        if self.network.is_some()
            && self.is_local(id)
            && let Some(client) = self.clients.get(&id).filter(|c| !c.nick.is_empty())
        {
            self.release_nick(id, &self.fold(&client.nick));
        }
    }

    /// A registered local user is leaving.
    pub(crate) fn network_quit(&self, id: ClientId, reason: &str) {
        if self.network.is_some() && self.is_local(id) {
            let reason = reason.to_owned();
            self.tell_network(Body::Quit { uid: id.0, reason });
        }
    }

    /// A local user joined `folded`: the room's messages are heard from now
    /// on (before the other nodes learn of the join), then the nodes learn.
    pub(crate) fn network_join(&mut self, id: ClientId, folded: &Folded) {
        if !self.is_local(id) {
            return;
        }
        let Some(network) = &mut self.network else {
            return;
        };
        if network.listening.insert(folded.clone()) {
            network.link.listen(subject::room(folded.as_str()));
        }
        let Some(channel) = self.channels.get(folded) else {
            return;
        };
        let op = channel.members.get(&id).is_some_and(|m| m.op);
        let room = channel.name.clone();
        self.tell_network(Body::Join {
            uid: id.0,
            room,
            op,
        });
    }

    /// A local user left `folded` (PART, or the last of its rooms on QUIT).
    pub(crate) fn network_part(&mut self, id: ClientId, room: &str, reason: Option<&str>) {
        if self.network.is_none() || !self.is_local(id) {
            return;
        }
        let reason = reason.map(str::to_owned);
        let room = room.to_owned();
        self.tell_network(Body::Part {
            uid: id.0,
            room,
            reason,
        });
    }

    /// Stops hearing a room's messages once no local user is left in it.
    pub(crate) fn network_left(&mut self, folded: &Folded) {
        let local_left = self.channels.get(folded).is_some_and(|channel| {
            channel
                .members
                .keys()
                .any(|member| self.clients.get(member).is_some_and(|c| c.remote.is_none()))
        });
        let Some(network) = &mut self.network else {
            return;
        };
        if !local_left && network.listening.remove(folded) {
            network.link.ignore(subject::room(folded.as_str()));
            // The ring stops hearing the room's lines: with one history
            // for the network, the next local joiner is played from it.
            if self
                .history
                .as_ref()
                .is_some_and(|history| history.is_shared())
            {
                self.playback.forget(folded);
            }
        }
    }

    /// Asks the node of the remote user `victim` to kill it; false when
    /// `victim` is local (or this node is alone).
    pub(crate) fn network_kill(
        &self,
        victim: ClientId,
        by: &str,
        comment: &str,
        reason: &str,
    ) -> bool {
        let Some(remote) = self.clients.get(&victim).and_then(|c| c.remote.as_ref()) else {
            return false;
        };
        self.tell_network(Body::Kill {
            node: remote.node.to_string(),
            uid: remote.uid,
            by: by.to_owned(),
            comment: comment.to_owned(),
            reason: reason.to_owned(),
        });
        true
    }

    /// A change a local user made to a room (MODE, TOPIC, KICK) or to
    /// itself (its MODE, AWAY, SETNAME), for the other nodes to apply as
    /// the same command.
    pub(crate) fn network_command(&self, id: ClientId, command: &str, params: Vec<String>) {
        if self.network.is_some() && self.is_local(id) {
            let command = command.to_owned();
            self.tell_network(Body::Command {
                uid: id.0,
                command,
                params,
            });
        }
    }

    /// A local user's message to a room, for the nodes with members there.
    pub(crate) fn network_room_message(&self, folded: &Folded, message: wire::Message) {
        if let Some(network) = &self.network
            && self.is_local(ClientId(message.uid))
        {
            network
                .link
                .publish(&subject::room(folded.as_str()), Body::Message(message));
        }
    }

    /// A local user's message to a remote one, for that user's node.
    /// Returns whether `to` is remote (and was sent to).
    pub(crate) fn network_private_message(&self, to: ClientId, mut message: wire::Message) -> bool {
        let Some(remote) = self.clients.get(&to).and_then(|c| c.remote.as_ref()) else {
            return false;
        };
        if let Some(network) = &self.network {
            message.to = To::User { uid: remote.uid };
            network
                .link
                .publish(&subject::node(&remote.node), Body::Message(message));
        }
        true
    }

    /// What the others are told of a local user.
    fn wire_user(&self, id: ClientId) -> Option<wire::User> {
        let client = self.clients.get(&id)?;
        let rooms = client
            .channels
            .iter()
            .filter_map(|folded| {
                let channel = self.channels.get(folded)?;
                let membership = channel.members.get(&id)?;
                Some(wire::Room {
                    name: channel.name.clone(),
                    op: membership.op,
                    voice: membership.voice,
                })
            })
            .collect();
        Some(wire::User {
            uid: id.0,
            server: self.server_name().to_owned(),
            nick: client.nick.clone(),
            user: client.user.clone(),
            host: client.host.clone(),
            realname: client.realname.clone(),
            account: client.account.clone(),
            away: client.away.clone(),
            bot: client.modes.bot,
            invisible: client.modes.invisible,
            rooms,
        })
    }

    /// What the link heard from another node.
    pub(super) fn network_heard(&mut self, heard: Heard) {
        match heard {
            Heard::Envelope(envelope) => self.network_envelope(*envelope),
            Heard::Link(up) => self.network_link(up),
            Heard::Claimed {
                uid,
                nick,
                over,
                outcome,
            } => self.nick_claimed(ClientId(uid), &nick, over, outcome),
            Heard::Lease(renewal) => self.network_lease(renewal),
            Heard::RoomCreated { uid, outcome } => {
                self.network_room_created(ClientId(uid), outcome)
            }
            Heard::RoomSeen(seen) => self.network_room_seen(seen),
            Heard::RoomWritten {
                key,
                revision,
                state,
                asked,
            } => {
                let seen = crate::network::rooms::Seen {
                    key,
                    revision,
                    state: Some(state),
                    deleted: false,
                };
                self.network_room_written(seen, asked)
            }
            Heard::RoomNotWritten { key } => self.network_room_not_written(&key),
        }
    }

    /// Applies what another node said in the order it said it: a message
    /// may wait for the event before it ([`order`]); an event first lets go
    /// what was sent before it, then what waited for it.
    fn network_envelope(&mut self, envelope: Envelope) {
        self.network_overdue();
        let now = self.clock.now();
        let Some(network) = &mut self.network else {
            return;
        };
        if network.link.node() == envelope.node {
            // NATS does not echo this node's own messages: another process
            // uses its name.
            warn!(node = %envelope.node, "another process speaks as this node; check [network] node");
            return;
        }
        let node: Arc<str> = Arc::from(envelope.node.as_str());
        let Some(envelope) = network.order.admit(&node, envelope, now) else {
            return;
        };
        let seq = envelope.seq;
        let heartbeat = matches!(envelope.body, Body::Heartbeat { .. });
        if seq.is_some() {
            self.network_release(&node);
        }
        self.network_apply(envelope);
        if let Some(seq) = seq
            && let Some(network) = &mut self.network
        {
            network.order.passed(&node, seq);
        }
        if seq.is_some() || heartbeat {
            self.network_release(&node);
        }
    }

    /// Applies the messages of `node` that no longer wait.
    fn network_release(&mut self, node: &str) {
        while let Some(released) = self
            .network
            .as_mut()
            .and_then(|network| network.order.released(node))
        {
            self.network_apply(released);
        }
    }

    /// Messages that waited too long for an event that never came go
    /// anyway.
    pub(in crate::core) fn network_overdue(&mut self) {
        let now = self.clock.now();
        let Some(network) = &mut self.network else {
            return;
        };
        for envelope in network.order.overdue(now) {
            self.network_apply(envelope);
        }
    }

    fn network_apply(&mut self, envelope: Envelope) {
        self.hearing_peer = true;
        self.network_envelope_body(envelope);
        self.hearing_peer = false;
    }

    /// What another node said, applied.
    fn network_envelope_body(&mut self, envelope: Envelope) {
        let ours = self
            .network
            .as_ref()
            .is_some_and(|network| network.link.node() == envelope.node);
        if ours {
            // NATS does not echo this node's own messages: another process
            // uses its name.
            warn!(node = %envelope.node, "another process speaks as this node; check [network] node");
            return;
        }
        let node: Arc<str> = Arc::from(envelope.node.as_str());
        self.network_node_heard(&node, envelope.boot);
        match envelope.body {
            Body::Heartbeat { server } => {
                if !crate::proto::validate::is_server_name(&server) {
                    warn!(node = %node, "a node gave a server name that cannot be one");
                } else if let Some(known) =
                    self.network.as_mut().and_then(|n| n.nodes.get_mut(&node))
                {
                    known.server = server;
                }
            }
            Body::User(user) => self.remote_user(&node, user),
            Body::Nick { uid, nick } => self.remote_nick(&node, uid, &nick),
            Body::Quit { uid, reason } => {
                if let Some(id) = self.remote_id(&node, uid) {
                    self.disconnect(id, &reason);
                }
            }
            Body::Join { uid, room, op } => {
                if let Some(id) = self.remote_id(&node, uid) {
                    self.remote_join(id, &room, Membership { op, voice: false });
                }
            }
            Body::Part { uid, room, reason } => {
                if let Some(id) = self.remote_id(&node, uid) {
                    crate::core::commands::part::part_one(self, id, &room, reason.as_deref());
                }
            }
            Body::Message(message) => self.remote_message(&node, message),
            Body::Bye => {
                info!(node = %node, "node stopped");
                if let Some(network) = &mut self.network {
                    network.nodes.remove(&node);
                    network.order.end(&node);
                }
                self.network_split(&node, SPLIT_REASON);
            }
            Body::Kill {
                node: target,
                uid,
                by,
                comment,
                reason,
            } => {
                let ours = self
                    .network
                    .as_ref()
                    .is_some_and(|network| network.link.node() == target);
                if ours && self.is_local(ClientId(uid)) {
                    crate::core::commands::kill::kill_local(
                        self,
                        ClientId(uid),
                        &by,
                        &comment,
                        &reason,
                    );
                }
            }
            Body::Command {
                uid,
                command,
                params,
            } => {
                if let Some(id) = self.remote_id(&node, uid) {
                    self.remote_command(id, command, params);
                }
            }
            Body::Kline(kline) => self.remote_kline(&node, kline),
            Body::Unkline { mask } => self.remote_unkline(&node, &mask),
            Body::Klines { lines } => self.remote_klines(&node, lines),
            Body::Rehash { mask, request, by } => self.remote_rehash(&node, &mask, request, &by),
            // The answering node is named by its envelope, not by the
            // server name it gives.
            Body::Rehashed {
                request,
                server: _,
                text,
            } => self.remote_rehashed(&node, request, &text),
            Body::Login { uid, account } => self.remote_login(&node, uid, account),
            Body::Account(change) => self.remote_account(&node, change),
        }
    }

    fn remote_id(&self, node: &Arc<str>, uid: u64) -> Option<ClientId> {
        let network = self.network.as_ref()?;
        network.remote.get(&(Arc::clone(node), uid)).copied()
    }

    /// A remote user left this node's view: its id is free again.
    pub(super) fn network_forget(&mut self, client: &Client) {
        if let (Some(remote), Some(network)) = (&client.remote, &mut self.network) {
            network
                .remote
                .remove(&(Arc::clone(&remote.node), remote.uid));
        }
    }
}
