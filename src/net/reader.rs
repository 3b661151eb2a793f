//! A connection's read task: it frames and parses lines, charges each to
//! the flood bucket, holds it in order until its due time, hands it to the
//! core, and keeps the registration and ping deadlines.

use std::collections::VecDeque;

use tokio::time::{Duration, Instant, sleep_until};
use tracing::debug;

use super::connection::ConnectionSettings;
use super::deadlines::{Deadlines, Expiry};
use super::event::{ClientId, ConnectionEvent, Inbox};
use super::flood::{self, EXCESS_FLOOD, ExcessFlood, FloodControl};
use super::outbox::Outbox;
use super::transport::LineSource;
use crate::proto::framing::Frame;
use crate::proto::{Line, Message, message};

/// Why reading stopped.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum End {
    /// The client's side ended it, for this reason, which the core has yet
    /// to hear.
    Closed(String),
    /// The core stopped the connection, or is gone: there is no one to tell.
    Stopped,
}

impl From<ExcessFlood> for End {
    fn from(_: ExcessFlood) -> End {
        End::Closed(EXCESS_FLOOD.to_owned())
    }
}

/// The read side of one connection.
///
/// Lines are read as they arrive and charged to the flood bucket at once;
/// each waits in [`Pending`] until its due time. Reading goes on meanwhile,
/// so a flooder's backlog is seen and bounded rather than left in the kernel.
pub(super) struct Reader<'a, E> {
    id: ClientId,
    outbox: &'a Outbox,
    settings: &'a ConnectionSettings,
    inbox: &'a Inbox<E>,
    /// None when flood control is off.
    flood: Option<FloodControl>,
    pending: Pending<ConnectionEvent>,
    deadlines: Deadlines,
}

impl<'a, E: From<ConnectionEvent>> Reader<'a, E> {
    pub(super) fn new(
        id: ClientId,
        outbox: &'a Outbox,
        settings: &'a ConnectionSettings,
        inbox: &'a Inbox<E>,
    ) -> Reader<'a, E> {
        let now = Instant::now();
        Reader {
            id,
            outbox,
            settings,
            inbox,
            flood: settings.flood.map(|limits| FloodControl::new(limits, now)),
            pending: Pending::default(),
            deadlines: Deadlines::new(settings, now),
        }
    }

    /// Reads until the connection ends, from either side.
    pub(super) async fn run<S: LineSource>(mut self, mut source: S) -> End {
        loop {
            if let Err(end) = self.step(&mut source).await {
                return end;
            }
        }
    }

    /// Queues what the buffer holds, hands on what is due, then waits for
    /// the next read, due line or deadline.
    async fn step<S: LineSource>(&mut self, source: &mut S) -> Result<(), End> {
        self.queue_frames(source)?;
        self.release_due().await?;
        let next_due = self.pending.next_due();
        let deadline = self.deadlines.next(self.outbox.is_registered());
        let stop = self.outbox.stop_token();
        tokio::select! {
            _ = stop.cancelled() => {
                if self.outbox.is_closing() {
                    return Err(End::Stopped);
                }
                return Err(End::Closed("Write error".to_owned()));
            }
            read = source.fill() => match read {
                Ok(false) => return Err(End::Closed("Connection closed".to_owned())),
                Ok(true) => self.deadlines.heard_from(Instant::now()),
                Err(error) => return Err(End::Closed(format!("Read error: {error}"))),
            },
            _ = sleep_until(next_due.unwrap_or(deadline)), if next_due.is_some() => {}
            _ = sleep_until(deadline) => self.on_deadline()?,
        }
        Ok(())
    }

    /// Takes every complete line the source holds, charges it to the flood
    /// bucket and queues it for its due time.
    fn queue_frames<S: LineSource>(&mut self, source: &mut S) -> Result<(), End> {
        while let Some(frame) = source.next_frame() {
            let id = self.id;
            let (event, cost) = match frame {
                Frame::TooLong => (ConnectionEvent::InputTooLong { id }, 1),
                Frame::Line(bytes) => match decode(&bytes) {
                    Some(message) => {
                        let cost = flood::cost(&message);
                        (ConnectionEvent::Message { id, message }, cost)
                    }
                    None => continue,
                },
            };
            let now = Instant::now();
            let lag = match &mut self.flood {
                Some(flood) if !self.outbox.is_flood_exempt() => flood.charge(now, cost)?,
                _ => Duration::ZERO,
            };
            self.pending.push(now + lag, event);
        }
        Ok(())
    }

    /// Hands the core every queued line whose time has come, in order.
    async fn release_due(&mut self) -> Result<(), End> {
        let stop = self.outbox.stop_token();
        while let Some(event) = self.pending.pop_due(Instant::now()) {
            tokio::select! {
                sent = self.inbox.send(event) => sent.map_err(|_| End::Stopped)?,
                _ = stop.cancelled() => return Err(End::Stopped),
            }
        }
        Ok(())
    }

    /// Ends the connection when its deadline passed, or sends the PING that
    /// a quiet client must answer.
    fn on_deadline(&mut self) -> Result<(), End> {
        let now = Instant::now();
        match self.deadlines.expire(now, self.outbox.is_registered()) {
            Expiry::NotYet => Ok(()),
            Expiry::SendPing => {
                let ping = Line::new(None, "PING")
                    .trailing(&self.settings.server_name)
                    .finish();
                // A full queue stops the connection; the next step sees it.
                let _ = self.outbox.push(ping);
                Ok(())
            }
            Expiry::TimedOut(reason) => Err(End::Closed(reason)),
        }
    }
}

/// Lines charged but not handed on yet, each with the time it may go. A
/// line never overtakes an earlier one, so commands are answered in the
/// order sent even when an exempt line follows lagged ones.
struct Pending<T>(VecDeque<(Instant, T)>);

impl<T> Default for Pending<T> {
    fn default() -> Pending<T> {
        Pending(VecDeque::new())
    }
}

impl<T> Pending<T> {
    /// Queues `item` to go at `due`, or after the line before it if later.
    fn push(&mut self, due: Instant, item: T) {
        let due = self.0.back().map_or(due, |(last, _)| due.max(*last));
        self.0.push_back((due, item));
    }

    /// When the first queued line may go.
    fn next_due(&self) -> Option<Instant> {
        self.0.front().map(|(due, _)| *due)
    }

    /// The first queued line, if its time has come by `now`.
    fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.next_due()? > now {
            return None;
        }
        let item = self.0.pop_front().map(|(_, item)| item);
        // An idle client keeps no room for lines it is not sending.
        if self.0.is_empty() {
            self.0 = VecDeque::new();
        }
        item
    }
}

/// Turns a framed line into a message. Invalid UTF-8 is replaced with U+FFFD
/// and marked, so the core can refuse it under UTF8ONLY and otherwise a
/// stray byte never costs a user their line.
fn decode(bytes: &[u8]) -> Option<Message> {
    let text = String::from_utf8_lossy(bytes);
    let invalid_utf8 = matches!(text, std::borrow::Cow::Owned(_));
    match message::parse(&text) {
        Ok(parsed) => Some(Message {
            invalid_utf8,
            ..parsed.to_owned()
        }),
        Err(error) => {
            debug!(%error, "unparsable line dropped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_repaired_and_marked() {
        let message = decode(b"PRIVMSG #room :caf\xe9").expect("parses");
        assert!(message.invalid_utf8);
        assert_eq!(message.params[1], "caf\u{FFFD}");
        let message = decode("PRIVMSG #room :café".as_bytes()).expect("parses");
        assert!(!message.invalid_utf8);
    }

    #[test]
    fn a_line_due_sooner_waits_for_the_lagged_line_before_it() {
        let start = Instant::now();
        let mut pending = Pending::default();
        pending.push(start + Duration::from_secs(2), "lagged");
        pending.push(start, "exempt");
        assert_eq!(pending.pop_due(start), None);
        let later = start + Duration::from_secs(2);
        assert_eq!(pending.next_due(), Some(later));
        assert_eq!(pending.pop_due(later), Some("lagged"));
        assert_eq!(pending.pop_due(later), Some("exempt"));
        assert_eq!(pending.next_due(), None);
    }

    #[test]
    fn lines_within_the_rate_go_at_once_in_order() {
        let start = Instant::now();
        let mut pending = Pending::default();
        pending.push(start, 1);
        pending.push(start, 2);
        pending.push(start + Duration::from_secs(1), 3);
        assert_eq!(pending.pop_due(start), Some(1));
        assert_eq!(pending.pop_due(start), Some(2));
        assert_eq!(pending.pop_due(start), None);
    }

    #[test]
    fn an_emptied_queue_keeps_no_room() {
        let start = Instant::now();
        let mut pending = Pending::default();
        pending.push(start, 1);
        pending.push(start, 2);
        assert_eq!(pending.pop_due(start), Some(1));
        assert!(pending.0.capacity() > 0);
        assert_eq!(pending.pop_due(start), Some(2));
        assert_eq!(pending.0.capacity(), 0);
    }
}
