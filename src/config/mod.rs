//! The TOML configuration: one schema with a default for every key, loaded
//! and validated by [`load`], which REHASH calls again.

use std::net::SocketAddr;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::de::{DeArray, DeTable, DeValue};

use crate::net::Cidr;
use crate::proto::Casemapping;

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
    pub history: History,
    pub channels: Channels,
    /// Standing rooms, created at startup and kept when empty.
    pub room: Vec<Room>,
    pub log: Log,
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

/// `[limits]`: the caps advertised in 005 and enforced on every client.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_clients: usize,
    pub max_clients_per_ip: usize,
    /// New connections one address may open per minute; 0 = no limit.
    pub connects_per_ip_per_minute: u32,
    /// Addresses exempt from the two per-IP limits.
    pub exempt_ips: Vec<Cidr>,
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

/// One `[[oper]]`: a name and password hash that OPER accepts.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Oper {
    pub name: String,
    pub password_hash: String,
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
    /// KLINE, UNKLINE, DLINE, UNDLINE.
    Kline,
    /// REHASH.
    Rehash,
    /// WALLOPS.
    Wallops,
    /// No flood control.
    Exempt,
    /// LIST and WHOIS show secret rooms.
    SeeSecret,
}

impl Privilege {
    pub fn all() -> Vec<Privilege> {
        vec![
            Privilege::Kill,
            Privilege::Kline,
            Privilege::Rehash,
            Privilege::Wallops,
            Privilege::Exempt,
            Privilege::SeeSecret,
        ]
    }

    /// The name in the configuration and in 723 ERR_NOPRIVS.
    pub fn name(self) -> &'static str {
        match self {
            Privilege::Kill => "kill",
            Privilege::Kline => "kline",
            Privilege::Rehash => "rehash",
            Privilege::Wallops => "wallops",
            Privilege::Exempt => "exempt",
            Privilege::SeeSecret => "see_secret",
        }
    }
}

/// `[history]`: where room history is kept on disk, how long, and who
/// may read it back.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct History {
    pub enabled: bool,
    /// The SQLite database file.
    pub path: PathBuf,
    /// How hard a commit presses the data to disk.
    pub sync: HistorySync,
    /// Lines replayed to a client joining a room; 0 turns playback off.
    pub playback_lines: usize,
    /// The oldest line replayed on join, as a duration such as "1d" or
    /// "12h"; "0" means no age limit. Use [`History::playback_max_age`].
    #[serde(rename = "playback_max_age")]
    pub playback_max_age_text: String,
    /// Which lines a member may read back.
    pub visibility: HistoryVisibility,
    /// Whether private messages are stored, per conversation.
    pub private_messages: bool,
    /// The most lines one CHATHISTORY request returns (CHATHISTORY in 005).
    pub chathistory_max: usize,
    /// Lines kept per room, the oldest pruned first; 0 = no limit.
    pub max_lines_per_room: u64,
    /// Days a line is kept; 0 = forever.
    pub max_age_days: u64,
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

/// `[history] visibility`: which stored lines a room member may read back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryVisibility {
    /// Only what was said since the member joined.
    #[default]
    SinceJoin,
    /// Everything kept.
    All,
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
            history: History::default(),
            channels: Channels::default(),
            room: Vec::new(),
            log: Log::default(),
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

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clients: 10_000,
            max_clients_per_ip: 50,
            connects_per_ip_per_minute: 30,
            exempt_ips: Vec::new(),
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

impl Default for History {
    fn default() -> Self {
        History {
            enabled: true,
            path: PathBuf::from("rookery.db"),
            sync: HistorySync::Normal,
            playback_lines: 25,
            playback_max_age_text: "1d".into(),
            visibility: HistoryVisibility::SinceJoin,
            private_messages: false,
            chathistory_max: 100,
            max_lines_per_room: 100_000,
            max_age_days: 0,
        }
    }
}

impl History {
    /// The oldest line replayed on join; `None` for no limit (and when the
    /// text is invalid, which [`load`] rejects).
    pub fn playback_max_age(&self) -> Option<std::time::Duration> {
        parse_duration(&self.playback_max_age_text)
            .ok()
            .filter(|age| !age.is_zero())
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

/// One step of a key path: a table key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Splits a dotted path such as `listen[1].address` into segments.
fn key_path(dotted: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    for part in dotted.split('.') {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next() {
            segments.push(Segment::Key(key.to_owned()));
        }
        for index in pieces {
            if let Ok(index) = index.trim_end_matches(']').parse() {
                segments.push(Segment::Index(index));
            }
        }
    }
    segments
}

/// Where a key lives, for messages: "in [limits]", "in [[listen]] #2".
fn in_table(path: &[Segment]) -> String {
    if path.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in {}", describe_table(path))
    }
}

/// A table, for messages: `[limits]`, `[[listen]] #2`, `` `listen[0].tls` ``.
fn describe_table(path: &[Segment]) -> String {
    match path {
        [] => "the document".to_owned(),
        [Segment::Key(table)] => format!("[{table}]"),
        [Segment::Key(table), Segment::Index(index)] => format!("[[{table}]] #{}", index + 1),
        _ => format!("`{}`", dotted(path)),
    }
}

/// A key with its table, for messages: `` `nick_length` in [limits] ``.
fn describe_key(path: &[Segment]) -> String {
    match path.split_last() {
        None => "the document".to_owned(),
        Some((Segment::Key(key), [])) => format!("`{key}`"),
        Some((Segment::Key(key), table)) => format!("`{key}` {}", in_table(table)),
        Some((Segment::Index(index), [Segment::Key(table)])) => {
            format!("[[{table}]] #{}", index + 1)
        }
        Some((Segment::Index(index), parent)) => {
            format!("entry #{} of {}", index + 1, describe_key(parent))
        }
    }
}

fn dotted(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) if out.is_empty() => out.push_str(key),
            Segment::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Segment::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// Every key and value in the document with its path and span.
fn spans(document: &DeTable<'_>) -> Vec<(Vec<Segment>, Range<usize>)> {
    type Spans = Vec<(Vec<Segment>, Range<usize>)>;
    fn walk_table(table: &DeTable<'_>, path: &mut Vec<Segment>, out: &mut Spans) {
        for (key, value) in table.iter() {
            path.push(Segment::Key(key.get_ref().to_string()));
            out.push((path.clone(), key.span()));
            out.push((path.clone(), value.span()));
            walk_value(value.get_ref(), path, out);
            path.pop();
        }
    }
    fn walk_value(value: &DeValue<'_>, path: &mut Vec<Segment>, out: &mut Spans) {
        match value {
            DeValue::Table(table) => walk_table(table, path, out),
            DeValue::Array(array) => {
                for (index, item) in array.iter().enumerate() {
                    path.push(Segment::Index(index));
                    out.push((path.clone(), item.span()));
                    walk_value(item.get_ref(), path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk_table(document, &mut Vec::new(), &mut out);
    out
}

/// The innermost key or value whose span holds `span`.
fn path_at(document: &DeTable<'_>, span: &Range<usize>) -> Vec<Segment> {
    spans(document)
        .into_iter()
        .filter(|(_, candidate)| candidate.start <= span.start && span.end <= candidate.end)
        .min_by_key(|(path, candidate)| (candidate.len(), std::cmp::Reverse(path.len())))
        .map(|(path, _)| path)
        .unwrap_or_default()
}

/// The span of the value at `path`, or of its nearest written ancestor when
/// the value comes from a default.
fn span_of(document: &DeTable<'_>, path: &[Segment]) -> Range<usize> {
    let mut span = 0..0;
    let mut table = Some(document);
    let mut array = None;
    for segment in path {
        let found = match segment {
            Segment::Key(key) => table
                .and_then(|table| table.iter().find(|(k, _)| k.get_ref() == key))
                .map(|(_, v)| v),
            Segment::Index(index) => array.and_then(|array: &DeArray<'_>| array.get(*index)),
        };
        let Some(value) = found else { break };
        span = value.span();
        table = value.get_ref().as_table();
        array = value.get_ref().as_array();
    }
    span
}

/// 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

fn describe_syntax_error(message: &str, snippet: &str) -> String {
    if message == "duplicate key" && !snippet.is_empty() {
        format!("duplicate key `{snippet}`; each key may be set once per table")
    } else {
        format!("invalid TOML: {message}")
    }
}

/// Rewords a serde message about the value or key at `path` for an admin.
fn describe_schema_error(message: &str, path: &[Segment]) -> String {
    let names = backticked(message);
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (unknown, expected) = names
            .split_first()
            .map_or(("", &[][..]), |(first, rest)| (first.as_str(), rest));
        let table = path.split_last().map_or(&[][..], |(_, table)| table);
        let mut out = format!("unknown key `{unknown}` {}", in_table(table));
        if let Some(close) = closest(unknown, expected) {
            out.push_str(&format!(" (did you mean `{close}`?)"));
        }
        if expected.is_empty() || rest.contains("there are no fields") {
            out.push_str("; this table takes no keys");
        } else {
            out.push_str(&format!("; expected one of {}", expected.join(", ")));
        }
        return out;
    }
    if message.starts_with("missing field ") {
        let missing = names.first().map_or("", String::as_str);
        return format!(
            "{} is missing the required key `{missing}`",
            describe_table(path)
        );
    }
    if message.starts_with("unknown variant ") {
        let (unknown, expected) = names
            .split_first()
            .map_or(("", &[][..]), |(first, rest)| (first.as_str(), rest));
        return format!(
            "{} has the unknown value `{unknown}`; expected one of {}",
            describe_key(path),
            expected.join(", ")
        );
    }
    if message == "invalid socket address syntax" {
        return format!(
            "{} is not an address with a port, such as \"127.0.0.1:6667\" or \"[::1]:6667\"",
            describe_key(path)
        );
    }
    let invalid = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    if let Some((found, expected)) = invalid.and_then(|rest| rest.rsplit_once(", expected ")) {
        let mut out = format!(
            "{} must be {}, found {}",
            describe_key(path),
            describe_expected(expected),
            describe_found(found)
        );
        if let ([Segment::Key(array)], "map") = (path, found) {
            out.push_str(&format!(
                "; write [[{array}]], with two brackets, for each entry"
            ));
        }
        return out;
    }
    format!("{}: {message}", describe_key(path))
}

/// Serde's names for the expected types, in an admin's words.
fn describe_expected(expected: &str) -> String {
    match expected {
        "usize" | "u64" => "a whole number, 0 or more".to_owned(),
        "u32" => format!("a whole number from 0 to {}", u32::MAX),
        "f64" => "a number".to_owned(),
        "a sequence" => "an array".to_owned(),
        "path string" => "a path string".to_owned(),
        other if other.starts_with("struct ") => "a table".to_owned(),
        other => other.to_owned(),
    }
}

/// Serde's names for the value found, in an admin's words.
fn describe_found(found: &str) -> String {
    match found {
        "map" => "a table".to_owned(),
        "sequence" => "an array".to_owned(),
        other => other.to_owned(),
    }
}

/// The words between backticks, in order.
fn backticked(message: &str) -> Vec<String> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The expected key a misspelling most likely meant, if any is close.
fn closest<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, b_char) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(a_char != *b_char);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// A value that parsed but makes no sense, at its dotted key path.
struct Problem {
    path: Vec<Segment>,
    reason: String,
}

/// Collects the semantic problems of a deserialized configuration.
#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn report(&mut self, path: &str, reason: impl Into<String>) {
        self.problems.push(Problem {
            path: key_path(path),
            reason: reason.into(),
        });
    }

    fn at_least<T: PartialOrd + std::fmt::Display>(&mut self, path: &str, value: T, min: T) {
        if value < min {
            self.report(path, format!("must be at least {min}, found {value}"));
        }
    }

    fn between<T: PartialOrd + std::fmt::Display>(
        &mut self,
        path: &str,
        value: T,
        range: RangeInclusive<T>,
    ) {
        if !range.contains(&value) {
            self.report(
                path,
                format!(
                    "must be between {} and {}, found {value}",
                    range.start(),
                    range.end()
                ),
            );
        }
    }

    fn readable(&mut self, path: &str, file: &Path) {
        if let Err(error) = std::fs::File::open(file) {
            self.report(
                path,
                format!("names `{}`, which cannot be read: {error}", file.display()),
            );
        }
    }
}

fn problems(config: &Config) -> Vec<Problem> {
    let mut check = Checker::default();
    check_server(&mut check, &config.server);
    check_listen(&mut check, &config.listen);
    if config.server.sts_port.is_some() && config.listen.iter().all(|listen| listen.tls.is_none()) {
        check.report(
            "server.sts_port",
            "needs a [[listen]] with tls: STS sends clients to TLS",
        );
    }
    check_limits(&mut check, &config.limits);
    check_timeouts_and_flood(&mut check, config);
    check_opers(&mut check, &config.oper);
    check_channels_history_log(&mut check, config);
    check.problems
}

fn check_server(check: &mut Checker, server: &ServerConfig) {
    if server.name.is_empty() {
        check.report("server.name", "must not be empty");
    } else if let Some(bad) = server
        .name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "!@*?".contains(*c))
    {
        check.report(
            "server.name",
            format!("must not contain {bad:?}: it is the source of every server message"),
        );
    }
    if server.network.is_empty() {
        check.report("server.network", "must not be empty");
    } else if let Some(bad) = server
        .network
        .chars()
        .find(|c| c.is_whitespace() || c.is_control())
    {
        check.report(
            "server.network",
            format!("must not contain {bad:?}: it is a single 005 token"),
        );
    }
    if let Some(bad) = server.description.chars().find(|c| c.is_control()) {
        check.report(
            "server.description",
            format!("must not contain {bad:?}: it is sent on one line"),
        );
    }
    if server.motd.is_some() && server.motd_file.is_some() {
        check.report(
            "server.motd_file",
            "cannot be set together with `motd`; keep one of them",
        );
    }
    if server.sts_duration == 0 {
        check.report("server.sts_duration", "must be at least 1 second");
    }
    for (index, tag) in server.client_tag_deny.iter().enumerate() {
        let name = tag.strip_prefix('-').unwrap_or(tag);
        let valid = !name.is_empty()
            && (name == "*" && !tag.starts_with('-')
                || name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-/.".contains(c)));
        if !valid {
            check.report(
                &format!("server.client_tag_deny[{index}]"),
                format!(
                    "must be a tag name without `+` (such as \"typing\"), `*` for every tag, or `-name` to exempt one; found \"{tag}\""
                ),
            );
        }
    }
    if let Some(password) = &server.password {
        if password.is_empty() {
            check.report(
                "server.password",
                "must not be empty; comment it out to require no password",
            );
        } else if let Some(bad) = password.chars().find(|c| c.is_control()) {
            check.report(
                "server.password",
                format!("must not contain {bad:?}: a client could not send it"),
            );
        }
    }
}

fn check_listen(check: &mut Checker, listen: &[Listen]) {
    if listen.is_empty() {
        check.report("listen", "is empty; add at least one [[listen]] address");
    }
    for (index, entry) in listen.iter().enumerate() {
        if let Some(first) = listen[..index]
            .iter()
            .position(|earlier| earlier.address == entry.address)
        {
            check.report(
                &format!("listen[{index}].address"),
                format!("repeats {} from [[listen]] #{}", entry.address, first + 1),
            );
        }
        if let Some(tls) = &entry.tls {
            check.readable(&format!("listen[{index}].tls.cert"), &tls.cert);
            check.readable(&format!("listen[{index}].tls.key"), &tls.key);
        }
    }
}

fn check_limits(check: &mut Checker, limits: &Limits) {
    check.at_least("limits.max_clients", limits.max_clients, 1);
    check.at_least("limits.max_clients_per_ip", limits.max_clients_per_ip, 1);
    check.at_least("limits.channels_per_client", limits.channels_per_client, 1);
    check.between("limits.nick_length", limits.nick_length, 1..=200);
    check.between("limits.channel_length", limits.channel_length, 2..=200);
    if limits.topic_length > MAX_TOPIC_LENGTH {
        check.report(
            "limits.topic_length",
            format!(
                "must be at most {MAX_TOPIC_LENGTH}, found {}: a line is at most 512 bytes, and a topic must fit in one with the reply's prefix and channel name",
                limits.topic_length
            ),
        );
    } else {
        check.at_least("limits.topic_length", limits.topic_length, 1);
    }
    check.between("limits.away_length", limits.away_length, 1..=4096);
    check.between("limits.kick_length", limits.kick_length, 1..=4096);
    check.between("limits.user_length", limits.user_length, 1..=64);
    check.between("limits.realname_length", limits.realname_length, 1..=400);
    check.at_least("limits.max_list_entries", limits.max_list_entries, 1);
    check.at_least("limits.max_targets", limits.max_targets, 1);
    check.at_least("limits.sendq_bytes", limits.sendq_bytes, 4096);
    check.between(
        "limits.modes_per_command",
        limits.modes_per_command,
        1..=100,
    );
    check.between("limits.whowas_entries", limits.whowas_entries, 0..=100_000);
    check.between("limits.max_monitor", limits.max_monitor, 1..=10_000);
}

/// The longest topic that still fits a 512-byte line with its numeric and prefix.
const MAX_TOPIC_LENGTH: usize = 400;

fn check_timeouts_and_flood(check: &mut Checker, config: &Config) {
    check.at_least("timeouts.registration", config.timeouts.registration, 1);
    check.at_least("timeouts.ping_interval", config.timeouts.ping_interval, 1);
    check.at_least("timeouts.ping_timeout", config.timeouts.ping_timeout, 1);
    let rate = config.flood.lines_per_second;
    if !(rate.is_finite() && rate > 0.0) {
        check.report(
            "flood.lines_per_second",
            format!("must be a number above 0, found {rate}"),
        );
    }
    check.at_least("flood.burst", config.flood.burst, 1);
    check.at_least("flood.max_backlog", config.flood.max_backlog, 1);
}

fn check_opers(check: &mut Checker, opers: &[Oper]) {
    for (index, oper) in opers.iter().enumerate() {
        let name = format!("oper[{index}].name");
        if oper.name.is_empty() {
            check.report(&name, "must not be empty");
        } else if oper
            .name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            check.report(&name, "must not contain spaces: OPER takes it as one word");
        } else if let Some(first) = opers[..index]
            .iter()
            .position(|earlier| earlier.name == oper.name)
        {
            check.report(
                &name,
                format!("repeats `{}` from [[oper]] #{}", oper.name, first + 1),
            );
        }
        let hash_path = format!("oper[{index}].password_hash");
        if !oper.password_hash.starts_with("$argon2id$") {
            check.report(&hash_path, "must be an argon2id hash, starting with `$argon2id$`; make one with `rookery passwd`");
        } else if let Err(error) = argon2::PasswordHash::new(&oper.password_hash) {
            check.report(
                &hash_path,
                format!("is not a valid argon2id hash ({error}); make one with `rookery passwd`"),
            );
        }
        for (host_index, host) in oper.hosts.iter().enumerate() {
            if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
                check.report(
                    &format!("oper[{index}].hosts[{host_index}]"),
                    "must be a non-empty mask without spaces",
                );
            }
        }
    }
}

/// The most lines replayed on join: playback is sent in one burst.
const MAX_PLAYBACK_LINES: usize = 1000;
/// A century: more days than that overflow the millisecond arithmetic's sense.
const MAX_AGE_DAYS: u64 = 36_500;

/// Modes a room may start with: the simple flags that take no argument.
const DEFAULT_MODE_LETTERS: &str = "ntimsp";

/// The most lines one CHATHISTORY request may return.
const MAX_CHATHISTORY: usize = 1000;

/// Checks a `+nt`-style list of flag modes.
fn check_flag_modes(check: &mut Checker, path: &str, modes: &str) {
    if modes.is_empty() {
        return;
    }
    let letters = modes.strip_prefix('+');
    let bad = letters.map(|letters| letters.chars().find(|c| !DEFAULT_MODE_LETTERS.contains(*c)));
    match bad {
        None => check.report(
            path,
            format!("must start with `+`, as in \"+nt\", found \"{modes}\""),
        ),
        Some(Some(letter)) => check.report(
            path,
            format!("has `{letter}`; only these modes may be set here: {DEFAULT_MODE_LETTERS}"),
        ),
        Some(None) => {}
    }
}

fn check_rooms(check: &mut Checker, config: &Config) {
    let fold = |name: &str| config.server.casemapping.fold(name);
    for (index, room) in config.room.iter().enumerate() {
        let name = format!("room[{index}].name");
        if !crate::proto::validate::is_valid_channel(&room.name, config.limits.channel_length) {
            check.report(
                &name,
                format!(
                    "must be a channel name such as \"#lobby\" (starting with # or &, at most {} bytes, no spaces, commas or control characters), found \"{}\"",
                    config.limits.channel_length, room.name
                ),
            );
        } else if let Some(first) = config.room[..index]
            .iter()
            .position(|earlier| fold(&earlier.name) == fold(&room.name))
        {
            check.report(
                &name,
                format!("repeats `{}` from [[room]] #{}", room.name, first + 1),
            );
        }
        if room.topic.len() > config.limits.topic_length {
            check.report(
                &format!("room[{index}].topic"),
                format!(
                    "is {} bytes, longer than `topic_length` in [limits] ({})",
                    room.topic.len(),
                    config.limits.topic_length
                ),
            );
        } else if room.topic.chars().any(char::is_control) {
            check.report(
                &format!("room[{index}].topic"),
                "must not contain control characters",
            );
        }
        if let Some(modes) = &room.modes {
            check_flag_modes(check, &format!("room[{index}].modes"), modes);
        }
    }
}

fn check_channels_history_log(check: &mut Checker, config: &Config) {
    check_flag_modes(
        check,
        "channels.default_modes",
        &config.channels.default_modes,
    );
    check_rooms(check, config);
    check.between(
        "history.chathistory_max",
        config.history.chathistory_max,
        1..=MAX_CHATHISTORY,
    );
    if config.history.enabled && config.history.path.as_os_str().is_empty() {
        check.report("history.path", "must not be empty while history is enabled");
    }
    if let Err(reason) = parse_duration(&config.history.playback_max_age_text) {
        check.report("history.playback_max_age", reason);
    }
    check.between(
        "history.playback_lines",
        config.history.playback_lines,
        0..=MAX_PLAYBACK_LINES,
    );
    check.between(
        "history.max_age_days",
        config.history.max_age_days,
        0..=MAX_AGE_DAYS,
    );
    if let Err(error) = tracing_subscriber::EnvFilter::try_new(&config.log.level) {
        check.report(
            "log.level",
            format!("is not a tracing filter such as \"info\" or \"rookery=debug,warn\": {error}"),
        );
    }
}
