//! The deadlines a connection keeps on its own, so the core never keeps
//! timers: registration must finish in time, and a registered client that
//! goes quiet is sent a PING and must answer (with anything) in time.

use tokio::time::{Duration, Instant};

use super::connection::ConnectionSettings;

/// When a connection's next deadline falls, and what it then means.
#[derive(Debug)]
pub(super) struct Deadlines {
    connected_at: Instant,
    /// When the client last sent anything.
    last_heard: Instant,
    /// When the server sent its PING, while unanswered.
    ping_sent: Option<Instant>,
    registration_timeout: Duration,
    ping_interval: Duration,
    ping_timeout: Duration,
}

/// What a deadline that fell asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Expiry {
    /// Nothing yet: the deadline moved meanwhile.
    NotYet,
    /// The client went quiet: send it a PING.
    SendPing,
    /// The client took too long; the connection ends for this reason.
    TimedOut(String),
}

impl Deadlines {
    pub(super) fn new(settings: &ConnectionSettings, now: Instant) -> Deadlines {
        Deadlines {
            connected_at: now,
            last_heard: now,
            ping_sent: None,
            registration_timeout: settings.registration_timeout,
            ping_interval: settings.ping_interval,
            ping_timeout: settings.ping_timeout,
        }
    }

    /// The client sent something: it is alive, any PING is answered.
    pub(super) fn heard_from(&mut self, now: Instant) {
        self.last_heard = now;
        self.ping_sent = None;
    }

    /// The next moment [`Deadlines::expire`] must be asked.
    pub(super) fn next(&self, registered: bool) -> Instant {
        if !registered {
            self.connected_at + self.registration_timeout
        } else if let Some(sent) = self.ping_sent {
            sent + self.ping_timeout
        } else {
            self.last_heard + self.ping_interval
        }
    }

    /// What the deadline that fell at `now` asks for.
    pub(super) fn expire(&mut self, now: Instant, registered: bool) -> Expiry {
        if !registered {
            if now >= self.connected_at + self.registration_timeout {
                return Expiry::TimedOut("Registration timed out".to_owned());
            }
        } else if self.ping_sent.is_some() {
            let waited = self.ping_interval + self.ping_timeout;
            return Expiry::TimedOut(format!("Ping timeout: {} seconds", waited.as_secs()));
        } else if now >= self.last_heard + self.ping_interval {
            self.ping_sent = Some(now);
            return Expiry::SendPing;
        }
        Expiry::NotYet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadlines(start: Instant) -> Deadlines {
        let settings = ConnectionSettings {
            server_name: "irc.test".to_owned(),
            registration_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(120),
            ping_timeout: Duration::from_secs(60),
            flood: None,
            sendq_bytes: 1024,
        };
        Deadlines::new(&settings, start)
    }

    #[test]
    fn an_unregistered_client_times_out_from_its_connect() {
        let start = Instant::now();
        let mut deadlines = deadlines(start);
        deadlines.heard_from(start + Duration::from_secs(20));
        let due = start + Duration::from_secs(30);
        assert_eq!(deadlines.next(false), due);
        assert_eq!(
            deadlines.expire(due - Duration::from_secs(1), false),
            Expiry::NotYet
        );
        assert_eq!(
            deadlines.expire(due, false),
            Expiry::TimedOut("Registration timed out".to_owned())
        );
    }

    #[test]
    fn a_quiet_client_is_pinged_then_timed_out() {
        let start = Instant::now();
        let mut deadlines = deadlines(start);
        let ping_at = start + Duration::from_secs(120);
        assert_eq!(deadlines.next(true), ping_at);
        assert_eq!(deadlines.expire(ping_at, true), Expiry::SendPing);
        let give_up = ping_at + Duration::from_secs(60);
        assert_eq!(deadlines.next(true), give_up);
        assert_eq!(
            deadlines.expire(give_up, true),
            Expiry::TimedOut("Ping timeout: 180 seconds".to_owned())
        );
    }

    #[test]
    fn anything_the_client_sends_answers_the_ping() {
        let start = Instant::now();
        let mut deadlines = deadlines(start);
        let ping_at = start + Duration::from_secs(120);
        assert_eq!(deadlines.expire(ping_at, true), Expiry::SendPing);
        let answered = ping_at + Duration::from_secs(5);
        deadlines.heard_from(answered);
        assert_eq!(deadlines.next(true), answered + Duration::from_secs(120));
        assert_eq!(
            deadlines.expire(ping_at + Duration::from_secs(60), true),
            Expiry::NotYet
        );
    }
}
