//! devp2p on mio, for embedding in your own event loop.
//!
//! A [`Driver`] runs one sans-IO [`Node`](devp2p_core::node::Node) over a TCP listener, TCP
//! streams and one UDP socket, registered in **your** `mio::Poll` under a range of tokens you
//! choose. It only moves bytes, time and randomness between those sockets and the node; every
//! protocol decision is the node's. Your loop:
//!
//! 1. `poll.poll(&mut events, timeout)` with `timeout` no later than
//!    [`Driver::timeout`] (zero while the driver has input waiting);
//! 2. for every event whose token the driver [`owns`](Driver::owns), call
//!    [`Driver::handle_event`]; handle your own tokens yourself;
//! 3. call [`Driver::handle_timeout`] (cheap when nothing is due);
//! 4. take [`Driver::poll_event`] until `None`;
//! 5. issue commands whenever you like ([`Driver::send`], [`Driver::add_static`], …).
//!
//! To stop: [`Driver::shutdown`] (Disconnect(ClientQuitting) to every peer), keep
//! turning the loop until [`Driver::is_finished`] (the node database is saved then).
//!
//! Node key, node database, time and randomness are handled as in every driver (see
//! [`DriverConfig`]). [`Runner`] and [`run`] are a ready-made loop for one or more nodes;
//! `examples/custom_loop.rs` shows a loop that owns a socket of its own beside a node.
//!
//! ```
//! use std::time::Duration;
//! use devp2p_mio::{Driver, DriverConfig};
//! use mio::{Events, Poll};
//!
//! let mut poll = Poll::new()?;
//! let mut config = DriverConfig::default();
//! config.node.listen = "127.0.0.1:0".parse()?;
//! // Tokens 100..200 are the node's; the rest of the token space stays ours.
//! let mut node = Driver::new(poll.registry(), 100..200, config)?;
//! println!("listening as {}", node.local_enode());
//! let mut events = Events::with_capacity(256);
//! for _ in 0..3 {
//!     let wait = node.timeout().map_or(Duration::from_millis(10), |t| t.min(Duration::from_millis(10)));
//!     poll.poll(&mut events, Some(wait))?;
//!     for event in &events {
//!         if node.owns(event.token()) {
//!             node.handle_event(event);
//!         }
//!     }
//!     node.handle_timeout();
//!     while let Some(event) = node.poll_event() {
//!         let _ = event;
//!     }
//! }
//! node.shutdown();
//! while !node.is_finished() {
//!     poll.poll(&mut events, node.timeout())?;
//!     for event in &events { node.handle_event(event); }
//!     node.handle_timeout();
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// Not part of the public API (see its module docs): public only for devp2p-tokio and the
// devp2p tool.
#[doc(hidden)]
pub mod common;
mod driver;
mod runner;

pub use crate::common::engine::{ACCEPT_ERROR_BACKOFF, DATAGRAMS_PER_TURN};
pub use crate::common::{
    AddStaticError, DriverConfig, DriverStats, KeySource, LookupError, SendFailure, ShutdownReport,
    StartError, Stats, Stopped,
};
pub use driver::{Driver, MIN_TOKENS};
pub use runner::{
    run, Remote, RunError, Runner, RunnerGone, EVENTS_PER_POLL, TOKENS_PER_DRIVER, WAKER_TOKEN,
};
