//! Load: many concurrent sessions on 127.0.0.1, each sending many messages, through each
//! driver. Every message must arrive, in order per session, nothing lost or duplicated; the
//! test reports the wall time, the cores kept busy and the peak resident memory per session.
//!
//! One hub node (no discovery, never dials) and `SESSIONS` client nodes, each with the hub as
//! its static peer, all through the driver under test, with the same split of the two cores:
//! with mio the hub has a `Runner` on one thread and the clients share another; with tokio
//! the hub (and the task reading its events) runs on a one-worker runtime and the clients'
//! tasks on another (`RUNTIMES=shared`: every node a task on one two-worker runtime). Once
//! all sessions are up, every client sends `MESSAGES` messages of `SIZE` bytes to the hub at
//! once. Each payload starts with the client's number and the message's sequence number (8
//! bytes each, big-endian) followed by random, incompressible filler; the hub checks every
//! message: the number belongs to that peer, the sequence is the next one expected, the
//! filler is intact. The time runs from the first send to the hub's last message; the CPU
//! time and context switches the test reports are the process's over that time
//! (`getrusage`).
//!
//! Each client's session queue is capped at `QUEUE` bytes (`SessionConfig::max_outbound_queue`,
//! 64 KiB unless set): sends beyond it wait for room (tokio `send` parks, mio `send` says
//! `QueueFull`), so the senders run at the network's pace instead of queueing everything up
//! front, and the memory figure is the stack's rather than the test's backlog. tokio clients
//! hand their messages to their node `BATCH` at a time (`NodeHandle::send_batch`, which
//! returns once the last is queued), so that the hand-off between the sender's task and the
//! node's is per batch, as mio's direct calls need none.
//!
//! Why tokio's hub gets a runtime of its own: on one shared runtime the hub's task is one
//! among 1,001 runnable tasks in the workers' first-come queues, so it gets a small share of
//! the cores while the clients run ahead into the loopback's socket buffers (megabytes per
//! connection); once they are done, the hub opens everything alone on one core. In a
//! deployment the peers are other processes. BENCHMARKS.md has both figures.
//!
//! Memory: each driver runs in a process of its own (this test binary again, running only
//! that test), which reads its `/proc/self/status`: `VmRSS` before any node starts is the
//! baseline, `VmHWM` at the end the peak; per session = (peak - baseline) / sessions. It
//! covers both ends of each session and the client node around it, the messages in flight
//! and the event queues; not the kernel's socket buffers.
//!
//! Size, by environment variable (the defaults are the CI size, a few seconds per driver in a
//! debug build on two cores):
//!
//! | variable | default | |
//! |---|---|---|
//! | `DEVP2P_LOAD_SESSIONS` | 100 | concurrent sessions |
//! | `DEVP2P_LOAD_MESSAGES` | 200 | messages per session |
//! | `DEVP2P_LOAD_SIZE` | 1024 | bytes per message |
//! | `DEVP2P_LOAD_QUEUE` | 65536 | each client's outbound queue cap |
//! | `DEVP2P_LOAD_BATCH` | 16 | messages per tokio `send_batch` (1: a `send` per message) |
//! | `DEVP2P_LOAD_RUNTIMES` | `split` | tokio: `split` (hub, clients: one worker each) or `shared` |
//! | `DEVP2P_LOAD_LIMIT_SECS` | 120 | time limit for connecting, and again for the transfer |
//!
//! The issue's full size, 1,000 sessions of 1,000 messages of 1 KiB (the figures are in
//! BENCHMARKS.md):
//!
//! ```sh
//! DEVP2P_LOAD_SESSIONS=1000 DEVP2P_LOAD_MESSAGES=1000 \
//!     cargo test --release -p devp2p-tests --test load -- --nocapture
//! ```
//!
//! 1,000 sessions need about 3,000 file descriptors (both ends of each connection and each
//! client's listener); the test raises its soft `RLIMIT_NOFILE` to the hard limit when it is
//! lower than that, and fails naming the limit if even the hard limit is too low.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devp2p_core::node::NodeEvent;
use devp2p_core::session::{Protocol, ProtocolId, SendError};
use devp2p_core::{Enode, NodeId};
use devp2p_mio::{DriverConfig, Runner, SendFailure};

/// The one protocol the load test speaks.
const P: ProtocolId = ProtocolId::new(0);

/// Set in the child process that runs one driver's load.
const CHILD: &str = "DEVP2P_LOAD_CHILD";
/// Bytes of header in each payload: client number and sequence number.
const HEADER: usize = 16;

/// The load's size.
#[derive(Debug, Clone, Copy)]
struct Size {
    sessions: usize,
    messages: u64,
    size: usize,
    queue: usize,
    /// Messages per tokio `send_batch` (1: one `send` each).
    batch: u64,
    /// tokio: every node on one two-worker runtime, instead of the hub on one of its own.
    shared_runtime: bool,
    limit: Duration,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid number")),
        Err(_) => default,
    }
}

impl Size {
    fn from_env() -> Self {
        let s = Size {
            sessions: env_or("DEVP2P_LOAD_SESSIONS", 100),
            messages: env_or("DEVP2P_LOAD_MESSAGES", 200),
            size: env_or("DEVP2P_LOAD_SIZE", 1024),
            queue: env_or("DEVP2P_LOAD_QUEUE", 64 * 1024),
            batch: env_or("DEVP2P_LOAD_BATCH", 16),
            shared_runtime: match std::env::var("DEVP2P_LOAD_RUNTIMES").as_deref() {
                Err(_) | Ok("split") => false,
                Ok("shared") => true,
                Ok(other) => panic!("DEVP2P_LOAD_RUNTIMES must be split or shared, not {other:?}"),
            },
            limit: Duration::from_secs(env_or("DEVP2P_LOAD_LIMIT_SECS", 120)),
        };
        assert!(s.sessions > 0, "DEVP2P_LOAD_SESSIONS must be at least 1");
        assert!(s.batch > 0, "DEVP2P_LOAD_BATCH must be at least 1");
        assert!(
            s.size >= HEADER,
            "DEVP2P_LOAD_SIZE must be at least {HEADER} (the header)"
        );
        assert!(
            s.queue >= s.size + 1024,
            "DEVP2P_LOAD_QUEUE must hold one message and its framing"
        );
        s
    }
}

fn protocol() -> Protocol {
    Protocol::new("load", 1, 1)
}

fn hub_config(size: Size) -> DriverConfig {
    let mut config = DriverConfig::default();
    config.node.session.protocols = vec![protocol()];
    config.node.listen = "127.0.0.1:0".parse().expect("an address");
    config.node.no_discovery = true;
    config.node.no_dial = true; // Every client at once: room for all of them, and for all their handshakes.
    config.node.max_peers = size.sessions + 8;
    config.node.max_pending_peers = size.sessions + 8;
    config
}

fn client_config(size: Size, hub: &Enode) -> DriverConfig {
    let mut config = DriverConfig::default();
    config.node.session.protocols = vec![protocol()];
    config.node.session.max_outbound_queue = size.queue;
    config.node.listen = "127.0.0.1:0".parse().expect("an address");
    config.node.no_discovery = true;
    config.node.static_nodes = vec![hub.clone()];
    config
}

/// Random, incompressible filler shared by every message (each is encrypted separately, and
/// compressed separately, so sharing it changes nothing on the wire).
fn filler(len: usize) -> Arc<Vec<u8>> {
    let mut x = 0x243f_6a88_85a3_08d3u64;
    Arc::new(
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect(),
    )
}

fn payload(filler: &[u8], client: u64, seq: u64) -> Vec<u8> {
    let mut p = filler.to_vec();
    p[..8].copy_from_slice(&client.to_be_bytes());
    p[8..16].copy_from_slice(&seq.to_be_bytes());
    p
}

/// What the hub has received, checked message by message.
struct Tally {
    filler: Arc<Vec<u8>>,
    messages: u64,
    /// Per peer: its client number (from its first message) and the next sequence expected.
    next: BTreeMap<NodeId, (u64, u64)>,
    /// Which peer each client number came from.
    owner: BTreeMap<u64, NodeId>,
    peers: usize,
    delivered: u64,
    done_sessions: usize,
    /// The first thing that went wrong.
    error: Option<String>,
}

impl Tally {
    fn new(filler: Arc<Vec<u8>>, messages: u64) -> Self {
        Tally {
            filler,
            messages,
            next: BTreeMap::new(),
            owner: BTreeMap::new(),
            peers: 0,
            delivered: 0,
            done_sessions: 0,
            error: None,
        }
    }

    fn fail(&mut self, e: String) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn event(&mut self, e: NodeEvent) {
        match e {
            NodeEvent::PeerAdded(_) => self.peers += 1,
            NodeEvent::PeerRemoved {
                id, error, reason, ..
            } => self.fail(format!("peer {id} left ({reason:?}, {error:?})")),
            NodeEvent::Message { peer, payload, .. } => self.message(peer, &payload),
            _ => {}
        }
    }

    fn message(&mut self, peer: NodeId, payload: &[u8]) {
        if payload.len() != self.filler.len() {
            return self.fail(format!("{peer}: a message of {} bytes", payload.len()));
        }
        let client = u64::from_be_bytes(payload[..8].try_into().expect("8 bytes"));
        let seq = u64::from_be_bytes(payload[8..16].try_into().expect("8 bytes"));
        if payload[HEADER..] != self.filler[HEADER..] {
            return self.fail(format!(
                "{peer}: message {seq} of client {client} is corrupt"
            ));
        }
        let owner = *self.owner.entry(client).or_insert(peer);
        if owner != peer {
            return self.fail(format!(
                "client {client}'s messages come from {owner} and {peer}"
            ));
        }
        let (who, next) = *self.next.entry(peer).or_insert((client, 0));
        if who != client {
            return self.fail(format!(
                "{peer} sent as client {who} and as client {client}"
            ));
        }
        if seq != next {
            return self.fail(format!(
                "client {client}: message {seq} arrived when {next} was due (lost, duplicated or reordered)"
            ));
        }
        self.next.insert(peer, (client, next + 1));
        self.delivered += 1;
        if next + 1 == self.messages {
            self.done_sessions += 1;
        }
    }
}

/// What the hub has got so far.
#[derive(Debug, Clone, Default)]
struct Progress {
    peers: usize,
    delivered: u64,
    done_sessions: usize,
    error: Option<String>,
}

impl Tally {
    fn progress(&self) -> Progress {
        Progress {
            peers: self.peers,
            delivered: self.delivered,
            done_sessions: self.done_sessions,
            error: self.error.clone(),
        }
    }
}

/// The figures of one run.
struct Report {
    connect: Duration,
    transfer: Duration,
    /// The process's CPU time and context switches during the transfer.
    usage: Usage,
}

/// The process's CPU time (user + system, all threads) and context switches so far, or
/// between two readings.
#[derive(Debug, Clone, Copy)]
struct Usage {
    cpu: Duration,
    voluntary: i64,
    involuntary: i64,
}

impl Usage {
    fn now() -> Self {
        // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage writes one `rusage` into the struct we pass and reads nothing.
        let got = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
        assert_eq!(got, 0, "getrusage(RUSAGE_SELF) failed");
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        Usage {
            cpu: tv(u.ru_utime) + tv(u.ru_stime),
            voluntary: u.ru_nvcsw,
            involuntary: u.ru_nivcsw,
        }
    }

    fn since(self, before: Usage) -> Usage {
        Usage {
            cpu: self.cpu.saturating_sub(before.cpu),
            voluntary: self.voluntary - before.voluntary,
            involuntary: self.involuntary - before.involuntary,
        }
    }
}

/// Raises the soft limit on open files to at least `need` (up to the hard limit).
fn ensure_open_files(need: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the struct we pass and reads nothing else.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(got, 0, "getrlimit(RLIMIT_NOFILE) failed");
    if lim.rlim_cur >= need as libc::rlim_t {
        return;
    }
    assert!(
        lim.rlim_max >= need as libc::rlim_t,
        "{need} open files needed, but the hard limit (ulimit -Hn) is {}",
        lim.rlim_max
    );
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit reads the struct we pass; raising the soft limit up to the hard limit
    // needs no privilege.
    let set = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
    assert_eq!(
        set, 0,
        "raising the soft open-file limit to {}",
        lim.rlim_max
    );
}

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .strip_prefix(':')?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

fn run_tokio(size: Size) -> Report {
    let runtime = |workers| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    };
    // The clients' runtime; the test's own tasks wait on this thread (`block_on`).
    let rt = runtime(if size.shared_runtime { 2 } else { 1 });
    let hub_rt = (!size.shared_runtime).then(|| runtime(1));
    let hub_rt_handle = hub_rt.as_ref().map(|r| r.handle().clone());
    let filler = filler(size.size);
    rt.block_on(async move {
        let hub_rt = hub_rt_handle.unwrap_or_else(tokio::runtime::Handle::current);
        // `spawn` starts the node on the runtime it is called in.
        let (hub, mut hub_events) = {
            let _in_hub_rt = hub_rt.enter();
            devp2p_tokio::spawn(hub_config(size)).expect("the hub")
        };
        let hub_id = hub.local_id();
        let tally = Arc::new(Mutex::new(Tally::new(filler.clone(), size.messages)));
        let (done_tx, done_rx) = tokio::sync::watch::channel((0usize, 0usize));
        let t = tally.clone();
        let total = size.sessions;
        hub_rt.spawn(async move {
            while let Some(e) = hub_events.recv().await {
                let mut t = t.lock().unwrap_or_else(|p| p.into_inner());
                t.event(e);
                let state = (t.peers, t.done_sessions);
                let failed = t.error.is_some();
                drop(t);
                // Wake the waiter only when a count moved (or on failure), not per message:
                // the mio hub, too, publishes progress once per turn, not per message.
                done_tx.send_if_modified(|s| {
                    let moved = *s != state || failed;
                    *s = state;
                    moved
                });
                if failed || state.1 == total {
                    break;
                }
            }
        });
        let connecting = Instant::now();
        let start_gate = Arc::new(tokio::sync::Notify::new());
        let go = Arc::new(AtomicBool::new(false));
        let mut senders = Vec::with_capacity(size.sessions);
        for client in 0..size.sessions as u64 {
            let (node, mut events) =
                devp2p_tokio::spawn(client_config(size, &hub.local_enode())).expect("a client");
            let (gate, go, filler) = (start_gate.clone(), go.clone(), filler.clone());
            senders.push(tokio::spawn(async move {
                loop {
                    match events.recv().await {
                        Some(NodeEvent::PeerAdded(p)) if p.id == hub_id => break,
                        Some(_) => {}
                        None => return Err(format!("client {client} stopped before connecting")),
                    }
                }
                drop(events);
                while !go.load(Ordering::SeqCst) {
                    let wait = gate.notified();
                    if go.load(Ordering::SeqCst) {
                        break;
                    }
                    wait.await;
                }
                if size.batch == 1 {
                    for seq in 0..size.messages {
                        node.send(&hub_id, P, 0, &payload(&filler, client, seq))
                            .await
                            .map_err(|e| format!("client {client}, message {seq}: {e}"))?;
                    }
                } else {
                    let mut seq = 0;
                    while seq < size.messages {
                        let end = (seq + size.batch).min(size.messages);
                        let batch = (seq..end)
                            .map(|s| (0, payload(&filler, client, s)))
                            .collect();
                        node.send_batch(&hub_id, P, batch)
                            .await
                            .map_err(|e| format!("client {client}, batch from {seq}: {e}"))?;
                        seq = end;
                    }
                }
                // Keep the node (its handle) alive until the hub has everything.
                Ok::<_, String>(node)
            }));
        }
        let wait = |want_peers: bool| {
            let mut rx = done_rx.clone();
            let tally = tally.clone();
            async move {
                loop {
                    let (peers, done) = *rx.borrow_and_update();
                    if let Some(e) = tally
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .error
                        .clone()
                    {
                        return Err(e);
                    }
                    if (want_peers && peers == total) || (!want_peers && done == total) {
                        return Ok(());
                    }
                    if rx.changed().await.is_err() {
                        return Err("the hub's event stream ended".to_string());
                    }
                }
            }
        };
        tokio::time::timeout(size.limit, wait(true))
            .await
            .unwrap_or_else(|_| {
                let peers = tally.lock().unwrap_or_else(|p| p.into_inner()).peers;
                panic!(
                    "tokio: {peers} of {total} sessions up after {:?}",
                    size.limit
                )
            })
            .unwrap_or_else(|e| panic!("tokio: {e}"));
        let connect = connecting.elapsed();
        let start = Instant::now();
        let used = Usage::now();
        go.store(true, Ordering::SeqCst);
        start_gate.notify_waiters();
        tokio::time::timeout(size.limit, wait(false))
            .await
            .unwrap_or_else(|_| {
                let t = tally.lock().unwrap_or_else(|p| p.into_inner());
                panic!(
                    "tokio: {} of {} messages after {:?}",
                    t.delivered,
                    size.sessions as u64 * size.messages,
                    size.limit
                )
            })
            .unwrap_or_else(|e| panic!("tokio: {e}"));
        let transfer = start.elapsed();
        let usage = Usage::now().since(used);
        for s in senders {
            s.await
                .expect("a sender task")
                .unwrap_or_else(|e| panic!("tokio: {e}"));
        }
        Report {
            connect,
            transfer,
            usage,
        }
    })
}

fn run_mio(size: Size) -> Report {
    let filler = filler(size.size);
    let total = size.sessions;
    let stop = Arc::new(AtomicBool::new(false));
    let fail = |e: String| -> ! { panic!("mio: {e}") };

    // The hub: its own Runner and thread; it checks every message as it arrives and
    // publishes its progress after each turn.
    let (hub_tx, hub_rx) = std::sync::mpsc::channel();
    let progress = Arc::new(Mutex::new(Progress::default()));
    let (p, hub_stop, f) = (progress.clone(), stop.clone(), filler.clone());
    let hub_thread = std::thread::spawn(move || {
        let mut tally = Tally::new(f, size.messages);
        let mut runner = Runner::new().expect("a mio Poll");
        runner.add(hub_config(size)).expect("the hub");
        let _ = hub_tx.send(runner.driver(0).expect("the hub").local_enode());
        while !hub_stop.load(Ordering::SeqCst) {
            runner
                .turn(Some(Duration::from_millis(10)), &mut |_, _, e| {
                    tally.event(e)
                })
                .expect("polling");
            *p.lock().unwrap_or_else(|p| p.into_inner()) = tally.progress();
        }
    });
    let hub = hub_rx.recv().expect("the hub's enode");

    // The clients: one Runner on this thread.
    let mut runner = Runner::new().expect("a mio Poll");
    for _ in 0..size.sessions {
        runner
            .add(client_config(size, &hub))
            .expect("a client node");
    }
    let hub_id = hub.id();
    let mut connected = vec![false; size.sessions];
    let mut sent = vec![0u64; size.sessions];
    let turn = |runner: &mut Runner, connected: &mut Vec<bool>| {
        runner
            .turn(Some(Duration::from_millis(5)), &mut |i, _, e| {
                if let NodeEvent::PeerAdded(p) = e {
                    if p.id == hub_id {
                        connected[i] = true;
                    }
                }
            })
            .expect("polling");
    };
    let check = |what: &str, limit: Instant| {
        let t = progress.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(e) = &t.error {
            fail(e.clone());
        }
        if Instant::now() > limit {
            fail(format!(
                "{what} after {:?}: {} sessions up, {} messages delivered",
                size.limit, t.peers, t.delivered
            ));
        }
        (t.peers, t.done_sessions)
    };

    let connecting = Instant::now();
    let limit = connecting + size.limit;
    loop {
        turn(&mut runner, &mut connected);
        let (peers, _) = check("connecting", limit);
        if peers == total && connected.iter().all(|c| *c) {
            break;
        }
    }
    let connect = connecting.elapsed();
    let start = Instant::now();
    let used = Usage::now();
    let limit = start + size.limit;
    loop {
        for (i, sent) in sent.iter_mut().enumerate() {
            let d = runner.driver_mut(i).expect("a client");
            while *sent < size.messages {
                match d.send(&hub_id, P, 0, &payload(&filler, i as u64, *sent)) {
                    Ok(()) => *sent += 1,
                    Err(SendFailure::Refused(SendError::QueueFull { .. })) => break,
                    Err(e) => fail(format!("client {i}, message {sent}: {e}")),
                }
            }
        }
        turn(&mut runner, &mut connected);
        let (_, done) = check("transferring", limit);
        if done == total {
            break;
        }
    }
    let transfer = start.elapsed();
    let usage = Usage::now().since(used);
    stop.store(true, Ordering::SeqCst);
    hub_thread.join().expect("the hub thread");
    Report {
        connect,
        transfer,
        usage,
    }
}

/// One driver's load, in this process; prints the figures.
fn child(driver: &str) {
    let size = Size::from_env();
    ensure_open_files(3 * size.sessions as u64 + 256);
    let baseline = status_kib("VmRSS");
    let report = match driver {
        "tokio" => run_tokio(size),
        _ => run_mio(size),
    };
    let peak = status_kib("VmHWM");
    let messages = size.sessions as u64 * size.messages;
    let secs = report.transfer.as_secs_f64();
    let per_session = peak.saturating_sub(baseline) as f64 / size.sessions as f64;
    println!(
        "load-figures {driver}: {} sessions x {} messages x {} B{}, every message checked: \
         connect {:.2} s, transfer {:.2} s, {:.0} messages/s, {:.1} MB/s of payload, \
         {:.2} cores busy, {} / {} voluntary / involuntary context switches; \
         RSS baseline {:.1} MiB, peak {:.1} MiB, {:.1} KiB per session",
        size.sessions,
        size.messages,
        size.size,
        match driver {
            "tokio" => format!(
                " ({}, {})",
                match size.batch {
                    1 => "a send each".to_string(),
                    n => format!("send_batch of {n}"),
                },
                if size.shared_runtime {
                    "one shared runtime"
                } else {
                    "the hub on a runtime of its own"
                }
            ),
            _ => String::new(),
        },
        report.connect.as_secs_f64(),
        secs,
        messages as f64 / secs,
        (messages * size.size as u64) as f64 / secs / 1e6,
        report.usage.cpu.as_secs_f64() / secs,
        report.usage.voluntary,
        report.usage.involuntary,
        baseline as f64 / 1024.0,
        peak as f64 / 1024.0,
        per_session,
    );
}

/// One driver at a time: each run has the machine's cores to itself.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `driver`'s load in a child process (this binary, only this test) and relays its
/// figures; the child's own assertions decide the outcome.
fn run(driver: &str, test: &str) {
    if std::env::var(CHILD).is_ok() {
        return child(driver);
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = Command::new(std::env::current_exe().expect("the test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the load process");
    let stdout = c.stdout.take().expect("piped");
    let mut figures = None;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        // libtest's "test <name> ... " may precede it on the same line.
        if let Some((_, f)) = line.split_once("load-figures ") {
            figures = Some(f.to_string());
        }
    }
    let status = c.wait().expect("the load process");
    assert!(
        status.success(),
        "{driver}: the load process failed: {status}"
    );
    let figures = figures.unwrap_or_else(|| panic!("{driver}: no figures from the load process"));
    println!("{figures}");
}

#[test]
fn tokio() {
    run("tokio", "tokio");
}

#[test]
fn mio() {
    run("mio", "mio");
}
