#![allow(dead_code)] // each test crate that includes the harness uses a different part of it
//! One synchronous API over both drivers, for scenarios written once.
//!
//! A [`Harness`] starts nodes, sends commands and queries, and records every node's events in
//! an [`EventLog`]. [`TokioHarness`] runs nodes as tasks on a two-thread runtime;
//! [`MioHarness`] runs them all in one `mio::Poll` on a thread of its own. Waits are bounded:
//! [`wait_for`] fails the test with what it was waiting for.

mod mio_harness;
pub mod scenarios;
mod tokio_harness;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devp2p_core::discv4::{Node as DiscNode, NodeDbSnapshot};
use devp2p_core::node::{NodeEvent, PeerInfo};
use devp2p_core::session::{DisconnectReason, Protocol, ProtocolId};
use devp2p_core::{Enode, Enr, NodeId, NodePublicKey};
use devp2p_mio::{AddStaticError, DriverConfig, SendFailure, ShutdownReport, Stats};

pub use mio_harness::MioHarness;
pub use tokio_harness::TokioHarness;

/// Longest [`Harness::lookup`] waits for a lookup to end (they take a few hundred ms to a
/// few seconds on loopback).
pub const LOOKUP_WAIT: Duration = Duration::from_secs(20);

/// How often [`wait_for`] checks its condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Every node's events, in order, as the harness received them.
#[derive(Clone, Default)]
pub struct EventLog(Arc<Mutex<Vec<Vec<NodeEvent>>>>);

impl EventLog {
    /// Records `event` of node `i`.
    pub fn push(&self, i: usize, event: NodeEvent) {
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() <= i {
            log.resize_with(i + 1, Vec::new);
        }
        log[i].push(event);
    }

    /// Runs `f` on node `i`'s events so far.
    pub fn with<T>(&self, i: usize, f: impl FnOnce(&[NodeEvent]) -> T) -> T {
        let log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(log.get(i).map_or(&[][..], Vec::as_slice))
    }
}

/// Nodes through one driver, driven from a test.
pub trait Harness {
    /// The driver's name, for messages.
    fn driver(&self) -> &'static str;
    /// Starts a node; returns its index.
    fn start(&mut self, config: DriverConfig) -> usize;
    /// Node `i`'s enode URL.
    fn enode(&self, i: usize) -> Enode;
    /// The events so far.
    fn log(&self) -> &EventLog;
    /// Sends a message from node `i`, waiting for queue room (tokio), or retrying on
    /// `Writable` (mio).
    fn send(
        &mut self,
        i: usize,
        peer: NodeId,
        protocol: ProtocolId,
        code: u64,
        payload: Vec<u8>,
    ) -> Result<(), String>;
    /// Sends a message from node `i` if the peer's queue has room now.
    fn try_send(
        &mut self,
        i: usize,
        peer: NodeId,
        protocol: ProtocolId,
        code: u64,
        payload: Vec<u8>,
    ) -> Result<(), SendFailure>;
    /// Makes node `i` keep `peer` connected.
    fn add_static(&mut self, i: usize, peer: Enode) -> Result<(), AddStaticError>;
    /// Disconnects node `i` from `peer`.
    fn disconnect(&mut self, i: usize, peer: NodeId, reason: DisconnectReason);
    /// Node `i`'s peers.
    fn peers(&mut self, i: usize) -> Vec<PeerInfo>;
    /// The ids in node `i`'s discovery table.
    fn table(&mut self, i: usize) -> Vec<NodeId>;
    /// The nodes in node `i`'s discovery table, with the records fetched for them.
    fn table_nodes(&mut self, i: usize) -> Vec<DiscNode>;
    /// Runs a discovery lookup from node `i` for `target` (a random one when `None`) and
    /// returns what it found, nearest first; panics when node `i` has no discovery or the
    /// lookup does not end within [`LOOKUP_WAIT`].
    fn lookup(&mut self, i: usize, target: Option<NodePublicKey>) -> Vec<DiscNode>;
    /// Runs the lookups `queries` (node, target) at the same time; returns their results in
    /// order. Panics as [`lookup`](Self::lookup) does.
    fn lookups(&mut self, queries: &[(usize, Option<NodePublicKey>)]) -> Vec<Vec<DiscNode>>;
    /// Node `i`'s record (`None` without discovery).
    fn local_enr(&mut self, i: usize) -> Option<Enr>;
    /// Node `i`'s node database as it would be saved now.
    fn db_snapshot(&mut self, i: usize) -> NodeDbSnapshot;
    /// Shuts node `i` down gracefully and waits for the report.
    fn shutdown(&mut self, i: usize) -> ShutdownReport;
    /// Node `i`'s counters and its driver's.
    fn stats(&mut self, i: usize) -> Stats;
    /// Bytes node `i` has queued for `peer` (0 when it is not a peer).
    fn queued(&mut self, i: usize, peer: NodeId) -> usize {
        self.peers(i)
            .into_iter()
            .find(|p| p.id == peer)
            .map_or(0, |p| p.queued)
    }

    /// Node `i`'s id.
    fn id(&self, i: usize) -> NodeId {
        self.enode(i).id()
    }
}

/// Waits until `f` holds, checking every [`POLL_INTERVAL`]; panics after `timeout` saying what
/// it waited for.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The sub-protocol the scenarios speak.
pub fn test_protocol() -> Protocol {
    Protocol::new("e2e", 1, 4)
}

/// A node on 127.0.0.1 with a free port, speaking [`test_protocol`].
pub fn local_config(discovery: bool) -> DriverConfig {
    let mut config = DriverConfig::default();
    config.node.session.protocols = vec![test_protocol()];
    config.node.listen = (Ipv4Addr::LOCALHOST, 0).into();
    config.node.no_discovery = !discovery;
    config
}

/// A fresh, empty directory for one test's data.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("devp2p-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating a temporary directory");
    d
}
