//! [`PortMapper`]: geth's port-mapping loop (`p2p/server_nat.go`) as a sans-IO machine
//! ([DNSDISC_NAT.md §B.4](crate::spec::dnsdisc_nat)).

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use super::Protocol;
use crate::time::Instant;

/// Lifetime asked for each mapping (geth `portMapDuration`).
pub const MAPPING_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// A granted mapping is renewed this long after it was granted, well before its lifetime ends
/// (geth `portMapRefreshInterval`).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(8 * 60);
/// A failed mapping request is tried again after this (geth `portMapRetryInterval`).
pub const RETRY_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// The gateway is asked for the external IP this often; a change (or a failure) renews every
/// mapping at once (geth `extipRetryInterval`).
pub const EXTERNAL_IP_INTERVAL: Duration = Duration::from_secs(2 * 60);
/// Renewals of a granted mapping that may fail in a row before it is deleted and forgotten,
/// and the next request asks for the internal port again (geth `maxRetries`).
pub const MAX_REFRESH_FAILURES: u32 = 5;
/// A gateway that grants a lifetime shorter than asked is renewed after the same share of it
/// (8 of 10 minutes), but never sooner than this after the grant (our floor: a gateway
/// granting seconds must not make us ask it without pause).
pub const MIN_RENEWAL_DELAY: Duration = Duration::from_secs(1);
/// The description of the TCP mapping, as routers list it (geth's).
pub const TCP_DESCRIPTION: &str = "ethereum p2p";
/// The description of the UDP mapping (geth's).
pub const UDP_DESCRIPTION: &str = "ethereum peer discovery";

/// The schedule of a [`PortMapper`]; [`Default`] is geth's.
///
/// Shorter intervals are for tests against a real gateway, which would otherwise wait minutes
/// to see a renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PortMappingConfig {
    /// See [`MAPPING_LIFETIME`].
    pub lifetime: Duration,
    /// See [`REFRESH_INTERVAL`]; keep it below `lifetime`.
    pub refresh_interval: Duration,
    /// See [`RETRY_INTERVAL`].
    pub retry_interval: Duration,
    /// See [`EXTERNAL_IP_INTERVAL`].
    pub external_ip_interval: Duration,
    /// See [`MAX_REFRESH_FAILURES`].
    pub max_refresh_failures: u32,
}

impl Default for PortMappingConfig {
    fn default() -> Self {
        PortMappingConfig {
            lifetime: MAPPING_LIFETIME,
            refresh_interval: REFRESH_INTERVAL,
            retry_interval: RETRY_INTERVAL,
            external_ip_interval: EXTERNAL_IP_INTERVAL,
            max_refresh_failures: MAX_REFRESH_FAILURES,
        }
    }
}

impl PortMappingConfig {
    /// geth's schedule scaled to a mapping `lifetime`, its ratios kept: renew at 8/10 of it,
    /// retry after 5/10, ask for the IP every 2/10.
    pub fn scaled_to(lifetime: Duration) -> Self {
        let part = |n: u32| lifetime * n / 10;
        PortMappingConfig {
            lifetime,
            refresh_interval: part(8),
            retry_interval: part(5),
            external_ip_interval: part(2),
            max_refresh_failures: MAX_REFRESH_FAILURES,
        }
    }
}

/// Names one [`Request`], so that its [`Outcome`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nat#{}", self.0)
    }
}

/// What the driver asks the gateway. Each is answered with the [`Outcome`] of its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The gateway's external IP address: answer [`Outcome::ExternalIp`].
    ExternalIp,
    /// Forward `external_port` (what we would like; the gateway may grant another) to our
    /// `internal_port` for `lifetime`: answer [`Outcome::Mapped`] with the port granted.
    Map {
        /// TCP or UDP.
        protocol: Protocol,
        /// Our listening port.
        internal_port: u16,
        /// The port asked for: the one granted before, or else the internal port.
        external_port: u16,
        /// The lease asked for.
        lifetime: Duration,
        /// How routers list the mapping.
        description: &'static str,
    },
    /// Remove the forwarding of `external_port` to `internal_port`: answer
    /// [`Outcome::Unmapped`].
    Unmap {
        /// TCP or UDP.
        protocol: Protocol,
        /// Our listening port.
        internal_port: u16,
        /// The port the gateway granted.
        external_port: u16,
    },
}

/// What a gateway said, or why it said nothing: the driver's words, for the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError(pub String);

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GatewayError {}

/// A port the gateway forwards to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    /// The external port.
    pub port: u16,
    /// The lease granted, when the mechanism says (NAT-PMP does; UPnP grants the lease asked
    /// for or fails).
    pub lifetime: Option<Duration>,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// To [`Request::ExternalIp`].
    ExternalIp(Result<IpAddr, GatewayError>),
    /// To [`Request::Map`].
    Mapped(Result<Granted, GatewayError>),
    /// To [`Request::Unmap`].
    Unmapped(Result<(), GatewayError>),
}

/// What the port mapper reports: every change of what the node advertises, and every failure
/// (the drivers log them).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NatEvent {
    /// The node listens on a loopback or LAN address (not on an unspecified or a public one),
    /// so no port is mapped, as in geth: a router would forward to an address the node does
    /// not listen on, or there is no router to ask. Listen on `0.0.0.0` to map ports.
    MappingDisabled {
        /// The listen address.
        listen: IpAddr,
    },
    /// The gateway reported an external IP other than the last one (or the first): the node
    /// advertises it now.
    ExternalIp {
        /// The address.
        ip: IpAddr,
    },
    /// Asking for the external IP failed; the advertised IP stays, every mapping is renewed
    /// at once (geth's rule) and the IP is asked again after
    /// [`PortMappingConfig::external_ip_interval`].
    ExternalIpFailed {
        /// Why.
        error: GatewayError,
        /// Failures in a row, this one included.
        failures: u32,
    },
    /// A mapping was granted on another external port than before (or for the first time):
    /// the node advertises it now (TCP: the record's `tcp`; UDP: its `udp`).
    Mapped {
        /// TCP or UDP.
        protocol: Protocol,
        /// Our port.
        internal_port: u16,
        /// The port granted.
        external_port: u16,
    },
    /// A mapping request failed; it is tried again after
    /// [`PortMappingConfig::retry_interval`]. A mapping granted earlier is still advertised
    /// (its lease may outlive the failure).
    MappingFailed {
        /// TCP or UDP.
        protocol: Protocol,
        /// Our port.
        internal_port: u16,
        /// Why.
        error: GatewayError,
        /// Failures in a row, this one included.
        failures: u32,
    },
    /// Renewals failed more than [`PortMappingConfig::max_refresh_failures`] times in a row:
    /// the mapping is deleted at the gateway and forgotten; the next request asks for the
    /// internal port again.
    MappingAbandoned {
        /// TCP or UDP.
        protocol: Protocol,
        /// Our port.
        internal_port: u16,
        /// The port given up.
        external_port: u16,
    },
    /// A mapping was deleted at the gateway (at shutdown, or after
    /// [`MappingAbandoned`](Self::MappingAbandoned)), or deleting it failed (it then lapses
    /// when its lease ends).
    Unmapped {
        /// TCP or UDP.
        protocol: Protocol,
        /// Our port.
        internal_port: u16,
        /// The port released.
        external_port: u16,
        /// The gateway's refusal or silence, if deleting failed.
        error: Option<GatewayError>,
    },
}

impl fmt::Display for NatEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatEvent::MappingDisabled { listen } => write!(
                f,
                "listening on {listen}, a loopback or LAN address: no ports are mapped (listen \
                 on 0.0.0.0 to have the router forward them)"
            ),
            NatEvent::ExternalIp { ip } => write!(f, "the gateway's external IP is {ip}"),
            NatEvent::ExternalIpFailed { error, failures } => write!(
                f,
                "asking the gateway for its external IP failed ({failures} in a row): {error}"
            ),
            NatEvent::Mapped {
                protocol,
                internal_port,
                external_port,
            } => write!(
                f,
                "the gateway forwards {protocol} port {external_port} to our port {internal_port}"
            ),
            NatEvent::MappingFailed {
                protocol,
                internal_port,
                error,
                failures,
            } => write!(
                f,
                "mapping {protocol} port {internal_port} failed ({failures} in a row; retrying \
                 later): {error}"
            ),
            NatEvent::MappingAbandoned {
                protocol,
                internal_port,
                external_port,
            } => write!(
                f,
                "gave up renewing the {protocol} mapping {external_port} -> {internal_port}; \
                 asking for a new one"
            ),
            NatEvent::Unmapped {
                protocol,
                internal_port,
                external_port,
                error: None,
            } => write!(
                f,
                "removed the {protocol} mapping {external_port} -> {internal_port}"
            ),
            NatEvent::Unmapped {
                protocol,
                internal_port,
                external_port,
                error: Some(e),
            } => write!(
                f,
                "removing the {protocol} mapping {external_port} -> {internal_port} failed (it \
                 lapses when its lease ends): {e}"
            ),
        }
    }
}

#[derive(Debug, Clone)]
struct Mapping {
    protocol: Protocol,
    internal_port: u16,
    description: &'static str,
    /// The port granted last; `None` until one is (and after it is abandoned).
    external_port: Option<u16>,
    /// Renewals failed in a row since the last grant (geth's `retries`).
    refresh_failures: u32,
    /// Requests failed in a row, for the reports.
    failures: u32,
    next: Instant,
}

#[derive(Debug, Clone)]
enum Pending {
    ExternalIp,
    Map(usize),
    Unmap(Protocol, u16, u16),
}

/// geth's port-mapping loop as a machine: asks for the external IP at once and every
/// [`EXTERNAL_IP_INTERVAL`]; maps each port at once, renews it every [`REFRESH_INTERVAL`]
/// and retries a failure after [`RETRY_INTERVAL`]; sticks to a granted port; abandons a
/// mapping after [`MAX_REFRESH_FAILURES`] failed renewals; and deletes what it holds on
/// [`stop`](Self::stop). One request is outstanding at a time, as in geth's loop.
///
/// The node owns one (see [`NodeConfig::nat`](crate::node::NodeConfig::nat)); the machine is
/// public for drivers of its own and for tests.
///
/// ```
/// use devp2p_core::nat::{Granted, Outcome, PortMapper, PortMappingConfig, Protocol, Request, NatEvent};
/// use devp2p_core::Instant;
///
/// let mut m = PortMapper::new(PortMappingConfig::default(), Instant::ZERO, &[(Protocol::Tcp, 30303)]);
/// let (id, req) = m.poll_request(Instant::ZERO).unwrap();
/// assert_eq!(req, Request::ExternalIp);
/// m.handle_outcome(Instant::ZERO, id, Outcome::ExternalIp(Ok([45, 45, 45, 45].into())));
/// let (id, req) = m.poll_request(Instant::ZERO).unwrap();
/// assert!(matches!(req, Request::Map { internal_port: 30303, external_port: 30303, .. }));
/// m.handle_outcome(Instant::ZERO, id, Outcome::Mapped(Ok(Granted { port: 30303, lifetime: None })));
/// assert_eq!(m.external_ip(), Some([45, 45, 45, 45].into()));
/// assert_eq!(m.external_port(Protocol::Tcp), Some(30303));
/// // Nothing more until the IP is asked again, 2 minutes on.
/// assert_eq!(m.poll_request(Instant::ZERO), None);
/// assert_eq!(m.poll_timeout(), Some(Instant::from_millis(120_000)));
/// ```
#[derive(Debug, Clone)]
pub struct PortMapper {
    config: PortMappingConfig,
    next_ip_check: Instant,
    external_ip: Option<IpAddr>,
    ip_failures: u32,
    mappings: Vec<Mapping>,
    /// Deletions to send before anything else.
    unmaps: VecDeque<(Protocol, u16, u16)>,
    in_flight: Option<(RequestId, Pending)>,
    next_id: u64,
    stopping: bool,
    events: VecDeque<NatEvent>,
}

impl PortMapper {
    /// A mapper for `ports` (protocol and internal port each; TCP gets [`TCP_DESCRIPTION`],
    /// UDP [`UDP_DESCRIPTION`]), everything due at `now`.
    pub fn new(config: PortMappingConfig, now: Instant, ports: &[(Protocol, u16)]) -> Self {
        let mappings = ports
            .iter()
            .map(|&(protocol, internal_port)| Mapping {
                protocol,
                internal_port,
                description: match protocol {
                    Protocol::Tcp => TCP_DESCRIPTION,
                    Protocol::Udp => UDP_DESCRIPTION,
                },
                external_port: None,
                refresh_failures: 0,
                failures: 0,
                next: now,
            })
            .collect();
        PortMapper {
            config,
            next_ip_check: now,
            external_ip: None,
            ip_failures: 0,
            mappings,
            unmaps: VecDeque::new(),
            in_flight: None,
            next_id: 0,
            stopping: false,
            events: VecDeque::new(),
        }
    }

    // ---- getters ---------------------------------------------------------------------------

    /// The external IP the gateway reported last (kept through later failures).
    pub fn external_ip(&self) -> Option<IpAddr> {
        self.external_ip
    }

    /// The external port granted for `protocol`, if one is.
    pub fn external_port(&self, protocol: Protocol) -> Option<u16> {
        self.mappings
            .iter()
            .find(|m| m.protocol == protocol)
            .and_then(|m| m.external_port)
    }

    /// The schedule.
    pub fn config(&self) -> &PortMappingConfig {
        &self.config
    }

    /// Whether a request waits for its outcome.
    pub fn is_waiting(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Whether [`stop`](Self::stop) was called and every deletion has been answered.
    pub fn is_stopped(&self) -> bool {
        self.stopping && self.in_flight.is_none() && self.unmaps.is_empty()
    }

    // ---- outputs ---------------------------------------------------------------------------

    /// The next request for the gateway, if one is due at `now` and none is outstanding:
    /// deletions first, then the external IP, then the mappings (TCP before UDP).
    pub fn poll_request(&mut self, now: Instant) -> Option<(RequestId, Request)> {
        if self.in_flight.is_some() {
            return None;
        }
        let (pending, request) =
            if let Some((protocol, internal_port, external_port)) = self.unmaps.pop_front() {
                (
                    Pending::Unmap(protocol, internal_port, external_port),
                    Request::Unmap {
                        protocol,
                        internal_port,
                        external_port,
                    },
                )
            } else if self.stopping {
                return None;
            } else if self.next_ip_check <= now {
                // As geth: the next check counts from this one's start.
                self.next_ip_check = now + self.config.external_ip_interval;
                (Pending::ExternalIp, Request::ExternalIp)
            } else {
                let i = self.mappings.iter().position(|m| m.next <= now)?;
                let m = &self.mappings[i];
                (
                    Pending::Map(i),
                    Request::Map {
                        protocol: m.protocol,
                        internal_port: m.internal_port,
                        external_port: m.external_port.unwrap_or(m.internal_port),
                        lifetime: self.config.lifetime,
                        description: m.description,
                    },
                )
            };
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.in_flight = Some((id, pending));
        Some((id, request))
    }

    /// When [`poll_request`](Self::poll_request) has something next; `None` while a request
    /// is outstanding (its outcome comes first), and once stopping with no deletion left.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.in_flight.is_some() {
            return None;
        }
        if !self.unmaps.is_empty() {
            return Some(Instant::ZERO);
        }
        if self.stopping {
            return None;
        }
        std::iter::once(self.next_ip_check)
            .chain(self.mappings.iter().map(|m| m.next))
            .min()
    }

    /// The next report.
    pub fn poll_event(&mut self) -> Option<NatEvent> {
        self.events.pop_front()
    }

    // ---- inputs ----------------------------------------------------------------------------

    /// The outcome of request `id`. One for another request, or of the wrong kind, is
    /// ignored.
    pub fn handle_outcome(&mut self, now: Instant, id: RequestId, outcome: Outcome) {
        let Some((pending_id, pending)) = self.in_flight.take() else {
            return;
        };
        if pending_id != id {
            self.in_flight = Some((pending_id, pending));
            return;
        }
        match (pending, outcome) {
            (Pending::ExternalIp, Outcome::ExternalIp(r)) => self.on_external_ip(now, r),
            (Pending::Map(i), Outcome::Mapped(r)) => self.on_mapped(now, i, r),
            (Pending::Unmap(protocol, internal_port, external_port), Outcome::Unmapped(r)) => {
                self.events.push_back(NatEvent::Unmapped {
                    protocol,
                    internal_port,
                    external_port,
                    error: r.err(),
                })
            }
            // An outcome of the wrong kind answers nothing: wait for the right one.
            (pending, _) => self.in_flight = Some((pending_id, pending)),
        }
    }

    /// Stops mapping: no new requests but the deletion of every mapping granted, after the
    /// outstanding request (a mapping it grants is deleted too). Done once
    /// [`is_stopped`](Self::is_stopped).
    pub fn stop(&mut self) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        for m in &mut self.mappings {
            if let Some(ext) = m.external_port.take() {
                self.unmaps.push_back((m.protocol, m.internal_port, ext));
            }
        }
    }

    // ---- internals -------------------------------------------------------------------------

    fn on_external_ip(&mut self, now: Instant, r: Result<IpAddr, GatewayError>) {
        let r = r.and_then(|ip| {
            let ip = canonical(ip);
            if usable_external_ip(&ip) {
                Ok(ip)
            } else {
                Err(GatewayError(format!(
                    "the gateway reported {ip} as its external address, which no peer can \
                     reach"
                )))
            }
        });
        match r {
            Ok(ip) if Some(ip) == self.external_ip => {
                self.ip_failures = 0;
                return;
            }
            Ok(ip) => {
                self.ip_failures = 0;
                self.external_ip = Some(ip);
                self.events.push_back(NatEvent::ExternalIp { ip });
            }
            Err(error) => {
                self.ip_failures += 1;
                self.events.push_back(NatEvent::ExternalIpFailed {
                    error,
                    failures: self.ip_failures,
                });
            }
        }
        // A new IP, or none: renew every mapping now, in case we moved to another network
        // (geth does the same on failure, so a silent gateway is asked again every interval).
        if !self.stopping {
            for m in &mut self.mappings {
                m.next = now;
            }
        }
    }

    fn on_mapped(&mut self, now: Instant, i: usize, r: Result<Granted, GatewayError>) {
        let r = r.and_then(|g| {
            if g.port == 0 {
                Err(GatewayError("the gateway granted external port 0".into()))
            } else {
                Ok(g)
            }
        });
        let config = self.config;
        let stopping = self.stopping;
        let Some(m) = self.mappings.get_mut(i) else {
            return;
        };
        match r {
            Ok(granted) => {
                m.refresh_failures = 0;
                m.failures = 0;
                if stopping {
                    // Granted while we stop: delete it with the rest.
                    self.unmaps
                        .push_back((m.protocol, m.internal_port, granted.port));
                    return;
                }
                if m.external_port != Some(granted.port) {
                    m.external_port = Some(granted.port);
                    self.events.push_back(NatEvent::Mapped {
                        protocol: m.protocol,
                        internal_port: m.internal_port,
                        external_port: granted.port,
                    });
                }
                m.next = now + renewal_delay(&config, granted.lifetime);
            }
            Err(error) => {
                m.failures += 1;
                self.events.push_back(NatEvent::MappingFailed {
                    protocol: m.protocol,
                    internal_port: m.internal_port,
                    error,
                    failures: m.failures,
                });
                if let Some(ext) = m.external_port {
                    m.refresh_failures += 1;
                    if m.refresh_failures > config.max_refresh_failures {
                        m.refresh_failures = 0;
                        m.external_port = None;
                        self.events.push_back(NatEvent::MappingAbandoned {
                            protocol: m.protocol,
                            internal_port: m.internal_port,
                            external_port: ext,
                        });
                        self.unmaps.push_back((m.protocol, m.internal_port, ext));
                    }
                }
                m.next = now + config.retry_interval;
            }
        }
    }
}

/// When to renew a mapping granted for `lifetime` (unknown: the lifetime asked for): after
/// the refresh interval, or the same share of a shorter lease, but at least
/// [`MIN_RENEWAL_DELAY`].
fn renewal_delay(config: &PortMappingConfig, lifetime: Option<Duration>) -> Duration {
    let delay = match lifetime {
        Some(l) if l < config.lifetime && !config.lifetime.is_zero() => {
            let share = config.refresh_interval.as_secs_f64() / config.lifetime.as_secs_f64();
            l.mul_f64(share.min(1.0))
        }
        _ => config.refresh_interval,
    };
    delay.max(MIN_RENEWAL_DELAY)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether an external IP from a gateway could be reached by anyone: not unspecified,
/// loopback, multicast or broadcast. Private and shared (100.64/10) addresses pass, as in
/// geth: behind a second NAT they are what the first router knows.
fn usable_external_ip(ip: &IpAddr) -> bool {
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    !(ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || broadcast)
}
