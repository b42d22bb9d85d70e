//! The session's public vocabulary: events, errors and who closed.

use std::fmt;

use super::capability::SharedCapability;
use super::disconnect::DisconnectReason;
use super::hello::{Hello, HelloError};
use crate::identity::NodePublicKey;
use crate::rlpx::{FrameError, HandshakeError};

/// Which side ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// We did.
    Local,
    /// The peer did.
    Remote,
}

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// The RLPx handshake did not complete in time.
    Handshake,
    /// The peer's Hello did not arrive in time.
    Hello,
    /// No message arrived within the read timeout.
    Read,
    /// Queued bytes did not move within the write timeout.
    Write,
}

/// What went wrong on a session, for [`Closed::error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// The RLPx handshake failed.
    Handshake(HandshakeError),
    /// A frame failed its MAC, size or decompression checks.
    Frame(FrameError),
    /// The peer's Hello was malformed or too large.
    Hello(HelloError),
    /// The first message was neither Hello nor Disconnect.
    ExpectedHello {
        /// The message id received instead.
        id: u64,
    },
    /// The Hello node id is not 64 bytes or is all zero.
    InvalidIdentity,
    /// The Hello node id is not the key the RLPx handshake authenticated.
    UnexpectedIdentity,
    /// No capability in common.
    NoSharedCapability,
    /// A message id outside the base protocol and every negotiated capability.
    MessageIdOutOfRange {
        /// The id.
        id: u64,
    },
    /// The peer's Disconnect payload was undecodable.
    InvalidDisconnect,
    /// A deadline passed.
    Timeout(TimeoutKind),
    /// The outbound queue hit its limit.
    OutboundQueueFull {
        /// Bytes queued.
        queued: usize,
        /// The limit.
        limit: usize,
    },
    /// The peer closed the connection without a Disconnect.
    ConnectionClosed,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Handshake(e) => write!(f, "RLPx handshake failed: {e}"),
            SessionError::Frame(e) => write!(f, "bad frame: {e}"),
            SessionError::Hello(e) => write!(f, "{e}"),
            SessionError::ExpectedHello { id } => write!(f, "expected Hello, got message 0x{id:x}"),
            SessionError::InvalidIdentity => f.write_str("Hello carries an invalid node id"),
            SessionError::UnexpectedIdentity => {
                f.write_str("Hello node id differs from the key the handshake authenticated")
            }
            SessionError::NoSharedCapability => f.write_str("no capability in common"),
            SessionError::MessageIdOutOfRange { id } => {
                write!(f, "message id 0x{id:x} outside every negotiated capability")
            }
            SessionError::InvalidDisconnect => f.write_str("undecodable Disconnect payload"),
            SessionError::Timeout(k) => write!(f, "{k:?} timeout"),
            SessionError::OutboundQueueFull { queued, limit } => {
                write!(f, "outbound queue full ({queued} of {limit} bytes)")
            }
            SessionError::ConnectionClosed => f.write_str("connection closed by the peer"),
        }
    }
}

impl std::error::Error for SessionError {}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// Who ended it.
    pub initiator: Side,
    /// The Disconnect reason sent (by us) or received (from the peer); `None` when the
    /// connection ended without one (failed handshake, dropped connection).
    pub reason: Option<DisconnectReason>,
    /// What went wrong, if anything did.
    pub error: Option<SessionError>,
}

/// The peer passed the handshake and the Hello exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Established {
    /// The peer's public key, proven by the RLPx handshake.
    pub remote: NodePublicKey,
    /// The peer's Hello.
    pub hello: Hello,
    /// The capabilities both sides speak, with their message-id offsets.
    pub capabilities: Vec<SharedCapability>,
}

/// Something the application should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The RLPx handshake proved the peer's key; the session waits for
    /// [`Session::admit`](super::Session::admit). Only with
    /// [`SessionConfig::manual_admission`](super::SessionConfig::manual_admission).
    Authenticated {
        /// The peer's public key.
        remote: NodePublicKey,
    },
    /// The session is ready for messages.
    Established(Box<Established>),
    /// A sub-protocol message arrived.
    Message {
        /// Index of the protocol in [`SessionConfig::protocols`](super::SessionConfig::protocols).
        protocol: usize,
        /// Message code within the protocol (wire id minus the capability's offset).
        code: u64,
        /// The (decompressed) payload.
        payload: Vec<u8>,
    },
    /// The session ended. It is the last event.
    Closed(Closed),
}

/// Why [`Session::send`](super::Session::send) refused a message. The session itself is unaffected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The session is not established yet, or no longer.
    NotEstablished,
    /// The peer did not agree to this protocol.
    NotNegotiated {
        /// The protocol index.
        protocol: usize,
    },
    /// The code is beyond the protocol's message count.
    CodeOutOfRange {
        /// The code.
        code: u64,
        /// The protocol's message count.
        length: u64,
    },
    /// The outbound queue has no room for the message; try again after the driver writes.
    QueueFull {
        /// Bytes queued.
        queued: usize,
        /// The limit.
        limit: usize,
    },
    /// The message is larger than a frame can carry.
    TooLarge(FrameError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotEstablished => f.write_str("session not established"),
            SendError::NotNegotiated { protocol } => {
                write!(f, "protocol #{protocol} not negotiated with this peer")
            }
            SendError::CodeOutOfRange { code, length } => {
                write!(
                    f,
                    "message code {code} out of range for a protocol of {length} messages"
                )
            }
            SendError::QueueFull { queued, limit } => {
                write!(f, "outbound queue full ({queued} of {limit} bytes)")
            }
            SendError::TooLarge(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SendError {}
