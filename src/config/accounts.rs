//! `[accounts]`: who may register, how a registered nick is protected, and
//! how hard logging in is throttled. Accounts live in the history database,
//! so they are active only while `[history] enabled` is true.

use serde::{Deserialize, Serialize};

use super::parse_duration;

/// `[accounts]`: registration, nick ownership, registered rooms and the
/// login throttle.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// Whether accounts (NickServ, SASL, ChanServ) are offered at all.
    pub enabled: bool,
    /// Who may create accounts from IRC.
    pub registration: Registration,
    /// Whether `draft/account-registration`'s REGISTER may run before the
    /// connection is registered (the cap value `before-connect`).
    pub registration_before_connect: bool,
    /// Whether REGISTER may name an account other than the current nick
    /// (the cap value `custom-account-name`).
    pub custom_account_names: bool,
    /// Whether registering needs an email address, verified by a code sent
    /// through `[accounts.smtp]` (the cap value `email-required`).
    pub registration_requires_email: bool,
    /// How a registered nick is kept for its account.
    pub nick_reservation: NickReservation,
    /// How long a client may use a registered nick without logging in to
    /// its account before it is renamed, as a duration such as "30s". Use
    /// [`AccountsConfig::guest_after`].
    #[serde(rename = "guest_after")]
    pub guest_after_text: String,
    /// The nick a client is renamed to; `*` is replaced by a number.
    pub guest_format: String,
    /// Rooms one account may register with ChanServ.
    pub max_rooms_per_account: usize,
    /// Login attempts (SASL, IDENTIFY, PASS) per account, and separately
    /// per address, within `login_window` before further ones are refused.
    pub login_attempts: u32,
    /// The window of `login_attempts`, as a duration such as "1m". Use
    /// [`AccountsConfig::login_window`].
    #[serde(rename = "login_window")]
    pub login_window_text: String,
    /// Accounts one address may register within an hour.
    pub registrations_per_address_per_hour: u32,
    /// The mail relay for verification codes.
    pub smtp: Smtp,
}

/// `[accounts] registration`: who may create an account from IRC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Anyone, with NickServ REGISTER or `draft/account-registration`.
    #[default]
    Open,
    /// Only IRC operators (SAREGISTER); the command line always can.
    Opers,
    /// Nobody from IRC; only `rookery accounts create`.
    Off,
}

/// `[accounts] nick_reservation`: what a registered nick means to others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NickReservation {
    /// Every registered nick is its account's: a client using it must log
    /// in within `guest_after` or is renamed to a guest nick.
    #[default]
    Strict,
    /// Each account chooses (NickServ `SET ENFORCE`); off until it does.
    Optional,
    /// Nicks are first come, first served; logging in is still needed for
    /// an account's rooms and history.
    Off,
}

/// `[accounts.smtp]`: where verification mail goes out. Empty `relay`
/// sends none (and `registration_requires_email` then cannot be on).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Smtp {
    /// `host:port` of a relay that accepts mail from this server.
    pub relay: String,
    /// The sender address of verification mail.
    pub from: String,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            enabled: true,
            registration: Registration::Open,
            registration_before_connect: true,
            custom_account_names: false,
            registration_requires_email: false,
            nick_reservation: NickReservation::Strict,
            guest_after_text: "30s".into(),
            guest_format: "Guest*".into(),
            max_rooms_per_account: 20,
            login_attempts: 5,
            login_window_text: "1m".into(),
            registrations_per_address_per_hour: 3,
            smtp: Smtp::default(),
        }
    }
}

impl AccountsConfig {
    /// How long a registered nick may be used without logging in.
    pub fn guest_after(&self) -> std::time::Duration {
        parse_duration(&self.guest_after_text).unwrap_or_default()
    }

    /// The window in which `login_attempts` are counted.
    pub fn login_window(&self) -> std::time::Duration {
        parse_duration(&self.login_window_text).unwrap_or_default()
    }
}
