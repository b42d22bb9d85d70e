//! [`Harness`] over devp2p-mio: every node in one `mio::Poll`, on a thread of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use devp2p_core::discv4::{Event as DiscoveryEvent, Node as DiscNode, NodeDbSnapshot};
use devp2p_core::node::{NodeEvent, PeerInfo};
use devp2p_core::session::{DisconnectReason, ProtocolId, SendError};
use devp2p_core::{Enode, Enr, NodeId, NodePublicKey};
use devp2p_mio::{
    AddStaticError, DriverConfig, Remote, Runner, SendFailure, ShutdownReport, Stats,
};

use super::{wait_for, EventLog, Harness, LOOKUP_WAIT};

/// Longest a turn of the runner thread sleeps, so that it notices the harness stopping.
const TURN: Duration = Duration::from_millis(20);
/// How long a node shutdown may take (the drivers give Disconnects 3 s to drain).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// How long `send` retries a full queue, as tokio's `send` waits for room.
const SEND_WAIT: Duration = Duration::from_secs(30);

/// Nodes in one mio loop.
pub struct MioHarness {
    remote: Remote,
    enodes: Vec<Enode>,
    log: EventLog,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Default for MioHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl MioHarness {
    /// Starts the runner thread.
    pub fn new() -> Self {
        let log = EventLog::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (thread_log, thread_stop) = (log.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut runner = Runner::new().expect("creating a mio Poll");
            tx.send(runner.remote()).expect("harness waiting");
            let mut on_event = |i: usize, _: &mut devp2p_mio::Driver, e| thread_log.push(i, e);
            while !thread_stop.load(Ordering::SeqCst) {
                runner.turn(Some(TURN), &mut on_event).expect("polling");
            }
            runner.remote().stop();
            let _ = runner.run(on_event);
        });
        MioHarness {
            remote: rx.recv().expect("runner thread started"),
            enodes: Vec::new(),
            log,
            stop,
            thread: Some(thread),
        }
    }

    fn call<T: Send + 'static>(&self, f: impl FnOnce(&mut Runner) -> T + Send + 'static) -> T {
        self.remote.call(f).expect("runner thread alive")
    }
}

impl Drop for MioHarness {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.remote.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Harness for MioHarness {
    fn driver(&self) -> &'static str {
        "mio"
    }

    fn start(&mut self, config: DriverConfig) -> usize {
        let (i, enode) = self.call(move |r| {
            let i = r.add(config).expect("starting a mio node");
            (i, r.driver(i).expect("just added").local_enode())
        });
        assert_eq!(i, self.enodes.len());
        self.enodes.push(enode);
        i
    }

    fn enode(&self, i: usize) -> Enode {
        self.enodes[i].clone()
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
        // What an application does with mio: on QueueFull, send again once the peer is
        // writable (here: poll for it, bounded).
        let deadline = std::time::Instant::now() + SEND_WAIT;
        loop {
            let p = payload.clone();
            match self.try_send(i, peer, protocol, code, p) {
                Err(SendFailure::Refused(SendError::QueueFull { .. }))
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(1))
                }
                r => return r.map_err(|e| e.to_string()),
            }
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
        self.call(move |r| {
            r.driver_mut(i)
                .expect("node exists")
                .send(&peer, protocol, code, &payload)
        })
    }

    fn add_static(&mut self, i: usize, peer: Enode) -> Result<(), AddStaticError> {
        self.call(move |r| r.driver_mut(i).expect("node exists").add_static(&peer))
    }

    fn disconnect(&mut self, i: usize, peer: NodeId, reason: DisconnectReason) {
        self.call(move |r| {
            r.driver_mut(i)
                .expect("node exists")
                .disconnect(&peer, reason)
        });
    }

    fn peers(&mut self, i: usize) -> Vec<PeerInfo> {
        self.call(move |r| r.driver(i).expect("node exists").peers())
    }

    fn table(&mut self, i: usize) -> Vec<NodeId> {
        self.call(move |r| {
            let table = r.driver(i).expect("node exists").table();
            table.iter().map(|n| n.id()).collect()
        })
    }

    fn table_nodes(&mut self, i: usize) -> Vec<DiscNode> {
        self.call(move |r| r.driver(i).expect("node exists").table())
    }

    fn lookup(&mut self, i: usize, target: Option<NodePublicKey>) -> Vec<DiscNode> {
        self.lookups(&[(i, target)]).remove(0)
    }

    fn lookups(&mut self, queries: &[(usize, Option<NodePublicKey>)]) -> Vec<Vec<DiscNode>> {
        let q = queries.to_vec();
        let ids = self.call(move |r| {
            q.iter()
                .map(|&(i, target)| {
                    let d = r.driver_mut(i).expect("node exists");
                    let id = match target {
                        Some(t) => d.lookup(&t),
                        None => d.lookup_random(),
                    };
                    id.unwrap_or_else(|e| panic!("mio node {i}: lookup: {e}"))
                })
                .collect::<Vec<_>>()
        });
        let finished = |log: &EventLog, i: usize, id| {
            log.with(i, |ev| {
                ev.iter().rev().find_map(|e| match e {
                    NodeEvent::Discovery(d) => match d.as_ref() {
                        DiscoveryEvent::LookupFinished { id: l, nodes, .. } if *l == id => {
                            Some(nodes.clone())
                        }
                        _ => None,
                    },
                    _ => None,
                })
            })
        };
        wait_for(
            &format!("mio: {} lookups to end", queries.len()),
            LOOKUP_WAIT,
            || {
                queries
                    .iter()
                    .zip(&ids)
                    .all(|(&(i, _), &id)| finished(&self.log, i, id).is_some())
            },
        );
        queries
            .iter()
            .zip(ids)
            .map(|(&(i, _), id)| finished(&self.log, i, id).expect("waited for it"))
            .collect()
    }

    fn local_enr(&mut self, i: usize) -> Option<Enr> {
        self.call(move |r| r.driver(i).expect("node exists").local_enr())
    }

    fn db_snapshot(&mut self, i: usize) -> NodeDbSnapshot {
        self.call(move |r| r.driver(i).expect("node exists").db_snapshot())
    }

    fn shutdown(&mut self, i: usize) -> ShutdownReport {
        self.call(move |r| r.driver_mut(i).expect("node exists").shutdown());
        let mut report = None;
        wait_for("a mio node to finish its shutdown", SHUTDOWN_WAIT, || {
            report = self.call(move |r| r.driver(i).and_then(|d| d.shutdown_report().cloned()));
            report.is_some()
        });
        report.expect("waited for it")
    }

    fn stats(&mut self, i: usize) -> Stats {
        self.call(move |r| r.driver(i).expect("node exists").stats())
    }
}
