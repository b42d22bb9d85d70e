//! [`Harness`] over devp2p-tokio: each node a task on a two-thread runtime.

use devp2p_core::discv4::{Node as DiscNode, NodeDbSnapshot};
use devp2p_core::node::PeerInfo;
use devp2p_core::session::{DisconnectReason, ProtocolId};
use devp2p_core::{Enode, Enr, NodeId, NodePublicKey};
use devp2p_tokio::{AddStaticError, DriverConfig, NodeHandle, SendFailure, ShutdownReport, Stats};

use super::{EventLog, Harness, LOOKUP_WAIT};

/// How long `send` may wait for queue room before the test fails.
const SEND_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Nodes as tokio tasks.
pub struct TokioHarness {
    runtime: tokio::runtime::Runtime,
    nodes: Vec<NodeHandle>,
    /// The tasks copying each node's events into the log; they end with the node.
    forwarders: Vec<Option<tokio::task::JoinHandle<()>>>,
    log: EventLog,
}

impl Default for TokioHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl TokioHarness {
    /// A harness with its own runtime (two worker threads, as CI has two cores).
    pub fn new() -> Self {
        TokioHarness {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("building a tokio runtime"),
            nodes: Vec::new(),
            forwarders: Vec::new(),
            log: EventLog::default(),
        }
    }

    /// Node `i`'s handle.
    pub fn handle(&self, i: usize) -> &NodeHandle {
        &self.nodes[i]
    }
}

impl Harness for TokioHarness {
    fn driver(&self) -> &'static str {
        "tokio"
    }

    fn start(&mut self, config: DriverConfig) -> usize {
        let i = self.nodes.len();
        let _guard = self.runtime.enter();
        let (handle, mut events) = devp2p_tokio::spawn(config).expect("starting a tokio node");
        let log = self.log.clone();
        let forwarder = self.runtime.spawn(async move {
            while let Some(e) = events.recv().await {
                log.push(i, e);
            }
        });
        self.nodes.push(handle);
        self.forwarders.push(Some(forwarder));
        i
    }

    fn enode(&self, i: usize) -> Enode {
        self.nodes[i].local_enode()
    }

    fn log(&self) -> &EventLog {
        &self.log
    }

    fn send(
        &mut self,
        i: usize,
        peer: NodeId,
        protocol: ProtocolId,
        code: u64,
        payload: Vec<u8>,
    ) -> Result<(), String> {
        let node = self.nodes[i].clone();
        // A send that never returns fails the test instead of hanging it.
        let send = async move {
            tokio::time::timeout(SEND_WAIT, node.send(&peer, protocol, code, &payload)).await
        };
        match self.runtime.block_on(send) {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("send did not return within {SEND_WAIT:?}")),
        }
    }

    fn try_send(
        &mut self,
        i: usize,
        peer: NodeId,
        protocol: ProtocolId,
        code: u64,
        payload: Vec<u8>,
    ) -> Result<(), SendFailure> {
        self.runtime
            .block_on(self.nodes[i].try_send(&peer, protocol, code, &payload))
    }

    fn add_static(&mut self, i: usize, peer: Enode) -> Result<(), AddStaticError> {
        self.runtime.block_on(self.nodes[i].add_static(&peer))
    }

    fn disconnect(&mut self, i: usize, peer: NodeId, reason: DisconnectReason) {
        self.runtime
            .block_on(self.nodes[i].disconnect(&peer, reason))
            .expect("node running");
    }

    fn peers(&mut self, i: usize) -> Vec<PeerInfo> {
        self.runtime
            .block_on(self.nodes[i].peers())
            .expect("node running")
    }

    fn table(&mut self, i: usize) -> Vec<NodeId> {
        let table = self
            .runtime
            .block_on(self.nodes[i].table())
            .expect("node running");
        table.iter().map(|n| n.id()).collect()
    }

    fn table_nodes(&mut self, i: usize) -> Vec<DiscNode> {
        self.runtime
            .block_on(self.nodes[i].table())
            .expect("node running")
    }

    fn lookup(&mut self, i: usize, target: Option<NodePublicKey>) -> Vec<DiscNode> {
        self.lookups(&[(i, target)]).remove(0)
    }

    fn lookups(&mut self, queries: &[(usize, Option<NodePublicKey>)]) -> Vec<Vec<DiscNode>> {
        let tasks: Vec<_> = queries
            .iter()
            .map(|&(i, target)| {
                let node = self.nodes[i].clone();
                self.runtime.spawn(async move {
                    let run = async {
                        match target {
                            Some(t) => node.lookup(&t).await,
                            None => node.lookup_random().await,
                        }
                    };
                    tokio::time::timeout(LOOKUP_WAIT, run).await
                })
            })
            .collect();
        tasks
            .into_iter()
            .zip(queries)
            .map(|(t, (i, _))| match self.runtime.block_on(t) {
                Ok(Ok(r)) => r.unwrap_or_else(|e| panic!("tokio node {i}: lookup: {e}")),
                Ok(Err(_)) => panic!("tokio node {i}: lookup did not end within {LOOKUP_WAIT:?}"),
                Err(e) => panic!("tokio node {i}: lookup task: {e}"),
            })
            .collect()
    }

    fn local_enr(&mut self, i: usize) -> Option<Enr> {
        self.nodes[i].local_enr()
    }

    fn db_snapshot(&mut self, i: usize) -> NodeDbSnapshot {
        self.runtime
            .block_on(self.nodes[i].db_snapshot())
            .expect("node running")
    }

    fn shutdown(&mut self, i: usize) -> ShutdownReport {
        let h = self.nodes[i].clone();
        let report = self
            .runtime
            .block_on(h.shutdown())
            .expect("node running until shut down");
        // Its last events (peers removed) are in the log once the stream has ended.
        if let Some(f) = self.forwarders[i].take() {
            let _ = self.runtime.block_on(f);
        }
        report
    }

    fn stats(&mut self, i: usize) -> Stats {
        self.runtime
            .block_on(self.nodes[i].stats())
            .expect("node running")
    }
}
