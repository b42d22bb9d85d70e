//! enode URLs: `enode://<128 hex>@<host>:<tcp>[?discport=<udp>]`
//! ([PROTOCOL.md §1.4](crate::spec::protocol)).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::identity::{KeyError, NodeId, NodePublicKey};

/// Where a node can be reached: an IP literal, or a DNS name that is resolved when it is dialled.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Host {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A DNS name, kept unresolved as geth does.
    Dns(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Dns(name) => f.write_str(name),
        }
    }
}

/// A parsed enode URL: a node's public key and, unless it is the key-only form, where to reach
/// it. Parsing accepts what geth accepts (an IP literal or a DNS name, `?discport=` for a UDP
/// port other than the TCP one); printing gives the canonical form back.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use devp2p_core::Enode;
///
/// let key = "1dd9d65c4552b5eb43d5ad55a2ee3f56c6cbc1c64a5c8d659f51fcd51bace243\
///            51232b8d7821617d2b29b54b81cdefb9b3e9c37d7fd5f63270bcc9e1a6f6a439";
/// let url = format!("enode://{key}@10.3.58.6:30303?discport=30301");
/// let enode: Enode = url.parse()?;
/// assert_eq!(enode.ip(), Some(IpAddr::V4(Ipv4Addr::new(10, 3, 58, 6))));
/// assert_eq!((enode.tcp_port, enode.udp_port), (30303, 30301));
/// assert_eq!(enode.to_string(), url);
///
/// // One port for both: no `discport` in the text.
/// let local = Enode::new(enode.public_key, Ipv4Addr::LOCALHOST.into(), 30303, 30303);
/// assert_eq!(local.to_string(), format!("enode://{key}@127.0.0.1:30303"));
///
/// // The key-only form names a node without saying where it is (discovery can find it).
/// let key_only: Enode = format!("enode://{key}").parse()?;
/// assert_eq!((&key_only.host, key_only.id()), (&None, enode.id()));
/// # Ok::<(), devp2p_core::EnodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Enode {
    /// The node's public key.
    pub public_key: NodePublicKey,
    /// Its address; `None` for the key-only form `enode://<hex>`.
    pub host: Option<Host>,
    /// TCP (RLPx) port; 0 when unknown.
    pub tcp_port: u16,
    /// UDP (discovery) port; equals the TCP port unless `discport` says otherwise.
    pub udp_port: u16,
}

/// Why an enode URL did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnodeError {
    /// The text does not start with `enode://`.
    MissingScheme,
    /// The public key is not 128 hex characters of a point on the curve.
    InvalidPublicKey(KeyError),
    /// The host part is empty or not a valid IP literal or DNS name.
    InvalidHost(String),
    /// The port after the host is missing or not a number in 0..=65535.
    InvalidPort(String),
    /// The `discport` query parameter is not a number in 0..=65535.
    InvalidDiscport(String),
    /// There is something after the port other than a query (a path, say).
    Trailing(String),
}

impl fmt::Display for EnodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnodeError::MissingScheme => f.write_str("not an enode URL: missing 'enode://' prefix"),
            EnodeError::InvalidPublicKey(e) => {
                write!(
                    f,
                    "invalid public key ({e}; want 128 hex characters of a curve point)"
                )
            }
            EnodeError::InvalidHost(h) => write!(f, "invalid host {h:?}"),
            EnodeError::InvalidPort(p) => write!(f, "invalid port {p:?}"),
            EnodeError::InvalidDiscport(p) => write!(f, "invalid discport {p:?} in query"),
            EnodeError::Trailing(t) => write!(f, "unexpected {t:?} after the address"),
        }
    }
}

impl std::error::Error for EnodeError {}

impl Enode {
    /// An enode for a key at an IP address, with its TCP (RLPx) and UDP (discovery) ports.
    /// They may differ; the text form then carries the UDP port as `?discport=`.
    pub fn new(public_key: NodePublicKey, ip: IpAddr, tcp_port: u16, udp_port: u16) -> Self {
        Self {
            public_key,
            host: Some(Host::Ip(ip)),
            tcp_port,
            udp_port,
        }
    }

    /// The node id.
    pub fn id(&self) -> NodeId {
        self.public_key.id()
    }

    /// The IP address, if the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match &self.host {
            Some(Host::Ip(ip)) => Some(*ip),
            _ => None,
        }
    }

    /// The TCP socket address, if the host is an IP literal.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.ip().map(|ip| SocketAddr::new(ip, self.tcp_port))
    }

    /// The UDP socket address, if the host is an IP literal.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.ip().map(|ip| SocketAddr::new(ip, self.udp_port))
    }
}

/// The URL scheme and separator, as we print it.
const SCHEME: &str = "enode://";

/// `s` without `prefix`, compared ignoring ASCII case.
fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Whether `s` starts with the enode scheme, in any case.
pub fn has_enode_scheme(s: &str) -> bool {
    strip_prefix_ignore_case(s, SCHEME).is_some()
}

fn parse_port(s: &str) -> Option<u16> {
    // u16::from_str accepts a leading '+'; a URL port is digits only.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn valid_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').enumerate().all(|(i, label)| {
            // A trailing dot (fully qualified name) leaves one empty last label.
            (label.is_empty() && i > 0 && s.ends_with('.') && i == s.split('.').count() - 1)
                || (!label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    && !label.starts_with('-')
                    && !label.ends_with('-'))
        })
}

impl FromStr for Enode {
    type Err = EnodeError;

    fn from_str(s: &str) -> Result<Self, EnodeError> {
        // The scheme is case-insensitive, as in geth (its URL parser lower-cases it, and its
        // key-only pattern is case-insensitive): `ENODE://…` is the same URL.
        let rest = strip_prefix_ignore_case(s, SCHEME).ok_or(EnodeError::MissingScheme)?;
        let (key_hex, addr) = match rest.split_once('@') {
            Some((k, a)) => (k, Some(a)),
            None => (rest, None),
        };
        let public_key = NodePublicKey::from_hex(key_hex).map_err(EnodeError::InvalidPublicKey)?;
        let Some(addr) = addr else {
            return Ok(Enode {
                public_key,
                host: None,
                tcp_port: 0,
                udp_port: 0,
            });
        };
        let (hostport, query) = match addr.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (addr, None),
        };
        let (host, port_str) = if let Some(after) = hostport.strip_prefix('[') {
            let (v6, tail) = after
                .split_once(']')
                .ok_or_else(|| EnodeError::InvalidHost(hostport.into()))?;
            let ip: std::net::Ipv6Addr =
                v6.parse().map_err(|_| EnodeError::InvalidHost(v6.into()))?;
            let port = tail
                .strip_prefix(':')
                .ok_or_else(|| EnodeError::InvalidPort(tail.into()))?;
            (Host::Ip(IpAddr::V6(ip)), port)
        } else {
            let (h, p) = hostport
                .rsplit_once(':')
                .ok_or_else(|| EnodeError::InvalidPort(String::new()))?;
            let host = match h.parse::<std::net::Ipv4Addr>() {
                Ok(ip) => Host::Ip(IpAddr::V4(ip)),
                Err(_) if valid_dns_name(h) && !h.contains(':') => Host::Dns(h.to_string()),
                Err(_) => return Err(EnodeError::InvalidHost(h.into())),
            };
            (host, p)
        };
        if let Some(slash) = port_str.find('/') {
            return Err(EnodeError::Trailing(port_str[slash..].into()));
        }
        let tcp_port =
            parse_port(port_str).ok_or_else(|| EnodeError::InvalidPort(port_str.into()))?;
        let mut udp_port = tcp_port;
        if let Some(q) = query {
            for pair in q.split('&') {
                if let Some(v) = pair.strip_prefix("discport=") {
                    udp_port =
                        parse_port(v).ok_or_else(|| EnodeError::InvalidDiscport(v.into()))?;
                }
            }
        }
        Ok(Enode {
            public_key,
            host: Some(host),
            tcp_port,
            udp_port,
        })
    }
}

impl fmt::Display for Enode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}", self.public_key)?;
        if let Some(host) = &self.host {
            write!(f, "@{host}:{}", self.tcp_port)?;
            if self.udp_port != self.tcp_port {
                write!(f, "?discport={}", self.udp_port)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "1dd9d65c4552b5eb43d5ad55a2ee3f56c6cbc1c64a5c8d659f51fcd51bace24351232b8d7821617d2b29b54b81cdefb9b3e9c37d7fd5f63270bcc9e1a6f6a439";

    #[test]
    fn the_scheme_is_case_insensitive_as_in_geth() {
        let lower: Enode = format!("enode://{KEY}@10.3.58.6:30303").parse().unwrap();
        for scheme in ["ENODE://", "Enode://", "eNoDe://"] {
            let other: Enode = format!("{scheme}{KEY}@10.3.58.6:30303").parse().unwrap();
            assert_eq!(other, lower, "{scheme}");
            assert!(has_enode_scheme(&format!("{scheme}{KEY}")));
        }
        // Printed in the lower case, always.
        assert!(lower.to_string().starts_with("enode://"));
        for bad in ["enod://", "enode:/", "", "é", "enodé://"] {
            assert_eq!(
                format!("{bad}{KEY}@10.3.58.6:30303").parse::<Enode>(),
                Err(EnodeError::MissingScheme),
                "{bad}"
            );
        }
    }
}
