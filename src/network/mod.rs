//! A node's link to the others of its network, through NATS: it publishes
//! what the core tells it and hands the core what the other nodes said.
//!
//! Three kinds of subject ([`wire::subject`]): the events every node hears
//! (users, nicks, memberships, heartbeats), one per room for its messages,
//! heard only by the nodes with a member in it, and one per node for the
//! private messages to its users. The core never awaits: it queues its
//! requests here, and this task does the I/O. Three JetStream buckets
//! hold what needs a quorum: nick claims ([`claims`]), each node's lease
//! ([`lease`]), renewed with every heartbeat, and each room's state
//! ([`rooms`]), which every node watches whole.

pub mod claims;
pub mod lease;
pub mod rooms;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::NetworkConfig;
pub use claims::{Claimed, Holder};
pub use lease::Renewal;
use wire::{Body, Envelope};

/// What the link hands the core.
#[derive(Debug)]
pub enum Heard {
    /// Another node said something.
    Envelope(Box<Envelope>),
    /// The link to NATS was lost (`false`) or is back (`true`).
    Link(bool),
    /// The answer to a nick claim of the user `uid` of this node.
    Claimed {
        uid: u64,
        nick: String,
        /// The revision a gone holder's claim was taken over at, if any.
        over: Option<u64>,
        outcome: Claimed,
    },
    /// How a renewal of this node's lease went.
    Lease(Renewal),
    /// The answer to the creation of a room the local user `uid` joins.
    RoomCreated { uid: u64, outcome: rooms::Created },
    /// A room's value as the bucket's watch saw it (the latest of each
    /// room first, when the watch starts).
    RoomSeen(rooms::Seen),
    /// A change of this node's was written at `revision`, as `state`
    /// (another node's changes included, when it wrote first). `asked`
    /// when it answers a change the core asked for and counts as on its
    /// way; a revive or a change applied again was not counted.
    RoomWritten {
        key: String,
        revision: u64,
        state: Box<rooms::RoomState>,
        asked: bool,
    },
    /// A change the core asked for to the room `key` could not be written.
    RoomNotWritten { key: String },
}

/// What the core asks of the link.
#[derive(Debug)]
enum Request {
    Publish {
        subject: String,
        body: Body,
    },
    /// Start hearing a subject (a room's).
    Listen(String),
    /// Stop hearing it.
    Ignore(String),
    /// Claim a nick for a user of this node.
    Claim {
        uid: u64,
        nick: String,
        key: String,
        over: Option<u64>,
    },
    /// Give up a user's claim on a nick.
    Release {
        key: String,
        holder: Holder,
    },
    /// Create, change or delete a room's state.
    WriteRoom(RoomWrite),
}

/// A write to the room states, done one at a time in the order asked: a
/// room's creation after its removal just before, a change after the one
/// before it.
#[derive(Debug)]
enum RoomWrite {
    /// Create a room's value for the joiner `uid`, or take over a value
    /// left at revision `over`.
    Create {
        uid: u64,
        key: String,
        state: Box<rooms::RoomState>,
        over: Option<u64>,
    },
    /// A change, with the room's new state and the revision it was made
    /// at; `asked` when the core counts it as on its way (not a revive).
    Change {
        key: String,
        state: Box<rooms::RoomState>,
        revision: Option<u64>,
        change: rooms::Change,
        asked: bool,
    },
    /// The room's last member left: its value goes, if still at `revision`.
    Remove { key: String, revision: Option<u64> },
    /// This node's last change of a room was hidden by another node's
    /// write made on the same revision (at `revision`, holding `state`):
    /// the change is applied again on top of it.
    Reapply {
        key: String,
        state: Box<rooms::RoomState>,
        revision: u64,
        change: rooms::Change,
    },
}

/// What the writer and the watch of the room states share: this node's
/// last write of each room, and the revision and base of the last value
/// the watch saw of it, so that whichever learns second notices when
/// another node's write hid this node's. (nats-server 2.9 can let two
/// updates made at the same revision both land when they arrive together;
/// the later one hides the earlier.)
type Ledger = Arc<std::sync::Mutex<RoomLedger>>;

/// See [`Ledger`]; each map is cleared when it reaches [`LEDGER_ROOMS`].
#[derive(Debug, Default)]
struct RoomLedger {
    own: std::collections::HashMap<String, OwnWrite>,
    /// Revision and base of the last value seen of each room.
    seen: std::collections::HashMap<String, (u64, u64)>,
}

/// The most rooms a [`RoomLedger`] map holds before it starts afresh.
const LEDGER_ROOMS: usize = 100_000;

/// One room's last write by this node.
#[derive(Debug)]
struct OwnWrite {
    revision: u64,
    /// The revision it was written over (0 for a creation): a value
    /// written over an older one cannot have hidden it.
    base: u64,
    /// The change it made; none for a creation, once applied again, or
    /// once a value written over it was seen.
    change: Option<rooms::Change>,
}

impl RoomLedger {
    /// This node's change of `key`, taken when the last value seen of it
    /// was written over the same revision as that change (or a later one
    /// still older than it) and landed after it, which it therefore hid.
    /// A value seen written over this node's write or later settles it.
    fn take_hidden(&mut self, key: &str) -> Option<(u64, rooms::Change)> {
        let &(revision, base) = self.seen.get(key)?;
        let own = self.own.get_mut(key)?;
        if base >= own.revision {
            own.change = None;
            return None;
        }
        let hid = own.base <= base && own.revision < revision;
        own.change.take_if(|_| hid).map(|change| (revision, change))
    }

    fn note_seen(&mut self, key: &str, revision: u64, base: u64) {
        if self.seen.len() >= LEDGER_ROOMS && !self.seen.contains_key(key) {
            self.seen.clear();
        }
        self.seen.insert(key.to_owned(), (revision, base));
    }

    /// The room's value was deleted: a value written later belongs to a
    /// new life of the room, which no earlier change of this node's is
    /// part of.
    fn note_deleted(&mut self, key: &str) {
        self.own.remove(key);
        self.seen.remove(key);
    }

    fn note_own(&mut self, key: &str, (revision, base): (u64, u64), change: Option<rooms::Change>) {
        if self.own.len() >= LEDGER_ROOMS && !self.own.contains_key(key) {
            self.own.clear();
        }
        let write = OwnWrite {
            revision,
            base,
            change,
        };
        self.own.insert(key.to_owned(), write);
    }
}

/// The most room writes waiting: far above what ops change at once; past
/// it a change stays local (and on the events subject) and is logged.
const ROOM_WRITES: usize = 4096;

/// The core's end of the link: queues requests without waiting.
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    node: Arc<str>,
    boot: u64,
    requests: mpsc::UnboundedSender<Request>,
}

impl NetworkHandle {
    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Publishes `body` from this node on `subject`. The link numbers
    /// and encodes it (`Link::stamp`), off the core.
    pub fn publish(&self, subject: &str, body: Body) {
        let subject = subject.to_owned();
        // Gone only while the server stops.
        let _ = self.requests.send(Request::Publish { subject, body });
    }

    /// Starts hearing `subject`.
    pub fn listen(&self, subject: String) {
        let _ = self.requests.send(Request::Listen(subject));
    }

    /// Stops hearing `subject`.
    pub fn ignore(&self, subject: String) {
        let _ = self.requests.send(Request::Ignore(subject));
    }

    /// This node's boot, as its envelopes carry it.
    pub fn boot(&self) -> u64 {
        self.boot
    }

    /// Who holds a nick when the user `uid` of this node does.
    pub fn holder(&self, uid: u64) -> Holder {
        Holder {
            node: self.node.to_string(),
            boot: self.boot,
            uid,
        }
    }

    /// Claims the nick `folded` for the user `uid` of this node, taking it
    /// over from a gone holder read at revision `over`; the answer comes
    /// back as [`Heard::Claimed`].
    pub fn claim(&self, uid: u64, nick: &str, folded: &str, over: Option<u64>) {
        let key = claims::key(folded);
        let nick = nick.to_owned();
        let _ = self.requests.send(Request::Claim {
            uid,
            nick,
            key,
            over,
        });
    }

    /// Gives up the claim on `folded` of `holder`, if it still holds it.
    pub fn release(&self, folded: &str, holder: Holder) {
        let key = claims::key(folded);
        let _ = self.requests.send(Request::Release { key, holder });
    }

    /// Creates the room `folded` with `state` for the local joiner `uid`
    /// (taking over a value left at `over`); the answer comes back as
    /// [`Heard::RoomCreated`].
    pub fn create_room(&self, uid: u64, folded: &str, state: rooms::RoomState, over: Option<u64>) {
        let key = rooms::key(folded);
        let state = Box::new(state);
        let write = RoomWrite::Create {
            uid,
            key,
            state,
            over,
        };
        let _ = self.requests.send(Request::WriteRoom(write));
    }

    /// Writes the room `folded`'s new `state` after `change`, made at
    /// `revision` (none when this node never saw a value of it).
    pub fn change_room(
        &self,
        folded: &str,
        state: rooms::RoomState,
        revision: Option<u64>,
        change: rooms::Change,
    ) {
        let write = RoomWrite::Change {
            key: rooms::key(folded),
            state: Box::new(state),
            revision,
            change,
            asked: true,
        };
        let _ = self.requests.send(Request::WriteRoom(write));
    }

    /// Writes the room `folded`'s value again as `state`, after it was
    /// deleted while this node still has members there; its answer is
    /// not one the core counts.
    pub fn revive_room(&self, folded: &str, state: rooms::RoomState, change: rooms::Change) {
        let write = RoomWrite::Change {
            key: rooms::key(folded),
            state: Box::new(state),
            revision: None,
            change,
            asked: false,
        };
        let _ = self.requests.send(Request::WriteRoom(write));
    }

    /// Deletes the room `folded`'s value, if still at `revision`.
    pub fn remove_room(&self, folded: &str, revision: Option<u64>) {
        let key = rooms::key(folded);
        let _ = self
            .requests
            .send(Request::WriteRoom(RoomWrite::Remove { key, revision }));
    }

    /// A handle for the node `node` whose requests go nowhere: for the
    /// core's tests of what it does with what it hears.
    #[cfg(test)]
    pub fn detached(node: &str) -> NetworkHandle {
        let (requests, _) = mpsc::unbounded_channel();
        NetworkHandle {
            node: Arc::from(node),
            boot: 1,
            requests,
        }
    }
}

/// Why a node could not join its network.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("cannot reach NATS at {urls}: {source}")]
    Connect {
        urls: String,
        source: async_nats::ConnectError,
    },
    #[error("cannot subscribe to {subject}: {source}")]
    Subscribe {
        subject: String,
        source: async_nats::SubscribeError,
    },
    #[error(
        "cannot open the nick claims in JetStream (is JetStream enabled on the NATS servers?): {0}"
    )]
    Claims(async_nats::Error),
    #[error("cannot open the node leases in JetStream: {0}")]
    Leases(async_nats::Error),
    #[error("cannot open the room states in JetStream: {0}")]
    Rooms(async_nats::Error),
}

/// Connects to NATS, hears the network's events and this node's own
/// subject, and starts the link task. What is heard goes to `deliver`.
pub async fn start<F>(
    config: &NetworkConfig,
    server: &str,
    boot: u64,
    deliver: F,
    stop: CancellationToken,
) -> Result<(NetworkHandle, JoinHandle<()>), NetworkError>
where
    F: Fn(Heard) -> futures_util::future::BoxFuture<'static, bool> + Send + Sync + 'static,
{
    let urls = config.nats.join(",");
    let (link_events, mut link_changes) = mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::new()
        .name(format!("rookery {}", config.node))
        // A node hears the others, not itself.
        .no_echo()
        .event_callback(move |event| {
            let link_events = link_events.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        let _ = link_events.send(true);
                    }
                    async_nats::Event::Disconnected => {
                        let _ = link_events.send(false);
                    }
                    async_nats::Event::SlowConsumer(_) => {
                        warn!("this node fell behind the network; messages from it were lost");
                    }
                    _ => {}
                }
            }
        })
        .connect(urls.as_str())
        .await
        .map_err(|source| NetworkError::Connect {
            urls: urls.clone(),
            source,
        })?;
    let node: Arc<str> = Arc::from(config.node.as_str());
    let jetstream = async_nats::jetstream::new(client.clone());
    let nicks = claims::open(&jetstream, config.claim_replicas)
        .await
        .map_err(NetworkError::Claims)?;
    let leases = lease::open(&jetstream, config.claim_replicas)
        .await
        .map_err(NetworkError::Leases)?;
    let room_states = rooms::open(&jetstream, config.claim_replicas)
        .await
        .map_err(NetworkError::Rooms)?;
    let deliver: Deliver = Arc::new(deliver);
    let to_core = Arc::clone(&deliver);
    tokio::spawn(async move {
        while let Some(up) = link_changes.recv().await {
            if !to_core(Heard::Link(up)).await {
                break;
            }
        }
    });
    let timing = Timing {
        every: Duration::from_millis(config.heartbeat_ms),
        timeout: Duration::from_millis(config.node_timeout_ms),
    };
    let (room_writes, writes) = mpsc::channel(ROOM_WRITES);
    let own = Ledger::default();
    let watcher = tokio::spawn(watch_rooms(
        room_states.clone(),
        Arc::clone(&deliver),
        (Arc::clone(&own), room_writes.clone()),
        stop.clone(),
    ));
    let writer = tokio::spawn(write_rooms(
        room_states.clone(),
        writes,
        Arc::clone(&deliver),
        own,
        timing.timeout,
    ));
    let mut link = Link {
        node: Arc::clone(&node),
        server: server.to_owned(),
        boot,
        client,
        nicks,
        leases,
        room_writes,
        room_tasks: [watcher, writer],
        renewing: None,
        events: 0,
        deliver,
        rooms: Default::default(),
        stop: stop.clone(),
    };
    link.hear(wire::subject::EVENTS.to_owned()).await?;
    link.hear(wire::subject::node(&node)).await?;
    let (requests, queued) = mpsc::unbounded_channel();
    let handle = NetworkHandle {
        node: Arc::clone(&node),
        boot,
        requests,
    };
    let task = tokio::spawn(link.run(queued, handle.clone(), timing));
    Ok((handle, task))
}

type Deliver = Arc<dyn Fn(Heard) -> futures_util::future::BoxFuture<'static, bool> + Send + Sync>;

/// The link's timing, from `[network]`.
#[derive(Clone, Copy, Debug)]
struct Timing {
    /// How often a heartbeat goes out and the lease is renewed.
    every: Duration,
    /// How long a lease renewal may wait: one slower is no use, since the
    /// lease has run out by then (the node timeout).
    timeout: Duration,
}

/// The link task's state.
struct Link {
    node: Arc<str>,
    /// This node's `[server] name`, which heartbeats carry.
    server: String,
    boot: u64,
    client: async_nats::Client,
    /// The bucket of nick claims.
    nicks: async_nats::jetstream::kv::Store,
    /// The bucket of node leases.
    leases: async_nats::jetstream::kv::Store,
    /// The queue of the task writing room states, in order.
    room_writes: mpsc::Sender<RoomWrite>,
    /// The tasks watching and writing room states.
    room_tasks: [JoinHandle<()>; 2],
    /// The lease renewal under way, if any: at most one at a time, so a
    /// JetStream without quorum never piles them up.
    renewing: Option<JoinHandle<()>>,
    /// Events sent on the events subject in this boot ([`Link::stamp`]).
    events: u64,
    deliver: Deliver,
    /// The task hearing each subject listened to on request.
    rooms: std::collections::HashMap<String, JoinHandle<()>>,
    stop: CancellationToken,
}

impl Link {
    /// Subscribes to `subject` and hands what comes to the core, in order,
    /// from a task of its own; returns that task.
    async fn subscribe(&self, subject: String) -> Result<JoinHandle<()>, NetworkError> {
        let mut subscriber = self
            .client
            .subscribe(subject.clone())
            .await
            .map_err(|source| NetworkError::Subscribe {
                subject: subject.clone(),
                source,
            })?;
        let deliver = Arc::clone(&self.deliver);
        let stop = self.stop.clone();
        Ok(tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    message = subscriber.next() => message,
                    _ = stop.cancelled() => break,
                };
                let Some(message) = message else { break };
                let Some(envelope) = Envelope::decode(&message.payload) else {
                    debug!(subject = %message.subject, "not an envelope; ignored");
                    continue;
                };
                if !deliver(Heard::Envelope(Box::new(envelope))).await {
                    break;
                }
            }
        }))
    }

    /// Hears `subject` for the link's whole life.
    async fn hear(&mut self, subject: String) -> Result<(), NetworkError> {
        let task = self.subscribe(subject.clone()).await?;
        self.rooms.insert(subject, task);
        Ok(())
    }

    async fn run(
        mut self,
        mut queued: mpsc::UnboundedReceiver<Request>,
        handle: NetworkHandle,
        timing: Timing,
    ) {
        let mut beat = tokio::time::interval(timing.every);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                request = queued.recv() => match request {
                    Some(request) => self.apply(request).await,
                    None => break,
                },
                _ = beat.tick() => {
                    let server = self.server.clone();
                    handle.publish(wire::subject::EVENTS, Body::Heartbeat { server });
                    self.renew_lease(timing.timeout);
                }
                _ = self.stop.cancelled() => break,
            }
        }
        // What the core queued before it stopped (its goodbye) still goes
        // out.
        while let Ok(request) = queued.try_recv() {
            self.apply(request).await;
        }
        let _ = self.client.flush().await;
        for (_, task) in self.rooms.drain() {
            task.abort();
        }
        // The rooms this node held alone are removed before it goes (a
        // node timeout at most): the watch stops, and with it the last
        // other sender to the writer, which then ends with its queue.
        let [watcher, writer] = self.room_tasks;
        watcher.abort();
        drop(self.room_writes);
        if tokio::time::timeout(timing.timeout, writer).await.is_err() {
            warn!("the room states were not all written before stopping");
        }
        if let Some(renewing) = self.renewing.take() {
            renewing.abort();
        }
    }

    /// Renews this node's lease off the loop, unless the last renewal is
    /// still waiting; its outcome goes to the core as [`Heard::Lease`].
    fn renew_lease(&mut self, timeout: Duration) {
        if self
            .renewing
            .as_ref()
            .is_some_and(|task| !task.is_finished())
        {
            return;
        }
        let (leases, deliver) = (self.leases.clone(), Arc::clone(&self.deliver));
        let key = lease::key(&self.node);
        let boot = self.boot;
        self.renewing = Some(tokio::spawn(async move {
            let renewal = lease::renew(&leases, &key, boot, timeout).await;
            deliver(Heard::Lease(renewal)).await;
        }));
    }

    /// The envelope of `body` going out on `subject` now: an event on the
    /// events subject gets the next number, anything else (a heartbeat
    /// too) the number of the last event before it. Numbered here, where
    /// envelopes go out one at a time, each number is sent in its order.
    fn stamp(&mut self, subject: &str, body: Body) -> Envelope {
        let numbered = subject == wire::subject::EVENTS && !matches!(body, Body::Heartbeat { .. });
        let (seq, after) = if numbered {
            self.events += 1;
            (Some(self.events), 0)
        } else {
            (None, self.events)
        };
        Envelope {
            node: self.node.to_string(),
            boot: self.boot,
            seq,
            after,
            body,
        }
    }

    async fn apply(&mut self, request: Request) {
        match request {
            Request::Publish { subject, body } => {
                let payload = Bytes::from(self.stamp(&subject, body).encode());
                if let Err(error) = self.client.publish(subject, payload).await {
                    warn!(%error, "publishing to the network failed");
                }
            }
            Request::Listen(subject) => {
                if self.rooms.contains_key(&subject) {
                    return;
                }
                match self.subscribe(subject.clone()).await {
                    Ok(task) => {
                        self.rooms.insert(subject, task);
                    }
                    Err(error) => warn!(%error, "cannot hear a room"),
                }
            }
            Request::Ignore(subject) => {
                if let Some(task) = self.rooms.remove(&subject) {
                    task.abort();
                }
            }
            // Claims wait on JetStream's quorum: each in a task of its own,
            // so messages are not held behind them. A client waits for its
            // claim's answer before it can ask again.
            Request::Claim {
                uid,
                nick,
                key,
                over,
            } => {
                let (nicks, deliver) = (self.nicks.clone(), Arc::clone(&self.deliver));
                let holder = Holder {
                    node: self.node.to_string(),
                    boot: self.boot,
                    uid,
                };
                tokio::spawn(async move {
                    let outcome = claims::claim(&nicks, &key, &holder, over).await;
                    let claimed = Heard::Claimed {
                        uid,
                        nick,
                        over,
                        outcome,
                    };
                    deliver(claimed).await;
                });
            }
            Request::Release { key, holder } => {
                let nicks = self.nicks.clone();
                tokio::spawn(async move { claims::release(&nicks, &key, &holder).await });
            }
            Request::WriteRoom(write) => {
                if let Err(full) = self.room_writes.try_send(write) {
                    warn!("too many room writes waiting for the bucket; one is given up");
                    self.given_up(full.into_inner()).await;
                }
            }
        }
    }
}

impl Link {
    /// Answers a room write the writer had no room for, as a failed one.
    async fn given_up(&self, write: RoomWrite) {
        let heard = match write {
            RoomWrite::Create { uid, .. } => {
                let outcome = rooms::Created::Failed("too many room writes waiting".to_owned());
                Heard::RoomCreated { uid, outcome }
            }
            RoomWrite::Change {
                key, asked: true, ..
            } => Heard::RoomNotWritten { key },
            RoomWrite::Change { .. } | RoomWrite::Reapply { .. } | RoomWrite::Remove { .. } => {
                return;
            }
        };
        (self.deliver)(heard).await;
    }
}

/// Hands the core every room's value, then every later change of one,
/// for the link's life; a watch that ends (the bucket was unreachable too
/// long) starts again, and its first values (the latest of each room)
/// bring back what changed meanwhile.
async fn watch_rooms(
    store: async_nats::jetstream::kv::Store,
    deliver: Deliver,
    (own, writes): (Ledger, mpsc::Sender<RoomWrite>),
    stop: CancellationToken,
) {
    loop {
        match store.watch_with_history(">").await {
            Ok(mut watch) => loop {
                let entry = tokio::select! {
                    entry = watch.next() => entry,
                    _ = stop.cancelled() => return,
                };
                match entry {
                    Some(Ok(entry)) => {
                        let seen = rooms::Seen::of(entry);
                        reapply_if_hidden(&seen, &own, &writes);
                        if !deliver(Heard::RoomSeen(seen)).await {
                            return;
                        }
                    }
                    Some(Err(error)) => {
                        warn!(%error, "the watch of the room states failed");
                        break;
                    }
                    None => break,
                }
            },
            Err(error) => warn!(%error, "cannot watch the room states"),
        }
        tokio::select! {
            _ = tokio::time::sleep(ROOM_WATCH_RETRY) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Notes the value `seen`, and queues this node's last change of its room
/// again when `seen` hid it.
fn reapply_if_hidden(seen: &rooms::Seen, own: &Ledger, writes: &mpsc::Sender<RoomWrite>) {
    let Ok(mut ledger) = own.lock() else { return };
    if seen.deleted {
        ledger.note_deleted(&seen.key);
        return;
    }
    let Some(state) = &seen.state else { return };
    ledger.note_seen(&seen.key, seen.revision, state.base);
    let Some((revision, change)) = ledger.take_hidden(&seen.key) else {
        return;
    };
    let reapply = RoomWrite::Reapply {
        key: seen.key.clone(),
        state: state.clone(),
        revision,
        change,
    };
    if writes.try_send(reapply).is_err() {
        warn!("too many room changes waiting for the bucket; a hidden one is lost");
    }
}

/// How long a failed watch of the room states waits before it starts again.
const ROOM_WATCH_RETRY: Duration = Duration::from_secs(1);

/// Writes room states one at a time, in the order the core asked: a
/// node's later change of a room lands after its earlier one.
async fn write_rooms(
    store: async_nats::jetstream::kv::Store,
    mut writes: mpsc::Receiver<RoomWrite>,
    deliver: Deliver,
    own: Ledger,
    within: Duration,
) {
    while let Some(write) = writes.recv().await {
        match write {
            RoomWrite::Create {
                uid,
                key,
                state,
                over,
            } => {
                let outcome = rooms::create(&store, &key, &state, over, within).await;
                if let (rooms::Created::Won { revision }, Ok(mut ledger)) = (&outcome, own.lock()) {
                    ledger.note_own(&key, (*revision, over.unwrap_or(0)), None);
                }
                deliver(Heard::RoomCreated { uid, outcome }).await;
            }
            RoomWrite::Change {
                key,
                state,
                revision,
                change,
                asked,
            } => {
                // Written at the revision its value was made from: a later
                // one (this node's own last write too) is a conflict, on
                // which the change is applied to the latest value.
                let write = (key, state, revision, change);
                write_change(&store, write, &deliver, &own, (within, asked)).await;
            }
            RoomWrite::Reapply {
                key,
                mut state,
                revision,
                change,
            } => {
                state.apply(&change);
                let write = (key, state, Some(revision), change);
                write_change(&store, write, &deliver, &own, (within, false)).await;
            }
            RoomWrite::Remove { key, revision } => {
                let last = own
                    .lock()
                    .ok()
                    .and_then(|mut ledger| ledger.own.remove(&key));
                if let Some(revision) = revision.max(last.map(|write| write.revision)) {
                    let removing = rooms::remove(&store, &key, revision);
                    let _ = tokio::time::timeout(within, removing).await;
                }
            }
        }
    }
}

/// Writes one change (key, new state, revision seen, change) and tells the
/// core what was written; only the first answer to a change the core
/// asked for (`asked`) is one it counts, and a failure of another is not
/// its news.
async fn write_change(
    store: &async_nats::jetstream::kv::Store,
    (key, state, revision, change): (String, Box<rooms::RoomState>, Option<u64>, rooms::Change),
    deliver: &Deliver,
    own: &Ledger,
    (within, asked): (Duration, bool),
) {
    let (mut revision, mut change, mut asked) = (revision, change, asked);
    for _ in 0..rooms::MAX_ATTEMPTS {
        let writing = rooms::change(store, &key, &state, revision, &change);
        let (written, value) = match tokio::time::timeout(within, writing).await {
            Ok(Ok(written)) => written,
            Ok(Err(reason)) => {
                warn!(%reason, "a room change was not written; the room goes back to its value");
                if asked {
                    deliver(Heard::RoomNotWritten { key }).await;
                }
                return;
            }
            Err(_) => {
                warn!("a room change was not written in time; the room goes back to its value");
                if asked {
                    deliver(Heard::RoomNotWritten { key }).await;
                }
                return;
            }
        };
        let hidden = own.lock().ok().and_then(|mut ledger| {
            ledger.note_own(&key, (written, value.base), Some(change.clone()));
            ledger.take_hidden(&key)
        });
        let value = Box::new(value);
        let told = Heard::RoomWritten {
            key: key.clone(),
            revision: written,
            state: value,
            asked,
        };
        deliver(told).await;
        // The watch saw a value that hid this one before it was known
        // here: written again, over the latest.
        let Some((_, again)) = hidden else { return };
        (revision, change, asked) = (Some(written), again, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "23726f6f6d";

    /// A change of the key, made by an op.
    fn plus_k() -> rooms::Change {
        rooms::Change::Modes {
            changes: vec![rooms::ModeChange {
                adding: true,
                letter: 'k',
                arg: Some("sesame".into()),
            }],
            by: "op!o@h".into(),
            at: 5,
        }
    }

    #[test]
    fn a_write_landing_after_this_nodes_at_the_same_revision_hides_it() {
        let mut ledger = RoomLedger::default();
        ledger.note_own(KEY, (11, 10), Some(plus_k()));
        ledger.note_seen(KEY, 12, 10);
        assert_eq!(ledger.take_hidden(KEY), Some((12, plus_k())));
        assert_eq!(ledger.take_hidden(KEY), None, "applied again once");
    }

    #[test]
    fn a_value_written_over_this_nodes_write_settles_its_change() {
        let mut ledger = RoomLedger::default();
        ledger.note_own(KEY, (11, 10), Some(plus_k()));
        ledger.note_seen(KEY, 12, 11);
        assert_eq!(ledger.take_hidden(KEY), None);
        // A stale view of an older value later cannot bring it back.
        ledger.note_seen(KEY, 13, 10);
        assert_eq!(ledger.take_hidden(KEY), None);
    }

    #[test]
    fn a_new_life_of_a_room_does_not_get_an_old_change() {
        let mut ledger = RoomLedger::default();
        ledger.note_own(KEY, (11, 10), Some(plus_k()));
        // Created anew, written over nothing, with no deletion seen.
        ledger.note_seen(KEY, 30, 0);
        assert_eq!(ledger.take_hidden(KEY), None);
        // Revived at the deletion's revision, older than this node's base.
        ledger.note_seen(KEY, 31, 5);
        assert_eq!(ledger.take_hidden(KEY), None);
    }

    #[test]
    fn a_deletion_forgets_this_nodes_last_write() {
        let mut ledger = RoomLedger::default();
        ledger.note_own(KEY, (11, 10), Some(plus_k()));
        ledger.note_deleted(KEY);
        ledger.note_seen(KEY, 30, 10);
        assert_eq!(ledger.take_hidden(KEY), None);
        assert!(ledger.own.is_empty());
    }
}
