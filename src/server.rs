//! Starting and stopping a server: binds the listeners, spawns the core and
//! the accept loops, and hands back a [`ServerHandle`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{self, AdminWorker};
use crate::config::Config;
use crate::core::{self, Event, State, SystemClock};
use crate::history::{self, History};
use crate::net::{
    self, Acceptor, AdmissionRules, ConnectionLimits, ConnectionSettings, FloodLimits,
    ReloadableTls,
};

/// A running server.
pub struct ServerHandle {
    local_addrs: Vec<SocketAddr>,
    inbox: mpsc::Sender<Event>,
    stop_accepting: CancellationToken,
    core: JoinHandle<()>,
    /// Ends once the core has dropped its sender and every request queued
    /// before that (a bans file to write) is done.
    admin: JoinHandle<()>,
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
        flood: config.flood.enabled.then_some(FloodLimits {
            lines_per_second: config.flood.lines_per_second,
            burst: config.flood.burst,
            max_backlog: config.flood.max_backlog,
        }),
        sendq_bytes: config.limits.sendq_bytes,
    }
}

/// What the acceptor enforces, from `[limits]`.
pub fn admission_rules(config: &Config) -> AdmissionRules {
    AdmissionRules {
        max_clients: config.limits.max_clients,
        max_per_ip: config.limits.max_clients_per_ip,
        connects_per_minute: config.limits.connects_per_ip_per_minute,
        exempt: config.limits.exempt_ips.clone(),
        ipv6_prefix_bits: config.limits.ipv6_prefix_bits,
    }
}

/// Binds every configured listener and starts serving. Must run inside a
/// tokio runtime. Without a file REHASH has nothing to reload; see
/// [`start_with`].
pub async fn start(config: Config) -> std::io::Result<ServerHandle> {
    start_with(config, Options::default()).await
}

/// What a server can be started with besides its configuration.
#[derive(Default)]
pub struct Options {
    /// The file the configuration came from, which REHASH and SIGHUP load
    /// again; without one REHASH has nothing to reload.
    pub config_file: Option<PathBuf>,
    /// Test hooks on the history writer (the `test-hooks` feature).
    #[cfg(any(test, feature = "test-hooks"))]
    pub history_hooks: history::Hooks,
}

/// Like [`start`], with [`Options`].
pub async fn start_with(config: Config, options: Options) -> std::io::Result<ServerHandle> {
    let Options {
        config_file,
        #[cfg(any(test, feature = "test-hooks"))]
        history_hooks,
    } = options;
    #[cfg(not(any(test, feature = "test-hooks")))]
    let history_hooks = history::Hooks::default();
    let bans = admin::load_bans(&config.server.bans_file)
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))?;
    let mut config = config;
    if config.cloaking.enabled && config.cloaking.secret.is_empty() {
        config.cloaking.secret = core::cloak::load_or_create_secret(&config.cloaking.secret_file)?;
    }
    // Certificates first: a bad one stops the start before anything listens.
    let mut tls_listeners = Vec::new();
    let mut acceptors = Vec::with_capacity(config.listen.len());
    for listen in &config.listen {
        let acceptor = match &listen.tls {
            Some(tls) => {
                let loaded = net::load_tls(&tls.cert, &tls.key)
                    .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))?;
                let acceptor = ReloadableTls::new(loaded);
                tls_listeners.push((tls.cert.clone(), tls.key.clone(), Arc::clone(&acceptor)));
                Some(acceptor)
            }
            None => None,
        };
        acceptors.push(acceptor);
    }
    // Opening and migrating the database happens before any client can
    // connect, so a bad path fails the start instead of the first message.
    let (history, preload) = if config.history.enabled {
        let settings = config.history.clone();
        let standing: Vec<String> = config
            .room
            .iter()
            .map(|room| {
                config
                    .server
                    .casemapping
                    .fold(&room.name)
                    .as_str()
                    .to_owned()
            })
            .collect();
        let started = tokio::task::spawn_blocking(move || {
            history::start(&settings, &standing, history_hooks)
        })
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
    let (settings_tx, settings) = watch::channel(Arc::new(connection_settings(&config)));
    let limits = ConnectionLimits::new(admission_rules(&config));
    let stop_accepting = CancellationToken::new();
    let acceptor = Acceptor {
        next_id: Arc::new(AtomicU64::new(1)),
        limits: Arc::clone(&limits),
        settings,
        inbox: inbox.clone(),
        shutdown: stop_accepting.clone(),
        tasks: TaskTracker::new(),
        committed,
    };
    let connections = acceptor.tasks.clone();
    for (listener, tls) in listeners.into_iter().zip(acceptors) {
        tokio::spawn(net::serve(listener, acceptor.clone(), tls));
    }
    let (worker, requests) = mpsc::unbounded_channel();
    let admin_worker = AdminWorker {
        config_file: config_file.clone(),
        running: Arc::clone(&config),
        core: inbox.clone(),
        settings: settings_tx,
        limits,
        tls: tls_listeners,
    };
    let admin = tokio::spawn(admin_worker.run(requests));
    let mut state = State::new(config, Box::new(SystemClock));
    state.admin.worker = Some(worker);
    state.admin.config_file = config_file;
    state.admin.bans = bans;
    state.history = history.as_ref().map(History::handle);
    if let Some(history) = &history {
        state.set_standing_since(history.standing_since());
    }
    state.seed_playback(preload);
    state.inbox = Some(inbox.clone());
    if let Some(history) = &history {
        tokio::spawn(report_history_health(
            history.handle().degraded(),
            inbox.clone(),
        ));
    }
    let core = tokio::spawn(core::run(state, events));
    tokio::spawn(give_back_memory(stop_accepting.clone()));
    Ok(ServerHandle {
        local_addrs,
        inbox,
        stop_accepting,
        core,
        admin,
        connections,
        history,
    })
}

/// Hands each change of the history writer's health to the core, which
/// tells the operators online.
async fn report_history_health(
    mut degraded: watch::Receiver<bool>,
    core: mpsc::Sender<core::Event>,
) {
    // Changes in quick succession may be seen as one: say each state once.
    let mut told = false;
    while degraded.changed().await.is_ok() {
        let degraded = *degraded.borrow_and_update();
        if degraded == std::mem::replace(&mut told, degraded) {
            continue;
        }
        if core
            .send(core::Event::HistoryHealth { degraded })
            .await
            .is_err()
        {
            return;
        }
    }
}

/// How often freed memory is handed back to the system.
const MEMORY_TRIM_INTERVAL: Duration = Duration::from_secs(30);

/// glibc keeps freed memory in its arenas for reuse, so a server that had
/// 2,000 clients stays at their peak after they leave. Trimming now and then
/// gives it back; elsewhere this does nothing.
async fn give_back_memory(stop: CancellationToken) {
    let mut interval = tokio::time::interval(MEMORY_TRIM_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.cancelled() => return,
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only walks the allocator's own free lists; it
        // takes no pointers and is safe to call from any thread.
        let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
    }
}

impl ServerHandle {
    /// The bound addresses, with the ports the system picked for port 0.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Reloads the configuration file, as an operator's REHASH does.
    pub async fn rehash(&self) {
        let _ = self.inbox.send(Event::Rehash { requested_by: None }).await;
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
        // A K-line added just before the stop is still written to the file.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.admin).await;
        self.connections.close();
        // The history writer keeps committing meanwhile, so lines waiting
        // for their record can still be flushed.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.connections.wait()).await;
        if let Some(history) = self.history {
            let _ = tokio::task::spawn_blocking(move || history.shutdown()).await;
        }
    }
}
