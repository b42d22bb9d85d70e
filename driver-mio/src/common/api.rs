//! The application-facing vocabulary both drivers share, so that an application moves from
//! one driver to the other by changing call sites, not types.

use std::fmt;

use devp2p_core::discv5::RequestFailure;
use devp2p_core::node::{DiscoveryVersion, Discv5Error, LocalRecordError, Node, Undialable};
use devp2p_core::session::SendError;
use devp2p_core::NodeId;

/// The node has stopped (shut down, or, with tokio, all its handles were dropped). Final:
/// nothing more can be asked of it; start a new node to go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the node has stopped")
    }
}

impl std::error::Error for Stopped {}

/// Why a driver did not take a message: the error of `send` in both drivers, and of
/// `try_send` and `post` in devp2p-tokio. The message was not sent and will not be.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendFailure {
    /// The node has stopped.
    Stopped,
    /// The node refused it; [`SendError`] says why and what to do. Not connected (the peer
    /// left, or left while the message waited for room), protocol not negotiated, code out of
    /// range, or too large ([`SendError::TooLarge`], at once). A full queue
    /// ([`SendError::QueueFull`]) comes back only where the caller asked not to wait (mio's
    /// `send`, tokio's `try_send`): keep the message and send it again after
    /// [`NodeEvent::Writable`](devp2p_core::node::NodeEvent::Writable) for the peer.
    Refused(SendError),
    /// (tokio only) The peer's outbound queue is full and `waiting` sends to it already wait
    /// for room: from `send`, once `devp2p_tokio::MAX_PARKED_SENDS_PER_PEER` wait (callers
    /// that do not await their sends), and from `try_send` whenever any wait, so they keep
    /// their order. Await the sends, or with `try_send` wait for the
    /// [`NodeEvent::Writable`](devp2p_core::node::NodeEvent::Writable) that follows.
    TooManyWaiting {
        /// The peer.
        peer: NodeId,
        /// Sends waiting.
        waiting: usize,
    },
}

impl fmt::Display for SendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendFailure::Stopped => Stopped.fmt(f),
            SendFailure::Refused(e) => write!(f, "send refused: {e}"),
            SendFailure::TooManyWaiting { peer, waiting } => write!(
                f,
                "outbound queue to {peer} is full and {waiting} sends already wait for room"
            ),
        }
    }
}

impl std::error::Error for SendFailure {}

impl From<Stopped> for SendFailure {
    fn from(_: Stopped) -> Self {
        SendFailure::Stopped
    }
}

/// Why a driver did not add a static peer. Only what can be decided at once is an error: a
/// dial that fails later is a
/// [`NodeEvent::ConnectionFailed`](devp2p_core::node::NodeEvent::ConnectionFailed).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddStaticError {
    /// The node has stopped.
    Stopped,
    /// The node can never dial it: see [`Undialable`] for each reason and its remedy. It was
    /// not added.
    Undialable(Undialable),
}

impl fmt::Display for AddStaticError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddStaticError::Stopped => Stopped.fmt(f),
            AddStaticError::Undialable(u) => write!(f, "static peer refused: {u}"),
        }
    }
}

impl std::error::Error for AddStaticError {}

impl From<Stopped> for AddStaticError {
    fn from(_: Stopped) -> Self {
        AddStaticError::Stopped
    }
}

/// Why a driver ran no lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LookupError {
    /// The node has stopped (with tokio: before the lookup ended, too).
    Stopped,
    /// The node runs without discovery
    /// ([`NodeConfig::no_discovery`](devp2p_core::node::NodeConfig::no_discovery)).
    NoDiscovery,
    /// The node runs discovery, but not this version
    /// ([`NodeConfig::discv4`](devp2p_core::node::NodeConfig::discv4),
    /// [`NodeConfig::discv5`](devp2p_core::node::NodeConfig::discv5)).
    NotRunning(DiscoveryVersion),
}

impl LookupError {
    /// Why `node` ran no lookup of `version`.
    pub fn of<R: rand_core::CryptoRng>(node: &Node<R>, version: DiscoveryVersion) -> Self {
        if node.runs(DiscoveryVersion::V4) || node.runs(DiscoveryVersion::V5) {
            LookupError::NotRunning(version)
        } else {
            LookupError::NoDiscovery
        }
    }
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::Stopped => Stopped.fmt(f),
            LookupError::NoDiscovery => f.write_str("the node runs without discovery"),
            LookupError::NotRunning(v) => write!(f, "the node does not run {v}"),
        }
    }
}

impl std::error::Error for LookupError {}

impl From<Stopped> for LookupError {
    fn from(_: Stopped) -> Self {
        LookupError::Stopped
    }
}

/// Why a driver's discv5 command failed: a PING, a FINDNODE or a TALKREQ to one node,
/// registering a TALKREQ protocol, answering a TALKREQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Discv5Failure {
    /// The node has stopped (with tokio: before the answer came, too).
    Stopped,
    /// The node refused the command at once; [`Discv5Error`] says why (discv5 does not
    /// run, too many protocols, a record without an IP and UDP port, the request not
    /// waiting for an answer any more, …).
    Refused(Discv5Error),
    /// (tokio only, where the requests wait for their answer) The request went out and no
    /// answer came: [`RequestFailure`] says why (a timeout, or a handshake that could not
    /// be made). With mio the same arrives as the error in the request's event
    /// (`PingResponse`, `FindNodeResponse`, `TalkResponse`).
    Failed(RequestFailure),
}

/// [`Discv5Failure`]'s name from when TALKREQ was the drivers' only discv5 request.
pub type TalkFailure = Discv5Failure;

impl fmt::Display for Discv5Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Discv5Failure::Stopped => Stopped.fmt(f),
            Discv5Failure::Refused(e) => e.fmt(f),
            Discv5Failure::Failed(e) => write!(f, "discv5 request failed: {e}"),
        }
    }
}

impl std::error::Error for Discv5Failure {}

impl From<Stopped> for Discv5Failure {
    fn from(_: Stopped) -> Self {
        Discv5Failure::Stopped
    }
}

/// Why a driver kept the local record it had (`set_local_record`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordFailure {
    /// The node has stopped.
    Stopped,
    /// The node refused the record: not signed by our key, or not newer than the current
    /// one ([`LocalRecordError`] says which).
    Refused(LocalRecordError),
}

impl fmt::Display for RecordFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordFailure::Stopped => Stopped.fmt(f),
            RecordFailure::Refused(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RecordFailure {}

impl From<Stopped> for RecordFailure {
    fn from(_: Stopped) -> Self {
        RecordFailure::Stopped
    }
}
