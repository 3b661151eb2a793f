//! K-lines and D-lines: the ban model (also the bans file's format),
//! matching clients against it, and refusing those it bans.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::clock::unix_time;
use super::{Client, ClientId, State};
use crate::metrics::RefusedBecause;
use crate::proto::Casemapping;
use crate::proto::Cidr;
use crate::proto::mask::Mask;
use crate::proto::numeric;

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
    state.metrics.connection_refused(RefusedBecause::Dline);
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
pub fn server_ban_for<'a>(state: &'a State, client: &Client, kind: BanKind) -> Option<&'a BanLine> {
    let now = now_secs(state);
    userhosts(client)
        .into_iter()
        .find_map(|userhost| state.admin.bans.matching(kind, &userhost, client.ip, now))
}

/// The `user@host` forms a K-line is matched against: with the real host,
/// and with the cloak when the client has one.
pub fn userhosts(client: &Client) -> Vec<String> {
    let mut forms = vec![format!("{}@{}", client.user, client.real_host)];
    if client.is_cloaked() {
        forms.push(format!("{}@{}", client.user, client.host));
    }
    forms
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
    fn the_bans_file_format_round_trips() {
        let bans = BanList {
            kline: vec![line("*@10.0.0.*", Some(200)), line("evil@*", None)],
            dline: vec![line("192.0.2.0/24", None)],
        };
        let text = toml::to_string(&bans).unwrap();
        assert_eq!(toml::from_str::<BanList>(&text).unwrap(), bans);
    }
}
