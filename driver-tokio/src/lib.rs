//! devp2p on tokio.
//!
//! [`spawn`] starts one task that owns a sans-IO [`Node`](devp2p_core::node::Node) together
//! with its UDP socket, TCP listener and connections. The task only moves bytes, time and
//! randomness between the sockets and the node; every protocol decision is the node's. The
//! application gets a cloneable [`NodeHandle`] (send, disconnect, static and trusted peers,
//! peers, the discovery table, lookups, statistics, local enode and ENR, shutdown) and an
//! [`EventStream`].
//!
//! - **Sending**: [`NodeHandle::send`] waits while the peer's outbound queue is full, so
//!   awaiting it paces the sender to the connection; [`NodeHandle::try_send`] never waits and
//!   is refused on a full queue, with a [`NodeEvent::Writable`](devp2p_core::node::NodeEvent::Writable)
//!   to follow; [`NodeHandle::post`] does not wait for the node at all and drops (and counts)
//!   what the node refuses. What no peer can take is refused at once by all three.
//! - **Time**: milliseconds since the task started, from the monotonic clock, as the core's
//!   `Instant`; the wall clock only as unix seconds for discovery expirations and the node
//!   database.
//! - **Randomness**: a ChaCha20 stream seeded once from the OS at start.
//! - **Key and database**: see [`DriverConfig`]: the node key from a file (created on first
//!   start) and the node database in a data directory, saved at shutdown and every 5 minutes
//!   (`DriverConfig::db_save_interval`).
//! - **Shutdown**: [`NodeHandle::shutdown`] (or dropping every handle) sends
//!   Disconnect(ClientQuitting) to every peer, waits for the Disconnects to drain, and saves
//!   the node database.
//! - **NAT traversal**: with [`NodeConfig::nat`](devp2p_core::node::NodeConfig::nat) set to
//!   UPnP, NAT-PMP or either, the node's port-mapping requests are carried out on a helper
//!   thread (UPnP through `igd-next`, NAT-PMP through the core's codec) that wakes the task
//!   with each answer; [`NodeHandle::local_enode`] and [`NodeHandle::local_enr`] follow what
//!   the router grants, and [`NodeEvent::Nat`](devp2p_core::node::NodeEvent::Nat) reports it.
//!   The mappings are deleted at shutdown.
//! - **Logs** go through `tracing`, under the target `devp2p_tokio`.
//!
//! An application's skeleton (not run here: it binds port 30303, writes `./node-data` and
//! runs until Ctrl-C; [`NodeHandle`]'s page has two nodes that do run). The README's tokio
//! snippet is a copy of it:
//!
//! ```no_run
//! use devp2p_core::node::NodeEvent;
//! use devp2p_core::session::Protocol;
//! use devp2p_tokio::{spawn, DriverConfig};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut config = DriverConfig::default();
//!     let chat = config.node.session.add_protocol(Protocol::new("chat", 1, 2));
//!     config.node.listen = "127.0.0.1:30303".parse()?;
//!     config.node.bootnodes = vec![/* "enode://…".parse()? */];
//!     config.data_dir = Some("./node-data".into()); // node key and node database
//!     let (node, mut events) = spawn(config)?;
//!     println!("listening as {}", node.local_enode());
//!     loop {
//!         let event = tokio::select! {
//!             event = events.recv() => event,
//!             _ = tokio::signal::ctrl_c() => break,
//!         };
//!         match event {
//!             Some(NodeEvent::PeerAdded(peer)) => {
//!                 if let Err(e) = node.send(&peer.id, chat, 0, b"hello").await {
//!                     eprintln!("{e}"); // the peer left already, say
//!                 }
//!             }
//!             Some(NodeEvent::Message { peer, protocol, code, payload }) if protocol == chat => {
//!                 println!("{peer}: message {code} of {} bytes", payload.len());
//!             }
//!             Some(NodeEvent::ConnectionFailed(failure)) => eprintln!("{failure}"),
//!             Some(_) => {}
//!             None => break, // the node stopped
//!         }
//!     }
//!     node.shutdown().await?;
//!     Ok(())
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dns;
mod events;
mod handle;
mod task;

use std::sync::Arc;

pub use devp2p_mio::common::engine::{ACCEPT_ERROR_BACKOFF, DATAGRAMS_PER_TURN};
pub use devp2p_mio::common::{
    AddStaticError, Discv5Failure, DnsResolverConfig, DriverConfig, DriverStats, KeySource,
    LookupError, RecordFailure, SendFailure, ShutdownReport, StartError, Stats, Stopped,
    TalkFailure, Transport,
};
use devp2p_mio::common::{Engine, LogTarget};
pub use devp2p_mio::KeyFileError;
pub use events::EventStream;
pub use handle::{BatchFailure, NodeHandle, MAX_POSTED_BYTES, POST_MIN_WEIGHT};
pub use task::{ACCEPTS_PER_TURN, COMMANDS_PER_TURN, MAX_PARKED_SENDS_PER_PEER};

/// Commands from handles waiting for the node task; senders wait beyond it (backpressure on
/// callers that do not await their replies).
pub const COMMAND_QUEUE: usize = 1024;

/// Starts a node in a new task on the current tokio runtime. Returns its handle and its
/// event stream. Fails (never panics) when the key, the data directory or a socket cannot be
/// set up, when a bootnode has no IP address or UDP port, or when called outside a tokio
/// runtime; the [`StartError`] says which.
///
/// A node is one task: its sessions' frames are sealed and opened there, one at a time. On a
/// runtime shared with many other busy tasks it gets about the share of one of them, as
/// tokio's workers take runnable tasks in turn. A node that carries much traffic does best
/// on a runtime (or a worker) of its own: start it inside that runtime
/// (`other_runtime.enter()`, then `spawn`). BENCHMARKS.md ("Load") measures both.
pub fn spawn(config: DriverConfig) -> Result<(NodeHandle, EventStream), StartError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        StartError::Io(std::io::Error::other(
            "devp2p_tokio::spawn must be called inside a tokio runtime",
        ))
    })?;
    let _guard = runtime.enter();
    let (engine, sockets) = Engine::<task::TokioStream>::start(config, LogTarget::Tokio)?;
    let listener = tokio::net::TcpListener::from_std(sockets.listener).map_err(StartError::Io)?;
    let udp = sockets
        .udp
        .map(tokio::net::UdpSocket::from_std)
        .transpose()
        .map_err(StartError::Io)?;
    let mut engine = engine;
    let node = engine.node();
    let fixed = Arc::new(handle::Fixed {
        post_budget: Arc::new(tokio::sync::Semaphore::new(handle::MAX_POSTED_BYTES)),
        id: node.local_id(),
        local: std::sync::Mutex::new((node.local_enode(), node.local_enr().cloned())),
        listen: listener.local_addr().map_err(StartError::Io)?,
    });
    // The NAT thread's answers wake the task (a Notify keeps the wake-up if the task is busy).
    let nat_wake = Arc::new(tokio::sync::Notify::new());
    let waker = nat_wake.clone();
    engine.set_nat_wake(Arc::new(move || waker.notify_one()));
    let (event_tx, event_rx) = events::channel();
    let (dial_tx, dial_rx) = tokio::sync::mpsc::unbounded_channel();
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel(COMMAND_QUEUE);
    let (dns_tx, dns_rx) = tokio::sync::mpsc::unbounded_channel();
    let io = task::TokioIo {
        udp,
        listener,
        dial_results: dial_tx,
        events: event_tx,
        lookups: Default::default(),
        lookups_v5: Default::default(),
        v5_requests: Default::default(),
        parked: Default::default(),
        writable: Default::default(),
        try_blocked: Default::default(),
        posts_dropped: 0,
        accept_paused_until: None,
        dns: sockets.dns,
        dns_answers: dns_tx,
    };
    runtime.spawn(task::run(
        engine,
        io,
        cmd_rx,
        dial_rx,
        task::Nat {
            wake: nat_wake,
            local: fixed.clone(),
        },
        dns_rx,
    ));
    Ok((
        NodeHandle {
            commands: cmd_tx,
            fixed,
        },
        event_rx,
    ))
}
