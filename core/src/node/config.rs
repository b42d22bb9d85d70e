//! What a [`Node`](super::Node) is told at start, and the limits it keeps
//! ([PROTOCOL.md §9](crate::spec::protocol)).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::discv4::NodeDbSnapshot;
use crate::enode::Enode;
use crate::identity::NodeId;
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
    /// `0.0.0.0`). `None`: the listen IP, or 127.0.0.1 when that is unspecified (geth's
    /// fallback too), which only nodes on this machine can reach.
    pub advertised_ip: Option<IpAddr>,
    /// Peers at most.
    pub max_peers: usize,
    /// Inbound handshakes and dials in flight at most.
    pub max_pending_peers: usize,
    /// `MaxPeers / dial_ratio` peers are dialled by us (0 means the default 3).
    pub dial_ratio: usize,
    /// Never dial anyone (static peers included).
    pub no_dial: bool,
    /// Run without discovery.
    pub no_discovery: bool,
    /// Discovery bootnodes.
    pub bootnodes: Vec<Enode>,
    /// Peers kept connected.
    pub static_nodes: Vec<Enode>,
    /// Peers admitted past the peer limits.
    pub trusted_nodes: Vec<NodeId>,
    /// When set, only these networks are dialled, accepted or taken from discovery.
    pub net_restrict: Option<NetList>,
    /// The node database from an earlier run.
    pub node_db: NodeDbSnapshot,
    /// Sequence number of our first record (geth starts from unix milliseconds, so a wiped
    /// database still yields a higher one); `None`: 1.
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
            max_peers: DEFAULT_MAX_PEERS,
            max_pending_peers: DEFAULT_MAX_PENDING_PEERS,
            dial_ratio: 0,
            no_dial: false,
            no_discovery: false,
            bootnodes: Vec::new(),
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
    /// The IP we advertise: [`advertised_ip`](Self::advertised_ip) if set, else the listen
    /// IP, else (listening on an unspecified address) 127.0.0.1.
    pub fn ip_to_advertise(&self) -> IpAddr {
        if let Some(ip) = self.advertised_ip {
            ip
        } else if self.listen.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            self.listen.ip()
        }
    }
}
