//! IRC over WebSocket and the HTTP listener, over real sockets: a browser
//! client is an ordinary client, and the listener serves files, refuses
//! what it must, and answers operators.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Client, LINE_TIMEOUT, test_config};
use futures_util::{SinkExt, StreamExt};
use rookery::config::{Config, HttpListen};
use rookery::server::{self, ServerHandle};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Bytes, Message};

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
