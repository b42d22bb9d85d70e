//! One standard run: build a network, let it run, watch it converge, measure it. What
//! `devp2p sim` prints and what the benchmark times.

use std::time::Duration;

use super::nat::NatReport;
use super::{Churn, Recall, Sim, SimConfig, SimStats, TableFill};

/// Recall at which a network counts as converged.
pub const CONVERGED_RECALL: f64 = 0.95;
/// Lookups per convergence probe (one probe per virtual minute until converged).
pub const PROBE_LOOKUPS: usize = 10;
/// How long a lookup may take before it counts as failed (recall 0).
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(60);

/// What to run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RunConfig {
    /// Nodes, 3 of them bootnodes.
    pub nodes: usize,
    /// The seed.
    pub seed: u64,
    /// Virtual time to run.
    pub duration: Duration,
    /// Datagram loss probability.
    pub loss: f64,
    /// Share of the nodes that churn (0: none).
    pub churn: f64,
    /// Peers per node (0: discovery only, no dialing).
    pub peers: usize,
    /// Lookups of the final recall measurement.
    pub lookups: usize,
    /// The discovery versions the nodes run; measured is v4 when they run it, else v5.
    pub discovery: Versions,
    /// Share of the non-boot nodes behind full-cone NATs (0: none).
    pub nat_share: f64,
    /// Threads the nodes run on: the same run, and digest, for any number.
    pub threads: usize,
    /// [`SimConfig::known_keys`]: the same run, and digest, either way.
    pub known_keys: bool,
}

/// Which discovery versions simulated nodes run (`devp2p sim --discovery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    /// discv4 alone (the default: the simulator's figures are discv4's).
    V4,
    /// discv5 alone. Under the simulated signature scheme its handshakes use no elliptic
    /// curve work, but each record a node reads still costs a point decompression (to
    /// compute the node id), so it runs somewhat slower per node than discv4.
    V5,
    /// Both, on one socket, as geth runs them.
    Both,
}

impl Default for RunConfig {
    /// `devp2p sim`'s defaults: 1,000 nodes, seed 1, 10 virtual minutes, 1 % loss, 10 %
    /// churn, discovery only, 100 final lookups, no NAT.
    fn default() -> Self {
        Self {
            nodes: 1000,
            seed: 1,
            duration: Duration::from_secs(600),
            loss: 0.01,
            churn: 0.1,
            peers: 0,
            lookups: 100,
            discovery: Versions::V4,
            nat_share: 0.0,
            threads: 1,
            known_keys: true,
        }
    }
}

impl RunConfig {
    /// The simulation this run builds.
    pub fn sim_config(&self) -> SimConfig {
        let mut c = SimConfig::new(self.nodes, self.seed);
        c.link.loss = self.loss;
        if self.churn > 0.0 {
            c.churn = Some(Churn::new(self.churn));
        }
        c.node.max_peers = self.peers;
        c.node.no_dial = self.peers == 0;
        c.node.discv4 = self.discovery != Versions::V5;
        c.node.discv5 = self.discovery != Versions::V4;
        c.nat_share = self.nat_share;
        c.threads = self.threads;
        c.known_keys = self.known_keys;
        c
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Nodes.
    pub nodes: usize,
    /// Virtual time run (including the final measurement).
    pub virtual_time: Duration,
    /// First virtual minute at which a probe of [`PROBE_LOOKUPS`] lookups reached
    /// [`CONVERGED_RECALL`], if one did.
    pub converged_at: Option<Duration>,
    /// Table sizes of the running nodes at the end.
    pub table_fill: TableFill,
    /// The final recall measurement.
    pub recall: Recall,
    /// Network counters.
    pub stats: SimStats,
    /// The nodes behind NAT at the end: their records and the tables' entries for them.
    pub nat: NatReport,
    /// Running nodes at the end.
    pub nodes_up: usize,
    /// Trace records hashed.
    pub trace_records: u64,
    /// The trace digest.
    pub digest: [u8; 32],
}

impl RunReport {
    /// Datagrams and stream writes per node.
    pub fn messages_per_node(&self) -> f64 {
        self.stats.messages() as f64 / self.nodes.max(1) as f64
    }

    /// The digest in hex.
    pub fn digest_hex(&self) -> String {
        self.digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Runs `config`, calling `progress` after every virtual minute.
pub fn run(config: &RunConfig, mut progress: impl FnMut(&Sim)) -> RunReport {
    let mut sim = Sim::new(config.sim_config());
    let all: Vec<usize> = (0..config.nodes).collect();
    let minute = Duration::from_secs(60);
    let join = sim.config().join_window;
    let mut converged_at = None;
    while sim.elapsed() < config.duration {
        let step = minute.min(config.duration - sim.elapsed());
        sim.run_for(step);
        if converged_at.is_none() && sim.elapsed() >= join && sim.elapsed() < config.duration {
            let probe = sim.measure_recall(&all, PROBE_LOOKUPS, LOOKUP_TIMEOUT);
            if probe.mean >= CONVERGED_RECALL {
                converged_at = Some(sim.elapsed());
            }
        }
        progress(&sim);
    }
    let recall = sim.measure_recall(&all, config.lookups, LOOKUP_TIMEOUT);
    RunReport {
        nodes: config.nodes,
        virtual_time: sim.elapsed(),
        converged_at,
        table_fill: sim.table_fill(0..config.nodes),
        recall,
        stats: sim.stats().clone(),
        nat: sim.nat_report(),
        nodes_up: (0..sim.len()).filter(|&i| sim.is_up(i)).count(),
        trace_records: sim.trace_records(),
        digest: sim.digest(),
    }
}
