//! What the discovery service reports to its owner, and why a command was refused.

use std::fmt;

use crate::discv4::{LookupId, Node};
use crate::discv5::message::{Pong, RequestId};
use crate::discv5::sessions::{NodeAddress, NodesResponse, RequestFailure, SendError};
use crate::identity::NodeId;

/// A TALKREQ handed to the application, to be answered with
/// [`super::Discovery::answer_talk`]. Chosen by the machine, unique for its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TalkRequestId(pub u64);

impl fmt::Display for TalkRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "talk#{}", self.0)
    }
}

/// Something the application may want to know or must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A node entered the table.
    NodeAdded(Node),
    /// A node left the table.
    NodeRemoved(NodeId),
    /// A lookup learnt of a node (its record passed the address checks).
    NodeSeen(Node),
    /// A lookup ended.
    LookupFinished {
        /// Which one.
        id: LookupId,
        /// The node id looked up.
        target: NodeId,
        /// The closest nodes found, nearest first (at most 16).
        nodes: Vec<Node>,
    },
    /// The first refresh has finished; from now on nodes that handshake with us can enter
    /// the table.
    Bootstrapped,
    /// A node asked something of a protocol the application registered. Answer with
    /// [`super::Discovery::answer_talk`] within
    /// [`TALK_ANSWER_TIMEOUT`](super::TALK_ANSWER_TIMEOUT); after that it is forgotten and
    /// the asker gets nothing.
    TalkRequest {
        /// What to answer.
        id: TalkRequestId,
        /// The asker.
        from: NodeAddress,
        /// The protocol's name, one the application registered.
        protocol: Vec<u8>,
        /// The request.
        request: Vec<u8>,
    },
    /// One of our PINGs ([`super::Discovery::ping`]) was answered or failed.
    PingResponse {
        /// The id `ping` returned.
        id: RequestId,
        /// Where it went.
        to: NodeAddress,
        /// The PONG (the node's record seq, and our address as it saw it), or why none came.
        result: Result<Pong, RequestFailure>,
    },
    /// One of our FINDNODEs ([`super::Discovery::find_node`]) was answered or failed.
    FindNodeResponse {
        /// The id `find_node` returned.
        id: RequestId,
        /// Where it went.
        to: NodeAddress,
        /// Every NODES message of the answer put together (verified records at the distances
        /// asked, each node once), or why none came.
        result: Result<NodesResponse, RequestFailure>,
    },
    /// One of our TALKREQs ([`super::Discovery::talk_request`]) was answered or failed.
    TalkResponse {
        /// The id `talk_request` returned.
        id: RequestId,
        /// Where it went.
        to: NodeAddress,
        /// The TALKRESP's bytes (empty when the node does not know the protocol), or why
        /// none came.
        result: Result<Vec<u8>, RequestFailure>,
    },
}

/// Why [`super::Discovery::answer_talk`] sent nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TalkError {
    /// No such TALKREQ is pending: answered already, or forgotten after
    /// [`TALK_ANSWER_TIMEOUT`](super::TALK_ANSWER_TIMEOUT).
    UnknownRequest,
    /// The session layer refused to send it (too large for a packet, or the session is
    /// gone).
    Send(SendError),
}

impl fmt::Display for TalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TalkError::UnknownRequest => f.write_str("no such talk request is waiting"),
            TalkError::Send(e) => write!(f, "talk response not sent: {e}"),
        }
    }
}

impl std::error::Error for TalkError {}

/// Why a datagram, a NODES record or a TALKREQ was not used, beyond what the session layer
/// counts itself ([`crate::discv5::DropReason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// A NODES record without an IP and UDP port, with a UDP port at or below
    /// [`MIN_RECORD_UDP_PORT`](super::MIN_RECORD_UDP_PORT), an address the responder may not
    /// relay (geth `CheckRelayAddr`), or one outside NetRestrict.
    BadRecordAddress,
    /// An inbound handshake whose record advertises another UDP endpoint than the packet's
    /// source, or none: the node stays out of the table (it is still answered).
    InboundAddressMismatch,
    /// A TALKREQ over the asker's [`TALK_REQUESTS_PER_PEER_PER_SECOND`](super::TALK_REQUESTS_PER_PEER_PER_SECOND).
    TalkRateLimited,
    /// A TALKREQ while [`MAX_PENDING_TALK_REQUESTS`](super::MAX_PENDING_TALK_REQUESTS) or
    /// [`MAX_PENDING_TALK_BYTES`](super::MAX_PENDING_TALK_BYTES) are used up.
    TalkQueueFull,
    /// A TALKREQ the application did not answer within
    /// [`TALK_ANSWER_TIMEOUT`](super::TALK_ANSWER_TIMEOUT).
    TalkExpired,
    /// A TALKREQ for a protocol nobody registered: answered with an empty TALKRESP.
    TalkUnknownProtocol,
}
