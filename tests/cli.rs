//! The `rookery` command as an admin uses it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_rookery");

fn example_config() -> String {
    format!("{}/config.example.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_config_accepts_the_example_file() {
    let output = Command::new(BIN)
        .args(["check-config", &example_config()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn check_config_names_a_misspelled_key_and_its_line() {
    let dir = std::env::temp_dir().join(format!("rookery-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[server]\nname = \"irc.example\"\n\n[limits]\nmax_client = 5\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["check-config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.toml:5:"), "{stderr}");
    assert!(stderr.contains("max_client"), "{stderr}");
}

#[test]
fn passwd_prints_an_argon2id_hash_on_its_last_line() {
    let mut child = Command::new(BIN)
        .arg("passwd")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let hash = stdout.lines().last().unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

#[test]
fn the_server_logs_its_port_and_exits_cleanly_on_sigterm() {
    // The default configuration keeps history in ./rookery.db: run elsewhere.
    let dir = std::env::temp_dir().join(format!("rookery-sigterm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(BIN);
    command.current_dir(&dir);
    let (mut child, port, log) = common::spawn_listening(command);
    let mut irc = TcpStream::connect(("127.0.0.1", port)).unwrap();
    irc.write_all(b"NICK alice\r\nUSER alice 0 * :Alice\r\n")
        .unwrap();
    let mut reader = BufReader::new(irc.try_clone().unwrap());
    let mut line = String::new();
    while !line.contains(" 376 ") {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "closed before the MOTD ended"
        );
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("ERROR :Server shutting down"), "{rest}");
    assert!(
        child.wait().unwrap().success(),
        "exit status 0 after SIGTERM"
    );
    let log = log.join().unwrap();
    assert!(
        log.iter().any(|line| line.contains("shutting down")),
        "{log:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn history_export_prints_a_rooms_lines_as_json_from_since() {
    use rookery::config::HistorySync;
    use rookery::history::{HistoryTarget, Record, Store};
    use rookery::proto::Casemapping;
    let dir = std::env::temp_dir().join(format!("rookery-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("history.db");
    let record = |msgid: &str, time_ms: i64, target: &str| Record {
        msgid: msgid.into(),
        time_ms,
        target: HistoryTarget::Room(Casemapping::Ascii.fold(target)),
        target_display: "#Room".into(),
        sender: "alice!~alice@127.0.0.1".into(),
        account: None,
        command: "PRIVMSG".into(),
        text: format!("hello {msgid}"),
        tags: String::new(),
    };
    let mut store = Store::open(&db, HistorySync::Normal).unwrap();
    store
        .insert_batch([
            &record("old", 1_609_459_199_000, "#room"),
            &record("new", 1_609_459_200_000, "#room"),
            &record("other", 1_609_459_200_000, "#other"),
        ])
        .unwrap();
    drop(store);
    let config = dir.join("rookery.toml");
    std::fs::write(
        &config,
        format!("[history]\npath = {:?}\n", db.display().to_string()),
    )
    .unwrap();
    let export = |since: &str| {
        let output = Command::new(BIN)
            .args(["history", "export", "--room", "#ROOM", "--since", since])
            .args(["--config", config.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let unix = export("1609459200");
    assert_eq!(unix.lines().count(), 1, "{unix}");
    assert!(unix.contains(r#""msgid":"new""#), "{unix}");
    assert!(
        unix.contains(r#""time":"2021-01-01T00:00:00.000Z""#),
        "{unix}"
    );
    assert_eq!(export("2020-12-31T00:00:00Z").lines().count(), 2);
    let bad = Command::new(BIN)
        .args(["history", "export", "--room", "#room", "--since", "soon"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn history_export_without_a_database_says_so() {
    let dir = std::env::temp_dir().join(format!("rookery-export-none-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("rookery.toml");
    let missing = dir.join("missing.db");
    std::fs::write(
        &config,
        format!("[history]\npath = {:?}\n", missing.display().to_string()),
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["history", "export", "--room", "#room"])
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no history database"), "{stderr}");
    assert!(!missing.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
