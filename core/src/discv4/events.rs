//! What the machine reports to its owner.

use std::net::SocketAddr;

use super::node::Node;
use crate::identity::NodeId;

/// Identifies a lookup started by [`super::Discovery::start_lookup`] or by a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LookupId(pub u64);

/// Something the application may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A node entered the table.
    NodeAdded(Node),
    /// A node left the table.
    NodeRemoved(NodeId),
    /// A lookup learnt of a node (it passed the Neighbors checks of
    /// [PROTOCOL.md §7.8](crate::spec::protocol)).
    NodeSeen(Node),
    /// A lookup ended.
    LookupFinished {
        /// Which one.
        id: LookupId,
        /// The 64-byte target.
        target: [u8; 64],
        /// The closest nodes found, nearest first (at most 16).
        nodes: Vec<Node>,
    },
    /// The first refresh has finished; from now on nodes that ping us can enter the table.
    Bootstrapped,
    /// More than 32 requests in a row went unanswered. The usual cause is a wall clock off by
    /// more than the 20 s packet lifetime, so peers drop our packets as expired; the driver
    /// may check the clock (geth runs an NTP query here). Reported at most every 10 minutes.
    ClockSkewSuspected {
        /// How many requests in a row timed out.
        consecutive_timeouts: u32,
    },
}

/// One datagram written into the caller's buffer by [`super::Discovery::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// How many bytes of the buffer it occupies.
    pub len: usize,
}

/// Why an inbound datagram (or part of one) was dropped without a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// Shorter than the hash, signature and type.
    TooSmall,
    /// Longer than 1280 bytes.
    TooLarge,
    /// The hash does not cover the packet.
    BadHash,
    /// No key can be recovered from the signature.
    BadSignature,
    /// A packet type we do not know.
    UnknownType,
    /// The packet data is malformed.
    Malformed,
    /// An ENRResponse whose record does not verify or belongs to another node.
    BadRecord,
    /// The expiration has passed.
    Expired,
    /// A reply nobody asked for (or with the wrong hash, or from the wrong IP).
    Unsolicited,
    /// A FindNode or ENRRequest from a node that has not proved its endpoint from this IP.
    Unbonded,
    /// A packet signed with our own key.
    FromSelf,
    /// One Neighbors entry that failed validation ([PROTOCOL.md §7.8](crate::spec::protocol)); the
    /// rest of the packet is used.
    InvalidNeighbor,
}
