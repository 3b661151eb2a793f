//! No loss under kill -9: every room line any client received is in the
//! history database after the server is killed mid-stream and restarted.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use rookery::history::{HistoryTarget, Store, StoreError};
use rookery::proto::Casemapping;

const BIN: &str = env!("CARGO_BIN_EXE_rookery");
/// The server is killed once the clients have received this many lines…
const KILL_AFTER_LINES: usize = 20_000;
/// …or after this long, whichever comes first.
const KILL_AFTER: Duration = Duration::from_secs(2);
/// How long any one step may take before the test gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts the real binary on port 0 and returns it with its port.
fn spawn_server(config: &Path) -> (Child, u16) {
    let mut child = Command::new(BIN)
        .args([
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (port_tx, port_rx) = mpsc::channel();
    // Keep draining the log so the server never blocks on a full pipe.
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening on 127.0.0.1:") {
                let _ = port_tx.send(common::listening_port(&line));
            }
        }
    });
    let port = port_rx
        .recv_timeout(STEP_TIMEOUT)
        .ok()
        .flatten()
        .expect("a 'listening on' line with the port");
    (child, port)
}

/// A registered client in #room, its reader positioned after the join.
fn join(port: u16, nick: &str) -> (TcpStream, BufReader<TcpStream>) {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    write!(
        writer,
        "NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN #room\r\n"
    )
    .unwrap();
    let mut line = String::new();
    while !line.contains(" 366 ") {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "closed while joining"
        );
    }
    (writer, reader)
}

/// Reads until the connection ends, keeping the text of every room line.
fn receive(mut reader: BufReader<TcpStream>, counter: Arc<AtomicUsize>) -> Vec<String> {
    let mut texts = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return texts,
            Ok(_) => {}
        }
        // A line cut off by the kill never completed: it was not received.
        if !line.ends_with('\n') {
            return texts;
        }
        if let Some((_, text)) = line.trim_end().split_once(" PRIVMSG #room :") {
            // Playback on join puts the time in front of the text: `[hh:mm:ss] `.
            let text = match text.strip_prefix('[').and_then(|t| t.split_once("] ")) {
                Some((_, original)) => original,
                None => text,
            };
            texts.push(text.to_owned());
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends numbered lines as fast as the socket takes them, until it fails.
fn send(mut writer: TcpStream, nick: &'static str, stop: Arc<AtomicBool>) -> usize {
    let mut sent = 0;
    let mut chunk = String::new();
    while !stop.load(Ordering::Relaxed) {
        chunk.clear();
        for _ in 0..50 {
            chunk.push_str(&format!("PRIVMSG #room :{nick}-{sent}\r\n"));
            sent += 1;
        }
        if writer.write_all(chunk.as_bytes()).is_err() {
            break;
        }
    }
    sent
}

#[test]
fn every_line_a_client_received_is_in_history_after_kill_9() {
    let dir = TempDir(std::env::temp_dir().join(format!("rookery-kill9-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    let db = dir.0.join("history.db");
    let config = dir.0.join("rookery.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nname = \"irc.test\"\n[flood]\nenabled = false\n\
             [history]\nenabled = true\npath = {:?}\n\
             [cloaking]\nsecret_file = {:?}\n",
            db.display().to_string(),
            dir.0.join("cloak.key").display().to_string()
        ),
    )
    .unwrap();
    let (mut server, port) = spawn_server(&config);

    let received = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    let mut senders = Vec::new();
    for nick in ["listener1", "listener2"] {
        let (writer, reader) = join(port, nick);
        let counter = Arc::clone(&received);
        readers.push(thread::spawn(move || {
            let texts = receive(reader, counter);
            drop(writer);
            texts
        }));
    }
    // The senders read too: each receives the other's lines.
    for nick in ["talker1", "talker2"] {
        let (writer, reader) = join(port, nick);
        let counter = Arc::clone(&received);
        readers.push(thread::spawn(move || receive(reader, counter)));
        let stop = Arc::clone(&stop);
        senders.push(thread::spawn(move || send(writer, nick, stop)));
    }

    let started = Instant::now();
    while received.load(Ordering::Relaxed) < KILL_AFTER_LINES && started.elapsed() < KILL_AFTER {
        thread::sleep(Duration::from_millis(5));
    }
    let killed = Command::new("kill")
        .args(["-9", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = server.wait();
    stop.store(true, Ordering::Relaxed);

    let sent: usize = senders.into_iter().map(|s| s.join().unwrap()).sum();
    let mut seen = HashSet::new();
    let mut total = 0;
    for reader in readers {
        let texts = reader.join().unwrap();
        total += texts.len();
        seen.extend(texts);
    }
    assert!(!seen.is_empty(), "no line was received before the kill");

    // A restart recovers the database after the kill.
    let (mut restarted, _) = spawn_server(&config);
    let store = Store::open_existing(&db).unwrap();
    let mut stored = HashSet::new();
    let room = HistoryTarget::Room(Casemapping::Ascii.fold("#room"));
    store
        .for_each(&room, None, |record| {
            stored.insert(record.text);
            Ok::<_, StoreError>(())
        })
        .unwrap();
    drop(store);
    let _ = Command::new("kill")
        .args(["-TERM", &restarted.id().to_string()])
        .status();
    let _ = restarted.wait();

    let missing: Vec<&String> = seen.difference(&stored).collect();
    eprintln!(
        "sent {sent} lines, clients received {total} ({} distinct), the database holds {}",
        seen.len(),
        stored.len()
    );
    assert!(
        missing.is_empty(),
        "{} received lines are not in the database, such as {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}
