//! IP network lists, as used by NetRestrict ([PROTOCOL.md §9.7](crate::spec::protocol)).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One CIDR network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// The network `addr/prefix`, with host bits cleared. `None` if the prefix is too long.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then(|| Network {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// Whether `ip` is inside. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(*ip),
            v4 => *v4,
        };
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4((u32::from(v4) & m).into())
        }
        IpAddr::V6(v6) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6((u128::from(v6) & m).into())
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a network did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkParseError(pub String);

impl fmt::Display for NetworkParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid CIDR network {:?} (want e.g. 10.0.0.0/8)",
            self.0
        )
    }
}

impl std::error::Error for NetworkParseError {}

impl FromStr for Network {
    type Err = NetworkParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || NetworkParseError(s.to_string());
        let (addr, prefix) = s.trim().split_once('/').ok_or_else(err)?;
        let addr: IpAddr = addr.parse().map_err(|_| err())?;
        let prefix: u8 = prefix.parse().map_err(|_| err())?;
        Network::new(addr, prefix).ok_or_else(err)
    }
}

/// A list of networks; an address matches if any network contains it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetList(Vec<Network>);

impl NetList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a network.
    pub fn push(&mut self, n: Network) {
        self.0.push(n);
    }

    /// Whether any network contains `ip`.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The networks.
    pub fn networks(&self) -> &[Network] {
        &self.0
    }
}

impl FromStr for NetList {
    type Err = NetworkParseError;

    /// Comma-separated CIDR networks, as geth's `--netrestrict` takes them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(NetList)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_match_by_prefix() {
        let l: NetList = "127.0.2.0/24, 10.0.0.0/8,fd00::/8".parse().unwrap();
        assert!(l.contains(&"127.0.2.7".parse().unwrap()));
        assert!(!l.contains(&"127.0.3.1".parse().unwrap()));
        assert!(l.contains(&"10.200.1.1".parse().unwrap()));
        assert!(l.contains(&"::ffff:10.1.2.3".parse().unwrap()));
        assert!(l.contains(&"fd12::1".parse().unwrap()));
        assert!(!l.contains(&"fe80::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("10.0.0.0".parse::<Network>().is_err());
        assert_eq!(
            "10.1.2.3/8".parse::<Network>().unwrap().to_string(),
            "10.0.0.0/8"
        );
    }
}
