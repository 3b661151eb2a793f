//! What nodes tell each other, as JSON on NATS subjects: every envelope
//! names its node and that node's boot, so a restarted node is told from
//! the one that was there before.

use serde::{Deserialize, Serialize};

/// One message between nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sending node's name (`[network] node`).
    pub node: String,
    /// When the sending node started (ms since the epoch): a new boot means
    /// the users of the old one are gone.
    pub boot: u64,
    /// An event's number among those this boot of the node sent on the
    /// events subject (heartbeats aside), from 1: a gap is an event lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// On anything else, the number of the last event sent before it: a
    /// message waits until that event was applied (its sender's
    /// introduction, its JOIN), which another subscription may bring later.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub after: u64,
    pub body: Body,
}

fn is_zero(number: &u64) -> bool {
    *number == 0
}

/// What happened on the sending node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Body {
    /// The node is stopping: its users are gone.
    Bye,
    /// The node is alive; `server` is its `[server] name`.
    Heartbeat { server: String },
    /// A user registered on the node, or (in the burst a node sends when
    /// it hears a new node) a user it already had, with its rooms.
    User(User),
    /// A user took another nick.
    Nick { uid: u64, nick: String },
    /// A user left the network.
    Quit { uid: u64, reason: String },
    /// A user joined a room.
    Join { uid: u64, room: String, op: bool },
    /// A user left a room.
    Part {
        uid: u64,
        room: String,
        reason: Option<String>,
    },
    /// A PRIVMSG, NOTICE or TAGMSG to a room or a user.
    Message(Message),
    /// An operator of the sending node killed a user of `node`: that node
    /// disconnects it (and its QUIT then reaches everyone).
    Kill {
        node: String,
        uid: u64,
        /// The operator's `nick!user@host`, the source of the KILL line.
        by: String,
        /// The KILL's comment.
        comment: String,
        /// The QUIT reason.
        reason: String,
    },
    /// A change its node allowed and applied: to a room, MODE (the member
    /// statuses that took effect), KICK or INVITE; to the user, its MODE, AWAY or
    /// SETNAME; with its parameters. The other nodes apply it as the same
    /// user's command. (A room's own modes and topic travel through its
    /// value in the room states' bucket, [`super::rooms`].)
    Command {
        uid: u64,
        command: String,
        params: Vec<String>,
    },
    /// An operator of the sending node set a K-line: every node bans the
    /// mask too, for its own users.
    Kline(Kline),
    /// An operator of the sending node lifted the K-line on `mask`.
    Unkline { mask: String },
    /// The K-lines the sending node holds, in the burst it sends a node it
    /// hears for the first time (a few per envelope).
    Klines { lines: Vec<Kline> },
    /// An operator asks the nodes whose server name matches `mask` to
    /// reload their configuration file; each answers with
    /// [`Body::Rehashed`] on the asking node's subject.
    Rehash {
        mask: String,
        /// The asking node's number for this request.
        request: u64,
        /// The operator's nick, for the answering node's log.
        by: String,
    },
    /// How a reload asked for by [`Body::Rehash`] went on the sending node.
    Rehashed {
        request: u64,
        /// The sending node's server name.
        server: String,
        /// What its own REHASH would have told the operator.
        text: String,
    },
    /// A user of the sending node logged in to `account`, or out (`None`),
    /// after it was introduced (a [`User`] carries the account it had).
    Login { uid: u64, account: Option<String> },
    /// An account changed on the sending node in a way each node's caches
    /// must follow; sent and heard only where the accounts are one across
    /// the network (a shared database).
    Account(AccountChange),
}

/// A change to an account that every node caches the effect of: who owns
/// which nick, and who may stay logged in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum AccountChange {
    /// A new (or newly verified) account: it owns the nick of its name.
    Created { account: String },
    /// The account is gone: its nicks are free, its users logged out.
    Dropped { account: String },
    /// The account was suspended: its users are logged out.
    Suspended { account: String },
    /// Its nicks are enforced, or no longer (NickServ SET ENFORCE).
    Enforce { account: String, on: bool },
    /// Its read marker in `target` moved forward to `read_ms` (stored by
    /// the sending node).
    ReadMarker {
        account: String,
        target: String,
        read_ms: i64,
    },
}

/// A K-line as nodes pass it on: each node stores it with its own clock,
/// so a peer's idea of the time is never trusted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Kline {
    /// `user@host` glob.
    pub mask: String,
    pub reason: String,
    /// The operator who set it.
    pub by: String,
    /// Seconds left; none for a permanent line.
    pub expires_in: Option<u64>,
}

/// A user as the other nodes show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The user's id on its node: unique there while the node runs.
    pub uid: u64,
    /// Its node's server name, for WHOIS.
    pub server: String,
    pub nick: String,
    pub user: String,
    /// The host others see (the cloak, when cloaking is on).
    pub host: String,
    pub realname: String,
    pub account: Option<String>,
    pub away: Option<String>,
    pub bot: bool,
    /// +i: hidden from WHO and counted as invisible.
    #[serde(default)]
    pub invisible: bool,
    /// The rooms it is in, each with its status there.
    pub rooms: Vec<Room>,
}

/// One room a user is in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Room {
    pub name: String,
    pub op: bool,
    pub voice: bool,
}

/// A message as its origin made it: the receivers show the same msgid and
/// time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The sender's id on the origin node.
    pub uid: u64,
    pub to: To,
    /// PRIVMSG, NOTICE or TAGMSG.
    pub command: String,
    pub text: String,
    pub msgid: String,
    /// Server time at the origin, in ms since the epoch.
    pub time: i64,
    /// Client-only tags, escaped and joined, as the origin relays them.
    pub tags: Option<String>,
    /// Whether the origin keeps it in history.
    pub history: bool,
}

/// Where a message goes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum To {
    /// A room, as the sender wrote it: `#room`, or `@#room` for its ops.
    Room { target: String },
    /// A user of the node the message is sent to.
    User { uid: u64 },
}

impl Envelope {
    /// The JSON form.
    pub fn encode(&self) -> Vec<u8> {
        // Plain data: serializing it cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads an envelope; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Envelope> {
        serde_json::from_slice(bytes).ok()
    }
}

/// The subjects of one network.
pub mod subject {
    /// Users, nicks and memberships, heard by every node.
    pub const EVENTS: &str = "rookery.events";

    /// A node's own subject: private messages to its users.
    pub fn node(node: &str) -> String {
        format!("rookery.node.{node}")
    }

    /// A room's messages, heard by the nodes with a member in it. The name
    /// (folded) is written in hex: a subject may not hold `.`, `*`, `>` or
    /// spaces, which a room name may.
    pub fn room(folded: &str) -> String {
        let mut subject = String::with_capacity(13 + folded.len() * 2);
        subject.push_str("rookery.room.");
        for byte in folded.bytes() {
            subject.push_str(&format!("{byte:02x}"));
        }
        subject
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_reads_back_as_written() {
        let envelope = Envelope {
            node: "a".into(),
            boot: 7,
            seq: None,
            after: 4,
            body: Body::Message(Message {
                uid: 3,
                to: To::Room {
                    target: "@#room".into(),
                },
                command: "PRIVMSG".into(),
                text: "hi \u{1}there".into(),
                msgid: "x1".into(),
                time: 1_700_000_000_000,
                tags: Some("+draft/react=1".into()),
                history: true,
            }),
        };
        assert_eq!(Envelope::decode(&envelope.encode()), Some(envelope));
        assert_eq!(Envelope::decode(b"{\"node\":"), None);
    }

    #[test]
    fn logins_and_account_changes_read_back_as_written() {
        for body in [
            Body::Login {
                uid: 4,
                account: Some("alice".into()),
            },
            Body::Login {
                uid: 4,
                account: None,
            },
            Body::Account(AccountChange::Enforce {
                account: "alice".into(),
                on: true,
            }),
            Body::Account(AccountChange::Dropped {
                account: "bob".into(),
            }),
        ] {
            let envelope = Envelope {
                node: "a".into(),
                boot: 1,
                seq: None,
                after: 0,
                body,
            };
            assert_eq!(Envelope::decode(&envelope.encode()), Some(envelope));
        }
    }

    #[test]
    fn a_room_subject_is_one_token_whatever_the_name() {
        assert_eq!(subject::room("#a.b"), "rookery.room.23612e62");
        assert!(!subject::room("#a *>").contains([' ', '*', '>']));
    }
}
