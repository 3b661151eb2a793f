//! Shared test support: an in-process server on port 0 and a line-based
//! client that waits for expected lines instead of sleeping.

#![allow(dead_code)]

pub mod nats;
pub mod network;
pub mod postgres;

use std::net::SocketAddr;
use std::time::Duration;

use rookery::config::{self, Config};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf, WriteHalf,
};
use tokio::net::TcpStream;

/// How long a test waits for one expected line.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(5);

/// The configuration tests start from: defaults, a fixed name, no flood
/// control, no history, bans kept in memory, a port the system picks, no
/// HTTP listener.
pub fn test_config(extra_toml: &str) -> Config {
    let defaults = [
        ("server.name", "\"irc.test\""),
        ("server.bans_file", "\"\""),
        ("flood.enabled", "false"),
        ("history.enabled", "false"),
        // Tests name clients by their real 127.0.0.1 host and test the
        // per-IP limits from loopback.
        ("cloaking.enabled", "false"),
        ("limits.exempt_ips", "[]"),
        // Tests run side by side: none may take the default HTTP port.
        ("http", "[]"),
    ];
    // Dotted keys must come before the [[listen]] table to stay at the root;
    // a key the caller sets replaces its default (TOML forbids repeats).
    let mut text = format!("{extra_toml}\n");
    for (key, value) in defaults {
        let set = extra_toml
            .lines()
            .any(|line| line.split('=').next().map(str::trim) == Some(key));
        if !set {
            text.push_str(&format!("{key} = {value}\n"));
        }
    }
    text.push_str("[[listen]]\naddress = \"127.0.0.1:0\"\n");
    match config::parse(&text, std::path::Path::new("test.toml")) {
        Ok(config) => config,
        Err(error) => panic!("bad test configuration: {error}"),
    }
}

/// [`test_config`] with history on, kept in `db`.
pub fn test_config_with_history(db: &std::path::Path, extra_toml: &str) -> Config {
    let text = format!(
        "server.name = \"irc.test\"\nflood.enabled = false\ncloaking.enabled = false\nhttp = []\n\
         history.enabled = true\nhistory.path = {:?}\n{extra_toml}\n\
         [[listen]]\naddress = \"127.0.0.1:0\"\n",
        db.display().to_string()
    );
    match config::parse(&text, std::path::Path::new("test.toml")) {
        Ok(config) => config,
        Err(error) => panic!("bad test configuration: {error}"),
    }
}

/// A directory in the temporary directory, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("rookery-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A raw IRC client, over TCP unless another stream (TLS) is given.
pub struct Client<S = TcpStream> {
    reader: BufReader<ReadHalf<S>>,
    writer: WriteHalf<S>,
    /// Every line received so far, for failure reports.
    pub received: Vec<String>,
    /// How long [`Client::next_line`] waits; [`LINE_TIMEOUT`] unless set.
    pub line_timeout: Duration,
}

impl Client<TcpStream> {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the test server");
        Client::over(stream)
    }

    /// Connects from `local`, another loopback address such as 127.0.0.2,
    /// so per-address rules can be tested on one machine.
    pub async fn connect_from(addr: SocketAddr, local: std::net::IpAddr) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind(SocketAddr::new(local, 0))
            .expect("bind to a loopback address");
        let stream = socket
            .connect(addr)
            .await
            .expect("connect to the test server");
        Client::over(stream)
    }

    /// Registers as `nick` and waits for the end of the MOTD.
    pub async fn register(addr: SocketAddr, nick: &str) -> Client {
        let mut client = Client::connect(addr).await;
        client.register_as(nick).await;
        client
    }

    /// Connects as `nick` and runs SASL PLAIN for `account`; returns the
    /// client, registered, and the lines of the exchange, the last of
    /// which ended it (903 or 904).
    pub async fn sasl_plain(
        addr: SocketAddr,
        nick: &str,
        account: &str,
        password: &str,
    ) -> (Client, Vec<String>) {
        use base64::Engine;
        let mut client = Client::connect(addr).await;
        client.send("CAP LS 302").await;
        client.expect_containing("sasl").await;
        client.send("CAP REQ sasl").await;
        client.expect_containing("ACK").await;
        client.send(&format!("NICK {nick}")).await;
        client.send(&format!("USER {nick} 0 * :{nick}")).await;
        client.send("AUTHENTICATE PLAIN").await;
        assert_eq!(client.next_line().await.as_deref(), Some("AUTHENTICATE +"));
        let response = base64::engine::general_purpose::STANDARD
            .encode(format!("{account}\0{account}\0{password}"));
        client.send(&format!("AUTHENTICATE {response}")).await;
        let mut exchange = Vec::new();
        loop {
            let line = client.next_line().await.expect("the exchange ends");
            let end = line.contains(" 903 ") || line.contains(" 904 ");
            exchange.push(line);
            if end {
                break;
            }
        }
        client.send("CAP END").await;
        client.expect_containing(" 376 ").await;
        (client, exchange)
    }

    /// Sends `line`, then a PING, and returns every line up to its PONG:
    /// commands are answered in order, so that is the whole answer.
    pub async fn answer(&mut self, line: &str) -> Vec<String> {
        self.send(line).await;
        self.send("PING :answered").await;
        let mut lines = Vec::new();
        loop {
            let line = self.next_line().await.expect("the PONG comes");
            if line.contains(" PONG ") && line.ends_with(":answered") {
                return lines;
            }
            lines.push(line);
        }
    }

    /// The lines up to and including the first that contains `needle`.
    pub async fn lines_until(&mut self, needle: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self
                .next_line()
                .await
                .unwrap_or_else(|| panic!("no line containing {needle:?}; got {lines:#?}"));
            let done = line.contains(needle);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Registers as `nick` with `caps` acknowledged before the welcome
    /// (CAP LS 302 first, as current clients do).
    pub async fn with_caps(addr: SocketAddr, nick: &str, caps: &str) -> Client {
        let mut client = Client::connect(addr).await;
        client.send("CAP LS 302").await;
        client.send(&format!("NICK {nick}")).await;
        client.send(&format!("USER {nick} 0 * :{nick}")).await;
        client.send(&format!("CAP REQ :{caps}")).await;
        client.expect_containing(" ACK ").await;
        client.send("CAP END").await;
        client.expect_containing(" 376 ").await;
        client
    }

    /// Registers as `nick`, joins `room` and waits for its end of NAMES.
    pub async fn register_in(addr: SocketAddr, nick: &str, room: &str) -> Client {
        let mut client = Client::register(addr, nick).await;
        client.send(&format!("JOIN {room}")).await;
        client
            .expect_containing(&format!(" 366 {nick} {room}"))
            .await;
        client
    }

    /// Registers as `nick` and creates the account `nick` with NickServ
    /// REGISTER; returns once it is logged in (900) and NickServ said so.
    pub async fn with_account(addr: SocketAddr, nick: &str, password: &str) -> Client {
        let mut client = Client::register(addr, nick).await;
        client
            .send(&format!("PRIVMSG NickServ :REGISTER {password}"))
            .await;
        client.expect_containing(" 900 ").await;
        client
            .expect_containing(&format!("NOTICE {nick} :Account "))
            .await;
        client
    }
}

impl<S: AsyncRead + AsyncWrite> Client<S> {
    /// A client over an already connected stream.
    pub fn over(stream: S) -> Client<S> {
        let (reader, writer) = tokio::io::split(stream);
        Client {
            reader: BufReader::new(reader),
            writer,
            received: Vec::new(),
            line_timeout: LINE_TIMEOUT,
        }
    }

    /// Sends NICK and USER and waits for the end of the MOTD.
    pub async fn register_as(&mut self, nick: &str) {
        self.send(&format!("NICK {nick}")).await;
        self.send(&format!("USER {nick} 0 * :{nick}")).await;
        self.expect_containing(" 376 ").await;
    }

    pub async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer
            .write_all(bytes)
            .await
            .expect("write to the test server");
    }

    /// The next line, or `None` at EOF or after the line timeout.
    pub async fn next_line(&mut self) -> Option<String> {
        self.line_within(self.line_timeout).await
    }

    /// The next line if one arrives within `wait`: for checking that a
    /// line is being held back.
    pub async fn line_within(&mut self, wait: Duration) -> Option<String> {
        match self.read_line(wait).await {
            Ok(Some(line)) => Some(line),
            _ => None,
        }
    }

    /// Skips lines until one contains `needle`; panics with what came instead.
    pub async fn expect_containing(&mut self, needle: &str) -> String {
        loop {
            match self.next_line().await {
                Some(line) if line.contains(needle) => return line,
                Some(_) => continue,
                None => panic!(
                    "expected a line containing {needle:?}; received {:#?}",
                    self.received
                ),
            }
        }
    }

    /// Sends `CAP LS 302` and returns every capability listed, gathered
    /// from the reply's lines (`CAP * LS * :…` until the last, `CAP * LS :…`).
    pub async fn cap_ls(&mut self) -> String {
        self.send("CAP LS 302").await;
        let mut caps = Vec::new();
        loop {
            let line = self.expect_containing(" LS ").await;
            let (_, listed) = line.split_once(" :").expect("a CAP LS line has a list");
            caps.push(listed.to_owned());
            if !line.contains(" LS * :") {
                return caps.join(" ");
            }
        }
    }

    /// True when the server closed the connection (within the timeout).
    pub async fn is_closed(&mut self) -> bool {
        loop {
            match self.read_line(self.line_timeout).await {
                Ok(None) => return true,
                Ok(Some(_)) => continue,
                Err(()) => return false,
            }
        }
    }

    /// One line without its CR LF, recorded in `received`; `Ok(None)` at
    /// EOF or on a read error, `Err` when `wait` passes first.
    async fn read_line(&mut self, wait: Duration) -> Result<Option<String>, ()> {
        let mut buf = Vec::new();
        match tokio::time::timeout(wait, self.reader.read_until(b'\n', &mut buf)).await {
            Err(_) => Err(()),
            Ok(Ok(0)) | Ok(Err(_)) => Ok(None),
            Ok(Ok(_)) => {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                self.received.push(line.clone());
                Ok(Some(line))
            }
        }
    }
}

/// The port in the server's `listening on 127.0.0.1:PORT` log line, for
/// tests that run the binary with `--listen 127.0.0.1:0`.
pub fn listening_port(log_line: &str) -> Option<u16> {
    const NEEDLE: &str = "listening on 127.0.0.1:";
    let at = log_line.find(NEEDLE)? + NEEDLE.len();
    let digits: String = log_line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The `rookery` binary started by `command` (its directory and arguments
/// set by the caller) on `--listen 127.0.0.1:0`, once it has logged the
/// port it listens on. The rest of its log is read on a thread, so the
/// server never writes into a closed pipe; join it for the lines.
pub fn spawn_listening(
    mut command: std::process::Command,
) -> (
    std::process::Child,
    u16,
    std::thread::JoinHandle<Vec<String>>,
) {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = command
        .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut log = std::io::BufReader::new(stderr).lines();
    let port = log
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| listening_port(&line))
        .expect("a 'listening on' line with the port");
    let rest = std::thread::spawn(move || log.map_while(Result::ok).collect());
    (child, port, rest)
}
