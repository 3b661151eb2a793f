//! Starting and stopping a server: binds the listeners, spawns the core and
//! the accept loops, and hands back a [`ServerHandle`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use crate::accounts::{
    AccountError, Accounts, DatabaseLock, LockError, Naming, NickOwner, Place, ReadMarkerRecord,
    RoomRecord,
};
use crate::config::Config;
use crate::core::{self, Event, State, SystemClock};
use crate::history::{self, History, StoreError};
use crate::metrics::Metrics;
use crate::net::{
    self, Acceptor, AdmissionRules, BindError, ConnectionLimits, ConnectionSettings, ReloadableTls,
    TlsError,
};
use crate::worker::{self, BansFileError, Worker};

/// A running server.
pub struct ServerHandle {
    local_addrs: Vec<SocketAddr>,
    /// The `[[http]]` listeners' bound addresses, in their order.
    http_addrs: Vec<SocketAddr>,
    /// Stops the HTTP listeners, last, so `/readyz` answers 503 meanwhile.
    stop_http: CancellationToken,
    inbox: mpsc::Sender<Event>,
    stop_accepting: CancellationToken,
    core: JoinHandle<()>,
    /// Ends once the core has dropped its sender and every request queued
    /// before that (a bans file to write) is done.
    worker: JoinHandle<()>,
    connections: TaskTracker,
    history: Option<History>,
    /// The link to the other nodes: stopped once the core has said goodbye,
    /// so its last words reach them.
    network: Option<(CancellationToken, JoinHandle<()>)>,
    /// The figures `/metrics` shows, counted by every task.
    metrics: Arc<Metrics>,
    /// Released last, once history is closed.
    _database_lock: Option<DatabaseLock>,
}

/// How long shutdown waits for clients to receive their ERROR line.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the server did not start. Each error names the file or address at
/// fault.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bans(#[from] BansFileError),
    /// The cloaking key file cannot be read or created.
    #[error(transparent)]
    CloakKey(std::io::Error),
    #[error(transparent)]
    Certificate(#[from] TlsError),
    /// The history database cannot be opened or migrated.
    #[error(transparent)]
    History(#[from] StoreError),
    /// Opening the history database panicked.
    #[error("the history store did not start: {0}")]
    HistoryTask(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Listen(#[from] BindError),
    /// Another server, or an account command, is using the database.
    #[error(transparent)]
    DatabaseLock(#[from] LockError),
    /// The account tables cannot be read (registered rooms, owned nicks).
    #[error(transparent)]
    Accounts(#[from] AccountError),
    /// Reading the account tables panicked.
    #[error("the account store did not start: {0}")]
    AccountsTask(tokio::task::JoinError),
    /// `[network]` is set and its NATS servers cannot be reached.
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
}

/// Binds every configured listener and starts serving. Must run inside a
/// tokio runtime. Without a file REHASH has nothing to reload; see
/// [`start_with`].
pub async fn start(config: Config) -> Result<ServerHandle, StartError> {
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

/// Like [`start`], with [`Options`]. Everything that can fail (files,
/// certificates, the database, the addresses) is done before the first
/// client can connect.
pub async fn start_with(config: Config, options: Options) -> Result<ServerHandle, StartError> {
    let Options {
        config_file,
        #[cfg(any(test, feature = "test-hooks"))]
        history_hooks,
    } = options;
    #[cfg(not(any(test, feature = "test-hooks")))]
    let history_hooks = history::Hooks::default();
    let bans = worker::load_bans(&config.server.bans_file)?;
    let config = with_cloak_key(config)?;
    // Certificates first: a bad one stops the start before anything listens.
    let certificates = load_certificates(&config)?;
    let http_certificates = load_http_certificates(&config)?;
    let database_lock = lock_database(&config)?;
    let metrics = Metrics::new();
    let (history, mut preload) = start_history(&config, history_hooks, &metrics).await?;
    let accounts = read_accounts(&config).await?;
    preload.extend(preload_registered_rooms(&config, &accounts.rooms).await?);
    let addresses: Vec<SocketAddr> = config.listen.iter().map(|listen| listen.address).collect();
    let (listeners, local_addrs): (Vec<_>, Vec<_>) =
        net::bind(&addresses).await?.into_iter().unzip();
    let http_bound = bind_http_listeners(&config).await?;
    let http_addrs: Vec<SocketAddr> = http_bound.iter().map(|bound| bound.2).collect();

    let config = Arc::new(config);
    let (inbox, events) = mpsc::channel(core::INBOX_CAPACITY);
    let (acceptor, settings) = acceptor(&config, &inbox, history.as_ref(), &metrics);
    // The network before the first client: its users are announced to it.
    let stop_network = CancellationToken::new();
    let (network, network_link) = match join_network(&config, &inbox, &stop_network).await? {
        Some((network, link)) => (Some(network), Some((stop_network, link))),
        None => (None, None),
    };
    let (http_settings, http_published) =
        watch::channel(Arc::new(net::HttpSettings::from_config(&config)));
    for (listener, tls) in listeners.into_iter().zip(&certificates) {
        tokio::spawn(net::serve(listener, acceptor.clone(), tls.clone()));
    }
    let (jobs, requests) = mpsc::unbounded_channel();
    let (metadata, metadata_requests) = crate::metadata_writer::queue();
    let worker = Worker {
        config_file: config_file.clone(),
        running: Arc::clone(&config),
        core: inbox.clone(),
        settings,
        http: http_settings,
        limits: Arc::clone(&acceptor.limits),
        tls: reloadable_certificates(&config, &certificates, &http_certificates),
        metadata: Some(metadata_requests),
    };
    let worker = tokio::spawn(worker.run(requests));
    let mut state = State::new(config, Box::new(SystemClock));
    state.metrics = Arc::clone(&metrics);
    state.admin.worker = Some(jobs);
    state.admin.metadata = Some(metadata);
    state.admin.config_file = config_file;
    state.admin.bans = bans;
    state.inbox = Some(inbox.clone());
    if let Some(network) = network {
        state.join_network(network);
    }
    if let Some(history) = &history {
        connect_history(&mut state, history, inbox.clone());
    }
    state.load_registered_rooms(accounts.rooms);
    state
        .read_markers
        .load(&state.config, accounts.read_markers);
    state.seed_playback(preload);
    state.reservations = reservations(&state, accounts.nick_owners);
    let stop_http = CancellationToken::new();
    let operators = Arc::new(net::Operators {
        render_metrics: render_metrics(&state.metrics),
        ready: net::Readiness {
            stopping: acceptor.shutdown.clone(),
            history: history.as_ref().map(|history| history.handle().committed()),
        },
    });
    for (position, listener, _) in http_bound {
        let tls = http_certificates.get(position).cloned().flatten();
        let site = net::HttpSite {
            position,
            settings: http_published.clone(),
            tls,
            operators: Arc::clone(&operators),
        };
        let until = stop_http.clone();
        tokio::spawn(net::serve_http(listener, acceptor.clone(), site, until));
    }
    let core = tokio::spawn(core::run(state, events));
    tokio::spawn(give_back_memory(acceptor.shutdown.clone()));
    tokio::spawn(tick(inbox.clone(), acceptor.shutdown.clone()));
    Ok(ServerHandle {
        local_addrs,
        http_addrs,
        stop_http,
        inbox,
        stop_accepting: acceptor.shutdown,
        core,
        worker,
        connections: acceptor.tasks,
        history,
        network: network_link,
        metrics,
        _database_lock: database_lock,
    })
}

/// Connects to the network's NATS servers when `[network]` is set; what
/// the other nodes say reaches the core as [`Event::Network`].
async fn join_network(
    config: &Config,
    inbox: &mpsc::Sender<Event>,
    stop: &CancellationToken,
) -> Result<Option<(core::network::Network, JoinHandle<()>)>, StartError> {
    let Some(settings) = &config.network else {
        return Ok(None);
    };
    let boot = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    let to_core = inbox.clone();
    let deliver = move |heard| {
        let to_core = to_core.clone();
        Box::pin(async move { to_core.send(Event::Network(heard)).await.is_ok() })
            as futures_util::future::BoxFuture<'static, bool>
    };
    let (link, task) =
        crate::network::start(settings, &config.server.name, boot, deliver, stop.clone()).await?;
    let timeout = std::time::Duration::from_millis(settings.node_timeout_ms);
    let joined = std::time::SystemTime::now();
    Ok(Some((
        core::network::Network::new(link, timeout, joined),
        task,
    )))
}

/// Binds the `[[http]]` listeners, each with its place in the list and its
/// bound address. The built-in default (`http` absent from the file) that
/// cannot bind only warns: an upgrade must not stop a server that never
/// asked for a browser listener.
async fn bind_http_listeners(
    config: &Config,
) -> Result<Vec<(usize, TcpListener, SocketAddr)>, BindError> {
    let mut bound = Vec::with_capacity(config.http.len());
    for (position, http) in config.http.iter().enumerate() {
        match net::bind_http(&[http.address]).await {
            Ok(listeners) => bound.extend(
                listeners
                    .into_iter()
                    .map(|(listener, local)| (position, listener, local)),
            ),
            Err(error) if config.http_implicit => warn!(
                "{error}; starting without the web client. To serve it elsewhere, \
                 add an [[http]] block with another address to the configuration; \
                 to silence this, set `http = []`"
            ),
            Err(error) => return Err(error),
        }
    }
    Ok(bound)
}

/// What the accept loops share, and the sender that publishes new
/// connection settings to them (on REHASH).
fn acceptor(
    config: &Config,
    inbox: &mpsc::Sender<Event>,
    history: Option<&History>,
    metrics: &Arc<Metrics>,
) -> (Acceptor<Event>, watch::Sender<Arc<ConnectionSettings>>) {
    let (publish, settings) = watch::channel(Arc::new(ConnectionSettings::from_config(config)));
    let acceptor = Acceptor {
        next_id: Arc::new(AtomicU64::new(1)),
        limits: ConnectionLimits::new(AdmissionRules::from_config(config)),
        settings,
        inbox: net::Inbox::new(inbox.clone()),
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
        watermarks: watermarks(history),
        metrics: Arc::clone(metrics),
    };
    (acceptor, publish)
}

/// The configuration with its cloaking key, read from (or first written
/// to) the key file when cloaking is on and the key is not set inline.
fn with_cloak_key(mut config: Config) -> Result<Config, StartError> {
    if config.cloaking.enabled && config.cloaking.secret.is_empty() {
        config.cloaking.secret = core::cloak::load_or_create_secret(&config.cloaking.secret_file)
            .map_err(StartError::CloakKey)?;
    }
    Ok(config)
}

/// Each listener's TLS acceptor, in the order of `config.listen`; `None`
/// for a plain-text listener.
fn load_certificates(config: &Config) -> Result<Vec<Option<Arc<ReloadableTls>>>, TlsError> {
    config
        .listen
        .iter()
        .map(|listen| {
            let Some(tls) = &listen.tls else {
                return Ok(None);
            };
            let loaded = net::load_tls(&tls.cert, &tls.key)?;
            Ok(Some(ReloadableTls::new(loaded)))
        })
        .collect()
}

/// Each `[[http]]` listener's TLS acceptor, in the order of `config.http`.
fn load_http_certificates(config: &Config) -> Result<Vec<Option<Arc<ReloadableTls>>>, TlsError> {
    config
        .http
        .iter()
        .map(|http| {
            let Some(tls) = &http.tls else {
                return Ok(None);
            };
            let loaded = net::load_tls(&tls.cert, &tls.key)?;
            Ok(Some(ReloadableTls::new_http(&loaded)))
        })
        .collect()
}

/// Each TLS acceptor, IRC's then HTTP's, with the files it was loaded
/// from, so REHASH can pick up a renewed certificate.
fn reloadable_certificates(
    config: &Config,
    certificates: &[Option<Arc<ReloadableTls>>],
    http_certificates: &[Option<Arc<ReloadableTls>>],
) -> Vec<(PathBuf, PathBuf, Arc<ReloadableTls>)> {
    let irc = config.listen.iter().map(|listen| listen.tls.as_ref());
    let http = config.http.iter().map(|http| http.tls.as_ref());
    irc.zip(certificates)
        .chain(http.zip(http_certificates))
        .filter_map(|(tls, acceptor)| {
            let tls = tls?;
            Some((
                tls.cert.clone(),
                tls.key.clone(),
                Arc::clone(acceptor.as_ref()?),
            ))
        })
        .collect()
}

/// `/metrics`' view of the figures the core keeps.
fn render_metrics(metrics: &Arc<Metrics>) -> net::RenderMetrics {
    let metrics = Arc::clone(metrics);
    Arc::new(move || metrics.render())
}

/// Locks the database for the server's life, so `rookery accounts` never
/// changes it under the running server. Only when the server opens it.
fn lock_database(config: &Config) -> Result<Option<DatabaseLock>, LockError> {
    if !config.history.enabled {
        return Ok(None);
    }
    DatabaseLock::acquire(&config.history.path).map(Some)
}

/// Opens (and migrates) the history database and reads the standing
/// rooms' recent lines, off the async threads. Done before any client can
/// connect, so a bad path fails the start instead of the first message.
async fn start_history(
    config: &Config,
    hooks: history::Hooks,
    metrics: &Arc<Metrics>,
) -> Result<(Option<History>, history::Preload), StartError> {
    if !config.history.enabled {
        return Ok((None, history::Preload::new()));
    }
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
    let metrics = Arc::clone(metrics);
    let node = history_node(config);
    let start = move || history::start(&settings, &node, &standing, hooks, metrics);
    let (history, preload) = tokio::task::spawn_blocking(start).await??;
    Ok((Some(history), preload))
}

/// The recent lines of the registered rooms, for playback on join: each
/// is one incarnation across restarts, as a standing room is.
async fn preload_registered_rooms(
    config: &Config,
    rooms: &[RoomRecord],
) -> Result<history::Preload, StartError> {
    if !config.history.enabled {
        return Ok(history::Preload::new());
    }
    let floors = rooms
        .iter()
        .map(|room| {
            let folded = config.server.casemapping.fold(&room.name);
            (folded.as_str().to_owned(), room.history_floor_ms)
        })
        .collect();
    let settings = config.history.clone();
    let node = history_node(config);
    let preload =
        tokio::task::spawn_blocking(move || history::preload_registered(&settings, &node, &floors))
            .await??;
    Ok(preload)
}

/// This node's name in a shared history database (`[network] node`),
/// "" when it runs alone.
fn history_node(config: &Config) -> String {
    config
        .network
        .as_ref()
        .map_or_else(String::new, |network| network.node.clone())
}

/// How far history has come (the journal's mark and the database's),
/// which each connection's write task reads before sending a line that
/// waits for a record.
fn watermarks(history: Option<&History>) -> net::Watermarks {
    match history {
        Some(history) => net::Watermarks {
            journaled: history.handle().journaled().unwrap_or_default(),
            stored: history.handle().committed(),
        },
        // Nothing is ever tagged when history is off; nothing waits.
        None => net::Watermarks::none(),
    }
}

/// Gives the core its history: the handle to record and query with, when
/// each standing room's history starts, and a task that reports the
/// writer's health.
fn connect_history(state: &mut State, history: &History, inbox: mpsc::Sender<Event>) {
    state.history = Some(history.handle());
    state.set_standing_since(history.standing_since());
    tokio::spawn(report_history_health(history.handle().degraded(), inbox));
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

/// What the core keeps of the account store, read once before it runs so
/// that a NICK or a JOIN never waits on the disk.
#[derive(Default)]
struct AccountsAtStart {
    /// Every owned nick, for nick reservation.
    nick_owners: Vec<NickOwner>,
    /// The rooms registered with ChanServ, which exist from the start as
    /// `[[room]]`s do.
    rooms: Vec<RoomRecord>,
    /// Where each account last read each target (draft/read-marker).
    read_markers: Vec<ReadMarkerRecord>,
}

/// Reads [`AccountsAtStart`] whenever the database is there (REHASH may
/// turn `[accounts] enabled` on later, and the nicks must then be known);
/// a database without account tables has none, and is not given them.
async fn read_accounts(config: &Config) -> Result<AccountsAtStart, StartError> {
    if !config.history.enabled {
        return Ok(AccountsAtStart::default());
    }
    let place = Place::of(&config.history);
    let naming = Naming::from_config(config);
    let read = move || -> Result<AccountsAtStart, AccountError> {
        let store = match Accounts::open_read_only(&place, naming) {
            // An older account schema is brought up to date: the server
            // holds the database lock (on a shared database, its
            // migration lock orders the nodes).
            Err(AccountError::TooOld(_)) => Accounts::open(&place, naming)?,
            store => store?,
        };
        Ok(AccountsAtStart {
            nick_owners: store.nick_owners()?,
            // Whether or not accounts are enabled now: REHASH may enable
            // them, and a registered room must not look free then.
            rooms: store.rooms()?,
            read_markers: store.read_markers()?,
        })
    };
    tokio::task::spawn_blocking(read)
        .await
        .map_err(StartError::AccountsTask)?
        .map_err(StartError::from)
}

/// The core's index of owned nicks.
fn reservations(state: &State, owners: Vec<NickOwner>) -> core::reservation::Reservations {
    core::reservation::Reservations::new(owners.into_iter().map(|owner| {
        let nick = state.fold(&owner.nick_key);
        let owner = core::reservation::Owner {
            account: owner.account,
            enforce: owner.enforce,
        };
        (nick, owner)
    }))
}

/// How often the core checks the deadlines it keeps (renaming a client
/// that did not log in to the account owning its nick).
const TICK_INTERVAL: Duration = Duration::from_secs(1);

/// Sends the core [`Event::Tick`] every second. A full inbox skips a tick:
/// the next one finds the same deadlines due.
async fn tick(core: mpsc::Sender<Event>, stop: CancellationToken) {
    let mut interval = tokio::time::interval(TICK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.cancelled() => return,
        }
        match core.try_send(Event::Tick) {
            Err(mpsc::error::TrySendError::Closed(_)) => return,
            _ => continue,
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

    /// The `[[http]]` listeners' bound addresses, in the configuration's
    /// order, with the ports the system picked for port 0 (without the
    /// built-in default when its address was taken).
    pub fn http_addrs(&self) -> &[SocketAddr] {
        &self.http_addrs
    }

    /// Reloads the configuration file, as an operator's REHASH does.
    pub async fn rehash(&self) {
        let _ = self.inbox.send(Event::Rehash { requested_by: None }).await;
    }

    /// The history the core records into, when enabled.
    pub fn history(&self) -> Option<history::HistoryHandle> {
        self.history.as_ref().map(History::handle)
    }

    /// The server's figures, as `/metrics` renders them.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Stops accepting, sends every client an ERROR, waits for the core and
    /// the connections, then commits the last history and closes it.
    pub async fn shutdown(self) {
        self.stop_accepting.cancel();
        let _ = self.inbox.send(Event::Shutdown).await;
        let _ = self.core.await;
        if let Some((stop, link)) = self.network {
            stop.cancel();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, link).await;
        }
        // A K-line added just before the stop is still written to the file.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.worker).await;
        self.connections.close();
        // The history writer keeps committing meanwhile, so lines waiting
        // for their record can still be flushed.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.connections.wait()).await;
        if let Some(history) = self.history {
            let _ = tokio::task::spawn_blocking(move || history.shutdown()).await;
        }
        self.stop_http.cancel();
    }
}
