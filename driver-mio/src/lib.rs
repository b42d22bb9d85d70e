//! devp2p on mio, for embedding in your own event loop.
//!
//! A [`Driver`] runs one sans-IO [`Node`](devp2p_core::node::Node) over a TCP listener, TCP
//! streams and one UDP socket, registered in **your** `mio::Poll` under a range of tokens you
//! choose. It only moves bytes, time and randomness between those sockets and the node; every
//! protocol decision is the node's. Your loop:
//!
//! 1. `poll.poll(&mut events, timeout)` with `timeout` no later than [`Driver::timeout`]:
//!    zero while the driver has input waiting; `None` when it has nothing scheduled, so that
//!    only one of its sockets becoming ready can give it work, and the wait is yours to choose
//!    (`None` to block, or your own next deadline);
//! 2. for every event whose token the driver [`owns`](Driver::owns), call
//!    [`Driver::handle_event`]; handle your own tokens yourself;
//! 3. call [`Driver::handle_timeout`] (cheap when nothing is due);
//! 4. take [`Driver::poll_event`] until `None`;
//! 5. issue commands whenever you like ([`Driver::send`], [`Driver::add_static`], …).
//!
//! To stop: [`Driver::shutdown`] (Disconnect(ClientQuitting) to every peer), keep
//! turning the loop until [`Driver::is_finished`] (the node database is saved then).
//!
//! A message [`Driver::send`] cannot queue now is refused, never parked: on
//! [`SendError::QueueFull`](devp2p_core::session::SendError::QueueFull) keep it, and send it
//! again when [`NodeEvent::Writable`](devp2p_core::node::NodeEvent::Writable) names the peer.
//!
//! Node key, node database, time and randomness are handled as in every driver (see
//! [`DriverConfig`]). With port mapping
//! ([`NodeConfig::nat`](devp2p_core::node::NodeConfig::nat): UPnP, NAT-PMP or either) the
//! gateway I/O runs on a helper thread, which cannot wake your `Poll`: while one of its
//! answers is awaited, [`Driver::timeout`] is at most [`NAT_POLL_INTERVAL`], and the next
//! [`Driver::handle_timeout`] takes it. The mappings are deleted during [`Driver::shutdown`]
//! (waited for at most [`NAT_SHUTDOWN_TIMEOUT`]). Log lines carry the target `devp2p_mio`. [`Runner`] and [`run`] are a
//! ready-made loop for one or more nodes; `examples/custom_loop.rs` shows a loop that owns a
//! socket of its own beside a node. The README's mio snippet is a copy of this example:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use devp2p_mio::{Driver, DriverConfig};
//! use mio::{Events, Poll};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut poll = Poll::new()?;
//!     let mut config = DriverConfig::default();
//!     config.node.listen = "127.0.0.1:0".parse()?;
//!     // Tokens 100..200 are the node's; the rest of the token space stays ours.
//!     let mut node = Driver::new(poll.registry(), 100..200, config)?;
//!     println!("listening as {}", node.local_enode());
//!     let mut events = Events::with_capacity(256);
//!     // A real node runs until it is told to stop; this one stops after 100 ms.
//!     let stop_at = Instant::now() + Duration::from_millis(100);
//!     while !node.is_finished() {
//!         // The node's `None` leaves the wait to us: our deadline, or none (block).
//!         let now = Instant::now();
//!         let ours = (now < stop_at).then(|| stop_at - now);
//!         let wait = match (node.timeout(), ours) {
//!             (Some(t), Some(o)) => Some(t.min(o)),
//!             (t, o) => t.or(o),
//!         };
//!         poll.poll(&mut events, wait)?;
//!         for event in &events {
//!             if node.owns(event.token()) {
//!                 node.handle_event(event);
//!             } // else: one of our own tokens
//!         }
//!         node.handle_timeout();
//!         while let Some(event) = node.poll_event() {
//!             println!("{event:?}");
//!         }
//!         if Instant::now() >= stop_at {
//!             node.shutdown(); // Disconnect(ClientQuitting) to every peer; keep turning
//!         }
//!     }
//!     println!("stopped: {:?}", node.shutdown_report());
//!     Ok(())
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// Not part of the public API (see its module docs): public only for devp2p-tokio and the
// devp2p tool.
#[doc(hidden)]
pub mod common;
mod dns;
mod driver;
mod runner;

pub use crate::common::engine::{ACCEPT_ERROR_BACKOFF, DATAGRAMS_PER_TURN};
pub use crate::common::keyfile::KeyFileError;
pub use crate::common::nat::{NAT_POLL_INTERVAL, NAT_SHUTDOWN_TIMEOUT};
pub use crate::common::{
    AddStaticError, Discv5Failure, DnsResolverConfig, DriverConfig, DriverStats, KeySource,
    LookupError, RecordFailure, SendFailure, ShutdownReport, StartError, Stats, Stopped,
    TalkFailure, Transport,
};
pub use driver::{Driver, MIN_TOKENS};
pub use runner::{
    run, Remote, RunError, Runner, RunnerGone, EVENTS_PER_POLL, TOKENS_PER_DRIVER, WAKER_TOKEN,
};
