#![allow(dead_code)] // each test crate that includes this uses a different part of it
//! The discovery v5 nodes of the interop tests, one per implementation, behind one blocking
//! interface, [`V5Peer`], so that a scenario is written once and run against each:
//!
//! | [`Kind`] | what runs | where |
//! |---|---|---|
//! | [`Kind::Ours`] | our node on one of our drivers, discv5 alone ([`ours`]): `devp2p_tokio` ([`OurDriver::Tokio`]) or `devp2p_mio` ([`OurDriver::Mio`]) | its own tokio runtime, or a mio `Runner` on a thread of the test process |
//! | [`Kind::Geth`] | go-ethereum's `p2p/discover.ListenV5` (`harness discv5` in `tests/interop/geth/`) | a child process ([`geth`]) |
//! | [`Kind::Sigp`] | sigp/discv5 from crates.io ([`sigp`]) | its own tokio runtime in the test process |
//! | [`Kind::ChainSafe`] | @chainsafe/discv5 from npm (`tests/interop/discv5.mjs`) | a child process ([`chainsafe`]) |
//!
//! Every node listens on 127.0.0.1. A harness is a small peer: it does what it is told and
//! reports what happened; the tests own the scenario and every assertion. Every wait is
//! bounded ([`WAIT`]). Included with `#[path]` by the test crates that need it.

#[path = "../geth.rs"]
pub mod geth_process;
#[path = "../interop.rs"]
pub mod node_process;

pub mod chainsafe;
pub mod geth;
pub mod ours;
pub mod sigp;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use devp2p_core::{Enr, NodeId, NodeSecretKey};
use serde_json::{json, Value};

/// Longest a single request (PING, FINDNODE, TALKREQ, a record) may take to end, answered or
/// failed, on loopback: each implementation gives up within 1–2 s (one resend of 1 s at most).
pub const WAIT: Duration = Duration::from_secs(5);
/// Longest a node may take to answer a command that needs no network (its table, its
/// record, registering a TALK protocol, changing its record). It should answer at once; the
/// limit only turns a hung node into a failing test, and it is generous because a child
/// process may be starved: a ChainSafe hub that 16 nodes were bootstrapping from, on the
/// 2-core machine running other builds, once took over 5 s to read its next command.
pub const LOCAL_WAIT: Duration = Duration::from_secs(20);
/// Longest a lookup may take (geth's has no timeout of its own; over a dozen loopback nodes
/// they take well under a second).
pub const LOOKUP_WAIT: Duration = Duration::from_secs(20);

/// Which of our drivers runs our node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OurDriver {
    /// devp2p-tokio.
    Tokio,
    /// devp2p-mio.
    Mio,
}

impl fmt::Display for OurDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OurDriver::Tokio => "tokio",
            OurDriver::Mio => "mio",
        })
    }
}

/// Which implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// devp2p-sansio, on one of its drivers.
    Ours(OurDriver),
    /// go-ethereum.
    Geth,
    /// sigp/discv5.
    Sigp,
    /// @chainsafe/discv5.
    ChainSafe,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Ours(OurDriver::Tokio) => "ours-tokio",
            Kind::Ours(OurDriver::Mio) => "ours-mio",
            Kind::Geth => "geth",
            Kind::Sigp => "sigp",
            Kind::ChainSafe => "chainsafe",
        })
    }
}

/// What a node starts with.
#[derive(Debug, Clone)]
pub struct Options {
    /// Its key.
    pub key: NodeSecretKey,
    /// Its UDP port on 127.0.0.1; 0 lets the OS pick (a restart passes the port it had).
    pub port: u16,
    /// The lowest seq its first record may have: a node restarted with the same key must
    /// sign a newer record than before (geth and ours start at the clock in milliseconds and
    /// need nothing; sigp and ChainSafe start at 1).
    pub min_seq: u64,
    /// Records of nodes to start from.
    pub bootnodes: Vec<Enr>,
}

impl Options {
    /// A node with `key` on a port the OS picks, seq from 1, no bootnodes.
    pub fn new(key: NodeSecretKey) -> Self {
        Options {
            key,
            port: 0,
            min_seq: 1,
            bootnodes: Vec::new(),
        }
    }
}

/// Starts a node of `kind`. Panics if it does not come up (a missing `go` or `node` says
/// what to install); call [`enabled`] first.
pub fn start(kind: Kind, opts: Options) -> Box<dyn V5Peer> {
    match kind {
        Kind::Ours(driver) => Box::new(ours::OurNode::start(driver, opts)),
        Kind::Geth => Box::new(geth::GethNode::start(opts)),
        Kind::Sigp => Box::new(sigp::SigpNode::start(opts)),
        Kind::ChainSafe => Box::new(chainsafe::ChainSafeNode::start(opts)),
    }
}

/// Whether the tests against `kind` run: `DEVP2P_SKIP_GETH=1` skips geth and
/// `DEVP2P_SKIP_INTEROP=1` ChainSafe (saying so on stderr), as for the other interop tests;
/// for ChainSafe this also installs the pinned npm packages if needed.
pub fn enabled(kind: Kind, test: &str) -> bool {
    match kind {
        Kind::Ours(_) | Kind::Sigp => true,
        Kind::Geth => geth_process::geth_enabled(test),
        Kind::ChainSafe => node_process::ready(test),
    }
}

/// A PONG as the pinging side saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    /// The responder's record seq.
    pub enr_seq: u64,
    /// Our address as the responder saw it.
    pub addr: SocketAddr,
}

/// What a registered TALK protocol answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transform {
    /// The request itself.
    Echo,
    /// The request's bytes in reverse order.
    Reverse,
    /// These bytes, then the request.
    Prefix(Vec<u8>),
    /// Always these bytes.
    Fixed(Vec<u8>),
}

impl Transform {
    /// The answer to `request`.
    pub fn apply(&self, request: &[u8]) -> Vec<u8> {
        match self {
            Transform::Echo => request.to_vec(),
            Transform::Reverse => request.iter().rev().copied().collect(),
            Transform::Prefix(p) => [p.as_slice(), request].concat(),
            Transform::Fixed(f) => f.clone(),
        }
    }

    /// As the harness programs take it: `{"transform", "hex"}`.
    pub fn to_json(&self) -> Value {
        match self {
            Transform::Echo => json!({"transform": "echo"}),
            Transform::Reverse => json!({"transform": "reverse"}),
            Transform::Prefix(p) => json!({"transform": "prefix", "hex": hex(p)}),
            Transform::Fixed(f) => json!({"transform": "fixed", "hex": hex(f)}),
        }
    }
}

/// A TALKREQ a node received for a protocol it registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TalkSeen {
    /// The asker.
    pub from: NodeId,
    /// The protocol.
    pub protocol: Vec<u8>,
    /// The request.
    pub request: Vec<u8>,
}

/// One discovery v5 node, whatever implements it. Requests block until they end (at most
/// [`WAIT`], lookups [`LOOKUP_WAIT`]); `Err` is the implementation's own account of a
/// failure. Dropping the node stops it and frees its port.
pub trait V5Peer: Send {
    /// Which implementation.
    fn kind(&self) -> Kind;
    /// Its current record (as it would answer `FINDNODE [0]`).
    fn record(&self) -> Enr;
    /// PING the node of `to`.
    fn ping(&mut self, to: &Enr) -> Result<Pong, String>;
    /// FINDNODE `distances` at the node of `to`: the records returned, as the implementation
    /// accepted them.
    fn find_node(&mut self, to: &Enr, distances: &[u64]) -> Result<Vec<Enr>, String>;
    /// The record of the node of `to`, asked for with `FINDNODE [0]`.
    fn request_record(&mut self, to: &Enr) -> Result<Enr, String> {
        let mut found = self.find_node(to, &[0])?;
        match found.len() {
            1 => Ok(found.remove(0)),
            n => Err(format!("{n} records for distance 0")),
        }
    }
    /// TALKREQ of `protocol` to the node of `to`: the TALKRESP's bytes.
    fn talk(&mut self, to: &Enr, protocol: &[u8], request: &[u8]) -> Result<Vec<u8>, String>;
    /// Answers TALKREQs of `protocol` by `transform` from now on.
    fn register_talk(&mut self, protocol: &[u8], transform: Transform);
    /// The TALKREQs of registered protocols received so far.
    fn talk_requests(&self) -> Vec<TalkSeen>;
    /// An iterative lookup for `target`: the closest nodes found, as the implementation
    /// returns them.
    fn lookup(&mut self, target: NodeId) -> Result<Vec<Enr>, String>;
    /// The records in its routing table.
    fn table(&mut self) -> Vec<Enr>;
    /// Sets the entry `key` of its record to the byte string `value`: a new record, with a
    /// higher seq, which it returns.
    fn set_enr_field(&mut self, key: &str, value: &[u8]) -> Enr;
}

/// The ids of `records`.
pub fn ids(records: &[Enr]) -> Vec<NodeId> {
    records.iter().map(Enr::node_id).collect()
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Bytes of hex `s`, or why not.
pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd hex length: {s}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("bad hex: {s}")))
        .collect()
}

/// The record in a harness line's `rlp` field, decoded (and so verified) by us.
pub fn record_of(v: &Value) -> Result<Enr, String> {
    let raw = v["rlp"]
        .as_str()
        .ok_or_else(|| format!("no record in {v}"))?;
    Enr::decode(&unhex(raw)?).map_err(|e| format!("a record we cannot read ({e}): {v}"))
}

/// The records in a harness line's list `field`.
pub fn records_of(v: &Value, field: &str) -> Result<Vec<Enr>, String> {
    v[field]
        .as_array()
        .ok_or_else(|| format!("no {field} in {v}"))?
        .iter()
        .map(record_of)
        .collect()
}

/// A PONG from a harness line: `enr_seq`, `to_ip`, `to_port`.
pub fn pong_of(v: &Value) -> Result<Pong, String> {
    let ip: IpAddr = v["to_ip"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no to_ip in {v}"))?;
    let port = v["to_port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| format!("no to_port in {v}"))?;
    let enr_seq = v["enr_seq"]
        .as_u64()
        .ok_or_else(|| format!("no enr_seq in {v}"))?;
    Ok(Pong {
        enr_seq,
        addr: SocketAddr::new(ip, port),
    })
}

/// A byte string as one RLP item (what geth's `set_enr_field` takes).
pub fn rlp_string(b: &[u8]) -> Vec<u8> {
    match b {
        [x] if *x < 0x80 => vec![*x],
        _ if b.len() < 56 => [&[0x80 + b.len() as u8], b].concat(),
        _ => {
            let len = b.len().to_be_bytes();
            let len = &len[len.iter().take_while(|x| **x == 0).count()..];
            [&[0xb7 + len.len() as u8], len, b].concat()
        }
    }
}
