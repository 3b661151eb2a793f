//! One event for many clients. Each client gets the form its capabilities
//! ask for (with or without server-time, message tags, account tag, or an
//! extended body such as extended-join's), and each form is serialized once
//! per event, not once per member.

use crate::net::Gate;
use std::time::SystemTime;

use bytes::Bytes;

use super::caps::Caps;
use super::multiline::Bodies;
use crate::proto::tags::{server_time, with_tags, write_tag};

const TIME: usize = 1;
const TAGS: usize = 2;
const ACCOUNT: usize = 4;
const ALTERNATIVE: usize = 8;
/// A multiline message as a `draft/multiline` batch (else its fallback).
const BATCHED: usize = 8;

/// An event line and the tags it may carry.
#[derive(Debug)]
pub struct Broadcast {
    body: Bytes,
    /// A different body for clients with a capability (extended-join).
    alternative: Option<(Caps, Bytes)>,
    time: SystemTime,
    msgid: Option<String>,
    account: Option<String>,
    /// Client-only tags, escaped and joined, for message-tags clients.
    client_tags: Option<String>,
    bot: bool,
    /// The history record every form must wait for.
    gate: Gate,
    forms: [Option<Bytes>; 16],
    /// A draft/multiline message: its lines, and each form built so far.
    multiline: Option<Box<Multiline>>,
}

#[derive(Debug)]
struct Multiline {
    bodies: Bodies,
    forms: [Option<Vec<Bytes>>; 16],
}

impl Broadcast {
    /// `body` is a finished line (see [`crate::proto::Line`]).
    pub fn new(body: Bytes, time: SystemTime) -> Broadcast {
        Broadcast {
            body,
            alternative: None,
            time,
            msgid: None,
            account: None,
            client_tags: None,
            bot: false,
            gate: Gate::NONE,
            forms: Default::default(),
            multiline: None,
        }
    }

    /// Makes the event a multiline message, sent as `bodies` say.
    pub fn with_multiline(mut self, bodies: Bodies) -> Broadcast {
        self.multiline = Some(Box::new(Multiline {
            bodies,
            forms: Default::default(),
        }));
        self
    }

    /// Hands `send` each line for a client with `caps`, in order: one for
    /// most events, several for a multiline message.
    pub fn each_line(&mut self, caps: Caps, mut send: impl FnMut(Bytes)) {
        if self.multiline.is_none() {
            send(self.line_for(caps));
            return;
        }
        let mut form = self.form(caps) & !ALTERNATIVE;
        if caps.contains(Caps::MULTILINE.union(Caps::BATCH)) {
            form |= BATCHED;
        }
        let lines = match self.multiline.as_ref().and_then(|m| m.forms[form].clone()) {
            Some(lines) => lines,
            None => {
                let lines = self.build_multiline(form);
                if let Some(multiline) = self.multiline.as_mut() {
                    multiline.forms[form] = Some(lines.clone());
                }
                lines
            }
        };
        lines.into_iter().for_each(send);
    }

    pub fn with_msgid(mut self, msgid: String) -> Broadcast {
        self.msgid = Some(msgid);
        self
    }

    pub fn with_client_tags(mut self, tags: Option<String>) -> Broadcast {
        self.client_tags = tags;
        self
    }

    /// account-tag: the account the sender is logged in to, if any.
    pub fn with_account(mut self, account: Option<String>) -> Broadcast {
        self.account = account;
        self
    }

    pub fn with_bot(mut self, bot: bool) -> Broadcast {
        self.bot = bot;
        self
    }

    /// Clients with `cap` get `body` instead of the plain one.
    pub fn with_alternative(mut self, cap: Caps, body: Bytes) -> Broadcast {
        self.alternative = Some((cap, body));
        self
    }

    /// Ties the event to a history record: no client gets it before the
    /// record is durable.
    pub fn set_gate(&mut self, gate: Gate) {
        self.gate = gate;
    }

    pub fn gate(&self) -> Gate {
        self.gate
    }

    /// The line as it is without tags or alternative.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The account the sender was logged in to, if any.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// The client-only tags it carries, escaped and joined; "" for none.
    /// Whether the event is a draft/multiline message.
    pub fn is_multiline(&self) -> bool {
        self.multiline.is_some()
    }

    pub fn client_tags(&self) -> &str {
        self.client_tags.as_deref().unwrap_or_default()
    }

    pub fn msgid(&self) -> Option<&str> {
        self.msgid.as_deref()
    }

    pub fn time(&self) -> SystemTime {
        self.time
    }

    /// The line for a client with `caps`, built on first use.
    pub fn line_for(&mut self, caps: Caps) -> Bytes {
        let form = self.form(caps);
        if let Some(line) = &self.forms[form] {
            return line.clone();
        }
        let line = self.build(form);
        self.forms[form] = Some(line.clone());
        line
    }

    /// Which tags and body a client with `caps` gets.
    fn form(&self, caps: Caps) -> usize {
        let mut form = 0;
        if caps.contains(Caps::SERVER_TIME) {
            form |= TIME;
        }
        let has_tags = self.msgid.is_some() || self.client_tags.is_some() || self.bot;
        if caps.contains(Caps::MESSAGE_TAGS) && has_tags {
            form |= TAGS;
        }
        if caps.contains(Caps::ACCOUNT_TAG) && self.account.is_some() {
            form |= ACCOUNT;
        }
        if self
            .alternative
            .as_ref()
            .is_some_and(|(cap, _)| caps.contains(*cap))
        {
            form |= ALTERNATIVE;
        }
        form
    }

    fn build(&self, form: usize) -> Bytes {
        let body = match (&self.alternative, form & ALTERNATIVE != 0) {
            (Some((_, alternative)), true) => alternative,
            _ => &self.body,
        };
        with_tags(&self.tags(form, true), body)
    }

    /// A multiline message's lines in `form`: the batch, with the event's
    /// tags on its start, or the fallback lines, each with the event's tags
    /// but the msgid only on the first, as the draft says.
    fn build_multiline(&self, form: usize) -> Vec<Bytes> {
        let Some(multiline) = &self.multiline else {
            return Vec::new();
        };
        let bodies = &multiline.bodies;
        if form & BATCHED != 0 {
            let mut lines = Vec::with_capacity(bodies.batched.len() + 2);
            lines.push(with_tags(&self.tags(form, true), &bodies.start));
            lines.extend(bodies.batched.iter().cloned());
            lines.push(bodies.end.clone());
            return lines;
        }
        let (first, rest) = (self.tags(form, true), self.tags(form, false));
        bodies
            .fallback
            .iter()
            .enumerate()
            .map(|(i, body)| with_tags(if i == 0 { &first } else { &rest }, body))
            .collect()
    }

    /// The tags of `form`, with or without the msgid.
    fn tags(&self, form: usize, with_msgid: bool) -> String {
        let mut tags = String::new();
        let mut add = |key: &str, value: Option<&str>| {
            if !tags.is_empty() {
                tags.push(';');
            }
            write_tag(&mut tags, key, value);
        };
        if form & ACCOUNT != 0 {
            add("account", self.account.as_deref());
        }
        if form & TAGS != 0 {
            if self.bot {
                add("bot", None);
            }
            if let Some(msgid) = self.msgid.as_ref().filter(|_| with_msgid) {
                add("msgid", Some(msgid));
            }
        }
        if form & TIME != 0 {
            add("time", Some(&server_time(self.time)));
        }
        if form & TAGS != 0
            && let Some(client_tags) = &self.client_tags
        {
            if !tags.is_empty() {
                tags.push(';');
            }
            tags.push_str(client_tags);
        }
        tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn event() -> Broadcast {
        let time = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        Broadcast::new(Bytes::from_static(b":a!u@h PRIVMSG #r :hi\r\n"), time)
            .with_msgid("m1".into())
            .with_client_tags(Some("+x=1".into()))
    }

    #[test]
    fn each_client_gets_its_form() {
        let mut event = event();
        assert_eq!(
            &event.line_for(Caps::NONE)[..],
            b":a!u@h PRIVMSG #r :hi\r\n"
        );
        assert_eq!(
            &event.line_for(Caps::SERVER_TIME)[..],
            b"@time=2023-11-14T22:13:20.123Z :a!u@h PRIVMSG #r :hi\r\n"
        );
        assert_eq!(
            &event.line_for(Caps::SERVER_TIME.union(Caps::MESSAGE_TAGS))[..],
            b"@msgid=m1;time=2023-11-14T22:13:20.123Z;+x=1 :a!u@h PRIVMSG #r :hi\r\n"
        );
    }

    #[test]
    fn a_form_is_built_once_and_shared() {
        let mut event = event();
        let first = event.line_for(Caps::MESSAGE_TAGS);
        let second = event.line_for(Caps::MESSAGE_TAGS.union(Caps::MULTI_PREFIX));
        assert_eq!(
            first.as_ptr(),
            second.as_ptr(),
            "the same bytes, not a copy"
        );
    }

    #[test]
    fn the_alternative_body_goes_to_clients_with_its_cap() {
        let mut event = Broadcast::new(Bytes::from_static(b"J\r\n"), SystemTime::UNIX_EPOCH)
            .with_alternative(Caps::EXTENDED_JOIN, Bytes::from_static(b"EJ\r\n"));
        assert_eq!(&event.line_for(Caps::EXTENDED_JOIN)[..], b"EJ\r\n");
        assert_eq!(&event.line_for(Caps::NONE)[..], b"J\r\n");
    }
}
