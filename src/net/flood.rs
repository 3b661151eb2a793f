//! Flood control: a token bucket per client. A client over its rate is not
//! cut off at once; its next command simply waits (fake lag).

use tokio::time::{Duration, Instant};

/// Tokens refill at `rate` per second up to `burst`; each line takes one.
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

    /// Takes one token; returns how long the caller must wait before the
    /// line may be processed (zero when within the rate).
    pub fn take(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.updated = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_passes_then_lines_wait_for_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 3, start);
        for _ in 0..3 {
            assert_eq!(bucket.take(start), Duration::ZERO);
        }
        assert_eq!(bucket.take(start), Duration::from_millis(500));
        assert_eq!(
            bucket.take(start + Duration::from_millis(500)),
            Duration::from_millis(500)
        );
        assert_eq!(bucket.take(start + Duration::from_secs(10)), Duration::ZERO);
    }
}
