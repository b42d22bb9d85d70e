//! Live nodes for a DNS tree and `devp2p node` walking one: shared by the DNS tests
//! (`dns.rs`, trees we sign) and the go-ethereum tool tests (`geth_tools.rs`, a tree geth's
//! `devp2p dns sign` signed).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use devp2p_core::session::Protocol;
use devp2p_core::Enr;
use devp2p_tokio::DriverConfig;

/// A `nodes.json` (geth's format: id → seq and record) holding `records`.
pub fn nodes_json(records: &[Enr]) -> String {
    let mut m = serde_json::Map::new();
    for r in records {
        m.insert(
            r.node_id().to_string(),
            serde_json::json!({"seq": r.seq(), "record": r.to_string()}),
        );
    }
    serde_json::to_string_pretty(&serde_json::Value::Object(m)).unwrap()
}

/// How long a node with a tree may take to hold sessions with every node it lists: the walk
/// takes a root and five entries at once (the rate limit's burst is 10), and each dial one
/// handshake; the rest is slack for a loaded machine.
pub const CONNECT_WITHIN: Duration = Duration::from_secs(30);

/// Nodes on 127.0.0.1 speaking eth/68 (so that peers share a capability), with discv4 so
/// that they have records, knowing nobody; on a runtime of their own, shut down on drop.
pub struct LiveNodes {
    pub runtime: tokio::runtime::Runtime,
    pub nodes: Vec<(devp2p_tokio::NodeHandle, devp2p_tokio::EventStream)>,
    /// Their records, in the order of `nodes`.
    pub records: Vec<Enr>,
}

impl LiveNodes {
    /// `n` nodes on a runtime of `workers` threads.
    pub fn start(n: usize, workers: usize) -> LiveNodes {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .unwrap();
        let nodes: Vec<_> = {
            let _guard = runtime.enter();
            (0..n)
                .map(|_| {
                    let mut config = DriverConfig::default();
                    config.node.listen = "127.0.0.1:0".parse().unwrap();
                    config.node.discv5 = false;
                    config.node.session.protocols = vec![Protocol::new("eth", 68, 17)];
                    devp2p_tokio::spawn(config).unwrap()
                })
                .collect()
        };
        let records = nodes.iter().map(|(h, _)| h.local_enr().unwrap()).collect();
        LiveNodes {
            runtime,
            nodes,
            records,
        }
    }

    /// Their node ids, as hex.
    pub fn ids(&self) -> BTreeSet<String> {
        self.records
            .iter()
            .map(|r| r.node_id().to_string())
            .collect()
    }
}

impl Drop for LiveNodes {
    fn drop(&mut self) {
        self.runtime.block_on(async {
            for (h, _) in &self.nodes {
                let _ = h.shutdown().await;
            }
        });
    }
}

/// Stops `child` with SIGTERM (a graceful shutdown) and collects its output.
pub fn terminate(child: Child) -> Output {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait_with_output().unwrap()
}

/// Runs `devp2p node --dns url` on each driver, asking the name server at `port`, until it
/// holds a session with every node of `want` (node ids), and checks that every record it
/// dialled came from the tree and that it stops cleanly at SIGTERM.
pub fn devp2p_node_reaches_every_node_of_the_tree(url: &str, port: u16, want: &BTreeSet<String>) {
    for driver in ["tokio", "mio"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_devp2p"))
            .args([
                "node",
                "--listen",
                "127.0.0.1:0",
                "--json",
                "--caps",
                "eth/68",
            ])
            .args(["--driver", driver, "--dns", url])
            .args(["--dns-server", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting devp2p node");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str::<serde_json::Value>(&line).unwrap());
            }
        });
        let (mut peers, mut dns_nodes) = (BTreeSet::new(), BTreeSet::new());
        let give_up = Instant::now() + CONNECT_WITHIN;
        while peers.len() < want.len() && Instant::now() < give_up {
            let Ok(v) = rx.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            match v["event"].as_str() {
                Some("peer_added") => {
                    peers.insert(v["id"].as_str().unwrap().to_owned());
                }
                Some("dns_node") => {
                    assert_eq!(v["tree"], url);
                    dns_nodes.insert(v["id"].as_str().unwrap().to_owned());
                }
                Some("dns_error") => panic!("{driver}: {v}"),
                _ => {}
            }
        }
        let out = terminate(child);
        reader.join().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(&peers, want, "{driver}: {stderr}");
        assert_eq!(
            &dns_nodes, want,
            "{driver}: every record came from the tree"
        );
        assert!(out.status.success(), "{driver}: {stderr}");
    }
}
