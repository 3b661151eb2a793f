//! The `rookery` command: run the server, check a configuration, hash an
//! operator password, export a room's history.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rookery::config::{self, Config, Listen};
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
        None => run(cli.config, cli.listen),
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

fn export_history(
    config_path: Option<&std::path::Path>,
    room: &str,
    since: Option<i64>,
) -> ExitCode {
    let config = match config_path.map(config::load) {
        Some(Ok(config)) => config,
        Some(Err(error)) => {
            eprintln!("rookery: {error}");
            return ExitCode::FAILURE;
        }
        None => Config::default(),
    };
    let store = match rookery::history::Store::open_existing(&config.history.path) {
        Ok(store) => store,
        Err(error) => {
            eprintln!("rookery: {error}");
            return ExitCode::FAILURE;
        }
    };
    let target = config.server.casemapping.fold(room);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match rookery::history::export::export(&store, &target, since, &mut out) {
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

fn passwd() -> ExitCode {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    eprintln!("Password (one line on standard input):");
    let mut line = String::new();
    if let Err(error) = std::io::stdin().lock().read_line(&mut line) {
        eprintln!("cannot read the password: {error}");
        return ExitCode::FAILURE;
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!("the password is empty");
        return ExitCode::FAILURE;
    }
    let salt = SaltString::generate(&mut OsRng);
    match argon2::Argon2::default().hash_password(password.as_bytes(), &salt) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("cannot hash the password: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(config_path: Option<PathBuf>, listen: Vec<SocketAddr>) -> ExitCode {
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
