//! rookery-bench: a load generator for any IRC server on this machine.
//!
//! Scenarios: `connect` (clients register: connects per second, failures),
//! `fanout` (rooms × members × senders: deliveries per second, latency,
//! loss), `idle` (registered clients: server memory per client) and `churn`
//! (joins, parts, nick changes and reconnects while rooms chat). Every run is
//! bounded in clients and time, and talks to loopback addresses only unless
//! `--allow-remote` is given.

mod client;
mod connect;
mod fanout;
mod histogram;
mod procfs;
mod report;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant};

use connect::Pacing;
use report::Report;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Load generator for IRC servers: connect, fanout, idle, churn"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// N clients register; connects per second and failures.
    Connect {
        #[command(flatten)]
        common: Common,
        /// Clients to register (all stay connected until the end).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=20_000))]
        clients: u32,
    },
    /// Rooms × members × senders; deliveries per second, latency, loss.
    Fanout {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        rooms: RoomArgs,
    },
    /// N registered clients sit idle; server memory per client.
    Idle {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=20_000))]
        clients: u32,
        /// Seconds to wait after the last registration before reading memory.
        #[arg(long, default_value_t = 2.0)]
        settle: f64,
    },
    /// Rooms chat at a fixed rate while churners join, part, change nick
    /// and reconnect.
    Churn {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        rooms: RoomArgs,
        /// Clients that come and go.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=5_000))]
        churners: u32,
        /// Churn operations per second, across all churners.
        #[arg(long, default_value_t = 200.0)]
        churn_rate: f64,
    },
}

/// What every scenario takes.
#[derive(Args, Debug)]
struct Common {
    /// The server, as host:port; loopback only unless --allow-remote.
    #[arg(long, default_value = "127.0.0.1:6667")]
    server: String,
    /// The server's process id, to read its CPU time and memory from /proc.
    #[arg(long)]
    pid: Option<u32>,
    /// A name for the server in the report.
    #[arg(long)]
    label: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Allow a non-loopback server address. Load a server you run yourself.
    #[arg(long)]
    allow_remote: bool,
    /// Registrations in flight at once.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// New connections per second at most (default: as fast as allowed).
    #[arg(long)]
    connect_rate: Option<f64>,
    /// Seconds one phase (a registration, the joins) may take.
    #[arg(long, default_value_t = 60.0)]
    phase_timeout: f64,
    /// Seconds the whole run may take before it is abandoned.
    #[arg(long, default_value_t = 300.0)]
    max_seconds: f64,
    /// Worker threads for the generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// The shape of the rooms in `fanout` and `churn`.
#[derive(Args, Debug)]
struct RoomArgs {
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    rooms: u32,
    /// Members per room, senders included.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(2..=10_000))]
    members: u32,
    /// Members per room that send.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100))]
    senders: u32,
    /// Messages each sender sends (or --rate × --duration).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    messages: u32,
    /// Messages per second per sender (default: as fast as the window allows).
    #[arg(long)]
    rate: Option<f64>,
    /// With --rate: send for this many seconds instead of --messages.
    #[arg(long)]
    duration: Option<f64>,
    /// Bytes of text per message (at least the 30 the stamp takes).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Messages per sender not yet delivered to every member, at most.
    #[arg(long, default_value_t = 20)]
    window: usize,
    /// Seconds to wait for missing deliveries after the last send.
    #[arg(long, default_value_t = 3.0)]
    drain: f64,
}

impl RoomArgs {
    fn plan(&self) -> Result<fanout::Plan, String> {
        let messages = match (self.duration, self.rate) {
            (Some(duration), Some(rate)) => (duration * rate).ceil().max(1.0) as usize,
            (Some(_), None) => return Err("--duration needs --rate".to_owned()),
            (None, _) => self.messages as usize,
        };
        if self.senders > self.members {
            return Err("--senders cannot exceed --members".to_owned());
        }
        Ok(fanout::Plan {
            rooms: self.rooms as usize,
            members: self.members as usize,
            senders: self.senders as usize,
            messages,
            size: self.size,
            rate: self.rate.filter(|rate| *rate > 0.0),
            window: self.window.max(1),
            drain: Duration::from_secs_f64(self.drain),
            stall: Duration::from_secs(2),
            churn: None,
        })
    }

    fn params(&self, plan: &fanout::Plan) -> serde_json::Value {
        json!({
            "rooms": plan.rooms, "members": plan.members, "senders": plan.senders,
            "messages": plan.messages, "size": plan.size, "rate": plan.rate,
            "window": plan.window,
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let common = match &cli.scenario {
        Scenario::Connect { common, .. }
        | Scenario::Fanout { common, .. }
        | Scenario::Idle { common, .. }
        | Scenario::Churn { common, .. } => common,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(common.threads.max(1))
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(&cli.scenario, common)) {
        Ok(report) => {
            if common.json {
                println!(
                    "{}",
                    serde_json::to_string(&report).expect("a report serializes")
                );
            } else {
                report.print_table();
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("rookery-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves the server address and refuses non-loopback ones unless allowed.
async fn resolve(common: &Common) -> Result<SocketAddr, String> {
    let address = tokio::net::lookup_host(&common.server)
        .await
        .map_err(|error| format!("cannot resolve {}: {error}", common.server))?
        .next()
        .ok_or_else(|| format!("{} resolves to no address", common.server))?;
    if !address.ip().is_loopback() && !common.allow_remote {
        return Err(format!(
            "{address} is not a loopback address; load only servers on this machine, \
             or pass --allow-remote for one you run yourself"
        ));
    }
    Ok(address)
}

async fn run(scenario: &Scenario, common: &Common) -> Result<Report, String> {
    let server = resolve(common).await?;
    let files = procfs::raise_file_limit();
    let pacing = Pacing {
        concurrency: common.concurrency,
        rate: common.connect_rate.filter(|rate| *rate > 0.0),
        limit: Duration::from_secs_f64(common.phase_timeout),
    };
    let limit = Duration::from_secs_f64(common.max_seconds);
    let work = async {
        match scenario {
            Scenario::Connect { clients, .. } => {
                connect_scenario(server, common.pid, pacing, *clients as usize, files).await
            }
            Scenario::Idle {
                clients, settle, ..
            } => idle_scenario(server, common.pid, pacing, *clients as usize, *settle).await,
            Scenario::Fanout { rooms, .. } => {
                let plan = rooms.plan()?;
                let mut report = Report::new("fanout", server.to_string(), rooms.params(&plan));
                fanout::run(server, common.pid, pacing, plan, &mut report).await;
                Ok(report)
            }
            Scenario::Churn {
                rooms,
                churners,
                churn_rate,
                ..
            } => {
                let mut plan = rooms.plan()?;
                if plan.rate.is_none() {
                    return Err("churn needs --rate: chat at a fixed pace".to_owned());
                }
                plan.churn = Some(fanout::Churn {
                    churners: *churners as usize,
                    rate: churn_rate.max(0.1),
                });
                let mut params = rooms.params(&plan);
                params["churners"] = json!(churners);
                params["churn_rate"] = json!(churn_rate);
                let mut report = Report::new("churn", server.to_string(), params);
                fanout::run(server, common.pid, pacing, plan, &mut report).await;
                Ok(report)
            }
        }
    };
    let mut report = tokio::time::timeout(limit, work).await.map_err(|_| {
        format!(
            "the run took longer than --max-seconds {}",
            common.max_seconds
        )
    })??;
    report.label = common.label.clone();
    Ok(report)
}

async fn connect_scenario(
    server: SocketAddr,
    pid: Option<u32>,
    pacing: Pacing,
    clients: usize,
    files: u64,
) -> Result<Report, String> {
    if (clients as u64) + 64 > files {
        return Err(format!(
            "{clients} clients need more open files than the limit of {files}"
        ));
    }
    let params =
        json!({ "clients": clients, "concurrency": pacing.concurrency, "rate": pacing.rate });
    let mut report = Report::new("connect", server.to_string(), params);
    let server_before = pid.and_then(|pid| procfs::sample(Some(pid)));
    let self_before = procfs::sample(None);
    let connected = connect::connect_all(server, 'k', 0, clients, pacing).await;
    let wall = connected.elapsed.as_secs_f64();
    let server_after = pid.and_then(|pid| procfs::sample(Some(pid)));
    let self_after = procfs::sample(None);
    let registered = clients - connected.failed();
    report.add("connects_per_second", registered as f64 / wall, "/s");
    report.add("registered", registered as f64, "clients");
    report.add("failures", connected.failed() as f64, "clients");
    report.add("elapsed_seconds", wall, "s");
    fanout::add_cpu(
        &mut report,
        server_before,
        server_after,
        self_before,
        self_after,
        wall,
    );
    for failure in connected.failures {
        report.fail(failure);
    }
    Ok(report)
}

async fn idle_scenario(
    server: SocketAddr,
    pid: Option<u32>,
    pacing: Pacing,
    clients: usize,
    settle: f64,
) -> Result<Report, String> {
    let Some(pid) = pid else {
        return Err("idle measures the server's memory: pass --pid".to_owned());
    };
    let params = json!({ "clients": clients, "settle": settle });
    let mut report = Report::new("idle", server.to_string(), params);
    let before = procfs::sample(Some(pid)).ok_or("cannot read the server's /proc entry")?;
    let started = Instant::now();
    let connected = connect::connect_all(server, 'i', 0, clients, pacing).await;
    let failed = connected.failed();
    for failure in connected.failures {
        report.fail(failure);
    }
    let mut idle = JoinSet::new();
    for client in connected.clients.into_iter().flatten() {
        idle.spawn(connect::idle_loop(client));
    }
    connect::settle(Duration::from_secs_f64(settle)).await;
    let after = procfs::sample(Some(pid)).ok_or("the server went away")?;
    let registered = clients - failed;
    let grown = after.rss_bytes.saturating_sub(before.rss_bytes) as f64;
    report.add(
        "rss_per_client_kib",
        grown / 1024.0 / registered.max(1) as f64,
        "KiB",
    );
    report.add("rss_before_mib", before.rss_bytes as f64 / 1048576.0, "MiB");
    report.add("rss_after_mib", after.rss_bytes as f64 / 1048576.0, "MiB");
    report.add("registered", registered as f64, "clients");
    report.add("failures", failed as f64, "clients");
    report.add("elapsed_seconds", started.elapsed().as_secs_f64(), "s");
    idle.abort_all();
    Ok(report)
}
