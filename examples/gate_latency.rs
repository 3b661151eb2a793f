//! Measures what holding each room line until its history record is
//! committed costs: the time from a PRIVMSG leaving the sender to it
//! reaching another member, with history off and on.
//!
//! `cargo run --release --example gate_latency [messages]`

use std::time::{Duration, Instant};

use rookery::config;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    async fn join(addr: std::net::SocketAddr, nick: &str) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        // One small line per round trip: Nagle would add delayed-ACK stalls.
        stream.set_nodelay(true)?;
        let (reader, writer) = stream.into_split();
        let mut client = Client {
            reader: BufReader::new(reader),
            writer,
        };
        let hello = format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN #room\r\n");
        client.writer.write_all(hello.as_bytes()).await?;
        client.wait_for(" 366 ").await?;
        Ok(client)
    }

    async fn wait_for(&mut self, needle: &str) -> std::io::Result<()> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line.contains(needle) {
                return Ok(());
            }
        }
    }
}

/// Round-trip times of `count` messages sent one after another.
async fn measure(
    history: Option<&std::path::Path>,
    count: usize,
) -> std::io::Result<Vec<Duration>> {
    let history = match history {
        Some(path) => format!(
            "history.enabled = true\nhistory.path = {:?}\n",
            path.display().to_string()
        ),
        None => "history.enabled = false\n".to_owned(),
    };
    let text = format!("flood.enabled = false\n{history}[[listen]]\naddress = \"127.0.0.1:0\"\n");
    let config = config::parse(&text, std::path::Path::new("latency.toml"))
        .map_err(std::io::Error::other)?;
    let server = rookery::start(config)
        .await
        .map_err(std::io::Error::other)?;
    let addr = server.local_addrs()[0];
    let mut sender = Client::join(addr, "sender").await?;
    let mut receiver = Client::join(addr, "receiver").await?;
    sender.wait_for("JOIN #room").await?;
    let mut times = Vec::with_capacity(count);
    for n in 0..count {
        let started = Instant::now();
        sender
            .writer
            .write_all(format!("PRIVMSG #room :m{n}\r\n").as_bytes())
            .await?;
        receiver.wait_for(&format!(":m{n}\r")).await?;
        times.push(started.elapsed());
    }
    server.shutdown().await;
    Ok(times)
}

fn report(label: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |fraction: f64| times[((times.len() - 1) as f64 * fraction) as usize];
    println!(
        "{label:<12} n={} median={:?} p99={:?} max={:?}",
        times.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000);
    let dir = std::env::temp_dir().join(format!("rookery-latency-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let off = measure(None, count).await?;
    let on = measure(Some(&dir.join("history.db")), count).await?;
    report("history off", off);
    report("history on", on);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
