//! Discovery v4 ([PROTOCOL.md §7, §8](crate::spec::protocol)): the packet codec, the Kademlia
//! table, iterative lookups and the [`Discovery`] state machine that ties them together, all
//! without I/O.
//!
//! | module | what it is |
//! |---|---|
//! | [`wire`] | the six packets: encode + sign, decode + verify |
//! | [`table`] | 17 buckets of 16, replacements, subnet limits, revalidation lists |
//! | [`lookup`] | one iterative lookup (α = 3, 16 results) as a pure machine |
//! | [`nodedb`] | bond timestamps, FindNode failures, seeds; snapshot out and in |
//! | [`netutil`] | LAN / special-purpose address classes and the relay rule |
//! | [`Discovery`] | the endpoint: requests and replies, proofs, timers, events |
//!
//! # Driving it
//! The driver owns a UDP socket and a timer. It feeds every datagram to
//! [`Discovery::handle_datagram`], calls [`Discovery::handle_timeout`] when the deadline from
//! [`Discovery::poll_timeout`] passes, and after every input drains
//! [`Discovery::poll_transmit`] and [`Discovery::poll_event`] until both return `None`.
//! Here two nodes talk through an in-memory "network" that delivers at once:
//!
//! ```
//! use std::net::SocketAddr;
//! use devp2p_core::discv4::{wire::MAX_PACKET_SIZE, Config, Discovery, Node, NodeDbSnapshot};
//! use devp2p_core::{Enr, Instant, NodeSecretKey};
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//!
//! let unix = 1_700_000_000; // wall clock, only for packet expirations and the node DB
//! let make = |seed: u64, port: u16, bootnodes: Vec<Node>| {
//!     let mut rng = ChaCha20Rng::seed_from_u64(seed);
//!     let key = NodeSecretKey::generate(&mut rng);
//!     let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
//!     let record = Enr::builder().ip(addr.ip()).udp4(port).tcp4(port).sign(&key).unwrap();
//!     let mut config = Config::default();
//!     config.bootnodes = bootnodes;
//!     let disc = Discovery::new(key, record, config, NodeDbSnapshot::default(), rng,
//!                               Instant::from_millis(0), unix);
//!     (addr, disc)
//! };
//! let (addr_a, mut a) = make(1, 30303, vec![]);
//! let boot = Node::new(*a.local_record().public_key(), addr_a.ip(), 30303, 30303);
//! let (addr_b, mut b) = make(2, 30304, vec![boot]);
//!
//! let mut now = Instant::from_millis(0);
//! let mut buf = [0u8; MAX_PACKET_SIZE];
//! for _ in 0..100 {
//!     // Timers first, then every datagram each side sends goes straight to the other.
//!     a.handle_timeout(now, unix);
//!     b.handle_timeout(now, unix);
//!     loop {
//!         let mut moved = false;
//!         while let Some(t) = a.poll_transmit(&mut buf) {
//!             b.handle_datagram(now, unix, addr_a, &buf[..t.len]);
//!             moved = true;
//!         }
//!         while let Some(t) = b.poll_transmit(&mut buf) {
//!             a.handle_datagram(now, unix, addr_b, &buf[..t.len]);
//!             moved = true;
//!         }
//!         if !moved { break; }
//!     }
//!     while a.poll_event().is_some() {}
//!     while b.poll_event().is_some() {}
//!     // Sleep until the earlier of the two deadlines.
//!     now = a.poll_timeout().into_iter().chain(b.poll_timeout()).min().unwrap().max(now);
//! }
//! assert!(b.is_bootstrapped());
//! assert!(b.table().contains(&a.local_id()));
//! assert!(a.table().contains(&b.local_id()));
//! ```

pub mod lookup;
pub mod netutil;
pub mod nodedb;
pub mod table;
pub mod wire;

mod config;
mod discovery;
mod events;
mod handlers;
mod node;
mod requests;

pub use config::*;
pub use discovery::Discovery;
pub use events::{DropReason, Event, LookupId, Transmit};
pub use lookup::Lookup;
pub use node::Node;
pub use nodedb::{EndpointRecord, EndpointSnapshot, NodeDb, NodeDbSnapshot};
pub use table::{AddOutcome, AddRejection, RevalidationList, Table, TableEntry};
