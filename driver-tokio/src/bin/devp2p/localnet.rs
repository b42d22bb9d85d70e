//! `devp2p localnet`: N nodes on 127.0.0.1 in this process, the first the bootnode of the
//! rest. A live progress line while it runs; at the end a table per node. Exits 0 only if
//! every node found every other through discovery and holds at least one session. It stops
//! as soon as that holds, or after `--duration` (by default [`default_duration`]: 20 s and
//! one more second per node).
//!
//! A node stops its own random lookups once its dial slots are full (as geth's does), which
//! in networks of more than about 20 nodes can leave a node never hearing of a few others. So,
//! as a crawler would, the tool asks each node that has not found everyone yet for one more
//! random-target lookup every [`LOOKUP_EVERY`].

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devp2p_core::discv4::{Event as DiscoveryEvent, Node as DiscNode};
use devp2p_core::node::{NodeEvent, NodeStats};
use devp2p_core::session::Protocol;
use devp2p_core::{Enode, NodeId};
use devp2p_mio::common::DriverConfig;

use crate::args::{parse_duration, show, Driver};
use crate::Failure;

/// Most nodes one localnet runs (each takes two ports and a few file descriptors; beyond a
/// few hundred the point is made).
pub const MAX_NODES: u16 = 256;
/// How often progress is measured (and redrawn on a terminal).
const TICK: Duration = Duration::from_millis(250);
/// How often a progress line is printed when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(2);
/// How often a node that has not found every other yet is asked for a random lookup.
const LOOKUP_EVERY: Duration = Duration::from_secs(1);
/// The default time limit's fixed part.
const DEFAULT_DURATION_BASE: Duration = Duration::from_secs(20);
/// The default time limit's part per node. Convergence is paced by revalidation: a node
/// serves a table entry in FindNode answers only once it has revalidated it (geth's rule),
/// one entry every few seconds, and tables grow with the network. Measured on two idle
/// cores: 48 nodes 27-35 s, 128 nodes 61-90 s, 256 nodes 161-182 s (about 0.7 s per node);
/// one second per node leaves at least 1.5x headroom at every size (less on a busy machine).
const DEFAULT_DURATION_PER_NODE: Duration = Duration::from_secs(1);

/// The default `--duration` for `nodes` nodes: 20 s + 1 s per node.
pub fn default_duration(nodes: u16) -> Duration {
    DEFAULT_DURATION_BASE + DEFAULT_DURATION_PER_NODE * u32::from(nodes)
}

/// The sub-protocol every localnet node speaks, so sessions have a capability in common.
const PROTOCOL: (&str, u64, u64) = ("localnet", 1, 1);

#[derive(clap::Args)]
pub struct LocalnetArgs {
    /// How many nodes (2 to 256).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(2..=MAX_NODES as i64))]
    nodes: u16,
    /// The longest it runs (it ends as soon as every node found every other). Default: 20s
    /// plus 1s per node (36s for 16 nodes, 276s for 256): larger networks take longer.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Which driver runs the nodes: tokio (a task each) or mio (all in one Poll, one thread).
    #[arg(long, value_enum, default_value = "tokio")]
    driver: Driver,
}

fn config(bootnode: Option<&Enode>) -> DriverConfig {
    let mut config = DriverConfig::default();
    config.node.session.protocols = vec![Protocol::new(PROTOCOL.0, PROTOCOL.1, PROTOCOL.2)];
    config.node.listen = (Ipv4Addr::LOCALHOST, 0).into();
    config.node.bootnodes = bootnode.cloned().into_iter().collect();
    config
}

/// One node as last measured.
#[derive(Clone)]
struct Status {
    id: NodeId,
    table: usize,
    sessions: usize,
    /// Ids learnt through discovery: events and the table.
    found: BTreeSet<NodeId>,
    stats: NodeStats,
}

impl Status {
    fn new(
        id: NodeId,
        table: impl Iterator<Item = NodeId>,
        sessions: usize,
        seen: &BTreeSet<NodeId>,
        stats: NodeStats,
    ) -> Self {
        let mut found = seen.clone();
        let mut size = 0;
        for t in table {
            found.insert(t);
            size += 1;
        }
        found.remove(&id);
        Status {
            id,
            table: size,
            sessions,
            found,
            stats,
        }
    }
}

/// Ids a discovery event tells about.
fn discovered(e: &NodeEvent) -> Vec<NodeId> {
    let NodeEvent::Discovery(d) = e else {
        return Vec::new();
    };
    match d.as_ref() {
        DiscoveryEvent::NodeAdded(n) | DiscoveryEvent::NodeSeen(n) => vec![n.id()],
        DiscoveryEvent::LookupFinished { nodes, .. } => nodes.iter().map(DiscNode::id).collect(),
        _ => Vec::new(),
    }
}

/// How far the network is.
struct Progress {
    started: Instant,
    tty: bool,
    last_log: Instant,
}

impl Progress {
    fn new() -> Self {
        Progress {
            started: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            last_log: Instant::now(),
        }
    }

    fn show(&mut self, all: &[NodeId], st: &[Status]) {
        let others = all.len() - 1;
        let complete = st.iter().filter(|s| s.found.len() >= others).count();
        let with_session = st.iter().filter(|s| s.sessions > 0).count();
        let mean_found = st.iter().map(|s| s.found.len()).sum::<usize>() as f64 / st.len() as f64;
        let sessions: usize = st.iter().map(|s| s.sessions).sum();
        let line = format!(
            "localnet {:>5.1}s  found all others: {complete}/{n}  (mean {mean_found:.1}/{others})  with a session: {with_session}/{n}  sessions: {}",
            self.started.elapsed().as_secs_f64(),
            sessions / 2,
            n = st.len(),
        );
        if self.tty {
            eprint!("\r{line}   ");
            let _ = std::io::stderr().flush();
        } else if self.last_log.elapsed() >= LOG_EVERY {
            eprintln!("{line}");
            self.last_log = Instant::now();
        }
    }

    fn done(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

fn complete(all: &[NodeId], s: &Status) -> bool {
    all.iter().all(|id| *id == s.id || s.found.contains(id))
}

fn converged(all: &[NodeId], st: &[Status]) -> bool {
    st.len() == all.len() && st.iter().all(|s| s.sessions > 0 && complete(all, s))
}

fn kib(b: u64) -> String {
    format!("{:.1} KiB", b as f64 / 1024.0)
}

/// The final table and verdict; the exit status.
fn report(
    all: &[NodeId],
    st: &[Status],
    took: Duration,
    limit: Duration,
    driver: Driver,
) -> ExitCode {
    let others = all.len() - 1;
    outln!(
        "{:>4}  {:<16}  {:>5}  {:>7}  {:>8}  {:>11}  {:>11}  {:>11}  {:>11}",
        "node",
        "id",
        "table",
        "found",
        "sessions",
        "tcp in",
        "tcp out",
        "udp in",
        "udp out"
    );
    for (i, s) in st.iter().enumerate() {
        let id = s.id.to_string();
        outln!(
            "{:>4}  {:<16}  {:>5}  {:>7}  {:>8}  {:>11}  {:>11}  {:>11}  {:>11}",
            i,
            &id[..16],
            s.table,
            format!("{}/{}", s.found.len(), others),
            s.sessions,
            kib(s.stats.bytes_in),
            kib(s.stats.bytes_out),
            kib(s.stats.udp_bytes_in),
            kib(s.stats.udp_bytes_out),
        );
    }
    let ok = converged(all, st);
    if ok {
        outln!(
            "OK: every one of {} nodes ({driver:?} driver) found all {others} others through discovery and holds a session, after {:.1}s",
            all.len(),
            took.as_secs_f64()
        );
        ExitCode::SUCCESS
    } else {
        outln!("FAILED after {}:", show(took));
        for (i, s) in st.iter().enumerate() {
            let missing = all
                .iter()
                .filter(|id| **id != s.id && !s.found.contains(id))
                .count();
            if missing > 0 {
                outln!("  node {i} did not find {missing} of the {others} others");
            }
            if s.sessions == 0 {
                outln!("  node {i} holds no session");
            }
        }
        let more = (limit * 2).min(crate::args::MAX_DURATION);
        eprintln!(
            "error: not every node found every other and holds a session within {}: try \
             --duration {}",
            show(limit),
            show(Duration::from_secs(more.as_secs().max(1)))
        );
        ExitCode::FAILURE
    }
}

pub async fn run(args: LocalnetArgs) -> Result<ExitCode, Failure> {
    match args.driver {
        Driver::Tokio => run_tokio(args).await,
        Driver::Mio => tokio::task::spawn_blocking(move || run_mio(args)).await?,
    }
}

async fn run_tokio(args: LocalnetArgs) -> Result<ExitCode, Failure> {
    let n = usize::from(args.nodes);
    let mut handles = Vec::with_capacity(n);
    let seen: Arc<Mutex<Vec<BTreeSet<NodeId>>>> = Arc::new(Mutex::new(vec![BTreeSet::new(); n]));
    for i in 0..n {
        let boot = handles
            .first()
            .map(|h: &devp2p_tokio::NodeHandle| h.local_enode().clone());
        let (h, mut events) = devp2p_tokio::spawn(config(boot.as_ref()))
            .map_err(|e| format!("starting node {i}: {e}"))?;
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                let ids = discovered(&e);
                if !ids.is_empty() {
                    if let Ok(mut s) = seen.lock() {
                        s[i].extend(ids);
                    }
                }
            }
        });
        handles.push(h);
    }
    let all: Vec<NodeId> = handles.iter().map(|h| h.local_id()).collect();
    eprintln!(
        "localnet: {n} nodes on 127.0.0.1 (tokio driver), bootnode {}",
        handles[0].local_enode()
    );
    let mut progress = Progress::new();
    let limit = args
        .duration
        .unwrap_or_else(|| default_duration(args.nodes));
    let deadline = Instant::now() + limit;
    let mut ticker = tokio::time::interval(TICK);
    let mut statuses = Vec::new();
    let mut next_lookups = Instant::now() + LOOKUP_EVERY;
    let mut lookups: Vec<Option<tokio::task::JoinHandle<()>>> = (0..n).map(|_| None).collect();
    loop {
        ticker.tick().await;
        if Instant::now() >= next_lookups && statuses.len() == n {
            next_lookups += LOOKUP_EVERY;
            for (i, s) in statuses.iter().enumerate() {
                let busy = lookups[i].as_ref().is_some_and(|l| !l.is_finished());
                if !busy && !complete(&all, s) {
                    let h = handles[i].clone();
                    lookups[i] = Some(tokio::spawn(async move {
                        let _ = h.lookup_random().await;
                    }));
                }
            }
        }
        statuses.clear();
        for (i, h) in handles.iter().enumerate() {
            let stopped = |e| format!("node {i}: {e}");
            let table = h.table().await.map_err(stopped)?;
            let peers = h.peers().await.map_err(stopped)?;
            let stats = h.stats().await.map_err(stopped)?;
            let seen_i = seen.lock().map(|s| s[i].clone()).unwrap_or_default();
            statuses.push(Status::new(
                h.local_id(),
                table.iter().map(DiscNode::id),
                peers.len(),
                &seen_i,
                stats.node,
            ));
        }
        progress.show(&all, &statuses);
        if converged(&all, &statuses) || Instant::now() >= deadline {
            break;
        }
    }
    progress.done();
    let took = progress.started.elapsed();
    let shutdowns: Vec<_> = handles.iter().map(|h| h.shutdown()).collect();
    for s in shutdowns {
        let _ = s.await;
    }
    Ok(report(&all, &statuses, took, limit, Driver::Tokio))
}

fn run_mio(args: LocalnetArgs) -> Result<ExitCode, Failure> {
    let n = usize::from(args.nodes);
    let mut runner = devp2p_mio::Runner::new()?;
    let mut boot: Option<Enode> = None;
    for i in 0..n {
        let idx = runner
            .add(config(boot.as_ref()))
            .map_err(|e| format!("starting node {i}: {e}"))?;
        if boot.is_none() {
            boot = runner.driver(idx).map(|d| d.local_enode());
        }
    }
    let all: Vec<NodeId> = runner.drivers().iter().map(|d| d.local_id()).collect();
    eprintln!(
        "localnet: {n} nodes on 127.0.0.1 (mio driver, one Poll, one thread), bootnode {}",
        boot.map(|b| b.to_string()).unwrap_or_default()
    );
    let mut seen = vec![BTreeSet::new(); n];
    let mut progress = Progress::new();
    let limit = args
        .duration
        .unwrap_or_else(|| default_duration(args.nodes));
    let deadline = Instant::now() + limit;
    let mut next_tick = Instant::now() + TICK;
    let mut statuses: Vec<Status> = Vec::new();
    let mut next_lookups = Instant::now() + LOOKUP_EVERY;
    loop {
        if Instant::now() >= next_lookups && statuses.len() == n {
            next_lookups += LOOKUP_EVERY;
            for (i, s) in statuses.iter().enumerate() {
                if !complete(&all, s) {
                    if let Some(d) = runner.driver_mut(i) {
                        let _ = d.lookup_random();
                    }
                }
            }
        }
        let wait = next_tick.saturating_duration_since(Instant::now());
        runner.turn(Some(wait), &mut |i, _, e| seen[i].extend(discovered(&e)))?;
        if Instant::now() < next_tick {
            continue;
        }
        next_tick += TICK;
        statuses = runner
            .drivers()
            .iter()
            .zip(&seen)
            .map(|(d, seen_i)| {
                Status::new(
                    d.local_id(),
                    d.table().iter().map(DiscNode::id),
                    d.peers().len(),
                    seen_i,
                    d.stats().node,
                )
            })
            .collect();
        progress.show(&all, &statuses);
        if converged(&all, &statuses) || Instant::now() >= deadline {
            break;
        }
    }
    progress.done();
    let took = progress.started.elapsed();
    runner.remote().stop();
    runner.run(|_, _, _| {})?;
    Ok(report(&all, &statuses, took, limit, Driver::Mio))
}
