//! The state machine: every client, nick and channel, and the one entry
//! point for events. Its helpers live by concern in sibling files:
//! `delivery.rs` (sending and fan-out), `replies.rs` (numerics and FAIL),
//! `labeled.rs` (capturing a labeled command's replies), `disconnect.rs`
//! (clients leaving) and `whowas.rs` (remembering nicks).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;

use super::broadcast::Broadcast;
use super::cloak::{self, Cloak};
use super::commands::{chathistory, oper, redact, rehash};
use super::delivery::Sink;
use super::hold::Input;
use super::read_markers::AccountReadMarkers;
use super::reservation::Reservations;
use super::seen::AccountMarks;
use super::whowas::Whowas;
use super::{
    AdminState, Channel, Client, ClientId, Clock, Event, IdMap, IdSet, Membership, bans, isupport,
    login,
};
use crate::config::Config;
use crate::history::ring::PlaybackRings;
use crate::history::{self, HistoryHandle, HistoryTarget, NewRecord, Preload};
use crate::metrics::Metrics;
use crate::net::Gate;
use crate::net::{ConnectionEvent, EXCESS_FLOOD};
use crate::proto::AddressKey;
use crate::proto::Folded;

/// Everything the server knows; owned by the core task alone.
pub struct State {
    pub config: Arc<Config>,
    /// 005 lines, built once per configuration.
    pub isupport: Vec<String>,
    /// Boxed: a table sized for thousands of clients holds pointers in its
    /// spare slots, not a whole `Client` (about 1 KiB) each.
    pub clients: IdMap<Box<Client>>,
    pub nicks: HashMap<Folded, ClientId>,
    pub channels: HashMap<Folded, Channel>,
    pub created: SystemTime,
    /// The most clients seen at once, for 265/266.
    pub max_clients_seen: usize,
    pub clock: Box<dyn Clock>,
    /// Nicks that were dropped or changed, for WHOWAS.
    pub whowas: Whowas,
    /// Server bans, failed OPERs, and the link to the admin worker.
    pub admin: AdminState,
    /// MONITOR, inverted: each watched nick (folded) and who watches it.
    pub monitors: HashMap<Folded, IdSet>,
    /// Where room events are recorded, when history is enabled.
    pub history: Option<HistoryHandle>,
    /// Each room's last lines, for playback on join: loaded at startup
    /// ([`State::seed_playback`]) and appended to as lines are recorded.
    pub playback: PlaybackRings,
    /// Rooms whose playback is being read from a shared store (no ring
    /// here yet), each with the members who joined meanwhile and wait for
    /// it; at most one read per room at a time.
    pub playback_loads: HashMap<Folded, Vec<ClientId>>,
    /// Whether the core is applying what another node of the network said:
    /// a room event it re-runs here (a join, a mode change) was stored by
    /// that node already when the history is one for the network.
    pub(crate) hearing_peer: bool,
    /// How far each account was shown each room's playback, on any of its
    /// connections.
    pub account_seen: AccountMarks,
    /// The core's own inbox, for answers that arrive later (history
    /// queries run on the history reader thread).
    pub inbox: Option<mpsc::Sender<Event>>,
    /// Where lines go besides the outboxes: the labeled capture, the
    /// overflowed clients, the outboxes owed a release.
    pub(super) sink: Sink,
    /// The label of the command running, while labeled.
    pub(super) label: Option<String>,
    /// What others see instead of clients' addresses, when cloaking is on.
    pub cloak: Option<Cloak>,
    /// When (ms) a room was last destroyed, and a nick last given up: a
    /// room or nick starting in that same millisecond starts its history
    /// one later ([`super::history_access::starting_floor`]).
    pub(super) room_ended_ms: i64,
    pub(super) nick_ended_ms: i64,
    /// Which account owns each registered nick, and when clients using
    /// one without logging in are renamed.
    pub reservations: Reservations,
    /// Every account's read markers (draft/read-marker).
    pub read_markers: AccountReadMarkers,
    /// The figures `/metrics` shows, shared with the tasks that serve it.
    pub metrics: Arc<Metrics>,
    /// The other nodes, when this one is part of a network.
    pub network: Option<Box<super::network::Network>>,
    /// Makes message ids unique across restarts: the start time.
    msgid_prefix: String,
    msgid_counter: u64,
}

impl State {
    pub fn new(config: Arc<Config>, clock: Box<dyn Clock>) -> State {
        let created = clock.now();
        let whowas = Whowas::new(config.limits.whowas_entries);
        let admin = AdminState::for_config(&config);
        let cloaking = &config.cloaking;
        let cloak = cloaking.enabled.then(|| {
            // The server fills the secret in from its file; without one
            // (a core run without a server) the cloaks last one run.
            let secret = match cloaking.secret.as_str() {
                "" => cloak::random_secret(),
                secret => secret.to_owned(),
            };
            Cloak::new(&secret, &cloaking.suffix, config.limits.ipv6_prefix_bits)
        });
        State {
            cloak,
            isupport: isupport::isupport_tokens(&config),
            config,
            clients: IdMap::default(),
            nicks: HashMap::new(),
            channels: HashMap::new(),
            created,
            max_clients_seen: 0,
            whowas,
            monitors: HashMap::new(),
            msgid_prefix: format!(
                "{:x}",
                created
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis())
            ),
            msgid_counter: 0,
            clock,
            admin,
            history: None,
            playback: PlaybackRings::default(),
            playback_loads: HashMap::new(),
            hearing_peer: false,
            account_seen: AccountMarks::default(),
            inbox: None,
            sink: Sink::default(),
            label: None,
            room_ended_ms: i64::MIN,
            nick_ended_ms: i64::MIN,
            reservations: Reservations::default(),
            read_markers: AccountReadMarkers::default(),
            metrics: Metrics::new(),
            network: None,
        }
        .with_persistent_rooms()
    }

    /// Creates the `[[room]]`s of the configuration.
    fn with_persistent_rooms(mut self) -> State {
        let now = self.clock.now();
        let server = self.config.server.name.clone();
        for room in &self.config.room {
            let mut channel = Channel::new(&room.name, now);
            let modes = room
                .modes
                .as_deref()
                .unwrap_or(&self.config.channels.default_modes);
            channel.modes = super::ChannelModes::from_flags(modes);
            channel.persistent = true;
            channel.history = room.history;
            // Until the database says when the name became standing
            // (`State::set_standing_since`); without history it is moot.
            channel.history_floor = i64::MIN;
            if !room.topic.is_empty() {
                channel.topic = Some(super::Topic {
                    text: room.topic.clone(),
                    set_by: server.clone(),
                    set_at: now,
                });
            }
            let folded = self.config.server.casemapping.fold(&room.name);
            self.channels.insert(folded, channel);
        }
        self
    }

    /// Starts each standing room's history when the database says it
    /// became one (casefolded name to milliseconds), instead of at the
    /// beginning of time: a name that was an ad-hoc room before reads
    /// nothing of it.
    pub fn set_standing_since(&mut self, since: &HashMap<String, i64>) {
        for (name, channel) in &mut self.channels {
            if let (true, Some(&since)) = (channel.persistent, since.get(name.as_str())) {
                channel.history_floor = since;
            }
        }
    }

    /// Fills the playback rings with what the store held at startup.
    pub fn seed_playback(&mut self, preload: Preload) {
        self.playback = PlaybackRings::new(self.config.history.playback_lines, preload);
    }

    /// Applies one event, then drops every client that overflowed meanwhile.
    pub fn handle(&mut self, event: Event) {
        match event {
            Event::Connection(ConnectionEvent::Connected {
                id,
                outbox,
                peer,
                secure,
                certificate,
                websocket,
            }) => {
                let mut client = Client::new(id, outbox, peer.ip(), self.clock.now());
                client.secure = secure;
                client.certificate = certificate;
                client.websocket = websocket;
                if let Some(cloak) = &self.cloak {
                    client.host = cloak.host(peer.ip());
                }
                self.clients.insert(id, Box::new(client));
                bans::refuse_if_dlined(self, id);
            }
            Event::Connection(ConnectionEvent::Message { id, message }) => {
                self.metrics.line_received();
                self.input(id, Input::Message(message))
            }
            Event::Connection(ConnectionEvent::InputTooLong { id }) => {
                self.input(id, Input::TooLong)
            }
            Event::Connection(ConnectionEvent::Closed { id, reason }) => {
                if reason == EXCESS_FLOOD && self.clients.contains_key(&id) {
                    self.metrics.flood_disconnect();
                }
                self.disconnect(id, &reason)
            }
            Event::Rehash { requested_by } => rehash::start(self, requested_by),
            Event::Reloaded {
                requested_by,
                outcome,
            } => rehash::finished(self, requested_by, outcome),
            Event::OperChecked { id, oper, valid } => oper::checked(self, id, &oper, valid),
            Event::AccountAnswered {
                id,
                purpose,
                outcome,
            } => login::answered(self, id, purpose, outcome),
            Event::MetadataLoaded {
                id,
                account,
                values,
            } => super::metadata::loaded(self, id, &account, values),
            Event::HistoryAnswered(answer) => chathistory::answered(self, *answer),
            Event::PlaybackLoaded(loaded) => super::playback::loaded(self, *loaded),
            Event::RedactFound(found) => redact::found(self, *found),
            Event::HistoryHealth { degraded } => self.history_health(degraded),
            Event::Network(heard) => self.network_heard(heard),
            Event::Tick => {
                self.expire_guest_deadlines();
                self.network_expire();
                super::jobs::save_unsaved_bans(self);
            }
            Event::Shutdown => self.shutdown(),
        }
        while let Some(id) = self.sink.overflowed.pop() {
            if self.clients.contains_key(&id) {
                self.metrics.sendq_exceeded();
            }
            self.disconnect(id, "SendQ exceeded");
        }
    }

    /// Tells the operators online that history stopped (or resumed) being
    /// written; the writer has logged it already.
    fn history_health(&mut self, degraded: bool) {
        let file = self.config.history.path.display();
        let text = if degraded {
            format!(
                "History cannot be written to {file} (disk full?): lines are delivered but not stored until a write succeeds"
            )
        } else {
            format!("History is written to {file} again")
        };
        self.notice_operators(&text);
    }

    /// The casefolded form of a nick or channel name.
    pub fn fold(&self, name: &str) -> Folded {
        self.config.server.casemapping.fold(name)
    }

    /// The registered client using the nick `folded`: a message or invite
    /// target, or a MONITOR entry that is online.
    pub fn registered_client(&self, folded: &Folded) -> Option<&Client> {
        self.nicks
            .get(folded)
            .and_then(|id| self.clients.get(id))
            .map(|client| &**client)
            .filter(|client| client.registered)
    }

    pub fn server_name(&self) -> &str {
        &self.config.server.name
    }

    /// A message id unique across restarts.
    /// Joins a network as `node`: message ids name the node, so no two
    /// nodes make the same.
    pub fn join_network(&mut self, network: super::network::Network) {
        self.msgid_prefix = format!("{}-{}", network.link.node(), self.msgid_prefix);
        self.network = Some(Box::new(network));
    }

    pub fn next_msgid(&mut self) -> String {
        self.msgid_counter += 1;
        format!("{}-{}", self.msgid_prefix, self.msgid_counter)
    }

    /// A batch reference, unique on this server.
    pub fn next_batch_id(&mut self) -> String {
        self.msgid_counter += 1;
        format!("b{}", self.msgid_counter)
    }

    /// Records a room event or a private message in history, and returns
    /// the gate its lines must carry: the record reaching the journal, or
    /// the database under `sync = "full"` (none when history is off or the
    /// record was dropped). The record carries the event's own msgid
    /// and time, so what history plays back is what the members saw. A
    /// room line that was queued for the disk also joins the room's
    /// playback ring; one dropped from a stalled queue does not, so
    /// playback never shows what is not stored.
    pub fn record_history(&mut self, new: NewRecord<'_>, event: &Broadcast) -> Gate {
        let Some(history) = &self.history else {
            return Gate::NONE;
        };
        // A message keeps its origin's msgid, so every node may store it
        // (one row each line); a room event re-run here gets a new one.
        let peers_event = !matches!(new.command, "PRIVMSG" | "NOTICE" | "TAGMSG");
        if self.hearing_peer && peers_event && history.is_shared() {
            return Gate::NONE;
        }
        let gate = if history.has_journal() {
            Gate::journal
        } else {
            Gate::store
        };
        let msgid = event
            .msgid()
            .map_or_else(|| history.next_msgid(), str::to_owned);
        let mut record = new.stamped(msgid, history::millis(event.time()));
        record.tags = history::storable_tags(event.client_tags());
        record.prepare(event.is_multiline());
        if let HistoryTarget::Private(..) = record.target {
            return gate(history.record(record));
        }
        let seq = history.record(record.clone());
        if seq != 0 {
            self.playback.push(record, seq);
        }
        gate(seq)
    }

    /// Puts `id` into an existing room on both sides: the room lists the
    /// member (and when it joined), the client lists the room.
    pub(crate) fn add_member(&mut self, id: ClientId, channel: &Folded, membership: Membership) {
        let now = self.clock.now();
        let (Some(room), Some(client)) =
            (self.channels.get_mut(channel), self.clients.get_mut(&id))
        else {
            return;
        };
        room.add_member(id, membership, now);
        client.channels.insert(channel.clone());
    }

    /// Takes `id` out of a room on both sides (only the room's, once the
    /// client is gone); a room left empty disappears unless it is a
    /// persistent `[[room]]`. The client, and its account, has seen the
    /// room's lines up to now, so a rejoin plays back none of them again.
    pub fn remove_member(&mut self, id: ClientId, channel: &Folded) {
        let remote = self.clients.get(&id).is_some_and(|c| c.remote.is_some());
        self.leave_room(id, channel, remote);
    }

    /// [`State::remove_member`] for a member that may be gone from the
    /// client table already; `remote` says whether it was another node's.
    pub(super) fn leave_room(&mut self, id: ClientId, channel: &Folded, remote: bool) {
        let seen = self.playback.last();
        self.account_saw(id, std::slice::from_ref(channel));
        if let Some(client) = self.clients.get_mut(&id) {
            client.channels.remove(channel);
            client.playback_seen.remember(channel, seen);
        }
        if let Some(room) = self.channels.get_mut(channel)
            && room.remove_member(id)
        {
            self.destroy_room(channel);
            if self.network.is_some() && !remote {
                self.network_room_emptied(channel);
            }
        }
        // A remote member leaving changes nothing of what this node hears.
        if self.network.is_some() && !remote {
            self.network_left(channel);
        }
    }

    /// `id`'s account, if it is logged in, has seen `rooms` up to now: a
    /// connection of it joining later is not played those lines.
    pub fn account_saw(&mut self, id: ClientId, rooms: &[Folded]) {
        let Some(account) = self.clients.get(&id).and_then(|c| c.account.as_deref()) else {
            return;
        };
        let (account, seen) = (self.fold(account), self.playback.last());
        for room in rooms {
            self.account_seen.remember(&account, room, seen);
        }
    }

    /// What the per-address limits count `ip` by.
    pub fn address_key(&self, ip: std::net::IpAddr) -> AddressKey {
        AddressKey::new(ip, self.config.limits.ipv6_prefix_bits)
    }

    /// Removes an emptied room, and its playback ring with it: a room
    /// created later under the name is another incarnation.
    pub fn destroy_room(&mut self, channel: &Folded) {
        self.channels.remove(channel);
        shrink_if_sparse(&mut self.channels);
        self.playback.forget(channel);
        self.room_ended_ms = history::millis(self.clock.now());
    }

    /// Registered clients, for LUSERS.
    pub fn registered_count(&self) -> usize {
        self.clients
            .values()
            .filter(|client| client.registered)
            .count()
    }
}

/// Tables this small keep their room: shrinking them would save little.
const SHRINK_ABOVE: usize = 64;

/// Gives back most of a table's room once it holds under a quarter of what
/// it has room for, so the capacity a load grew it to goes with the load.
/// Halving at a quarter full keeps the cost of a remove constant on average.
pub(super) fn shrink_if_sparse<K, V, S>(table: &mut HashMap<K, V, S>)
where
    K: Eq + std::hash::Hash,
    S: std::hash::BuildHasher,
{
    if table.capacity() > SHRINK_ABOVE && table.len() < table.capacity() / 4 {
        table.shrink_to(table.len() * 2);
    }
}
