//! IP address classes as geth's `p2p/netutil` defines them: LAN, special-purpose, /24 subnets, and
//! the rule for which addresses one node may relay to another
//! ([PROTOCOL.md §7.8, §8.2](crate::spec::protocol)).

use std::net::{IpAddr, Ipv6Addr};

/// Whether `ip` is loopback, private (RFC 1918 / RFC 4193 ULA) or link-local. Such nodes are
/// exempt from the table's subnet limits (geth `netutil.IsLAN`).
pub fn is_lan(ip: &IpAddr) -> bool {
    if ip.is_loopback() {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unique_local() || v6.is_unicast_link_local(),
    }
}

/// IPv4 special-purpose ranges that must not be relayed (IANA registry as geth lists them in
/// `netutil.special4`): (network, prefix length).
const SPECIAL_V4: &[([u8; 4], u8)] = &[
    ([0, 0, 0, 0], 8),
    ([192, 0, 0, 0], 29),
    ([192, 0, 0, 9], 32),
    ([192, 0, 0, 170], 32),
    ([192, 0, 0, 171], 32),
    ([192, 0, 2, 0], 24),
    ([192, 31, 196, 0], 24),
    ([192, 52, 193, 0], 24),
    ([192, 88, 99, 0], 24),
    ([192, 175, 48, 0], 24),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([255, 255, 255, 255], 32),
];

/// IPv6 special-purpose ranges (geth `netutil.special6`): (network, prefix length).
const SPECIAL_V6: &[([u16; 8], u8)] = &[
    ([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
    ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
    ([0x2001, 0x1, 0, 0, 0, 0, 0, 1], 128),
    ([0x2001, 0x2, 0, 0, 0, 0, 0, 0], 48),
    ([0x2001, 0x3, 0, 0, 0, 0, 0, 0], 32),
    ([0x2001, 0x4, 0x112, 0, 0, 0, 0, 0], 48),
    ([0x2001, 0x5, 0, 0, 0, 0, 0, 0], 32),
    ([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28),
    ([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28),
    ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
    ([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
];

fn in_prefix(addr: &[u8], net: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    if addr[..full] != net[..full] {
        return false;
    }
    let rem = bits % 8;
    rem == 0 || {
        let mask = 0xffu8 << (8 - rem);
        addr[full] & mask == net[full] & mask
    }
}

/// Whether `ip` is multicast or in a special-purpose range (geth `netutil.IsSpecialNetwork`).
pub fn is_special(ip: &IpAddr) -> bool {
    if ip.is_multicast() {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => SPECIAL_V4
            .iter()
            .any(|(net, bits)| in_prefix(&v4.octets(), net, *bits)),
        IpAddr::V6(v6) => SPECIAL_V6
            .iter()
            .any(|(net, bits)| in_prefix(&v6.octets(), &Ipv6Addr::from(*net).octets(), *bits)),
    }
}

/// Why an address may not be passed on to `sender`'s peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RelayError {
    /// 0.0.0.0 or ::.
    Unspecified,
    /// Multicast or special-purpose.
    Special,
    /// Loopback, but the sender is not on loopback.
    Loopback,
    /// LAN, but the sender is not on a LAN.
    Lan,
}

/// geth's `netutil.CheckRelayIP`: may a node at `sender` tell us about a node at `addr`?
pub fn check_relay_ip(sender: &IpAddr, addr: &IpAddr) -> Result<(), RelayError> {
    if addr.is_unspecified() {
        return Err(RelayError::Unspecified);
    }
    if is_special(addr) {
        return Err(RelayError::Special);
    }
    if addr.is_loopback() && !sender.is_loopback() {
        return Err(RelayError::Loopback);
    }
    if is_lan(addr) && !is_lan(sender) {
        return Err(RelayError::Lan);
    }
    Ok(())
}

/// The /24 subnet an address belongs to, for the table's IP limits (geth applies the same
/// 24-bit prefix to IPv6 addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet24 {
    v6: bool,
    prefix: [u8; 3],
}

impl Subnet24 {
    /// The subnet of `ip`.
    pub fn of(ip: &IpAddr) -> Self {
        let (v6, o) = match ip {
            IpAddr::V4(v4) => (false, v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => (false, v4.octets()),
                None => {
                    let o = v6.octets();
                    (true, [o[0], o[1], o[2], o[3]])
                }
            },
        };
        Subnet24 {
            v6,
            prefix: [o[0], o[1], o[2]],
        }
    }

    /// The subnet as one number, ordered as the subnets are: a sort key cheaper than the
    /// derived comparison (which compares the prefix bytes with `memcmp`).
    pub(crate) fn key(&self) -> u32 {
        u32::from(self.v6) << 24
            | u32::from_be_bytes([0, self.prefix[0], self.prefix[1], self.prefix[2]])
    }
}

/// An IPv4-mapped IPv6 address as the plain IPv4 address; others unchanged.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Shorthand for the tests that build IPv4 addresses.
#[cfg(test)]
pub(crate) fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_rules_follow_geth() {
        let public = v4(8, 8, 8, 8);
        let lan = v4(192, 168, 1, 1);
        let lo = v4(127, 0, 0, 1);
        assert_eq!(check_relay_ip(&public, &v4(1, 2, 3, 4)), Ok(()));
        assert_eq!(check_relay_ip(&public, &lan), Err(RelayError::Lan));
        assert_eq!(check_relay_ip(&lan, &lan), Ok(()));
        assert_eq!(check_relay_ip(&lan, &lo), Err(RelayError::Loopback));
        assert_eq!(check_relay_ip(&lo, &lo), Ok(()));
        assert_eq!(check_relay_ip(&lo, &lan), Ok(()));
        assert_eq!(
            check_relay_ip(&public, &v4(0, 0, 0, 0)),
            Err(RelayError::Unspecified)
        );
        assert_eq!(
            check_relay_ip(&public, &v4(192, 0, 2, 7)),
            Err(RelayError::Special)
        );
        assert_eq!(
            check_relay_ip(&public, &v4(198, 19, 0, 1)),
            Err(RelayError::Special)
        );
        assert_eq!(check_relay_ip(&public, &v4(198, 20, 0, 1)), Ok(()));
        assert_eq!(
            check_relay_ip(&public, &v4(224, 0, 0, 1)),
            Err(RelayError::Special)
        );
        assert_eq!(
            check_relay_ip(&public, &"2001:db8::1".parse().unwrap()),
            Err(RelayError::Special)
        );
        assert_eq!(check_relay_ip(&public, &"2a00::1".parse().unwrap()), Ok(()));
    }

    #[test]
    fn subnets_group_by_the_first_24_bits() {
        assert_eq!(
            Subnet24::of(&v4(1, 2, 3, 4)),
            Subnet24::of(&v4(1, 2, 3, 200))
        );
        assert_ne!(Subnet24::of(&v4(1, 2, 3, 4)), Subnet24::of(&v4(1, 2, 4, 4)));
        assert_eq!(
            Subnet24::of(&"::ffff:1.2.3.4".parse().unwrap()),
            Subnet24::of(&v4(1, 2, 3, 9))
        );
        assert!(is_lan(&v4(10, 1, 1, 1)) && is_lan(&"fe80::1".parse().unwrap()));
        assert!(!is_lan(&v4(11, 1, 1, 1)));
    }
}
