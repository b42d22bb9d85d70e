//! `devp2p discv4 resolve-json <nodes.json> [nodes…]`, after geth's: every node of a node
//! set (and the nodes given beside it) is asked once for its current record with ENRRequest
//! (after the Ping/Pong bond it needs), and the set is written back with geth's crawler
//! scoring (`cmd/devp2p/crawl.go`, `updateNode`; `resolve-json` runs it with no revalidation
//! interval, so every node is checked):
//!
//! - an answer: the entry takes the record (unless it is older than the one held, which is
//!   kept, as geth's `RequestENR` keeps it), `score` + 1, `lastResponse` = `lastCheck` = now,
//!   `firstResponse` = now if it was never set; a node given beside the file joins the set
//!   this way;
//! - no answer from a node that never answered (`score` 0): the entry stays exactly as it
//!   was (geth: "incompatible", no EIP-868); a node given beside the file is not added;
//! - no answer from a node that did answer before: `score` halved and `lastCheck` = now; an
//!   entry whose score drops to 0 is **removed** (a score of 1 halves to 0). So not every
//!   node that fails to answer keeps its entry: only those that never answered, and those
//!   with a score of 2 or more.
//!
//! Departures, none of which changes a result: nodes are checked 16 at a time (geth: one at
//! a time), each within 2 s; a node both in the file and given beside it is checked once, at
//! the address given; with an empty (or missing) file and no nodes given, `--bootnodes` are
//! the input as in geth, but there is no default to mainnet's, and a bootnode known only by
//! its enode URL joins the set only if it answers (the set holds records).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use devp2p_core::discv4::netutil::{check_relay_ip, RelayError};
use devp2p_core::{Enode, Enr, NodeId, NodeSecretKey};
use devp2p_mio::common::{os_seeded_rng, Clock};

use crate::args::{parse_enode, NodeList};
use crate::discv4::{rfc3339, Probe, CRAWL_CHECK_TIMEOUT, CRAWL_PARALLEL_CHECKS};
use crate::nodeset::{self, Entry, ZERO_TIME};
use crate::Failure;

/// What one check did to its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Answered with a newer record.
    Updated,
    /// Answered with the record held (or an older one).
    Confirmed,
    /// Joined the set (a node given beside it, or a bootnode).
    Added,
    /// Silent; the score was halved and stays above 0.
    Demoted,
    /// Silent; the score dropped to 0 and the entry is gone.
    Removed,
    /// Silent, never answered before: left as it was (or not added).
    Unchanged,
}

/// One node to check: its address, and its entry when the set has one.
struct Job {
    enode: Enode,
    entry: Option<Entry>,
}

pub async fn resolve_json(
    file: &Path,
    extra: &[String],
    bootnodes: Option<NodeList>,
) -> Result<ExitCode, Failure> {
    let mut set = if file.exists() {
        nodeset::load(file)?
    } else {
        BTreeMap::new()
    };
    let mut jobs: BTreeMap<NodeId, Job> = BTreeMap::new();
    for (id, entry) in &set {
        let enode = parse_enode(&entry.record.to_string())
            .map_err(|e| format!("{}: node {id}: {e}", file.display()))?;
        jobs.insert(
            enode.id(),
            Job {
                enode,
                entry: Some(entry.clone()),
            },
        );
    }
    if set.is_empty() && extra.is_empty() {
        // geth's crawler starts from the bootnodes when the set is empty.
        let boot = bootnodes.unwrap_or_default();
        if boot.is_empty() {
            return Err(format!(
                "{} holds no nodes and none were given: name nodes after the file, or give \
                 --bootnodes to start from",
                file.display()
            )
            .into());
        }
        for r in &boot.records {
            let enode = parse_enode(&r.to_string())?;
            let entry = fresh_entry(r.clone());
            set.insert(r.node_id().to_string(), entry.clone());
            jobs.insert(
                enode.id(),
                Job {
                    enode,
                    entry: Some(entry),
                },
            );
        }
        for e in boot.enodes {
            jobs.entry(e.id()).or_insert(Job {
                enode: e,
                entry: None,
            });
        }
    }
    for a in extra {
        let enode = parse_enode(a)?;
        let entry = jobs.remove(&enode.id()).and_then(|j| j.entry);
        jobs.insert(enode.id(), Job { enode, entry });
    }

    let mut rng = os_seeded_rng().map_err(|e| format!("reading OS entropy: {e}"))?;
    let key = NodeSecretKey::generate(&mut rng);
    let clock = Clock::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(CRAWL_PARALLEL_CHECKS));
    let mut checks = tokio::task::JoinSet::new();
    let total = jobs.len();
    for (id, job) in jobs {
        let (key, permits) = (key.clone(), permits.clone());
        checks.spawn(async move {
            let _permit = permits.acquire().await;
            let now = rfc3339(clock.unix_secs());
            let answer = ask(&job.enode, key).await;
            (id, job, now, answer)
        });
    }
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    while let Some(done) = checks.join_next().await {
        let (id, job, now, answer) = done.map_err(|e| format!("a check failed: {e}"))?;
        if let Err(e) = &answer {
            tracing::debug!(%id, addr = %job.enode, error = %e, "no record");
        }
        let outcome = update(&mut set, &id, job.entry, answer, &now);
        *counts.entry(label(outcome)).or_default() += 1;
    }

    let written: BTreeMap<String, &Entry> = set.iter().map(|(k, v)| (k.clone(), v)).collect();
    devp2p_mio::common::fsutil::write_atomic(file, nodeset::write(&written).as_bytes(), false)
        .map_err(|e| format!("writing {}: {e}", file.display()))?;
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    eprintln!(
        "resolve-json: {total} nodes checked: {}; {} nodes written to {}",
        summary.join(", "),
        set.len(),
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A new entry for `record`, never checked.
fn fresh_entry(record: Enr) -> Entry {
    Entry {
        record,
        score: 0,
        first_response: ZERO_TIME.into(),
        last_response: ZERO_TIME.into(),
        last_check: ZERO_TIME.into(),
    }
}

fn label(o: Outcome) -> &'static str {
    match o {
        Outcome::Updated => "answered with a newer record",
        Outcome::Confirmed => "answered with the record held",
        Outcome::Added => "added",
        Outcome::Demoted => "silent (score halved)",
        Outcome::Removed => "silent and removed (score 0)",
        Outcome::Unchanged => "silent and never answered (left as they were, or not added)",
    }
}

/// Bonds with `enode` and asks for its record under `key`, within [`CRAWL_CHECK_TIMEOUT`];
/// the record must be the node's and name an address the node may give (geth's
/// `RequestENR` checks: the id, and `CheckRelayAddr` from the node's address).
async fn ask(enode: &Enode, key: NodeSecretKey) -> Result<Enr, String> {
    let deadline = Instant::now() + CRAWL_CHECK_TIMEOUT;
    let mut probe = Probe::with_key(enode, key)
        .await
        .map_err(|e| e.to_string())?;
    let record = probe
        .fetch_record(deadline, CRAWL_CHECK_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let sender = enode.ip().ok_or("no IP address")?;
    let ip = record
        .ip()
        .ok_or_else(|| format!("{enode} answered with a record without an IP address"))?;
    check_relay_ip(&sender, &ip).map_err(|e| {
        let why = match e {
            RelayError::Unspecified => "unspecified",
            RelayError::Special => "special-purpose",
            RelayError::Loopback => "loopback, while the node is not",
            RelayError::Lan => "a LAN address, while the node is not on a LAN",
        };
        format!("{enode} answered with a record whose IP {ip} is {why}")
    })?;
    Ok(record)
}

/// geth's `updateNode` for one check at `now` (RFC 3339).
fn update(
    set: &mut BTreeMap<String, Entry>,
    id: &NodeId,
    entry: Option<Entry>,
    answer: Result<Enr, String>,
    now: &str,
) -> Outcome {
    let key = id.to_string();
    let mut e = match (entry, &answer) {
        (Some(e), _) => e,
        (None, Ok(r)) => fresh_entry(r.clone()),
        (None, Err(_)) => return Outcome::Unchanged,
    };
    match answer {
        Err(_) if e.score == 0 => Outcome::Unchanged,
        Err(_) => {
            e.last_check = now.into();
            e.score /= 2;
            if e.score <= 0 {
                set.remove(&key);
                return Outcome::Removed;
            }
            set.insert(key, e);
            Outcome::Demoted
        }
        Ok(record) => {
            let first = e.first_response == ZERO_TIME;
            let newer = record.seq() > e.record.seq();
            if newer {
                e.record = record;
            }
            e.last_check = now.into();
            e.score += 1;
            e.last_response = now.into();
            if first {
                e.first_response = now.into();
            }
            set.insert(key, e);
            match (first, newer) {
                (true, _) => Outcome::Added,
                (false, true) => Outcome::Updated,
                (false, false) => Outcome::Confirmed,
            }
        }
    }
}
