//! One connected client as the core sees it.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::ClientId;
use super::caps::Caps;
use super::hold::Waiting;
use super::read_markers::TargetMarkers;
use super::seen::SeenMarks;
use crate::config::Privilege;
use crate::net::Outbox;
use crate::proto::Folded;
use crate::proto::modes::{USER_MODES, UserFlag};

/// A client, registered or not. What only some clients need for a
/// moment (a SASL exchange, a multiline batch, a held command) is boxed,
/// so an idle client does not carry its room.
#[derive(Debug)]
pub struct Client {
    pub id: ClientId,
    pub outbox: Arc<Outbox>,
    pub ip: IpAddr,
    /// The host shown in `nick!user@host`: the cloak, or without cloaking
    /// the address made safe for IRC.
    pub host: String,
    /// The address made safe for IRC, for the client itself, operators,
    /// and matching K-lines and bans.
    pub real_host: String,
    /// Connected over TLS.
    pub secure: bool,
    /// The SHA-256 fingerprint of the TLS client certificate, if one was
    /// presented: what SASL EXTERNAL logs in with.
    pub certificate: Option<String>,
    /// Connected over a WebSocket: no STS, which a browser cannot follow.
    pub websocket: bool,
    /// Empty until NICK.
    pub nick: String,
    /// Empty until USER; `~` marks a name no ident server vouched for.
    pub user: String,
    pub realname: String,
    /// `nick!user@host`, kept current on every nick change.
    pub source: String,
    pub registered: bool,
    /// The right PASS was given (or none is needed).
    pub password_ok: bool,
    /// CAP LS or REQ holds registration until CAP END.
    pub cap_negotiating: bool,
    /// The CAP LS version the client announced (0 when none).
    pub cap_version: u32,
    pub caps: Caps,
    pub modes: UserModes,
    /// The account logged in to; changed only by [`super::State::log_in`]
    /// and [`super::State::log_out`].
    pub account: Option<String>,
    /// A ChanServ command waiting to learn whether an account exists.
    pub chanserv: Option<Box<super::commands::chanserv::Pending>>,
    /// A SASL exchange in progress.
    pub sasl: Option<Box<super::commands::authenticate::SaslExchange>>,
    /// A draft/multiline batch being sent; at most one, its text bounded
    /// by the configured limits, and gone with the connection.
    pub multiline: Option<Box<super::commands::batch::OpenBatch>>,
    /// The account a REGISTER command is creating, while the worker does.
    pub registering: Option<String>,
    /// What OPER granted; meaningful only while `modes.oper` is set.
    pub privileges: Vec<Privilege>,
    /// A command of this client is decided off the core (an OPER password
    /// check); its later lines wait here, in order.
    pub waiting: Option<Box<Waiting>>,
    pub away: Option<String>,
    pub channels: HashSet<Folded>,
    /// Rooms this client was invited to, so leaving clears the invites
    /// without visiting every room. Names of rooms gone since are harmless.
    pub invited_to: HashSet<Folded>,
    /// MONITOR targets, folded, with the spelling the client gave.
    pub monitoring: BTreeMap<Folded, String>,
    pub connected_at: SystemTime,
    /// When (ms) the client took its current nick: nothing of a private
    /// conversation stored before is readable (whoever held the nick
    /// before held that conversation, not this client).
    pub nick_floor: i64,
    /// For each room it left, the last playback line it had been shown or
    /// could have seen live, so a rejoin plays back nothing twice.
    pub playback_seen: SeenMarks,
    /// The last PRIVMSG/NOTICE/JOIN-like activity, for WHOIS idle.
    pub last_active: SystemTime,
    /// When the client is renamed to a guest unless it logs in to the
    /// account owning its nick (`core/reservation.rs`).
    pub guest_deadline: Option<SystemTime>,
    /// Its one grace period for owned nicks is over: until it logs in to
    /// an owner, it may not take a nick another account owns.
    pub guest_grace_spent: bool,
    /// Its operator status came from logging in to an `[[oper]]` block's
    /// account, and ends when it leaves that account.
    pub oper_by_account: bool,
    /// Its IRCv3 metadata and subscriptions.
    pub metadata: super::metadata::ClientMetadata,
    /// Read markers while not logged in (a logged-in client uses its
    /// account's).
    pub read_markers: TargetMarkers,
    /// Set for a user of another node of the network: nothing is written
    /// to its outbox here.
    pub remote: Option<Box<super::network::Remote>>,
}

/// User modes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserModes {
    pub invisible: bool,
    pub wallops: bool,
    pub oper: bool,
    /// +B, bot-mode: shown in WHOIS and WHO, and tagged on messages.
    pub bot: bool,
    /// +r: logged in; set and cleared only with [`Client::account`].
    pub registered: bool,
}

impl UserModes {
    /// `+iw` style, or `+` when none is set.
    pub fn to_mode_string(self) -> String {
        let mut modes = String::from("+");
        for mode in USER_MODES {
            if self.flag(mode.flag) {
                modes.push(mode.letter);
            }
        }
        modes
    }

    /// Whether a user mode is set.
    pub fn flag(self, flag: UserFlag) -> bool {
        match flag {
            UserFlag::Bot => self.bot,
            UserFlag::Invisible => self.invisible,
            UserFlag::Oper => self.oper,
            UserFlag::Registered => self.registered,
            UserFlag::Wallops => self.wallops,
        }
    }

    /// The field a user mode (`proto::modes::USER_MODES`) sets.
    pub fn flag_mut(&mut self, flag: UserFlag) -> &mut bool {
        match flag {
            UserFlag::Bot => &mut self.bot,
            UserFlag::Invisible => &mut self.invisible,
            UserFlag::Oper => &mut self.oper,
            UserFlag::Registered => &mut self.registered,
            UserFlag::Wallops => &mut self.wallops,
        }
    }
}

impl Client {
    pub fn new(id: ClientId, outbox: Arc<Outbox>, ip: IpAddr, now: SystemTime) -> Client {
        let host = display_host(ip);
        Client {
            id,
            outbox,
            ip,
            real_host: host.clone(),
            host,
            secure: false,
            certificate: None,
            websocket: false,
            nick: String::new(),
            user: String::new(),
            realname: String::new(),
            source: String::new(),
            registered: false,
            password_ok: false,
            cap_negotiating: false,
            cap_version: 0,
            caps: Caps::NONE,
            modes: UserModes::default(),
            account: None,
            sasl: None,
            multiline: None,
            registering: None,
            privileges: Vec::new(),
            waiting: None,
            chanserv: None,
            away: None,
            channels: HashSet::new(),
            invited_to: HashSet::new(),
            monitoring: BTreeMap::new(),
            connected_at: now,
            nick_floor: crate::history::millis(now),
            playback_seen: SeenMarks::default(),
            last_active: now,
            guest_deadline: None,
            guest_grace_spent: false,
            oper_by_account: false,
            metadata: Default::default(),
            read_markers: TargetMarkers::default(),
            remote: None,
        }
    }

    /// The nick for the `<client>` parameter of numerics: `*` before NICK.
    pub fn target(&self) -> &str {
        if self.nick.is_empty() {
            "*"
        } else {
            &self.nick
        }
    }

    /// Recomputes `nick!user@host` after a change of nick or user.
    pub fn update_source(&mut self) {
        self.source = format!("{}!{}@{}", self.nick, self.user, self.host);
    }

    /// `nick!user@address`: the source with the real address, which bans
    /// by address match as well as the cloaked [`Client::source`].
    pub fn real_source(&self) -> String {
        format!("{}!{}@{}", self.nick, self.user, self.real_host)
    }

    /// Whether `viewer` may see this client's real address: itself, or an
    /// operator with `see_hosts`.
    pub fn host_visible_to(&self, viewer: &Client) -> bool {
        viewer.id == self.id || viewer.has_privilege(Privilege::SeeHosts)
    }

    /// Whether the host shown is a cloak.
    pub fn is_cloaked(&self) -> bool {
        self.host != self.real_host
    }

    /// An operator holding `privilege`.
    pub fn has_privilege(&self, privilege: Privilege) -> bool {
        self.modes.oper && self.privileges.contains(&privilege)
    }

    pub fn has_cap(&self, cap: Caps) -> bool {
        self.caps.contains(cap)
    }
}

/// An address as a host part: IPv6 that starts with `:` would end a
/// parameter on the wire, so it gets a leading `0`.
fn display_host(ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let text = ip.to_string();
    if text.starts_with(':') {
        format!("0{text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_never_start_with_a_colon() {
        assert_eq!(display_host("::1".parse().unwrap()), "0::1");
        assert_eq!(display_host("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
        assert_eq!(display_host("2001:db8::1".parse().unwrap()), "2001:db8::1");
    }
}
