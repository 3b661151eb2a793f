//! Host cloaking: other users see a keyed hash of a client's address
//! instead of the address. A cloak has two labels and a suffix,
//! `<address>.<network>.<suffix>`: the first hashes the address (an IPv6
//! address by its `[limits] ipv6_prefix_bits` network, as every per-IP
//! limit counts it), the second its /24 or /48, so a room can ban one
//! address or its network by cloak. The key is the configured secret, or
//! one generated once and kept in a file, so cloaks outlive restarts.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::proto::AddressKey;

/// Turns addresses into cloaked hosts.
pub struct Cloak {
    key: hmac::Key,
    suffix: String,
    ipv6_prefix_bits: u8,
}

impl std::fmt::Debug for Cloak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Cloak")
            .field("suffix", &self.suffix)
            .finish()
    }
}

/// The networks the second label hashes: a /24 (IPv4) or a /48 (IPv6).
const IPV4_NETWORK_BITS: u32 = 24;
const IPV6_NETWORK_BITS: u8 = 48;
/// Bytes of each hash shown: 40 bits, eight base32 letters.
const LABEL_BYTES: usize = 5;

impl Cloak {
    pub fn new(secret: &str, suffix: &str, ipv6_prefix_bits: u8) -> Cloak {
        Cloak {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
            suffix: suffix.to_owned(),
            ipv6_prefix_bits,
        }
    }

    /// The cloaked host for `ip`.
    pub fn host(&self, ip: IpAddr) -> String {
        let address = AddressKey::new(ip, self.ipv6_prefix_bits).network();
        let network = match address {
            IpAddr::V4(v4) => {
                let mask = u32::MAX << (32 - IPV4_NETWORK_BITS);
                IpAddr::from(std::net::Ipv4Addr::from(u32::from(v4) & mask))
            }
            v6 => AddressKey::new(v6, IPV6_NETWORK_BITS).network(),
        };
        format!(
            "{}.{}.{}",
            self.label(b'a', address),
            self.label(b'n', network),
            self.suffix
        )
    }

    fn label(&self, kind: u8, ip: IpAddr) -> String {
        let mut data = vec![kind];
        match ip {
            IpAddr::V4(v4) => data.extend_from_slice(&v4.octets()),
            IpAddr::V6(v6) => data.extend_from_slice(&v6.octets()),
        }
        let tag = hmac::sign(&self.key, &data);
        base32(&tag.as_ref()[..LABEL_BYTES])
    }
}

/// Lowercase RFC 4648 base32 without padding: letters and digits only, so
/// a cloak is a valid host name.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut text = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            text.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        text.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    text
}

/// A fresh random key, as hex.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    // The system's random source failing leaves no safe key to use.
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random number generator works");
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The key kept in `path`, made and written there (readable by the owner
/// only) when the file does not exist yet.
pub fn load_or_create_secret(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the cloaking key file {} is empty", path.display()),
            ));
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(std::io::Error::new(
                error.kind(),
                format!(
                    "cannot read the cloaking key file {}: {error}",
                    path.display()
                ),
            ));
        }
    }
    let secret = random_secret();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(path)
        .and_then(|mut file| file.write_all(format!("{secret}\n").as_bytes()));
    written.map_err(|error| {
        std::io::Error::new(
            error.kind(),
            format!(
                "cannot create the cloaking key file {}: {error}",
                path.display()
            ),
        )
    })?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_cloak_is_stable_for_a_key_and_differs_between_keys() {
        let cloak = Cloak::new("key one", "ip", 64);
        let host = cloak.host(ip("192.0.2.7"));
        assert_eq!(host, cloak.host(ip("192.0.2.7")));
        assert_eq!(host, Cloak::new("key one", "ip", 64).host(ip("192.0.2.7")));
        assert_ne!(host, Cloak::new("key two", "ip", 64).host(ip("192.0.2.7")));
        assert!(!host.contains("192"), "{host}");
        let labels: Vec<&str> = host.split('.').collect();
        assert_eq!(labels.len(), 3, "{host}");
        assert_eq!(labels[0].len(), 8);
        assert_eq!(labels[2], "ip");
        assert!(
            host.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.')
        );
    }

    #[test]
    fn neighbours_share_the_network_label_only() {
        let cloak = Cloak::new("k", "ip", 64);
        let a = cloak.host(ip("192.0.2.7"));
        let b = cloak.host(ip("192.0.2.8"));
        let other = cloak.host(ip("198.51.100.7"));
        assert_ne!(a, b);
        assert_eq!(a.split('.').nth(1), b.split('.').nth(1));
        assert_ne!(a.split('.').nth(1), other.split('.').nth(1));
        // One IPv6 /64 is one host, as for the per-IP limits.
        assert_eq!(
            cloak.host(ip("2001:db8:1:2::1")),
            cloak.host(ip("2001:db8:1:2::ffff"))
        );
        assert_eq!(cloak.host(ip("::ffff:192.0.2.7")), a, "mapped IPv4 is IPv4");
    }

    #[test]
    fn base32_spells_every_five_bits() {
        assert_eq!(base32(&[0, 0, 0, 0, 0]), "aaaaaaaa");
        assert_eq!(base32(&[0xff; 5]), "77777777");
        assert_eq!(base32(b"f"), "my");
    }

    #[test]
    fn a_generated_key_is_kept_and_read_back() {
        let dir = std::env::temp_dir().join(format!("rookery-cloak-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cloak.key");
        let made = load_or_create_secret(&path).unwrap();
        assert_eq!(made.len(), 64);
        assert_eq!(load_or_create_secret(&path).unwrap(), made);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
