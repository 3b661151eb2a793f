//! BATCH from a client: a draft/multiline message, collected line by line
//! and delivered whole when the batch closes.
//!
//! One batch may be open per client. Its text is bounded by `[limits]`
//! `multiline_max_bytes` and `multiline_max_lines` as it arrives, it fails
//! with TIMEOUT (client-batch) when a line or its end comes after
//! [`time_limit`], and it goes with the connection. Lines without a `batch` tag are handled as
//! usual meanwhile (a PING must still be answered). On the first error
//! the batch is discarded with one FAIL, and its later lines and its end
//! are dropped without another.

use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::core::multiline::{BATCH_TYPE, BatchLine, CONCAT_TAG};
use crate::core::{ClientId, Refusal, State, caps::Caps};
use crate::proto::message::Tag;
use crate::proto::{Folded, Message};

/// A batch a client has opened and not yet closed.
#[derive(Debug)]
pub struct OpenBatch {
    reference: String,
    target: String,
    /// The label of the BATCH line: the answer, at its end, goes under it.
    label: Option<String>,
    /// The tags of the BATCH line, whose client-only tags the message carries.
    tags: Vec<Tag>,
    /// None once an error has discarded the batch.
    collected: Option<Collected>,
    opened: SystemTime,
}

#[derive(Debug, Default)]
struct Collected {
    /// PRIVMSG or NOTICE, from the first line; every line must agree.
    command: String,
    lines: Vec<BatchLine>,
    /// The combined text's length, a line break counting one byte.
    bytes: usize,
}

/// Why a batch is refused, with the FAIL code and context the draft names.
enum Invalid {
    MaxBytes(usize),
    MaxLines(usize),
    Target(String, String),
    Timeout(String),
    Other(&'static str),
}

/// How long a batch may stay open: half a minute, and the fake lag its
/// lines may wait behind the flood rate (`config/validate.rs` keeps a
/// whole batch within the bucket).
pub fn time_limit(config: &Config) -> Duration {
    let flood = &config.flood;
    let lines = config.limits.multiline_max_lines as f64 + 2.0;
    let lag = if flood.enabled && flood.lines_per_second > 0.0 {
        Duration::try_from_secs_f64(lines / flood.lines_per_second).unwrap_or(Duration::MAX)
    } else {
        Duration::ZERO
    };
    Duration::from_secs(30).saturating_add(lag)
}

/// `BATCH (+|-)<reference> [<type> <target>]`
pub fn batch(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let reference = message.param(0);
    if let Some(reference) = reference.strip_prefix('+') {
        open(state, id, reference, message);
    } else if let Some(reference) = reference.strip_prefix('-') {
        close(state, id, reference);
    } else {
        fail(state, id, Invalid::Other("Invalid batch reference"));
    }
    Ok(())
}

fn open(state: &mut State, id: ClientId, reference: &str, message: &Message) {
    let label = state.label().map(str::to_owned);
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    if let Some(open) = client.multiline.as_mut() {
        // The open batch keeps its reference, so its later lines and its
        // end are dropped quietly rather than each failing again.
        open.collected = None;
        fail(state, id, Invalid::Other("A batch is already open"));
        return;
    }
    let problem = if !client.caps.contains(Caps::MULTILINE.union(Caps::BATCH)) {
        Some("Multiline batches need the draft/multiline and batch capabilities")
    } else if message.param(1) != BATCH_TYPE {
        Some("Unknown batch type")
    } else if reference.is_empty() || message.param(2).is_empty() {
        Some("A multiline batch needs a reference and a target")
    } else {
        None
    };
    let collected = problem.is_none().then(Collected::default);
    let opened = state.clock.now();
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    client.multiline = Some(Box::new(OpenBatch {
        reference: reference.to_owned(),
        target: message.param(2).to_owned(),
        label,
        tags: message.tags.clone(),
        collected,
        opened,
    }));
    if let Some(text) = problem {
        fail(state, id, Invalid::Other(text));
    }
}

/// A line tagged `batch`: the next line of the open batch.
pub fn line(state: &mut State, id: ClientId, message: &Message, reference: &str) {
    let limits = &state.config.limits;
    let (max_bytes, max_lines) = (limits.multiline_max_bytes, limits.multiline_max_lines);
    let fold = state.config.server.casemapping;
    let expired = expired(state);
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    let Some(open) = client
        .multiline
        .as_mut()
        .filter(|o| o.reference == reference)
    else {
        // Not the open batch: that one is discarded too.
        if let Some(open) = client.multiline.as_mut() {
            open.collected = None;
        }
        fail(state, id, Invalid::Other("No such batch is open"));
        return;
    };
    let Some(collected) = open.collected.as_mut() else {
        return;
    };
    let target = message.param(0);
    let outcome = if open.opened < expired {
        Err(Invalid::Timeout(open.reference.clone()))
    } else if fold.fold(target) != fold.fold(&open.target) {
        Err(Invalid::Target(open.target.clone(), target.to_owned()))
    } else {
        collected.add(message, max_bytes, max_lines)
    };
    if let Err(invalid) = outcome {
        open.collected = None;
        fail(state, id, invalid);
    }
}

impl Collected {
    fn add(
        &mut self,
        message: &Message,
        max_bytes: usize,
        max_lines: usize,
    ) -> Result<(), Invalid> {
        let command = message.command.as_str();
        if !matches!(command, "PRIVMSG" | "NOTICE") {
            return Err(Invalid::Other("Only PRIVMSG and NOTICE may be batched"));
        }
        if !self.command.is_empty() && self.command != command {
            return Err(Invalid::Other("Every line must be the same command"));
        }
        let text = message.param(1);
        let concat = message.tags.iter().any(|tag| tag.key == CONCAT_TAG);
        if concat && text.is_empty() {
            return Err(Invalid::Other("A blank line cannot be concatenated"));
        }
        if self.lines.len() == max_lines {
            return Err(Invalid::MaxLines(max_lines));
        }
        let joint = usize::from(!self.lines.is_empty() && !concat);
        let bytes = self.bytes + joint + text.len();
        if bytes > max_bytes {
            return Err(Invalid::MaxBytes(max_bytes));
        }
        command.clone_into(&mut self.command);
        self.bytes = bytes;
        self.lines.push(BatchLine {
            text: text.to_owned(),
            concat,
        });
        Ok(())
    }
}

fn close(state: &mut State, id: ClientId, reference: &str) {
    let expired = expired(state);
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    let Some(open) = client.multiline.take() else {
        fail(state, id, Invalid::Other("No batch is open"));
        return;
    };
    if open.reference != reference {
        fail(state, id, Invalid::Other("No such batch is open"));
        return;
    }
    let Some(collected) = open.collected else {
        return;
    };
    if open.opened < expired {
        fail(state, id, Invalid::Timeout(open.reference));
        return;
    }
    if collected.lines.iter().all(|line| line.text.is_empty()) {
        fail(
            state,
            id,
            Invalid::Other("A multiline message needs some text"),
        );
        return;
    }
    let target = &open.target;
    if super::nickserv::is_service(state, target) || super::chanserv::is_service(state, target) {
        // A service answers each command it reads, and may wait on the disk.
        fail(
            state,
            id,
            Invalid::Other("Services read one line at a time"),
        );
        return;
    }
    super::message::relay_multiline(
        state,
        id,
        &collected.command,
        &open.target,
        &collected.lines,
        &open.tags,
    );
}

/// After RENAME: a batch aimed at the room's old name goes to its new one,
/// so the message is not lost to a name that no longer exists.
pub fn follow_rename(state: &mut State, old: &Folded, new: &str) {
    let casemapping = state.config.server.casemapping;
    for client in state.clients.values_mut() {
        let open = client.multiline.as_mut();
        if let Some(open) = open.filter(|open| casemapping.fold(&open.target) == *old) {
            new.clone_into(&mut open.target);
        }
    }
}

/// Batches opened before this are too old to go on.
fn expired(state: &State) -> SystemTime {
    let now = state.clock.now();
    now.checked_sub(time_limit(&state.config)).unwrap_or(now)
}

/// The label a `BATCH -ref` closing the open batch is answered under: the
/// one its `BATCH +ref` carried.
pub fn closing_label(state: &State, id: ClientId, message: &Message) -> Option<String> {
    let reference = message.param(0).strip_prefix('-')?;
    let open = state.clients.get(&id)?.multiline.as_ref()?;
    (message.command == "BATCH" && open.reference == reference)
        .then(|| open.label.clone())
        .flatten()
}

/// Whether `id` has a batch open, so a labeled line of it that had no
/// reply is answered when the batch closes, not with an ACK now.
pub fn answers_later(state: &State, id: ClientId, message: &Message) -> bool {
    let in_batch = message.command == "BATCH" || batch_reference(message).is_some();
    in_batch
        && state
            .clients
            .get(&id)
            .is_some_and(|c| c.multiline.is_some())
}

/// The `batch` tag of a line from a client, if it has one.
pub fn batch_reference(message: &Message) -> Option<&str> {
    let tag = message.tags.iter().find(|tag| tag.key == "batch")?;
    Some(tag.value.as_deref().unwrap_or_default())
}

fn fail(state: &mut State, id: ClientId, invalid: Invalid) {
    let (code, context, text) = match &invalid {
        Invalid::MaxBytes(limit) => (
            "MULTILINE_MAX_BYTES",
            vec![limit.to_string()],
            "Multiline batch max-bytes exceeded",
        ),
        Invalid::MaxLines(limit) => (
            "MULTILINE_MAX_LINES",
            vec![limit.to_string()],
            "Multiline batch max-lines exceeded",
        ),
        Invalid::Target(batch, line) => (
            "MULTILINE_INVALID_TARGET",
            vec![batch.clone(), line.clone()],
            "Invalid multiline target",
        ),
        Invalid::Timeout(reference) => (
            "TIMEOUT",
            vec![reference.clone()],
            "The batch was left open for too long",
        ),
        Invalid::Other(text) => ("MULTILINE_INVALID", Vec::new(), *text),
    };
    let context: Vec<&str> = context.iter().map(String::as_str).collect();
    state.fail(id, "BATCH", code, &context, text);
}

#[cfg(test)]
mod tests {
    use crate::core::testing::Harness;

    const CAPS: &str = "CAP REQ :batch draft/multiline message-tags echo-message labeled-response";

    /// alice (with the capability) and bob (`bob_caps`) in #room.
    fn room(bob_caps: &str) -> Harness {
        let mut h = Harness::new();
        h.register("alice");
        h.register("bob");
        h.send("alice", CAPS);
        if !bob_caps.is_empty() {
            h.send("bob", bob_caps);
        }
        h.send("alice", "JOIN #room");
        h.send("bob", "JOIN #room");
        h.take("alice");
        h.take("bob");
        h
    }

    fn send_batch(h: &mut Harness, lines: &[&str]) {
        h.send(
            "alice",
            "@+draft/reply=x;label=l1 BATCH +r1 draft/multiline #room",
        );
        for line in lines {
            h.send("alice", line);
        }
        h.send("alice", "BATCH -r1");
    }

    const THREE: [&str; 3] = [
        "@batch=r1 PRIVMSG #room hello",
        "@batch=r1 PRIVMSG #room :how is ",
        "@batch=r1;draft/multiline-concat PRIVMSG #room :everyone?",
    ];

    #[test]
    fn a_client_with_the_capability_gets_one_batch_with_one_msgid() {
        let mut h = room("CAP REQ :batch draft/multiline message-tags");
        send_batch(&mut h, &THREE);
        let bob = h.take("bob");
        assert_eq!(bob.len(), 5, "{bob:?}");
        assert!(bob[0].starts_with("@msgid="), "{}", bob[0]);
        assert!(
            bob[0].ends_with(
                ";+draft/reply=x :alice!~alice@127.0.0.1 BATCH +b2 draft/multiline #room"
            ),
            "{}",
            bob[0]
        );
        assert_eq!(
            bob[1],
            "@batch=b2 :alice!~alice@127.0.0.1 PRIVMSG #room :hello"
        );
        assert_eq!(
            bob[3],
            "@batch=b2;draft/multiline-concat :alice!~alice@127.0.0.1 PRIVMSG #room :everyone?"
        );
        assert_eq!(bob[4], ":alice!~alice@127.0.0.1 BATCH -b2");
        let echo = h.take("alice");
        assert!(echo[0].starts_with("@label=l1;msgid="), "{}", echo[0]);
        assert_eq!(echo[1..], bob[1..]);
    }

    #[test]
    fn a_client_without_it_gets_the_lines_with_the_msgid_on_the_first() {
        let mut h = room("CAP REQ :message-tags");
        send_batch(&mut h, &["@batch=r1 PRIVMSG #room :", THREE[1], THREE[2]]);
        let bob = h.take("bob");
        assert_eq!(bob.len(), 2, "the blank line is not sent: {bob:?}");
        assert!(bob[0].starts_with("@msgid="), "{}", bob[0]);
        assert!(bob[0].ends_with(";+draft/reply=x :alice!~alice@127.0.0.1 PRIVMSG #room :how is "));
        assert_eq!(
            bob[1],
            "@+draft/reply=x :alice!~alice@127.0.0.1 PRIVMSG #room :everyone?"
        );
        h.send("bob", "CAP REQ -message-tags");
        h.take("bob");
        send_batch(&mut h, &THREE);
        assert_eq!(
            h.take("bob"),
            [
                ":alice!~alice@127.0.0.1 PRIVMSG #room :hello",
                ":alice!~alice@127.0.0.1 PRIVMSG #room :how is ",
                ":alice!~alice@127.0.0.1 PRIVMSG #room :everyone?",
            ]
        );
    }

    #[test]
    fn a_multiline_message_counts_as_one_message_and_one_delivery_per_recipient() {
        let mut h = room("");
        let metrics = std::sync::Arc::clone(&h.state.metrics);
        let count = |name: &str| metrics.value(name).unwrap_or(f64::NAN);
        let lines = count("rookery_lines_received_total");
        h.send("alice", "BATCH +r1 draft/multiline #room");
        h.send("alice", "@batch=r1 PRIVMSG #room :one");
        h.send("alice", "@batch=r1 PRIVMSG #room :two");
        h.send("alice", "BATCH -r1");
        assert_eq!(h.take("bob").len(), 2);
        assert_eq!(count("rookery_messages_received_total"), 1.0);
        // bob, and alice's echo (echo-message).
        assert_eq!(count("rookery_deliveries_total"), 2.0);
        assert_eq!(count("rookery_lines_received_total"), lines + 4.0);
    }

    #[test]
    fn a_private_multiline_message_reaches_a_nick_in_its_form() {
        let mut h = room("");
        h.send("alice", "BATCH +r1 draft/multiline bob");
        h.send("alice", "@batch=r1 PRIVMSG bob :one");
        h.send("alice", "@batch=r1 PRIVMSG bob :two");
        h.send("alice", "BATCH -r1");
        assert_eq!(
            h.take("bob"),
            [
                ":alice!~alice@127.0.0.1 PRIVMSG bob :one",
                ":alice!~alice@127.0.0.1 PRIVMSG bob :two",
            ]
        );
        let echo = h.take("alice");
        assert_eq!(echo.len(), 4, "the echo is the batch: {echo:?}");
        assert!(
            echo[0].contains(" :alice!~alice@127.0.0.1 BATCH +"),
            "{}",
            echo[0]
        );
        assert!(echo[0].ends_with(" draft/multiline bob"), "{}", echo[0]);
    }

    #[test]
    fn too_many_lines_fail_once_and_discard_the_batch() {
        let mut h = room("");
        h.send("alice", "BATCH +r1 draft/multiline #room");
        for _ in 0..34 {
            h.send("alice", "@batch=r1 PRIVMSG #room hi");
        }
        h.send("alice", "BATCH -r1");
        assert_eq!(
            h.take("alice"),
            [":irc.test FAIL BATCH MULTILINE_MAX_LINES 32 :Multiline batch max-lines exceeded"]
        );
        assert!(h.take("bob").is_empty());
    }

    #[test]
    fn too_many_bytes_fail_with_the_limit() {
        let mut h = room("");
        h.send("alice", "BATCH +r1 draft/multiline #room");
        let line = format!("@batch=r1 PRIVMSG #room {}", "x".repeat(400));
        for _ in 0..11 {
            h.send("alice", &line);
        }
        assert_eq!(
            h.take("alice"),
            [":irc.test FAIL BATCH MULTILINE_MAX_BYTES 4096 :Multiline batch max-bytes exceeded"]
        );
    }

    #[test]
    fn invalid_batches_fail_as_the_draft_names() {
        let mut h = room("");
        let cases: [(&[&str], &str); 5] = [
            (
                &["@batch=r1 PRIVMSG #other :hi"],
                ":irc.test FAIL BATCH MULTILINE_INVALID_TARGET #room #other :Invalid multiline target",
            ),
            (
                &["@batch=r2 PRIVMSG #room :hi"],
                ":irc.test FAIL BATCH MULTILINE_INVALID :No such batch is open",
            ),
            (
                &[
                    "@batch=r1 PRIVMSG #room :hi",
                    "@batch=r1;draft/multiline-concat PRIVMSG #room :",
                ],
                ":irc.test FAIL BATCH MULTILINE_INVALID :A blank line cannot be concatenated",
            ),
            (
                &["@batch=r1 PRIVMSG #room :", "@batch=r1 PRIVMSG #room :"],
                ":irc.test FAIL BATCH MULTILINE_INVALID :A multiline message needs some text",
            ),
            (
                &["@batch=r1 PRIVMSG #room :hi", "@batch=r1 NOTICE #room :hi"],
                ":irc.test FAIL BATCH MULTILINE_INVALID :Every line must be the same command",
            ),
        ];
        for (lines, expected) in cases {
            h.send("alice", "BATCH +r1 draft/multiline #room");
            for line in lines {
                h.send("alice", line);
            }
            h.send("alice", "BATCH -r1");
            assert_eq!(h.take("alice"), [expected], "{lines:?}");
            assert!(h.take("bob").is_empty());
        }
    }

    #[test]
    fn a_second_batch_fails_once_and_discards_the_first() {
        let mut h = room("");
        h.send("alice", "BATCH +r1 draft/multiline #room");
        h.send("alice", "@batch=r1 PRIVMSG #room :one");
        h.send("alice", "BATCH +r2 draft/multiline #room");
        for _ in 0..3 {
            h.send("alice", "@batch=r1 PRIVMSG #room :more");
        }
        h.send("alice", "BATCH -r1");
        assert_eq!(
            h.take("alice"),
            [":irc.test FAIL BATCH MULTILINE_INVALID :A batch is already open"]
        );
        assert!(h.take("bob").is_empty());
        // Once the first is closed, a new batch opens as usual.
        send_batch(&mut h, &THREE);
        assert_eq!(h.take("bob").len(), 3);
    }

    #[test]
    fn a_batch_open_during_a_rename_reaches_the_new_name() {
        let mut h = room("");
        h.send("alice", "BATCH +r1 draft/multiline #room");
        h.send("alice", "@batch=r1 PRIVMSG #room :one");
        h.send("alice", "RENAME #room #new");
        h.send("alice", "@batch=r1 PRIVMSG #new :two");
        h.send("alice", "BATCH -r1");
        let bob = h.take("bob");
        assert_eq!(
            bob[bob.len() - 2..],
            [
                ":alice!~alice@127.0.0.1 PRIVMSG #new :one",
                ":alice!~alice@127.0.0.1 PRIVMSG #new :two",
            ],
            "{bob:?}"
        );
        let alice = h.take("alice");
        assert!(!alice.iter().any(|l| l.contains(" FAIL ")), "{alice:?}");
    }

    #[test]
    fn a_service_is_not_sent_a_multiline_message() {
        let mut h = room("");
        h.send("alice", "BATCH +r1 draft/multiline NickServ");
        h.send("alice", "@batch=r1 PRIVMSG NickServ :help");
        h.send("alice", "BATCH -r1");
        assert_eq!(
            h.take("alice"),
            [":irc.test FAIL BATCH MULTILINE_INVALID :Services read one line at a time"]
        );
    }

    #[test]
    fn without_the_capability_a_batch_is_refused() {
        let mut h = room("");
        h.send("bob", "BATCH +r1 draft/multiline #room");
        assert_eq!(
            h.take("bob"),
            [
                ":irc.test FAIL BATCH MULTILINE_INVALID :Multiline batches need the draft/multiline and batch capabilities"
            ]
        );
    }

    #[test]
    fn a_batch_left_open_too_long_times_out() {
        let mut h = room("");
        h.send("alice", "BATCH +r1 draft/multiline #room");
        h.send("alice", "@batch=r1 PRIVMSG #room :one");
        let limit = super::time_limit(&h.state.config).as_secs();
        h.advance(limit + 1);
        h.send("alice", "@batch=r1 PRIVMSG #room :two");
        h.send("alice", "BATCH -r1");
        assert_eq!(
            h.take("alice"),
            [":irc.test FAIL BATCH TIMEOUT r1 :The batch was left open for too long"]
        );
        assert!(h.take("bob").is_empty());
    }

    #[test]
    fn other_commands_are_answered_while_a_batch_is_open() {
        let mut h = room("");
        h.send("alice", "BATCH +r1 draft/multiline #room");
        h.send("alice", "@batch=r1 PRIVMSG #room :one");
        h.send("alice", "PING x");
        assert_eq!(h.take("alice"), [":irc.test PONG irc.test :x"]);
        h.send("alice", "@batch=r1 PRIVMSG #room :two");
        h.send("alice", "BATCH -r1");
        assert_eq!(h.take("bob").len(), 2);
    }

    /// alice sends THREE to #room with history kept; `t` is settled.
    fn stored() -> crate::core::testing::HistoryHarness {
        let mut t = crate::core::testing::HistoryHarness::new();
        t.h.register("alice");
        t.h.send("alice", CAPS);
        t.h.send("alice", "JOIN #room");
        t.h.send("alice", "BATCH +r1 draft/multiline #room");
        for line in THREE {
            t.h.send("alice", line);
        }
        t.h.send("alice", "BATCH -r1");
        t.settle();
        t
    }

    #[test]
    fn history_keeps_one_record_and_replays_the_batch_to_the_capable() {
        let mut t = stored();
        t.h.register("bob");
        t.h.send(
            "bob",
            "CAP REQ :batch draft/multiline message-tags draft/chathistory",
        );
        t.h.send("bob", "JOIN #room");
        let lines = t.query("bob", "CHATHISTORY LATEST #room * 10");
        assert_eq!(lines.len(), 7, "{lines:?}");
        let outer = lines[0].split(' ').nth(2).unwrap_or_default()[1..].to_owned();
        assert!(
            lines[1].starts_with(&format!("@batch={outer};msgid=")),
            "{}",
            lines[1]
        );
        let inner = lines[1].rsplit(' ').nth(2).unwrap_or_default()[1..].to_owned();
        assert!(lines[1].ends_with(&format!("BATCH +{inner} draft/multiline #room")));
        assert_eq!(
            lines[4],
            format!(
                "@batch={inner};draft/multiline-concat :alice!~alice@127.0.0.1 PRIVMSG #room :everyone?"
            )
        );
        assert_eq!(
            lines[5],
            format!("@batch={outer} :alice!~alice@127.0.0.1 BATCH -{inner}")
        );
    }

    #[test]
    fn join_playback_nests_the_batch_in_its_own() {
        let mut t = stored();
        t.h.register("dan");
        t.h.send("dan", "CAP REQ :batch draft/multiline server-time");
        t.h.send("dan", "JOIN #room");
        let lines = t.h.take("dan");
        let start = lines
            .iter()
            .position(|l| l.contains(" BATCH +") && l.contains(" chathistory "));
        let played = &lines[start.expect("a playback batch") + 1..];
        assert_eq!(played.len(), 6, "{lines:?}");
        assert!(played[0].contains(" BATCH +ml") && played[0].ends_with(" draft/multiline #room"));
        assert!(
            played[3].ends_with(" PRIVMSG #room :everyone?"),
            "{}",
            played[3]
        );
        assert!(
            played[4].starts_with("@batch=b") && played[4].contains(" BATCH -ml"),
            "{}",
            played[4]
        );
        assert!(played[5].starts_with(":irc.test BATCH -"), "{}", played[5]);
    }

    #[test]
    fn history_replays_the_lines_one_by_one_to_the_others() {
        let mut t = stored();
        t.h.register("carol");
        t.h.send("carol", "CAP REQ :batch message-tags server-time");
        t.h.send("carol", "JOIN #room");
        let lines = t.h.take("carol");
        let played: Vec<&String> = lines.iter().filter(|l| l.contains(" PRIVMSG ")).collect();
        assert_eq!(played.len(), 3, "{lines:?}");
        assert!(played[0].contains(";msgid="), "{}", played[0]);
        assert!(!played[1].contains("msgid="), "{}", played[1]);
        assert!(played[2].ends_with(" PRIVMSG #room :everyone?"));
    }
}
