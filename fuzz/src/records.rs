//! Signed records for the stateful targets, each signed once per process.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;

use devp2p_core::{Enr, NodeId, NodeSecretKey, SignatureScheme};

/// Records kept at most: the targets sign a few keys at a few addresses with sequence numbers
/// below a few hundred, so this is never reached in practice; past it the cache starts over.
const MAX_CACHED_RECORDS: usize = 4096;

thread_local! {
    static RECORDS: RefCell<BTreeMap<(NodeId, bool, SocketAddr, u64), Enr>> =
        const { RefCell::new(BTreeMap::new()) };
}

/// The record of `key` at `addr` (IP and UDP port) with sequence number `seq`: what
/// `Enr::builder()...sign(key)` makes, remembered. Record signatures are real ECDSA whatever
/// the key's scheme, and the discv5 targets sign records in every input (peers restart,
/// requests name a record), which was half of their time.
pub(crate) fn signed(key: &NodeSecretKey, addr: SocketAddr, seq: u64) -> Enr {
    let simulated = key.signature_scheme() == SignatureScheme::InsecureSimulation;
    let k = (key.id(), simulated, addr, seq);
    RECORDS.with(|cell| {
        let mut records = cell.borrow_mut();
        if let Some(r) = records.get(&k) {
            return r.clone();
        }
        if records.len() >= MAX_CACHED_RECORDS {
            records.clear();
        }
        let r = Enr::builder()
            .seq(seq)
            .ip(addr.ip())
            .udp4(addr.port())
            .sign(key)
            .expect("small record");
        records.insert(k, r.clone());
        r
    })
}
