//! The `rookery` command: run the server, check a configuration, hash an
//! operator password, export a room's history, administer accounts.

use std::collections::HashSet;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rookery::accounts::{
    self, AccountError, Accounts, Credentials, DatabaseLock, LockError, Naming, Place,
};
use rookery::config::{self, Config, HttpListen, Listen};
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

/// An IRC server: rooms, private messages, history on disk.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The TOML configuration file (see config.example.toml).
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    /// An address to listen on, replacing the configured listeners; repeatable.
    #[arg(long)]
    listen: Vec<SocketAddr>,
    /// An address to serve HTTP and WebSocket on, replacing the configured
    /// [[http]] listeners; repeatable.
    #[arg(long)]
    http: Vec<SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration file: exit 0 when good, 1 with the error's place otherwise.
    CheckConfig { file: PathBuf },
    /// Read a password from standard input and print its argon2id hash.
    Passwd,
    /// Read the history database.
    History {
        #[command(subcommand)]
        command: HistoryCommand,
    },
    /// Administer accounts in the database. `list` and `show` also run
    /// beside a running server; the others need it stopped.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// One line per account: name, creation time (UTC), active or suspended.
    List,
    /// One account: email, status, nicks and certificates (never its password).
    Show { name: String },
    /// Register an account; its password is one line on standard input.
    Create {
        name: String,
        #[arg(long)]
        email: Option<String>,
    },
    /// Set a new password, read as one line from standard input.
    ResetPassword { name: String },
    /// Stop an account from logging in.
    Suspend {
        name: String,
        #[arg(long, default_value = "suspended by an administrator")]
        reason: String,
    },
    /// Let a suspended account log in again.
    Unsuspend { name: String },
}

#[derive(Subcommand)]
enum HistoryCommand {
    /// Print one room's history as JSON lines, one message per line, oldest first.
    Export {
        /// The room, as in '#room'; case does not matter.
        #[arg(long)]
        room: String,
        /// Only messages from this time on: RFC 3339 (2021-01-01T00:00:00Z) or Unix seconds.
        #[arg(long, value_parser = parse_since)]
        since: Option<i64>,
    },
    /// Copy this node's SQLite history ([history] path) into a PostgreSQL
    /// database; running it again copies nothing twice.
    Migrate {
        /// The database, as postgres://user@host:port/db.
        #[arg(long)]
        to: String,
    },
}

fn parse_since(text: &str) -> Result<i64, String> {
    rookery::history::export::parse_time(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { file }) => check_config(&file),
        Some(Command::Passwd) => passwd(),
        Some(Command::History {
            command: HistoryCommand::Export { room, since },
        }) => export_history(cli.config.as_deref(), &room, since),
        Some(Command::History {
            command: HistoryCommand::Migrate { to },
        }) => migrate_history(cli.config.as_deref(), &to),
        Some(Command::Accounts { command }) => administer_accounts(cli.config.as_deref(), command),
        None => run(cli.config, cli.listen, cli.http),
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match config::load(file) {
        Ok(_) => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn migrate_history(config_path: Option<&std::path::Path>, to: &str) -> ExitCode {
    let Some(config) = command_config(config_path) else {
        return ExitCode::FAILURE;
    };
    // Accounts first: a conversation of an account the database holds for
    // another account must not be copied where that account reads it.
    let accounts_copied = match migrate_accounts(&config, to) {
        Ok(copied) => copied,
        Err(error) => {
            eprintln!("rookery: accounts: {error}");
            return ExitCode::FAILURE;
        }
    };
    let casemapping = config.server.casemapping;
    let withheld: HashSet<_> = accounts_copied
        .conflicts
        .iter()
        .map(|name| casemapping.fold(name))
        .collect();
    let copied = rookery::history::Store::open_existing(&config.history.path).and_then(|from| {
        let mut into = rookery::history::postgres::PgStore::open(to, config.history_node())?;
        let copied = rookery::history::migrate::migrate(&from, &mut into, &withheld)?;
        Ok((copied, into.url().to_owned()))
    });
    match copied {
        Ok((copied, url)) => {
            let offered = copied.read.saturating_sub(copied.withheld);
            println!(
                "copied {} of {} lines to {url} ({} were there already)",
                copied.inserted,
                copied.read,
                offered.saturating_sub(copied.inserted)
            );
            // The lines' summary stays the report's first line, as before.
            report_accounts_copied(&accounts_copied);
            if copied.withheld > 0 {
                println!(
                    "not copied: {} private lines of the accounts not copied (the database's accounts of those names would read them)",
                    copied.withheld
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            report_accounts_copied(&accounts_copied);
            eprintln!("rookery: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The accounts of the node's SQLite file, copied beside its history so
/// that they log in on every node of the network.
fn migrate_accounts(
    config: &Config,
    to: &str,
) -> Result<accounts::transfer::AccountsCopied, AccountError> {
    let naming = Naming::from_config(config);
    let from = accounts::Store::open_read_only(&config.history.path, naming)?;
    let mut into = accounts::postgres::PgAccounts::open(to, naming)?;
    accounts::transfer::copy_accounts(&from, &mut into)
}

/// What the account copy did, and what it left for the administrator.
fn report_accounts_copied(copied: &accounts::transfer::AccountsCopied) {
    println!(
        "copied {} of {} accounts ({} were there already) and {} registered rooms ({} were there already)",
        copied.copied, copied.read, copied.already, copied.rooms_copied, copied.rooms_already
    );
    for name in &copied.conflicts {
        if copied.name_nicks_taken.contains(name) {
            println!("not copied: the account {name}, whose name is a nick of another account");
        } else {
            println!("not copied: the account {name} exists already as another account");
        }
    }
    for (nick, account) in &copied.nicks_kept {
        println!("not given to {account}: the nick {nick} belongs to another account");
    }
    if copied.certificates_kept > 0 {
        println!(
            "not copied: {} certificates another account holds",
            copied.certificates_kept
        );
    }
    for room in &copied.rooms_skipped {
        println!("not copied: the registered room {room}, whose founder was not copied");
    }
}

fn export_history(
    config_path: Option<&std::path::Path>,
    room: &str,
    since: Option<i64>,
) -> ExitCode {
    let Some(config) = command_config(config_path) else {
        return ExitCode::FAILURE;
    };
    let node = config.history_node();
    let mut store = match rookery::history::Backend::open_existing(&config.history, node) {
        Ok(store) => store,
        Err(error) => {
            eprintln!("rookery: {error}");
            return ExitCode::FAILURE;
        }
    };
    let target = config.server.casemapping.fold(room);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match rookery::history::export::export(&mut store, &target, since, &mut out) {
        Ok(_) => ExitCode::SUCCESS,
        // A reader that stopped early (`| head`) is not a failure.
        Err(rookery::history::export::ExportError::Write(error))
            if error.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("rookery: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration a command reads the database path and casemapping
/// from: the file given, or the defaults; `None` (reported) when the file
/// is bad.
fn command_config(config_path: Option<&std::path::Path>) -> Option<Config> {
    match config_path.map(config::load) {
        Some(Ok(config)) => Some(config),
        Some(Err(error)) => {
            eprintln!("rookery: {error}");
            None
        }
        None => Some(Config::default()),
    }
}

/// The exit status of an account command that would write while a server
/// runs on the database: EX_TEMPFAIL, "try again later" (once it is
/// stopped).
const EXIT_DATABASE_IN_USE: u8 = 75;

/// Why an account command failed.
#[derive(Debug, thiserror::Error)]
enum AccountsCommandError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Admin(#[from] accounts::admin::AdminError),
    #[error("{0}")]
    Password(String),
}

fn administer_accounts(
    config_path: Option<&std::path::Path>,
    command: AccountsCommand,
) -> ExitCode {
    let Some(config) = command_config(config_path) else {
        return ExitCode::FAILURE;
    };
    match run_accounts_command(&config, command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(AccountsCommandError::Lock(error @ LockError::Held(_))) => {
            eprintln!("rookery: {error}; stop the server to change accounts");
            ExitCode::from(EXIT_DATABASE_IN_USE)
        }
        Err(error) => {
            eprintln!("rookery: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_accounts_command(
    config: &Config,
    command: AccountsCommand,
) -> Result<(), AccountsCommandError> {
    let place = Place::of(&config.history);
    let naming = Naming::from_config(config);
    let mut out = std::io::stdout().lock();
    let now_ms = rookery::history::millis(std::time::SystemTime::now());
    // Reads need no lock: the database keeps them consistent beside the
    // server.
    let writing = || -> Result<(Option<DatabaseLock>, Accounts), AccountsCommandError> {
        let lock = command_lock(&place)?;
        Ok((lock, Accounts::open(&place, naming)?))
    };
    match command {
        AccountsCommand::List => {
            accounts::admin::list(&Accounts::open_read_only(&place, naming)?, &mut out)?;
        }
        AccountsCommand::Show { name } => {
            let store = Accounts::open_read_only(&place, naming)?;
            let account = store.find(&name)?.ok_or(AccountError::NotFound(name))?;
            accounts::admin::show(&store, &account, &mut out)?;
        }
        AccountsCommand::Create { name, email } => {
            let (_lock, mut store) = writing()?;
            // Said before the password is asked for, not after.
            if let Some(existing) = store.find(&name)? {
                return Err(AccountError::NameTaken(existing.name).into());
            }
            let credentials = new_credentials(&name)?;
            let account = store.create(&name, &credentials, email.as_deref(), now_ms)?;
            eprintln!("created the account {}", account.name);
        }
        AccountsCommand::ResetPassword { name } => {
            let (_lock, mut store) = writing()?;
            let account = store.find(&name)?.ok_or(AccountError::NotFound(name))?;
            store.set_password(&account.name, &new_credentials(&account.name)?)?;
            eprintln!("set a new password for {}", account.name);
        }
        AccountsCommand::Suspend { name, reason } => {
            let (_lock, mut store) = writing()?;
            let suspension = accounts::Suspension {
                reason,
                by: "console".to_owned(),
                at_ms: now_ms,
            };
            store.suspend(&name, &suspension)?;
            eprintln!("suspended {name}");
        }
        AccountsCommand::Unsuspend { name } => {
            let (_lock, mut store) = writing()?;
            store.unsuspend(&name)?;
            eprintln!("unsuspended {name}");
        }
    }
    Ok(())
}

/// The lock an account command writes under. A node's SQLite file is held
/// by its running server, whose caches were read from it at start, so the
/// command waits until the server is stopped. A shared PostgreSQL database
/// takes none: running nodes write its accounts all the time, each change
/// a transaction its `UNIQUE` keys keep names one in, so a command is one
/// more writer; refusing while any node runs would leave a network that is
/// never wholly stopped with no command line at all. What the nodes read
/// per login (passwords, suspensions, certificates) counts at once; what
/// they cached at start (the nicks an account created here owns) counts
/// from each node's next start.
fn command_lock(place: &Place) -> Result<Option<DatabaseLock>, LockError> {
    match place {
        Place::Sqlite(path) => DatabaseLock::acquire(path).map(Some),
        Place::Postgres(_) => Ok(None),
    }
}

/// Reads the password from standard input and derives what the account
/// keeps of it.
fn new_credentials(name: &str) -> Result<Credentials, AccountsCommandError> {
    eprintln!("Password for {name} (one line on standard input):");
    let password = read_password().map_err(AccountsCommandError::Password)?;
    Credentials::derive(&password).map_err(|error| AccountError::from(error).into())
}

fn passwd() -> ExitCode {
    eprintln!("Password (one line on standard input):");
    let password = match read_password() {
        Ok(password) => password,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    match rookery::accounts::password::hash(&password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// One line of standard input, without its line ending.
fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| format!("cannot read the password: {error}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn run(config_path: Option<PathBuf>, listen: Vec<SocketAddr>, http: Vec<SocketAddr>) -> ExitCode {
    let mut config = match &config_path {
        Some(path) => match config::load(path) {
            Ok(config) => config,
            Err(error) => {
                eprintln!("rookery: {error}");
                return ExitCode::FAILURE;
            }
        },
        None => Config::default(),
    };
    if !listen.is_empty() {
        config.listen = listen
            .into_iter()
            .map(|address| Listen { address, tls: None })
            .collect();
    }
    if !http.is_empty() {
        config.http = http.into_iter().map(HttpListen::plain).collect();
    }
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rookery: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config, config_path))
}

async fn serve(config: Config, config_path: Option<PathBuf>) -> ExitCode {
    // Handlers go in before the first client can connect, so an early
    // SIGTERM still means a clean shutdown.
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(err) => {
            eprintln!("rookery: cannot install signal handlers: {err}");
            return ExitCode::FAILURE;
        }
    };
    // The rest stands for what only tests attach (the `test-hooks` feature).
    #[allow(clippy::needless_update)]
    let options = rookery::server::Options {
        config_file: config_path,
        ..Default::default()
    };
    let server = match rookery::start_with(config, options).await {
        Ok(server) => server,
        Err(err) => {
            error!("{err}");
            eprintln!("rookery: {err}");
            return ExitCode::FAILURE;
        }
    };
    while signals.next().await == Signal::Reload {
        info!("SIGHUP: reloading the configuration");
        server.rehash().await;
    }
    info!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}

#[derive(Debug, PartialEq, Eq)]
enum Signal {
    Stop,
    Reload,
}

/// SIGINT and SIGTERM (stop) and SIGHUP (reload), listened for from startup on.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.terminate.recv() => Signal::Stop,
            _ = self.interrupt.recv() => Signal::Stop,
            _ = self.hangup.recv() => Signal::Reload,
        }
    }
}
