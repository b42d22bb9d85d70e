//! [`NodeHandle`]: the application's way to talk to the node task.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use devp2p_core::discv4::Node as DiscNode;
use devp2p_core::node::{Node, NodeStats, PeerInfo};
use devp2p_core::session::{DisconnectReason, SendError};
use devp2p_core::{Enode, Enr, Instant, NodeId};
use devp2p_mio::common::{DriverStats, Engine, ShutdownReport};
use rand_chacha::ChaCha20Rng;
use tokio::sync::{mpsc, oneshot};

use crate::task::{ParkedSend, Reply, TokioIo, TokioStream, MAX_PARKED_SENDS_PER_PEER};

/// Bytes of posted messages (see [`NodeHandle::post`]) on their way to the node at most;
/// `post` waits beyond it. One maximal message (16 MiB) fits.
pub const MAX_POSTED_BYTES: usize = 16 * 1024 * 1024;
/// What a posted message weighs against [`MAX_POSTED_BYTES`] at least, so that empty or tiny
/// messages are bounded in number too (at most 262,144 in flight).
pub const POST_MIN_WEIGHT: usize = 64;

type Job = Box<dyn FnOnce(&mut Engine<TokioStream>, &mut TokioIo) + Send>;

pub(crate) enum Command {
    Call(Job),
    Send {
        peer: NodeId,
        protocol: usize,
        code: u64,
        payload: Vec<u8>,
        reply: Reply,
    },
    Lookup {
        target: [u8; 64],
        reply: oneshot::Sender<Vec<DiscNode>>,
    },
    Shutdown(oneshot::Sender<ShutdownReport>),
}

/// The node task has stopped (shut down, or all its handles were dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the node has stopped")
    }
}

impl std::error::Error for Stopped {}

/// Why [`NodeHandle::send`] did not queue a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// The node has stopped.
    Stopped,
    /// The node refused it (not connected, protocol not negotiated, code out of range, too
    /// large).
    Refused(SendError),
    /// The peer's outbound queue is full and this many `send`s to it already wait for room
    /// (`MAX_PARKED_SENDS_PER_PEER`; posts are bounded by bytes instead).
    TooManyWaiting {
        /// The peer.
        peer: NodeId,
        /// Sends waiting.
        waiting: usize,
    },
}

impl fmt::Display for SendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendFailure::Stopped => Stopped.fmt(f),
            SendFailure::Refused(e) => write!(f, "send refused: {e}"),
            SendFailure::TooManyWaiting { peer, waiting } => write!(
                f,
                "outbound queue to {peer} is full and {waiting} sends already wait for room"
            ),
        }
    }
}

impl std::error::Error for SendFailure {}

/// Why [`NodeHandle::lookup`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupError {
    /// The node has stopped.
    Stopped,
    /// The node runs without discovery.
    NoDiscovery,
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::Stopped => Stopped.fmt(f),
            LookupError::NoDiscovery => f.write_str("the node runs without discovery"),
        }
    }
}

impl std::error::Error for LookupError {}

/// A snapshot of the node's state.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Connected peers.
    pub peers: Vec<PeerInfo>,
    /// The discovery table's nodes (empty without discovery).
    pub table: Vec<DiscNode>,
    /// The node's counters.
    pub stats: NodeStats,
    /// The driver's counters.
    pub driver: DriverStats,
    /// Posted messages the node refused (see [`NodeHandle::post`]).
    pub posts_dropped: u64,
}

pub(crate) struct Fixed {
    pub(crate) post_budget: Arc<tokio::sync::Semaphore>,
    pub(crate) enode: Enode,
    pub(crate) enr: Option<Enr>,
    pub(crate) listen: SocketAddr,
}

/// A cloneable handle to a running node. Dropping the last handle shuts the node down
/// gracefully, as [`shutdown`](Self::shutdown) does.
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) fixed: Arc<Fixed>,
}

impl fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeHandle")
            .field("enode", &self.fixed.enode.to_string())
            .finish_non_exhaustive()
    }
}

impl NodeHandle {
    /// Our enode URL (with the port actually bound).
    pub fn local_enode(&self) -> &Enode {
        &self.fixed.enode
    }

    /// Our signed record (`None` without discovery).
    pub fn local_enr(&self) -> Option<&Enr> {
        self.fixed.enr.as_ref()
    }

    /// Our node id.
    pub fn local_id(&self) -> NodeId {
        self.fixed.enode.id()
    }

    /// The address TCP and UDP are bound to.
    pub fn listen_addr(&self) -> SocketAddr {
        self.fixed.listen
    }

    /// Runs `f` on the node inside its task (any command or query the node offers), then lets
    /// the node act on it.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node<ChaCha20Rng>, Instant) -> T + Send + 'static,
    ) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |engine, io| {
            let out = engine.command(io, f);
            let _ = tx.send(out);
        });
        self.commands
            .send(Command::Call(job))
            .await
            .map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Sends message `code` of protocol `protocol` (its index in the session config) to
    /// `peer`. When the peer's outbound queue is full, waits until it has room, so awaiting
    /// each send paces the sender to the connection.
    pub async fn send(
        &self,
        peer: NodeId,
        protocol: usize,
        code: u64,
        payload: Vec<u8>,
    ) -> Result<(), SendFailure> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Send {
                peer,
                protocol,
                code,
                payload,
                reply: Reply::Caller(reply),
            })
            .await
            .map_err(|_| SendFailure::Stopped)?;
        rx.await.map_err(|_| SendFailure::Stopped)?
    }

    /// Sends like [`send`](Self::send) without waiting for the node's answer: it returns as
    /// soon as the message is on its way, so a sender can keep many in flight (1 KiB
    /// messages go several times faster than awaiting each `send`). Order with other
    /// `send`s and `post`s from the same caller is kept. It waits only while
    /// [`MAX_POSTED_BYTES`] of posted messages are still on their way. A message the node
    /// refuses (the peer left, say) is dropped and counted in [`NodeInfo::posts_dropped`];
    /// the application hears of a departed peer through `PeerRemoved`.
    pub async fn post(
        &self,
        peer: NodeId,
        protocol: usize,
        code: u64,
        payload: Vec<u8>,
    ) -> Result<(), Stopped> {
        let weight = payload.len().clamp(POST_MIN_WEIGHT, MAX_POSTED_BYTES);
        let weight = u32::try_from(weight).unwrap_or(u32::MAX);
        let permit = self
            .fixed
            .post_budget
            .clone()
            .acquire_many_owned(weight)
            .await
            .map_err(|_| Stopped)?;
        self.commands
            .send(Command::Send {
                peer,
                protocol,
                code,
                payload,
                reply: Reply::Posted(permit),
            })
            .await
            .map_err(|_| Stopped)
    }

    /// Disconnects `peer` with `reason`.
    pub async fn disconnect(&self, peer: NodeId, reason: DisconnectReason) -> Result<(), Stopped> {
        self.call(move |n, now| n.disconnect(now, &peer, reason))
            .await
    }

    /// Adds a static peer: kept connected, redialled after drops.
    pub async fn add_static(&self, node: Enode) -> Result<(), Stopped> {
        self.call(move |n, now| n.add_static(now, &node)).await
    }

    /// Removes a static peer (an existing connection stays).
    pub async fn remove_static(&self, id: NodeId) -> Result<(), Stopped> {
        self.call(move |n, _| n.remove_static(&id)).await
    }

    /// Trusts `id`: admitted past the peer limits.
    pub async fn add_trusted(&self, id: NodeId) -> Result<(), Stopped> {
        self.call(move |n, _| n.add_trusted(id)).await
    }

    /// Stops trusting `id`.
    pub async fn remove_trusted(&self, id: NodeId) -> Result<(), Stopped> {
        self.call(move |n, _| n.remove_trusted(&id)).await
    }

    /// The connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Stopped> {
        self.call(|n, _| n.peers()).await
    }

    /// Peers, table, counters.
    pub async fn info(&self) -> Result<NodeInfo, Stopped> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |engine, io| {
            let n = engine.node();
            let table = n
                .discovery()
                .map(|d| d.table().entries().map(|e| e.node().clone()).collect())
                .unwrap_or_default();
            let _ = tx.send(NodeInfo {
                peers: n.peers(),
                table,
                stats: n.stats(),
                driver: engine.stats().clone(),
                posts_dropped: io.posts_dropped,
            });
        });
        self.commands
            .send(Command::Call(job))
            .await
            .map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Runs a discovery lookup for the 64-byte public key `target` and returns the closest
    /// nodes found, nearest first.
    pub async fn lookup(&self, target: [u8; 64]) -> Result<Vec<DiscNode>, LookupError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Lookup { target, reply })
            .await
            .map_err(|_| LookupError::Stopped)?;
        // The task drops `reply` at once when there is no discovery, and at stop otherwise.
        rx.await.map_err(|_| {
            if self.commands.is_closed() {
                LookupError::Stopped
            } else {
                LookupError::NoDiscovery
            }
        })
    }

    /// Shuts the node down gracefully: Disconnect(ClientQuitting) to every peer, waits for
    /// them to drain (3 s at most), saves the node database. Returns what happened.
    pub async fn shutdown(&self) -> Result<ShutdownReport, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Shutdown(tx))
            .await
            .map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Resolves once the node task has ended.
    pub async fn closed(&self) {
        self.commands.closed().await
    }
}

/// Runs one command in the node task; a shutdown request starts the shutdown and its reply
/// waits in `shutdown_waiters` for the report.
pub(crate) fn execute(
    c: Command,
    engine: &mut Engine<TokioStream>,
    io: &mut TokioIo,
    shutdown_waiters: &mut Vec<oneshot::Sender<ShutdownReport>>,
) {
    match c {
        Command::Call(job) => job(engine, io),
        Command::Send {
            peer,
            protocol,
            code,
            payload,
            reply,
        } => {
            if let Some(q) = io.parked.get_mut(&peer) {
                // Earlier sends to this peer wait for room: keep the order.
                // Posts are bounded by their byte budget instead.
                if q.len() >= MAX_PARKED_SENDS_PER_PEER && matches!(reply, Reply::Caller(_)) {
                    let waiting = q.len();
                    reply.finish(
                        io,
                        &peer,
                        Err(SendFailure::TooManyWaiting { peer, waiting }),
                    );
                } else {
                    q.push_back(ParkedSend {
                        protocol,
                        code,
                        payload,
                        reply,
                    });
                }
                return;
            }
            // Not drained here: the task drains once after the turn's commands, so a burst of
            // small messages leaves in few writes.
            let now = engine.clock().now();
            match engine.node_mut().send(now, &peer, protocol, code, &payload) {
                Err(SendError::QueueFull { .. }) => {
                    io.parked.entry(peer).or_default().push_back(ParkedSend {
                        protocol,
                        code,
                        payload,
                        reply,
                    });
                }
                r => reply.finish(io, &peer, r.map_err(SendFailure::Refused)),
            }
        }
        Command::Lookup { target, reply } => {
            let now = engine.clock().now();
            if let Some(id) = engine.node_mut().start_lookup(now, target) {
                io.lookups.insert(id, reply);
            }
            engine.flush(io);
        }
        Command::Shutdown(reply) => {
            shutdown_waiters.push(reply);
            engine.begin_shutdown(io);
        }
    }
}
