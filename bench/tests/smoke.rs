//! The load generator against an in-process server: a tiny fanout must
//! deliver every message to every other member of its room; joins, idle
//! clients in rooms and TLS clients must all get where they were sent.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A server on a free loopback port with nothing that would slow or refuse
/// a burst of clients from one address.
fn test_config() -> rookery::config::Config {
    let text = "server.name = \"irc.test\"\nserver.bans_file = \"\"\n\
                flood.enabled = false\nhistory.enabled = false\n\
                cloaking.enabled = false\nlimits.exempt_ips = []\n\
                [[listen]]\naddress = \"127.0.0.1:0\"\n";
    rookery::config::parse(text, Path::new("bench.toml")).expect("a valid configuration")
}

/// Runs rookery-bench with `args` and returns its JSON report.
async fn bench(args: Vec<String>) -> serde_json::Value {
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_rookery-bench"))
            .args(&args)
            .args(["--json", "--threads", "1", "--max-seconds", "30"])
            .output()
            .expect("rookery-bench runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "rookery-bench failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).expect("one JSON report")
}

/// The value of the metric `name` in `report`, if it has one.
fn metric(report: &serde_json::Value, name: &str) -> Option<f64> {
    report["metrics"]
        .as_array()?
        .iter()
        .find(|metric| metric["name"] == name)?["value"]
        .as_f64()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|arg| (*arg).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_fanout_loses_nothing() {
    let server = rookery::start(test_config()).await.expect("server starts");
    let address = server.local_addrs()[0].to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_rookery-bench"))
            .args(["fanout", "--server", &address, "--json", "--threads", "1"])
            .args(["--rooms", "2", "--members", "3", "--senders", "1"])
            .args(["--messages", "20", "--max-seconds", "30"])
            .output()
            .expect("rookery-bench runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "rookery-bench failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON report");
    let metric = |name: &str| {
        report["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|metric| metric["name"] == name)
            .and_then(|metric| metric["value"].as_f64())
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
    };
    // 2 rooms × 1 sender × 20 messages, each to the 2 other members.
    assert_eq!(metric("expected_deliveries"), 80.0);
    assert_eq!(metric("lost_deliveries"), 0.0);
    assert_eq!(metric("duplicate_deliveries"), 0.0);
    assert!(metric("deliveries_per_second") > 0.0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_of_a_join_ends_up_in_the_room() {
    let server = rookery::start(test_config()).await.expect("server starts");
    let address = server.local_addrs()[0].to_string();
    let pid = std::process::id().to_string();
    let report = bench(args(&[
        "join",
        "--server",
        &address,
        "--pid",
        &pid,
        "--clients",
        "30",
        "--concurrency",
        "7",
    ]))
    .await;
    assert_eq!(metric(&report, "joined"), Some(30.0), "{report}");
    assert_eq!(metric(&report, "join_failures"), Some(0.0), "{report}");
    assert!(metric(&report, "join_seconds").is_some(), "{report}");
    assert!(metric(&report, "server_cpu_percent").is_some(), "{report}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mode_the_server_refuses_is_reported_instead_of_a_time() {
    let server = rookery::start(test_config()).await.expect("server starts");
    let address = server.local_addrs()[0].to_string();
    // `+Z` is no channel mode of rookery's.
    let report = bench(args(&[
        "join",
        "--server",
        &address,
        "--clients",
        "3",
        "--mode",
        "+Z",
        "--phase-timeout",
        "10",
    ]))
    .await;
    assert_eq!(metric(&report, "mode_refused"), Some(1.0), "{report}");
    assert_eq!(metric(&report, "join_seconds"), None, "{report}");
    let failures = report["failures"].to_string();
    assert!(failures.contains("+Z refused"), "{report}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_spread_over_their_rooms() {
    let server = rookery::start(test_config()).await.expect("server starts");
    let address = server.local_addrs()[0].to_string();
    let pid = std::process::id().to_string();
    // A watcher in every room sees the bench's clients come in.
    let mut watcher = Watcher::join(&address, 4).await;
    let report = bench(args(&[
        "idle",
        "--server",
        &address,
        "--pid",
        &pid,
        "--clients",
        "20",
        "--rooms",
        "4",
        "--settle",
        "0",
    ]))
    .await;
    assert_eq!(metric(&report, "registered"), Some(20.0), "{report}");
    assert_eq!(metric(&report, "join_failures"), Some(0.0), "{report}");
    assert_eq!(report["params"]["rooms"], 4, "{report}");
    // Client i joined #idle(i mod 4): five in each room.
    assert_eq!(watcher.joins_until(20).await, vec![5, 5, 5, 5]);
    server.shutdown().await;
}

/// A plain client in rooms #idle0 … #idleN-1, counting others' JOINs.
struct Watcher {
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::net::TcpStream>>,
    rooms: usize,
}

impl Watcher {
    async fn join(address: &str, rooms: usize) -> Watcher {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let mut hello = "NICK watcher\r\nUSER watcher 0 * :watcher\r\n".to_owned();
        for room in 0..rooms {
            hello.push_str(&format!("JOIN #idle{room}\r\n"));
        }
        stream.write_all(hello.as_bytes()).await.unwrap();
        let mut watcher = Watcher {
            lines: BufReader::new(stream).lines(),
            rooms,
        };
        let mut ended = 0;
        while ended < rooms {
            let line = watcher.next().await;
            if line.contains(" 366 ") {
                ended += 1;
            }
        }
        watcher
    }

    async fn next(&mut self) -> String {
        let wait = std::time::Duration::from_secs(10);
        tokio::time::timeout(wait, self.lines.next_line())
            .await
            .expect("a line within 10 s")
            .unwrap()
            .expect("the connection stays open")
    }

    /// Others' JOINs per room, read until `total` have come.
    async fn joins_until(&mut self, total: usize) -> Vec<usize> {
        let mut joins = vec![0; self.rooms];
        while joins.iter().sum::<usize>() < total {
            let line = self.next().await;
            let mut words = line.split(' ');
            let (Some(_source), Some("JOIN"), Some(room)) =
                (words.next(), words.next(), words.next())
            else {
                continue;
            };
            let room = room.trim_start_matches(':');
            if let Some(n) = room
                .strip_prefix("#idle")
                .and_then(|n| n.parse::<usize>().ok())
            {
                joins[n] += 1;
            }
        }
        joins
    }
}

/// A self-signed certificate for `localhost`, written to a fresh folder.
fn certificate() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("rookery-bench-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_clients_register_and_idle_in_rooms() {
    let (cert, key) = certificate();
    let mut config = test_config();
    config.listen.push(rookery::config::Listen {
        address: "127.0.0.1:0".parse().unwrap(),
        tls: Some(rookery::config::Tls {
            cert: cert.clone(),
            key,
        }),
    });
    let server = rookery::start(config).await.expect("server starts");
    let address = server.local_addrs()[1].to_string();
    let pid = std::process::id().to_string();
    let report = bench(args(&[
        "idle",
        "--server",
        &address,
        "--pid",
        &pid,
        "--clients",
        "10",
        "--rooms",
        "2",
        "--settle",
        "0",
        "--tls",
    ]))
    .await;
    assert_eq!(metric(&report, "registered"), Some(10.0), "{report}");
    assert_eq!(metric(&report, "join_failures"), Some(0.0), "{report}");
    assert_eq!(report["params"]["tls"], true, "{report}");
    // The same port without --tls gets no welcome.
    let plain = bench(args(&[
        "connect",
        "--server",
        &address,
        "--clients",
        "1",
        "--phase-timeout",
        "2",
    ]))
    .await;
    assert_eq!(metric(&plain, "failures"), Some(1.0), "{plain}");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(cert.parent().unwrap());
}

#[test]
fn a_remote_server_is_refused_without_the_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_rookery-bench"))
        .args(["connect", "--server", "192.0.2.1:6667", "--clients", "1"])
        .output()
        .expect("rookery-bench runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a loopback address"));
}
