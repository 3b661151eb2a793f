//! Starting and stopping a server: binds the listeners, spawns the core and
//! the accept loops, and hands back a [`ServerHandle`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::core::{self, Event, State, SystemClock};
use crate::history::{self, History};
use crate::net::{self, Acceptor, ConnectionLimits, ConnectionSettings};

/// A running server.
pub struct ServerHandle {
    local_addrs: Vec<SocketAddr>,
    inbox: mpsc::Sender<Event>,
    stop_accepting: CancellationToken,
    core: JoinHandle<()>,
    connections: TaskTracker,
    history: Option<History>,
}

/// How long shutdown waits for clients to receive their ERROR line.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the connections need from the configuration.
pub fn connection_settings(config: &Config) -> ConnectionSettings {
    ConnectionSettings {
        server_name: config.server.name.clone(),
        registration_timeout: Duration::from_secs(config.timeouts.registration),
        ping_interval: Duration::from_secs(config.timeouts.ping_interval),
        ping_timeout: Duration::from_secs(config.timeouts.ping_timeout),
        flood: config
            .flood
            .enabled
            .then_some((config.flood.lines_per_second, config.flood.burst)),
        sendq_bytes: config.limits.sendq_bytes,
    }
}

/// Binds every configured listener and starts serving. Must run inside a
/// tokio runtime.
pub async fn start(config: Config) -> std::io::Result<ServerHandle> {
    start_with(config, history::Hooks::default()).await
}

/// [`start`], with test hooks attached to the history writer.
pub async fn start_with(config: Config, hooks: history::Hooks) -> std::io::Result<ServerHandle> {
    // Opening and migrating the database happens before any client can
    // connect, so a bad path fails the start instead of the first message.
    let (history, preload) = if config.history.enabled {
        let settings = config.history.clone();
        let started = tokio::task::spawn_blocking(move || history::start(&settings, hooks))
            .await
            .map_err(std::io::Error::other)?;
        let (history, preload) = started.map_err(std::io::Error::other)?;
        (Some(history), preload)
    } else {
        (None, history::Preload::new())
    };
    let committed = match &history {
        Some(history) => history.handle().committed(),
        // Nothing is ever tagged when history is off; nothing waits.
        None => watch::channel(u64::MAX).1,
    };
    let addresses: Vec<SocketAddr> = config.listen.iter().map(|listen| listen.address).collect();
    let listeners = net::bind(&addresses).await?;
    let local_addrs = listeners
        .iter()
        .map(|l| l.local_addr())
        .collect::<std::io::Result<Vec<_>>>()?;
    let config = Arc::new(config);
    let (inbox, events) = mpsc::channel(core::INBOX_CAPACITY);
    let (_settings_tx, settings) = watch::channel(Arc::new(connection_settings(&config)));
    let stop_accepting = CancellationToken::new();
    let acceptor = Acceptor {
        next_id: Arc::new(AtomicU64::new(1)),
        limits: ConnectionLimits::new(config.limits.max_clients, config.limits.max_clients_per_ip),
        settings,
        inbox: inbox.clone(),
        shutdown: stop_accepting.clone(),
        tasks: TaskTracker::new(),
        committed,
    };
    let connections = acceptor.tasks.clone();
    for listener in listeners {
        tokio::spawn(net::serve(listener, acceptor.clone()));
    }
    let mut state = State::new(config, Box::new(SystemClock));
    state.history = history.as_ref().map(History::handle);
    state.history_preload = preload;
    let core = tokio::spawn(core::run(state, events));
    Ok(ServerHandle {
        local_addrs,
        inbox,
        stop_accepting,
        core,
        connections,
        history,
    })
}

impl ServerHandle {
    /// The bound addresses, with the ports the system picked for port 0.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The history the core records into, when enabled.
    pub fn history(&self) -> Option<history::HistoryHandle> {
        self.history.as_ref().map(History::handle)
    }

    /// Stops accepting, sends every client an ERROR, waits for the core and
    /// the connections, then commits the last history and closes it.
    pub async fn shutdown(self) {
        self.stop_accepting.cancel();
        let _ = self.inbox.send(Event::Shutdown).await;
        let _ = self.core.await;
        self.connections.close();
        // The history writer keeps committing meanwhile, so lines waiting
        // for their record can still be flushed.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.connections.wait()).await;
        if let Some(history) = self.history {
            let _ = tokio::task::spawn_blocking(move || history.shutdown()).await;
        }
    }
}
