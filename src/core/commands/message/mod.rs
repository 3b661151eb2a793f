//! PRIVMSG, NOTICE and TAGMSG: to nicks, to rooms, and to a room's ops or
//! voiced members through a STATUSMSG prefix (`@#room`, `+#room`).
//!
//! - here: the commands, their shared checks and the target list.
//! - `to_channel.rs`: who in a room may speak and who hears it.
//! - `to_nick.rs`: one client, with echo-message and the 301 away reply.
//!
//! PRIVMSG and NOTICE are recorded in history where it is kept: a room's
//! lines (but not a STATUSMSG), and private messages when
//! `history.private_messages` is on; TAGMSG too with `history.events`,
//! unless all it carries is a typing notification.

mod to_channel;
mod to_nick;

use std::collections::HashSet;

use crate::core::Refusal;
use crate::core::broadcast::Broadcast;
use crate::core::caps::Caps;
use crate::core::isupport::client_tag_denied;
use crate::core::multiline::{self, BatchLine, Bodies};
use crate::core::{ClientId, State};
use crate::history::{is_typing, storable_tags};
use crate::proto::message::Tag;
use crate::proto::modes;
use crate::proto::numeric;
use crate::proto::tags::client_only_tags;
use crate::proto::validate::is_channel_name;
use crate::proto::{Line, Message};

/// `PRIVMSG <target>{,<target>} <text to be sent>`
pub fn privmsg(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    relay(state, id, message, MessageKind::Privmsg);
    Ok(())
}

/// `NOTICE <target>{,<target>} <text to be sent>`
///
/// Like PRIVMSG, but Modern IRC forbids any error reply to a NOTICE.
pub fn notice(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    relay(state, id, message, MessageKind::Notice);
    Ok(())
}

/// `TAGMSG <target>{,<target>}`
///
/// Client-only tags with no text, for clients that negotiated message-tags.
pub fn tagmsg(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    relay(state, id, message, MessageKind::Tagmsg);
    Ok(())
}

/// Which of the three commands is relayed; each differs in what it
/// carries and how it may be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MessageKind {
    Privmsg,
    Notice,
    Tagmsg,
}

impl MessageKind {
    pub fn command(self) -> &'static str {
        match self {
            MessageKind::Privmsg => "PRIVMSG",
            MessageKind::Notice => "NOTICE",
            MessageKind::Tagmsg => "TAGMSG",
        }
    }

    /// A NOTICE is never answered with an error, so that two bots cannot
    /// answer each other for ever.
    fn answers_errors(self) -> bool {
        self != MessageKind::Notice
    }

    /// TAGMSG carries only tags: no text, so nothing for history either.
    pub fn has_text(self) -> bool {
        self != MessageKind::Tagmsg
    }
}

/// What every delivery of one command shares.
pub(super) struct Outgoing<'a> {
    pub source: String,
    bot: bool,
    pub account: Option<String>,
    pub kind: MessageKind,
    /// The text, or a multiline message's as one history record holds it.
    pub text: &'a str,
    client_tags: Option<String>,
    /// A draft/multiline message's lines, as the sender composed them.
    lines: Option<&'a [BatchLine]>,
}

impl Outgoing<'_> {
    /// The event for one target, with a fresh msgid.
    pub fn event(&self, state: &mut State, target: &str) -> Broadcast {
        let line = Line::new(Some(&self.source), self.kind.command()).arg(target);
        let line = if self.kind.has_text() {
            line.trailing(self.text)
        } else {
            line
        };
        let msgid = state.next_msgid();
        let mut event = state.broadcast(line.finish());
        if let Some(lines) = self.lines {
            let reference = state.next_batch_id();
            let command = self.kind.command();
            let bodies = Bodies::new(&self.source, command, target, &reference, lines);
            event = event.with_multiline(bodies);
        }
        event
            .with_msgid(msgid)
            .with_client_tags(self.client_tags.clone())
            .with_bot(self.bot)
            .with_account(self.account.clone())
    }

    /// The message as the other nodes of the network are told it; none
    /// for a draft/multiline batch, which stays on its node.
    pub fn wire(
        &self,
        id: ClientId,
        to: wire::To,
        event: &Broadcast,
        history: bool,
    ) -> Option<wire::Message> {
        if self.lines.is_some() {
            return None;
        }
        Some(wire::Message {
            uid: id.0,
            to,
            command: self.kind.command().to_owned(),
            text: self.text.to_owned(),
            msgid: event.msgid()?.to_owned(),
            time: crate::history::millis(event.time()),
            tags: self.client_tags.clone(),
            history,
        })
    }

    /// Whether history keeps it: a message or notice, and with `[history]
    /// events` a tag message with a tag worth keeping (not only typing).
    pub fn is_history(&self, state: &State) -> bool {
        let tags = self.client_tags.as_deref().unwrap_or_default();
        let kept = state.config.history.events && !is_typing(tags);
        self.kind.has_text() || (kept && !storable_tags(tags).is_empty())
    }

    /// Who may receive it: TAGMSG only reaches message-tags clients.
    pub fn wanted_by(&self, caps: Caps) -> bool {
        self.kind.has_text() || caps.contains(Caps::MESSAGE_TAGS)
    }

    /// Each line a client may be shown on its own: the text, or every
    /// line of a multiline message.
    pub fn texts(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self.lines {
            Some(lines) => Box::new(lines.iter().map(|line| line.text.as_str())),
            None => Box::new(std::iter::once(self.text)),
        }
    }
}

use crate::network::wire;

fn relay(state: &mut State, id: ClientId, message: &Message, kind: MessageKind) {
    let answers = kind.answers_errors();
    let (targets, text) = (message.param(0), message.param(1));
    let problem = if targets.is_empty() {
        let text = format!("No recipient given ({})", kind.command());
        Some(Refusal::new(numeric::ERR_NORECIPIENT, &[]).with_text(text))
    } else if text.is_empty() && kind.has_text() {
        Some(Refusal::new(numeric::ERR_NOTEXTTOSEND, &[]))
    } else {
        None
    };
    if let Some(refusal) = problem {
        if answers {
            state.refuse(id, refusal);
        }
        return;
    }
    let Some(outgoing) = outgoing(state, id, kind, text, &message.tags, None) else {
        return;
    };
    let max = state.config.limits.max_targets;
    let mut seen = HashSet::new();
    for (i, target) in targets.split(',').filter(|t| !t.is_empty()).enumerate() {
        if i == max {
            if answers {
                state.refuse(id, Refusal::too_many_targets(target));
            }
            break;
        }
        // The same target twice in one command gets the message once.
        if seen.insert(state.fold(target)) {
            to_target(state, id, &outgoing, target);
        }
    }
}

/// A draft/multiline message: `lines` of `command` (PRIVMSG or NOTICE) to
/// one target, with the client-only tags of its BATCH line. Refusals are
/// those of the same command sent alone.
pub fn relay_multiline(
    state: &mut State,
    id: ClientId,
    command: &str,
    target: &str,
    lines: &[BatchLine],
    tags: &[Tag],
) {
    let kind = if command == "NOTICE" {
        MessageKind::Notice
    } else {
        MessageKind::Privmsg
    };
    let text = multiline::encode(lines);
    if let Some(outgoing) = outgoing(state, id, kind, &text, tags, Some(lines)) {
        to_target(state, id, &outgoing, target);
    }
}

/// What every target of one message shares; the sender is active now,
/// and the message counts as received once, whatever its targets.
fn outgoing<'a>(
    state: &mut State,
    id: ClientId,
    kind: MessageKind,
    text: &'a str,
    tags: &[Tag],
    lines: Option<&'a [BatchLine]>,
) -> Option<Outgoing<'a>> {
    let now = state.clock.now();
    let client = state.clients.get_mut(&id)?;
    client.last_active = now;
    let deny = &state.config.server.client_tag_deny;
    state.metrics.message_received();
    Some(Outgoing {
        source: client.source.clone(),
        bot: client.modes.bot,
        account: client.account.clone(),
        kind,
        text,
        // CLIENTTAGDENY: blocked tags are dropped silently, as message-tags allows.
        client_tags: client_only_tags(tags, |name| client_tag_denied(deny, name)),
        lines,
    })
}

/// One target: a service, a room or a nick; a refusal goes back unless
/// the command is a NOTICE.
fn to_target(state: &mut State, id: ClientId, outgoing: &Outgoing, target: &str) {
    let (kind, text) = (outgoing.kind, outgoing.text);
    let answers = kind.answers_errors();
    if super::nickserv::is_service(state, target) {
        // The service reads PRIVMSG only; nothing is relayed or echoed.
        if answers && kind.has_text() {
            super::nickserv::command(state, id, text);
        }
        return;
    }
    if super::chanserv::is_service(state, target) {
        if answers && kind.has_text() {
            super::chanserv::command(state, id, text);
        }
        return;
    }
    let outcome = if is_channel_name(target.trim_start_matches(modes::is_status_symbol)) {
        to_channel::to_channel(state, id, outgoing, target)
    } else {
        to_nick::to_nick(state, id, outgoing, target)
    };
    if let (Err(refusal), true) = (outcome, answers) {
        state.refuse(id, refusal);
    }
}

#[cfg(test)]
mod tests {
    use crate::core::testing::Harness;

    /// alice (op) and bob in #room, with their join lines read.
    pub(super) fn room() -> Harness {
        let mut harness = Harness::new();
        harness.register("alice");
        harness.register("bob");
        harness.send("alice", "JOIN #room");
        harness.send("bob", "JOIN #room");
        harness.take("alice");
        harness.take("bob");
        harness
    }

    pub(super) const REFUSED: &str = ":irc.test 404 bob #room :Cannot send to channel";

    #[test]
    fn a_repeated_target_gets_the_message_once() {
        let mut harness = room();
        harness.send("alice", "PRIVMSG bob,BOB,#room,#ROOM :x");
        assert_eq!(
            harness.take("bob"),
            vec![
                ":alice!~alice@127.0.0.1 PRIVMSG bob :x",
                ":alice!~alice@127.0.0.1 PRIVMSG #room :x"
            ]
        );
    }

    #[test]
    fn each_kind_sends_its_command_and_a_notice_is_never_answered() {
        use super::MessageKind::{self, Notice, Privmsg, Tagmsg};
        let kinds = [Privmsg, Notice, Tagmsg];
        assert_eq!(
            kinds.map(MessageKind::command),
            ["PRIVMSG", "NOTICE", "TAGMSG"]
        );
        assert_eq!(kinds.map(MessageKind::has_text), [true, true, false]);
        let mut harness = room();
        harness.send("bob", "NOTICE nobody,#nowhere :x");
        harness.send("bob", "NOTICE");
        assert!(harness.take("bob").is_empty());
        harness.send("bob", "PRIVMSG nobody,@#nowhere :x");
        harness.send("bob", "TAGMSG");
        assert_eq!(
            harness.take("bob"),
            [
                ":irc.test 401 bob nobody :No such nick/channel",
                ":irc.test 401 bob @#nowhere :No such nick/channel",
                ":irc.test 461 bob TAGMSG :Not enough parameters",
            ]
        );
    }

    #[test]
    fn messages_update_last_active() {
        let mut harness = room();
        let before = std::time::SystemTime::UNIX_EPOCH;
        let alice = harness.id("alice");
        harness.state.clients.get_mut(&alice).unwrap().last_active = before;
        harness.send("alice", "NOTICE #room :x");
        assert!(harness.state.clients[&alice].last_active > before);
    }
}
