//! A minimal IRC client for load: registers (answering PING, retrying a taken
//! nick), then hands its halves to the scenario. Lines are read from one
//! growing buffer and split without copying. Over plain TCP, or over TLS
//! with `--tls` (loopback servers with throwaway certificates).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::{Duration, timeout};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

/// A connection's read side, TCP or TLS alike.
pub type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;

/// A connection's write side, TCP or TLS alike.
pub type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// The write half, shared by a reader answering PING and a sending task.
pub type Writer = Arc<Mutex<WriteHalf>>;

/// Why a client did not get registered.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("TLS handshake: {0}")]
    Handshake(io::Error),
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("server closed the connection: {0}")]
    Closed(String),
    #[error("no welcome within {0:?}")]
    Timeout(Duration),
}

/// Splits a socket's input into lines.
pub struct LineReader {
    half: ReadHalf,
    buf: BytesMut,
}

impl LineReader {
    fn new(half: ReadHalf) -> LineReader {
        LineReader {
            half,
            buf: BytesMut::with_capacity(16 * 1024),
        }
    }

    /// The next line without its CR LF, or `None` at end of stream.
    pub async fn next_line(&mut self) -> io::Result<Option<BytesMut>> {
        let mut scanned = 0;
        loop {
            if let Some(at) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let mut line = self.buf.split_to(scanned + at + 1);
                while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                    line.truncate(line.len() - 1);
                }
                return Ok(Some(line));
            }
            scanned = self.buf.len();
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(32 * 1024);
            }
            if self.half.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }
}

/// A line's command and what follows it, tags and source skipped.
pub fn command(line: &[u8]) -> (&[u8], &[u8]) {
    let mut rest = line;
    if rest.first() == Some(&b'@') {
        rest = after_space(rest);
    }
    if rest.first() == Some(&b':') {
        rest = after_space(rest);
    }
    match rest.iter().position(|&b| b == b' ') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[]),
    }
}

fn after_space(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == b' ') {
        Some(at) => &bytes[at + 1..],
        None => &[],
    }
}

/// The trailing parameter of a line's parameters, without its colon.
pub fn trailing(params: &[u8]) -> &[u8] {
    if params.first() == Some(&b':') {
        return &params[1..];
    }
    match params.windows(2).position(|pair| pair == b" :") {
        Some(at) => &params[at + 2..],
        None => params.rsplit(|&b| b == b' ').next().unwrap_or(&[]),
    }
}

/// The `PONG` answering a `PING` with these parameters.
pub fn pong(params: &[u8]) -> Vec<u8> {
    let mut line = b"PONG ".to_vec();
    line.extend_from_slice(params);
    line.extend_from_slice(b"\r\n");
    line
}

/// A registered client.
pub struct Registered {
    pub reader: LineReader,
    pub writer: Writer,
}

/// Connects and registers as `nick` (or a variant when it is taken), waiting
/// for the end of the MOTD (376) or its absence (422).
/// With `tls`, the connection is TLS first.
pub async fn register(
    server: SocketAddr,
    tls: Option<&TlsConnector>,
    nick: &str,
    limit: Duration,
) -> Result<Registered, Failure> {
    match timeout(limit, register_inner(server, tls, nick)).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Timeout(limit)),
    }
}

/// Connects over TCP, then TLS when asked, and splits the stream.
async fn dial(
    server: SocketAddr,
    tls: Option<&TlsConnector>,
) -> Result<(ReadHalf, WriteHalf), Failure> {
    let stream = TcpStream::connect(server).await.map_err(Failure::Connect)?;
    let _ = stream.set_nodelay(true);
    let Some(connector) = tls else {
        let (read, write) = stream.into_split();
        return Ok((Box::new(read), Box::new(write)));
    };
    // The name is not checked (see `tls::any_certificate`); SNI wants one.
    let name = ServerName::try_from("localhost").expect("a valid DNS name");
    let secured = connector
        .connect(name, stream)
        .await
        .map_err(Failure::Handshake)?;
    let (read, write) = tokio::io::split(secured);
    Ok((Box::new(read), Box::new(write)))
}

async fn register_inner(
    server: SocketAddr,
    tls: Option<&TlsConnector>,
    nick: &str,
) -> Result<Registered, Failure> {
    let (read, mut write) = dial(server, tls).await?;
    let mut reader = LineReader::new(read);
    let mut nick = nick.to_owned();
    let hello = format!("NICK {nick}\r\nUSER {nick} 0 * :rookery-bench\r\n");
    write.write_all(hello.as_bytes()).await?;
    write.flush().await?;
    let mut welcomed = false;
    let mut retries = 0;
    loop {
        let Some(line) = reader.next_line().await? else {
            return Err(Failure::Closed("end of stream".to_owned()));
        };
        let (command, params) = command(&line);
        match command {
            b"PING" => {
                write.write_all(&pong(params)).await?;
                write.flush().await?;
            }
            b"001" => welcomed = true,
            b"376" | b"422" if welcomed => break,
            b"432" | b"433" | b"436" if !welcomed && retries < 5 => {
                retries += 1;
                nick = format!("{}{retries}", &nick[..nick.len().min(8)]);
                write
                    .write_all(format!("NICK {nick}\r\n").as_bytes())
                    .await?;
                write.flush().await?;
            }
            b"ERROR" => {
                return Err(Failure::Closed(
                    String::from_utf8_lossy(trailing(params)).into_owned(),
                ));
            }
            _ => {}
        }
    }
    Ok(Registered {
        reader,
        writer: Arc::new(Mutex::new(write)),
    })
}

/// Writes `bytes` and flushes them: a TLS stream may hold them back
/// otherwise.
pub async fn send(writer: &Writer, bytes: &[u8]) -> io::Result<()> {
    let mut half = writer.lock().await;
    half.write_all(bytes).await?;
    half.flush().await
}

/// A nick from a number, short enough for a 9-character NICKLEN.
pub fn nick_for(prefix: char, n: usize) -> String {
    format!("{prefix}{n:x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_skips_tags_and_source() {
        let line = b"@time=x :a!b@c PRIVMSG #r :hello there";
        assert_eq!(command(line), (&b"PRIVMSG"[..], &b"#r :hello there"[..]));
        assert_eq!(command(b"PING :srv"), (&b"PING"[..], &b":srv"[..]));
    }

    #[test]
    fn trailing_finds_the_last_parameter() {
        assert_eq!(trailing(b"#r :hello there"), b"hello there");
        assert_eq!(trailing(b":srv"), b"srv");
        assert_eq!(trailing(b"a b"), b"b");
    }
}
