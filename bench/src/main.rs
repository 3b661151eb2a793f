//! rookery-bench: a load generator for any IRC server on this machine.
//!
//! Scenarios: `connect` (clients register: connects per second, failures),
//! `fanout` (rooms × members × senders: deliveries per second, latency,
//! loss), `idle` (registered clients, optionally in rooms: server memory per
//! client), `churn` (joins, parts, nick changes and reconnects while rooms
//! chat), `join` (clients joining one big room: seconds until all are in)
//! and `rounds` (fan-out rounds on one server: its memory before and after).
//! Every run is bounded in clients and time, and talks to loopback addresses
//! only unless `--allow-remote` is given; `--tls` connects over TLS.

mod client;
mod connect;
mod fanout;
mod histogram;
mod join;
mod procfs;
mod report;
mod tls;

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
    about = "Load generator for IRC servers: connect, fanout, idle, churn, join, rounds"
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
        /// Rooms the clients are spread over (client i joins room i mod N);
        /// 0 for none.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1_000))]
        rooms: u32,
    },
    /// N registered clients join one room at once: seconds until every one
    /// has seen its JOIN and the end of NAMES.
    Join {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=20_000))]
        clients: u32,
        /// A mode the first member (an operator) sets before the rest join,
        /// such as `+u`; refused, the report says so instead of a time.
        #[arg(long)]
        mode: Option<String>,
    },
    /// Fan-out rounds on one server, each with fresh clients: its memory at
    /// the start, after the rounds, and after a rest.
    Rounds {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        rooms: RoomArgs,
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
        rounds: u32,
        /// Seconds to wait before the first reading (the server settles).
        #[arg(long, default_value_t = 2.0)]
        start_wait: f64,
        /// Seconds to wait after the rounds before the last reading.
        #[arg(long, default_value_t = 35.0)]
        rest: f64,
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
    /// Connect over TLS, accepting any certificate (loopback test servers).
    #[arg(long)]
    tls: bool,
    /// Other nodes of the server's network (host:port, comma-separated):
    /// `fanout` and `churn` spread the members of each room over the
    /// server and these, in turn.
    #[arg(long, value_delimiter = ',')]
    also: Vec<String>,
    /// Those nodes' process ids, whose CPU time is added to the server's.
    #[arg(long, value_delimiter = ',')]
    also_pid: Vec<u32>,
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
        | Scenario::Churn { common, .. }
        | Scenario::Join { common, .. }
        | Scenario::Rounds { common, .. } => common,
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

/// The server and the other nodes of its network (`--also`).
async fn nodes(server: SocketAddr, common: &Common) -> Result<Vec<SocketAddr>, String> {
    let mut nodes = vec![server];
    for other in &common.also {
        nodes.push(resolve_one(other, common.allow_remote).await?);
    }
    Ok(nodes)
}

/// The processes whose CPU time counts as the server's.
fn pids(common: &Common) -> Vec<u32> {
    common.pid.iter().chain(&common.also_pid).copied().collect()
}

/// Resolves the server address and refuses non-loopback ones unless allowed.
async fn resolve(common: &Common) -> Result<SocketAddr, String> {
    resolve_one(&common.server, common.allow_remote).await
}

/// Resolves `server`, refusing a non-loopback address unless allowed.
async fn resolve_one(server: &str, allow_remote: bool) -> Result<SocketAddr, String> {
    let address = tokio::net::lookup_host(server)
        .await
        .map_err(|error| format!("cannot resolve {server}: {error}"))?
        .next()
        .ok_or_else(|| format!("{server} resolves to no address"))?;
    if !address.ip().is_loopback() && !allow_remote {
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
        tls: common.tls.then(tls::any_certificate).transpose()?,
    };
    let limit = Duration::from_secs_f64(common.max_seconds);
    let work = async {
        match scenario {
            Scenario::Connect { clients, .. } => {
                connect_scenario(server, common.pid, &pacing, *clients as usize, files).await
            }
            Scenario::Idle {
                clients,
                settle,
                rooms,
                ..
            } => {
                let shape = IdleShape {
                    clients: *clients as usize,
                    rooms: *rooms as usize,
                    settle: *settle,
                };
                idle_scenario(server, common.pid, &pacing, shape).await
            }
            Scenario::Fanout { rooms, .. } => {
                let plan = rooms.plan()?;
                let mut report = Report::new("fanout", server.to_string(), rooms.params(&plan));
                let nodes = nodes(server, common).await?;
                fanout::run(&nodes, &pids(common), &pacing, plan, &mut report).await;
                Ok(report)
            }
            Scenario::Join { clients, mode, .. } => {
                let params = json!({ "clients": clients, "mode": mode,
                                     "concurrency": pacing.concurrency });
                let mut report = Report::new("join", server.to_string(), params);
                let clients = *clients as usize;
                join::run(
                    server,
                    common.pid,
                    &pacing,
                    clients,
                    mode.as_deref(),
                    &mut report,
                )
                .await;
                Ok(report)
            }
            Scenario::Rounds {
                rooms,
                rounds,
                start_wait,
                rest,
                ..
            } => {
                let plan = rooms.plan()?;
                let mut params = rooms.params(&plan);
                params["rounds"] = json!(rounds);
                params["rest"] = json!(rest);
                let mut report = Report::new("rounds", server.to_string(), params);
                let shape = RoundsShape {
                    rounds: *rounds,
                    start_wait: *start_wait,
                    rest: *rest,
                };
                rounds_scenario(server, common.pid, &pacing, plan, shape, &mut report).await?;
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
                let nodes = nodes(server, common).await?;
                fanout::run(&nodes, &pids(common), &pacing, plan, &mut report).await;
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
    pacing: &Pacing,
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

/// How many clients `idle` holds, in how many rooms, and for how long.
struct IdleShape {
    clients: usize,
    rooms: usize,
    settle: f64,
}

async fn idle_scenario(
    server: SocketAddr,
    pid: Option<u32>,
    pacing: &Pacing,
    shape: IdleShape,
) -> Result<Report, String> {
    let Some(pid) = pid else {
        return Err("idle measures the server's memory: pass --pid".to_owned());
    };
    let IdleShape {
        clients,
        rooms,
        settle,
    } = shape;
    let params = json!({ "clients": clients, "settle": settle, "rooms": rooms,
                         "tls": pacing.tls.is_some() });
    let mut report = Report::new("idle", server.to_string(), params);
    let before = procfs::sample(Some(pid)).ok_or("cannot read the server's /proc entry")?;
    let started = Instant::now();
    let connected = connect::connect_all(server, 'i', 0, clients, pacing).await;
    let failed = connected.failed();
    for failure in connected.failures {
        report.fail(failure);
    }
    let registered: Vec<_> = connected.clients.into_iter().flatten().collect();
    let mut idle = JoinSet::new();
    let mut join_failures = 0;
    if rooms > 0 {
        let joined = join::join_all(registered, |i| format!("#idle{}", i % rooms), pacing).await;
        join_failures = joined.failures.len();
        for failure in joined.failures {
            report.fail(failure);
        }
        idle = joined.readers;
    } else {
        for client in registered {
            idle.spawn(connect::idle_loop(client));
        }
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
    if rooms > 0 {
        report.add("join_failures", join_failures as f64, "clients");
    }
    report.add("elapsed_seconds", started.elapsed().as_secs_f64(), "s");
    idle.abort_all();
    Ok(report)
}

/// How many fan-out rounds `rounds` runs and the waits around them.
struct RoundsShape {
    rounds: u32,
    start_wait: f64,
    rest: f64,
}

/// Memory after load: RSS after `start_wait`, the fan-out `rounds` times
/// (each with fresh clients, closed at its end), RSS, a rest, RSS again.
async fn rounds_scenario(
    server: SocketAddr,
    pid: Option<u32>,
    pacing: &Pacing,
    plan: fanout::Plan,
    shape: RoundsShape,
    report: &mut Report,
) -> Result<(), String> {
    let Some(pid) = pid else {
        return Err("rounds measures the server's memory: pass --pid".to_owned());
    };
    let rss_mib = || {
        procfs::sample(Some(pid))
            .map(|sample| sample.rss_bytes as f64 / 1048576.0)
            .ok_or("cannot read the server's /proc entry")
    };
    connect::settle(Duration::from_secs_f64(shape.start_wait)).await;
    let start = rss_mib()?;
    let mut lost = 0.0;
    let mut failures = 0.0;
    for _ in 0..shape.rounds {
        let mut round = Report::new("fanout", server.to_string(), json!({}));
        fanout::run(&[server], &[pid], pacing, plan.clone(), &mut round).await;
        for metric in &round.metrics {
            match metric.name {
                "lost_deliveries" => lost += metric.value,
                "connect_failures" => failures += metric.value,
                _ => {}
            }
        }
        for failure in round.failures {
            report.fail(failure);
        }
    }
    let loaded = rss_mib()?;
    connect::settle(Duration::from_secs_f64(shape.rest)).await;
    let rested = rss_mib()?;
    report.add("rss_start_mib", start, "MiB");
    report.add("rss_after_rounds_mib", loaded, "MiB");
    report.add("rss_after_rest_mib", rested, "MiB");
    report.add("rss_ratio", rested / start.max(f64::MIN_POSITIVE), "");
    report.add("lost_deliveries", lost, "");
    report.add("connect_failures", failures, "clients");
    Ok(())
}
