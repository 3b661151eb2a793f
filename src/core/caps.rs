//! IRCv3 capabilities: one table, and a bitset per client so that checking
//! a capability on the fan-out path is a single AND.

use super::State;

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

    pub fn contains(self, other: Caps) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn insert(&mut self, other: Caps) {
        self.0 |= other.0;
    }

    pub fn remove(&mut self, other: Caps) {
        self.0 &= !other.0;
    }

    /// Only the capabilities in `mask`.
    pub fn intersection(self, mask: Caps) -> Caps {
        Caps(self.0 & mask.0)
    }

    pub fn bits(self) -> u32 {
        self.0
    }

    pub fn union(self, other: Caps) -> Caps {
        Caps(self.0 | other.0)
    }
}

/// One capability the server offers.
pub struct Capability {
    pub name: &'static str,
    pub flag: Caps,
    /// The value shown to CAP LS 302 clients, if any.
    pub value: fn(&State) -> Option<String>,
}

fn no_value(_: &State) -> Option<String> {
    None
}

const fn cap(name: &'static str, flag: Caps) -> Capability {
    Capability {
        name,
        flag,
        value: no_value,
    }
}

/// Every capability the server offers, in the order CAP LS lists them.
pub static CAPABILITIES: &[Capability] = &[
    cap("batch", Caps::BATCH),
    cap("cap-notify", Caps::CAP_NOTIFY),
    cap("echo-message", Caps::ECHO_MESSAGE),
    cap("labeled-response", Caps::LABELED_RESPONSE),
    cap("message-tags", Caps::MESSAGE_TAGS),
    cap("multi-prefix", Caps::MULTI_PREFIX),
    cap("server-time", Caps::SERVER_TIME),
];

/// The capability called `name`, if offered.
pub fn find(name: &str) -> Option<&'static Capability> {
    CAPABILITIES.iter().find(|cap| cap.name == name)
}

/// The names of the capabilities in `caps`, in table order.
pub fn names(caps: Caps) -> Vec<&'static str> {
    CAPABILITIES
        .iter()
        .filter(|cap| caps.contains(cap.flag))
        .map(|cap| cap.name)
        .collect()
}
