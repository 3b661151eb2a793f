//! A node's link to the others of its network, through NATS: it publishes
//! what the core tells it and hands the core what the other nodes said.
//!
//! Three kinds of subject ([`wire::subject`]): the events every node hears
//! (users, nicks, memberships, heartbeats), one per room for its messages,
//! heard only by the nodes with a member in it, and one per node for the
//! private messages to its users. The core never awaits: it queues its
//! requests here, and this task does the I/O. Two JetStream buckets hold
//! what needs a quorum: nick claims ([`claims`]) and each node's lease
//! ([`lease`]), renewed with every heartbeat.

pub mod claims;
pub mod lease;
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
}

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
    let deliver: Deliver = Arc::new(deliver);
    let to_core = Arc::clone(&deliver);
    tokio::spawn(async move {
        while let Some(up) = link_changes.recv().await {
            if !to_core(Heard::Link(up)).await {
                break;
            }
        }
    });
    let mut link = Link {
        node: Arc::clone(&node),
        server: server.to_owned(),
        boot,
        client,
        nicks,
        leases,
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
    let timing = Timing {
        every: Duration::from_millis(config.heartbeat_ms),
        timeout: Duration::from_millis(config.node_timeout_ms),
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
        }
    }
}
