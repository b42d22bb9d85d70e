//! Resident memory per established, idle session, for each driver, at 1,000 sessions (or
//! `--sessions N`).
//!
//! A hub process runs one node (the driver under test, discovery off). Client processes run
//! the client nodes (tokio), [`CLIENTS_PER_PROCESS`] at most each, that each dial the hub. The
//! hub's resident set size (VmRSS) and its live heap bytes (counted by this binary's global
//! allocator) are read once it runs alone and again once it holds the sessions, idle for a
//! few seconds; the difference over N is the cost of one session in the driver and the node
//! (kernel socket buffers are not part of RSS). RSS is also read after `malloc_trim`, which
//! gives back the heap pages the allocator keeps free (the peak of thousands of concurrent
//! handshakes, not what the sessions hold). Linux (reads /proc) with glibc.
//!
//! Run: `cargo bench -p devp2p-tests --bench sessions` (`-- --sessions N` for another count).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use devp2p_core::session::Protocol;
use devp2p_core::Enode;
use devp2p_mio::common::DriverConfig;

/// The system allocator, counting the bytes live on the heap.
struct Counting;

/// Bytes allocated and not yet freed.
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is passed on.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Sessions by default (the figure).
const SESSIONS: usize = 1000;
/// How long all sessions must be up before the measurement.
const IDLE: Duration = Duration::from_secs(3);
/// Longest the clients may take to connect.
const CONNECT_LIMIT: Duration = Duration::from_secs(120);
/// Which process this is.
const ROLE: &str = "DEVP2P_BENCH_ROLE";
/// Client nodes per client process: each holds a listener and a connection, and the hard
/// limit on open files here is 20,000 per process, so 10,000 clients need several.
const CLIENTS_PER_PROCESS: usize = 2500;

fn node_config(max_peers: usize) -> DriverConfig {
    let mut config = DriverConfig::default();
    config.node.session.protocols = vec![Protocol::new("bench", 1, 1)];
    config.node.listen = "127.0.0.1:0".parse().expect("address");
    config.node.no_discovery = true;
    config.node.max_peers = max_peers;
    config.node.max_pending_peers = max_peers; // Inbound peers are limited to MaxPeers minus the dialled share (geth's rule);
                                               // a ratio of max_peers leaves all but one slot to inbound.
    config.node.dial_ratio = max_peers.max(1);
    config
}

/// VmRSS of this process in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// One reading of the hub's memory.
#[derive(Clone, Copy)]
struct Stat {
    /// VmRSS in KiB.
    rss: u64,
    /// VmRSS in KiB after `malloc_trim`.
    trimmed: u64,
    /// Live heap bytes.
    heap: u64,
    peers: usize,
}

/// `<rss KiB> <rss KiB after malloc_trim> <live heap bytes>`, for the hub's answer.
fn memory_line() -> String {
    let rss = rss_kib();
    let heap = LIVE.load(Ordering::Relaxed);
    // SAFETY: malloc_trim only walks glibc's own heap; it takes no pointers of ours.
    unsafe { libc::malloc_trim(0) };
    format!("{rss} {} {heap}", rss_kib())
}

/// Raises the soft limit on open files to the hard limit (10,000 sessions need more than
/// the usual soft 1,024).
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: setrlimit reads the struct we pass; the soft limit stays within the hard one.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
}

/// The hub: prints its enode, then answers `stat` with `<memory line> <peers>` until stdin
/// ends.
fn hub(driver: &str, max_peers: usize) {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    match driver {
        "tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let (node, _events) = {
                let _g = rt.enter();
                devp2p_tokio::spawn(node_config(max_peers)).expect("hub node")
            };
            // Events are dropped: an application that does not listen costs nothing here.
            drop(_events);
            writeln!(out, "enode {}", node.local_enode()).unwrap();
            for line in stdin.lock().lines().map_while(Result::ok) {
                if line == "stat" {
                    let peers = rt.block_on(node.peers()).expect("hub running").len();
                    writeln!(out, "{} {peers}", memory_line()).unwrap();
                }
            }
        }
        _ => {
            let mut runner = devp2p_mio::Runner::new().expect("poll");
            runner.add(node_config(max_peers)).expect("hub node");
            let enode = runner.driver(0).expect("hub").local_enode();
            let remote = runner.remote();
            let thread = std::thread::spawn(move || runner.run(|_, _, _| {}));
            writeln!(out, "enode {enode}").unwrap();
            for line in stdin.lock().lines().map_while(Result::ok) {
                if line == "stat" {
                    let peers = remote
                        .call(|r| r.driver(0).map_or(0, |d| d.peers().len()))
                        .expect("hub running");
                    writeln!(out, "{} {peers}", memory_line()).unwrap();
                }
            }
            remote.stop();
            let _ = thread.join();
        }
    }
}

/// The clients: `n` tokio nodes, each keeping the hub as a static peer, until killed.
fn clients(target: Enode, n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n {
            let mut c = node_config(1);
            c.node.static_nodes = vec![target.clone()];
            let (h, events) = devp2p_tokio::spawn(c).expect("client node");
            drop(events);
            handles.push(h);
        }
        std::future::pending::<()>().await;
    });
}

struct Hub {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Hub {
    fn start(driver: &str, max_peers: usize) -> (Hub, Enode) {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .env(ROLE, format!("hub:{driver}:{max_peers}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the hub");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("hub's enode");
        let enode = line
            .trim()
            .strip_prefix("enode ")
            .expect("enode line")
            .parse()
            .expect("hub's enode");
        (
            Hub {
                child,
                stdin,
                stdout,
            },
            enode,
        )
    }

    fn stat(&mut self) -> Stat {
        writeln!(self.stdin, "stat").expect("asking the hub");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("hub's answer");
        let mut it = line
            .split_whitespace()
            .map(|w| w.parse::<u64>().expect("number"));
        let mut next = || it.next().expect("four numbers");
        Stat {
            rss: next(),
            trimmed: next(),
            heap: next(),
            peers: next() as usize,
        }
    }
}

fn measure(driver: &str, n: usize) -> (Stat, Stat, f64) {
    let (mut hub, enode) = Hub::start(driver, n + 16);
    std::thread::sleep(Duration::from_millis(500));
    let base = hub.stat();
    let mut clients: Vec<Child> = (0..n)
        .step_by(CLIENTS_PER_PROCESS)
        .map(|first| {
            let count = CLIENTS_PER_PROCESS.min(n - first);
            Command::new(std::env::current_exe().expect("own path"))
                .env(ROLE, format!("clients:{enode}:{count}"))
                .stdout(Stdio::null())
                .spawn()
                .expect("starting the clients")
        })
        .collect();
    let started = Instant::now();
    loop {
        let peers = hub.stat().peers;
        if peers >= n {
            break;
        }
        assert!(
            started.elapsed() < CONNECT_LIMIT,
            "{driver}: only {peers} of {n} sessions after {CONNECT_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let connect = started.elapsed().as_secs_f64();
    std::thread::sleep(IDLE);
    let full = hub.stat();
    assert!(
        full.peers >= n,
        "{driver}: sessions dropped while idle ({})",
        full.peers
    );
    // The clients and the hub are ours: end them by their ids.
    for c in &mut clients {
        let _ = c.kill();
        let _ = c.wait();
    }
    drop(hub.stdin);
    let _ = hub.child.wait();
    (base, full, connect)
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        raise_fd_limit();
        let mut parts = role.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("hub"), Some(driver), Some(max)) => hub(driver, max.parse().expect("max")),
            (Some("clients"), Some(_), Some(_)) => {
                // "clients:<enode>:<n>": the enode itself holds colons.
                let rest = role.strip_prefix("clients:").expect("prefix");
                let (enode, n) = rest.rsplit_once(':').expect("clients:<enode>:<n>");
                clients(enode.parse().expect("enode"), n.parse().expect("count"));
            }
            _ => panic!("unknown role {role}"),
        }
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let n = args
        .iter()
        .position(|a| a == "--sessions")
        .and_then(|i| args.get(i + 1))
        .map_or(SESSIONS, |v| v.parse().expect("--sessions N"));
    raise_fd_limit();
    println!("{n} established idle sessions into one hub node (discovery off), memory of the hub");
    println!(
        "| driver | hub alone | hub with {n} sessions | per session (RSS) | per session (RSS after malloc_trim) | per session (live heap) | connect time |\n|---|---|---|---|---|---|---|"
    );
    for driver in ["tokio", "mio"] {
        let (base, full, connect) = measure(driver, n);
        let per = |a: u64, b: u64| (b.saturating_sub(a) as f64) / n as f64;
        println!(
            "| {driver} | {:.1} MiB | {:.1} MiB | **{:.1} KiB** | {:.1} KiB | {:.0} B | {connect:.1} s |",
            base.rss as f64 / 1024.0,
            full.rss as f64 / 1024.0,
            per(base.rss, full.rss),
            per(base.trimmed, full.trimmed),
            per(base.heap, full.heap),
        );
    }
}
