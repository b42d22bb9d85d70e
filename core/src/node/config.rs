//! What a [`Node`](super::Node) is told at start, and the limits it keeps
//! ([PROTOCOL.md §9](crate::spec::protocol)).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::discv4::NodeDbSnapshot;
use crate::discv5::discovery::Config as Discv5Config;
use crate::dnsdisc::TreeUrl;
use crate::enode::Enode;
use crate::enr::Enr;
use crate::identity::NodeId;
use crate::nat::{Nat, PortMappingConfig};
use crate::netlist::NetList;
use crate::session::SessionConfig;

/// Peers at most, in and out together (geth node default `MaxPeers`).
pub const DEFAULT_MAX_PEERS: usize = 50;
/// Concurrent inbound handshakes at most, and separately concurrent dials at most (geth
/// `defaultMaxPendingPeers`).
pub const DEFAULT_MAX_PENDING_PEERS: usize = 50;
/// A non-LAN IP may open one inbound connection per this long (geth `inboundThrottleTime`).
pub const INBOUND_THROTTLE_TIME: Duration = Duration::from_secs(30);
/// A TCP connect that takes longer fails (geth `defaultDialTimeout`).
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(15);
/// Random lookups that feed the dialer start at most this often (geth lookup iterator).
pub const LOOKUP_MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Received message bytes waiting in [`Node::poll_event`](super::Node::poll_event) beyond
/// which [`Node::handle_read`](super::Node::handle_read) takes no more input.
pub const DEFAULT_MAX_PENDING_MESSAGES: usize = 8 * 1024 * 1024;

/// Settings of a node.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodeConfig {
    /// Sessions: client id, protocols, timeouts, limits.
    pub session: SessionConfig,
    /// The TCP and UDP address we listen on. Its IP is also the one advertised unless
    /// [`advertised_ip`](Self::advertised_ip) says otherwise.
    pub listen: SocketAddr,
    /// The IP put in our enode URL and record (for a node behind NAT, or one listening on
    /// `0.0.0.0`), and with it the choice between a pinned and a predicted endpoint:
    ///
    /// - `Some(ip)` pins the endpoint: the record advertises `ip` and the listen port
    ///   whatever peers report, as geth's `--nat extip:<IP>` does (DNSDISC_NAT.md §B.1).
    /// - `None`: the record starts with the listen IP, or 127.0.0.1 when that is unspecified
    ///   (geth's fallback too, which only nodes on this machine can reach), and the listen
    ///   port; once [`MIN_STATEMENTS`](crate::endpoint::MIN_STATEMENTS) hosts agree on another
    ///   endpoint, within [`STATEMENT_WINDOW`](crate::endpoint::STATEMENT_WINDOW), in the
    ///   Pongs and Pings of discv4 and the PONGs of discv5, the record takes its IP and UDP
    ///   port (a node behind NAT thereby advertises its public mapping) and the node reports
    ///   [`NodeEvent::EndpointChanged`](super::NodeEvent::EndpointChanged). See
    ///   [`LocalRecord`](crate::endpoint::LocalRecord) for the rules.
    pub advertised_ip: Option<IpAddr>,
    /// NAT traversal (geth's `--nat`). [`Nat::ExtIp`] advertises its IP (before
    /// [`advertised_ip`](Self::advertised_ip)). [`Nat::Upnp`], [`Nat::Pmp`] and [`Nat::Any`]
    /// have the router forward the listen port (TCP, and UDP with discovery) and advertise
    /// the router's external IP and the ports it grants, renewing the mappings on
    /// [`port_mapping`](Self::port_mapping)'s schedule; the driver does the gateway I/O (see
    /// [`crate::nat`]). As in geth, ports are mapped only when the listen IP is unspecified
    /// or public, not loopback or private. Default: [`Nat::None`].
    pub nat: Nat,
    /// The schedule of port mapping: geth's by default (10-minute leases renewed every 8
    /// minutes, failures retried after 5, the external IP asked every 2).
    pub port_mapping: PortMappingConfig,
    /// Peers at most.
    pub max_peers: usize,
    /// Inbound handshakes and dials in flight at most.
    pub max_pending_peers: usize,
    /// `MaxPeers / dial_ratio` peers are dialled by us (0 means the default 3).
    pub dial_ratio: usize,
    /// Never dial anyone (static peers included).
    pub no_dial: bool,
    /// Run without discovery (neither version, whatever [`discv4`](Self::discv4) and
    /// [`discv5`](Self::discv5) say).
    pub no_discovery: bool,
    /// Run discovery v4 (default: on).
    pub discv4: bool,
    /// Run discovery v5 on the same UDP socket. A datagram goes to v4 when its framing is
    /// v4's and to v5 otherwise, as in geth ([`crate::discv4::wire::is_packet`]); both feed
    /// the dialer and start from the same node database.
    ///
    /// Default: on. geth v1.17 runs both versions unless told otherwise (`node/defaults.go`
    /// sets `DiscoveryV4` and `DiscoveryV5`; `--discovery.v5` defaults to true), so a node of
    /// ours started with the defaults is found, and finds peers, on the v5 network too (where
    /// most consensus-layer and many execution nodes are). What it costs a node whose
    /// bootnodes do not speak v5: one `FINDNODE [0]` per bootnode per refresh, timing out.
    pub discv5: bool,
    /// discv5's own settings, when it runs: which nodes FINDNODE answers serve
    /// ([`prefer_live`](Discv5Config::prefer_live)), the session layer's limits, the TALKREQ
    /// limits. Its `bootnodes` and `net_restrict` are not read: discv5 takes this config's
    /// [`bootnodes`](Self::bootnodes), [`bootnode_records`](Self::bootnode_records) and
    /// [`net_restrict`](Self::net_restrict), as discv4 and the dialer do.
    pub discv5_config: Discv5Config,
    /// Discovery bootnodes, for every version that runs (geth's `--bootnodes` sets both
    /// lists). discv5 asks a bootnode known by its enode for its record first
    /// (`FINDNODE [0]`); one that does not speak v5 costs that request per refresh.
    pub bootnodes: Vec<Enode>,
    /// Bootnodes known by their signed record (an `enr:` text), for every version that runs.
    /// discv5 can use them at once; discv4 takes their key, IP and UDP and TCP ports.
    pub bootnode_records: Vec<Enr>,
    /// DNS discovery (EIP-1459): `enrtree://` trees to walk for dial candidates (geth's
    /// `--discovery.dns`; empty: none, the default here, while geth defaults to its network's
    /// tree). The node asks its driver to resolve TXT names ([`Action::ResolveTxt`], answered
    /// with [`Node::dns_answer`]); every record a tree yields, verified against the tree's
    /// signed root, becomes a dial candidate beside those discovery finds, and is also given
    /// to the discovery tables as a seed (see [`Node::dns_answer`] for why). Independent of
    /// [`no_discovery`](Self::no_discovery): a node without discovery can still dial what
    /// DNS lists; one that dials nobody ([`no_dial`](Self::no_dial), `max_peers` 0) never
    /// walks the trees.
    ///
    /// [`Action::ResolveTxt`]: super::Action::ResolveTxt
    /// [`Node::dns_answer`]: super::Node::dns_answer
    pub dns: Vec<TreeUrl>,
    /// Peers kept connected.
    pub static_nodes: Vec<Enode>,
    /// Peers admitted past the peer limits.
    pub trusted_nodes: Vec<NodeId>,
    /// When set, only these networks are dialled, accepted or taken from discovery.
    pub net_restrict: Option<NetList>,
    /// The node database from an earlier run.
    pub node_db: NodeDbSnapshot,
    /// Sequence number of our first record (geth starts from unix milliseconds, so a wiped
    /// database still yields a higher one); `None`: 1. Raised above
    /// [`node_db`](Self::node_db)'s [`local_seq`](NodeDbSnapshot::local_seq), the seq saved
    /// by the last run, so that a restart never signs a seq a peer already holds.
    pub enr_seq: Option<u64>,
    /// See [`DEFAULT_MAX_PENDING_MESSAGES`].
    pub max_pending_messages: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig::default(),
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 30303),
            advertised_ip: None,
            nat: Nat::None,
            port_mapping: PortMappingConfig::default(),
            max_peers: DEFAULT_MAX_PEERS,
            max_pending_peers: DEFAULT_MAX_PENDING_PEERS,
            dial_ratio: 0,
            no_dial: false,
            no_discovery: false,
            discv4: true,
            discv5: true,
            discv5_config: Discv5Config::default(),
            bootnodes: Vec::new(),
            bootnode_records: Vec::new(),
            dns: Vec::new(),
            static_nodes: Vec::new(),
            trusted_nodes: Vec::new(),
            net_restrict: None,
            node_db: NodeDbSnapshot::default(),
            enr_seq: None,
            max_pending_messages: DEFAULT_MAX_PENDING_MESSAGES,
        }
    }
}

impl NodeConfig {
    /// Whether discovery v4 runs.
    pub fn runs_discv4(&self) -> bool {
        !self.no_discovery && self.discv4
    }

    /// Whether discovery v5 runs.
    pub fn runs_discv5(&self) -> bool {
        !self.no_discovery && self.discv5
    }

    /// The IP we advertise at start: that of [`Nat::ExtIp`], else
    /// [`advertised_ip`](Self::advertised_ip) if set, else the listen IP, else (listening on
    /// an unspecified address) 127.0.0.1. With port mapping, the gateway's external IP
    /// replaces it once known ([`Node::advertised_ip`](super::Node::advertised_ip)).
    pub fn ip_to_advertise(&self) -> IpAddr {
        if let Nat::ExtIp(ip) = self.nat {
            ip
        } else if let Some(ip) = self.advertised_ip {
            ip
        } else if self.listen.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            self.listen.ip()
        }
    }
}
