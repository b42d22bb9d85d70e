//! `devp2p sim`: a whole network of unmodified nodes in this process under virtual time (the
//! simulation of devp2p-tests). Prints convergence statistics and the trace digest; the same
//! command prints the same digest every time.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use devp2p_tests::sim::run::{run, RunConfig, RunReport, Versions, CONVERGED_RECALL};

use crate::args::parse_duration;
use crate::Failure;

/// Most nodes one simulation runs (memory grows by about 100 KiB per node).
pub const MAX_NODES: usize = 100_000;
/// Most threads one simulation runs on: far more than the cores of any machine it is meant
/// for, and each thread waits at every window's end, so more only costs.
pub const MAX_THREADS: usize = 64;

#[derive(clap::Args)]
pub struct SimArgs {
    /// Nodes in the network, 3 of them bootnodes.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(4..=MAX_NODES as u64))]
    nodes: u64,
    /// The seed: keys, latencies, losses, churn, every random draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Virtual time to simulate (e.g. 10m, 1h).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    duration: Duration,
    /// Probability that a datagram is lost (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    loss: f64,
    /// Share of the nodes that crash and restart from their saved database, again and again
    /// (up 10 minutes and down 2 on average).
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    churn: f64,
    /// Peers each node keeps (0: discovery only). Sessions use real RLPx handshakes, whose
    /// elliptic-curve work makes large networks much slower.
    #[arg(long, default_value_t = 0)]
    peers: usize,
    /// Random-target lookups in the final recall measurement.
    #[arg(long, default_value_t = 100)]
    lookups: usize,
    /// Which discovery the nodes run: v4, v5 or both (on one socket). Tables, lookups and
    /// recall are measured over v4 when it runs, else over v5. A v5 network runs somewhat
    /// slower (each record read costs a point decompression).
    #[arg(long, value_enum, default_value = "v4")]
    discovery: Discovery,
    /// Share of the non-boot nodes behind full-cone NATs (0..1): each listens on a private
    /// address, its NAT maps it to a public IP and another port, and it must learn that
    /// endpoint from its peers. The report says how many advertise it and how many table
    /// entries hold it.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    nat_share: f64,
    /// OS threads the nodes run on (at most MAX_THREADS). The run, its counts and its digest
    /// are the same for any number; only the wall time changes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MAX_THREADS as u64))]
    threads: u64,
    /// Convert every key a node reads as a node alone would (curve check, Keccak-256 of the
    /// key), instead of looking simulated nodes' keys up in one set shared by the process.
    /// The run and its digest are the same either way; only the time changes.
    #[arg(long)]
    no_known_keys: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// `--discovery`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Discovery {
    V4,
    V5,
    Both,
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a fraction between 0 and 1")),
    }
}

/// Peak resident memory of this process in KiB (Linux), if known.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn run_sim(a: SimArgs) -> Result<ExitCode, Failure> {
    let mut config = RunConfig::default();
    config.nodes = a.nodes as usize;
    config.seed = a.seed;
    config.duration = a.duration;
    config.loss = a.loss;
    config.churn = a.churn;
    config.peers = a.peers;
    config.lookups = a.lookups;
    config.nat_share = a.nat_share;
    config.threads = a.threads as usize;
    config.known_keys = !a.no_known_keys;
    config.discovery = match a.discovery {
        Discovery::V4 => Versions::V4,
        Discovery::V5 => Versions::V5,
        Discovery::Both => Versions::Both,
    };
    let started = Instant::now();
    let json = a.json;
    let report = run(&config, |sim| {
        if !json {
            let fill = sim.table_fill(0..sim.len());
            eprint!(
                "\r  {:.0} s virtual, {:.1} s wall, tables {:.1} on average, {} messages   ",
                sim.elapsed().as_secs_f64(),
                started.elapsed().as_secs_f64(),
                fill.mean,
                sim.stats().messages()
            );
            let _ = std::io::stderr().flush();
        }
    });
    if !json {
        eprintln!();
    }
    let wall = started.elapsed();
    let peak = peak_rss_kib();
    if json {
        outln!("{}", to_json(&config, &report, wall, peak));
    } else {
        print_text(&config, &report, wall, peak);
    }
    Ok(ExitCode::SUCCESS)
}

fn to_json(c: &RunConfig, r: &RunReport, wall: Duration, peak: Option<u64>) -> serde_json::Value {
    serde_json::json!({
        "nodes": c.nodes,
        "seed": c.seed,
        "loss": c.loss,
        "churn": c.churn,
        "peers": c.peers,
        "discovery": versions(c.discovery),
        "nat_share": c.nat_share,
        "threads": c.threads,
        "known_keys": c.known_keys,
        "virtual_secs": r.virtual_time.as_secs_f64(),
        "wall_secs": wall.as_secs_f64(),
        "speedup": r.virtual_time.as_secs_f64() / wall.as_secs_f64().max(1e-9),
        "converged_after_secs": r.converged_at.map(|d| d.as_secs()),
        "recall": r.recall.mean,
        "recall_min": r.recall.min,
        "lookups": r.recall.lookups,
        "lookups_finished": r.recall.finished,
        "table_fill": { "min": r.table_fill.min, "mean": r.table_fill.mean, "max": r.table_fill.max },
        "nodes_up": r.nodes_up,
        "messages": r.stats.messages(),
        "messages_per_node": r.messages_per_node(),
        "datagrams_sent": r.stats.datagrams_sent,
        "datagrams_lost": r.stats.datagrams_lost,
        "stream_writes": r.stats.stream_writes,
        "connections": r.stats.connections,
        "crashes": r.stats.crashes,
        "restarts": r.stats.restarts,
        "nat": {
            "nodes": r.nat.nodes,
            "advertising_public": r.nat.advertising_public,
            "table_entries": r.nat.table_entries,
            "entries_public": r.nat.entries_public,
            "entries_current_record": r.nat.entries_current_record,
        },
        "trace_records": r.trace_records,
        "peak_rss_kib": peak,
        "digest": r.digest_hex(),
    })
}

fn versions(v: Versions) -> &'static str {
    match v {
        Versions::V4 => "discv4",
        Versions::V5 => "discv5",
        Versions::Both => "discv4+discv5",
    }
}

fn print_text(c: &RunConfig, r: &RunReport, wall: Duration, peak: Option<u64>) {
    let v = r.virtual_time.as_secs_f64();
    outln!(
        "network      {} nodes ({} up at the end), seed {}, loss {}, churn {}, peers {}, {}, \
         nat share {}, {} thread(s)",
        c.nodes,
        r.nodes_up,
        c.seed,
        c.loss,
        c.churn,
        c.peers,
        versions(c.discovery),
        c.nat_share,
        c.threads
    );
    outln!(
        "time         {:.0} s virtual in {:.2} s wall ({:.0}x real time)",
        v,
        wall.as_secs_f64(),
        v / wall.as_secs_f64().max(1e-9)
    );
    match r.converged_at {
        Some(t) => outln!(
            "converged    after {} s (probe recall >= {CONVERGED_RECALL})",
            t.as_secs()
        ),
        None => outln!("converged    no probe reached recall {CONVERGED_RECALL}"),
    }
    outln!(
        "tables       min {} / mean {:.1} / max {} nodes",
        r.table_fill.min,
        r.table_fill.mean,
        r.table_fill.max
    );
    outln!(
        "recall       {:.3} mean, {:.3} worst, {} of {} lookups finished",
        r.recall.mean,
        r.recall.min,
        r.recall.finished,
        r.recall.lookups
    );
    outln!(
        "messages     {} ({:.0} per node): {} datagrams ({} lost), {} stream writes",
        r.stats.messages(),
        r.messages_per_node(),
        r.stats.datagrams_sent,
        r.stats.datagrams_lost,
        r.stats.stream_writes
    );
    if c.churn > 0.0 {
        outln!(
            "churn        {} crashes, {} restarts",
            r.stats.crashes,
            r.stats.restarts
        );
    }
    if r.nat.nodes > 0 {
        outln!(
            "nat          {} nodes behind NAT, {} of {} running advertise their public \
             endpoint; {} of {} table entries for them hold it, {} their current record",
            r.nat.nodes,
            r.nat.advertising_public,
            r.nat.running,
            r.nat.entries_public,
            r.nat.table_entries,
            r.nat.entries_current_record
        );
    }
    if let Some(kib) = peak {
        outln!("memory       {:.0} MiB peak resident", kib as f64 / 1024.0);
    }
    outln!("digest       {}", r.digest_hex());
}
