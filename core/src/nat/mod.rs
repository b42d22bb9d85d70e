//! NAT traversal: the `--nat` setting, geth's port-mapping policy as a sans-IO machine, and
//! the NAT-PMP wire format ([DNSDISC_NAT.md §B.2–B.4, §B.11](crate::spec::dnsdisc_nat)).
//!
//! A node behind a home router is reachable from outside only through ports the router
//! forwards, at the router's external address. With [`Nat::Upnp`], [`Nat::Pmp`] or
//! [`Nat::Any`] the [`Node`](crate::node::Node) asks the router (the *gateway*) for that address
//! and for a forwarding of its TCP and UDP ports, renews the forwardings before they expire,
//! and advertises what it was granted in its record and enode URL, as geth's server does
//! (`p2p/server_nat.go`). The decisions are [`PortMapper`]'s; the gateway I/O is the driver's:
//!
//! - the node hands out [`Request`]s ([`Node::poll_nat_request`](crate::node::Node::poll_nat_request)):
//!   ask for the external IP, map a port, unmap a port; one at a time;
//! - the driver carries each out with the mechanism configured (UPnP IGD over SSDP and SOAP, or
//!   NAT-PMP over UDP with the codec in [`pmp`]) and reports the [`Outcome`]
//!   ([`Node::handle_nat_response`](crate::node::Node::handle_nat_response));
//! - the node reports what changed as [`NatEvent`]s inside
//!   [`NodeEvent::Nat`](crate::node::NodeEvent::Nat), for the application and the logs.
//!
//! A gateway's answers are as untrusted as any peer's: [`pmp`] checks every length and field,
//! and the machine refuses an external IP nobody could reach (unspecified, loopback, multicast,
//! broadcast) and a granted port 0. Failures are never fatal: they are reported and retried on
//! geth's schedule.
//!
//! ```
//! use devp2p_core::nat::Nat;
//! assert_eq!("extip:203.0.113.7".parse::<Nat>(), Ok(Nat::ExtIp([203, 0, 113, 7].into())));
//! assert_eq!("pmp:192.168.1.1".parse::<Nat>(), Ok(Nat::Pmp(Some([192, 168, 1, 1].into()))));
//! assert_eq!("UPnP".parse::<Nat>(), Ok(Nat::Upnp));
//! assert!("stun".parse::<Nat>().is_err());
//! ```

mod mapper;
pub mod pmp;

pub use mapper::*;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

/// How a node learns the address it advertises and opens its ports: geth's `--nat`
/// ([DNSDISC_NAT.md §B.2](crate::spec::dnsdisc_nat)).
///
/// Unlike geth, whose flag defaults to `any`, the default is [`Nat::None`]: asking the LAN's
/// router for port forwardings is something an operator turns on, and a node started by a
/// test or a tool sends nothing to a router it was not told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Nat {
    /// No NAT handling: the node advertises its listen address (or
    /// [`NodeConfig::advertised_ip`](crate::node::NodeConfig::advertised_ip)).
    #[default]
    None,
    /// The node is reachable at this IP and its ports are forwarded already (by hand): the IP
    /// is advertised, nothing is asked of any router.
    ExtIp(IpAddr),
    /// UPnP Internet Gateway Device: found by SSDP search on the LAN.
    Upnp,
    /// NAT-PMP (RFC 6886) at this gateway, or, with `None`, at the default gateway of the
    /// host's routing table.
    Pmp(Option<Ipv4Addr>),
    /// UPnP and NAT-PMP both tried at once; the first gateway that answers is used (geth's
    /// `nat.Any`).
    Any,
}

impl Nat {
    /// Whether a gateway is asked for mappings (UPnP, NAT-PMP or either).
    pub fn maps_ports(&self) -> bool {
        matches!(self, Nat::Upnp | Nat::Pmp(_) | Nat::Any)
    }
}

impl fmt::Display for Nat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Nat::None => f.write_str("none"),
            Nat::ExtIp(ip) => write!(f, "extip:{ip}"),
            Nat::Upnp => f.write_str("upnp"),
            Nat::Pmp(None) => f.write_str("pmp"),
            Nat::Pmp(Some(gw)) => write!(f, "pmp:{gw}"),
            Nat::Any => f.write_str("any"),
        }
    }
}

/// The forms [`Nat`] parses, for error messages.
pub const NAT_FORMS: &str =
    "none, extip:<IP>, upnp, pmp, pmp:<gateway IPv4>, any (e.g. extip:203.0.113.7)";

/// Why a `--nat` value did not parse; its message names the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatParseError {
    /// The value as given.
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for NatParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--nat {:?}: {}; accepted: {NAT_FORMS}",
            self.value, self.problem
        )
    }
}

impl std::error::Error for NatParseError {}

impl FromStr for Nat {
    type Err = NatParseError;

    /// geth's `nat.Parse`: the mechanism name is case-insensitive and may be followed by `:`
    /// and an IP address; `off`, `auto`, `on`, `ip`, `natpmp` and `nat-pmp` are accepted as
    /// geth's aliases. geth's `stun` is refused (it asks public servers on the internet).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value = s.trim();
        let err = |problem: String| NatParseError {
            value: value.to_string(),
            problem,
        };
        let (mechanism, arg) = match value.split_once(':') {
            Some((m, a)) => (m, Some(a.trim())),
            None => (value, None),
        };
        let mechanism = mechanism.to_ascii_lowercase();
        if mechanism == "stun" {
            return Err(err(
                "STUN (asking public servers for our address) is not supported; give the \
                 address with extip:<IP>, or let the router tell it with upnp, pmp or any"
                    .into(),
            ));
        }
        let ip = match arg {
            None => None,
            Some(a) => Some(
                a.parse::<IpAddr>()
                    .map_err(|_| err(format!("{a:?} is not an IP address")))?,
            ),
        };
        match (mechanism.as_str(), ip) {
            ("" | "none" | "off", None) => Ok(Nat::None),
            ("any" | "auto" | "on", None) => Ok(Nat::Any),
            // geth parses and ignores an IP after upnp.
            ("upnp", _) => Ok(Nat::Upnp),
            ("extip" | "ip", Some(ip)) => Ok(Nat::ExtIp(ip)),
            ("extip" | "ip", None) => Err(err("the IP address is missing".into())),
            ("pmp" | "natpmp" | "nat-pmp", None) => Ok(Nat::Pmp(None)),
            ("pmp" | "natpmp" | "nat-pmp", Some(IpAddr::V4(gw))) => Ok(Nat::Pmp(Some(gw))),
            ("pmp" | "natpmp" | "nat-pmp", Some(IpAddr::V6(_))) => Err(err(
                "NAT-PMP gateways have IPv4 addresses; give the router's IPv4 address".into(),
            )),
            ("" | "none" | "off" | "any" | "auto" | "on", Some(_)) => {
                Err(err(format!("{mechanism} takes no address")))
            }
            _ => Err(err(format!("unknown mechanism {mechanism:?}"))),
        }
    }
}

/// The transport protocol of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// The RLPx listener.
    Tcp,
    /// The discovery socket.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_geth_spelling_parses_and_stun_is_refused_by_name() {
        let ok = [
            ("", Nat::None),
            ("none", Nat::None),
            ("OFF", Nat::None),
            ("any", Nat::Any),
            ("auto", Nat::Any),
            ("on", Nat::Any),
            ("upnp", Nat::Upnp),
            ("upnp:10.0.0.1", Nat::Upnp),
            ("pmp", Nat::Pmp(None)),
            ("natpmp", Nat::Pmp(None)),
            ("nat-pmp:10.0.0.1", Nat::Pmp(Some([10, 0, 0, 1].into()))),
            ("extip:1.2.3.4", Nat::ExtIp([1, 2, 3, 4].into())),
            ("ip:::1", Nat::ExtIp("::1".parse().unwrap())),
        ];
        for (s, want) in ok {
            assert_eq!(s.parse::<Nat>(), Ok(want), "{s:?}");
        }
        for bad in [
            "stun",
            "stun:1.2.3.4:3478",
            "extip",
            "extip:nope",
            "pmp:::1",
            "any:1.2.3.4",
            "bogus",
        ] {
            let e = bad.parse::<Nat>().unwrap_err();
            assert!(e.to_string().contains("accepted: none, extip"), "{e}");
        }
    }

    #[test]
    fn display_parses_back_to_the_same_setting() {
        for n in [
            Nat::None,
            Nat::Any,
            Nat::Upnp,
            Nat::Pmp(None),
            Nat::Pmp(Some([192, 168, 0, 1].into())),
            Nat::ExtIp([203, 0, 113, 9].into()),
        ] {
            assert_eq!(n.to_string().parse::<Nat>(), Ok(n));
        }
    }
}
