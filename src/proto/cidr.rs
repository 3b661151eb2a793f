//! Address ranges such as `10.0.0.0/8` or `2001:db8::/32`, for connection
//! limit exemptions and D-lines. A bare address is a range of one.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address and a prefix length; the bits past the prefix are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a range did not parse; the text goes into configuration errors.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an address or a range such as \"10.0.0.0/8\" or \"2001:db8::/32\"")]
pub struct BadCidr(String);

impl Cidr {
    /// Does `ip` fall in the range? IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(network)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(network), u128::from(ip), self.prefix)
            }
            _ => false,
        }
    }
}

/// What every per-address limit counts by: an IPv4 address, or the IPv6
/// network of `[limits] ipv6_prefix_bits` around an address (one host
/// normally holds a whole /64, so counting single IPv6 addresses would let
/// it sidestep every limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressKey(IpAddr);

impl AddressKey {
    pub fn new(ip: IpAddr, ipv6_prefix_bits: u8) -> AddressKey {
        match canonical(ip) {
            IpAddr::V6(v6) => {
                let bits = u32::from(ipv6_prefix_bits.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                AddressKey(IpAddr::from(std::net::Ipv6Addr::from(
                    u128::from(v6) & mask,
                )))
            }
            v4 => AddressKey(v4),
        }
    }

    /// The address with the bits past the prefix cleared.
    pub fn network(self) -> IpAddr {
        self.0
    }
}

impl fmt::Display for AddressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// True when the first `bits` bits of `a` and `b` agree.
fn prefix_eq(a: u128, b: u128, bits: u8) -> bool {
    if bits == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - u32::from(bits));
    a & mask == b & mask
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as plain IPv4, so one rule covers both.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(text: &str) -> Result<Cidr, BadCidr> {
        let bad = || BadCidr(text.to_owned());
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network = canonical(address.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                digits
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl TryFrom<String> for Cidr {
    type Error = BadCidr;

    fn try_from(text: String) -> Result<Cidr, BadCidr> {
        text.parse()
    }
}

impl From<Cidr> for String {
    fn from(cidr: Cidr) -> String {
        cidr.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_contain_the_addresses_under_their_prefix() {
        assert!(cidr("10.0.0.0/8").contains(ip("10.200.1.2")));
        assert!(!cidr("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(cidr("192.168.1.7").contains(ip("192.168.1.7")));
        assert!(!cidr("192.168.1.7").contains(ip("192.168.1.8")));
        assert!(cidr("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(cidr("2001:db8::/32").contains(ip("2001:db8:1::5")));
        assert!(!cidr("2001:db8::/32").contains(ip("2001:db9::5")));
        assert!(!cidr("10.0.0.0/8").contains(ip("2001:db8::1")));
    }

    #[test]
    fn mapped_ipv6_counts_as_ipv4() {
        assert!(cidr("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")));
    }

    #[test]
    fn ipv6_addresses_in_one_prefix_share_a_key_and_ipv4_keeps_every_bit() {
        let key = |text: &str, bits| AddressKey::new(ip(text), bits);
        assert_eq!(key("2001:db8:1:2::1", 64), key("2001:db8:1:2:ffff::9", 64));
        assert_ne!(key("2001:db8:1:2::1", 64), key("2001:db8:1:3::1", 64));
        assert_eq!(key("2001:db8:1:2::1", 64).to_string(), "2001:db8:1:2::");
        assert_ne!(key("2001:db8::1", 128), key("2001:db8::2", 128));
        assert_eq!(key("2001:db8::1", 0), key("fe80::1", 0));
        assert_ne!(key("192.0.2.1", 64), key("192.0.2.2", 64));
        assert_eq!(key("::ffff:192.0.2.1", 64), key("192.0.2.1", 64));
    }

    #[test]
    fn nonsense_is_refused() {
        for text in [
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "::/129",
            "a/b",
            "1.2.3.4/+8",
        ] {
            assert!(text.parse::<Cidr>().is_err(), "{text}");
        }
    }
}
