//! The node's vocabulary for drivers and applications: connection ids, actions, events, peer
//! details and statistics.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use crate::dial::{DialKind, SkipReason};
use crate::discv4::{DropReason, Event as DiscoveryEvent};
use crate::discv5::discovery::{Event as Discv5Event, TalkError};
use crate::discv5::{DropReason as Discv5DropReason, SendError as Discv5SendError};
use crate::dnsdisc::Event as DnsEvent;
pub use crate::dnsdisc::QueryId as DnsQueryId;
use crate::identity::{NodeId, NodePublicKey};
use crate::nat::NatEvent;
use crate::rlpx::HandshakeError;
use crate::session::{
    DisconnectReason, ProtocolId, SessionError, SharedCapability, Side, TimeoutKind,
};
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

/// Something the driver must do with its sockets. Deliberately exhaustive: a driver must
/// handle every action, so a new one is a compile error in a driver, not an ignored one.
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
    /// DNS discovery: look up the TXT records at `name` and hand every one of them (each
    /// record's character-strings joined with no separator) to
    /// [`Node::dns_answer`](super::Node::dns_answer) with `query`, or why there are none.
    /// The node times the lookup itself
    /// ([`LOOKUP_TIMEOUT`](crate::dnsdisc::client::LOOKUP_TIMEOUT)) and ignores an answer
    /// that comes later, so a driver need not cancel anything; it should not block its loop
    /// while it resolves. Only with [`NodeConfig::dns`](super::NodeConfig::dns) set.
    ResolveTxt {
        /// The lookup, to name in the answer.
        query: DnsQueryId,
        /// The name, such as `C7HRFPF3BLGF3YR4DY5KX3SMBE.nodes.example.org`.
        name: String,
    },
}

/// Details of a connected peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Bytes queued for the connection, not written yet.
    pub queued: usize,
    /// When the Hello exchange completed.
    pub connected_since: Instant,
}

/// What the application hears from a node.
///
/// Events may be added in later versions: match with a `_ =>` arm.
///
/// ```
/// use devp2p_core::node::NodeEvent;
/// use devp2p_core::session::ProtocolId;
/// use devp2p_core::NodeSecretKey;
/// use rand_core::SeedableRng;
///
/// /// What an application might do with each event; here it only says so.
/// fn handle(event: NodeEvent) -> String {
///     match event {
///         NodeEvent::PeerAdded(peer) => format!("{} joined: {}", peer.id, peer.client_id),
///         NodeEvent::PeerRemoved { id, reason, error, .. } => {
///             format!("{id} left ({reason:?}, {error:?})")
///         }
///         NodeEvent::Message { peer, protocol, code, payload } => {
///             format!("{} bytes from {peer}: {protocol}, code {code}", payload.len())
///         }
///         // A send to `peer` was refused as QueueFull; now it fits: send it again.
///         NodeEvent::Writable { peer } => format!("{peer} has room again"),
///         // Static and trusted peers failing is news; discovered candidates fail routinely.
///         NodeEvent::ConnectionFailed(failure) if failure.is_configured_peer() => {
///             format!("warning: {failure}")
///         }
///         NodeEvent::ConnectionFailed(_) | NodeEvent::Discovery(_) => String::new(),
///         // Events added in later versions: ignored until this code learns them.
///         _ => String::new(),
///     }
/// }
///
/// let peer = NodeSecretKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(1)).id();
/// let message = NodeEvent::Message {
///     peer,
///     protocol: ProtocolId::new(0),
///     code: 3,
///     payload: b"hi".to_vec(),
/// };
/// assert_eq!(handle(message), format!("2 bytes from {peer}: protocol #0, code 3"));
/// assert_eq!(handle(NodeEvent::Writable { peer }), format!("{peer} has room again"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
        /// The protocol (see [`ProtocolId`]).
        protocol: ProtocolId,
        /// Message code within the protocol, counted from its first message.
        code: u64,
        /// Payload.
        payload: Vec<u8>,
    },
    /// A [`send`](super::Node::send) to `peer` was refused with
    /// [`SendError::QueueFull`](crate::session::SendError::QueueFull), and its queue now
    /// has room for that message: send again. Once per refusal. (devp2p-tokio's event stream
    /// carries it only after a refused `try_send`: its `send` and `post` wait by themselves.)
    Writable {
        /// The peer.
        peer: NodeId,
    },
    /// A connection, or a dial, ended before it became a peer: who, where, and why.
    ConnectionFailed(Box<ConnectionFailure>),
    /// Something discovery v4 reports (nodes added and removed, lookup results).
    Discovery(Box<DiscoveryEvent>),
    /// Something discovery v5 reports: nodes added and removed, lookup results (their ids
    /// are v5's own, apart from v4's), a TALKREQ of a registered protocol to answer with
    /// [`Node::answer_talk`](super::Node::answer_talk), and the answer (or the failure) of
    /// each [`Node::talk_request`](super::Node::talk_request).
    Discv5(Box<Discv5Event>),
    /// Our record now advertises another UDP endpoint: enough peers agreed on the address
    /// they see us at (endpoint prediction, see
    /// [`NodeConfig::advertised_ip`](super::NodeConfig::advertised_ip); never when it is
    /// set). The record carrying `new` has seq `seq`; it is signed when first needed, and
    /// discovery spreads it (Ping and Pong carry the seq, peers fetch the record). The TCP
    /// port stays the listen port. Save the node database soon
    /// ([`Node::db_snapshot`](super::Node::db_snapshot) holds the seq): a restart must sign
    /// a higher one.
    EndpointChanged {
        /// The endpoint advertised before (`None`: the record had no IP and UDP port).
        old: Option<SocketAddr>,
        /// The endpoint advertised now.
        new: SocketAddr,
        /// The seq of the record advertising `new`.
        seq: u64,
    },
    /// Port mapping ([`NodeConfig::nat`](super::NodeConfig::nat)): the gateway's external IP,
    /// ports granted and removed, and every failure (retried on the schedule, never fatal).
    /// After one that changes what we advertise, [`Node::local_enr`](super::Node::local_enr)
    /// and [`Node::local_enode`](super::Node::local_enode) return the new record and URL.
    Nat(NatEvent),
    /// Something DNS discovery reports ([`NodeConfig::dns`](super::NodeConfig::dns)): a
    /// verified record a tree yielded (`Node`, also offered to the dialer), a tree's root
    /// accepted (`RootUpdated`) or an older one ignored (`StaleRoot`), a linked tree added or
    /// dropped (`TreeLinked`), and every failure (`Error`: the lookup failed or timed out, an
    /// entry did not match its hash or did not parse, a root's signature did not verify),
    /// naming the tree and the name. The walk goes on after a failure; a tree whose root
    /// never resolves is asked again after 5 s, then 10 s, as geth does.
    Dns(Box<DnsEvent>),
}

/// A discovery protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DiscoveryVersion {
    /// Node Discovery v4.
    V4,
    /// Node Discovery v5 (wire version 5.1).
    V5,
}

impl fmt::Display for DiscoveryVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DiscoveryVersion::V4 => "discv4",
            DiscoveryVersion::V5 => "discv5",
        })
    }
}

/// Why a discv5 command of the [`Node`](super::Node) did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Discv5Error {
    /// discv5 does not run: [`NodeConfig::discv5`](super::NodeConfig::discv5) is off, or
    /// [`no_discovery`](super::NodeConfig::no_discovery) is set.
    NotRunning,
    /// [`MAX_TALK_PROTOCOLS`](crate::discv5::discovery::MAX_TALK_PROTOCOLS) protocols are
    /// registered already.
    TooManyProtocols,
    /// The session layer refused to send the request (to ourselves, too large, too many
    /// waiting, or a record without an IP and UDP port).
    Send(Discv5SendError),
    /// The TALKREQ is not waiting for an answer (answered already, or forgotten after
    /// [`TALK_ANSWER_TIMEOUT`](crate::discv5::discovery::TALK_ANSWER_TIMEOUT)), or its
    /// answer could not be sent.
    Talk(TalkError),
}

impl fmt::Display for Discv5Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Discv5Error::NotRunning => f.write_str("discovery v5 does not run on this node"),
            Discv5Error::TooManyProtocols => {
                f.write_str("too many TALKREQ protocols registered (unregister one first)")
            }
            Discv5Error::Send(e) => write!(f, "discv5 request not sent: {e}"),
            Discv5Error::Talk(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Discv5Error {}

/// Why [`Node::set_local_record`](super::Node::set_local_record) kept the record it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LocalRecordError {
    /// The record is signed by another key: it names another node.
    NotOurs {
        /// The node it names.
        signer: NodeId,
    },
    /// Its seq is not above the current record's: nodes holding the current one would never
    /// take it (a changed record needs a higher seq, EIP-778).
    NotNewer {
        /// The offered record's seq.
        seq: u64,
        /// The current record's seq.
        current: u64,
    },
    /// The node runs no discovery, so it has no record.
    NoDiscovery,
}

impl fmt::Display for LocalRecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalRecordError::NotOurs { signer } => {
                write!(
                    f,
                    "record refused: it is signed by {signer}, not by our key"
                )
            }
            LocalRecordError::NotNewer { seq, current } => write!(
                f,
                "record refused: its seq {seq} is not above the current record's {current}"
            ),
            LocalRecordError::NoDiscovery => f.write_str(
                "record refused: this node runs no discovery (enable discv4 or discv5 in its \
                 NodeConfig)",
            ),
        }
    }
}

impl std::error::Error for LocalRecordError {}

/// A dial or an inbound connection that did not become a peer (see
/// [`NodeEvent::ConnectionFailed`]).
///
/// A node on a public network sees many: discovered candidates that are full, gone, behind a
/// firewall or not Ethereum nodes at all fail routinely, and strangers' connections are
/// refused at the limits. [`is_configured_peer`](Self::is_configured_peer) picks the ones an
/// operator wants to hear about; the drivers log those at info level and the rest at debug,
/// with this value's [`Display`](fmt::Display) as the message. Nothing needs cleaning up:
/// the node has already forgotten the connection, and redials a static peer by itself (after
/// [`DIAL_HISTORY_EXPIRATION`](crate::dial::DIAL_HISTORY_EXPIRATION)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionFailure {
    /// The connection, if one was opened.
    pub conn: Option<ConnId>,
    /// Who opened it (a dial not even started is [`Direction::Outbound`]).
    pub direction: Direction,
    /// The remote TCP address (for a dial not started: the one it would have used, if any).
    pub addr: Option<SocketAddr>,
    /// The remote's key: the one dialled, or the one an inbound connection proved.
    pub remote: Option<NodePublicKey>,
    /// For dials: why we dialled (a static peer, or a candidate from discovery).
    pub dial: Option<DialKind>,
    /// Whether the remote is a trusted peer.
    pub trusted: bool,
    /// What went wrong.
    pub error: ConnectError,
}

impl ConnectionFailure {
    /// Whether the application asked for this peer (a static or trusted one) rather than
    /// discovery or a stranger: worth telling the operator about.
    pub fn is_configured_peer(&self) -> bool {
        self.trusted || self.dial == Some(DialKind::Static)
    }
}

impl fmt::Display for ConnectionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match self.dial {
            Some(DialKind::Static) => "static peer",
            Some(DialKind::Dynamic) => "peer",
            None if self.direction == Direction::Outbound => "peer",
            None => "inbound connection",
        };
        f.write_str(if self.direction == Direction::Outbound {
            "dial to "
        } else {
            ""
        })?;
        f.write_str(who)?;
        if let Some(k) = &self.remote {
            write!(f, " {}", k.id())?;
        }
        if let Some(a) = &self.addr {
            write!(f, " at {a}")?;
        }
        write!(f, " failed: {}", self.error)
    }
}

/// Why a connection failed before it became a peer. Its [`Display`](fmt::Display) says what
/// happened in a sentence, and for the usual operator mistakes what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// The node was not dialled: see the reason. A configured static node that can never be
    /// dialled is reported so once, at start; [`Node::add_static`](super::Node::add_static)
    /// returns the same reason instead.
    NotDialable(Undialable),
    /// The TCP connect failed: refused (nothing listens at that port: a wrong port, or the
    /// node is down), unreachable, and so on, as `kind` and `message` say.
    Tcp {
        /// The OS error kind.
        kind: std::io::ErrorKind,
        /// What the OS said.
        message: String,
    },
    /// The TCP connect took longer than [`DIAL_TIMEOUT`](super::DIAL_TIMEOUT): the host is
    /// down, or a firewall drops the packets.
    TcpTimeout,
    /// A lookup for a static node's key (it has no address) found no address. It is looked
    /// up again later; a node that is not in the discovery network is never found, so give
    /// its address.
    Unresolved,
    /// The connection closed during the RLPx handshake, before the remote proved any key.
    /// For a dial this is what a node does when it does not hold the key dialled (a stale or
    /// wrong enode), or when it is not an RLPx node.
    ClosedDuringHandshake,
    /// The RLPx handshake failed: the remote sent an auth or ack that does not decrypt or
    /// decode (it speaks something else, or is broken).
    Rlpx(HandshakeError),
    /// A deadline passed: the handshake or the Hello took too long.
    Timeout(TimeoutKind),
    /// We refused the peer and told it this reason: a limit (`TooManyPeers`: raise
    /// `max_peers`, or trust the peer), a duplicate (`AlreadyConnected`: harmless), ourselves
    /// (`ConnectedToSelf`), or no shared capability (`UselessPeer`, with `error` listing what it
    /// offered: compare with our protocols).
    Refused {
        /// The reason sent.
        reason: DisconnectReason,
        /// The detail, when there is one.
        error: Option<SessionError>,
    },
    /// The remote disconnected before it became a peer, with its reason if it sent one
    /// (`TooManyPeers` is the usual one: it is full; a static peer is retried later).
    RemoteDisconnected(Option<DisconnectReason>),
    /// The remote broke the protocol (a bad Hello or frame, an identity mismatch); we told
    /// it so.
    Protocol(SessionError),
    /// The connection dropped after the RLPx handshake, before the Hello exchange ended.
    ConnectionLost,
    /// An inbound connection still in its RLPx handshake closed to make room for a newer one
    /// (see [`HandshakeOutcome::Displaced`]).
    Displaced,
    /// The node shut down while the connection was being set up.
    ShuttingDown,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::NotDialable(u) => write!(f, "not dialled: {u}"),
            ConnectError::Tcp { message, .. } => write!(f, "TCP connect failed: {message}"),
            ConnectError::TcpTimeout => write!(
                f,
                "TCP connect timed out after {} s",
                super::DIAL_TIMEOUT.as_secs()
            ),
            ConnectError::Unresolved => {
                f.write_str("a discovery lookup for its key found no address; retrying later")
            }
            ConnectError::ClosedDuringHandshake => f.write_str(
                "the connection closed during the RLPx handshake, before the remote proved a \
                 key: a node does this when it does not hold the key dialled (is the enode \
                 stale?), or it is not an RLPx node",
            ),
            ConnectError::Rlpx(e) => write!(f, "RLPx handshake failed: {e}"),
            ConnectError::Timeout(k) => write!(f, "{}", SessionError::Timeout(*k)),
            ConnectError::Refused {
                reason,
                error: Some(e),
            } => write!(f, "refused ({reason}): {e}"),
            ConnectError::Refused {
                reason,
                error: None,
            } => write!(f, "refused: {reason}"),
            ConnectError::RemoteDisconnected(Some(r)) => write!(f, "the remote disconnected: {r}"),
            ConnectError::RemoteDisconnected(None) => {
                f.write_str("the remote disconnected without a reason")
            }
            ConnectError::Protocol(e) => write!(f, "protocol error: {e}"),
            ConnectError::ConnectionLost => {
                f.write_str("the connection dropped before the Hello exchange ended")
            }
            ConnectError::Displaced => f.write_str(
                "closed before its RLPx handshake completed, to make room for a newer inbound \
                 connection",
            ),
            ConnectError::ShuttingDown => f.write_str("the node is shutting down"),
        }
    }
}

impl std::error::Error for ConnectError {}

impl ConnectError {
    /// How the handshake phase ended, for [`NodeStats::handshakes`]; `None` when there was
    /// no session.
    pub fn handshake_outcome(&self) -> Option<HandshakeOutcome> {
        Some(match self {
            ConnectError::NotDialable(_)
            | ConnectError::Tcp { .. }
            | ConnectError::TcpTimeout
            | ConnectError::Unresolved => return None,
            ConnectError::ShuttingDown => {
                HandshakeOutcome::Refused(DisconnectReason::ClientQuitting)
            }
            ConnectError::ClosedDuringHandshake | ConnectError::ConnectionLost => {
                HandshakeOutcome::ConnectionLost
            }
            ConnectError::Rlpx(_) => HandshakeOutcome::RlpxFailed,
            ConnectError::Timeout(_) => HandshakeOutcome::TimedOut,
            ConnectError::Refused { reason, .. } => HandshakeOutcome::Refused(*reason),
            ConnectError::RemoteDisconnected(_) => HandshakeOutcome::RemoteDisconnected,
            ConnectError::Protocol(_) => HandshakeOutcome::ProtocolError,
            ConnectError::Displaced => HandshakeOutcome::Displaced,
        })
    }
}

/// Why a node cannot be dialled (from [`Node::add_static`](super::Node::add_static), or for a
/// configured static node, in a [`NodeEvent::ConnectionFailed`] at start). These are facts
/// about the enode or the configuration, so the node is not kept as a static peer: fix the
/// cause and add it again. Its [`Display`](fmt::Display) says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Undialable {
    /// Its enode names a DNS host, which this node does not resolve (the core does no I/O):
    /// resolve the name yourself and give the IP address.
    DnsName(String),
    /// Its enode has no address (the key-only form) and discovery, which could find one,
    /// is off: give `enode://<key>@<ip>:<port>`.
    NoAddress,
    /// Its TCP port is 0.
    NoPort,
    /// This node dials nobody: `max_peers` is 0 or `no_dial` is set. It still accepts
    /// connections from the node, if it is trusted or the limits allow.
    DialingOff,
    /// It is this node.
    IsSelf,
    /// Its address is outside `net_restrict`.
    NetRestrict,
}

impl fmt::Display for Undialable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Undialable::DnsName(h) => write!(
                f,
                "its enode names the DNS host {h:?}, which is not resolved here: give its IP \
                 address"
            ),
            Undialable::NoAddress => f.write_str(
                "its enode has no address, and without discovery none can be found: give \
                 enode://<key>@<ip>:<port>",
            ),
            Undialable::NoPort => f.write_str("its TCP port is 0"),
            Undialable::DialingOff => f.write_str(
                "this node dials nobody (max_peers is 0, or no_dial is set): raise max_peers",
            ),
            Undialable::IsSelf => f.write_str("it is this node"),
            Undialable::NetRestrict => f.write_str("its address is outside net_restrict"),
        }
    }
}

impl std::error::Error for Undialable {}

/// Why an inbound connection was closed before its handshake began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
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
#[non_exhaustive]
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
#[non_exhaustive]
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

/// The discv4 packet types, for counting ([`NodeStats::packets_in`]; discv5's are counted
/// apart).
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
#[non_exhaustive]
pub struct NodeStats {
    /// Datagrams received, by type.
    pub packets_in: BTreeMap<PacketKind, u64>,
    /// Datagrams sent, by type.
    pub packets_out: BTreeMap<PacketKind, u64>,
    /// Datagrams (or Neighbors entries) discovery v4 dropped, by reason.
    pub packets_dropped: BTreeMap<DropReason, u64>,
    /// discv5 datagrams received (counted apart: [`packets_in`](Self::packets_in) holds
    /// discv4's, by type).
    pub discv5_packets_in: u64,
    /// discv5 datagrams sent.
    pub discv5_packets_out: u64,
    /// Datagrams discv5 dropped, by reason (on a socket shared with v4: those v4 could not
    /// read either, as [`Discv5DropReason::NotDiscv5`]).
    pub discv5_packets_dropped: BTreeMap<Discv5DropReason, u64>,
    /// discv5 sessions held now (a gauge, not a counter): one per node and address a
    /// handshake was made with, at most
    /// [`SessionsConfig::max_sessions`](crate::discv5::SessionsConfig::max_sessions).
    pub discv5_sessions: usize,
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
    /// DNS discovery: TXT lookups asked of the driver ([`Action::ResolveTxt`]).
    pub dns_lookups: u64,
    /// DNS discovery failures, each also a [`NodeEvent::Dns`] holding an `Error`: lookups
    /// that failed or timed out, entries that did not verify or parse, roots refused.
    pub dns_errors: u64,
    /// Verified records DNS trees yielded (each offered to the dialer).
    pub dns_nodes: u64,
}
