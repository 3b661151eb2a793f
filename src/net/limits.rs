//! Connection admission: the server-wide client cap, the per-IP cap, and the
//! per-IP connect rate, with exemptions by address range. IPv6 addresses
//! count by their network ([`AddressKey`]). The numbers can be
//! replaced while the server runs (REHASH).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use crate::config::Config;
use crate::proto::{AddressKey, Cidr};

/// The numbers admission enforces, from `[limits]`.
#[derive(Clone, Debug, Default)]
pub struct AdmissionRules {
    pub max_clients: usize,
    pub max_per_ip: usize,
    /// New connections per address per minute; 0 = no limit.
    pub connects_per_minute: u32,
    /// Addresses that skip the two per-IP checks.
    pub exempt: Vec<Cidr>,
    /// How much of an IPv6 address names one host for the per-IP checks.
    pub ipv6_prefix_bits: u8,
}

impl AdmissionRules {
    /// The rules `[limits]` sets.
    pub fn from_config(config: &Config) -> AdmissionRules {
        AdmissionRules {
            max_clients: config.limits.max_clients,
            max_per_ip: config.limits.max_clients_per_ip,
            connects_per_minute: config.limits.connects_per_ip_per_minute,
            exempt: config.limits.exempt_ips.clone(),
            ipv6_prefix_bits: config.limits.ipv6_prefix_bits,
        }
    }
}

/// Counts open connections in total and per address.
#[derive(Debug)]
pub struct ConnectionLimits {
    open: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    rules: AdmissionRules,
    total: usize,
    per_ip: HashMap<AddressKey, usize>,
    /// Recent connects per address: a token bucket of `connects_per_minute`.
    recent: HashMap<AddressKey, ConnectTokens>,
    /// `recent` is swept of refilled entries when it grows past this.
    sweep_at: usize,
}

#[derive(Debug)]
struct ConnectTokens {
    tokens: f64,
    updated: Instant,
}

/// The fewest entries before `recent` is swept.
const SWEEP_FLOOR: usize = 1024;

/// Why a connection was refused; the text goes into its ERROR line.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("Server is full")]
    ServerFull,
    #[error("Too many connections from your IP address")]
    TooManyFromAddress,
    #[error("Connecting too fast from your IP address; try again later")]
    ConnectingTooFast,
}

/// Holds one connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct Admission {
    limits: Arc<ConnectionLimits>,
    key: AddressKey,
}

impl ConnectionLimits {
    pub fn new(rules: AdmissionRules) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            open: Mutex::new(Counts {
                rules,
                sweep_at: SWEEP_FLOOR,
                ..Counts::default()
            }),
        })
    }

    /// Replaces the numbers; connections already open stay open.
    pub fn update(&self, rules: AdmissionRules) {
        self.lock().rules = rules;
    }

    /// Admits a connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Rejection> {
        self.admit_at(ip, Instant::now())
    }

    fn admit_at(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<Admission, Rejection> {
        let mut counts = self.lock();
        if counts.total >= counts.rules.max_clients {
            return Err(Rejection::ServerFull);
        }
        let key = AddressKey::new(ip, counts.rules.ipv6_prefix_bits);
        let exempt = counts.rules.exempt.iter().any(|range| range.contains(ip));
        if !exempt {
            let max_per_ip = counts.rules.max_per_ip;
            if counts.per_ip.get(&key).copied().unwrap_or(0) >= max_per_ip {
                return Err(Rejection::TooManyFromAddress);
            }
            counts.take_connect_token(key, now)?;
        }
        *counts.per_ip.entry(key).or_insert(0) += 1;
        counts.total += 1;
        Ok(Admission {
            limits: Arc::clone(self),
            key,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Counts {
    fn take_connect_token(&mut self, key: AddressKey, now: Instant) -> Result<(), Rejection> {
        let per_minute = self.rules.connects_per_minute;
        if per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(per_minute);
        let refill = |entry: &ConnectTokens| {
            let elapsed = now.saturating_duration_since(entry.updated).as_secs_f64();
            (entry.tokens + elapsed * capacity / 60.0).min(capacity)
        };
        if self.recent.len() >= self.sweep_at {
            self.recent.retain(|_, entry| refill(entry) < capacity);
            self.sweep_at = (self.recent.len() * 2).max(SWEEP_FLOOR);
        }
        let entry = self.recent.entry(key).or_insert(ConnectTokens {
            tokens: capacity,
            updated: now,
        });
        let tokens = refill(entry);
        entry.updated = now;
        if tokens < 1.0 {
            entry.tokens = tokens;
            return Err(Rejection::ConnectingTooFast);
        }
        entry.tokens = tokens - 1.0;
        Ok(())
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut counts = self.limits.lock();
        counts.total -= 1;
        if let Some(n) = counts.per_ip.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rules(max_clients: usize, max_per_ip: usize, per_minute: u32) -> AdmissionRules {
        AdmissionRules {
            max_clients,
            max_per_ip,
            connects_per_minute: per_minute,
            exempt: Vec::new(),
            ipv6_prefix_bits: 64,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn per_ip_cap_frees_a_place_when_a_connection_ends() {
        let limits = ConnectionLimits::new(rules(10, 2, 0));
        let a = limits.admit(ip("127.0.0.1")).unwrap();
        let _b = limits.admit(ip("127.0.0.1")).unwrap();
        assert_eq!(
            limits.admit(ip("127.0.0.1")).unwrap_err(),
            Rejection::TooManyFromAddress
        );
        assert!(limits.admit(ip("127.0.0.2")).is_ok());
        drop(a);
        assert!(limits.admit(ip("127.0.0.1")).is_ok());
    }

    #[test]
    fn ipv6_addresses_of_one_network_share_the_per_ip_limits() {
        let limits = ConnectionLimits::new(rules(10, 2, 3));
        let _a = limits.admit(ip("2001:db8:0:1::1")).unwrap();
        let _b = limits.admit(ip("2001:db8:0:1::2")).unwrap();
        assert_eq!(
            limits.admit(ip("2001:db8:0:1:ffff::3")).unwrap_err(),
            Rejection::TooManyFromAddress
        );
        let _c = limits.admit(ip("2001:db8:0:2::1")).unwrap();
        drop(_a);
        drop(_b);
        // The rate allows the network three connects, not three per address.
        let _d = limits.admit(ip("2001:db8:0:1::66")).unwrap();
        assert_eq!(
            limits.admit(ip("2001:db8:0:1::77")).unwrap_err(),
            Rejection::ConnectingTooFast
        );
    }

    #[test]
    fn server_cap_counts_every_address() {
        let limits = ConnectionLimits::new(rules(1, 5, 0));
        let _a = limits.admit(ip("127.0.0.1")).unwrap();
        assert_eq!(
            limits.admit(ip("127.0.0.2")).unwrap_err(),
            Rejection::ServerFull
        );
    }

    #[test]
    fn connect_rate_allows_a_burst_then_one_per_interval() {
        let limits = ConnectionLimits::new(rules(100, 100, 3));
        let start = Instant::now();
        let from = ip("192.0.2.1");
        for _ in 0..3 {
            drop(limits.admit_at(from, start).unwrap());
        }
        assert_eq!(
            limits.admit_at(from, start).unwrap_err(),
            Rejection::ConnectingTooFast
        );
        assert!(limits.admit_at(ip("192.0.2.2"), start).is_ok());
        // Three a minute: one more every twenty seconds.
        let later = start + Duration::from_secs(20);
        drop(limits.admit_at(from, later).unwrap());
        assert_eq!(
            limits.admit_at(from, later).unwrap_err(),
            Rejection::ConnectingTooFast
        );
    }

    #[test]
    fn exempt_ranges_skip_the_per_ip_checks_but_not_the_server_cap() {
        let mut exempted = rules(3, 1, 1);
        exempted.exempt = vec!["10.0.0.0/8".parse().unwrap()];
        let limits = ConnectionLimits::new(exempted);
        let _a = limits.admit(ip("10.1.1.1")).unwrap();
        let _b = limits.admit(ip("10.1.1.1")).unwrap();
        let _c = limits.admit(ip("10.1.1.1")).unwrap();
        assert_eq!(
            limits.admit(ip("10.1.1.1")).unwrap_err(),
            Rejection::ServerFull
        );
    }

    #[test]
    fn updated_rules_apply_to_the_next_connection() {
        let limits = ConnectionLimits::new(rules(10, 1, 0));
        let _a = limits.admit(ip("127.0.0.1")).unwrap();
        assert!(limits.admit(ip("127.0.0.1")).is_err());
        limits.update(rules(10, 2, 0));
        assert!(limits.admit(ip("127.0.0.1")).is_ok());
    }

    #[test]
    fn the_rate_table_is_swept_of_addresses_that_refilled() {
        let limits = ConnectionLimits::new(rules(1 << 20, 10, 60));
        let start = Instant::now();
        for n in 0..2000u32 {
            let from = IpAddr::from(n.to_be_bytes());
            drop(limits.admit_at(from, start).unwrap());
        }
        let later = start + Duration::from_secs(120);
        for n in 0..2000u32 {
            let from = IpAddr::from((n + 1_000_000).to_be_bytes());
            drop(limits.admit_at(from, later).unwrap());
        }
        assert!(limits.lock().recent.len() < 3000);
    }
}
