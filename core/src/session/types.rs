//! The session's public vocabulary: events, errors and who closed.

use std::fmt;

use super::capability::{ProtocolId, SharedCapability};
use super::disconnect::DisconnectReason;
use super::hello::{Capability, Hello, HelloError};
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
    NoSharedCapability {
        /// What the peer offered in its Hello.
        remote: Vec<Capability>,
    },
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
            SessionError::NoSharedCapability { remote } if remote.is_empty() => {
                f.write_str("no capability in common (the peer offers none)")
            }
            SessionError::NoSharedCapability { remote } => {
                let offered: Vec<String> = remote.iter().map(|c| c.to_string()).collect();
                write!(
                    f,
                    "no capability in common (the peer offers {})",
                    offered.join(", ")
                )
            }
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
///
/// Events may be added in later versions: match with a `_ =>` arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
        /// The protocol (its place in
        /// [`SessionConfig::protocols`](super::SessionConfig::protocols)).
        protocol: ProtocolId,
        /// Message code within the protocol (wire id minus the capability's offset).
        code: u64,
        /// The (decompressed) payload.
        payload: Vec<u8>,
    },
    /// After a [`SendError::QueueFull`], the queue has drained enough for that message: send
    /// again. Announced once per refusal.
    Writable,
    /// The session ended. It is the last event.
    Closed(Closed),
}

/// Which limit a message was too large for (see [`SendError::TooLarge`]). Each is a fact about
/// the message, not the moment: sending it again is refused again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SizeLimit {
    /// The payload is over [`MAX_UNCOMPRESSED_SIZE`](crate::rlpx::MAX_UNCOMPRESSED_SIZE)
    /// (16,777,215 bytes), the most a peer decompresses (geth's limit too). Split it into
    /// messages of the protocol's own making.
    Message,
    /// Message id and (compressed) payload are over
    /// [`MAX_FRAME_SIZE`](crate::rlpx::MAX_FRAME_SIZE), the most one frame carries. Only a
    /// payload over [`MAX_MESSAGE_SIZE`](crate::rlpx::MAX_MESSAGE_SIZE) (16,777,198 bytes) can
    /// meet this: with snappy, when it does not compress enough; without (a peer of p2p
    /// version 4), when it and its id pass the limit. Split it.
    Frame,
    /// Its frame is larger than the whole outbound queue
    /// ([`SessionConfig::max_outbound_queue`](super::SessionConfig::max_outbound_queue) less
    /// [`CONTROL_RESERVE`](super::CONTROL_RESERVE)). The default queue holds one maximal
    /// frame, so this happens only with a smaller configured queue: raise it, or send smaller
    /// messages.
    Queue,
}

/// Why [`Session::send`](super::Session::send) (or a node's or driver's `send`) refused a
/// message. Nothing was queued, and the session itself is unaffected: a refusal never closes
/// a connection.
///
/// [`QueueFull`](Self::QueueFull) means "later", and so does `NotEstablished` on a session
/// still in its handshake; any other refusal is final for this message on this session:
/// sending it again unchanged gets the same answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The session is not established yet, or no longer. From a node: no peer has that id
    /// (it never connected, or it left, which a `PeerRemoved` event reports). Send after
    /// `PeerAdded`, and stop sending to a peer once it is removed.
    NotEstablished,
    /// The peer does not speak this protocol (it was not in both Hellos; the peer's
    /// [`SharedCapability`] list says what was agreed), or `protocol` is not one of ours.
    NotNegotiated {
        /// The protocol.
        protocol: ProtocolId,
    },
    /// The code is beyond the protocol's message count
    /// ([`Protocol::length`](super::Protocol::length)): a bug in the caller.
    CodeOutOfRange {
        /// The code.
        code: u64,
        /// The protocol's message count.
        length: u64,
    },
    /// The outbound queue has no room for the message now. It will: try again once the
    /// queue has drained by `needed` bytes, which a [`SessionEvent::Writable`] (from a node
    /// or driver: `NodeEvent::Writable` for the peer) announces. Keep the message until then;
    /// a peer that never reads is disconnected by the write timeout instead, and its
    /// `PeerRemoved` ends the wait.
    QueueFull {
        /// Bytes queued.
        queued: usize,
        /// The limit for application messages.
        limit: usize,
        /// Queue room this message needs.
        needed: usize,
    },
    /// The message can never be sent: it is larger than `limit`. Every payload up to
    /// [`MAX_MESSAGE_SIZE`](crate::rlpx::MAX_MESSAGE_SIZE) bytes fits the message and frame
    /// limits whatever its content; split anything larger.
    TooLarge {
        /// Its size as measured against the limit (payload bytes for
        /// [`SizeLimit::Message`], frame bytes for the others).
        size: usize,
        /// The limit.
        limit: usize,
        /// Which limit.
        kind: SizeLimit,
    },
    /// The codec failed to compress the payload (not seen with the snappy encoder we use).
    Codec(FrameError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::rlpx::MAX_MESSAGE_SIZE;
        match self {
            SendError::NotEstablished => f.write_str("session not established"),
            SendError::NotNegotiated { protocol } => {
                write!(f, "{protocol} not negotiated with this peer")
            }
            SendError::CodeOutOfRange { code, length } => {
                write!(
                    f,
                    "message code {code} out of range for a protocol of {length} messages"
                )
            }
            SendError::QueueFull {
                queued,
                limit,
                needed,
            } => write!(
                f,
                "outbound queue full ({queued} of {limit} bytes queued, this message needs \
                 {needed}): retry once it drains"
            ),
            SendError::TooLarge {
                size,
                limit,
                kind: SizeLimit::Message,
            } => write!(
                f,
                "message of {size} bytes is over the {limit}-byte limit of a devp2p message \
                 (any payload up to {MAX_MESSAGE_SIZE} bytes is sent; split larger ones)"
            ),
            SendError::TooLarge {
                size,
                limit,
                kind: SizeLimit::Frame,
            } => write!(
                f,
                "message takes {size} bytes of frame after compression, over the {limit}-byte \
                 frame limit (any payload up to {MAX_MESSAGE_SIZE} bytes is sent; split larger \
                 ones)"
            ),
            SendError::TooLarge { size, limit, .. } => write!(
                f,
                "message needs {size} bytes of outbound queue, more than the whole {limit}-byte \
                 queue (raise SessionConfig::max_outbound_queue)"
            ),
            SendError::Codec(e) => write!(f, "encoding the message failed: {e}"),
        }
    }
}

impl std::error::Error for SendError {}
