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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

use super::broadcast::Broadcast;
use super::caps::Caps;
use super::{Channel, ChannelModes, Client, ClientId, Membership, Refusal, State};
use crate::history::{HistoryTarget, NewRecord};
use crate::net::Outbox;
use crate::network::wire::{self, Body, Envelope, To, subject};
use crate::network::{Claimed, Heard, Holder, NetworkHandle};
use crate::proto::{Folded, Line};
use crate::proto::{modes, numeric};

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

/// The most bytes of client-only tags a message from another node may
/// carry: what one from a client may.
const MAX_TAGS: usize = crate::proto::framing::MAX_TAGS;

/// A peer's msgid, if it is one a client can be shown: a short word of
/// printable ASCII without spaces or `;` (tag syntax); a fresh one
/// otherwise.
fn clean_msgid(msgid: &str) -> String {
    let fits = !msgid.is_empty()
        && msgid.len() <= 64
        && msgid
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b'\\');
    if fits {
        msgid.to_owned()
    } else {
        format!("x-{:016x}", rand_u64())
    }
}

/// A random number for an id that must not collide.
fn rand_u64() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u64::from_le_bytes(bytes)
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
    pub(super) fn network_bye(&self) {
        self.tell_network(Body::Bye);
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

    /// A room change made on another node, applied here as its user's
    /// command: its node checked it, and this node's view of the room
    /// agrees (the same changes reached it in the same order). Refusals go
    /// to the remote user, that is nowhere.
    fn remote_command(&mut self, id: ClientId, command: String, params: Vec<String>) {
        let message = crate::proto::Message {
            command,
            params,
            ..Default::default()
        };
        use super::commands::{away, kick, mode, setname, topic};
        let _ = match message.command.as_str() {
            "MODE" => mode::mode(self, id, &message),
            "TOPIC" => topic::topic(self, id, &message),
            "KICK" => kick::kick(self, id, &message),
            "AWAY" => away::away(self, id, &message),
            "SETNAME" => setname::setname(self, id, &message),
            other => {
                warn!(command = ?other, "a node sent a command this node does not take from others");
                Ok(())
            }
        };
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
        }
    }

    /// Claims `wanted` network-wide for the local client `id`, which waits
    /// for the answer ([`Heard::Claimed`]).
    pub(crate) fn claim_nick(
        &mut self,
        id: ClientId,
        wanted: &str,
        folded: &Folded,
        over: Option<u64>,
    ) {
        let Some(network) = &self.network else {
            return;
        };
        network.link.claim(id.0, wanted, folded.as_str(), over);
        self.wait_off_core(id);
    }

    /// Gives up the claim of `id` on the nick `folded`: a local user left
    /// it, or a user of a node that is gone.
    pub(crate) fn release_nick(&self, id: ClientId, folded: &Folded) {
        let (Some(network), Some(client)) = (&self.network, self.clients.get(&id)) else {
            return;
        };
        let holder = match &client.remote {
            None => network.link.holder(id.0),
            Some(remote) => crate::network::Holder {
                node: remote.node.to_string(),
                boot: remote.boot,
                uid: remote.uid,
            },
        };
        network.link.release(folded.as_str(), holder);
    }

    /// The answer to the claim of `id` on `nick`: taken, refused (433, or
    /// 437 when the claims cannot be reached), or held by a node that is
    /// gone, whose claim is then taken over once.
    fn nick_claimed(&mut self, id: ClientId, nick: &str, over: Option<u64>, outcome: Claimed) {
        let folded = self.fold(nick);
        if !self.clients.contains_key(&id) {
            // The client left while its claim was out.
            if let (Claimed::Granted, Some(network)) = (&outcome, &self.network) {
                network
                    .link
                    .release(folded.as_str(), network.link.holder(id.0));
            }
            return;
        }
        let refusal = match outcome {
            Claimed::Granted => None,
            // Held by this very client (a release of it may be on its way,
            // or gone, or not) or by a holder that is gone: taken over at
            // the revision read, so a release in flight cannot delete it.
            Claimed::Held { holder, revision }
                if over.is_none()
                    && !holder
                        .as_ref()
                        .is_some_and(|h| !self.holds(h, id) && self.holder_alive(h)) =>
            {
                // The create found a claim, which a copy read just after did
                // not show yet (the bucket's copies agree a moment later):
                // someone holds the nick.
                if revision == 0 {
                    Some(Refusal::new(numeric::ERR_NICKNAMEINUSE, &[nick]))
                } else {
                    if let Some(network) = &self.network {
                        network
                            .link
                            .claim(id.0, nick, folded.as_str(), Some(revision));
                    }
                    return;
                }
            }
            Claimed::Held { .. } => Some(Refusal::new(numeric::ERR_NICKNAMEINUSE, &[nick])),
            Claimed::Failed(reason) => {
                warn!(%reason, "a nick claim failed");
                Some(Refusal::new(numeric::ERR_UNAVAILRESOURCE, &[nick]))
            }
        };
        let nick = nick.to_owned();
        self.resume(id, move |state| match refusal {
            Some(refusal) => state.refuse(id, refusal),
            None => state.nick_granted(id, &nick),
        });
    }

    /// The network granted `nick` to `id`: it takes it, unless a user
    /// shown here took it meanwhile.
    fn nick_granted(&mut self, id: ClientId, nick: &str) {
        let folded = self.fold(nick);
        if self.nicks.get(&folded).is_some_and(|&holder| holder != id) {
            self.release_nick_of(id, &folded);
            self.refuse(id, Refusal::new(numeric::ERR_NICKNAMEINUSE, &[nick]));
            return;
        }
        super::commands::registration::take_nick(self, id, nick);
    }

    /// Releases the claim `id` made on `folded` but did not take.
    fn release_nick_of(&self, id: ClientId, folded: &Folded) {
        if let Some(network) = &self.network {
            network
                .link
                .release(folded.as_str(), network.link.holder(id.0));
        }
    }

    /// Whether `holder` is the local client `id` itself.
    fn holds(&self, holder: &Holder, id: ClientId) -> bool {
        self.network.as_ref().is_some_and(|network| {
            holder.node == network.link.node()
                && holder.boot == network.link.boot()
                && holder.uid == id.0
        })
    }

    /// Whether the claim of `holder` still stands: a user of this node's
    /// present boot who is still here, or any user of a node heard from in
    /// its present boot (it gives up its users' claims itself). A node not
    /// heard from is only taken for gone once this node has listened for a
    /// node timeout.
    fn holder_alive(&self, holder: &Holder) -> bool {
        let Some(network) = &self.network else {
            return true;
        };
        if holder.node == network.link.node() {
            return holder.boot == network.link.boot()
                && self.clients.contains_key(&ClientId(holder.uid));
        }
        if let Some(node) = network.nodes.get(holder.node.as_str()) {
            // A newer boot than the one heard is a restart not heard yet.
            return holder.boot >= node.boot;
        }
        let now = self.clock.now();
        now.duration_since(network.joined)
            .is_ok_and(|listened| listened <= network.timeout)
    }

    fn network_envelope(&mut self, envelope: Envelope) {
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
                if let Some(known) = self.network.as_mut().and_then(|n| n.nodes.get_mut(&node)) {
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
                    super::commands::part::part_one(self, id, &room, reason.as_deref());
                }
            }
            Body::Message(message) => self.remote_message(&node, message),
            Body::Bye => {
                info!(node = %node, "node stopped");
                if let Some(network) = &mut self.network {
                    network.nodes.remove(&node);
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
                    super::commands::kill::kill_local(self, ClientId(uid), &by, &comment, &reason);
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
        }
    }

    fn remote_id(&self, node: &Arc<str>, uid: u64) -> Option<ClientId> {
        let network = self.network.as_ref()?;
        network.remote.get(&(Arc::clone(node), uid)).copied()
    }

    /// Notes that `node` (in its boot `boot`) is alive. A node first heard,
    /// or heard in a new boot, is sent every local user: it joined late,
    /// or it restarted and lost what it knew. A new boot also ends the
    /// users of the old one.
    fn network_node_heard(&mut self, node: &Arc<str>, boot: u64) {
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
    }

    /// Whether the link to NATS is down: no nick can be claimed.
    pub(crate) fn network_is_down(&self) -> bool {
        self.network
            .as_ref()
            .is_some_and(|network| network.down_since.is_some())
    }

    /// The link to NATS went down or came back.
    fn network_link(&mut self, up: bool) {
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

    /// A node cut off from the network longer than a node timeout has been
    /// split off by the others, which may have given its users' nicks to
    /// someone else: it disconnects its own users, so that no nick is held
    /// twice (fencing). New ones cannot register until the link is back:
    /// their nick claims fail.
    fn network_fence(&mut self) {
        let now = self.clock.now();
        let Some(network) = &self.network else {
            return;
        };
        let cut_off = network.down_since.is_some_and(|since| {
            now.duration_since(since)
                .is_ok_and(|down| down > network.timeout)
        });
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
    pub(super) fn network_expire(&mut self) {
        self.network_fence();
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
            }
            self.network_split(&node, SPLIT_REASON);
        }
    }

    /// Every user of `node` leaves with `reason`.
    fn network_split(&mut self, node: &Arc<str>, reason: &str) {
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

    /// A remote user left this node's view: its id is free again.
    pub(super) fn network_forget(&mut self, client: &Client) {
        if let (Some(remote), Some(network)) = (&client.remote, &mut self.network) {
            network
                .remote
                .remove(&(Arc::clone(&remote.node), remote.uid));
        }
    }

    /// A user of another node, introduced or (in a burst) repeated.
    fn remote_user(&mut self, node: &Arc<str>, user: wire::User) {
        if self.remote_id(node, user.uid).is_some() {
            return;
        }
        if !self.acceptable_user(&user) {
            warn!(node = %node, nick = ?user.nick, "a node introduced a user this node would not accept; not shown");
            return;
        }
        let folded = self.fold(&user.nick);
        if let Some(&holder) = self.nicks.get(&folded) {
            warn!(node = %node, nick = ?user.nick, ?holder, "a remote user's nick is taken here; not shown");
            return;
        }
        let Some(network) = &mut self.network else {
            return;
        };
        let id = ClientId(network.next_remote);
        network.next_remote += 1;
        network.remote.insert((Arc::clone(node), user.uid), id);
        let now = self.clock.now();
        let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        // Its outbox is never written: the sink skips remote users.
        let mut client = Client::new(id, Arc::new(Outbox::new(0)), ip, now);
        let boot = network.nodes.get(node).map_or(0, |known| known.boot);
        client.remote = Some(Box::new(Remote {
            node: Arc::clone(node),
            boot,
            server: user.server.into(),
            uid: user.uid,
        }));
        client.nick = user.nick;
        client.user = user.user;
        client.host = user.host.clone();
        client.real_host = user.host;
        client.realname = user.realname;
        client.account = user.account;
        client.modes.registered = client.account.is_some();
        client.modes.bot = user.bot;
        client.modes.invisible = user.invisible;
        client.away = user.away;
        client.registered = true;
        client.password_ok = true;
        client.update_source();
        self.clients.insert(id, Box::new(client));
        self.nicks.insert(folded, id);
        self.monitor_online(id);
        for room in user.rooms {
            let membership = Membership {
                op: room.op,
                voice: room.voice,
            };
            self.remote_join(id, &room.name, membership);
        }
    }

    fn remote_nick(&mut self, node: &Arc<str>, uid: u64, nick: &str) {
        let Some(id) = self.remote_id(node, uid) else {
            return;
        };
        if !crate::proto::validate::is_valid_nick(nick, self.config.limits.nick_length) {
            warn!(node = %node, nick = ?nick, "a node sent a nick this node would refuse");
            return;
        }
        let folded = self.fold(nick);
        if self.nicks.get(&folded).is_some_and(|&holder| holder != id) {
            warn!(node = %node, nick = ?nick, "a remote user's new nick is taken here");
            return;
        }
        super::commands::registration::force_nick(self, id, nick);
    }

    /// Whether a user another node introduced passes the checks a local
    /// one does: a valid nick that is not a service's, and names within
    /// the limits, without spaces where IRC cannot carry them.
    fn acceptable_user(&self, user: &wire::User) -> bool {
        let limits = &self.config.limits;
        let word = |text: &str, max: usize| {
            !text.is_empty()
                && text.len() <= max
                && !text.contains([' ', '\0', '\r', '\n', '@', '!'])
        };
        crate::proto::validate::is_valid_nick(&user.nick, limits.nick_length)
            && !super::commands::nickserv::is_service(self, &user.nick)
            && !super::commands::chanserv::is_service(self, &user.nick)
            && word(&user.user, limits.user_length + 1)
            && word(&user.host, 255)
            && user.realname.len() <= limits.realname_length
            && !user.realname.contains(['\0', '\r', '\n'])
            && user.server.len() <= 255
            && !user.server.contains([' ', '\0', '\r', '\n'])
            && user.rooms.len() <= limits.channels_per_client
    }

    /// A remote user enters a room, which its node let it into: created
    /// here when this node had no one in it.
    fn remote_join(&mut self, id: ClientId, name: &str, membership: Membership) {
        let valid = crate::proto::validate::is_channel_name(name)
            && name.len() <= self.config.limits.channel_length
            && !name.contains([' ', ',', '\x07', '\0', '\r', '\n']);
        if !valid {
            warn!(room = ?name, "a node sent a join to a room name this node would refuse");
            return;
        }
        let folded = self.fold(name);
        if self
            .channels
            .get(&folded)
            .is_some_and(|channel| channel.members.contains_key(&id))
        {
            return;
        }
        let now = self.clock.now();
        let default_modes = ChannelModes::from_flags(&self.config.channels.default_modes);
        self.channels.entry(folded.clone()).or_insert_with(|| {
            let mut channel = Channel::new(name, now);
            channel.modes = default_modes;
            channel
        });
        self.add_member(id, &folded, membership);
        super::commands::join::announce(self, id, &folded);
    }

    /// The origin's time of a message, if it is within a day of this
    /// node's clock; this node's time otherwise (a clock that far off, or
    /// a forged time, must not reach clients or history).
    fn plausible_time(&self, millis: i64) -> SystemTime {
        let now = self.clock.now();
        let day = Duration::from_secs(24 * 60 * 60);
        let time = SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_millis(millis.max(0).unsigned_abs()))
            .unwrap_or(now);
        let near = |a: SystemTime, b: SystemTime| a.duration_since(b).is_ok_and(|d| d <= day);
        if near(time, now) || near(now, time) {
            time
        } else {
            now
        }
    }

    /// A message's client-only tags as a peer sent them, read as a client's
    /// would be: parsed, only `+` tags this server relays, escaped again,
    /// and within the size a client may send.
    fn clean_tags(&self, tags: Option<&str>) -> Option<String> {
        let tags = tags.filter(|tags| !tags.is_empty() && tags.len() <= MAX_TAGS)?;
        let line = format!("@{tags} TAGMSG");
        let parsed = crate::proto::message::parse(&line).ok()?.to_owned();
        let deny = &self.config.server.client_tag_deny;
        crate::proto::tags::client_only_tags(&parsed.tags, |name| {
            super::isupport::client_tag_denied(deny, name)
        })
    }

    /// A message from a user of another node, to a room here or to a
    /// local user: shown as its node made it, same msgid and time.
    fn remote_message(&mut self, node: &Arc<str>, message: wire::Message) {
        let Some(sender) = self.remote_id(node, message.uid) else {
            return;
        };
        let Some(client) = self.clients.get(&sender) else {
            return;
        };
        let (source, account, bot) = (
            client.source.clone(),
            client.account.clone(),
            client.modes.bot,
        );
        // Only messages travel this way; anything else would put a line
        // of the peer's choosing in front of local clients.
        if !matches!(message.command.as_str(), "PRIVMSG" | "NOTICE" | "TAGMSG") {
            warn!(node = %node, command = ?message.command, "a node sent a message of an unknown kind");
            return;
        }
        let has_text = message.command != "TAGMSG";
        let (target, to_room) = match &message.to {
            To::Room { target } => (target.clone(), true),
            To::User { uid } => {
                let Some(to) = self.clients.get(&ClientId(*uid)) else {
                    return;
                };
                (to.nick.clone(), false)
            }
        };
        let line = Line::new(Some(&source), &message.command).arg(&target);
        let line = if has_text {
            line.trailing(&message.text)
        } else {
            line
        };
        let time = self.plausible_time(message.time);
        let tags = self.clean_tags(message.tags.as_deref());
        let msgid = clean_msgid(&message.msgid);
        let mut event = Broadcast::new(line.finish(), time)
            .with_msgid(msgid)
            .with_client_tags(tags)
            .with_bot(bot)
            .with_account(account.clone());
        let wanted = move |caps: Caps| has_text || caps.contains(Caps::MESSAGE_TAGS);
        if !to_room {
            if let To::User { uid } = message.to {
                let to = ClientId(uid);
                if self.is_local(to) && self.clients.get(&to).is_some_and(|c| wanted(c.caps)) {
                    let reached = self.send_all([to], &mut event);
                    self.metrics.delivered(reached);
                }
            }
            return;
        }
        let name = target.trim_start_matches(modes::is_status_symbol);
        let prefixes = &target[..target.len() - name.len()];
        let folded = self.fold(name);
        let Some(display) = self.channels.get(&folded).map(|c| c.name.clone()) else {
            return;
        };
        if prefixes.is_empty() && message.history {
            let record = NewRecord {
                target: HistoryTarget::Room(folded.clone()),
                display: &display,
                sender: &source,
                account: account.as_deref(),
                command: &message.command,
                text: &message.text,
            };
            let gate = self.record_history(record, &event);
            event.set_gate(gate);
        }
        let lowest = modes::status_modes()
            .filter(|mode| prefixes.contains(mode.symbol))
            .last();
        let reached = self.send_to_members(&folded, &mut event, |member, membership| {
            wanted(member.caps) && lowest.is_none_or(|mode| membership.at_least(mode.status))
        });
        self.metrics.delivered(reached);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::Harness;

    #[test]
    fn a_peers_tags_are_parsed_filtered_and_escaped_again() {
        let h = Harness::new();
        let forged = "+a=x\r\n:forged 001 alice :hi;server-tag=1";
        let cleaned = h.state.clean_tags(Some(forged));
        assert!(
            cleaned
                .as_deref()
                .is_none_or(|tags| !tags.contains(['\r', '\n', ' '])),
            "{cleaned:?}"
        );
        let cleaned = h.state.clean_tags(Some("+draft/react=a\\sb;time=x"));
        assert_eq!(cleaned.as_deref(), Some("+draft/react=a\\sb"));
        let huge = format!("+a={}", "x".repeat(MAX_TAGS));
        assert_eq!(h.state.clean_tags(Some(&huge)), None);
    }

    #[test]
    fn a_time_far_from_this_nodes_clock_is_replaced_by_it() {
        let h = Harness::new();
        let now = h.state.clock.now();
        let now_ms = crate::history::millis(now);
        assert_eq!(
            h.state.plausible_time(now_ms - 1_000),
            SystemTime::UNIX_EPOCH + Duration::from_millis((now_ms - 1_000) as u64)
        );
        assert_eq!(h.state.plausible_time(9_000_000_000_000_000_000), now);
        assert_eq!(h.state.plausible_time(-5), now);
    }

    #[test]
    fn a_msgid_that_is_no_word_is_replaced() {
        assert_eq!(clean_msgid("a-1_x"), "a-1_x");
        for bad in ["", "a b", "a;b", "a\\b", &"x".repeat(65)] {
            let fresh = clean_msgid(bad);
            assert!(
                fresh.starts_with("x-") && fresh.len() == 18,
                "{bad:?} → {fresh}"
            );
        }
    }
}
