//! The checks serde cannot make: values that parse but make no sense
//! (ranges, files that must be readable, keys that depend on each other),
//! each reported at its dotted key path.

use std::ops::RangeInclusive;
use std::path::Path;

use super::locate::{Segment, key_path};
use super::{
    Config, HistoryBackend, HttpListen, Limits, Listen, MetricsConfig, NetworkConfig, Oper,
    ServerConfig, parse_duration,
};
use crate::proto::modes::{channel_flag, channel_flag_letters};

/// A value that parsed but makes no sense, at its dotted key path.
pub(super) struct Problem {
    pub path: Vec<Segment>,
    pub reason: String,
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

/// Every semantic problem in `config`, in no particular order.
pub(super) fn problems(config: &Config) -> Vec<Problem> {
    let mut check = Checker::default();
    check_server(&mut check, &config.server);
    check_listen(&mut check, &config.listen);
    check_http(&mut check, &config.http, &config.listen);
    check_metrics(&mut check, &config.metrics);
    if let Some(network) = &config.network {
        check_network(&mut check, network);
    }
    if config.server.sts_port.is_some() && config.listen.iter().all(|listen| listen.tls.is_none()) {
        check.report(
            "server.sts_port",
            "needs a [[listen]] with tls: STS sends clients to TLS",
        );
    }
    check_limits(&mut check, &config.limits);
    check_cloaking(&mut check, &config.cloaking);
    check_timeouts_and_flood(&mut check, config);
    check_opers(&mut check, &config.oper);
    check_channels_history_log(&mut check, config);
    check_accounts(&mut check, &config.accounts);
    check_metadata(&mut check, &config.metadata);
    check.problems
}

fn check_server(check: &mut Checker, server: &ServerConfig) {
    if server.name.is_empty() {
        check.report("server.name", "must not be empty");
    } else if server.name.len() > 255 {
        check.report("server.name", "must be at most 255 bytes");
    } else if let Some(bad) = server
        .name
        .chars()
        .find(|&c| !crate::proto::validate::may_name_a_server(c))
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

fn check_http(check: &mut Checker, http: &[HttpListen], listen: &[Listen]) {
    for (index, entry) in http.iter().enumerate() {
        let path = format!("http[{index}]");
        // Port 0 is a fresh port each time: it cannot repeat.
        let fixed_port = entry.address.port() != 0;
        if let Some(first) = http[..index]
            .iter()
            .position(|earlier| earlier.address == entry.address)
            .filter(|_| fixed_port)
        {
            let repeated = format!("repeats {} from [[http]] #{}", entry.address, first + 1);
            check.report(&format!("{path}.address"), repeated);
        }
        let same_as_irc = listen.iter().position(|irc| irc.address == entry.address);
        if let Some(first) = same_as_irc.filter(|_| fixed_port) {
            let taken = format!("is {} of [[listen]] #{} too", entry.address, first + 1);
            check.report(&format!("{path}.address"), taken);
        }
        if let Some(tls) = &entry.tls {
            check.readable(&format!("{path}.tls.cert"), &tls.cert);
            check.readable(&format!("{path}.tls.key"), &tls.key);
        }
        for (number, origin) in entry.origins.iter().enumerate() {
            if !is_valid_origin(origin) {
                check.report(
                    &format!("{path}.origins[{number}]"),
                    format!(
                        "is {origin:?}; an origin is \"*\" or a scheme and host with no path, such as \"https://chat.example.org\""
                    ),
                );
            }
        }
    }
}

/// `*`, or what a browser sends as `Origin`: `http://` or `https://`, a
/// host, maybe a port, nothing after.
fn is_valid_origin(origin: &str) -> bool {
    if origin == "*" {
        return true;
    }
    let Some((scheme, host)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && !host.contains(['/', '?', '#', ' ', '@'])
}

fn check_metrics(check: &mut Checker, metrics: &MetricsConfig) {
    if let Some(token) = &metrics.token
        && (token.is_empty() || token.contains(|c: char| c.is_whitespace() || c.is_control()))
    {
        check.report(
            "metrics.token",
            "must be a non-empty word without spaces: it is sent as `Authorization: Bearer <token>`",
        );
    }
}

fn check_network(check: &mut Checker, network: &NetworkConfig) {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if network.node.is_empty() || network.node.len() > 32 || !network.node.chars().all(word) {
        check.report(
            "network.node",
            "must name this node with 1 to 32 letters, digits, `-` or `_`, unique in the network",
        );
    }
    if network.nats.is_empty() {
        check.report("network.nats", "must list at least one NATS server");
    }
    for url in &network.nats {
        if !url.starts_with("nats://") && !url.starts_with("tls://") {
            check.report(
                "network.nats",
                format!("`{url}` is not a NATS address such as nats://127.0.0.1:4222"),
            );
        }
    }
    check.between("network.heartbeat_ms", network.heartbeat_ms, 50..=60_000);
    check.between("network.claim_replicas", network.claim_replicas, 1..=5);
    if network.node_timeout_ms < network.heartbeat_ms.saturating_mul(2) {
        check.report(
            "network.node_timeout_ms",
            "must be at least twice network.heartbeat_ms, or one late heartbeat splits the network",
        );
    }
}

fn check_limits(check: &mut Checker, limits: &Limits) {
    check.at_least("limits.max_clients", limits.max_clients, 1);
    check.at_least("limits.max_clients_per_ip", limits.max_clients_per_ip, 1);
    check.at_least("limits.channels_per_client", limits.channels_per_client, 1);
    check.between("limits.ipv6_prefix_bits", limits.ipv6_prefix_bits, 1..=128);
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
    // A registered room's lists are stored whole; the store takes no more.
    check.between(
        "limits.max_list_entries",
        limits.max_list_entries,
        1..=crate::accounts::rooms::MAX_LIST_ENTRIES,
    );
    check.at_least("limits.max_targets", limits.max_targets, 1);
    check.at_least("limits.sendq_bytes", limits.sendq_bytes, 4096);
    check.between(
        "limits.modes_per_command",
        limits.modes_per_command,
        1..=100,
    );
    check.between("limits.whowas_entries", limits.whowas_entries, 0..=100_000);
    check.between("limits.max_monitor", limits.max_monitor, 1..=10_000);
    check.between(
        "limits.multiline_max_bytes",
        limits.multiline_max_bytes,
        512..=65_536,
    );
    check.between(
        "limits.multiline_max_lines",
        limits.multiline_max_lines,
        2..=1000,
    );
    check_history_reply(check, limits);
}

/// Room for one replayed line's source, command, target and `batch` tag
/// around its text (a multiline message's client tags go on its start).
const LINE_OVERHEAD: usize = 256;

/// A history reply stops at its budget but always holds one whole
/// message: the longest multiline one must fit half the sendq, so a reply
/// never fills it.
fn check_history_reply(check: &mut Checker, limits: &Limits) {
    let lines = limits.multiline_max_lines.saturating_add(2);
    let longest = lines
        .saturating_mul(LINE_OVERHEAD)
        .saturating_add(limits.multiline_max_bytes);
    if longest.saturating_mul(2) > limits.sendq_bytes {
        check.report(
            "limits.sendq_bytes",
            format!(
                "must be at least {} with limits.multiline_max_bytes = {} and limits.multiline_max_lines = {}: half of it must hold the longest multiline message in a history reply",
                longest.saturating_mul(2),
                limits.multiline_max_bytes,
                limits.multiline_max_lines
            ),
        );
    }
}

fn check_cloaking(check: &mut Checker, cloaking: &super::Cloaking) {
    let suffix = &cloaking.suffix;
    let valid = !suffix.is_empty()
        && suffix.len() <= 32
        && suffix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid {
        check.report(
            "cloaking.suffix",
            format!(
                "must be 1 to 32 letters, digits, '-' or '.', found {suffix:?}: it ends every cloaked host"
            ),
        );
    }
    if cloaking.enabled && cloaking.secret.is_empty() && cloaking.secret_file.as_os_str().is_empty()
    {
        check.report(
            "cloaking.secret_file",
            "is empty while cloaking.secret is empty too: set one, so cloaks stay the same across restarts",
        );
    }
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
    // Each line of a multiline batch is charged like any line: a whole
    // batch sent at once (its lines, BATCH + and -) may wait, never be cut off.
    let flood = &config.flood;
    let batch = config.limits.multiline_max_lines.saturating_add(2);
    let room = u64::from(flood.burst) + u64::from(flood.max_backlog);
    if flood.enabled && batch as u64 > room {
        check.report(
            "limits.multiline_max_lines",
            format!("plus 2 must be at most flood.burst + flood.max_backlog ({room}), so that a whole batch is never taken for a flood"),
        );
    }
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
        check_oper_account(check, index, oper);
        // With an account and no hash, logging in is the only way in.
        if !(oper.password_hash.is_empty() && oper.account.is_some()) {
            check_oper_hash(check, index, oper);
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

/// `[[oper]] password_hash`: an argon2id hash OPER can check.
fn check_oper_hash(check: &mut Checker, index: usize, oper: &Oper) {
    let hash_path = format!("oper[{index}].password_hash");
    if !oper.password_hash.starts_with("$argon2id$") {
        check.report(&hash_path, "must be an argon2id hash, starting with `$argon2id$` (or leave it out and name an account); make one with `rookery passwd`");
    } else if let Err(error) = argon2::PasswordHash::new(&oper.password_hash) {
        check.report(
            &hash_path,
            format!("is not a valid argon2id hash ({error}); make one with `rookery passwd`"),
        );
    }
}

/// `[[oper]] account`: a name an account can have.
fn check_oper_account(check: &mut Checker, index: usize, oper: &Oper) {
    let Some(account) = &oper.account else {
        return;
    };
    if !crate::proto::validate::is_valid_nick(account, MAX_ACCOUNT_NAME_LEN) {
        check.report(
            &format!("oper[{index}].account"),
            format!("{account:?} is not an account name (a nick of at most {MAX_ACCOUNT_NAME_LEN} bytes)"),
        );
    }
}

/// The longest account name (the account store's limit).
const MAX_ACCOUNT_NAME_LEN: usize = 64;

/// The most lines replayed on join: playback is sent in one burst.
const MAX_PLAYBACK_LINES: usize = 1000;
/// A century: more days than that overflow the millisecond arithmetic's sense.
const MAX_AGE_DAYS: u64 = 36_500;

/// The most lines one CHATHISTORY request may return.
const MAX_CHATHISTORY: usize = 1000;

/// Checks a `+nt`-style list of flag modes.
fn check_flag_modes(check: &mut Checker, path: &str, modes: &str) {
    if modes.is_empty() {
        return;
    }
    // A room may start with the flags: the modes that take no argument.
    let letters = modes.strip_prefix('+');
    let bad = letters.map(|letters| {
        letters
            .chars()
            .find(|letter| channel_flag(*letter).is_none())
    });
    match bad {
        None => check.report(
            path,
            format!("must start with `+`, as in \"+nt\", found \"{modes}\""),
        ),
        Some(Some(letter)) => check.report(
            path,
            format!(
                "has `{letter}`; only these modes may be set here: {}",
                channel_flag_letters()
            ),
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
    if config.history.enabled
        && config.history.backend == HistoryBackend::Postgres
        && let Err(reason) = crate::history::postgres::check_url(&config.history.postgres)
    {
        check.report("history.postgres", reason);
    }
    // Private conversations may be kept in a shared store too: they are
    // keyed by account name, and the accounts live in the same shared
    // database, so a name is one account on every node.
    let shared = config.history.enabled && config.history.backend == HistoryBackend::Postgres;
    // Without the journal every line would wait for the database.
    if shared && config.history.sync == super::HistorySync::Full {
        check.report(
            "history.sync",
            "must be \"normal\" with backend = \"postgres\": each line would wait for the database",
        );
    }
    if let Err(reason) = parse_duration(&config.history.playback_max_age_text) {
        check.report("history.playback_max_age", reason);
    }
    if let Err(reason) = parse_duration(&config.history.redact_window_text) {
        check.report("history.redact_window", reason);
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

fn check_accounts(check: &mut Checker, accounts: &super::AccountsConfig) {
    for (path, text) in [
        ("accounts.guest_after", &accounts.guest_after_text),
        ("accounts.login_window", &accounts.login_window_text),
    ] {
        match parse_duration(text) {
            Err(reason) => check.report(path, reason),
            Ok(duration) if duration.is_zero() => check.report(path, "must be longer than 0"),
            Ok(_) => {}
        }
    }
    let format = &accounts.guest_format;
    if format.matches('*').count() != 1 {
        check.report(
            "accounts.guest_format",
            format!("must hold one `*`, replaced by a number; found \"{format}\""),
        );
    } else if !crate::proto::validate::is_valid_nick(&format.replace('*', "1"), usize::MAX) {
        check.report(
            "accounts.guest_format",
            format!("must make a valid nick with `*` replaced by a number; found \"{format}\""),
        );
    }
    check.between(
        "accounts.max_rooms_per_account",
        accounts.max_rooms_per_account,
        0..=1000,
    );
    check.between("accounts.login_attempts", accounts.login_attempts, 1..=1000);
    check.between(
        "accounts.registrations_per_address_per_hour",
        accounts.registrations_per_address_per_hour,
        1..=1000,
    );
    check_smtp(check, accounts);
}

fn check_smtp(check: &mut Checker, accounts: &super::AccountsConfig) {
    let smtp = &accounts.smtp;
    if accounts.registration_requires_email && smtp.relay.is_empty() {
        check.report(
            "accounts.registration_requires_email",
            "needs [accounts.smtp] relay to send the verification codes",
        );
    }
    if !smtp.relay.is_empty() {
        let has_port = smtp
            .relay
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !has_port {
            check.report(
                "accounts.smtp.relay",
                format!(
                    "must be host:port, such as \"127.0.0.1:25\"; found \"{}\"",
                    smtp.relay
                ),
            );
        }
        if !smtp.from.contains('@') {
            check.report("accounts.smtp.from", "must be the sender's mail address");
        }
    }
}

fn check_metadata(check: &mut Checker, metadata: &super::MetadataConfig) {
    check.between("metadata.max_keys", metadata.max_keys, 1..=100);
    check.between(
        "metadata.max_value_bytes",
        metadata.max_value_bytes,
        1..=super::MAX_VALUE_BYTES,
    );
    check.between("metadata.max_subs", metadata.max_subs, 1..=200);
    if metadata.allowed_keys.len() > 100 {
        check.report("metadata.allowed_keys", "lists at most 100 keys");
    }
    for key in &metadata.allowed_keys {
        if !super::is_valid_key(key) {
            check.report(
                "metadata.allowed_keys",
                format!("`{key}` is not a key name (lowercase letters, digits, _ . / -)"),
            );
        }
    }
}
