//! The gateway I/O of port mapping, blocking (run on the NAT worker's thread, see
//! [`crate::common::nat`]): finding the router, and carrying out the core's
//! [`Request`]s with UPnP IGD (through the `igd-next` crate) or NAT-PMP (through the core's
//! codec, [`devp2p_core::nat::pmp`], over a UDP socket of its own).
//!
//! Nothing here decides when or what to map: that is the core's
//! [`PortMapper`](devp2p_core::nat::PortMapper).

use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

use devp2p_core::nat::pmp::{self, Exchange, Response};
use devp2p_core::nat::{GatewayError, Granted, Nat, Outcome, Protocol, Request};

use crate::common::clock::Clock;

/// How long an SSDP search waits for a gateway's answer and its description: goupnp (geth's
/// UPnP library) waits 2 s for answers; the second more is for fetching the device and
/// service descriptions, which igd-next counts in the same timeout.
pub const UPNP_SEARCH_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between two SOAP requests to the same gateway (geth's `rateLimit`: some routers
/// drop requests that come too fast).
pub const UPNP_MIN_REQUEST_INTERVAL: Duration = Duration::from_millis(200);
/// AddPortMapping attempts on the requested external port before letting the gateway pick
/// one (geth: 1 + `retryCount` 3; buggy routers fail now and then).
pub const UPNP_ADD_ATTEMPTS: u32 = 4;
/// How long NAT-PMP discovery waits for a candidate gateway to answer (geth's
/// `discoverPMP`: 1 s).
pub const PMP_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(1);
/// Where Linux lists the routing table, for the default gateway NAT-PMP talks to.
pub const ROUTE_TABLE: &str = "/proc/net/route";

/// A router found, ready for requests.
pub enum Gateway {
    /// A UPnP Internet Gateway Device.
    Upnp(Box<UpnpGateway>),
    /// A NAT-PMP gateway.
    Pmp(PmpGateway),
}

impl std::fmt::Display for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gateway::Upnp(u) => write!(f, "UPnP gateway {} (us: {})", u.gateway, u.internal_ip),
            Gateway::Pmp(p) => write!(f, "NAT-PMP gateway {}", p.addr),
        }
    }
}

impl Gateway {
    /// Finds the router for `nat` (UPnP, NAT-PMP, or both at once for [`Nat::Any`], the first
    /// found winning). Errors say what was tried.
    pub fn discover(nat: Nat, clock: &Clock) -> Result<Gateway, GatewayError> {
        match nat {
            Nat::Upnp => UpnpGateway::discover().map(|g| Gateway::Upnp(Box::new(g))),
            Nat::Pmp(Some(gw)) => PmpGateway::new(gw).map(Gateway::Pmp),
            Nat::Pmp(None) => PmpGateway::discover(clock).map(Gateway::Pmp),
            Nat::Any => {
                let (tx, rx) = mpsc::channel();
                let upnp = tx.clone();
                let spawned = std::thread::Builder::new()
                    .name("devp2p-upnp-search".into())
                    .spawn(move || {
                        let _ =
                            upnp.send(UpnpGateway::discover().map(|g| Gateway::Upnp(Box::new(g))));
                    });
                let mut errors = Vec::new();
                if let Err(e) = spawned {
                    errors.push(format!("UPnP: cannot start the search thread: {e}"));
                }
                let _ = tx.send(PmpGateway::discover(clock).map(Gateway::Pmp));
                drop(tx);
                for r in rx {
                    match r {
                        Ok(g) => return Ok(g),
                        Err(e) => errors.push(e.0),
                    }
                }
                Err(GatewayError(format!(
                    "no UPnP or NAT-PMP gateway found: {}",
                    errors.join("; ")
                )))
            }
            Nat::None | Nat::ExtIp(_) => Err(GatewayError(format!(
                "--nat {nat} maps no ports, so there is no gateway to ask"
            ))),
        }
    }

    /// Carries out `request`.
    pub fn execute(&mut self, request: &Request, clock: &Clock) -> Outcome {
        match self {
            Gateway::Upnp(u) => u.execute(request),
            Gateway::Pmp(p) => p.execute(request, clock),
        }
    }
}

// ---- UPnP -----------------------------------------------------------------------------------

/// A UPnP IGD, and our address as it sees us.
pub struct UpnpGateway {
    gateway: igd_next::Gateway,
    /// The address of ours in the gateway's network: where it forwards to.
    internal_ip: IpAddr,
    last_request: Option<std::time::Instant>,
}

fn upnp_protocol(p: Protocol) -> igd_next::PortMappingProtocol {
    match p {
        Protocol::Tcp => igd_next::PortMappingProtocol::TCP,
        Protocol::Udp => igd_next::PortMappingProtocol::UDP,
    }
}

impl UpnpGateway {
    /// SSDP search on the LAN (multicast to 239.255.255.250:1900).
    pub fn discover() -> Result<UpnpGateway, GatewayError> {
        let mut options = igd_next::SearchOptions::default();
        options.timeout = Some(UPNP_SEARCH_TIMEOUT);
        options.single_search_timeout = Some(UPNP_SEARCH_TIMEOUT);
        let gateway = igd_next::search_gateway(options).map_err(|e| {
            GatewayError(format!(
                "UPnP: no gateway answered the SSDP search within {} s ({e}); is UPnP on in \
                 the router?",
                UPNP_SEARCH_TIMEOUT.as_secs()
            ))
        })?;
        let internal_ip = local_ip_towards(gateway.addr).map_err(|e| {
            GatewayError(format!(
                "UPnP: no local address reaches the gateway at {}: {e}",
                gateway.addr
            ))
        })?;
        Ok(UpnpGateway {
            gateway,
            internal_ip,
            last_request: None,
        })
    }

    fn pace(&mut self) {
        if let Some(t) = self.last_request {
            let since = t.elapsed();
            if since < UPNP_MIN_REQUEST_INTERVAL {
                std::thread::sleep(UPNP_MIN_REQUEST_INTERVAL - since);
            }
        }
        self.last_request = Some(std::time::Instant::now());
    }

    fn execute(&mut self, request: &Request) -> Outcome {
        let gw = self.gateway.addr;
        let err = move |what: &str, e: &dyn std::fmt::Display| {
            GatewayError(format!("UPnP gateway {gw}: {what}: {e}"))
        };
        match request {
            Request::ExternalIp => {
                self.pace();
                Outcome::ExternalIp(
                    self.gateway
                        .get_external_ip()
                        .map_err(|e| err("GetExternalIPAddress", &e)),
                )
            }
            Request::Map {
                protocol,
                internal_port,
                external_port,
                lifetime,
                description,
            } => {
                let local = SocketAddr::new(self.internal_ip, *internal_port);
                let lease = u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX);
                let proto = upnp_protocol(*protocol);
                let mut last = None;
                for _ in 0..UPNP_ADD_ATTEMPTS {
                    self.pace();
                    match self
                        .gateway
                        .add_port(proto, *external_port, local, lease, description)
                    {
                        Ok(()) => {
                            return Outcome::Mapped(Ok(Granted {
                                port: *external_port,
                                lifetime: None,
                            }))
                        }
                        Err(e) => last = Some(e),
                    }
                }
                // The port is taken (or the router is moody): let it pick one.
                self.pace();
                match self.gateway.add_any_port(proto, local, lease, description) {
                    Ok(port) => Outcome::Mapped(Ok(Granted {
                        port,
                        lifetime: None,
                    })),
                    Err(any) => {
                        let first = last.map(|e| e.to_string()).unwrap_or_default();
                        Outcome::Mapped(Err(err(
                            &format!("AddPortMapping of {protocol} {external_port} -> {local}"),
                            &format!("{first}; then AddAnyPortMapping: {any}"),
                        )))
                    }
                }
            }
            Request::Unmap {
                protocol,
                external_port,
                ..
            } => {
                self.pace();
                Outcome::Unmapped(
                    self.gateway
                        .remove_port(upnp_protocol(*protocol), *external_port)
                        .map_err(|e| err("DeletePortMapping", &e)),
                )
            }
        }
    }
}

/// The local address the OS would send from to reach `to` (a connected UDP socket sends
/// nothing; it only picks the route).
fn local_ip_towards(to: SocketAddr) -> io::Result<IpAddr> {
    let any: SocketAddr = match to {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(any)?;
    s.connect(to)?;
    Ok(s.local_addr()?.ip())
}

// ---- NAT-PMP --------------------------------------------------------------------------------

/// A NAT-PMP gateway, and the socket connected to it (so only its datagrams arrive).
pub struct PmpGateway {
    addr: Ipv4Addr,
    socket: UdpSocket,
}

impl PmpGateway {
    /// The gateway at `addr` (not checked: the first request tells).
    pub fn new(addr: Ipv4Addr) -> Result<PmpGateway, GatewayError> {
        let socket = connected_socket(addr)
            .map_err(|e| GatewayError(format!("NAT-PMP: a socket towards {addr}: {e}")))?;
        Ok(PmpGateway { addr, socket })
    }

    /// Asks every default gateway of the routing table for its external address at once; the
    /// first to answer within [`PMP_DISCOVERY_TIMEOUT`] is used.
    pub fn discover(clock: &Clock) -> Result<PmpGateway, GatewayError> {
        let table = std::fs::read_to_string(ROUTE_TABLE).map_err(|e| {
            GatewayError(format!(
                "NAT-PMP: cannot read the routing table ({ROUTE_TABLE}: {e}) to find the \
                 gateway; give it as pmp:<router IPv4>"
            ))
        })?;
        let candidates = default_gateways(&table);
        if candidates.is_empty() {
            return Err(GatewayError(
                "NAT-PMP: the routing table has no default gateway; give it as pmp:<router \
                 IPv4>"
                    .into(),
            ));
        }
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
            .map_err(|e| GatewayError(format!("NAT-PMP: binding a UDP socket: {e}")))?;
        let start = clock.now();
        let deadline = start + PMP_DISCOVERY_TIMEOUT;
        let mut exchanges: Vec<(Ipv4Addr, Exchange)> = candidates
            .iter()
            .map(|gw| (*gw, Exchange::new(pmp::Request::ExternalAddress, start)))
            .collect();
        let mut buf = [0u8; pmp::MAX_DATAGRAM_SIZE + 1];
        loop {
            let now = clock.now();
            for (gw, ex) in &mut exchanges {
                while let Some(bytes) = ex.poll_transmit(now) {
                    let _ = socket.send_to(bytes, SocketAddrV4::new(*gw, pmp::GATEWAY_PORT));
                }
            }
            if now >= deadline {
                break;
            }
            let next = exchanges
                .iter()
                .filter_map(|(_, ex)| ex.poll_timeout())
                .chain([deadline])
                .min()
                .unwrap_or(deadline);
            let wait = clock.until(next).max(Duration::from_millis(1));
            let _ = socket.set_read_timeout(Some(wait));
            match socket.recv_from(&mut buf) {
                Ok((n, SocketAddr::V4(from))) if from.port() == pmp::GATEWAY_PORT => {
                    if let Some((gw, ex)) = exchanges.iter_mut().find(|(gw, _)| gw == from.ip()) {
                        if ex.handle_datagram(&buf[..n]) && matches!(ex.poll_result(), Some(Ok(_)))
                        {
                            return PmpGateway::new(*gw);
                        }
                    }
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => {}
            }
        }
        let list: Vec<String> = candidates.iter().map(Ipv4Addr::to_string).collect();
        Err(GatewayError(format!(
            "NAT-PMP: no answer from the default gateway ({}) within {} s; is NAT-PMP on in \
             the router?",
            list.join(", "),
            PMP_DISCOVERY_TIMEOUT.as_secs()
        )))
    }

    fn execute(&mut self, request: &Request, clock: &Clock) -> Outcome {
        let pmp_request = match *request {
            Request::ExternalIp => pmp::Request::ExternalAddress,
            Request::Map {
                protocol,
                internal_port,
                external_port,
                lifetime,
                ..
            } => pmp::Request::Map {
                protocol,
                internal_port,
                external_port,
                lifetime_secs: u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX),
            },
            Request::Unmap {
                protocol,
                internal_port,
                ..
            } => pmp::Request::unmap(protocol, internal_port),
        };
        let result = self.exchange(pmp_request, clock);
        let gw = self.addr;
        let err = |e: String| GatewayError(format!("NAT-PMP gateway {gw}: {e}"));
        match request {
            Request::ExternalIp => Outcome::ExternalIp(match result {
                Ok(Response::ExternalAddress { ip, .. }) => Ok(IpAddr::V4(ip)),
                Ok(other) => Err(err(format!("unexpected answer {other:?}"))),
                Err(e) => Err(err(e)),
            }),
            Request::Map { .. } => Outcome::Mapped(match result {
                Ok(Response::Mapping {
                    external_port,
                    lifetime_secs,
                    ..
                }) => Ok(Granted {
                    port: external_port,
                    lifetime: Some(Duration::from_secs(lifetime_secs.into())),
                }),
                Ok(other) => Err(err(format!("unexpected answer {other:?}"))),
                Err(e) => Err(err(e)),
            }),
            Request::Unmap { .. } => Outcome::Unmapped(result.map(|_| ()).map_err(err)),
        }
    }

    /// One request to the gateway until answered, refused or given up (up to about 128 s).
    fn exchange(&mut self, request: pmp::Request, clock: &Clock) -> Result<Response, String> {
        let mut ex = Exchange::new(request, clock.now());
        let mut buf = [0u8; pmp::MAX_DATAGRAM_SIZE + 1];
        loop {
            let now = clock.now();
            while let Some(bytes) = ex.poll_transmit(now) {
                if let Err(e) = self.socket.send(bytes) {
                    return Err(format!("sending to port {}: {e}", pmp::GATEWAY_PORT));
                }
            }
            ex.handle_timeout(now);
            if let Some(r) = ex.poll_result() {
                return r.map_err(|e| e.to_string());
            }
            let Some(next) = ex.poll_timeout() else {
                return Err("the exchange ended without a result".into());
            };
            let wait = clock.until(next).max(Duration::from_millis(1));
            let _ = self.socket.set_read_timeout(Some(wait));
            match self.socket.recv(&mut buf) {
                // Connected: the kernel delivers only the gateway's datagrams.
                Ok(n) => {
                    ex.handle_datagram(&buf[..n]);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    return Err(format!(
                        "nothing listens on its port {} (ICMP port unreachable): NAT-PMP is \
                         off, or this is not the router",
                        pmp::GATEWAY_PORT
                    ))
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("receiving: {e}")),
            }
        }
    }
}

fn connected_socket(gw: Ipv4Addr) -> io::Result<UdpSocket> {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    s.connect(SocketAddrV4::new(gw, pmp::GATEWAY_PORT))?;
    Ok(s)
}

/// The gateways of the default routes in a Linux routing table (`/proc/net/route`: hex
/// fields in the host's byte order; a default route has destination and mask 0 and the
/// gateway flag). Unreadable lines are skipped; at most 16 gateways are returned.
pub fn default_gateways(table: &str) -> Vec<Ipv4Addr> {
    /// `RTF_GATEWAY` (linux/route.h).
    const RTF_GATEWAY: u32 = 0x2;
    /// `RTF_UP`.
    const RTF_UP: u32 = 0x1;
    const MAX_GATEWAYS: usize = 16;
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    let mut out = Vec::new();
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Some(dest), Some(gw), Some(flags), Some(mask)) =
            (hex(f[1]), hex(f[2]), hex(f[3]), hex(f[7]))
        else {
            continue;
        };
        if dest != 0 || mask != 0 || flags & (RTF_GATEWAY | RTF_UP) != RTF_GATEWAY | RTF_UP {
            continue;
        }
        let ip = Ipv4Addr::from(gw.to_ne_bytes());
        if !ip.is_unspecified() && !out.contains(&ip) && out.len() < MAX_GATEWAYS {
            out.push(ip);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_gateways_are_read_from_the_routing_table_and_junk_is_skipped() {
        // 10.201.0.1 as the kernel prints it on a little-endian host.
        let gw = u32::from_ne_bytes([10, 201, 0, 1]);
        let table = format!(
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
             vcl\t00000000\t{gw:08X}\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
             vcl\t0000C90A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
             bad line\n\
             eth9\t00000000\tZZZZZZZZ\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
             down\t00000000\t{gw:08X}\t0002\t0\t0\t0\t00000000\t0\t0\t0\n"
        );
        assert_eq!(default_gateways(&table), [Ipv4Addr::new(10, 201, 0, 1)]);
        assert!(default_gateways("").is_empty());
    }
}
