//! [`NodeHandle`]: the application's way to talk to the node task.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use devp2p_core::discv4::{LookupId, Node as DiscNode, NodeDbSnapshot};
use devp2p_core::discv5::discovery::TalkRequestId;
use devp2p_core::discv5::{NodesResponse, Pong, RequestFailure, RequestId};
use devp2p_core::node::{DiscoveryVersion, Discv5Error, Node, PeerInfo, Undialable};
use devp2p_core::rlpx::MAX_UNCOMPRESSED_SIZE;
use devp2p_core::session::{DisconnectReason, ProtocolId, SendError, SizeLimit};
use devp2p_core::{Enode, Enr, Instant, NodeId, NodePublicKey};
use devp2p_mio::common::{
    AddStaticError, Discv5Failure, Engine, LookupError, RecordFailure, SendFailure, ShutdownReport,
    Stats, Stopped,
};
use rand_chacha::ChaCha20Rng;
use smallvec::{smallvec, SmallVec};
use tokio::sync::{mpsc, oneshot};

use crate::task::{
    offer, ParkedSend, Reply, TokioIo, TokioStream, V5Reply, MAX_PARKED_SENDS_PER_PEER,
};

/// Bytes of posted messages (see [`NodeHandle::post`]) on their way to the node at most;
/// `post` waits beyond it. One maximal message (16 MiB) fits.
pub const MAX_POSTED_BYTES: usize = 16 * 1024 * 1024;
/// What a posted message weighs against [`MAX_POSTED_BYTES`] at least, so that empty or tiny
/// messages are bounded in number too (at most 262,144 in flight).
pub const POST_MIN_WEIGHT: usize = 64;

/// Why [`NodeHandle::send_batch`] stopped short: the first `queued` messages of the batch are
/// in the peer's outbound queue, in order; the rest were not sent and will not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    /// Messages queued before the failure (0 when the batch was refused whole).
    pub queued: usize,
    /// What stopped the batch, as a [`send`](NodeHandle::send) of the next message would
    /// have failed.
    pub failure: SendFailure,
}

impl fmt::Display for BatchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "batch stopped after {} queued message(s): {}",
            self.queued, self.failure
        )
    }
}

impl std::error::Error for BatchFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.failure)
    }
}

type Job = Box<dyn FnOnce(&mut Engine<TokioStream>, &mut TokioIo) + Send>;

pub(crate) enum Command {
    Call(Job),
    Send {
        peer: NodeId,
        protocol: ProtocolId,
        code: u64,
        payload: Vec<u8>,
        reply: Reply,
    },
    SendBatch {
        peer: NodeId,
        protocol: ProtocolId,
        messages: Vec<(u64, Vec<u8>)>,
        reply: oneshot::Sender<Result<(), BatchFailure>>,
    },
    Shutdown(oneshot::Sender<ShutdownReport>),
}

impl Command {
    /// The message bytes it carries (zero for what is not a send).
    pub(crate) fn payload_len(&self) -> usize {
        match self {
            Command::Send { payload, .. } => payload.len(),
            Command::SendBatch { messages, .. } => messages.iter().map(|(_, m)| m.len()).sum(),
            _ => 0,
        }
    }
}

pub(crate) struct Fixed {
    pub(crate) post_budget: Arc<tokio::sync::Semaphore>,
    pub(crate) id: NodeId,
    /// Our enode URL and record as the task last saw them: they change when port mapping
    /// learns the external address (the task updates them; the handle reads without a
    /// round trip).
    pub(crate) local: std::sync::Mutex<(Enode, Option<Enr>)>,
    pub(crate) listen: SocketAddr,
}

impl Fixed {
    fn local(&self) -> (Enode, Option<Enr>) {
        // A poisoned lock only means a panic elsewhere while it was held: the copy is whole.
        match self.local.lock() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Records the node's current enode and record, if they changed.
    pub(crate) fn update_local(&self, node: &Node<ChaCha20Rng>) {
        let mut l = match self.local.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        let seq = node.local_enr().map(Enr::seq);
        let enode = node.local_enode();
        if l.1.as_ref().map(Enr::seq) != seq || l.0 != enode {
            *l = (enode, node.local_enr().cloned());
        }
    }
}

/// A cloneable handle to a running node. Dropping the last handle shuts the node down
/// gracefully, as [`shutdown`](Self::shutdown) does.
///
/// Every method is a message to the node task, so a handle can be cloned into as many tasks as
/// need one; methods fail with [`Stopped`] (or the `Stopped` variant of their error) once the
/// node has stopped.
///
/// Two nodes on 127.0.0.1, the second dialling the first as a static peer; once connected, the
/// first sends one message:
///
/// ```
/// use std::time::Duration;
/// use devp2p_core::node::NodeEvent;
/// use devp2p_core::session::Protocol;
/// use devp2p_tokio::{spawn, DriverConfig};
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let with_chat = || {
///         let mut config = DriverConfig::default();
///         config.node.listen = "127.0.0.1:0".parse().unwrap(); // any free port
///         config.node.no_discovery = true; // peers are named here, not discovered
///         let chat = config.node.session.add_protocol(Protocol::new("chat", 1, 2));
///         (config, chat)
///     };
///     let (config, chat) = with_chat();
///     let (a, mut a_events) = spawn(config)?;
///     let (b, mut b_events) = spawn(with_chat().0)?;
///     b.add_static(&a.local_enode()).await?;
///
///     tokio::time::timeout(Duration::from_secs(5), async {
///         while let Some(event) = a_events.recv().await {
///             if let NodeEvent::PeerAdded(peer) = event {
///                 a.send(&peer.id, chat, 1, b"hello").await?;
///                 break;
///             }
///         }
///         while let Some(event) = b_events.recv().await {
///             if let NodeEvent::Message { peer, protocol, code, payload } = event {
///                 assert_eq!((peer, protocol, code), (a.local_id(), chat, 1));
///                 assert_eq!(payload, b"hello");
///                 break;
///             }
///         }
///         Ok::<_, devp2p_tokio::SendFailure>(())
///     })
///     .await??;
///
///     a.shutdown().await?; // Disconnect(ClientQuitting) to b, then the task ends
///     b.shutdown().await?;
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) fixed: Arc<Fixed>,
}

impl fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeHandle")
            .field("enode", &self.fixed.local().0.to_string())
            .finish_non_exhaustive()
    }
}

impl NodeHandle {
    /// Our node id.
    pub fn local_id(&self) -> NodeId {
        self.fixed.id
    }

    /// Our enode URL (with the port actually bound, or, with port mapping, the external
    /// address and ports the gateway granted once it has).
    pub fn local_enode(&self) -> Enode {
        self.fixed.local().0
    }

    /// Our signed record (`None` without discovery): the one the node started with, or the
    /// last one that replaced it ([`set_local_record`](Self::set_local_record), endpoint
    /// prediction, or port mapping learning the external address and ports, which a
    /// [`NodeEvent::Nat`](devp2p_core::node::NodeEvent::Nat) tells).
    pub fn local_enr(&self) -> Option<Enr> {
        self.fixed.local().1
    }

    /// The address TCP and UDP are bound to.
    pub fn listen_addr(&self) -> SocketAddr {
        self.fixed.listen
    }

    /// Runs `f` on the node inside its task, then lets the node act on it.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node<ChaCha20Rng>, Instant) -> T + Send + 'static,
    ) -> Result<T, Stopped> {
        self.query(move |engine, io| engine.command(io, f)).await
    }

    /// Runs `f` on the engine inside the node task and returns what it returns.
    async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine<TokioStream>, &mut TokioIo) -> T + Send + 'static,
    ) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |engine, io| {
            let _ = tx.send(f(engine, io));
        });
        self.ask(Command::Call(job), rx).await
    }

    /// Hands `command` to the node task and waits for what it answers on `rx`; `Stopped`
    /// when the task is gone before it took the command or before it answered.
    async fn ask<T>(&self, command: Command, rx: oneshot::Receiver<T>) -> Result<T, Stopped> {
        self.commands.send(command).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Sends message `code` of `protocol` to `peer` (`code` counts from the protocol's first
    /// message; see [`ProtocolId`]), and returns once the node has queued it. When the peer's
    /// outbound queue is full it waits until there is room, so awaiting each send paces the
    /// sender to the connection. A message that can never be sent is refused at once with
    /// [`SendError::TooLarge`] (every payload up to
    /// [`MAX_MESSAGE_SIZE`](devp2p_core::rlpx::MAX_MESSAGE_SIZE) bytes can be).
    ///
    /// Queued is not delivered: what is still queued when the connection drops is lost. A
    /// send that the node task has received goes ahead even if its future is dropped.
    ///
    /// # Errors
    ///
    /// - [`SendFailure::Refused`] with [`SendError::NotEstablished`]: `peer` is not connected,
    ///   or it left while the message waited for room.
    /// - [`SendFailure::Refused`] with another [`SendError`]: the protocol or code is wrong
    ///   for this peer, or the message is too large; sending it again gets the same answer.
    /// - [`SendFailure::TooManyWaiting`]: [`MAX_PARKED_SENDS_PER_PEER`] sends to this peer
    ///   already wait for room, which happens to callers that start sends without awaiting
    ///   them. Await them, or use [`post`](Self::post).
    /// - [`SendFailure::Stopped`]: the node has stopped.
    pub async fn send(
        &self,
        peer: &NodeId,
        protocol: ProtocolId,
        code: u64,
        payload: &[u8],
    ) -> Result<(), SendFailure> {
        self.send_answered(peer, protocol, code, payload, Reply::Caller)
            .await
    }

    /// Sends like [`send`](Self::send) without waiting for the node's answer: it returns as
    /// soon as the message is on its way, so a sender can keep many in flight (1 KiB
    /// messages go several times faster than awaiting each `send`). Order with other
    /// `send`s and `post`s from the same caller is kept. A message that meets a full queue
    /// waits in the node task, as a `send` would.
    ///
    /// `post` itself waits only while [`MAX_POSTED_BYTES`] of posted messages are on their
    /// way or waiting for room. That budget is the node's, not the peer's: posts held up by
    /// one slow peer keep their share until it reads them (or, if it stops reading, until
    /// [`FRAME_WRITE_TIMEOUT`](devp2p_core::session::FRAME_WRITE_TIMEOUT) disconnects it), and
    /// posts to every other peer may wait meanwhile. Where one slow peer must not hold up the
    /// rest, use [`try_send`](Self::try_send).
    ///
    /// # Errors
    ///
    /// Only what is known at once: [`SendFailure::Refused`] with [`SendError::TooLarge`] for
    /// a payload over [`MAX_UNCOMPRESSED_SIZE`] (larger than any peer accepts), and
    /// [`SendFailure::Stopped`]. A message the node refuses later (the peer left, say, or it
    /// does not compress into one frame) is dropped, logged at warn level with the peer and
    /// the reason, and counted in
    /// [`DriverStats::posts_dropped`](crate::DriverStats::posts_dropped); the application
    /// also hears of a departed peer through `PeerRemoved`.
    pub async fn post(
        &self,
        peer: &NodeId,
        protocol: ProtocolId,
        code: u64,
        payload: &[u8],
    ) -> Result<(), SendFailure> {
        refuse_oversized(payload)?;
        let weight = payload.len().clamp(POST_MIN_WEIGHT, MAX_POSTED_BYTES);
        let weight = u32::try_from(weight).unwrap_or(u32::MAX);
        let permit = self
            .fixed
            .post_budget
            .clone()
            .acquire_many_owned(weight)
            .await
            .map_err(|_| SendFailure::Stopped)?;
        self.commands
            .send(Command::Send {
                peer: *peer,
                protocol,
                code,
                payload: payload.to_vec(),
                reply: Reply::Posted(permit),
            })
            .await
            .map_err(|_| SendFailure::Stopped)
    }

    /// Sends like [`send`](Self::send) if the peer's outbound queue has room now, and never
    /// waits for room: a full queue is [`SendError::QueueFull`] inside
    /// [`SendFailure::Refused`], and the event stream then carries a
    /// [`NodeEvent::Writable`](devp2p_core::node::NodeEvent::Writable) for the peer once it
    /// has room (the same contract as `devp2p_mio::Driver::send`). While `send`s or `post`s
    /// to that peer wait for room, it is refused with [`SendFailure::TooManyWaiting`] so they
    /// keep their place, and the same `Writable` follows. It still awaits the node task's
    /// answer, which never depends on the peer.
    ///
    /// This is the send for a loop that serves many peers: a peer that reads slowly costs it
    /// one refusal and one event, never a wait.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), except that a full queue is
    /// [`SendFailure::Refused`] with [`SendError::QueueFull`] (keep the message; send it again
    /// on `Writable`), and [`SendFailure::TooManyWaiting`] means that any other send waits.
    pub async fn try_send(
        &self,
        peer: &NodeId,
        protocol: ProtocolId,
        code: u64,
        payload: &[u8],
    ) -> Result<(), SendFailure> {
        self.send_answered(peer, protocol, code, payload, Reply::Try)
            .await
    }

    /// Sends `messages` (`(code, payload)` pairs of `protocol`, in order) to `peer` as one
    /// command, and returns once the node has queued the last of them: what `send` does for
    /// each, with one hand-off between the caller's task and the node's for the whole batch
    /// instead of one per message. When the peer's queue fills up midway, the rest wait in
    /// the node task for room, in order and ahead of later sends. The payloads are taken,
    /// not copied. An empty batch returns at once.
    ///
    /// For a sender of many small messages this is the fast way to keep a connection busy
    /// (1 KiB messages under load: see BENCHMARKS.md, "Load"); batches of a few tens of
    /// KiB are enough.
    ///
    /// # Errors
    ///
    /// A [`BatchFailure`] says how many messages were queued before the first that failed;
    /// its `failure` is what [`send`](Self::send) would have said for that one. A payload
    /// over [`MAX_UNCOMPRESSED_SIZE`] refuses the whole batch before anything is sent
    /// (`queued` 0), as [`SendFailure::Stopped`] does when the node has stopped.
    pub async fn send_batch(
        &self,
        peer: &NodeId,
        protocol: ProtocolId,
        messages: Vec<(u64, Vec<u8>)>,
    ) -> Result<(), BatchFailure> {
        if messages.is_empty() {
            return Ok(());
        }
        let whole = |failure| BatchFailure { queued: 0, failure };
        for (_, payload) in &messages {
            refuse_oversized(payload).map_err(whole)?;
        }
        let (tx, rx) = oneshot::channel();
        let batch = Command::SendBatch {
            peer: *peer,
            protocol,
            messages,
            reply: tx,
        };
        // A batch in the node's hands when it stopped was answered with how far it got.
        self.ask(batch, rx)
            .await
            .map_err(|Stopped| whole(SendFailure::Stopped))?
    }

    /// Hands a message to the node task and waits for its answer (`send`, `try_send`).
    async fn send_answered(
        &self,
        peer: &NodeId,
        protocol: ProtocolId,
        code: u64,
        payload: &[u8],
        reply: fn(oneshot::Sender<Result<(), SendFailure>>) -> Reply,
    ) -> Result<(), SendFailure> {
        refuse_oversized(payload)?;
        let (tx, rx) = oneshot::channel();
        let send = Command::Send {
            peer: *peer,
            protocol,
            code,
            payload: payload.to_vec(),
            reply: reply(tx),
        };
        self.ask(send, rx).await?
    }

    /// Disconnects `peer` with `reason`.
    pub async fn disconnect(&self, peer: &NodeId, reason: DisconnectReason) -> Result<(), Stopped> {
        let peer = *peer;
        self.call(move |n, now| n.disconnect(now, &peer, reason))
            .await
    }

    /// Adds a static peer: kept connected, redialled after drops. Refused when the node can
    /// never dial it; a dial that fails later is a
    /// [`NodeEvent::ConnectionFailed`](devp2p_core::node::NodeEvent::ConnectionFailed).
    pub async fn add_static(&self, node: &Enode) -> Result<(), AddStaticError> {
        let node = node.clone();
        self.call(move |n, now| n.add_static(now, &node))
            .await?
            .map_err(|e: Undialable| AddStaticError::Undialable(e))
    }

    /// Removes a static peer (an existing connection stays).
    pub async fn remove_static(&self, id: &NodeId) -> Result<(), Stopped> {
        let id = *id;
        self.call(move |n, _| n.remove_static(&id)).await
    }

    /// Trusts `id`: admitted past the peer limits.
    pub async fn add_trusted(&self, id: &NodeId) -> Result<(), Stopped> {
        let id = *id;
        self.call(move |n, _| n.add_trusted(id)).await
    }

    /// Stops trusting `id`.
    pub async fn remove_trusted(&self, id: &NodeId) -> Result<(), Stopped> {
        let id = *id;
        self.call(move |n, _| n.remove_trusted(&id)).await
    }

    /// The connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Stopped> {
        self.call(|n, _| n.peers()).await
    }

    /// The nodes in the discv4 table (empty without discv4).
    pub async fn table(&self) -> Result<Vec<DiscNode>, Stopped> {
        self.query(|engine, _| engine.table()).await
    }

    /// The nodes in the discv5 table, each with its record (empty without discv5).
    pub async fn table_v5(&self) -> Result<Vec<DiscNode>, Stopped> {
        self.query(|engine, _| engine.table_v5()).await
    }

    /// The node's counters and the driver's.
    pub async fn stats(&self) -> Result<Stats, Stopped> {
        self.query(|engine, io| {
            let mut stats = engine.all_stats();
            stats.driver.posts_dropped = io.posts_dropped;
            stats
        })
        .await
    }

    /// The node database as it would be saved now.
    pub async fn db_snapshot(&self) -> Result<NodeDbSnapshot, Stopped> {
        self.query(|engine, _| engine.db_snapshot()).await
    }

    /// Runs a discv4 lookup for the nodes closest to `target` and returns them, nearest
    /// first.
    pub async fn lookup(&self, target: &NodePublicKey) -> Result<Vec<DiscNode>, LookupError> {
        self.run_lookup(Some(*target)).await
    }

    /// Runs a discv4 lookup for a random target (a crawler's walk) and returns what it
    /// found.
    pub async fn lookup_random(&self) -> Result<Vec<DiscNode>, LookupError> {
        self.run_lookup(None).await
    }

    /// Runs a discv5 lookup for the nodes closest to the node id `target` and returns them,
    /// nearest first, each with its record.
    pub async fn lookup_v5(&self, target: &NodeId) -> Result<Vec<DiscNode>, LookupError> {
        self.run_lookup_v5(Some(*target)).await
    }

    /// Runs a discv5 lookup for a random target and returns what it found.
    pub async fn lookup_random_v5(&self) -> Result<Vec<DiscNode>, LookupError> {
        self.run_lookup_v5(None).await
    }

    /// Sends a discv5 PING to the node of `to` (at the UDP endpoint its record advertises,
    /// handshaking first if need be) and returns its PONG: the node's record seq, and our
    /// address as it saw us ([`Pong::recipient`]). The `PingResponse` event reaches the
    /// event stream too.
    ///
    /// Two nodes running discv5 alone; one pings the other:
    ///
    /// ```
    /// use devp2p_tokio::{spawn, DriverConfig};
    ///
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let mut config = DriverConfig::default();
    ///     config.node.listen = "127.0.0.1:0".parse()?;
    ///     config.node.discv4 = false;
    ///     let (a, _a_events) = spawn(config.clone())?;
    ///     let (b, _b_events) = spawn(config)?;
    ///     let b_record = b.local_enr().expect("discovery runs");
    ///
    ///     let pong = a.ping_v5(&b_record).await?;
    ///     assert_eq!(pong.enr_seq, b_record.seq());
    ///     assert_eq!(pong.recipient(), Some(a.listen_addr()));
    ///
    ///     // FINDNODE [0]: the node's own record.
    ///     let nodes = a.find_node_v5(&b_record, &[0]).await?;
    ///     assert_eq!(nodes.records, vec![b_record]);
    ///     Ok(())
    /// }
    /// ```
    pub async fn ping_v5(&self, to: &Enr) -> Result<Pong, Discv5Failure> {
        let to = to.clone();
        self.v5_request(move |n, now| n.ping_v5(now, &to), V5Reply::Pong)
            .await
    }

    /// Sends a discv5 FINDNODE for the log `distances` (0 for the node's own record) to the
    /// node of `to` and returns every NODES message of its answer put together: the
    /// verified records at the distances asked, each node once, and how many messages came
    /// of how many announced. The records are the caller's: they do not enter the table.
    /// The `FindNodeResponse` event reaches the event stream too.
    pub async fn find_node_v5(
        &self,
        to: &Enr,
        distances: &[u64],
    ) -> Result<NodesResponse, Discv5Failure> {
        let (to, distances) = (to.clone(), distances.to_vec());
        self.v5_request(
            move |n, now| n.find_node_v5(now, &to, &distances),
            V5Reply::Nodes,
        )
        .await
    }

    /// Replaces our record (discv4 and discv5 hand it out from now on: handshakes, PINGs and
    /// PONGs carry its seq, `FINDNODE [0]` and ENRRequest return it, and
    /// [`local_enr`](Self::local_enr) too). It must be signed with our key and carry a higher
    /// seq than the current one, or it is refused saying which: build it from the current
    /// one.
    ///
    /// ```
    /// use devp2p_core::NodeSecretKey;
    /// use devp2p_tokio::{spawn, DriverConfig, KeySource};
    /// use rand_chacha::ChaCha20Rng;
    /// use rand_core::SeedableRng;
    ///
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     // A key of our own (a real node keeps it, in its key file say), to sign with.
    ///     let key = NodeSecretKey::generate(&mut ChaCha20Rng::seed_from_u64(7));
    ///     let mut config = DriverConfig::default();
    ///     config.node.listen = "127.0.0.1:0".parse()?;
    ///     config.key = KeySource::Secret(key.clone());
    ///     let (node, _events) = spawn(config)?;
    ///
    ///     let current = node.local_enr().unwrap();
    ///     let next = current
    ///         .to_builder()
    ///         .seq(current.seq() + 1)
    ///         .raw(b"app", b"\x83v02")? // an entry of our own, as an RLP string
    ///         .sign(&key)?;
    ///     node.set_local_record(&next).await?;
    ///     assert_eq!(node.local_enr(), Some(next.clone()));
    ///     assert!(node.set_local_record(&next).await.is_err(), "not newer than itself");
    ///     Ok(())
    /// }
    /// ```
    pub async fn set_local_record(&self, record: &Enr) -> Result<(), RecordFailure> {
        let record = record.clone();
        let fixed = self.fixed.clone();
        self.call(move |n, _| {
            n.set_local_record(record.clone())?;
            fixed.update_local(n);
            Ok(())
        })
        .await?
        .map_err(RecordFailure::Refused)
    }

    /// Registers the discv5 TALKREQ protocol `name`: its requests arrive on the event
    /// stream as [`NodeEvent::Discv5`](devp2p_core::node::NodeEvent::Discv5) holding a
    /// `TalkRequest`, to answer with [`answer_talk`](Self::answer_talk); other protocols get
    /// an empty TALKRESP.
    pub async fn register_talk_protocol(&self, name: &[u8]) -> Result<(), Discv5Failure> {
        let name = name.to_vec();
        self.call(move |n, _| n.register_talk_protocol(&name))
            .await?
            .map_err(Discv5Failure::Refused)
    }

    /// Unregisters the TALKREQ protocol `name`.
    pub async fn unregister_talk_protocol(&self, name: &[u8]) -> Result<(), Discv5Failure> {
        let name = name.to_vec();
        self.call(move |n, _| n.unregister_talk_protocol(&name))
            .await?
            .map_err(Discv5Failure::Refused)
    }

    /// Sends a discv5 TALKREQ of `protocol` to the node of `to` and returns its answer
    /// (empty when the node does not know the protocol). The `TalkResponse` event reaches
    /// the event stream too.
    pub async fn talk_request(
        &self,
        to: &Enr,
        protocol: &[u8],
        request: &[u8],
    ) -> Result<Vec<u8>, Discv5Failure> {
        let (to, protocol, request) = (to.clone(), protocol.to_vec(), request.to_vec());
        self.v5_request(
            move |n, now| n.talk_request(now, &to, &protocol, &request),
            V5Reply::Talk,
        )
        .await
    }

    /// Sends a discv5 request with `send` and waits for its answer, which `reply` wraps for
    /// the node task. Registered before the node is drained, so that a request that ends
    /// at once still finds its caller waiting.
    async fn v5_request<T: Send + 'static>(
        &self,
        send: impl FnOnce(&mut Node<ChaCha20Rng>, Instant) -> Result<RequestId, Discv5Error>
            + Send
            + 'static,
        reply: fn(oneshot::Sender<Result<T, RequestFailure>>) -> V5Reply,
    ) -> Result<T, Discv5Failure> {
        let (tx, rx) = oneshot::channel();
        let sent = self
            .query(move |engine, io| {
                let now = engine.clock().now();
                let r = send(engine.node_mut(), now).map(|id| {
                    io.v5_requests.insert(id, reply(tx));
                });
                engine.flush(io);
                r
            })
            .await?;
        sent.map_err(Discv5Failure::Refused)?;
        rx.await
            .map_err(|_| Discv5Failure::Stopped)?
            .map_err(Discv5Failure::Failed)
    }

    /// Answers the TALKREQ `id` (from a `TalkRequest` event) with `response`, within
    /// [`TALK_ANSWER_TIMEOUT`](devp2p_core::discv5::discovery::TALK_ANSWER_TIMEOUT).
    pub async fn answer_talk(
        &self,
        id: TalkRequestId,
        response: &[u8],
    ) -> Result<(), Discv5Failure> {
        let response = response.to_vec();
        self.call(move |n, now| n.answer_talk(now, id, &response))
            .await?
            .map_err(Discv5Failure::Refused)
    }

    async fn run_lookup(
        &self,
        target: Option<NodePublicKey>,
    ) -> Result<Vec<DiscNode>, LookupError> {
        self.start_lookup(DiscoveryVersion::V4, move |node, now| match target {
            Some(t) => node.lookup(now, &t),
            None => node.lookup_random(now),
        })
        .await
    }

    async fn run_lookup_v5(&self, target: Option<NodeId>) -> Result<Vec<DiscNode>, LookupError> {
        self.start_lookup(DiscoveryVersion::V5, move |node, now| match target {
            Some(t) => node.lookup_v5(now, &t),
            None => node.lookup_random_v5(now),
        })
        .await
    }

    /// Starts a lookup of `version` with `start` and waits for its result. Started without
    /// draining the node, so that a lookup that ends at once still finds its reply waiting.
    async fn start_lookup(
        &self,
        version: DiscoveryVersion,
        start: impl FnOnce(&mut Node<ChaCha20Rng>, Instant) -> Option<LookupId> + Send + 'static,
    ) -> Result<Vec<DiscNode>, LookupError> {
        let (reply, rx) = oneshot::channel();
        let started = self
            .query(move |engine, io| {
                let now = engine.clock().now();
                let result = match start(engine.node_mut(), now) {
                    Some(id) => {
                        let waiting = match version {
                            DiscoveryVersion::V4 => &mut io.lookups,
                            DiscoveryVersion::V5 => &mut io.lookups_v5,
                        };
                        waiting.insert(id, reply);
                        Ok(())
                    }
                    None => Err(LookupError::of(engine.node(), version)),
                };
                engine.flush(io);
                result
            })
            .await?;
        started?;
        rx.await.map_err(|_| LookupError::Stopped)
    }

    /// Shuts the node down gracefully: Disconnect(ClientQuitting) to every peer, waits for
    /// them to drain (3 s at most), saves the node database. Returns what happened.
    pub async fn shutdown(&self) -> Result<ShutdownReport, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.ask(Command::Shutdown(tx), rx).await
    }

    /// Resolves once the node task has ended.
    pub async fn closed(&self) {
        self.commands.closed().await
    }
}

/// Refuses, before it is copied or queued, a payload larger than any peer decompresses.
fn refuse_oversized(payload: &[u8]) -> Result<(), SendFailure> {
    if payload.len() > MAX_UNCOMPRESSED_SIZE {
        return Err(SendFailure::Refused(SendError::TooLarge {
            size: payload.len(),
            limit: MAX_UNCOMPRESSED_SIZE,
            kind: SizeLimit::Message,
        }));
    }
    Ok(())
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
        } => submit(
            engine,
            io,
            peer,
            protocol,
            smallvec![(code, payload)],
            reply,
        ),
        Command::SendBatch {
            peer,
            protocol,
            messages,
            reply,
        } => submit(
            engine,
            io,
            peer,
            protocol,
            SmallVec::from_vec(messages),
            Reply::Batch(reply),
        ),
        Command::Shutdown(reply) => {
            shutdown_waiters.push(reply);
            engine.begin_shutdown(io);
        }
    }
}

/// Hands a send (or batch) to the node, behind any sends to the same peer that wait for room.
/// Not drained here: the task drains once after the turn's commands, so a burst of small
/// messages leaves in few writes.
fn submit(
    engine: &mut Engine<TokioStream>,
    io: &mut TokioIo,
    peer: NodeId,
    protocol: ProtocolId,
    messages: SmallVec<[(u64, Vec<u8>); 1]>,
    reply: Reply,
) {
    let p = ParkedSend {
        protocol,
        messages,
        next: 0,
        reply,
    };
    if let Some(q) = io.parked.get_mut(&peer) {
        // Earlier sends to this peer wait for room: keep the order. Posts are bounded by
        // their byte budget instead.
        let waiting = q.len();
        let too_many = Err(SendFailure::TooManyWaiting { peer, waiting });
        match p.reply {
            Reply::Try(_) => {
                io.try_blocked.insert(peer);
                p.finish(io, &peer, too_many);
            }
            Reply::Caller(_) | Reply::Batch(_) if waiting >= MAX_PARKED_SENDS_PER_PEER => {
                p.finish(io, &peer, too_many);
            }
            _ => q.push_back(p),
        }
        return;
    }
    if let Some(p) = offer(engine, io, &peer, p) {
        io.parked.entry(peer).or_default().push_back(p);
    }
}
