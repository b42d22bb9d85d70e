//! The application-facing vocabulary both drivers share, so that an application moves from
//! one driver to the other by changing call sites, not types.

use std::fmt;

use devp2p_core::node::Undialable;
use devp2p_core::session::SendError;
use devp2p_core::NodeId;

/// The node has stopped (shut down, or, with tokio, all its handles were dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the node has stopped")
    }
}

impl std::error::Error for Stopped {}

/// Why a driver did not take a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendFailure {
    /// The node has stopped.
    Stopped,
    /// The node refused it: not connected, protocol not negotiated, code out of range, too
    /// large ([`SendError::TooLarge`], at once), or (mio only) the peer's queue is full
    /// ([`SendError::QueueFull`]: send again after
    /// [`NodeEvent::Writable`](devp2p_core::node::NodeEvent::Writable)).
    Refused(SendError),
    /// (tokio only) The peer's outbound queue is full and this many `send`s to it already
    /// wait for room (`devp2p_tokio::MAX_PARKED_SENDS_PER_PEER`).
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

/// Why a driver did not add a static peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddStaticError {
    /// The node has stopped.
    Stopped,
    /// The node can never dial it (see [`Undialable`]).
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
    /// The node has stopped.
    Stopped,
    /// The node runs without discovery.
    NoDiscovery,
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::Stopped => Stopped.fmt(f),
            LookupError::NoDiscovery => f.write_str("the node runs without discovery"),
        }
    }
}

impl std::error::Error for LookupError {}

impl From<Stopped> for LookupError {
    fn from(_: Stopped) -> Self {
        LookupError::Stopped
    }
}
