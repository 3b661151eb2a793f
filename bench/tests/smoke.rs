//! The load generator against an in-process server: a tiny fanout must
//! deliver every message to every other member of its room.

use std::path::Path;
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

#[test]
fn a_remote_server_is_refused_without_the_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_rookery-bench"))
        .args(["connect", "--server", "192.0.2.1:6667", "--clients", "1"])
        .output()
        .expect("rookery-bench runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a loopback address"));
}
