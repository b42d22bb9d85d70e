//! The RLPx transport: the ECIES handshake that authenticates both ends and derives session
//! secrets, and the frame codec that encrypts and authenticates every message after it.

pub mod ecies;
pub mod frame;
pub mod handshake;
pub mod secrets;

pub use frame::{
    Frame, FrameCodec, FrameError, MAX_FRAME_SIZE, MAX_FRAME_WIRE_LEN, MAX_MESSAGE_SIZE,
    MAX_UNCOMPRESSED_SIZE,
};
pub use handshake::{
    AckMessage, AuthMessage, Handshake, HandshakeError, HandshakeOutcome, HandshakeRandomness,
    MessageFormat, MAX_HANDSHAKE_SIZE,
};
pub use secrets::Secrets;
