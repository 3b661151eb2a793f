//! The TOML configuration: one schema with a default for every key, loaded
//! and validated by [`load`], which REHASH calls again.
//!
//! - here: the schema (a struct per table, with its defaults), [`load`] and
//!   [`parse`].
//! - `validate.rs`: the checks serde cannot make (ranges, readable files,
//!   keys that depend on each other).
//! - `locate.rs`: line and column of a span or key path, and the wording of
//!   every error an admin sees.
//! - `restart_only.rs`: the settings REHASH cannot change, kept as they run.

mod accounts;
mod locate;
mod metadata;
mod restart_only;
mod validate;

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::de::DeTable;

pub use accounts::{AccountsConfig, NickReservation, Registration, Smtp};
pub use metadata::{MAX_KEY_BYTES, MAX_VALUE_BYTES, MetadataConfig, is_valid_key};

use crate::proto::Casemapping;
use crate::proto::Cidr;
use locate::{
    describe_key, describe_schema_error, describe_syntax_error, key_path, line_and_column, path_at,
    span_of,
};
pub use restart_only::keep_restart_only;
use validate::problems;

/// Everything an admin can set. Every section and key is optional.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub listen: Vec<Listen>,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub flood: Flood,
    pub oper: Vec<Oper>,
    pub history: HistoryConfig,
    pub accounts: AccountsConfig,
    pub channels: Channels,
    /// Standing rooms, created at startup and kept when empty.
    pub room: Vec<Room>,
    pub log: Log,
    pub cloaking: Cloaking,
    pub metadata: MetadataConfig,
    /// Browser listeners: the web client's files and IRC over WebSocket.
    pub http: Vec<HttpListen>,
    /// `[metrics]`: who may read `/metrics`, `/healthz` and `/readyz`.
    pub metrics: MetricsConfig,
    /// `[network]`: this node's place in a network of several; absent, the
    /// server runs alone.
    pub network: Option<NetworkConfig>,
    /// `http` is the built-in default, not written in the file: a busy
    /// address then only warns, so an upgrade never stops a server that
    /// did not ask for a browser listener. [`parse`] sets it; whoever sets
    /// `http` in code clears it.
    #[serde(skip)]
    pub http_implicit: bool,
    /// The message of the day as lines, read once by [`parse`]; use [`Config::motd_lines`].
    #[serde(skip)]
    pub motd_loaded: Vec<String>,
}

/// `[server]`: who the server is and what it tells clients on connect.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The server name: the source of every server message.
    pub name: String,
    /// NETWORK in 005.
    pub network: String,
    /// Free text in 004-adjacent replies (INFO, ADMIN).
    pub description: String,
    /// The message of the day, inline.
    pub motd: Option<String>,
    /// The message of the day, from a file (read at load and on REHASH).
    pub motd_file: Option<PathBuf>,
    /// A connection password required through PASS.
    pub password: Option<String>,
    #[serde(serialize_with = "serialize_casemapping")]
    pub casemapping: Casemapping,
    /// Where K-lines and D-lines are kept across restarts; empty keeps them
    /// in memory only.
    pub bans_file: PathBuf,
    /// UTF8ONLY: lines that are not UTF-8 are refused instead of repaired.
    pub utf8_only: bool,
    /// STS: the TLS port that plaintext clients are told to move to; only
    /// offered when a TLS listener exists. Unset: no `sts` capability.
    pub sts_port: Option<u16>,
    /// STS: seconds a client keeps using TLS after seeing the policy.
    pub sts_duration: u64,
    /// CLIENTTAGDENY: client-only tags (without `+`) not relayed; `*` for
    /// all, `-name` to let one through despite `*`.
    pub client_tag_deny: Vec<String>,
}

/// One `[[listen]]` address clients connect to.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    pub address: SocketAddr,
    pub tls: Option<Tls>,
}

/// Certificate and key for a TLS listener; checked at load, served in a later release.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One `[[http]]` address browsers connect to: the web client's files and
/// IRC over WebSocket, at `/webirc` and `/`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpListen {
    pub address: SocketAddr,
    /// Loaded at start and reloaded on REHASH, as a `[[listen]]` one is.
    pub tls: Option<Tls>,
    /// The `Origin`s whose pages may open a WebSocket, such as
    /// `"https://chat.example.org"`; `"*"` for any. A page served from the
    /// request's own host is always allowed, and so is a request without
    /// an `Origin` (not from a browser).
    #[serde(default)]
    pub origins: Vec<String>,
    /// Reverse proxies whose `forwarded_header` names the client; from
    /// anyone else it is ignored.
    #[serde(default)]
    pub proxies: Vec<Cidr>,
    /// The one header family believed from `proxies`: a client's own
    /// header of the other family passes through a proxy untouched.
    #[serde(default)]
    pub forwarded_header: ForwardedHeader,
}

/// Which headers a listed proxy names the client and its scheme in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` and `X-Forwarded-Proto`, as nginx and Caddy set them.
    #[default]
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    /// `Forwarded: for=…;proto=…` (RFC 7239).
    #[serde(rename = "forwarded")]
    Forwarded,
}

impl ForwardedHeader {
    /// The header that names the client, as the log says it.
    pub fn name(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "X-Forwarded-For",
            ForwardedHeader::Forwarded => "Forwarded",
        }
    }
}

impl HttpListen {
    /// A plain listener on `address` with no origins or proxies listed.
    pub fn plain(address: SocketAddr) -> HttpListen {
        HttpListen {
            address,
            tls: None,
            origins: Vec::new(),
            proxies: Vec::new(),
            forwarded_header: ForwardedHeader::default(),
        }
    }
}

/// `[metrics]`: the operators' endpoints.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// When set, `/metrics`, `/healthz` and `/readyz` answer any listener
    /// given `Authorization: Bearer <token>`; unset, only a listener bound
    /// to a loopback address answers them.
    pub token: Option<String>,
}

/// `[network]`: several nodes as one IRC network, through NATS.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// This node's name, unique in the network: a word of letters, digits,
    /// `-` and `_`.
    pub node: String,
    /// The NATS servers to connect to (any one will do; the client moves
    /// to another when one goes).
    pub nats: Vec<String>,
    /// How often this node tells the others it is alive, in milliseconds.
    pub heartbeat_ms: u64,
    /// How long a node may stay silent before the others take it for gone
    /// and announce its users' QUITs, in milliseconds.
    pub node_timeout_ms: u64,
    /// How many NATS servers keep a copy of the nick claims (one when the
    /// NATS server is not clustered).
    pub claim_replicas: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            node: String::new(),
            nats: vec!["nats://127.0.0.1:4222".to_owned()],
            heartbeat_ms: 1_000,
            node_timeout_ms: 3_000,
            claim_replicas: 3,
        }
    }
}

/// `[limits]`: the caps advertised in 005 and enforced on every client.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_clients: usize,
    pub max_clients_per_ip: usize,
    /// New connections one address may open per minute; 0 = no limit.
    pub connects_per_ip_per_minute: u32,
    /// Addresses exempt from the two per-IP limits; loopback by default.
    pub exempt_ips: Vec<Cidr>,
    /// How many leading bits of an IPv6 address name one host for every
    /// per-IP limit (64: a whole /64 counts as one address).
    pub ipv6_prefix_bits: u8,
    /// CHANLIMIT: rooms one client may be in at once.
    pub channels_per_client: usize,
    /// A cap on every room's members; 0 = none.
    pub max_channel_members: usize,
    pub nick_length: usize,
    pub channel_length: usize,
    pub topic_length: usize,
    pub away_length: usize,
    pub kick_length: usize,
    pub user_length: usize,
    pub realname_length: usize,
    /// MAXLIST: entries in each of the b, e and I lists.
    pub max_list_entries: usize,
    /// TARGMAX for PRIVMSG, NOTICE, JOIN, PART, …
    pub max_targets: usize,
    /// Bytes queued to one client before it is dropped with "SendQ exceeded".
    pub sendq_bytes: usize,
    /// WHOWAS entries kept.
    pub whowas_entries: usize,
    /// Mode changes with an argument in one MODE command (MODES in 005).
    pub modes_per_command: usize,
    /// MONITOR: nicks on one client's monitor list.
    pub max_monitor: usize,
    /// draft/multiline `max-bytes`: the text of one multiline message,
    /// counting one byte per line break.
    pub multiline_max_bytes: usize,
    /// draft/multiline `max-lines`: the lines of one multiline message.
    pub multiline_max_lines: usize,
}

/// `[timeouts]`: how long a silent or unregistered connection is kept.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// Seconds a connection may take to register.
    pub registration: u64,
    /// Seconds of silence before the server sends PING.
    pub ping_interval: u64,
    /// Seconds to wait for the PONG before dropping the client.
    pub ping_timeout: u64,
}

/// `[flood]`: the per-client line rate, a token bucket of `burst` lines.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Flood {
    pub enabled: bool,
    pub lines_per_second: f64,
    pub burst: u32,
    /// Lines a client may have waiting behind the rate before it is
    /// disconnected with "Excess Flood".
    pub max_backlog: u32,
}

/// One `[[oper]]`: a name and password hash that OPER accepts, or an
/// account whose login is enough.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Oper {
    pub name: String,
    /// The argon2id hash OPER checks; may be empty when `account` is set,
    /// and OPER then refuses this block.
    #[serde(default)]
    pub password_hash: String,
    /// Logging in to this account (from one of `hosts`) grants the block
    /// with no OPER password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    /// What the operator may do; every privilege by default.
    #[serde(default = "Privilege::all")]
    pub privileges: Vec<Privilege>,
}

/// One thing an operator may do beyond user mode +o.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Privilege {
    /// KILL.
    Kill,
    /// NickServ SAREGISTER, SUSPEND and UNSUSPEND.
    Accounts,
    /// KLINE, UNKLINE, DLINE, UNDLINE.
    Kline,
    /// REHASH.
    Rehash,
    /// WALLOPS.
    Wallops,
    /// No flood control.
    Exempt,
    /// Secret and private rooms are visible as to members (LIST, WHOIS,
    /// NAMES, WHO, TOPIC, MODE).
    SeeSecret,
    /// WHOIS and WHO show real addresses behind cloaks.
    SeeHosts,
}

impl Privilege {
    pub fn all() -> Vec<Privilege> {
        vec![
            Privilege::Kill,
            Privilege::Accounts,
            Privilege::Kline,
            Privilege::Rehash,
            Privilege::Wallops,
            Privilege::Exempt,
            Privilege::SeeSecret,
            Privilege::SeeHosts,
        ]
    }

    /// The name in the configuration and in 723 ERR_NOPRIVS.
    pub fn name(self) -> &'static str {
        match self {
            Privilege::Kill => "kill",
            Privilege::Accounts => "accounts",
            Privilege::Kline => "kline",
            Privilege::Rehash => "rehash",
            Privilege::Wallops => "wallops",
            Privilege::Exempt => "exempt",
            Privilege::SeeSecret => "see_secret",
            Privilege::SeeHosts => "see_hosts",
        }
    }
}

/// `[history]`: where room history is kept on disk, how long, and who
/// may read it back.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    pub enabled: bool,
    /// Where history lines are stored: this node's SQLite file, or one
    /// PostgreSQL database every node of a network shares.
    pub backend: HistoryBackend,
    /// The PostgreSQL URL (`postgres://user@host:port/db`) when `backend`
    /// is postgres; unused otherwise.
    pub postgres: String,
    /// The SQLite database file; under the postgres backend the journal
    /// is still written beside it.
    pub path: PathBuf,
    /// How hard a commit presses the data to disk.
    pub sync: HistorySync,
    /// Lines replayed to a client joining a room; 0 turns playback off.
    pub playback_lines: usize,
    /// The oldest line replayed on join, as a duration such as "1d" or
    /// "12h"; "0" means no age limit. Use [`HistoryConfig::playback_max_age`].
    #[serde(rename = "playback_max_age")]
    pub playback_max_age_text: String,
    /// Which lines a member may read back.
    pub visibility: HistoryVisibility,
    /// Whether private messages are stored, per conversation.
    pub private_messages: bool,
    /// How long after sending a line its sender may still REDACT it, as a
    /// duration such as "1h"; "0" means always. Room ops and IRC operators
    /// are not bound. Use [`HistoryConfig::redact_window`].
    #[serde(rename = "redact_window")]
    pub redact_window_text: String,
    /// Whether room events (joins, parts, kicks, quits, nick and mode
    /// changes) and tag messages are stored too, for
    /// `draft/event-playback` readers.
    pub events: bool,
    /// The most lines one CHATHISTORY request returns (CHATHISTORY in 005).
    pub chathistory_max: usize,
    /// Lines kept per room, the oldest pruned first; 0 = no limit.
    pub max_lines_per_room: u64,
    /// Days a line is kept; 0 = forever.
    pub max_age_days: u64,
    /// Lines kept in all, the oldest pruned first; 0 = no limit.
    pub max_lines_total: u64,
}

/// `[history] backend`: which database holds the history lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryBackend {
    /// This node's own SQLite file at `[history] path`.
    #[default]
    Sqlite,
    /// One PostgreSQL database at `[history] postgres`, shared by every
    /// node of a network, so the network has one history.
    Postgres,
}

/// `[history] sync`: SQLite's `synchronous` setting in WAL mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HistorySync {
    /// A commit survives the server being killed, not a power cut.
    #[default]
    Normal,
    /// A commit survives a power cut too, at the cost of an fsync per batch.
    Full,
}

/// `[history] visibility` (and a `[[room]]`'s `history`): which stored
/// lines of a room a member may read back, by playback on join and by
/// CHATHISTORY alike. Never anything from before the room's current
/// incarnation (its creation; a `[[room]]` has one incarnation for ever).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryVisibility {
    /// The room's shared history: a joiner reads what was said before it
    /// came. `"all"`, the name older configurations used, means the same.
    #[default]
    #[serde(alias = "all")]
    Shared,
    /// Join-time only: a member reads only what was said since it joined.
    SinceJoin,
}

/// One `[[room]]`: a room that exists from startup and never disappears
/// when its last member leaves, so it and its history are always there.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Room {
    pub name: String,
    /// The topic it starts with; empty for none.
    #[serde(default)]
    pub topic: String,
    /// Flag modes it starts with, as in `default_modes`; unset: those.
    pub modes: Option<String>,
    /// Who may read its history; unset: `[history] visibility`.
    #[serde(default)]
    pub history: Option<HistoryVisibility>,
}

/// `[channels]`: how new rooms start.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Channels {
    /// Modes a new room starts with.
    pub default_modes: String,
}

/// `[log]`: what the server logs.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// A tracing filter; RUST_LOG wins over it.
    pub level: String,
}

/// `[cloaking]`: what others see instead of a user's IP address.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cloaking {
    /// Show everyone but the user and operators a keyed hash of the address.
    pub enabled: bool,
    /// The last label of every cloak.
    pub suffix: String,
    /// The key cloaks are made with; empty: the key in `secret_file`.
    pub secret: String,
    /// Where a generated key is kept across restarts (made on first start).
    pub secret_file: PathBuf,
}

impl Default for Cloaking {
    fn default() -> Self {
        Cloaking {
            enabled: true,
            suffix: "ip".into(),
            secret: String::new(),
            secret_file: PathBuf::from("rookery-cloak.key"),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            listen: vec![Listen {
                address: SocketAddr::from(([127, 0, 0, 1], 6667)),
                tls: None,
            }],
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            flood: Flood::default(),
            oper: Vec::new(),
            history: HistoryConfig::default(),
            accounts: AccountsConfig::default(),
            channels: Channels::default(),
            room: Vec::new(),
            log: Log::default(),
            cloaking: Cloaking::default(),
            metadata: MetadataConfig::default(),
            // `cargo run`, then http://localhost:8080/ in a browser.
            http: vec![HttpListen::plain(SocketAddr::from(([127, 0, 0, 1], 8080)))],
            metrics: MetricsConfig::default(),
            network: None,
            http_implicit: true,
            motd_loaded: Vec::new(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            name: "localhost".into(),
            network: "rookery".into(),
            description: "rookery IRC server".into(),
            motd: None,
            motd_file: None,
            password: None,
            casemapping: Casemapping::Ascii,
            bans_file: PathBuf::from("rookery-bans.toml"),
            utf8_only: false,
            sts_port: None,
            sts_duration: 2_592_000,
            client_tag_deny: Vec::new(),
        }
    }
}

impl Limits {
    /// The bytes one reply of stored lines (a join playback, a CHATHISTORY
    /// batch) may take of the sendq; the rest stays for what is sent meanwhile.
    pub fn history_reply_budget(&self) -> usize {
        self.sendq_bytes / 4
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clients: 10_000,
            max_clients_per_ip: 50,
            connects_per_ip_per_minute: 30,
            // A web gateway, bouncer or bridge on the same host.
            exempt_ips: ["127.0.0.0/8", "::1"]
                .iter()
                .filter_map(|range| range.parse().ok())
                .collect(),
            ipv6_prefix_bits: 64,
            channels_per_client: 50,
            max_channel_members: 0,
            nick_length: 30,
            channel_length: 64,
            topic_length: 390,
            away_length: 200,
            kick_length: 255,
            user_length: 10,
            realname_length: 100,
            max_list_entries: 100,
            max_targets: 4,
            sendq_bytes: 1 << 20,
            whowas_entries: 1000,
            modes_per_command: 6,
            max_monitor: 100,
            multiline_max_bytes: 4096,
            multiline_max_lines: 32,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            registration: 60,
            ping_interval: 120,
            ping_timeout: 60,
        }
    }
}

impl Default for Flood {
    fn default() -> Self {
        Flood {
            enabled: true,
            lines_per_second: 2.0,
            burst: 10,
            max_backlog: 30,
        }
    }
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            enabled: true,
            backend: HistoryBackend::Sqlite,
            postgres: String::new(),
            path: PathBuf::from("rookery.db"),
            sync: HistorySync::Normal,
            playback_lines: 25,
            playback_max_age_text: "1d".into(),
            visibility: HistoryVisibility::Shared,
            private_messages: false,
            redact_window_text: "0".into(),
            events: true,
            chathistory_max: 100,
            max_lines_per_room: 100_000,
            max_age_days: 0,
            max_lines_total: 10_000_000,
        }
    }
}

impl HistoryConfig {
    /// The oldest line replayed on join; `None` for no limit (and when the
    /// text is invalid, which [`load`] rejects).
    pub fn playback_max_age(&self) -> Option<std::time::Duration> {
        parse_duration(&self.playback_max_age_text)
            .ok()
            .filter(|age| !age.is_zero())
    }

    /// How long a sender may redact its line; `None` for always (and when
    /// the text is invalid, which [`load`] rejects).
    pub fn redact_window(&self) -> Option<std::time::Duration> {
        parse_duration(&self.redact_window_text)
            .ok()
            .filter(|window| !window.is_zero())
    }
}

/// Reads a duration written as a whole number and a unit: `90s`, `30m`,
/// `12h`, `7d`, `2w`; a bare `0` is zero.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "must be a number with a unit s, m, h, d or w, such as \"12h\", or \"0\"; found \"{text}\""
            ));
        }
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("must start with a whole number, as in \"12h\"; found \"{text}\""))?;
    number
        .checked_mul(seconds_per_unit)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("is too long: \"{text}\""))
}

impl Default for Channels {
    fn default() -> Self {
        Channels {
            default_modes: "+nt".into(),
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
        }
    }
}

impl Config {
    /// This server's key among the writers of a shared history database
    /// (its journal checkpoint's row): `[network] node`, or "" when it runs
    /// alone. (Not the server name: a lone server's row was always "", and
    /// a new key would start its checkpoint over at a new epoch, replaying
    /// nothing of a journal cut short.)
    pub fn history_node(&self) -> &str {
        self.network
            .as_ref()
            .map_or("", |network| network.node.as_str())
    }

    /// The message of the day, one entry per line: the inline `motd`, or the
    /// `motd_file` contents as read by the last load; empty when neither is set.
    pub fn motd_lines(&self) -> Vec<String> {
        match &self.server.motd {
            Some(motd) => motd.lines().map(str::to_owned).collect(),
            None => self.motd_loaded.clone(),
        }
    }
}

/// A configuration that could not be loaded, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file itself could not be read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `file:line:column: message`
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// Reads, parses and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and validates configuration text; `path` only names it in errors.
///
/// Files named inside the configuration (`motd_file`, TLS keys) are opened
/// relative to the working directory, as the server will open them.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let invalid = |span: Range<usize>, message: String| {
        let (line, column) = line_and_column(text, span.start);
        ConfigError::Invalid {
            path: path.to_owned(),
            line,
            column,
            message,
        }
    };
    let document = DeTable::parse(text).map_err(|error| {
        let span = error.span().unwrap_or(0..0);
        invalid(
            span.clone(),
            describe_syntax_error(error.message(), text.get(span).unwrap_or("")),
        )
    })?;
    let root = document.get_ref();
    let mut config =
        Config::deserialize(toml::de::Deserializer::from(document.clone())).map_err(|error| {
            let span = error.span().unwrap_or(0..0);
            let location = path_at(root, &span);
            invalid(span, describe_schema_error(error.message(), &location))
        })?;
    config.http_implicit = !root.contains_key("http");
    let earliest = problems(&config)
        .into_iter()
        .map(|problem| (span_of(root, &problem.path), problem))
        .min_by_key(|(span, _)| span.start);
    if let Some((span, problem)) = earliest {
        return Err(invalid(
            span,
            format!("{} {}", describe_key(&problem.path), problem.reason),
        ));
    }
    if let Some(motd_file) = &config.server.motd_file {
        let contents = std::fs::read_to_string(motd_file).map_err(|error| {
            let path = key_path("server.motd_file");
            let reason = format!(
                "names `{}`, which cannot be read: {error}",
                motd_file.display()
            );
            invalid(
                span_of(root, &path),
                format!("{} {reason}", describe_key(&path)),
            )
        })?;
        config.motd_loaded = contents.lines().map(str::to_owned).collect();
    }
    Ok(config)
}

fn serialize_casemapping<S: serde::Serializer>(
    casemapping: &Casemapping,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(casemapping.name())
}
