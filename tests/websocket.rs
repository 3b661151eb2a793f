//! IRC over WebSocket and the HTTP listener, over real sockets: a browser
//! client is an ordinary client, and the listener serves files, refuses
//! what it must, and answers operators.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Client, LINE_TIMEOUT, TempDir, test_config, test_config_with_history};
use futures_util::{SinkExt, StreamExt};
use rookery::config::{Config, ForwardedHeader, HttpListen};
use rookery::server::{self, ServerHandle};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::SignatureScheme;
use tokio_rustls::rustls::client::ResolvesClientCert;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

/// A server with one IRC listener and one HTTP listener on port 0.
async fn start(mut config: Config, http: HttpListen) -> (ServerHandle, SocketAddr, SocketAddr) {
    config.http = vec![http];
    let server = server::start(config).await.expect("the server starts");
    let irc = server.local_addrs()[0];
    let http = server.http_addrs()[0];
    (server, irc, http)
}

/// An HTTP listener on a port the system picks.
fn any_port() -> HttpListen {
    HttpListen::plain("127.0.0.1:0".parse().unwrap())
}

/// A WebSocket client that reads one IRC line per message.
struct WebClient<S> {
    socket: WebSocketStream<S>,
    /// The subprotocol the server answered with.
    subprotocol: Option<String>,
    received: Vec<String>,
}

/// Opens a WebSocket to `path` offering `subprotocols`, with extra headers.
async fn open_over<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    url: &str,
    subprotocols: &[&str],
    headers: &[(&'static str, &str)],
) -> Result<WebClient<S>, tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request()?;
    if !subprotocols.is_empty() {
        let offered = HeaderValue::from_str(&subprotocols.join(", ")).unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", offered);
    }
    for (name, value) in headers {
        request
            .headers_mut()
            .append(*name, HeaderValue::from_str(value).unwrap());
    }
    let (socket, response) = tokio_tungstenite::client_async(request, stream).await?;
    let subprotocol = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|value| value.to_str().unwrap().to_owned());
    Ok(WebClient {
        socket,
        subprotocol,
        received: Vec::new(),
    })
}

/// A server with a WebSocket client registered as `web`, no subprotocol asked.
async fn registered_web() -> (ServerHandle, WebClient<TcpStream>) {
    let (server, _irc, http) = start(test_config(""), any_port()).await;
    let mut web = open(http, &[], &[]).await.unwrap();
    web.register_as("web").await;
    (server, web)
}

async fn open(
    http: SocketAddr,
    subprotocols: &[&str],
    headers: &[(&'static str, &str)],
) -> Result<WebClient<TcpStream>, tokio_tungstenite::tungstenite::Error> {
    let stream = TcpStream::connect(http).await.unwrap();
    open_over(
        stream,
        &format!("ws://{http}/webirc"),
        subprotocols,
        headers,
    )
    .await
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebClient<S> {
    async fn send(&mut self, line: &str) {
        self.socket
            .send(Message::Text(line.into()))
            .await
            .expect("send a message");
    }

    async fn send_binary(&mut self, bytes: &'static [u8]) {
        self.socket
            .send(Message::Binary(Bytes::from_static(bytes)))
            .await
            .expect("send a message");
    }

    /// The next text or binary message, or `None` at the end or timeout.
    async fn next_message(&mut self) -> Option<Message> {
        loop {
            let next = tokio::time::timeout(LINE_TIMEOUT, self.socket.next()).await;
            match next {
                Ok(Some(Ok(message @ (Message::Text(_) | Message::Binary(_))))) => {
                    return Some(message);
                }
                Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) | Err(_) => {
                    return None;
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    async fn expect_containing(&mut self, needle: &str) -> String {
        loop {
            let line = match self.next_message().await {
                Some(Message::Text(text)) => text.to_string(),
                Some(Message::Binary(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                _ => panic!("expected {needle:?}; received {:#?}", self.received),
            };
            assert!(!line.ends_with('\n'), "a message carries no line ending");
            self.received.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Every capability CAP LS 302 lists, over however many lines.
    async fn cap_ls(&mut self) -> String {
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

    async fn register_as(&mut self, nick: &str) {
        self.send(&format!("NICK {nick}")).await;
        self.send(&format!("USER {nick} 0 * :{nick}")).await;
        self.expect_containing(" 376 ").await;
    }
}

#[tokio::test]
async fn each_subprotocol_carries_a_conversation_with_a_tcp_client() {
    let (server, irc, http) = start(test_config(""), any_port()).await;
    for (offered, expected) in [
        (vec!["binary.ircv3.net"], Some("binary.ircv3.net")),
        (vec!["text.ircv3.net"], Some("text.ircv3.net")),
        (
            vec!["text.ircv3.net", "binary.ircv3.net"],
            Some("text.ircv3.net"),
        ),
        (
            vec!["binary.ircv3.net", "text.ircv3.net"],
            Some("binary.ircv3.net"),
        ),
        (vec![], None),
    ] {
        let mut web = open(http, &offered, &[]).await.expect("the upgrade");
        assert_eq!(web.subprotocol.as_deref(), expected);
        web.register_as("web").await;
        let mut tcp = Client::register(irc, "tcp").await;
        web.send("PING kind").await;
        let kind = web.next_message().await.expect("the PONG");
        let binary = expected == Some("binary.ircv3.net");
        assert_eq!(matches!(kind, Message::Binary(_)), binary, "{kind:?}");
        web.send("JOIN #room").await;
        web.expect_containing(" 366 ").await;
        tcp.send("JOIN #room").await;
        web.expect_containing(":tcp!").await;
        web.send("PRIVMSG #room :hello from a browser").await;
        tcp.expect_containing("PRIVMSG #room :hello from a browser")
            .await;
        tcp.send("PRIVMSG #room :hello back").await;
        let line = web.expect_containing("PRIVMSG #room :hello back").await;
        assert!(line.starts_with(":tcp!"), "{line}");
        web.send("QUIT :bye").await;
        tcp.expect_containing("QUIT :Quit: bye").await;
        tcp.send("QUIT").await;
        assert!(tcp.is_closed().await);
    }
    server.shutdown().await;
}

/// The close frame the server ends with, skipping the lines before it;
/// `None` when the connection ends without one.
async fn close_frame<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut WebSocketStream<S>,
) -> Option<CloseFrame> {
    loop {
        match tokio::time::timeout(LINE_TIMEOUT, socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame,
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Whether the connection ends cleanly after the close handshake.
async fn ends_cleanly<S: AsyncRead + AsyncWrite + Unpin>(socket: &mut WebSocketStream<S>) -> bool {
    matches!(
        tokio::time::timeout(LINE_TIMEOUT, socket.next()).await,
        Ok(None) | Ok(Some(Err(WsError::ConnectionClosed)))
    )
}

#[tokio::test]
async fn a_close_from_the_client_is_answered() {
    let (server, irc, http) = start(test_config(""), any_port()).await;
    let mut tcp = Client::register(irc, "tcp").await;
    tcp.send("JOIN #room").await;
    tcp.expect_containing(" 366 ").await;
    let mut web = open(http, &[], &[]).await.unwrap();
    web.register_as("web").await;
    web.send("JOIN #room").await;
    web.expect_containing(" 366 ").await;
    let going = CloseFrame {
        code: CloseCode::Away,
        reason: "tab closed".into(),
    };
    web.socket.close(Some(going)).await.unwrap();
    let answer = close_frame(&mut web.socket).await;
    assert_eq!(answer.map(|frame| frame.code), Some(CloseCode::Away));
    assert!(ends_cleanly(&mut web.socket).await);
    tcp.expect_containing("QUIT :").await;
    server.shutdown().await;
}

#[tokio::test]
async fn quit_closes_with_1000_and_the_error_text() {
    let (server, mut web) = registered_web().await;
    web.send("QUIT :bye").await;
    let frame = close_frame(&mut web.socket).await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Normal);
    assert!(frame.reason.contains("Quit: bye"), "{}", frame.reason);
    assert!(ends_cleanly(&mut web.socket).await);
    server.shutdown().await;
}

#[tokio::test]
async fn a_stopping_server_closes_with_1001() {
    let (server, mut web) = registered_web().await;
    server.shutdown().await;
    let frame = close_frame(&mut web.socket).await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Away);
    assert_eq!(frame.reason.as_str(), "Server shutting down");
}

#[tokio::test]
async fn a_message_past_the_longest_line_closes_with_1009() {
    let (server, mut web) = registered_web().await;
    web.send(&format!("PRIVMSG web :{}", "x".repeat(20_000)))
        .await;
    let frame = close_frame(&mut web.socket).await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Size);
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_message_closes_with_1007() {
    let (server, mut web) = registered_web().await;
    // A text frame holding bytes that are not UTF-8, which the typed
    // message API will not build.
    let frame = Frame::message(
        Bytes::from_static(b"PRIVMSG web :caf\xe9"),
        OpCode::Data(Data::Text),
        true,
    );
    web.socket.send(Message::Frame(frame)).await.unwrap();
    let frame = close_frame(&mut web.socket).await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Invalid);
    server.shutdown().await;
}

#[tokio::test]
async fn a_flood_of_pings_is_cut_off_with_1008() {
    let (server, mut web) = registered_web().await;
    for _ in 0..64 {
        if web.socket.send(Message::Ping(Bytes::new())).await.is_err() {
            break;
        }
    }
    let frame = close_frame(&mut web.socket).await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Policy);
    server.shutdown().await;
}

/// A plain HTTP/1.1 exchange: the status, the head's lines (names in lower
/// case) and the body.
struct HttpAnswer {
    status: u16,
    head: Vec<String>,
    body: Vec<u8>,
}

impl HttpAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}: ");
        self.head.iter().find_map(|line| line.strip_prefix(&prefix))
    }
}

/// Sends `method path` with `headers` and reads the whole answer. `Host`
/// is the address unless `headers` names another.
async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> HttpAnswer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut text = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    let names_host = headers
        .iter()
        .any(|header| header.to_ascii_lowercase().starts_with("host:"));
    if !names_host {
        text.push_str(&format!("Host: {addr}\r\n"));
    }
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(LINE_TIMEOUT, stream.read_to_end(&mut answer))
        .await
        .expect("the answer within the timeout")
        .unwrap();
    let split = answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&answer[..split]);
    let mut lines = head.lines();
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let head = lines
        .map(|line| match line.split_once(": ") {
            Some((name, value)) => format!("{}: {value}", name.to_ascii_lowercase()),
            None => line.to_owned(),
        })
        .collect();
    HttpAnswer {
        status,
        head,
        body: answer[split + 4..].to_vec(),
    }
}

/// [`upgrade_headers`] with header lines made at run time.
fn upgrade_headers_with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut headers = upgrade_headers(&[]);
    headers.extend_from_slice(extra);
    headers
}

/// The upgrade request a browser sends, with extra header lines.
fn upgrade_headers(extra: &[&'static str]) -> Vec<&'static str> {
    let mut headers = vec![
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ];
    headers.extend_from_slice(extra);
    headers
}

/// The status of the answer to a raw request head, which may lack what
/// [`request`] always sends; 0 without an answer.
async fn status_of_raw(addr: SocketAddr, head: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0; 1024];
    while !answer.windows(4).any(|window| window == b"\r\n\r\n") {
        match tokio::time::timeout(LINE_TIMEOUT, stream.read(&mut buffer)).await {
            Ok(Ok(read)) if read > 0 => answer.extend_from_slice(&buffer[..read]),
            _ => break,
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.split(' ').nth(1).unwrap_or_default();
    status.parse().unwrap_or(0)
}

#[tokio::test]
async fn an_upgrade_needs_one_host_and_one_well_formed_key() {
    let (server, _irc, http) = start(test_config(""), any_port()).await;
    let well_formed = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
    for (case, key, host) in [
        (
            "a key of 15 bytes",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j",
            true,
        ),
        (
            "a key that is not base64",
            "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!!!",
            true,
        ),
        (
            "two keys",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==",
            true,
        ),
        ("no Host", well_formed, false),
    ] {
        let host = if host {
            format!("Host: {http}\r\n")
        } else {
            String::new()
        };
        let head = format!(
            "GET /webirc HTTP/1.1\r\n{host}Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\n{key}\r\n\r\n"
        );
        assert_eq!(status_of_raw(http, &head).await, 400, "{case}");
    }
    let head = format!(
        "GET /webirc HTTP/1.1\r\nHost: {http}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n{well_formed}\r\n\r\n"
    );
    assert_eq!(status_of_raw(http, &head).await, 101);
    server.shutdown().await;
}

/// A TCP connection to `addr` from the loopback address `from`.
async fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(addr).await.unwrap()
}

/// The answer's bytes to a GET of `/healthz` over `stream`.
async fn health_over(mut stream: TcpStream) -> Vec<u8> {
    let head = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let mut answer = Vec::new();
    if stream.write_all(head.as_bytes()).await.is_ok() {
        let read = tokio::time::timeout(LINE_TIMEOUT, stream.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "an answer or the end within the timeout");
    }
    answer
}

#[tokio::test]
async fn one_address_holds_at_most_16_http_connections() {
    let (server, _irc, http) = start(test_config(""), any_port()).await;
    let mut held = Vec::new();
    for _ in 0..16 {
        held.push(connect_from([127, 0, 0, 1], http).await);
    }
    // Accepted in order: the 16 above have their places when this comes.
    let seventeenth = connect_from([127, 0, 0, 1], http).await;
    assert!(
        health_over(seventeenth).await.is_empty(),
        "refused unserved"
    );
    let other = health_over(connect_from([127, 0, 0, 2], http).await).await;
    assert!(other.starts_with(b"HTTP/1.1 200"), "{other:?}");
    let mut scrape = connect_from([127, 0, 0, 2], http).await;
    let head = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    scrape.write_all(head.as_bytes()).await.unwrap();
    let mut metrics = String::new();
    scrape.read_to_string(&mut metrics).await.unwrap();
    let refused = "rookery_http_connections_refused_total 1";
    assert!(metrics.lines().any(|line| line == refused), "{metrics}");
    drop(held);
    server.shutdown().await;
}

#[tokio::test]
async fn sts_is_not_offered_over_a_websocket() {
    let mut config = test_config("");
    config.server.sts_port = Some(6697);
    let (server, irc, http) = start(config, any_port()).await;
    let offered = Client::connect(irc).await.cap_ls().await;
    assert!(offered.contains("sts=port=6697"), "{offered}");
    let offered = open(http, &[], &[]).await.unwrap().cap_ls().await;
    assert!(offered.contains("server-time"), "{offered}");
    assert!(!offered.contains("sts"), "{offered}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_websocket_client_is_played_the_room_history_on_join() {
    let dir = TempDir::new("websocket-playback");
    let mut config = test_config_with_history(&dir.join("history.db"), "");
    config.room.push(rookery::config::Room {
        name: "#room".into(),
        topic: String::new(),
        modes: None,
        history: None,
    });
    let (server, irc, http) = start(config, any_port()).await;
    let mut alice = Client::register(irc, "alice").await;
    alice.send("JOIN #room").await;
    alice.expect_containing(" 366 ").await;
    alice
        .send("PRIVMSG #room :said before the browser came")
        .await;
    alice.send("PING done").await;
    alice.expect_containing("PONG").await;
    let mut web = open(http, &["text.ircv3.net"], &[]).await.unwrap();
    web.register_as("web").await;
    web.send("JOIN #room").await;
    web.expect_containing("Playback of the last").await;
    let played = web.expect_containing("said before the browser came").await;
    assert!(played.contains("alice!"), "{played}");
    web.expect_containing("End of playback").await;
    server.shutdown().await;
}

#[tokio::test]
async fn an_over_long_message_gets_417_as_over_tcp() {
    let (server, _irc, http) = start(test_config(""), any_port()).await;
    let mut web = open(http, &["text.ircv3.net"], &[]).await.unwrap();
    web.register_as("web").await;
    web.send(&format!("PRIVMSG web :{}", "x".repeat(600))).await;
    web.expect_containing(" 417 web ").await;
    // The connection goes on.
    web.send("PING still").await;
    web.expect_containing("PONG").await;
    server.shutdown().await;
}

#[tokio::test]
async fn bytes_that_are_not_utf8_in_a_binary_message_are_repaired() {
    let (server, irc, http) = start(test_config(""), any_port()).await;
    let mut tcp = Client::register(irc, "tcp").await;
    let mut web = open(http, &["binary.ircv3.net"], &[]).await.unwrap();
    web.register_as("web").await;
    web.send_binary(b"PRIVMSG tcp :caf\xe9").await;
    let line = tcp.expect_containing("PRIVMSG tcp :").await;
    assert!(line.ends_with("PRIVMSG tcp :caf\u{FFFD}"), "{line}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_page_from_another_origin_is_refused_unless_listed() {
    let mut http = any_port();
    http.origins = vec!["https://chat.example.org".into()];
    let (server, _irc, http) = start(test_config(""), http).await;
    let refused = request(
        http,
        "GET",
        "/webirc",
        &upgrade_headers(&["Origin: https://evil.example"]),
    )
    .await;
    assert_eq!(refused.status, 403);
    for origin in [
        "https://chat.example.org".to_owned(),
        // The page the listener served itself.
        format!("http://{http}"),
    ] {
        let allowed = open(http, &[], &[("origin", &origin)]).await;
        assert!(allowed.is_ok(), "{origin}: {:?}", allowed.as_ref().err());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn every_origin_is_allowed_with_a_star() {
    let mut http = any_port();
    http.origins = vec!["*".into()];
    let (server, _irc, http) = start(test_config(""), http).await;
    let allowed = open(http, &[], &[("origin", "https://anywhere.example")]).await;
    assert!(allowed.is_ok(), "{:?}", allowed.as_ref().err());
    server.shutdown().await;
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_from_a_listed_proxy() {
    for (proxies, host) in [(vec![], "127.0.0.1"), (vec!["127.0.0.1/32"], "192.0.2.7")] {
        let mut http = any_port();
        http.proxies = proxies.iter().map(|range| range.parse().unwrap()).collect();
        let (server, _irc, http) = start(test_config(""), http).await;
        let forwarded = [("x-forwarded-for", "192.0.2.7")];
        let mut web = open(http, &[], &forwarded).await.unwrap();
        web.register_as("web").await;
        web.send("JOIN #room").await;
        let join = web.expect_containing(" JOIN ").await;
        assert!(join.starts_with(&format!(":web!~web@{host} ")), "{join}");
        server.shutdown().await;
    }
}

/// Whether WHOIS shows the client its own 671 (secure connection).
async fn is_shown_secure<S: AsyncRead + AsyncWrite + Unpin>(web: &mut WebClient<S>) -> bool {
    web.send("WHOIS web").await;
    let mut numerics = Vec::new();
    loop {
        let line = web.expect_containing(" web web").await;
        if line.contains(" 318 ") {
            break;
        }
        numerics.push(line);
    }
    numerics.iter().any(|line| line.contains(" 671 "))
}

#[tokio::test]
async fn a_listed_proxy_that_says_https_makes_the_client_secure() {
    for (proxies, secure) in [(vec![], false), (vec!["127.0.0.1/32"], true)] {
        let mut http = any_port();
        http.proxies = proxies.iter().map(|range| range.parse().unwrap()).collect();
        let mut config = test_config("");
        config.metrics.token = Some("s3cret".into());
        let (server, _irc, http) = start(config, http).await;
        let forwarded = [
            ("x-forwarded-for", "192.0.2.7"),
            ("x-forwarded-proto", "https"),
        ];
        let mut web = open(http, &[], &forwarded).await.unwrap();
        web.register_as("web").await;
        assert_eq!(is_shown_secure(&mut web).await, secure);
        // The metric counts the listener's own TLS, not the proxy's word.
        let scraped = request(http, "GET", "/metrics", &["Authorization: Bearer s3cret"]).await;
        let scraped = String::from_utf8_lossy(&scraped.body);
        let counted =
            format!("rookery_clients{{listener=\"{http}\",tls=\"false\",websocket=\"true\"}} 1");
        assert!(scraped.lines().any(|line| line == counted), "{scraped}");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn only_the_configured_forwarding_header_names_the_client_and_its_scheme() {
    // A client's own header of the other family passes the proxy untouched.
    let both = [
        (ForwardedHeader::XForwardedFor, "192.0.2.7"),
        (ForwardedHeader::Forwarded, "198.51.100.66"),
    ];
    for (family, named) in both {
        let mut http = any_port();
        http.proxies = vec!["127.0.0.1/32".parse().unwrap()];
        http.forwarded_header = family;
        let (server, _irc, http) = start(test_config(""), http).await;
        let sent = [
            ("forwarded", "for=198.51.100.66"),
            ("x-forwarded-for", "192.0.2.7"),
            // The scheme each family does not say.
            ("forwarded", "for=203.0.113.1;proto=https"),
            ("x-forwarded-proto", "https"),
        ];
        let sent = match family {
            ForwardedHeader::XForwardedFor => &sent[..3],
            ForwardedHeader::Forwarded => &[sent[0], sent[1], sent[3]][..],
        };
        let mut web = open(http, &[], sent).await.unwrap();
        web.register_as("web").await;
        web.send("JOIN #room").await;
        let join = web.expect_containing(" JOIN ").await;
        assert!(join.starts_with(&format!(":web!~web@{named} ")), "{join}");
        assert!(!is_shown_secure(&mut web).await, "{family:?}");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_listed_proxy_that_names_no_client_is_refused() {
    for (family, header) in [
        (ForwardedHeader::Forwarded, "Forwarded: for=unknown"),
        (ForwardedHeader::Forwarded, "Forwarded: for=_hidden"),
        // The client's own Forwarded is not read; nothing else names it.
        (ForwardedHeader::XForwardedFor, "Forwarded: for=192.0.2.7"),
    ] {
        let mut http = any_port();
        http.proxies = vec!["127.0.0.1/32".parse().unwrap()];
        http.forwarded_header = family;
        let (server, _irc, http) = start(test_config(""), http).await;
        let refused = request(http, "GET", "/webirc", &upgrade_headers(&[header])).await;
        assert_eq!(refused.status, 400, "{family:?} {header}");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn the_per_ip_limit_counts_the_forwarded_address() {
    let mut http = any_port();
    http.proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let mut config = test_config("limits.max_clients_per_ip = 1");
    // The proxy's own requests get no loopback trust.
    config.metrics.token = Some("s3cret".into());
    let (server, _irc, http) = start(config, http).await;
    let first = open(http, &[], &[("x-forwarded-for", "192.0.2.7")]).await;
    assert!(first.is_ok(), "{:?}", first.as_ref().err());
    let refused = request(
        http,
        "GET",
        "/webirc",
        &upgrade_headers(&["X-Forwarded-For: 192.0.2.7"]),
    )
    .await;
    assert_eq!(refused.status, 503);
    assert!(String::from_utf8_lossy(&refused.body).contains("Too many connections"));
    let other = open(http, &[], &[("x-forwarded-for", "192.0.2.8")]).await;
    assert!(other.is_ok(), "{:?}", other.as_ref().err());
    let scraped = request(http, "GET", "/metrics", &["Authorization: Bearer s3cret"]).await;
    let scraped = String::from_utf8_lossy(&scraped.body);
    let lines: Vec<&str> = scraped.lines().collect();
    let open_here =
        format!("rookery_clients{{listener=\"{http}\",tls=\"false\",websocket=\"true\"}} 2");
    assert!(lines.contains(&open_here.as_str()), "{scraped}");
    let refused = "rookery_connections_refused_total{reason=\"per_ip_limit\"} 1";
    assert!(lines.contains(&refused), "{scraped}");
    drop(first);
    server.shutdown().await;
}

#[tokio::test]
async fn the_web_client_is_served_with_its_types_and_security_headers() {
    let (server, _irc, http) = start(test_config(""), any_port()).await;
    for (path, file, content_type) in [
        ("/", "web/index.html", "text/html; charset=utf-8"),
        ("/index.html", "web/index.html", "text/html; charset=utf-8"),
        ("/app.js", "web/app.js", "text/javascript; charset=utf-8"),
        ("/style.css", "web/style.css", "text/css; charset=utf-8"),
    ] {
        let answer = request(http, "GET", path, &[]).await;
        assert_eq!(answer.status, 200, "{path}");
        let on_disk = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file));
        assert_eq!(answer.body, on_disk.unwrap(), "{path}");
        assert_eq!(answer.header("content-type"), Some(content_type), "{path}");
        assert_eq!(answer.header("cache-control"), Some("no-cache"));
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
        let policy = answer.header("content-security-policy").unwrap();
        assert!(policy.contains("default-src 'self'"), "{policy}");
        assert!(policy.contains("connect-src 'self' ws: wss:"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    }
    let head = request(http, "HEAD", "/app.js", &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(request(http, "GET", "/nothing-here", &[]).await.status, 404);
    let post = request(http, "POST", "/", &["Content-Length: 0"]).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    server.shutdown().await;
}

#[tokio::test]
async fn operator_endpoints_answer_on_loopback_without_a_token() {
    let (server, _irc, http) = start(test_config(""), any_port()).await;
    let metrics = request(http, "GET", "/metrics", &[]).await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let health = request(http, "GET", "/healthz", &[]).await;
    assert_eq!((health.status, &health.body[..]), (200, &b"ok\n"[..]));
    assert_eq!(request(http, "GET", "/readyz", &[]).await.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn operator_endpoints_off_loopback_need_the_token() {
    let everywhere = || HttpListen::plain("0.0.0.0:0".parse().unwrap());
    // Without a token they do not exist off loopback.
    let (server, _irc, http) = start(test_config(""), everywhere()).await;
    let http = SocketAddr::from(([127, 0, 0, 1], http.port()));
    assert_eq!(request(http, "GET", "/metrics", &[]).await.status, 404);
    assert_eq!(request(http, "GET", "/readyz", &[]).await.status, 404);
    server.shutdown().await;

    let mut config = test_config("");
    config.metrics.token = Some("s3cret".into());
    let (server, _irc, http) = start(config, everywhere()).await;
    let http = SocketAddr::from(([127, 0, 0, 1], http.port()));
    assert_eq!(request(http, "GET", "/metrics", &[]).await.status, 401);
    let wrong = ["Authorization: Bearer guess"];
    assert_eq!(request(http, "GET", "/metrics", &wrong).await.status, 401);
    let right = ["Authorization: Bearer s3cret"];
    let metrics = request(http, "GET", "/metrics", &right).await;
    assert_eq!(metrics.status, 200);
    assert_eq!(request(http, "GET", "/readyz", &right).await.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn operator_endpoints_through_a_proxy_get_no_loopback_trust() {
    let (server, _irc, http) = start(test_config(""), any_port()).await;
    for header in ["X-Forwarded-For: 192.0.2.7", "Forwarded: for=192.0.2.7"] {
        let relayed = request(http, "GET", "/metrics", &[header]).await;
        assert_eq!(relayed.status, 404, "{header}");
    }
    server.shutdown().await;
    // From a listed proxy, even without its headers.
    let mut proxied = any_port();
    proxied.proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let (server, _irc, http) = start(test_config(""), proxied).await;
    assert_eq!(request(http, "GET", "/healthz", &[]).await.status, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn a_loopback_listener_is_not_fooled_by_a_rebound_name() {
    let (server, _irc, http) = start(test_config(""), any_port()).await;
    let port = http.port();
    let rebound = format!("Host: rebound.example:{port}");
    let local = format!("Host: localhost:{port}");
    assert_eq!(
        request(http, "GET", "/metrics", &[&rebound]).await.status,
        404
    );
    assert_eq!(
        request(http, "GET", "/metrics", &[&local]).await.status,
        200
    );
    let origin = format!("Origin: http://rebound.example:{port}");
    let upgrade = request(
        http,
        "GET",
        "/webirc",
        &upgrade_headers_with(&[&rebound, &origin]),
    )
    .await;
    assert_eq!(upgrade.status, 403);
    let allowed = open(http, &[], &[("origin", &format!("http://{http}"))]).await;
    assert!(allowed.is_ok(), "{:?}", allowed.as_ref().err());
    // The same host in another scheme is another origin.
    let https = format!("Origin: https://{http}");
    let upgrade = request(http, "GET", "/webirc", &upgrade_headers_with(&[&https])).await;
    assert_eq!(upgrade.status, 403);
    server.shutdown().await;
}

/// A self-signed certificate for `localhost`, written to `dir`.
fn certificate(dir: &TempDir) -> (rookery::config::Tls, CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let tls = rookery::config::Tls { cert, key };
    (tls, certified.cert.der().clone())
}

/// A TLS connection to `addr` that trusts only `trusted`.
async fn connect_tls(
    addr: SocketAddr,
    trusted: CertificateDer<'static>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    connect_tls_recording(addr, trusted, Arc::new(CertificateRequests::default())).await
}

/// Remembers whether a server asked for a client certificate; has none.
#[derive(Debug, Default)]
struct CertificateRequests(AtomicBool);

impl ResolvesClientCert for CertificateRequests {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0.store(true, Ordering::Relaxed);
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A TLS connection to `addr` that trusts only `trusted`, offers ALPN
/// `h2` and `http/1.1` as a browser does, and records in `requests`
/// whether the server asked for a client certificate.
async fn connect_tls_recording(
    addr: SocketAddr,
    trusted: CertificateDer<'static>,
    requests: Arc<CertificateRequests>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use tokio_rustls::TlsConnector;
    use tokio_rustls::rustls::pki_types::ServerName;
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};

    let mut roots = RootCertStore::empty();
    roots.add(trusted).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut client_config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(requests);
    client_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let stream = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(Arc::new(client_config))
        .connect(name, stream)
        .await
}

#[tokio::test]
async fn a_tls_http_listener_serves_a_secure_websocket() {
    let dir = TempDir::new("websocket-tls");
    let (tls, trusted) = certificate(&dir);
    let mut http = any_port();
    http.tls = Some(tls);
    let (server, _irc, http) = start(test_config(""), http).await;
    let stream = connect_tls(http, trusted).await.unwrap();
    let url = format!("wss://localhost:{}/webirc", http.port());
    let mut web = open_over(stream, &url, &["text.ircv3.net"], &[])
        .await
        .unwrap();
    web.register_as("web").await;
    web.send("WHOIS web").await;
    web.expect_containing(" 671 web web ").await;
    server.shutdown().await;
}

#[tokio::test]
async fn an_https_listener_asks_no_client_certificate_and_speaks_http_1_1() {
    let dir = TempDir::new("websocket-tls-no-client-auth");
    let (tls, trusted) = certificate(&dir);
    let mut config = test_config("");
    // The IRC listener over TLS asks, which shows the recorder works.
    config.listen[0].tls = Some(tls.clone());
    let mut http = any_port();
    http.tls = Some(tls);
    let (server, irc, http) = start(config, http).await;
    let asked = Arc::new(CertificateRequests::default());
    connect_tls_recording(irc, trusted.clone(), Arc::clone(&asked))
        .await
        .unwrap();
    assert!(asked.0.load(Ordering::Relaxed), "the IRC listener asks");
    let asked = Arc::new(CertificateRequests::default());
    let stream = connect_tls_recording(http, trusted, Arc::clone(&asked))
        .await
        .unwrap();
    assert!(
        !asked.0.load(Ordering::Relaxed),
        "the HTTP listener asks not"
    );
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    server.shutdown().await;
}

#[tokio::test]
async fn rehash_reloads_the_http_listeners_certificate() {
    const HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$cm9va2VyeS10ZXN0LXNhbHQ$yiaiaoZnKPZM0CWZ8NzJYpMiTnaZSktRUpf408FhNKA";
    let dir = TempDir::new("websocket-tls-rehash");
    let (tls, first) = certificate(&dir);
    let file = dir.join("rookery.toml");
    let text = format!(
        "[server]\nname = \"irc.test\"\nbans_file = \"\"\n\n\
         [history]\nenabled = false\n\n[cloaking]\nenabled = false\n\n\
         [[listen]]\naddress = \"127.0.0.1:0\"\n\n\
         [[http]]\naddress = \"127.0.0.1:0\"\ntls = {{ cert = {:?}, key = {:?} }}\n\n\
         [[oper]]\nname = \"root\"\npassword_hash = \"{HASH}\"\n",
        tls.cert.display().to_string(),
        tls.key.display().to_string(),
    );
    std::fs::write(&file, text).unwrap();
    let options = server::Options {
        config_file: Some(file.clone()),
        ..Default::default()
    };
    let config = rookery::config::load(&file).unwrap();
    let server = server::start_with(config, options).await.unwrap();
    let (irc, http) = (server.local_addrs()[0], server.http_addrs()[0]);
    assert!(connect_tls(http, first.clone()).await.is_ok());

    let (_, second) = certificate(&dir);
    let mut oper = Client::register(irc, "oper").await;
    oper.send("OPER root hunter2").await;
    oper.expect_containing(" 381 ").await;
    oper.send("REHASH").await;
    oper.expect_containing("NOTICE oper :REHASH").await;
    let asked = Arc::new(CertificateRequests::default());
    let renewed = connect_tls_recording(http, second, Arc::clone(&asked)).await;
    // Still as HTTP wants it: no client certificate, HTTP/1.1.
    assert!(!asked.0.load(Ordering::Relaxed));
    assert_eq!(
        renewed.unwrap().get_ref().1.alpn_protocol(),
        Some(&b"http/1.1"[..])
    );
    assert!(connect_tls(http, first).await.is_err());
    server.shutdown().await;
}

#[tokio::test]
async fn rehash_applies_new_origins_and_a_new_token() {
    const HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$cm9va2VyeS10ZXN0LXNhbHQ$yiaiaoZnKPZM0CWZ8NzJYpMiTnaZSktRUpf408FhNKA";
    let dir = TempDir::new("websocket-rules-rehash");
    let file = dir.join("rookery.toml");
    let text = |origins: &str, token: &str| {
        format!(
            "[server]\nname = \"irc.test\"\nbans_file = \"\"\n\n\
             [history]\nenabled = false\n\n[cloaking]\nenabled = false\n\n\
             [metrics]\ntoken = \"{token}\"\n\n\
             [[listen]]\naddress = \"127.0.0.1:0\"\n\n\
             [[http]]\naddress = \"127.0.0.1:0\"\norigins = [{origins}]\n\n\
             [[oper]]\nname = \"root\"\npassword_hash = \"{HASH}\"\n"
        )
    };
    std::fs::write(&file, text("", "first")).unwrap();
    let options = server::Options {
        config_file: Some(file.clone()),
        ..Default::default()
    };
    let config = rookery::config::load(&file).unwrap();
    let server = server::start_with(config, options).await.unwrap();
    let (irc, http) = (server.local_addrs()[0], server.http_addrs()[0]);
    let page = "Origin: https://chat.example.org";
    let before = request(http, "GET", "/webirc", &upgrade_headers(&[page])).await;
    assert_eq!(before.status, 403);
    let first = ["Authorization: Bearer first"];
    assert_eq!(request(http, "GET", "/healthz", &first).await.status, 200);

    std::fs::write(&file, text("\"https://chat.example.org\"", "second")).unwrap();
    let mut oper = Client::register(irc, "oper").await;
    oper.send("OPER root hunter2").await;
    oper.expect_containing(" 381 ").await;
    oper.send("REHASH").await;
    let reloaded = oper.expect_containing("NOTICE oper :REHASH").await;
    assert!(
        reloaded.ends_with("REHASH: configuration reloaded"),
        "{reloaded}"
    );
    let after = open(http, &[], &[("origin", "https://chat.example.org")]).await;
    assert!(after.is_ok(), "{:?}", after.as_ref().err());
    assert_eq!(request(http, "GET", "/healthz", &first).await.status, 401);
    let second = ["Authorization: Bearer second"];
    assert_eq!(request(http, "GET", "/healthz", &second).await.status, 200);
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_request_head_that_never_ends_loses_its_connection() {
    let (server, _irc, http) = start(test_config(""), any_port()).await;
    let mut stream = TcpStream::connect(http).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let wait = std::time::Duration::from_secs(60);
    let read = tokio::time::timeout(wait, stream.read_to_end(&mut rest)).await;
    // Closed (with no answer, or reset) well before a minute.
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    server.shutdown().await;
}
