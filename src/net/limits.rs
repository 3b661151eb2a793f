//! Connection admission: the server-wide client cap and the per-IP cap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open connections in total and per address.
#[derive(Debug)]
pub struct ConnectionLimits {
    max_clients: usize,
    max_per_ip: usize,
    open: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was refused; the text goes into its ERROR line.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Server is full")]
    ServerFull,
    #[error("Too many connections from your IP address")]
    TooManyFromAddress,
}

/// Holds one connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct Admission {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl ConnectionLimits {
    pub fn new(max_clients: usize, max_per_ip: usize) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            max_clients,
            max_per_ip,
            open: Mutex::new(Counts::default()),
        })
    }

    /// Admits a connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Refusal> {
        let mut counts = self.lock();
        if counts.total >= self.max_clients {
            return Err(Refusal::ServerFull);
        }
        let from_ip = counts.per_ip.entry(ip).or_insert(0);
        if *from_ip >= self.max_per_ip {
            return Err(Refusal::TooManyFromAddress);
        }
        *from_ip += 1;
        counts.total += 1;
        Ok(Admission {
            limits: Arc::clone(self),
            ip,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut counts = self.limits.lock();
        counts.total -= 1;
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_cap_frees_a_place_when_a_connection_ends() {
        let limits = ConnectionLimits::new(10, 2);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = limits.admit(ip).unwrap();
        let _b = limits.admit(ip).unwrap();
        assert_eq!(limits.admit(ip).unwrap_err(), Refusal::TooManyFromAddress);
        assert!(limits.admit("127.0.0.2".parse().unwrap()).is_ok());
        drop(a);
        assert!(limits.admit(ip).is_ok());
    }

    #[test]
    fn server_cap_counts_every_address() {
        let limits = ConnectionLimits::new(1, 5);
        let _a = limits.admit("127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(
            limits.admit("127.0.0.2".parse().unwrap()).unwrap_err(),
            Refusal::ServerFull
        );
    }
}
