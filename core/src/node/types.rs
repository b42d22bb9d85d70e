//! The node's vocabulary for drivers and applications: connection ids, actions, events, peer
//! details and statistics.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use crate::dial::SkipReason;
use crate::discv4::{DropReason, Event as DiscoveryEvent};
use crate::identity::{NodeId, NodePublicKey};
use crate::session::{DisconnectReason, SessionError, SharedCapability, Side};
use crate::time::Instant;

/// A connection's handle, chosen by the node and unique for its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Who opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// The peer connected to us.
    Inbound,
    /// We dialled the peer.
    Outbound,
}

/// Something the driver must do with its sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection; report [`Node::handle_connected`](super::Node::handle_connected)
    /// or [`Node::handle_connect_failed`](super::Node::handle_connect_failed).
    Dial {
        /// The handle of the new connection.
        conn: ConnId,
        /// Where to connect.
        addr: SocketAddr,
    },
    /// Bytes wait in [`Node::outbound`](super::Node::outbound) for this connection.
    Write {
        /// The connection.
        conn: ConnId,
    },
    /// Close the connection; the node has forgotten it.
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// Details of a connected peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Node id.
    pub id: NodeId,
    /// Public key.
    pub public_key: NodePublicKey,
    /// The connection.
    pub conn: ConnId,
    /// Remote TCP address.
    pub addr: SocketAddr,
    /// Who opened the connection.
    pub direction: Direction,
    /// Negotiated capabilities.
    pub capabilities: Vec<SharedCapability>,
    /// The client id from its Hello.
    pub client_id: String,
    /// Whether it is trusted (admitted past the limits).
    pub trusted: bool,
    /// Whether it is a static peer.
    pub is_static: bool,
    /// Bytes read from the connection.
    pub bytes_in: u64,
    /// Bytes written to the connection.
    pub bytes_out: u64,
    /// When the Hello exchange completed.
    pub connected_since: Instant,
}

/// What the application hears from a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A peer passed every check and is ready for messages.
    PeerAdded(Box<PeerInfo>),
    /// A peer left.
    PeerRemoved {
        /// Its id.
        id: NodeId,
        /// Who ended the session.
        initiator: Side,
        /// The Disconnect reason sent or received.
        reason: Option<DisconnectReason>,
        /// What went wrong, if anything did.
        error: Option<SessionError>,
    },
    /// A sub-protocol message from a peer.
    Message {
        /// The sender.
        peer: NodeId,
        /// Index of the protocol in the session config's protocol list.
        protocol: usize,
        /// Message code within the protocol.
        code: u64,
        /// Payload.
        payload: Vec<u8>,
    },
    /// Something discovery reports (nodes added and removed, lookup results).
    Discovery(Box<DiscoveryEvent>),
}

/// Why an inbound connection was closed before its handshake began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefuseReason {
    /// MaxPendingPeers inbound handshakes are already running, and each has completed its
    /// RLPx handshake (otherwise the oldest that has not is displaced instead).
    TooManyPending,
    /// The source address is outside NetRestrict.
    NetRestrict,
    /// The source IP connected less than 30 s ago.
    Throttled,
}

impl fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefuseReason::TooManyPending => "too many pending inbound connections",
            RefuseReason::NetRestrict => "source outside NetRestrict",
            RefuseReason::Throttled => "too many attempts from this IP",
        })
    }
}

impl std::error::Error for RefuseReason {}

/// How a connection's handshake phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HandshakeOutcome {
    /// The peer was added.
    Established,
    /// We refused it after the handshake (limits, duplicate, self, useless, identity).
    Refused(DisconnectReason),
    /// The peer disconnected first.
    RemoteDisconnected,
    /// The RLPx handshake failed (bad MAC, bad key, malformed, too large).
    RlpxFailed,
    /// A deadline passed.
    TimedOut,
    /// A broken Hello or frame.
    ProtocolError,
    /// The connection dropped.
    ConnectionLost,
    /// An inbound connection closed before it completed its RLPx handshake, to make room for
    /// a newer one when every MaxPendingPeers slot was taken (see
    /// [`Node::handle_accept`](super::Node::handle_accept)).
    Displaced,
}

/// How a dial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DialOutcome {
    /// The TCP connect failed.
    ConnectFailed,
    /// The TCP connect took longer than the dial timeout.
    ConnectTimeout,
    /// The peer was added.
    Established,
    /// Connected, but the handshake or admission failed.
    HandshakeFailed,
}

/// The discv4 packet types, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PacketKind {
    /// Ping (0x01).
    Ping,
    /// Pong (0x02).
    Pong,
    /// FindNode (0x03).
    FindNode,
    /// Neighbors (0x04).
    Neighbors,
    /// ENRRequest (0x05).
    EnrRequest,
    /// ENRResponse (0x06).
    EnrResponse,
    /// Too short to tell, or an unknown type.
    Other,
}

impl PacketKind {
    /// The kind of a raw datagram, from its type byte (after hash and signature).
    pub fn of(datagram: &[u8]) -> Self {
        match datagram.get(97) {
            Some(1) => PacketKind::Ping,
            Some(2) => PacketKind::Pong,
            Some(3) => PacketKind::FindNode,
            Some(4) => PacketKind::Neighbors,
            Some(5) => PacketKind::EnrRequest,
            Some(6) => PacketKind::EnrResponse,
            _ => PacketKind::Other,
        }
    }
}

/// Counters: every dial skipped, connection refused and disconnect is counted by its reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Datagrams received, by type.
    pub packets_in: BTreeMap<PacketKind, u64>,
    /// Datagrams sent, by type.
    pub packets_out: BTreeMap<PacketKind, u64>,
    /// Datagrams (or Neighbors entries) discovery dropped, by reason.
    pub packets_dropped: BTreeMap<DropReason, u64>,
    /// Connections by how their handshake phase ended.
    pub handshakes: BTreeMap<HandshakeOutcome, u64>,
    /// Dials started.
    pub dials_started: u64,
    /// Dials by outcome.
    pub dials: BTreeMap<DialOutcome, u64>,
    /// Dial candidates skipped, by reason.
    pub dials_skipped: BTreeMap<SkipReason, u64>,
    /// Inbound connections refused before their handshake, by reason.
    pub refused: BTreeMap<RefuseReason, u64>,
    /// Sessions ended, by who ended them and the reason given.
    pub disconnects: BTreeMap<(Side, Option<DisconnectReason>), u64>,
    /// TCP bytes read.
    pub bytes_in: u64,
    /// TCP bytes written.
    pub bytes_out: u64,
    /// UDP bytes received.
    pub udp_bytes_in: u64,
    /// UDP bytes sent.
    pub udp_bytes_out: u64,
}
