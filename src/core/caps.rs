//! IRCv3 capabilities: one table, and a bitset per client so that checking
//! a capability on the fan-out path is a single AND.

use super::{Client, State};

/// A set of capabilities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Caps(u32);

impl Caps {
    pub const NONE: Caps = Caps(0);
    pub const MULTI_PREFIX: Caps = Caps(1 << 0);
    pub const CAP_NOTIFY: Caps = Caps(1 << 1);
    pub const MESSAGE_TAGS: Caps = Caps(1 << 2);
    pub const SERVER_TIME: Caps = Caps(1 << 3);
    pub const ECHO_MESSAGE: Caps = Caps(1 << 4);
    pub const LABELED_RESPONSE: Caps = Caps(1 << 5);
    pub const BATCH: Caps = Caps(1 << 6);
    pub const USERHOST_IN_NAMES: Caps = Caps(1 << 7);
    pub const AWAY_NOTIFY: Caps = Caps(1 << 8);
    pub const EXTENDED_JOIN: Caps = Caps(1 << 9);
    pub const CHGHOST: Caps = Caps(1 << 10);
    pub const SETNAME: Caps = Caps(1 << 11);
    pub const INVITE_NOTIFY: Caps = Caps(1 << 12);
    pub const ACCOUNT_NOTIFY: Caps = Caps(1 << 13);
    pub const ACCOUNT_TAG: Caps = Caps(1 << 14);
    pub const STANDARD_REPLIES: Caps = Caps(1 << 15);
    pub const EXTENDED_MONITOR: Caps = Caps(1 << 16);
    pub const CHATHISTORY: Caps = Caps(1 << 17);
    pub const STS: Caps = Caps(1 << 18);
    pub const SASL: Caps = Caps(1 << 19);
    pub const ACCOUNT_REGISTRATION: Caps = Caps(1 << 20);
    pub const READ_MARKER: Caps = Caps(1 << 21);
    pub const MESSAGE_REDACTION: Caps = Caps(1 << 22);
    pub const MULTILINE: Caps = Caps(1 << 23);
    pub const EVENT_PLAYBACK: Caps = Caps(1 << 24);
    pub const METADATA: Caps = Caps(1 << 25);
    pub const CHANNEL_RENAME: Caps = Caps(1 << 26);
    pub const PRE_AWAY: Caps = Caps(1 << 27);
    pub const NO_IMPLICIT_NAMES: Caps = Caps(1 << 28);
    pub const EXTENDED_ISUPPORT: Caps = Caps(1 << 29);

    pub fn contains(self, other: Caps) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn insert(&mut self, other: Caps) {
        self.0 |= other.0;
    }

    pub fn remove(&mut self, other: Caps) {
        self.0 &= !other.0;
    }

    pub fn union(self, other: Caps) -> Caps {
        Caps(self.0 | other.0)
    }
}

/// One capability the server offers.
pub struct Capability {
    pub name: &'static str,
    pub flag: Caps,
    /// The value shown to one CAP LS 302 client, if any.
    pub value: fn(&State, &Client) -> Option<String>,
    /// Whether the configuration offers it at all.
    pub offered: fn(&State) -> bool,
    /// False for informational capabilities that clients must not request.
    pub requestable: bool,
}

fn no_value(_: &State, _: &Client) -> Option<String> {
    None
}

fn always(_: &State) -> bool {
    true
}

const fn cap(name: &'static str, flag: Caps) -> Capability {
    Capability {
        name,
        flag,
        value: no_value,
        offered: always,
        requestable: true,
    }
}

/// STS: plaintext clients learn the TLS port, TLS clients the duration.
fn sts_value(state: &State, client: &Client) -> Option<String> {
    let server = &state.config.server;
    match (client.secure, server.sts_port) {
        (true, _) => Some(format!("duration={}", server.sts_duration)),
        (false, Some(port)) => Some(format!("port={port}")),
        (false, None) => None,
    }
}

/// draft/multiline: its limits, from `[limits]`.
fn multiline_value(state: &State, _: &Client) -> Option<String> {
    let limits = &state.config.limits;
    Some(format!(
        "max-bytes={},max-lines={}",
        limits.multiline_max_bytes, limits.multiline_max_lines
    ))
}

fn history_offered(state: &State) -> bool {
    state.config.history.enabled
}

/// sasl: the mechanisms, for CAP LS 302 clients.
fn sasl_value(_: &State, client: &Client) -> Option<String> {
    Some(super::commands::authenticate::mechanisms(client).to_owned())
}

fn accounts_offered(state: &State) -> bool {
    state.accounts_enabled()
}

fn sts_offered(state: &State) -> bool {
    state.config.server.sts_port.is_some()
}

/// Every capability the server offers, in the order CAP LS lists them.
pub static CAPABILITIES: &[Capability] = &[
    cap("account-notify", Caps::ACCOUNT_NOTIFY),
    cap("account-tag", Caps::ACCOUNT_TAG),
    cap("away-notify", Caps::AWAY_NOTIFY),
    cap("batch", Caps::BATCH),
    cap("cap-notify", Caps::CAP_NOTIFY),
    cap("chghost", Caps::CHGHOST),
    Capability {
        name: "draft/account-registration",
        flag: Caps::ACCOUNT_REGISTRATION,
        value: super::commands::register::cap_value,
        offered: super::commands::register::offered,
        requestable: true,
    },
    cap("draft/channel-rename", Caps::CHANNEL_RENAME),
    Capability {
        name: "draft/chathistory",
        flag: Caps::CHATHISTORY,
        value: no_value,
        offered: history_offered,
        requestable: true,
    },
    Capability {
        name: "draft/event-playback",
        flag: Caps::EVENT_PLAYBACK,
        value: no_value,
        offered: history_offered,
        requestable: true,
    },
    cap("draft/extended-isupport", Caps::EXTENDED_ISUPPORT),
    Capability {
        name: "draft/message-redaction",
        flag: Caps::MESSAGE_REDACTION,
        value: no_value,
        offered: history_offered,
        requestable: true,
    },
    Capability {
        name: "draft/metadata-3",
        flag: Caps::METADATA,
        value: super::metadata::cap_value,
        offered: super::metadata::offered,
        requestable: true,
    },
    Capability {
        name: "draft/multiline",
        flag: Caps::MULTILINE,
        value: multiline_value,
        offered: always,
        requestable: true,
    },
    cap("draft/pre-away", Caps::PRE_AWAY),
    cap("draft/read-marker", Caps::READ_MARKER),
    cap("echo-message", Caps::ECHO_MESSAGE),
    cap("extended-join", Caps::EXTENDED_JOIN),
    cap("extended-monitor", Caps::EXTENDED_MONITOR),
    cap("invite-notify", Caps::INVITE_NOTIFY),
    cap("labeled-response", Caps::LABELED_RESPONSE),
    cap("message-tags", Caps::MESSAGE_TAGS),
    cap("multi-prefix", Caps::MULTI_PREFIX),
    cap("no-implicit-names", Caps::NO_IMPLICIT_NAMES),
    Capability {
        name: "sasl",
        flag: Caps::SASL,
        value: sasl_value,
        offered: accounts_offered,
        requestable: true,
    },
    cap("server-time", Caps::SERVER_TIME),
    cap("setname", Caps::SETNAME),
    cap("standard-replies", Caps::STANDARD_REPLIES),
    Capability {
        name: "sts",
        flag: Caps::STS,
        value: sts_value,
        offered: sts_offered,
        requestable: false,
    },
    cap("userhost-in-names", Caps::USERHOST_IN_NAMES),
];

/// The capability called `name`, if known.
pub fn find(name: &str) -> Option<&'static Capability> {
    CAPABILITIES.iter().find(|cap| cap.name == name)
}

/// The capabilities this configuration offers, in table order.
pub fn offered(state: &State) -> impl Iterator<Item = &'static Capability> + '_ {
    CAPABILITIES.iter().filter(move |cap| (cap.offered)(state))
}

/// The capabilities offered to `client`: [`offered`] less `sts` over a
/// WebSocket, since a browser can neither follow its port nor keep its
/// policy for a WebSocket.
pub fn offered_to<'a>(
    state: &'a State,
    client: &'a Client,
) -> impl Iterator<Item = &'static Capability> + 'a {
    offered(state).filter(move |cap| !(client.websocket && cap.flag == Caps::STS))
}

/// The names of the capabilities in `caps`, in table order.
pub fn names(caps: Caps) -> Vec<&'static str> {
    CAPABILITIES
        .iter()
        .filter(|cap| caps.contains(cap.flag))
        .map(|cap| cap.name)
        .collect()
}
