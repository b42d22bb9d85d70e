//! devp2p-core: the Ethereum peer-to-peer stack as sans-IO state machines.
//!
//! Nothing in this crate opens a socket, reads a clock or asks the OS for randomness. Each
//! machine takes bytes, addresses and the current time ([`Instant`], milliseconds from an
//! origin the driver picks) as inputs, draws randomness from a `rand_core::CryptoRng` the
//! caller injects, and hands back bytes to send and deadlines to be woken at. Errors caused by
//! the remote side are values, never panics.
//!
//! Layers so far:
//! - [`identity`]: secp256k1 node keys, node ids and the XOR metric; [`enode`] URLs.
//! - [`rlpx`]: the ECIES handshake and the encrypted, authenticated frame codec.
//! - [`enr`]: Ethereum Node Records (EIP-778).
//! - [`session`]: one devp2p connection: handshake, Hello, capabilities, keepalive, Disconnect.
//! - [`discv4`]: discovery v4.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dial;
pub mod discv4;
pub mod enode;
pub mod enr;
pub mod identity;
pub mod keccak;
pub mod netlist;
pub mod rlp_ext;
pub mod rlpx;
pub mod session;
pub mod time;

pub use enode::{Enode, EnodeError, Host};
pub use enr::{Enr, EnrBuilder, EnrError};
pub use identity::{KeyError, NodeId, NodePublicKey, NodeSecretKey};
pub use time::Instant;

/// The README's code blocks, compiled and run as doctests so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
