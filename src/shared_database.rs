//! The PostgreSQL database the nodes of a network share: how its URL is
//! checked, how a session to it is opened and what every session sets.
//! History ([`crate::history::postgres`]) and accounts
//! ([`crate::accounts::postgres`]) open their connections here, so both
//! refuse the same URLs and bound the same waits.

use std::time::Duration;

use postgres::config::{Host, SslMode};

/// Set on each session, so no statement, lock wait or forgotten
/// transaction outlives a node that vanished (the server reaps its
/// session) and no thread waits on the database without end.
const SESSION_OPTIONS: &str = "-c statement_timeout=30000 -c lock_timeout=10000 \
     -c idle_in_transaction_session_timeout=60000 -c tcp_keepalives_idle=30 \
     -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3";

/// The client's own keepalive: a server gone without a word is noticed in
/// about a minute, not the system's two hours.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long sent data may stay unacknowledged before the connection is
/// taken for dead, so a vanished server does not hang a thread.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(15);

/// Checks `[history] postgres`: a URL this build can connect with (no TLS
/// asked for). The reason, when it is not, never repeats the password.
pub fn check_url(url: &str) -> Result<postgres::Config, String> {
    if url.trim().is_empty() {
        return Err(
            "must be set to the database's URL (postgres://user@host:port/db) while backend = \"postgres\""
                .to_owned(),
        );
    }
    if let Some(mode) = tls_mode(url) {
        return Err(format!(
            "asks for TLS (sslmode={mode}), which rookery does not speak to PostgreSQL yet: leave sslmode out or set it to \"disable\""
        ));
    }
    let config: postgres::Config = url
        .parse()
        .map_err(|error| format!("is not a PostgreSQL URL: {error}"))?;
    if config.get_ssl_mode() == SslMode::Require {
        return Err("asks for TLS, which rookery does not speak to PostgreSQL yet".to_owned());
    }
    if config.get_hosts().is_empty() {
        return Err("names no host (postgres://user@host:port/db)".to_owned());
    }
    Ok(config)
}

/// The `sslmode` a URL asks for when it wants TLS.
fn tls_mode(url: &str) -> Option<&str> {
    let (_, query) = url.split_once('?')?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "sslmode")
        .map(|(_, value)| value)
        .filter(|value| matches!(*value, "require" | "verify-ca" | "verify-full"))
}

/// `postgres://user@host:port/db`: the URL as messages show it, without
/// the password.
pub fn describe(config: &postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => String::new(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{host}:{port}/{db}")
}

/// The checked URL with every session's timeouts, keepalives and options
/// set, ready to connect (and to reconnect) with.
pub fn session_config(url: &str) -> Result<postgres::Config, String> {
    let mut config = check_url(url)?;
    config
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_user_timeout(TCP_USER_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(KEEPALIVE_IDLE)
        .options(SESSION_OPTIONS)
        .application_name("rookery");
    Ok(config)
}

/// Whether the server ended the session (an administrator's terminate,
/// a restart): the connection is gone even if the client has not noticed.
pub fn is_shutdown(error: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    error.code().is_some_and(|code| {
        [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
        ]
        .contains(code)
    })
}

/// What went wrong, for a message: the crate's own text is only "db
/// error" for whatever the server said, so the server's message (and its
/// detail) is added, or the cause of an I/O or protocol error. The
/// server's texts never hold the connection's password.
pub fn reason(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return match db.detail() {
            Some(detail) => format!("{}: {} ({detail})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        };
    }
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}
