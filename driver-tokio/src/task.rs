//! The node task: the only owner of the `Node`. It waits on the UDP socket, the listener,
//! every connection's readiness, finished dials, commands from handles and the node's
//! deadline, and hands each to the shared [`Engine`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use devp2p_core::discv4::{Event as DiscoveryEvent, LookupId, Node as DiscNode};
use devp2p_core::discv5::discovery::Event as Discv5Event;
use devp2p_core::discv5::{NodesResponse, Pong, RequestFailure, RequestId};
use devp2p_core::dnsdisc::client::LOOKUP_TIMEOUT;
use devp2p_core::dnsdisc::ResolveError;
use devp2p_core::node::{ConnId, DnsQueryId, NodeEvent, DIAL_TIMEOUT};
use devp2p_core::session::{ProtocolId, SendError};
use devp2p_core::NodeId;
use devp2p_mio::common::engine::ACCEPT_ERROR_BACKOFF;
use devp2p_mio::common::{Backlog, DnsResolver, Engine, Io, ShutdownReport, Stream};
use smallvec::SmallVec;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};

use crate::events::EventSender;
use crate::handle::{BatchFailure, Command};
use devp2p_mio::common::SendFailure;

/// Commands from handles executed per turn before the sockets get theirs.
pub const COMMANDS_PER_TURN: usize = 64;
/// Message bytes the commands of one turn may seal before what they sealed is written (our
/// choice: a batch of small messages still goes out in one write).
pub(crate) const WRITE_AFTER_BYTES: usize = 64 * 1024;
/// Connections accepted per turn.
pub const ACCEPTS_PER_TURN: usize = 64;
/// Sends to one peer waiting for room in its outbound queue; beyond this `send` fails with
/// the queue-full error at once (bounds memory when callers do not await their sends).
pub const MAX_PARKED_SENDS_PER_PEER: usize = 1024;

/// A tokio stream as the engine sees it.
pub(crate) struct TokioStream(pub(crate) TcpStream);

impl Stream for TokioStream {
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }

    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn connect_result(&mut self) -> io::Result<bool> {
        // Tokio streams reach the engine connected.
        Ok(true)
    }
}

/// Who hears how a send ended.
pub(crate) enum Reply {
    /// A `send` caller, waiting.
    Caller(oneshot::Sender<Result<(), SendFailure>>),
    /// A `try_send` caller: answered at once, never parked.
    Try(oneshot::Sender<Result<(), SendFailure>>),
    /// A `send_batch` caller, waiting for the last message to be queued.
    Batch(oneshot::Sender<Result<(), BatchFailure>>),
    /// A `post`: nobody waits; the permit returns its bytes to the post budget when dropped,
    /// and a failure is counted.
    Posted(tokio::sync::OwnedSemaphorePermit),
}

impl Reply {
    /// Tells the sender how its send ended; `queued` of its messages went into the queue
    /// (what a batch's caller learns when it stopped short).
    fn finish(self, io: &mut TokioIo, peer: &NodeId, queued: usize, r: Result<(), SendFailure>) {
        match self {
            Reply::Caller(tx) | Reply::Try(tx) => {
                let _ = tx.send(r);
            }
            Reply::Batch(tx) => {
                let _ = tx.send(r.map_err(|failure| BatchFailure { queued, failure }));
            }
            Reply::Posted(_permit) => {
                if let Err(e) = r {
                    io.posts_dropped += 1;
                    tracing::warn!(%peer, error = %e, "a posted message was dropped");
                }
            }
        }
    }
}

/// A caller waiting for the answer to one of its discv5 requests, by what it asked.
pub(crate) enum V5Reply {
    Pong(oneshot::Sender<Result<Pong, RequestFailure>>),
    Nodes(oneshot::Sender<Result<NodesResponse, RequestFailure>>),
    Talk(oneshot::Sender<Result<Vec<u8>, RequestFailure>>),
}

impl V5Reply {
    /// Hands `event` to this caller if it is the answer it waits for (the request ids of
    /// one node are unique, so a mismatch cannot happen; it is dropped if it did).
    fn answer(self, event: &Discv5Event) {
        match (self, event) {
            (V5Reply::Pong(tx), Discv5Event::PingResponse { result, .. }) => {
                let _ = tx.send(result.clone());
            }
            (V5Reply::Nodes(tx), Discv5Event::FindNodeResponse { result, .. }) => {
                let _ = tx.send(result.clone());
            }
            (V5Reply::Talk(tx), Discv5Event::TalkResponse { result, .. }) => {
                let _ = tx.send(result.clone());
            }
            _ => {}
        }
    }
}

/// One send (or batch) on its way into a peer's outbound queue: in the node task's hands, and
/// waiting there while the queue is full.
pub(crate) struct ParkedSend {
    pub(crate) protocol: ProtocolId,
    /// `(code, payload)` in order; those before `next` are queued (their payloads released).
    pub(crate) messages: SmallVec<[(u64, Vec<u8>); 1]>,
    pub(crate) next: usize,
    pub(crate) reply: Reply,
}

impl ParkedSend {
    pub(crate) fn finish(self, io: &mut TokioIo, peer: &NodeId, r: Result<(), SendFailure>) {
        self.reply.finish(io, peer, self.next, r);
    }
}

/// Offers `p`'s messages to the node in order. Returns it when the peer's queue filled up
/// before the last (it waits for room, unless it came from `try_send`, which is answered);
/// otherwise its sender has been answered. Not drained here: the caller drains once for
/// all it offered.
pub(crate) fn offer(
    engine: &mut Engine<TokioStream>,
    io: &mut TokioIo,
    peer: &NodeId,
    mut p: ParkedSend,
) -> Option<ParkedSend> {
    let now = engine.clock().now();
    while let Some((code, payload)) = p.messages.get_mut(p.next) {
        match engine
            .node_mut()
            .send(now, peer, p.protocol, *code, payload)
        {
            Ok(()) => {
                *payload = Vec::new();
                p.next += 1;
            }
            Err(e @ SendError::QueueFull { .. }) if matches!(p.reply, Reply::Try(_)) => {
                io.try_blocked.insert(*peer);
                p.finish(io, peer, Err(SendFailure::Refused(e)));
                return None;
            }
            // Offered again when the node says the peer is writable.
            Err(SendError::QueueFull { .. }) => return Some(p),
            Err(e) => {
                p.finish(io, peer, Err(SendFailure::Refused(e)));
                return None;
            }
        }
    }
    p.finish(io, peer, Ok(()));
    None
}

/// A DNS lookup's answer, for the node task.
pub(crate) type DnsAnswer = (DnsQueryId, Result<Vec<String>, ResolveError>);

/// The task's sockets and application side.
pub(crate) struct TokioIo {
    pub(crate) udp: Option<UdpSocket>,
    pub(crate) listener: TcpListener,
    pub(crate) dial_results: mpsc::UnboundedSender<(ConnId, io::Result<TcpStream>)>,
    pub(crate) events: EventSender,
    pub(crate) lookups: BTreeMap<LookupId, oneshot::Sender<Vec<DiscNode>>>,
    /// discv5's lookups, numbered apart from discv4's.
    pub(crate) lookups_v5: BTreeMap<LookupId, oneshot::Sender<Vec<DiscNode>>>,
    /// discv5 requests (PING, FINDNODE, TALKREQ) whose caller waits for the answer.
    pub(crate) v5_requests: BTreeMap<RequestId, V5Reply>,
    pub(crate) parked: BTreeMap<NodeId, VecDeque<ParkedSend>>,
    /// Peers the node said are writable again since the parked sends were last retried.
    pub(crate) writable: BTreeSet<NodeId>,
    /// Peers a `try_send` found full: the application hears when they are writable again.
    pub(crate) try_blocked: BTreeSet<NodeId>,
    /// Posted messages the node refused (peer gone, protocol not negotiated…).
    pub(crate) posts_dropped: u64,
    pub(crate) accept_paused_until: Option<tokio::time::Instant>,
    /// DNS discovery's resolver, with DNS trees; each lookup runs in a task of its own.
    pub(crate) dns: Option<DnsResolver>,
    /// Where those tasks send their answers. Unbounded, as the dial results are: the node
    /// walks its trees one name at a time, so at most a few answers are ever queued.
    pub(crate) dns_answers: mpsc::UnboundedSender<DnsAnswer>,
}

impl Io for TokioIo {
    type Stream = TokioStream;

    fn send_datagram(&mut self, to: SocketAddr, data: &[u8]) -> io::Result<usize> {
        match &self.udp {
            Some(s) => s.try_send_to(data, to),
            None => Err(io::Error::other("no UDP socket")),
        }
    }

    fn recv_datagram(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match &self.udp {
            Some(s) => s.try_recv_from(buf),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn dial(&mut self, conn: ConnId, addr: SocketAddr) -> io::Result<Option<TokioStream>> {
        let results = self.dial_results.clone();
        tokio::spawn(async move {
            let r = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
            };
            let _ = results.send((conn, r));
        });
        Ok(None)
    }

    fn register(&mut self, _conn: ConnId, stream: &mut TokioStream) -> io::Result<()> {
        // Nagle would hold back small frames (Ping, Pong, short messages) for an ACK.
        stream.0.set_nodelay(true)
    }

    fn deregister(&mut self, _conn: ConnId, _stream: &mut TokioStream) {}

    fn resolve_txt(&mut self, query: DnsQueryId, name: String) {
        let answers = self.dns_answers.clone();
        let Some(resolver) = self.dns.clone() else {
            let e = ResolveError::Failed("this driver has no DNS resolver".into());
            let _ = answers.send((query, Err(e)));
            return;
        };
        tokio::spawn(async move {
            // The node gives a lookup up after LOOKUP_TIMEOUT; so does the task, so that none
            // outlives its use.
            let answer = tokio::time::timeout(LOOKUP_TIMEOUT, resolver.lookup_txt(&name))
                .await
                .unwrap_or(Err(ResolveError::Timeout));
            let _ = answers.send((query, answer));
        });
    }

    fn deliver(&mut self, event: NodeEvent) {
        match &event {
            NodeEvent::Discovery(d) => {
                if let DiscoveryEvent::LookupFinished { id, nodes, .. } = d.as_ref() {
                    if let Some(reply) = self.lookups.remove(id) {
                        let _ = reply.send(nodes.clone());
                    }
                }
            }
            NodeEvent::Discv5(d) => match d.as_ref() {
                Discv5Event::LookupFinished { id, nodes, .. } => {
                    if let Some(reply) = self.lookups_v5.remove(id) {
                        let _ = reply.send(nodes.clone());
                    }
                }
                Discv5Event::PingResponse { id, .. }
                | Discv5Event::FindNodeResponse { id, .. }
                | Discv5Event::TalkResponse { id, .. } => {
                    if let Some(reply) = self.v5_requests.remove(id) {
                        reply.answer(d);
                    }
                }
                _ => {}
            },
            NodeEvent::PeerRemoved { id, .. } => {
                self.writable.remove(id);
                self.try_blocked.remove(id);
                for p in self.parked.remove(id).into_iter().flatten() {
                    let e = Err(SendFailure::Refused(SendError::NotEstablished));
                    p.finish(self, id, e);
                }
            }
            // Parked sends are retried by the task; the application hears of it only when
            // one of its `try_send`s met the full queue (`send` waits, `post` parks).
            NodeEvent::Writable { peer } => {
                self.writable.insert(*peer);
                if !self.try_blocked.remove(peer) {
                    return;
                }
            }
            _ => {}
        }
        self.events.send(event);
    }

    fn backlog(&self) -> Backlog {
        self.events.backlog()
    }
}

/// What became ready in one turn.
enum Ready {
    Udp,
    UdpWritable,
    Accepted(TcpStream, SocketAddr),
    AcceptFailed(io::Error),
    Read(ConnId),
    Write(ConnId),
}

/// Polls every socket for readiness; ready if anything is.
fn poll_ready(
    engine: &Engine<TokioStream>,
    io: &TokioIo,
    cursor: Option<ConnId>,
    cx: &mut Context<'_>,
) -> Poll<Vec<Ready>> {
    let mut ready = Vec::new();
    if let Some(udp) = &io.udp {
        if udp.poll_recv_ready(cx).is_ready() {
            ready.push(Ready::Udp);
        }
        if engine.has_unsent() && udp.poll_send_ready(cx).is_ready() {
            ready.push(Ready::UdpWritable);
        }
    }
    let accepting = io
        .accept_paused_until
        .is_none_or(|t| t <= tokio::time::Instant::now());
    if accepting {
        for _ in 0..ACCEPTS_PER_TURN {
            match io.listener.poll_accept(cx) {
                Poll::Ready(Ok((s, a))) => ready.push(Ready::Accepted(s, a)),
                Poll::Ready(Err(e)) => {
                    ready.push(Ready::AcceptFailed(e));
                    break;
                }
                Poll::Pending => break,
            }
        }
    }
    for (conn, stream, interest) in engine.interests(cursor) {
        if interest.read && stream.0.poll_read_ready(cx).is_ready() {
            ready.push(Ready::Read(conn));
        }
        if interest.write && stream.0.poll_write_ready(cx).is_ready() {
            ready.push(Ready::Write(conn));
        }
    }
    if ready.is_empty() {
        Poll::Pending
    } else {
        Poll::Ready(ready)
    }
}

/// What the task needs for port mapping: the NAT thread's wake-up, and the handles' copy of
/// our enode and record to keep current.
pub(crate) struct Nat {
    pub(crate) wake: std::sync::Arc<tokio::sync::Notify>,
    pub(crate) local: std::sync::Arc<crate::handle::Fixed>,
}

/// Runs the node until a shutdown completes; answers every shutdown request with the report.
pub(crate) async fn run(
    mut engine: Engine<TokioStream>,
    mut io: TokioIo,
    mut commands: mpsc::Receiver<Command>,
    mut dial_results: mpsc::UnboundedReceiver<(ConnId, io::Result<TcpStream>)>,
    nat: Nat,
    mut dns_answers: mpsc::UnboundedReceiver<DnsAnswer>,
) {
    let shared = io.events.shared.clone();
    let mut cursor: Option<ConnId> = None;
    let mut handles_gone = false;
    let mut shutdown_waiters: Vec<oneshot::Sender<ShutdownReport>> = Vec::new();
    engine.flush(&mut io);
    loop {
        // What is due runs before the next input, as the mio driver runs it after every
        // poll: `select!` below picks among ready branches at random, so a deadline that has
        // passed could otherwise wait behind datagrams or commands that came after it (a
        // fresh node's first refresh, due at start, decides whether the handshakes it takes
        // put their nodes into its table). Cheap when nothing is due.
        engine.on_timeout(&mut io);
        engine.run_pending(&mut io);
        retry_parked(&mut engine, &mut io);
        if engine.is_drained() {
            break;
        }
        let deadline = engine
            .next_deadline()
            .map(|d| tokio::time::Instant::from_std(engine.clock().to_std(d)));
        let accept_resume = io.accept_paused_until;
        // Readiness the engine has not acted on yet, or peers that became writable during
        // this turn's last flush (retry_parked ran before it): either way, no wake-up is
        // coming for it, so the task goes round again at once.
        let pending = engine.has_pending(&io) || !io.writable.is_empty();
        tokio::select! {
            cmd = commands.recv(), if !handles_gone => match cmd {
                Some(c) => {
                    let mut unflushed = c.payload_len();
                    crate::handle::execute(c, &mut engine, &mut io, &mut shutdown_waiters);
                    // More that are already waiting, up to a turn's share. Small messages are
                    // written once for the batch; once a batch has sealed WRITE_AFTER_BYTES,
                    // they are written at once, so that the peer opens the first while we seal
                    // the next (64 KiB messages: one write each, not one per 4 MiB).
                    for _ in 1..COMMANDS_PER_TURN {
                        if unflushed >= WRITE_AFTER_BYTES {
                            engine.flush(&mut io);
                            unflushed = 0;
                        }
                        let Ok(c) = commands.try_recv() else { break };
                        unflushed += c.payload_len();
                        crate::handle::execute(c, &mut engine, &mut io, &mut shutdown_waiters);
                    }
                    engine.flush(&mut io);
                }
                None => {
                    handles_gone = true;
                    engine.begin_shutdown(&mut io);
                }
            },
            ready = std::future::poll_fn(|cx| poll_ready(&engine, &io, cursor, cx)) => {
                for r in ready {
                    match r {
                        // Readiness stays set while datagrams wait: the next turn reads on.
                        Ready::Udp => {
                            engine.on_udp_readable(&mut io);
                        }
                        Ready::UdpWritable => engine.on_udp_writable(&mut io),
                        Ready::Accepted(s, addr) => engine.on_accepted(&mut io, TokioStream(s), addr),
                        Ready::AcceptFailed(e) => {
                            tracing::warn!(error = %e, "accepting a connection failed; pausing accepts");
                            io.accept_paused_until = Some(tokio::time::Instant::now() + ACCEPT_ERROR_BACKOFF);
                        }
                        Ready::Read(conn) => {
                            cursor = Some(conn);
                            engine.on_readable(&mut io, conn);
                        }
                        Ready::Write(conn) => engine.on_writable(&mut io, conn),
                    }
                }
            }
            Some((conn, result)) = dial_results.recv() => match result {
                Ok(s) => engine.on_connected(&mut io, conn, TokioStream(s)),
                Err(e) => engine.on_connect_failed(&mut io, conn, &e),
            },
            Some((query, answer)) = dns_answers.recv() => {
                engine.on_dns_answer(&mut io, query, answer);
            }
            _ = sleep_until(deadline) => engine.on_timeout(&mut io),
            _ = sleep_until(accept_resume), if accept_resume.is_some() => io.accept_paused_until = None,
            _ = shared.resume.notified() => {}
            _ = nat.wake.notified() => {
                let local = &nat.local;
                engine.on_nat(&mut io, |node| local.update_local(node));
            }
            _ = tokio::task::yield_now(), if pending => {}
        }
    }
    let report = engine.finish(&mut io);
    tracing::info!(
        forced_closes = report.forced_closes,
        db = ?report.db_saved,
        "node stopped"
    );
    for w in shutdown_waiters {
        let _ = w.send(report.clone());
    }
    for (peer, queue) in std::mem::take(&mut io.parked) {
        for p in queue {
            p.finish(&mut io, &peer, Err(SendFailure::Stopped));
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Offers sends that waited for queue room again, in order, to the peers the node said have
/// room now; drains the node once at the end.
fn retry_parked(engine: &mut Engine<TokioStream>, io: &mut TokioIo) {
    if io.writable.is_empty() {
        return;
    }
    let peers = std::mem::take(&mut io.writable);
    for peer in peers {
        while let Some(p) = io.parked.get_mut(&peer).and_then(VecDeque::pop_front) {
            if let Some(p) = offer(engine, io, &peer, p) {
                io.parked.entry(peer).or_default().push_front(p);
                break;
            }
        }
        if io.parked.get(&peer).is_some_and(VecDeque::is_empty) {
            io.parked.remove(&peer);
        }
    }
    engine.flush(io);
}
