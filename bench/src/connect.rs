//! Many clients registering, paced and bounded: the `connect` and `idle`
//! scenarios, and the first phase of every other.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant, sleep_until};

use tokio_rustls::TlsConnector;

use crate::client::{self, Registered};

/// How a batch of clients connects.
#[derive(Clone)]
pub struct Pacing {
    /// Registrations in flight at once.
    pub concurrency: usize,
    /// New connections per second at most; `None` for as fast as allowed.
    pub rate: Option<f64>,
    /// How long one registration may take.
    pub limit: Duration,
    /// TLS over each connection, with `--tls`.
    pub tls: Option<TlsConnector>,
}

/// The clients that registered, by index, and why the others did not.
pub struct Connected {
    pub clients: Vec<Option<Registered>>,
    pub failures: Vec<String>,
    pub elapsed: Duration,
}

impl Connected {
    pub fn failed(&self) -> usize {
        self.clients.iter().filter(|c| c.is_none()).count()
    }
}

/// Registers `count` clients named `prefix` plus a number from `first`.
pub async fn connect_all(
    server: SocketAddr,
    prefix: char,
    first: usize,
    count: usize,
    pacing: &Pacing,
) -> Connected {
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(pacing.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for i in 0..count {
        if let Some(rate) = pacing.rate {
            sleep_until(started + Duration::from_secs_f64(i as f64 / rate)).await;
        }
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let nick = client::nick_for(prefix, first + i);
        let (tls, limit) = (pacing.tls.clone(), pacing.limit);
        tasks.spawn(async move {
            let outcome = client::register(server, tls.as_ref(), &nick, limit).await;
            drop(permit);
            (i, outcome)
        });
    }
    let mut clients: Vec<Option<Registered>> = (0..count).map(|_| None).collect();
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, Ok(registered))) => clients[i] = Some(registered),
            Ok((_, Err(failure))) => failures.push(failure.to_string()),
            Err(error) => failures.push(format!("task: {error}")),
        }
    }
    Connected {
        clients,
        failures,
        elapsed: started.elapsed(),
    }
}

/// Keeps an idle client alive: reads and discards, answers PING.
pub async fn idle_loop(client: Registered) {
    let Registered {
        mut reader, writer, ..
    } = client;
    while let Ok(Some(line)) = reader.next_line().await {
        let (command, params) = client::command(&line);
        if command == b"PING" {
            let _ = client::send(&writer, &client::pong(params)).await;
        }
    }
}

/// Waits until `until`, or returns at once when it has passed.
pub async fn settle(duration: Duration) {
    sleep_until(Instant::now() + duration).await;
}
