//! Flood control: a token bucket per client. A client over its rate is not
//! cut off at once; its lines wait (fake lag). Lines are charged as they
//! arrive, so the debt is exactly the backlog of lines still waiting, and a
//! client whose backlog passes a bound is cut off with "Excess Flood".

use tokio::time::{Duration, Instant};

use super::connection::FloodLimits;
use crate::proto::Message;

/// Tokens refill at `rate` per second up to `burst`; each line takes one per
/// target. Tokens go negative while lines wait.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            rate,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            updated: now,
        }
    }

    /// Takes `cost` tokens; returns how long after `now` the line may be
    /// processed (zero when within the rate).
    pub fn take(&mut self, now: Instant, cost: u32) -> Duration {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.updated = now;
        self.tokens -= f64::from(cost);
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// Lines charged but not yet covered by the rate, as of the last take.
    pub fn backlog(&self) -> f64 {
        (-self.tokens).max(0.0)
    }
}

/// One connection's flood control: its bucket and how far behind the rate
/// its lines may fall.
#[derive(Debug)]
pub(super) struct FloodControl {
    bucket: TokenBucket,
    max_backlog: u32,
}

/// The quit reason of a client cut off for flooding, here or by the core;
/// the core counts the disconnects that carry it.
pub const EXCESS_FLOOD: &str = "Excess Flood";

/// The lines waiting behind the rate passed `[flood] max_backlog`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ExcessFlood;

impl FloodControl {
    pub(super) fn new(limits: FloodLimits, now: Instant) -> FloodControl {
        FloodControl {
            bucket: TokenBucket::new(limits.lines_per_second, limits.burst, now),
            max_backlog: limits.max_backlog,
        }
    }

    /// Charges a line costing `cost` that arrived at `now`; returns how long
    /// it must wait, or [`ExcessFlood`] when the backlog passed its bound.
    pub(super) fn charge(&mut self, now: Instant, cost: u32) -> Result<Duration, ExcessFlood> {
        let lag = self.bucket.take(now, cost);
        if self.bucket.backlog() > f64::from(self.max_backlog) {
            return Err(ExcessFlood);
        }
        Ok(lag)
    }
}

/// What a line costs: one token per target of PRIVMSG and NOTICE, so a
/// message to four nicks weighs as much as four messages; one otherwise.
pub fn cost(message: &Message) -> u32 {
    match message.command.as_str() {
        "PRIVMSG" | "NOTICE" => {
            let targets = message
                .param(0)
                .split(',')
                .filter(|target| !target.is_empty())
                .count();
            u32::try_from(targets).unwrap_or(u32::MAX).max(1)
        }
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::message::parse;

    #[test]
    fn burst_passes_then_lines_wait_for_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 3, start);
        for _ in 0..3 {
            assert_eq!(bucket.take(start, 1), Duration::ZERO);
        }
        assert_eq!(bucket.take(start, 1), Duration::from_millis(500));
        assert_eq!(bucket.take(start, 1), Duration::from_millis(1000));
        assert_eq!(bucket.backlog(), 2.0);
        assert_eq!(
            bucket.take(start + Duration::from_secs(10), 1),
            Duration::ZERO
        );
        assert_eq!(bucket.backlog(), 0.0);
    }

    #[test]
    fn a_line_to_several_targets_costs_one_token_each() {
        let cost_of = |line: &str| cost(&parse(line).unwrap().to_owned());
        assert_eq!(cost_of("PRIVMSG a,b,#c :hi"), 3);
        assert_eq!(cost_of("notice a,,b :hi"), 2);
        assert_eq!(cost_of("PRIVMSG"), 1);
        assert_eq!(cost_of("JOIN #a,#b,#c"), 1);
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1.0, 2, start);
        assert_eq!(bucket.take(start, 4), Duration::from_secs(2));
        assert_eq!(bucket.backlog(), 2.0);
    }

    #[test]
    fn lines_wait_until_the_backlog_passes_its_bound() {
        let start = Instant::now();
        let limits = FloodLimits {
            lines_per_second: 1.0,
            burst: 2,
            max_backlog: 2,
        };
        let mut flood = FloodControl::new(limits, start);
        assert_eq!(flood.charge(start, 2), Ok(Duration::ZERO));
        assert_eq!(flood.charge(start, 1), Ok(Duration::from_secs(1)));
        assert_eq!(flood.charge(start, 1), Ok(Duration::from_secs(2)));
        assert_eq!(flood.charge(start, 1), Err(ExcessFlood));
        let later = start + Duration::from_secs(10);
        let mut flood = FloodControl::new(limits, start);
        assert_eq!(flood.charge(start, 4), Ok(Duration::from_secs(2)));
        assert_eq!(flood.charge(later, 1), Ok(Duration::ZERO));
    }
}
