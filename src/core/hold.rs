//! Commands are answered in the order they were sent. A command whose
//! answer comes from off the core (OPER's password hash, a CHATHISTORY
//! query) leaves its client waiting: the client's later lines are held
//! here, and run in order once the answer has been sent
//! ([`State::resume`]). This is the one way a command answers later; a
//! labeled command's label waits here with it.
//!
//! The held lines are bounded by [`HELD_LINES`] and [`HELD_BYTES`], far
//! above what a client sends in one burst (an OPER followed by its
//! autojoins), and the same for every client: flood control paces lines
//! before they reach the core, but an exempt client is not paced, and
//! must not be able to grow the core's memory without end either.

use std::collections::VecDeque;

use super::{ClientId, Refusal, State, dispatch, labeled};
use crate::net::EXCESS_FLOOD;
use crate::proto::{Message, numeric};

/// One line from a client, as the core runs it.
#[derive(Debug)]
pub enum Input {
    Message(Message),
    /// A line over the length limits, answered with 417.
    TooLong,
}

/// The most lines a waiting client may have held.
pub const HELD_LINES: usize = 1024;

/// The most bytes (of tags, command and parameters) a waiting client may
/// have held: 256 lines of a full 512 bytes, or some with long tags.
pub const HELD_BYTES: usize = 128 * 1024;

impl Input {
    /// What holding this line costs, in bytes, roughly as it came.
    fn size(&self) -> usize {
        match self {
            Input::Message(message) => {
                let tags: usize = message
                    .tags
                    .iter()
                    .map(|tag| tag.key.len() + tag.value.as_ref().map_or(0, String::len) + 2)
                    .sum();
                let params: usize = message.params.iter().map(|param| param.len() + 1).sum();
                tags + message.command.len() + params + 2
            }
            Input::TooLong => 1,
        }
    }
}

/// A client's command that is being decided off the core.
#[derive(Debug, Default)]
pub struct Waiting {
    /// The label of the waiting command: its answer goes back under it.
    label: Option<String>,
    /// The client's later lines, in the order they came.
    held: VecDeque<Input>,
    /// The bytes of `held`, by [`Input::size`].
    held_bytes: usize,
}

impl Waiting {
    /// Holds `input`, unless that would pass the bounds.
    fn hold(&mut self, input: Input) -> Result<(), Input> {
        let size = input.size();
        if self.held.len() >= HELD_LINES || self.held_bytes + size > HELD_BYTES {
            return Err(input);
        }
        self.held_bytes += size;
        self.held.push_back(input);
        Ok(())
    }
}

impl State {
    /// Runs a client's line now, or holds it while the client waits for an
    /// earlier command's answer. A QUIT runs at once even then, dropping
    /// what is held: the client leaves with its own reason, not with
    /// whatever closing the socket after it would say.
    pub(super) fn input(&mut self, id: ClientId, input: Input) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let quits = matches!(&input, Input::Message(m) if m.command.eq_ignore_ascii_case("QUIT"));
        let Some(waiting) = client.waiting.as_mut().filter(|_| !quits) else {
            self.run_input(id, input);
            return;
        };
        if waiting.hold(input).is_err() {
            self.metrics.flood_disconnect();
            self.disconnect(id, EXCESS_FLOOD);
        }
    }

    fn run_input(&mut self, id: ClientId, input: Input) {
        match input {
            Input::Message(message) => dispatch::dispatch(self, id, &message),
            Input::TooLong => self.refuse(id, Refusal::new(numeric::ERR_INPUTTOOLONG, &[])),
        }
    }

    /// Says the running command of `id` is answered later, off the core:
    /// the client's next lines wait until [`State::resume`], and dispatch
    /// sends no ACK now. A labeled command keeps its label for that answer.
    pub fn wait_off_core(&mut self, id: ClientId) {
        let label = self.label().map(str::to_owned);
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        client.waiting = Some(Box::new(Waiting {
            label,
            ..Waiting::default()
        }));
    }

    /// The command `id` waits on answers without a label: its label was
    /// answered already (the rest of a JOIN waiting behind a second room's
    /// creation, after the first room's answer went under the label).
    pub(crate) fn unlabel_waiting(&mut self, id: ClientId) {
        if let Some(waiting) = self
            .clients
            .get_mut(&id)
            .and_then(|client| client.waiting.as_mut())
        {
            waiting.label = None;
        }
    }

    /// Whether `id` waits for an answer from off the core.
    pub fn is_waiting(&self, id: ClientId) -> bool {
        self.clients
            .get(&id)
            .is_some_and(|client| client.waiting.is_some())
    }

    /// The answer `id` waited for has come: `answer` sends it (under the
    /// command's label, when it had one), then the held lines run in order
    /// until one of them waits in turn.
    pub fn resume(&mut self, id: ClientId, answer: impl FnOnce(&mut State)) {
        let Some(waiting) = self
            .clients
            .get_mut(&id)
            .and_then(|client| client.waiting.take())
        else {
            return;
        };
        match &waiting.label {
            Some(label) => {
                self.start_labeled(id, label);
                answer(self);
                let (lines, seq) = self.end_capture();
                labeled::send(self, id, label, lines, seq);
            }
            None => answer(self),
        }
        let mut held = waiting.held;
        if let Some(again) = self
            .clients
            .get_mut(&id)
            .and_then(|client| client.waiting.as_mut())
        {
            // The answer waits in turn (the rest of a JOIN, behind another
            // room's creation): the held lines wait behind it.
            again.held_bytes += held.iter().map(Input::size).sum::<usize>();
            again.held.extend(held);
            return;
        }
        while let Some(input) = held.pop_front() {
            if !self.clients.contains_key(&id) {
                return;
            }
            self.run_input(id, input);
            if let Some(again) = self
                .clients
                .get_mut(&id)
                .and_then(|client| client.waiting.as_mut())
            {
                // The rest waits behind the new check, still in order.
                again.held_bytes += held.iter().map(Input::size).sum::<usize>();
                again.held.extend(held);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use crate::config::{Config, Oper, Privilege};
    use crate::core::AdminRequest;
    use crate::core::testing::Harness;

    /// A harness whose admin worker is a channel the test answers by hand.
    fn with_worker() -> (Harness, mpsc::UnboundedReceiver<AdminRequest>) {
        let mut config = Config::default();
        config.server.name = "irc.test".into();
        config.flood.max_backlog = 5;
        config.oper = vec![Oper {
            name: "root".into(),
            password_hash: "unused: the test answers the check".into(),
            account: None,
            hosts: Vec::new(),
            privileges: Privilege::all(),
        }];
        let mut h = Harness::with_config(config);
        let (worker, requests) = mpsc::unbounded_channel();
        h.state.admin.worker = Some(worker);
        (h, requests)
    }

    /// Answers the one password check waiting in `requests`.
    fn answer(h: &mut Harness, requests: &mut mpsc::UnboundedReceiver<AdminRequest>, valid: bool) {
        let Ok(AdminRequest::CheckOper { answer, .. }) = requests.try_recv() else {
            panic!("a password check was requested");
        };
        h.state.handle(answer.into_event(valid));
    }

    #[test]
    fn lines_after_oper_are_answered_after_its_answer() {
        let (mut h, mut requests) = with_worker();
        h.register("alice");
        h.send("alice", "OPER root secret");
        h.send("alice", "PING first");
        h.send("alice", "PING second");
        assert!(h.take("alice").is_empty(), "nothing answered before OPER");
        answer(&mut h, &mut requests, true);
        assert_eq!(
            h.take("alice"),
            [
                ":alice!~alice@127.0.0.1 MODE alice +o",
                ":irc.test 381 alice :You are now an IRC operator",
                ":irc.test PONG irc.test :first",
                ":irc.test PONG irc.test :second",
            ]
        );
        h.send("alice", "PING after");
        assert_eq!(h.take("alice"), [":irc.test PONG irc.test :after"]);
    }

    #[test]
    fn a_held_oper_waits_in_turn_and_holds_what_follows_it() {
        let (mut h, mut requests) = with_worker();
        h.register("alice");
        h.send("alice", "OPER root wrong");
        h.send("alice", "OPER root secret");
        h.send("alice", "PING x");
        answer(&mut h, &mut requests, false);
        assert_eq!(h.take("alice"), [":irc.test 464 alice :Password incorrect"]);
        answer(&mut h, &mut requests, true);
        assert_eq!(
            h.take("alice"),
            [
                ":alice!~alice@127.0.0.1 MODE alice +o",
                ":irc.test 381 alice :You are now an IRC operator",
                ":irc.test PONG irc.test :x",
            ]
        );
    }

    #[test]
    fn a_labeled_oper_gets_its_answer_under_its_label() {
        let (mut h, mut requests) = with_worker();
        h.register("alice");
        h.send("alice", "CAP REQ :labeled-response batch");
        h.take("alice");
        h.send("alice", "@label=op1 OPER root secret");
        h.send("alice", "@label=p2 PING x");
        assert!(h.take("alice").is_empty(), "no ACK before the answer");
        answer(&mut h, &mut requests, true);
        let lines = h.take("alice");
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert!(lines[0].starts_with("@label=op1 :irc.test BATCH +"));
        assert!(lines[2].ends_with(" 381 alice :You are now an IRC operator"));
        assert!(lines[3].starts_with(":irc.test BATCH -"));
        assert_eq!(lines[4], "@label=p2 :irc.test PONG irc.test :x");
    }

    #[test]
    fn an_autojoin_burst_after_oper_waits_whatever_the_flood_backlog() {
        // The flood backlog (5 here) paces lines before the core; lines
        // held behind an OPER are a different queue.
        let (mut h, mut requests) = with_worker();
        h.register("alice");
        h.send("alice", "OPER root secret");
        for n in 0..40 {
            h.send("alice", &format!("JOIN #room{n}"));
        }
        answer(&mut h, &mut requests, true);
        let lines = h.take("alice");
        assert!(lines[1].ends_with(" 381 alice :You are now an IRC operator"));
        let joins = lines.iter().filter(|line| line.contains(" JOIN #room"));
        assert_eq!(joins.count(), 40, "{lines:?}");
        assert_eq!(
            lines.last().map(String::as_str),
            Some(":irc.test 366 alice #room39 :End of /NAMES list")
        );
    }

    /// alice waiting on OPER, with bob sharing a room to see her leave.
    fn waiting_alice() -> (Harness, mpsc::UnboundedReceiver<AdminRequest>) {
        let (mut h, requests) = with_worker();
        h.register("alice");
        h.register("bob");
        h.room("#room", &[("alice", false), ("bob", false)]);
        h.send("alice", "OPER root secret");
        (h, requests)
    }

    #[test]
    fn an_oper_check_dropped_by_the_worker_fails_and_resumes_the_client() {
        let (mut h, requests) = with_worker();
        let (inbox, mut events) = mpsc::channel(8);
        h.state.inbox = Some(inbox);
        h.register("alice");
        h.send("alice", "OPER root secret");
        h.send("alice", "PING after");
        assert!(h.take("alice").is_empty(), "held behind OPER");
        // The worker stops with the check still queued.
        drop(requests);
        let event = events.try_recv().expect("the dropped check answers");
        h.state.handle(event);
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test 464 alice :Password incorrect",
                ":irc.test PONG irc.test :after",
            ]
        );
    }

    #[test]
    fn a_quit_while_waiting_leaves_at_once_with_its_own_reason() {
        let (mut h, _requests) = waiting_alice();
        h.send("alice", "PING held");
        h.send("alice", "QUIT :bye now");
        h.close("alice");
        assert_eq!(
            h.take("bob"),
            [":alice!~alice@127.0.0.1 QUIT :Quit: bye now"]
        );
    }

    #[test]
    fn too_many_held_lines_end_the_connection() {
        let (mut h, _requests) = waiting_alice();
        for n in 0..super::HELD_LINES {
            h.send("alice", &format!("PING {n}"));
        }
        assert!(h.take("bob").is_empty());
        h.send("alice", "PING over");
        assert_eq!(
            h.take("bob"),
            [":alice!~alice@127.0.0.1 QUIT :Excess Flood"]
        );
    }

    #[test]
    fn too_many_held_bytes_end_the_connection() {
        let (mut h, _requests) = waiting_alice();
        let tags = format!("@+data={}", "x".repeat(4000));
        let fits = super::HELD_BYTES / 4010;
        for _ in 0..fits {
            h.send("alice", &format!("{tags} PING x"));
        }
        assert!(h.take("bob").is_empty());
        h.send("alice", &format!("{tags} PING x"));
        assert_eq!(
            h.take("bob"),
            [":alice!~alice@127.0.0.1 QUIT :Excess Flood"]
        );
    }

    #[test]
    fn parallel_oper_attempts_from_one_address_count_before_they_are_checked() {
        let (mut h, mut requests) = with_worker();
        for n in 0..5 {
            let nick = format!("user{n}");
            h.register(&nick);
            h.send(&nick, "OPER root guess");
        }
        // Three were handed to the worker; the others refused at once.
        let mut checks = 0;
        while requests.try_recv().is_ok() {
            checks += 1;
        }
        assert_eq!(checks, crate::core::lockout::OPER_ATTEMPTS);
        for n in 3..5 {
            assert_eq!(
                h.take(&format!("user{n}")),
                [format!(":irc.test 464 user{n} :Password incorrect")]
            );
        }
    }
}
