//! Resident memory per established, idle session, for each driver, at 1,000 sessions.
//!
//! A hub process runs one node (the driver under test, discovery off). A second process runs
//! 1,000 client nodes (tokio) that each dial the hub. The hub's resident set size (VmRSS) is
//! read once it runs alone and again once it holds 1,000 established sessions that have been
//! idle for a few seconds; the difference over 1,000 is the cost of one session in the driver
//! and the node (kernel socket buffers are not part of RSS). Linux only (reads /proc).
//!
//! Run: `cargo bench -p devp2p-tests --bench sessions` (`-- --sessions N` for another count).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use devp2p_core::session::Protocol;
use devp2p_core::Enode;
use devp2p_mio::common::DriverConfig;

/// Sessions by default (the figure).
const SESSIONS: usize = 1000;
/// How long all sessions must be up before the measurement.
const IDLE: Duration = Duration::from_secs(3);
/// Longest the clients may take to connect.
const CONNECT_LIMIT: Duration = Duration::from_secs(120);
/// Which process this is.
const ROLE: &str = "DEVP2P_BENCH_ROLE";

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

/// The hub: prints its enode, then answers `stat` with `<rss KiB> <peers>` until stdin ends.
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
                    writeln!(out, "{} {peers}", rss_kib()).unwrap();
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
                    writeln!(out, "{} {peers}", rss_kib()).unwrap();
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

    /// (RSS in KiB, peers).
    fn stat(&mut self) -> (u64, usize) {
        writeln!(self.stdin, "stat").expect("asking the hub");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("hub's answer");
        let mut it = line
            .split_whitespace()
            .map(|w| w.parse::<u64>().expect("number"));
        let rss = it.next().expect("rss");
        let peers = it.next().expect("peers") as usize;
        (rss, peers)
    }
}

fn measure(driver: &str, n: usize) -> (u64, u64, f64) {
    let (mut hub, enode) = Hub::start(driver, n + 16);
    std::thread::sleep(Duration::from_millis(500));
    let (base, _) = hub.stat();
    let mut clients = Command::new(std::env::current_exe().expect("own path"))
        .env(ROLE, format!("clients:{enode}:{n}"))
        .stdout(Stdio::null())
        .spawn()
        .expect("starting the clients");
    let started = Instant::now();
    loop {
        let (_, peers) = hub.stat();
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
    let (rss, peers) = hub.stat();
    assert!(
        peers >= n,
        "{driver}: sessions dropped while idle ({peers})"
    );
    // The clients and the hub are ours: end them by their ids.
    let _ = clients.kill();
    let _ = clients.wait();
    drop(hub.stdin);
    let _ = hub.child.wait();
    (base, rss, connect)
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
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
    println!("{n} established idle sessions into one hub node (discovery off), resident memory of the hub");
    println!("| driver | hub alone | hub with {n} sessions | per session | connect time |\n|---|---|---|---|---|");
    for driver in ["tokio", "mio"] {
        let (base, rss, connect) = measure(driver, n);
        let per = (rss.saturating_sub(base) as f64) * 1024.0 / n as f64;
        println!(
            "| {driver} | {:.1} MiB | {:.1} MiB | **{:.1} KiB** | {connect:.1} s |",
            base as f64 / 1024.0,
            rss as f64 / 1024.0,
            per / 1024.0
        );
    }
}
