//! The core's side of administration: K-lines and D-lines, failed OPER
//! attempts, and the requests handed to the admin worker ([`crate::admin`])
//! for anything that blocks: loading the configuration, checking a
//! password hash, writing the bans file.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::error;

use super::clock::unix_time;
use super::{ClientId, Event, State};
use crate::config::Privilege;
use crate::net::{AddressKey, Cidr};
use crate::proto::mask::Mask;
use crate::proto::numeric;
use crate::proto::{Casemapping, Line};

/// Work the core hands off because it blocks or touches files.
#[derive(Debug)]
pub enum AdminRequest {
    /// Load the configuration file again; the answer is `Event::Reloaded`.
    Reload { requested_by: Option<ClientId> },
    /// Check a password against an argon2 hash; the answer is `Event::OperChecked`.
    CheckOper {
        password: String,
        hash: String,
        /// Sends the answer, or a failed one if the check is dropped.
        answer: OperAnswer,
    },
    /// Replace the bans file with these lines.
    SaveBans { path: PathBuf, bans: BanList },
}

/// The answer owed for an OPER password check. The client's later lines
/// are held until it comes, so one dropped unanswered (the worker stopped
/// with the check queued, or its task was dropped) answers "not valid"
/// and the client is resumed.
#[derive(Debug)]
pub struct OperAnswer {
    id: ClientId,
    oper: String,
    core: Option<mpsc::Sender<Event>>,
}

impl OperAnswer {
    pub fn new(id: ClientId, oper: String, core: Option<mpsc::Sender<Event>>) -> OperAnswer {
        OperAnswer { id, oper, core }
    }

    /// Sends the answer to the core.
    pub async fn send(mut self, valid: bool) {
        if let Some(core) = self.core.take() {
            let _ = core.send(self.event(valid)).await;
        }
    }

    /// Drops the check without answering: the core answered it itself.
    fn disarm(mut self) {
        self.core = None;
    }

    /// The answer as the core receives it, for a caller that hands it over
    /// itself (tests driving the core without a worker).
    #[cfg(test)]
    pub fn into_event(mut self, valid: bool) -> Event {
        self.core = None;
        self.event(valid)
    }

    fn event(&self, valid: bool) -> Event {
        Event::OperChecked {
            id: self.id,
            oper: self.oper.clone(),
            valid,
        }
    }
}

impl Drop for OperAnswer {
    fn drop(&mut self) {
        let Some(core) = self.core.take() else {
            return;
        };
        // No waiting in a drop: a full inbox gets the answer from a task.
        if let Err(mpsc::error::TrySendError::Full(event)) = core.try_send(self.event(false)) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = core.send(event).await;
                });
            }
        }
    }
}

/// A configuration the admin worker loaded for REHASH.
#[derive(Debug)]
pub struct Reloaded {
    pub config: std::sync::Arc<crate::config::Config>,
    /// Settings the file changed that take effect at a restart only; the
    /// running values were kept ([`crate::config::keep_restart_only`]).
    pub kept: Vec<&'static str>,
}

/// Failed OPER attempts after which an address is refused without a check.
pub const OPER_ATTEMPTS: u32 = 3;
/// How long those refusals last.
pub const OPER_LOCKOUT: Duration = Duration::from_secs(60);

/// Administration state owned by the core.
#[derive(Debug, Default)]
pub struct AdminState {
    /// The admin worker; absent in core tests.
    pub worker: Option<mpsc::UnboundedSender<AdminRequest>>,
    /// The file REHASH reloads, when the server was started from one.
    pub config_file: Option<PathBuf>,
    pub bans: BanList,
    oper_attempts: HashMap<AddressKey, OperAttempts>,
}

/// OPER attempts from one address that did not succeed (yet): each counts
/// from the moment it starts, so attempts checked in parallel count too.
#[derive(Debug)]
struct OperAttempts {
    count: u32,
    last: SystemTime,
}

impl AdminState {
    /// Hands `request` to the worker; false when there is none.
    pub fn request(&self, request: AdminRequest) -> bool {
        let refused = match &self.worker {
            Some(worker) => worker.send(request).err().map(|refused| refused.0),
            None => Some(request),
        };
        let sent = refused.is_none();
        // The caller answers a refused request itself.
        if let Some(AdminRequest::CheckOper { answer, .. }) = refused {
            answer.disarm();
        }
        if !sent {
            error!("the admin worker is not running");
        }
        sent
    }

    /// Starts an OPER attempt from `key`, or refuses it (false) while the
    /// address has [`OPER_ATTEMPTS`] attempts failed or still being checked.
    pub fn start_oper_attempt(&mut self, key: AddressKey, now: SystemTime) -> bool {
        if self.oper_attempts.len() >= 1024 {
            self.oper_attempts
                .retain(|_, attempts| !expired(attempts.last, now));
        }
        let attempts = self.oper_attempts.entry(key).or_insert(OperAttempts {
            count: 0,
            last: now,
        });
        if expired(attempts.last, now) {
            attempts.count = 0;
        }
        if attempts.count >= OPER_ATTEMPTS {
            return false;
        }
        attempts.count += 1;
        attempts.last = now;
        true
    }

    /// A right password clears the address's record.
    pub fn oper_succeeded(&mut self, key: AddressKey) {
        self.oper_attempts.remove(&key);
    }
}

fn expired(last: SystemTime, now: SystemTime) -> bool {
    now.duration_since(last).unwrap_or_default() >= OPER_LOCKOUT
}

/// Which kind of server ban.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BanKind {
    /// By `user@host` mask, checked at registration.
    K,
    /// By address or range, checked on connect.
    D,
}

impl BanKind {
    pub fn letter(self) -> char {
        match self {
            BanKind::K => 'K',
            BanKind::D => 'D',
        }
    }

    /// The reason disconnected clients' peers see.
    pub fn quit_reason(self) -> &'static str {
        match self {
            BanKind::K => "K-lined",
            BanKind::D => "D-lined",
        }
    }

    pub fn privilege(self) -> Privilege {
        Privilege::Kline
    }
}

/// Every K-line and D-line; this is also the bans file's format.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BanList {
    pub kline: Vec<BanLine>,
    pub dline: Vec<BanLine>,
}

/// One K-line or D-line.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BanLine {
    /// `user@host` glob for a K-line, an address or range for a D-line.
    pub mask: String,
    pub reason: String,
    pub set_by: String,
    /// Seconds since the epoch.
    pub set_at: u64,
    /// Seconds since the epoch; none for a permanent line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

impl BanLine {
    pub fn active(&self, now: u64) -> bool {
        self.expires.is_none_or(|expires| now < expires)
    }

    fn matches(&self, kind: BanKind, userhost: &str, ip: IpAddr) -> bool {
        match kind {
            BanKind::K => Mask::new(&self.mask, Casemapping::Ascii).matches(userhost),
            BanKind::D => self
                .mask
                .parse::<Cidr>()
                .is_ok_and(|range| range.contains(ip)),
        }
    }
}

impl BanList {
    pub fn lines(&self, kind: BanKind) -> &[BanLine] {
        match kind {
            BanKind::K => &self.kline,
            BanKind::D => &self.dline,
        }
    }

    pub fn lines_mut(&mut self, kind: BanKind) -> &mut Vec<BanLine> {
        match kind {
            BanKind::K => &mut self.kline,
            BanKind::D => &mut self.dline,
        }
    }

    /// The first active line of `kind` that matches; K-lines look at
    /// `userhost`, D-lines at `ip`.
    pub fn matching(
        &self,
        kind: BanKind,
        userhost: &str,
        ip: IpAddr,
        now: u64,
    ) -> Option<&BanLine> {
        self.lines(kind)
            .iter()
            .find(|line| line.active(now) && line.matches(kind, userhost, ip))
    }

    /// Drops expired lines.
    pub fn prune(&mut self, now: u64) {
        self.kline.retain(|line| line.active(now));
        self.dline.retain(|line| line.active(now));
    }
}

/// True when `id` is an operator holding `privilege`; otherwise answers
/// 723 ERR_NOPRIVS.
pub fn require(state: &mut State, id: ClientId, privilege: Privilege) -> bool {
    if state
        .clients
        .get(&id)
        .is_some_and(|client| client.has_privilege(privilege))
    {
        return true;
    }
    state.reply(
        id,
        numeric::ERR_NOPRIVS,
        &[privilege.name()],
        "Insufficient oper privileges.",
    );
    false
}

/// `:server NOTICE <nick> :text`, for answers that have no numeric.
pub fn server_notice(state: &mut State, id: ClientId, text: &str) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let line = Line::new(Some(state.server_name()), "NOTICE")
        .arg(client.target())
        .trailing(text)
        .finish();
    state.send(id, line);
}

/// The core's clock in seconds since the epoch, for ban times.
pub fn now_secs(state: &State) -> u64 {
    unix_time(state.clock.now())
}

/// Drops a connection from a D-lined address as soon as the core hears of it.
pub fn refuse_if_dlined(state: &mut State, id: ClientId) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let now = now_secs(state);
    let reason = match state.admin.bans.matching(BanKind::D, "", client.ip, now) {
        Some(line) => line.reason.clone(),
        None => return,
    };
    refuse_banned(state, id, BanKind::D, &reason);
}

/// 465 with the ban's reason, then the disconnect everyone else sees.
pub fn refuse_banned(state: &mut State, id: ClientId, kind: BanKind, reason: &str) {
    state.reply(
        id,
        numeric::ERR_YOUREBANNEDCREEP,
        &[],
        &format!("You are banned from this server: {reason}"),
    );
    state.disconnect(id, kind.quit_reason());
}

/// The K-line reason for a registering client, if one matches.
pub fn kline_for(state: &State, id: ClientId) -> Option<String> {
    let client = state.clients.get(&id)?;
    server_ban_for(state, client, BanKind::K).map(|line| line.reason.clone())
}

/// The first active line of `kind` for `client`: K-lines match its real
/// address and its cloak alike.
pub fn server_ban_for<'a>(
    state: &'a State,
    client: &super::Client,
    kind: BanKind,
) -> Option<&'a BanLine> {
    let now = now_secs(state);
    let mut hosts = vec![&client.real_host];
    if client.is_cloaked() {
        hosts.push(&client.host);
    }
    hosts.into_iter().find_map(|host| {
        let userhost = format!("{}@{host}", client.user);
        state.admin.bans.matching(kind, &userhost, client.ip, now)
    })
}

/// Writes the bans to the configured file, off the core.
pub fn save_bans(state: &mut State) {
    let path = state.config.server.bans_file.clone();
    if path.as_os_str().is_empty() {
        return;
    }
    let bans = state.admin.bans.clone();
    state.admin.request(AdminRequest::SaveBans { path, bans });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(mask: &str, expires: Option<u64>) -> BanLine {
        BanLine {
            mask: mask.into(),
            reason: "spam".into(),
            set_by: "alice".into(),
            set_at: 100,
            expires,
        }
    }

    #[test]
    fn lines_match_by_mask_or_range_until_they_expire() {
        let bans = BanList {
            kline: vec![line("*@10.0.0.*", Some(200))],
            dline: vec![line("192.0.2.0/24", None)],
        };
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        assert!(
            bans.matching(BanKind::K, "~bob@10.0.0.5", ip, 150)
                .is_some()
        );
        assert!(
            bans.matching(BanKind::K, "~bob@10.0.0.5", ip, 200)
                .is_none()
        );
        assert!(bans.matching(BanKind::D, "", ip, 150).is_none());
        let banned: IpAddr = "192.0.2.9".parse().unwrap();
        assert!(bans.matching(BanKind::D, "", banned, u64::MAX).is_some());
    }

    #[test]
    fn three_opers_started_lock_an_address_for_a_while() {
        let mut admin = AdminState::default();
        let key = AddressKey::new("192.0.2.1".parse().unwrap(), 64);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        for _ in 0..OPER_ATTEMPTS {
            assert!(admin.start_oper_attempt(key, now));
        }
        assert!(!admin.start_oper_attempt(key, now));
        assert!(admin.start_oper_attempt(key, now + OPER_LOCKOUT));
    }

    #[test]
    fn an_ipv6_network_shares_one_oper_lockout() {
        let mut admin = AdminState::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        for host in 1..=OPER_ATTEMPTS {
            let ip = format!("2001:db8:0:1::{host}").parse().unwrap();
            assert!(admin.start_oper_attempt(AddressKey::new(ip, 64), now));
        }
        let other_host = AddressKey::new("2001:db8:0:1::99".parse().unwrap(), 64);
        assert!(!admin.start_oper_attempt(other_host, now));
    }

    #[test]
    fn the_bans_file_format_round_trips() {
        let bans = BanList {
            kline: vec![line("*@10.0.0.*", Some(200)), line("evil@*", None)],
            dline: vec![line("192.0.2.0/24", None)],
        };
        let text = toml::to_string(&bans).unwrap();
        assert_eq!(toml::from_str::<BanList>(&text).unwrap(), bans);
    }
}
