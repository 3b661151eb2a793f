//! The state machine: every client, nick and channel, and the helpers that
//! handlers use to answer and to fan out.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::broadcast::Broadcast;
use super::caps::Caps;
use super::commands::{chathistory, oper, rehash};
use super::whowas::{Whowas, WhowasEntry};
use super::{AdminState, Channel, Client, ClientId, Event, Membership, admin, dispatch, isupport};
use crate::config::Config;
use crate::history::ring::PlaybackRings;
use crate::history::{self, HistoryHandle, Preload, Record};
use crate::proto::numeric::{self, Numeric};
use crate::proto::serialize::echo_param;
use crate::proto::{Folded, Line};

/// Where the core reads the time: a trait so tests can hold it still.
pub trait Clock: Send {
    fn now(&self) -> SystemTime;
}

/// The wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Everything the server knows; owned by the core task alone.
pub struct State {
    pub config: Arc<Config>,
    /// 005 lines, built once per configuration.
    pub isupport: Vec<String>,
    pub clients: HashMap<ClientId, Client>,
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
    pub monitors: HashMap<Folded, HashSet<ClientId>>,
    /// Where room events are recorded, when history is enabled.
    pub history: Option<HistoryHandle>,
    /// Each room's last lines, for playback on join: loaded at startup
    /// ([`State::seed_playback`]) and appended to as lines are recorded.
    pub playback: PlaybackRings,
    /// The core's own inbox, for answers that arrive later (history
    /// queries run on the history reader thread).
    pub inbox: Option<mpsc::Sender<Event>>,
    /// Clients whose outbox overflowed while handling the current event.
    overflowed: Vec<ClientId>,
    /// Replies held back for a labeled-response while its command runs.
    capture: Option<Capture>,
    /// The label of the command running, while labeled.
    label: Option<String>,
    /// Set by a handler whose reply comes later under the label.
    deferred: bool,
    /// Makes message ids unique across restarts: the start time.
    msgid_prefix: String,
    msgid_counter: u64,
}

/// Lines to one client collected while a labeled command runs.
#[derive(Debug)]
pub struct Capture {
    pub id: ClientId,
    pub lines: Vec<Bytes>,
    /// The latest history record any held line waits for.
    pub seq: u64,
}

/// Queues `line` for `client`, or holds it when its command is labeled.
/// `seq` is the history record the line must wait for (0: none).
fn deliver(
    capture: &mut Option<Capture>,
    overflowed: &mut Vec<ClientId>,
    client: &Client,
    line: Bytes,
    seq: u64,
) {
    if let Some(capture) = capture.as_mut().filter(|capture| capture.id == client.id) {
        capture.lines.push(line);
        capture.seq = capture.seq.max(seq);
    } else if client.outbox.push_durable(line, seq).is_err() {
        overflowed.push(client.id);
    }
}

impl State {
    pub fn new(config: Arc<Config>, clock: Box<dyn Clock>) -> State {
        let created = clock.now();
        let whowas = Whowas::new(config.limits.whowas_entries);
        State {
            isupport: isupport::isupport_tokens(&config),
            config,
            clients: HashMap::new(),
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
            admin: AdminState::default(),
            history: None,
            playback: PlaybackRings::default(),
            inbox: None,
            overflowed: Vec::new(),
            capture: None,
            label: None,
            deferred: false,
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
            channel.modes = super::commands::join::flag_modes(modes);
            channel.persistent = true;
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

    /// Fills the playback rings with what the store held at startup.
    pub fn seed_playback(&mut self, preload: Preload) {
        self.playback = PlaybackRings::new(self.config.history.playback_lines, preload);
    }

    /// Applies one event, then drops every client that overflowed meanwhile.
    pub fn handle(&mut self, event: Event) {
        match event {
            Event::Connected {
                id,
                outbox,
                peer,
                secure,
            } => {
                let mut client = Client::new(id, outbox, peer.ip(), self.clock.now());
                client.secure = secure;
                self.clients.insert(id, client);
                admin::refuse_if_dlined(self, id);
            }
            Event::Message { id, message } => {
                if self.clients.contains_key(&id) {
                    dispatch::dispatch(self, id, &message);
                }
            }
            Event::InputTooLong { id } => {
                self.reply(
                    id,
                    numeric::ERR_INPUTTOOLONG,
                    &[],
                    "Input line was too long",
                );
            }
            Event::Closed { id, reason } => self.disconnect(id, &reason),
            Event::Rehash { requested_by } => rehash::start(self, requested_by),
            Event::Reloaded {
                requested_by,
                outcome,
            } => rehash::finished(self, requested_by, outcome),
            Event::OperChecked { id, oper, valid } => oper::checked(self, id, &oper, valid),
            Event::HistoryAnswered(answer) => chathistory::answered(self, *answer),
            Event::Shutdown => self.shutdown(),
        }
        while let Some(id) = self.overflowed.pop() {
            self.disconnect(id, "SendQ exceeded");
        }
    }

    /// The casefolded form of a nick or channel name.
    pub fn fold(&self, name: &str) -> Folded {
        self.config.server.casemapping.fold(name)
    }

    pub fn server_name(&self) -> &str {
        &self.config.server.name
    }

    /// Queues a line for one client; an overflow disconnects it afterwards.
    pub fn send(&mut self, id: ClientId, line: Bytes) {
        self.send_after(id, line, 0);
    }

    /// Queues a line that must wait for history record `seq`.
    pub fn send_after(&mut self, id: ClientId, line: Bytes, seq: u64) {
        if let Some(client) = self.clients.get(&id) {
            deliver(&mut self.capture, &mut self.overflowed, client, line, seq);
        }
    }

    /// An event line stamped with the current time, for a fan-out.
    pub fn broadcast(&self, line: Bytes) -> Broadcast {
        Broadcast::new(line, self.clock.now())
    }

    /// An event caused by `id`, tagged `bot` when it is a bot (bot-mode).
    pub fn event_from(&self, id: ClientId, line: Bytes) -> Broadcast {
        let bot = self.clients.get(&id).is_some_and(|c| c.modes.bot);
        self.broadcast(line).with_bot(bot)
    }

    /// A message id unique across restarts.
    pub fn next_msgid(&mut self) -> String {
        self.msgid_counter += 1;
        format!("{}-{}", self.msgid_prefix, self.msgid_counter)
    }

    /// A batch reference, unique on this server.
    pub fn next_batch_id(&mut self) -> String {
        self.msgid_counter += 1;
        format!("b{}", self.msgid_counter)
    }

    /// Sends an event to each of `ids` in the form its capabilities ask for.
    pub fn send_all(&mut self, ids: impl IntoIterator<Item = ClientId>, event: &mut Broadcast) {
        for id in ids {
            if let Some(client) = self.clients.get(&id) {
                let line = event.line_for(client.caps);
                deliver(
                    &mut self.capture,
                    &mut self.overflowed,
                    client,
                    line,
                    event.seq(),
                );
            }
        }
    }

    /// Sends an event to the members of a room that `include` accepts, each
    /// in its own form; no list of members is built.
    pub fn send_to_members(
        &mut self,
        channel: &Folded,
        event: &mut Broadcast,
        include: impl Fn(&Client, Membership) -> bool,
    ) {
        let Some(room) = self.channels.get(channel) else {
            return;
        };
        for (member, &membership) in &room.members {
            let Some(client) = self.clients.get(member) else {
                continue;
            };
            if include(client, membership) {
                let line = event.line_for(client.caps);
                deliver(
                    &mut self.capture,
                    &mut self.overflowed,
                    client,
                    line,
                    event.seq(),
                );
            }
        }
    }

    /// The label of the command being handled, when it has one.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// Says the running command answers later, under its label (see
    /// [`State::label`]): dispatch must not answer it with an ACK now.
    pub fn defer_reply(&mut self) {
        self.deferred = true;
    }

    /// Whether the command just run deferred its reply; clears the flag.
    pub fn take_deferred(&mut self) -> bool {
        std::mem::take(&mut self.deferred)
    }

    /// Holds every line to `id` until [`State::end_capture`]; `label` is
    /// what [`State::label`] tells the handler.
    pub fn start_labeled(&mut self, id: ClientId, label: &str) {
        self.label = Some(label.to_owned());
        self.start_capture(id);
    }

    /// Holds every line to `id` until [`State::end_capture`].
    pub fn start_capture(&mut self, id: ClientId) {
        self.capture = Some(Capture {
            id,
            lines: Vec::new(),
            seq: 0,
        });
    }

    /// Stops holding lines and returns them, with the history record they
    /// must wait for.
    pub fn end_capture(&mut self) -> (Vec<Bytes>, u64) {
        self.label = None;
        self.capture
            .take()
            .map_or((Vec::new(), 0), |capture| (capture.lines, capture.seq))
    }

    /// Records a room event (or, with `target` a [`history::private_conversation`]
    /// key, a private message) in history, and returns the sequence number
    /// its lines must carry (0 when history is off or the record was
    /// dropped). The record carries the event's own msgid and time, so what
    /// history plays back is what the members saw. A room line that was
    /// queued for the disk also joins the room's playback ring; one dropped
    /// from a stalled queue does not, so playback never shows what is not
    /// stored.
    pub fn record_history(
        &mut self,
        target: &str,
        display: &str,
        sender: &str,
        command: &str,
        text: &str,
        event: &Broadcast,
    ) -> u64 {
        let Some(history) = &self.history else {
            return 0;
        };
        let record = Record {
            msgid: event
                .msgid()
                .map_or_else(|| history.next_msgid(), str::to_owned),
            time_ms: history::millis(event.time()),
            target: target.to_owned(),
            target_display: display.to_owned(),
            sender: sender.to_owned(),
            account: None,
            command: command.to_owned(),
            text: text.to_owned(),
            tags: String::new(),
        };
        let room = !target.contains(' ');
        if !room {
            return history.record(record);
        }
        let seq = history.record(record.clone());
        if seq != 0 {
            self.playback.push(record, seq);
        }
        seq
    }

    /// Takes `id` out of a room on both sides; a room left empty disappears
    /// unless it is a persistent `[[room]]`.
    pub fn remove_member(&mut self, id: ClientId, channel: &Folded) {
        if let Some(client) = self.clients.get_mut(&id) {
            client.channels.remove(channel);
        }
        if let Some(room) = self.channels.get_mut(channel) {
            if room.remove_member(id) {
                self.channels.remove(channel);
            }
        }
    }

    /// Starts `:server NNN <client>` for a reply to `id`.
    pub fn numeric_line(&self, id: ClientId, numeric: Numeric) -> Line {
        let code = numeric.as_str();
        let code = std::str::from_utf8(&code).unwrap_or("000");
        let target = self.clients.get(&id).map_or("*", Client::target);
        Line::new(Some(self.server_name()), code).arg(target)
    }

    /// Sends `:server NNN <client> args… :text`.
    pub fn reply(&mut self, id: ClientId, numeric: Numeric, args: &[&str], text: &str) {
        let mut line = self.numeric_line(id, numeric);
        for arg in args {
            line = line.arg(echo_param(arg));
        }
        let line = line.trailing(text).finish();
        self.send(id, line);
    }

    /// Everyone who shares a room with `id`, each once, without `id`.
    pub fn peers(&self, id: ClientId) -> HashSet<ClientId> {
        let mut peers = HashSet::new();
        if let Some(client) = self.clients.get(&id) {
            for name in &client.channels {
                if let Some(channel) = self.channels.get(name) {
                    peers.extend(channel.members.keys().copied());
                }
            }
        }
        peers.remove(&id);
        peers
    }

    /// Who hears of a change to `id` that only clients with `cap` are told
    /// about: its peers with `cap`, and its MONITOR watchers with `cap` and
    /// extended-monitor. Each once, without `id`.
    pub fn audience(&self, id: ClientId, cap: Caps) -> HashSet<ClientId> {
        let has = |other: &ClientId, wanted: Caps| {
            self.clients
                .get(other)
                .is_some_and(|c| c.caps.contains(wanted))
        };
        let mut audience: HashSet<ClientId> = self
            .peers(id)
            .into_iter()
            .filter(|peer| has(peer, cap))
            .collect();
        if let Some(client) = self.clients.get(&id) {
            if let Some(watchers) = self.monitors.get(&self.fold(&client.nick)) {
                let wanted = cap.union(Caps::EXTENDED_MONITOR);
                audience.extend(watchers.iter().filter(|w| **w != id && has(w, wanted)));
            }
        }
        audience
    }

    /// Sends the standard reply `FAIL <command> <code> [context…] :text`,
    /// for failures whose code a negotiated spec (or 005 token) defines.
    pub fn fail(&mut self, id: ClientId, command: &str, code: &str, context: &[&str], text: &str) {
        let mut line = Line::new(Some(self.server_name()), "FAIL")
            .arg(command)
            .arg(code);
        for arg in context {
            line = line.arg(echo_param(arg));
        }
        let line = line.trailing(text).finish();
        self.send(id, line);
    }

    /// A failure of our own making: a FAIL for clients that negotiated
    /// standard-replies, which lets a server send codes no other spec
    /// defines; a NOTICE with the text for the rest.
    pub fn fail_or_notice(&mut self, id: ClientId, command: &str, code: &str, text: &str) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if client.caps.contains(Caps::STANDARD_REPLIES) {
            self.fail(id, command, code, &[], text);
        } else {
            let line = Line::new(Some(self.server_name()), "NOTICE")
                .arg(client.target())
                .trailing(text)
                .finish();
            self.send(id, line);
        }
    }

    /// Removes a client: its rooms and peers hear a QUIT with `reason`, and
    /// it gets an ERROR before its connection closes.
    pub fn disconnect(&mut self, id: ClientId, reason: &str) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        info!(client = id.0, nick = %client.nick, %reason, "client leaves");
        if client.registered {
            let quit = Line::new(Some(&client.source), "QUIT")
                .trailing(reason)
                .finish();
            let nick = client.nick.clone();
            let mut quit = self.event_from(id, quit);
            let peers = self.peers(id);
            self.send_all(peers, &mut quit);
            self.monitor_offline(&nick);
        }
        self.unwatch_all(id);
        self.remember_nick(id);
        let Some(client) = self.clients.remove(&id) else {
            return;
        };
        for name in &client.channels {
            if let Some(channel) = self.channels.get_mut(name) {
                if channel.remove_member(id) {
                    self.channels.remove(name);
                }
            }
        }
        // Invites live in rooms the client may never have joined.
        for name in &client.invited_to {
            if let Some(channel) = self.channels.get_mut(name) {
                channel.invited.remove(&id);
            }
        }
        if !client.nick.is_empty() {
            let folded = self.fold(&client.nick);
            if self.nicks.get(&folded) == Some(&id) {
                self.nicks.remove(&folded);
            }
        }
        let error = format!("Closing Link: {} ({reason})", client.host);
        client
            .outbox
            .close(Some(Line::new(None, "ERROR").trailing(&error).finish()));
        debug!(clients = self.clients.len(), "client removed");
    }

    /// Records a registered client's current nick in the WHOWAS history,
    /// before it leaves or changes nick.
    pub fn remember_nick(&mut self, id: ClientId) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if !client.registered || client.nick.is_empty() {
            return;
        }
        let entry = WhowasEntry {
            nick: client.nick.clone(),
            user: client.user.clone(),
            host: client.host.clone(),
            realname: client.realname.clone(),
            departed: self.clock.now(),
        };
        let folded = self.fold(&client.nick);
        self.whowas.record(folded, entry);
    }

    /// Says goodbye to every client.
    fn shutdown(&mut self) {
        let error = Line::new(None, "ERROR")
            .trailing("Server shutting down")
            .finish();
        for client in self.clients.values() {
            client.outbox.close(Some(error.clone()));
        }
        self.clients.clear();
        self.nicks.clear();
        self.channels.clear();
    }

    /// Registered clients, for LUSERS.
    pub fn registered_count(&self) -> usize {
        self.clients
            .values()
            .filter(|client| client.registered)
            .count()
    }
}
