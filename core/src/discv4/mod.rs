//! Discovery v4 (PROTOCOL.md §7, §8): the packet codec, the Kademlia table, iterative lookups
//! and the [`Discovery`] state machine that ties them together, all without I/O.
//!
//! The driver owns a UDP socket and a timer. It feeds every datagram to
//! [`Discovery::handle_datagram`], calls [`Discovery::handle_timeout`] when the deadline
//! from [`Discovery::poll_timeout`] passes, then drains [`Discovery::poll_transmit`] and
//! [`Discovery::poll_event`] until both return `None`.

pub mod netutil;
mod node;
pub mod table;
pub mod wire;

pub use node::Node;
pub use table::{AddOutcome, AddRejection, RevalidationList, Table, TableEntry};
pub mod lookup;

pub use lookup::Lookup;
mod config;
mod discovery;
mod events;
mod handlers;
pub mod nodedb;
mod requests;

pub use config::*;
pub use discovery::Discovery;
pub use events::{DropReason, Event, LookupId, Transmit};
pub use nodedb::{EndpointRecord, EndpointSnapshot, NodeDb, NodeDbSnapshot};
