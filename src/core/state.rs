//! The state machine: every client, nick and channel, and the helpers that
//! handlers use to answer and to fan out.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use tracing::{debug, info};

use super::whowas::{Whowas, WhowasEntry};
use super::{Channel, Client, ClientId, Event, Membership, dispatch, isupport};
use crate::config::Config;
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
    /// Where room events are recorded, when history is enabled.
    pub history: Option<HistoryHandle>,
    /// Each room's last lines as loaded at startup, for playback on join.
    pub history_preload: Preload,
    /// Clients whose outbox overflowed while handling the current event.
    overflowed: Vec<ClientId>,
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
            clock,
            history: None,
            history_preload: Preload::new(),
            overflowed: Vec::new(),
        }
    }

    /// Applies one event, then drops every client that overflowed meanwhile.
    pub fn handle(&mut self, event: Event) {
        match event {
            Event::Connected { id, outbox, peer } => {
                let client = Client::new(id, outbox, peer.ip(), self.clock.now());
                self.clients.insert(id, client);
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
        if let Some(client) = self.clients.get(&id) {
            if client.outbox.push(line).is_err() {
                self.overflowed.push(id);
            }
        }
    }

    /// Queues the same line for many clients; the bytes are shared.
    pub fn send_all(&mut self, ids: impl IntoIterator<Item = ClientId>, line: &Bytes) {
        for id in ids {
            self.send(id, line.clone());
        }
    }

    /// Queues one line for the members of a room that `include` accepts; the
    /// bytes are shared and no list of members is built.
    pub fn send_to_members(
        &mut self,
        channel: &Folded,
        line: &Bytes,
        include: impl Fn(ClientId, Membership) -> bool,
    ) {
        self.send_to_members_durable(channel, line, 0, include);
    }

    /// [`State::send_to_members`] for a line that carries history record
    /// `seq`: no member receives it before the record is committed.
    pub fn send_to_members_durable(
        &mut self,
        channel: &Folded,
        line: &Bytes,
        seq: u64,
        include: impl Fn(ClientId, Membership) -> bool,
    ) {
        let Some(room) = self.channels.get(channel) else {
            return;
        };
        for (&member, &membership) in &room.members {
            if !include(member, membership) {
                continue;
            }
            if let Some(client) = self.clients.get(&member) {
                if client.outbox.push_durable(line.clone(), seq).is_err() {
                    self.overflowed.push(member);
                }
            }
        }
    }

    /// Records a room event in history, stamped with the core's clock, and
    /// returns the sequence number its lines must carry (0 when history is
    /// off or the record was dropped).
    pub fn record_history(
        &self,
        room: &Folded,
        display: &str,
        sender: &str,
        command: &str,
        text: &str,
    ) -> u64 {
        let Some(history) = &self.history else {
            return 0;
        };
        history.record(Record {
            msgid: history.next_msgid(),
            time_ms: history::millis(self.clock.now()),
            target: room.as_str().to_owned(),
            target_display: display.to_owned(),
            sender: sender.to_owned(),
            account: None,
            command: command.to_owned(),
            text: text.to_owned(),
            tags: String::new(),
        })
    }

    /// Takes `id` out of a room on both sides; a room left empty disappears.
    pub fn remove_member(&mut self, id: ClientId, channel: &Folded) {
        if let Some(client) = self.clients.get_mut(&id) {
            client.channels.remove(channel);
        }
        if let Some(room) = self.channels.get_mut(channel) {
            room.members.remove(&id);
            if room.members.is_empty() {
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
            let peers = self.peers(id);
            self.send_all(peers, &quit);
        }
        self.remember_nick(id);
        let Some(client) = self.clients.remove(&id) else {
            return;
        };
        for name in &client.channels {
            if let Some(channel) = self.channels.get_mut(name) {
                channel.members.remove(&id);
                if channel.members.is_empty() {
                    self.channels.remove(name);
                }
            }
        }
        // Invites live in rooms the client may never have joined.
        for channel in self.channels.values_mut() {
            channel.invited.remove(&id);
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
