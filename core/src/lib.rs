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
//! - [`discv5`]: discovery v5: the wire layer (packets, messages, handshake crypto) and the
//!   session layer (sessions, handshakes, requests).
//! - [`dial`]: the dial scheduler; [`node`]: everything above composed into one machine.
//! - [`nat`]: the `--nat` setting, geth's port-mapping policy and the NAT-PMP codec (the
//!   gateway I/O is the drivers').
//!
//! [`spec`] renders the protocol reference the code cites (`PROTOCOL.md §…`).
//!
//! # A tiny in-memory driver
//!
//! Two [`node::Node`]s wired together by hand: the "network" is two byte queues. A real
//! driver does the same with sockets (see the `devp2p-mio` and `devp2p-tokio` crates).
//!
//! ```
//! use std::collections::BTreeMap;
//! use devp2p_core::node::{Action, ConnId, Node, NodeConfig, NodeEvent};
//! use devp2p_core::session::{Protocol, ProtocolId};
//! use devp2p_core::{Instant, NodeSecretKey};
//! use rand_core::SeedableRng;
//!
//! let config = |port: u16| {
//!     let mut config = NodeConfig::default();
//!     config.session.add_protocol(Protocol::new("demo", 1, 2));
//!     config.listen = ([127, 0, 0, 1], port).into();
//!     config.no_discovery = true;
//!     config
//! };
//! let (unix, mut now) = (1_800_000_000, Instant::ZERO);
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
//! let (ka, kb) = (NodeSecretKey::generate(&mut rng), NodeSecretKey::generate(&mut rng));
//! let mut a = Node::new(ka, config(30301), rand_chacha::ChaCha20Rng::seed_from_u64(1), now, unix);
//! let mut b = Node::new(kb, config(30302), rand_chacha::ChaCha20Rng::seed_from_u64(2), now, unix);
//! b.add_static(now, &a.local_enode()).unwrap(); // b dials a
//!
//! // conn ids of the one TCP connection, as each node knows it
//! let mut link: Option<(ConnId, ConnId)> = None; // (b's id, a's id)
//! let mut got = None;
//! for _ in 0..50 {
//!     now = now + std::time::Duration::from_millis(10);
//!     // b's actions: dial and writes
//!     while let Some(action) = b.poll_action() {
//!         match action {
//!             Action::Dial { conn, addr } => {
//!                 let ac = a.handle_accept(now, ([127, 0, 0, 1], 40000).into()).unwrap();
//!                 link = Some((conn, ac));
//!                 b.handle_connected(now, conn);
//!             }
//!             Action::Write { conn } => {
//!                 let bytes = b.outbound(conn).to_vec();
//!                 b.handle_written(now, conn, bytes.len());
//!                 a.handle_read(now, link.unwrap().1, &bytes);
//!             }
//!             Action::Close { .. } | Action::ResolveTxt { .. } => {}
//!         }
//!     }
//!     while let Some(action) = a.poll_action() {
//!         if let Action::Write { conn } = action {
//!             let bytes = a.outbound(conn).to_vec();
//!             a.handle_written(now, conn, bytes.len());
//!             b.handle_read(now, link.unwrap().0, &bytes);
//!         }
//!     }
//!     while let Some(e) = a.poll_event() {
//!         if let NodeEvent::PeerAdded(peer) = e {
//!             a.send(now, &peer.id, ProtocolId::new(0), 1, b"hi").unwrap();
//!         }
//!     }
//!     while let Some(e) = b.poll_event() {
//!         if let NodeEvent::Message { payload, .. } = e {
//!             got = Some(payload);
//!         }
//!     }
//! }
//! assert_eq!(got.as_deref(), Some(&b"hi"[..]));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dial;
pub mod discv4;
pub mod discv5;
pub mod dnsdisc;
pub mod endpoint;
pub mod enode;
pub mod enr;
pub mod fastmix;
pub mod identity;
pub mod keccak;
pub mod known_keys;
pub mod nat;
pub mod netlist;
pub mod node;
pub mod rlp_ext;
pub mod rlpx;
pub mod session;
pub mod spec;
pub mod time;

pub use enode::{Enode, EnodeError, Host};
pub use enr::{Enr, EnrBuilder, EnrError};
pub use identity::{KeyError, NodeId, NodePublicKey, NodeSecretKey, SignatureScheme};
pub use known_keys::KnownKeys;
pub use time::Instant;

/// The README's code blocks, compiled and run as doctests so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
