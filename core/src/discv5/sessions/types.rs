//! What goes in and comes out of the session layer: addresses and contacts, requests and
//! their answers, events, and the typed reasons for refusals, failures and drops.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::discv5::message::{FindNode, Message, Ping, Pong, RequestId, TalkReq};
use crate::enr::Enr;
use crate::identity::{NodeId, NodePublicKey};

/// One end of a session: a node id at a UDP address. Sessions, challenges and requests are
/// all keyed by both, so a session made from one address never decrypts packets from another
/// ([DISCV5.md §6](crate::spec::discv5); hive `PingMultiIP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeAddress {
    /// The node id.
    pub id: NodeId,
    /// Its UDP address, in the canonical form of [`NodeAddress::new`].
    pub addr: SocketAddr,
}

impl NodeAddress {
    /// `id` at `addr`, with an IPv4-mapped IPv6 address unwrapped to IPv4 (as geth's read
    /// loop does) and the IPv6 flow label cleared, so that one peer has one key. The scope id
    /// of a link-local address stays: it is needed to answer.
    pub fn new(id: NodeId, addr: SocketAddr) -> Self {
        NodeAddress {
            id,
            addr: canonical_addr(addr),
        }
    }
}

impl fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", hex::encode(&self.id.0[..8]), self.addr)
    }
}

/// The form in which an address keys sessions: see [`NodeAddress::new`].
pub fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => SocketAddr::V6(std::net::SocketAddrV6::new(
                *v6.ip(),
                v6.port(),
                0,
                v6.scope_id(),
            )),
        },
        v4 => v4,
    }
}

/// Whom a request goes to, and what we know of them. A handshake needs the node's public
/// key, from its record or given directly; a contact with only an id can still use an
/// existing session, and fails with [`RequestFailure::NoPublicKey`] if the node asks for a
/// handshake and no record of it is known (geth `TalkRequestToID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    address: NodeAddress,
    key: Option<NodePublicKey>,
    record: Option<Enr>,
}

impl Contact {
    /// The node of `record` at the UDP endpoint the record advertises; `None` if it
    /// advertises none.
    pub fn from_record(record: Enr) -> Option<Contact> {
        let addr = record.udp_endpoint()?;
        Some(Contact::from_record_at(record, addr))
    }

    /// The node of `record` at `addr` (where it was last seen, which may differ from what
    /// the record says).
    pub fn from_record_at(record: Enr, addr: SocketAddr) -> Contact {
        Contact {
            address: NodeAddress::new(record.node_id(), addr),
            key: Some(*record.public_key()),
            record: Some(record),
        }
    }

    /// The node with public key `key` at `addr`, record unknown.
    pub fn from_key(key: NodePublicKey, addr: SocketAddr) -> Contact {
        Contact {
            address: NodeAddress::new(key.id(), addr),
            key: Some(key),
            record: None,
        }
    }

    /// The node `id` at `addr`, key and record unknown.
    pub fn from_id(id: NodeId, addr: SocketAddr) -> Contact {
        Contact {
            address: NodeAddress::new(id, addr),
            key: None,
            record: None,
        }
    }

    /// Node id and address.
    pub fn address(&self) -> NodeAddress {
        self.address
    }

    /// The public key, if known.
    pub fn public_key(&self) -> Option<&NodePublicKey> {
        self.key.as_ref()
    }

    /// The record, if known.
    pub fn record(&self) -> Option<&Enr> {
        self.record.as_ref()
    }
}

/// A request to send with [`super::Sessions::send_request`]. The machine picks the request
/// id (8 random bytes, as geth) and, for PING, fills in our record's seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// PING; answered by [`Response::Pong`].
    Ping,
    /// FINDNODE for these log distances; answered by [`Response::Nodes`].
    FindNode {
        /// Log distances from the recipient's id, 0 for its own record.
        distances: Vec<u64>,
    },
    /// TALKREQ; answered by [`Response::TalkResp`].
    TalkReq {
        /// The application protocol's name.
        protocol: Vec<u8>,
        /// The application's request.
        request: Vec<u8>,
    },
}

impl Request {
    /// The message on the wire.
    pub(super) fn to_message(&self, request_id: RequestId, enr_seq: u64) -> Message {
        match self {
            Request::Ping => Message::Ping(Ping {
                request_id,
                enr_seq,
            }),
            Request::FindNode { distances } => Message::FindNode(FindNode {
                request_id,
                distances: distances.clone(),
            }),
            Request::TalkReq { protocol, request } => Message::TalkReq(TalkReq {
                request_id,
                protocol: protocol.clone(),
                request: request.clone(),
            }),
        }
    }
}

/// The answer to one of our requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The PONG to our PING.
    Pong(Pong),
    /// The NODES messages answering our FINDNODE, put together.
    Nodes(NodesResponse),
    /// The TALKRESP's response bytes.
    TalkResp(Vec<u8>),
}

/// Every NODES message that answered one FINDNODE, put together
/// ([DISCV5.md §3.3](crate::spec::discv5), geth `waitForNodes`). The first message's `total`
/// says how many to wait for, read as 1 when 0 and cut to
/// [`MAX_NODES_RESPONSES`](crate::discv5::message::MAX_NODES_RESPONSES); the answer is
/// complete when that many arrived, or partial (`messages < total`) when the request timed
/// out after at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodesResponse {
    /// The records, in arrival order: verified, at one of the distances asked for (so for
    /// distance 0, the responder's own), each node once. Whether their addresses are worth
    /// relaying (geth `CheckRelayAddr`, port checks) is for the caller to judge.
    pub records: Vec<Enr>,
    /// NODES messages received.
    pub messages: u8,
    /// NODES messages waited for.
    pub total: u8,
    /// Records left out: unverifiable, at a distance not asked for, or repeated.
    pub rejected: usize,
}

/// Which side started the handshake that made a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// The remote answered our WHOAREYOU: it contacted us.
    Inbound,
    /// We answered the remote's WHOAREYOU, and the remote has since sent a packet under the
    /// new keys: we contacted it.
    Outbound,
}

/// Something the owner of the machine needs to know or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A handshake completed. Reported once per handshake, so both directions may be reported
    /// for one peer when both ends handshake at once, and again when the peer handshakes
    /// anew (after a restart, say, perhaps with a newer record).
    SessionEstablished {
        /// The peer.
        node: NodeAddress,
        /// Its record: verified in the handshake for [`Direction::Inbound`] (geth then adds
        /// the node to its table as an inbound node), the one we know for
        /// [`Direction::Outbound`] (none if we contacted it by key or id only).
        record: Option<Enr>,
        /// Who started it.
        direction: Direction,
    },
    /// A peer asked something: PING, FINDNODE or TALKREQ. Answer with
    /// [`super::Sessions::send_response`] (or [`super::Sessions::send_nodes`]) to `from`, the
    /// packet's source, never to the address in the peer's record
    /// ([DISCV5.md §7.5](crate::spec::discv5)).
    Request {
        /// The asker.
        from: NodeAddress,
        /// A [`Message::Ping`], [`Message::FindNode`] or [`Message::TalkReq`].
        request: Message,
    },
    /// One of our requests was answered.
    Response {
        /// The id [`super::Sessions::send_request`] returned.
        id: RequestId,
        /// The responder.
        from: NodeAddress,
        /// The answer.
        response: Response,
    },
    /// One of our requests failed.
    RequestFailed {
        /// The id [`super::Sessions::send_request`] returned.
        id: RequestId,
        /// Where it went.
        to: NodeAddress,
        /// Why.
        reason: RequestFailure,
    },
}

/// Why a request failed after it was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RequestFailure {
    /// No answer after every attempt ([`super::REQUEST_TIMEOUT`] each, with
    /// [`super::REQUEST_RETRIES`] resends).
    Timeout,
    /// The node asked for a handshake, and neither the contact nor any record we know gives
    /// its public key (geth: "remote wants handshake, but call has no ENR").
    NoPublicKey,
    /// The node asked for a handshake, and the request with the handshake's header (and our
    /// record, which the node lacks) does not fit in one packet.
    TooLargeForHandshake,
}

impl fmt::Display for RequestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestFailure::Timeout => "request timed out",
            RequestFailure::NoPublicKey => "handshake asked for, but the node's key is unknown",
            RequestFailure::TooLargeForHandshake => "request too large for a handshake packet",
        })
    }
}

impl std::error::Error for RequestFailure {}

/// Why [`super::Sessions::send_request`], [`super::Sessions::send_response`] or
/// [`super::Sessions::send_nodes`] refused, sending nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SendError {
    /// The destination is our own node id.
    ToSelf,
    /// The message does not fit in an ordinary packet (its plaintext would exceed
    /// [`MAX_MESSAGE_PLAINTEXT`](crate::discv5::packet::MAX_MESSAGE_PLAINTEXT) bytes).
    TooLarge(usize),
    /// [`super::MAX_QUEUED_REQUESTS_PER_NODE`] requests already wait for this node.
    QueueFull,
    /// [`super::MAX_REQUESTS`] requests are already outstanding.
    TooManyRequests,
    /// A response needs a session, and there is none with this node at this address; a
    /// response never starts a handshake ([DISCV5.md §7.5](crate::spec::discv5)).
    NoSession,
    /// [`super::Sessions::send_response`] was given a request (PING, FINDNODE, TALKREQ).
    NotAResponse,
    /// The destination's record advertises no IP and UDP port to send to.
    NoEndpoint,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::ToSelf => f.write_str("destination is this node"),
            SendError::TooLarge(n) => write!(f, "message of {n} bytes does not fit a packet"),
            SendError::QueueFull => f.write_str("too many requests queued for this node"),
            SendError::TooManyRequests => f.write_str("too many requests outstanding"),
            SendError::NoSession => f.write_str("no session with this node at this address"),
            SendError::NotAResponse => f.write_str("not a response message"),
            SendError::NoEndpoint => f.write_str("the record advertises no IP and UDP port"),
        }
    }
}

impl std::error::Error for SendError {}

/// Why an inbound datagram was dropped without an answer
/// ([`super::Sessions::handle_datagram`] returns it, and counts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// Too short, not "discv5" once unmasked with our id, or too short for a message: not
    /// for us, perhaps discv4 on a shared socket (geth `IsInvalidHeader`).
    NotDiscv5,
    /// A discv5 header we do not accept (length, version, flag, authdata size).
    BadHeader,
    /// A packet claiming our own node id as its sender.
    FromSelf,
    /// It decrypted, but the plaintext is no valid message (no WHOAREYOU for it:
    /// [DISCV5.md §2.4](crate::spec::discv5)).
    BadMessage,
    /// A WHOAREYOU whose nonce is none of our requests' packets, or which came from another
    /// address than the request went to (geth matches on the nonce alone, sigp also on the
    /// address; a WHOAREYOU naming a response is ignored too, go-ethereum#30592).
    UnknownChallenge,
    /// A second WHOAREYOU for one attempt of a request: one handshake per attempt (geth: one
    /// per call).
    RepeatedChallenge,
    /// A handshake packet without a pending WHOAREYOU of ours for that node and address.
    UnexpectedHandshake,
    /// A handshake that failed verification (record, signature, ephemeral key, message); the
    /// challenge is deleted, so a retry needs a new one ([DISCV5.md §4.7](crate::spec::discv5)).
    BadHandshake,
    /// A response matching no request in flight to that node and address, by id and type:
    /// unsolicited or late.
    Unsolicited,
    /// An undecryptable packet that would have been answered with a WHOAREYOU, had the
    /// sender's IP address not used up [`super::WHOAREYOU_PER_IP_PER_SECOND`].
    RateLimited,
}

impl DropReason {
    /// Whether the datagram is most likely not discv5 at all, so that a socket shared with
    /// discv4 should hand it there ([DISCV5.md §10](crate::spec::discv5)).
    pub fn is_not_discv5(&self) -> bool {
        *self == DropReason::NotDiscv5
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::NotDiscv5 => "not a discv5 packet for us",
            DropReason::BadHeader => "invalid discv5 header",
            DropReason::FromSelf => "packet from our own node id",
            DropReason::BadMessage => "malformed message",
            DropReason::UnknownChallenge => "WHOAREYOU for no request of ours",
            DropReason::RepeatedChallenge => "second WHOAREYOU for one attempt",
            DropReason::UnexpectedHandshake => "handshake without a pending challenge",
            DropReason::BadHandshake => "invalid handshake",
            DropReason::Unsolicited => "unsolicited response",
            DropReason::RateLimited => "WHOAREYOU rate limit reached",
        })
    }
}

impl std::error::Error for DropReason {}

/// One datagram written into the caller's buffer by [`super::Sessions::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// How many bytes of the buffer it occupies.
    pub len: usize,
}
