//! The node's NAT traversal: its [`PortMapper`], the requests it hands the driver, and what
//! the gateway's answers change in the advertised endpoint
//! ([DNSDISC_NAT.md §B.1, §B.4](crate::spec::dnsdisc_nat)).
//!
//! What is advertised, as in geth: the IP the gateway reports replaces the configured one
//! (geth's static IP); the TCP port granted becomes the record's `tcp`; the UDP port granted
//! becomes its `udp` (geth's fallback UDP port). A failure changes nothing: the last IP and
//! ports stay advertised until something replaces them.

use std::net::IpAddr;

use rand_core::CryptoRng;

use super::{Node, NodeConfig, NodeEvent};
use crate::endpoint::LocalRecord;
use crate::enr::Enr;
use crate::nat::{Nat, NatEvent, Outcome, PortMapper, Protocol, Request, RequestId};
use crate::time::Instant;

/// The port mapper when the node runs one, and what it granted.
pub(super) struct NatState {
    mapper: Option<PortMapper>,
    ip: Option<IpAddr>,
    tcp: Option<u16>,
    udp: Option<u16>,
}

impl NatState {
    /// A mapper for the listener's TCP port and (with discovery) its UDP port, when `config`
    /// asks for port mapping and the node listens on an address a router could forward to.
    pub(super) fn new(config: &NodeConfig, now: Instant) -> (Self, Option<NodeEvent>) {
        let mut state = NatState {
            mapper: None,
            ip: None,
            tcp: None,
            udp: None,
        };
        if !config.nat.maps_ports() {
            return (state, None);
        }
        let listen = config.listen.ip();
        if !maps_from(&listen) {
            let e = NodeEvent::Nat(NatEvent::MappingDisabled { listen });
            return (state, Some(e));
        }
        let port = config.listen.port();
        let mut ports = vec![(Protocol::Tcp, port)];
        if config.runs_discv4() || config.runs_discv5() {
            ports.push((Protocol::Udp, port));
        }
        state.mapper = Some(PortMapper::new(config.port_mapping, now, &ports));
        (state, None)
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.mapper.as_ref().and_then(PortMapper::poll_timeout)
    }
}

/// Whether ports are mapped for a node listening on `ip`: geth maps only when the listen
/// address is neither loopback nor private (an unspecified one qualifies).
fn maps_from(ip: &IpAddr) -> bool {
    let private = match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => v6.is_unique_local(),
    };
    !ip.is_loopback() && !private
}

impl<R: CryptoRng> Node<R> {
    // ---- NAT: getters ----------------------------------------------------------------------

    /// The NAT setting the node was started with ([`NodeConfig::nat`]): which mechanism the
    /// driver uses for [`poll_nat_request`](Self::poll_nat_request)'s requests.
    pub fn nat(&self) -> Nat {
        self.config.nat
    }

    /// The port mapper, when [`NodeConfig::nat`] maps ports and the listen address allows it:
    /// the external IP and ports granted so far.
    pub fn port_mapper(&self) -> Option<&PortMapper> {
        self.nat.mapper.as_ref()
    }

    /// The IP we advertise: the gateway's external IP once it reported one, else the one
    /// our record carries (which endpoint prediction may have moved), else
    /// [`NodeConfig::ip_to_advertise`].
    pub fn advertised_ip(&self) -> IpAddr {
        self.nat
            .ip
            .or_else(|| self.predicted_or_record_endpoint().map(|e| e.ip()))
            .unwrap_or_else(|| self.config.ip_to_advertise())
    }

    /// The TCP port we advertise: the one the gateway forwards, else the listen port.
    pub fn advertised_tcp_port(&self) -> u16 {
        self.nat.tcp.unwrap_or(self.config.listen.port())
    }

    /// The UDP port we advertise: the one the gateway forwards, else the one our record
    /// carries (which endpoint prediction may have moved), else the listen port.
    pub fn advertised_udp_port(&self) -> u16 {
        self.nat
            .udp
            .or_else(|| self.predicted_or_record_endpoint().map(|e| e.port()))
            .unwrap_or(self.config.listen.port())
    }

    /// The UDP endpoint our record advertises, a pending prediction included.
    fn predicted_or_record_endpoint(&self) -> Option<std::net::SocketAddr> {
        self.local.as_ref().and_then(LocalRecord::endpoint)
    }

    // ---- NAT: the driver's side ------------------------------------------------------------

    /// The next request for the gateway, if one is due: drain it after
    /// [`poll_event`](Self::poll_event), carry it out with the mechanism of
    /// [`NodeConfig::nat`], and report the outcome with
    /// [`handle_nat_response`](Self::handle_nat_response). At most one is outstanding; none
    /// comes without port mapping.
    pub fn poll_nat_request(&mut self) -> Option<(RequestId, Request)> {
        let now = self.now;
        self.nat.mapper.as_mut()?.poll_request(now)
    }

    /// The gateway's answer to request `id` (or the driver's reason for having none). The
    /// events it causes, and the new record if what we advertise changed, are ready at once.
    pub fn handle_nat_response(&mut self, now: Instant, id: RequestId, outcome: Outcome) {
        self.tick(now, self.unix_secs);
        if let Some(m) = &mut self.nat.mapper {
            m.handle_outcome(now, id, outcome);
        }
        self.after_nat();
    }

    /// Stops port mapping (at shutdown): what the gateway forwards is deleted through the
    /// coming requests; [`is_port_mapping_stopped`](Self::is_port_mapping_stopped) tells when
    /// that is done. What the node advertises does not change.
    pub fn stop_port_mapping(&mut self) {
        if let Some(m) = &mut self.nat.mapper {
            m.stop();
        }
    }

    /// Whether no port mapping runs: none was configured, or
    /// [`stop_port_mapping`](Self::stop_port_mapping) was called and every deletion has been
    /// answered.
    pub fn is_port_mapping_stopped(&self) -> bool {
        self.nat.mapper.as_ref().is_none_or(PortMapper::is_stopped)
    }

    // ---- internals -------------------------------------------------------------------------

    /// Takes the mapper's reports: updates what we advertise, and passes them on.
    fn after_nat(&mut self) {
        let Some(m) = &mut self.nat.mapper else {
            return;
        };
        let mut events = Vec::new();
        while let Some(e) = m.poll_event() {
            events.push(e);
        }
        for e in events {
            match &e {
                NatEvent::ExternalIp { ip } => {
                    self.nat.ip = Some(*ip);
                    // The gateway's word pins the endpoint, as geth's static IP stops
                    // endpoint prediction from moving it.
                    if let Some(l) = &mut self.local {
                        l.pin();
                    }
                }
                NatEvent::Mapped {
                    protocol: Protocol::Tcp,
                    external_port,
                    ..
                } => self.nat.tcp = Some(*external_port),
                NatEvent::Mapped {
                    protocol: Protocol::Udp,
                    external_port,
                    ..
                } => self.nat.udp = Some(*external_port),
                _ => {}
            }
            self.events.push_back(NodeEvent::Nat(e));
        }
        self.advertise();
    }

    /// Re-signs our record (seq one higher) when the IP or a port it carries is no longer
    /// what we advertise.
    fn advertise(&mut self) {
        let Some(current) = self.local.as_ref().map(|l| l.record(&self.key).clone()) else {
            return;
        };
        let (ip, tcp, udp) = (
            self.advertised_ip(),
            self.advertised_tcp_port(),
            self.advertised_udp_port(),
        );
        let carried = match ip {
            IpAddr::V4(v4) => current.ip4() == Some(v4),
            IpAddr::V6(v6) => current.ip6() == Some(v6),
        };
        if carried && current.tcp4() == Some(tcp) && current.udp4() == Some(udp) {
            return;
        }
        let signed: Option<Enr> = current
            .to_builder()
            .ip(ip)
            .tcp4(tcp)
            .udp4(udp)
            .sign(&self.key)
            .ok();
        if let Some(record) = signed {
            // Ours, one seq above the current record: never refused.
            let _ = self.set_local_record(record);
        }
    }
}
