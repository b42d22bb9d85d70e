//! Scenarios and invariant properties for the table.

use std::net::IpAddr;
use std::sync::OnceLock;

use quickcheck::{quickcheck, Arbitrary, Gen};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::*;
use crate::discv4::netutil::v4;
use crate::identity::{NodePublicKey, NodeSecretKey};

fn local() -> NodeSecretKey {
    NodeSecretKey::from_bytes(&[0x11; 32]).unwrap()
}

/// 600 public keys from a fixed seed, generated once.
fn pool() -> &'static [NodePublicKey] {
    static POOL: OnceLock<Vec<NodePublicKey>> = OnceLock::new();
    POOL.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        (0..600)
            .map(|_| *NodeSecretKey::generate(&mut rng).public())
            .collect()
    })
}

/// Keys from the pool that land in bucket `b` of `local()`'s table.
fn keys_in_bucket(b: usize) -> Vec<NodePublicKey> {
    let me = local().id();
    pool()
        .iter()
        .filter(|k| bucket_index(&me, &k.id()) == Some(b))
        .copied()
        .collect()
}

fn node(k: NodePublicKey, ip: IpAddr) -> Node {
    Node::new(k, ip, 30303, 30303)
}

fn t0() -> Instant {
    Instant::from_millis(0)
}

/// A distinct public address per index, each in its own /24.
fn public_ip(i: usize) -> IpAddr {
    v4(20, (i / 256) as u8, (i % 256) as u8, 1)
}

#[test]
fn bucket_index_follows_geth_17_bucket_layout() {
    let a = NodeId([0; 32]);
    let mut b = [0u8; 32];
    b[0] = 0x80;
    assert_eq!(bucket_index(&a, &NodeId(b)), Some(16));
    b[0] = 0x01; // log distance 249
    assert_eq!(bucket_index(&a, &NodeId(b)), Some(9));
    let mut c = [0u8; 32];
    c[1] = 0x80; // log distance 248
    assert_eq!(bucket_index(&a, &NodeId(c)), Some(8));
    let mut d = [0u8; 32];
    d[31] = 1; // log distance 1: shares bucket 0
    assert_eq!(bucket_index(&a, &NodeId(d)), Some(0));
    assert_eq!(bucket_index(&a, &a), None);
}

#[test]
fn a_full_bucket_sends_newcomers_to_a_bounded_replacement_list() {
    let mut t = Table::new(local().id());
    let keys = keys_in_bucket(16);
    assert!(keys.len() > BUCKET_SIZE + MAX_REPLACEMENTS + 1);
    for (i, k) in keys.iter().take(BUCKET_SIZE).enumerate() {
        assert_eq!(t.add_found(node(*k, public_ip(i)), t0()), AddOutcome::Added);
    }
    for (i, k) in keys
        .iter()
        .enumerate()
        .skip(BUCKET_SIZE)
        .take(MAX_REPLACEMENTS + 1)
    {
        assert_eq!(
            t.add_found(node(*k, public_ip(i)), t0()),
            AddOutcome::Replacement
        );
    }
    assert_eq!(t.bucket(16).len(), BUCKET_SIZE);
    assert_eq!(t.replacements(16).len(), MAX_REPLACEMENTS);
    // Newest first; the oldest replacement fell off.
    assert_eq!(
        t.replacements(16)[0].public_key(),
        &keys[BUCKET_SIZE + MAX_REPLACEMENTS]
    );
    assert!(!t
        .replacements(16)
        .iter()
        .any(|n| n.public_key() == &keys[BUCKET_SIZE]));
    t.check_invariants().unwrap();
}

#[test]
fn at_most_two_per_subnet_per_bucket_but_lan_is_exempt() {
    let mut t = Table::new(local().id());
    let keys = keys_in_bucket(16);
    assert_eq!(
        t.add_found(node(keys[0], v4(5, 6, 7, 1)), t0()),
        AddOutcome::Added
    );
    assert_eq!(
        t.add_found(node(keys[1], v4(5, 6, 7, 2)), t0()),
        AddOutcome::Added
    );
    assert_eq!(
        t.add_found(node(keys[2], v4(5, 6, 7, 3)), t0()),
        AddOutcome::Rejected(AddRejection::IpLimit)
    );
    assert_eq!(
        t.add_found(node(keys[2], v4(5, 6, 8, 3)), t0()),
        AddOutcome::Added
    );
    for (i, k) in keys.iter().enumerate().skip(3).take(5) {
        assert_eq!(
            t.add_found(node(*k, v4(10, 0, 0, i as u8)), t0()),
            AddOutcome::Added
        );
    }
    t.check_invariants().unwrap();
}

#[test]
fn at_most_ten_per_subnet_across_the_table() {
    let mut t = Table::new(local().id());
    let mut added = 0;
    let mut rejected = 0;
    for k in pool() {
        let ip = v4(7, 7, 7, (added + rejected) as u8);
        match t.add_found(node(*k, ip), t0()) {
            AddOutcome::Added | AddOutcome::Replacement => added += 1,
            AddOutcome::Rejected(AddRejection::IpLimit) => rejected += 1,
            other => panic!("{other:?}"),
        }
        if added + rejected == 200 {
            break;
        }
    }
    assert_eq!(added, TABLE_IP_LIMIT);
    t.check_invariants().unwrap();
}

#[test]
fn we_never_add_ourselves_or_an_unspecified_address() {
    let me = local();
    let mut t = Table::new(me.id());
    assert_eq!(
        t.add_found(node(*me.public(), v4(1, 1, 1, 1)), t0()),
        AddOutcome::Rejected(AddRejection::SelfNode)
    );
    assert_eq!(
        t.add_found(node(pool()[0], v4(0, 0, 0, 0)), t0()),
        AddOutcome::Rejected(AddRejection::UnspecifiedIp)
    );
    assert!(t.is_empty());
}

#[test]
fn found_nodes_need_a_higher_seq_to_update_but_inbound_ones_may_move() {
    let mut t = Table::new(local().id());
    let k = pool()[0];
    t.add_found(node(k, v4(1, 1, 1, 1)), t0());
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let id = k.id();
    t.revalidation_succeeded(&id).unwrap();
    assert_eq!(
        t.add_found(node(k, v4(2, 2, 2, 2)), t0()),
        AddOutcome::Unchanged
    );
    assert_eq!(t.get(&id).unwrap().node().ip(), v4(1, 1, 1, 1));
    assert_eq!(
        t.add_inbound(node(k, v4(2, 2, 2, 2)), t0()),
        AddOutcome::Updated {
            endpoint_changed: true
        }
    );
    let e = t.get(&id).unwrap();
    assert_eq!(e.node().ip(), v4(2, 2, 2, 2));
    assert!(!e.is_live());
    assert_eq!(e.revalidation_list(), RevalidationList::Fast);
    t.check_invariants().unwrap();
    let _ = t.remove(&id, t0(), &mut rng);
    t.check_invariants().unwrap();
}

#[test]
fn a_node_that_stops_answering_loses_its_slot_to_a_replacement() {
    let mut t = Table::new(local().id());
    let keys = keys_in_bucket(16);
    for (i, k) in keys.iter().take(BUCKET_SIZE + 1).enumerate() {
        t.add_found(node(*k, public_ip(i)), t0());
    }
    let victim = keys[0].id();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    // Four answers, then misses: 4 -> 1 -> 0 (removed).
    for _ in 0..4 {
        t.revalidation_succeeded(&victim);
    }
    assert_eq!(
        t.get(&victim).unwrap().revalidation_list(),
        RevalidationList::Slow
    );
    assert_eq!(
        t.revalidation_failed(&victim, t0(), &mut rng),
        Some(RevalidationFailure::Demoted)
    );
    assert_eq!(t.get(&victim).unwrap().liveness_checks(), 1);
    match t.revalidation_failed(&victim, t0(), &mut rng) {
        Some(RevalidationFailure::Removed { removed, promoted }) => {
            assert_eq!(removed, victim);
            assert_eq!(promoted, Some(keys[BUCKET_SIZE].id()));
        }
        other => panic!("{other:?}"),
    }
    assert!(!t.contains(&victim));
    assert_eq!(t.bucket(16).len(), BUCKET_SIZE);
    assert!(t.replacements(16).is_empty());
    t.check_invariants().unwrap();
}

#[test]
fn closest_prefers_live_nodes_when_there_are_any() {
    let mut t = Table::new(local().id());
    for (i, k) in pool().iter().take(40).enumerate() {
        t.add_found(node(*k, public_ip(i)), t0());
    }
    let target = pool()[100].id();
    let all = t.closest(&target, 16, true);
    assert_eq!(all.len(), 16);
    for w in all.windows(2) {
        assert!(target.distance_cmp(&w[0].id(), &w[1].id()).is_le());
    }
    let live = all[5].id();
    t.revalidation_succeeded(&live);
    let got = t.closest(&target, 16, true);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id(), live);
    assert_eq!(t.closest(&target, 16, false).len(), 16);
}

/// One step of a random workload.
#[derive(Debug, Clone)]
enum Op {
    Found(usize, u8),
    Inbound(usize, u8),
    Remove(usize),
    Pass(usize),
    Fail(usize),
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        let k = usize::arbitrary(g) % 600;
        // Few subnets, so the limits bite; 0 maps to a LAN address.
        let net = u8::arbitrary(g) % 6;
        match u8::arbitrary(g) % 6 {
            0 | 1 => Op::Found(k, net),
            2 => Op::Inbound(k, net),
            3 => Op::Remove(k),
            4 => Op::Pass(k),
            _ => Op::Fail(k),
        }
    }
}

fn ip_for(k: usize, net: u8) -> IpAddr {
    if net == 0 {
        v4(192, 168, 0, k as u8)
    } else {
        v4(30, net, 0, k as u8)
    }
}

quickcheck! {
    fn invariants_hold_under_any_sequence_of_operations(ops: Vec<Op>, seed: u64) -> bool {
        let me = local();
        let mut t = Table::new(me.id());
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let keys = pool();
        let mut busy = std::collections::BTreeSet::new();
        for (i, op) in ops.into_iter().enumerate() {
            if let Op::Pass(k) | Op::Fail(k) = op {
                busy.insert(keys[k].id()); // a node with a revalidation in flight
            }
            match op {
                Op::Found(k, n) => { t.add_found(node(keys[k], ip_for(k, n)), t0()); }
                Op::Inbound(k, n) => { t.add_inbound(node(keys[k], ip_for(k, n)), t0()); }
                Op::Remove(k) => { t.remove(&keys[k].id(), t0(), &mut rng); }
                Op::Pass(k) => { t.revalidation_succeeded(&keys[k].id()); }
                Op::Fail(k) => { t.revalidation_failed(&keys[k].id(), t0(), &mut rng); }
            }
            if let Err(e) = t.check_invariants() {
                eprintln!("{e}");
                return false;
            }
            // The pick is the k-th eligible entry in table order, k uniform.
            for list in [RevalidationList::Fast, RevalidationList::Slow] {
                let draw = ChaCha20Rng::seed_from_u64(seed ^ i as u64);
                let got = t.pick_for_revalidation(list, &mut draw.clone(), &busy).map(Node::id);
                let eligible: Vec<NodeId> = t
                    .entries()
                    .filter(|e| e.revalidation_list() == list && !busy.contains(&e.node().id()))
                    .map(|e| e.node().id())
                    .collect();
                let want = (!eligible.is_empty()).then(|| {
                    eligible[(draw.clone().next_u64() % eligible.len() as u64) as usize]
                });
                if got != want {
                    return false;
                }
            }
        }
        // Also never self, even if offered.
        t.add_found(node(*me.public(), v4(1, 2, 3, 4)), t0());
        t.check_invariants().is_ok() && t.len() <= N_BUCKETS * BUCKET_SIZE
    }

    fn closest_returns_the_true_nearest_table_nodes(n: u8, target_idx: usize) -> bool {
        let mut t = Table::new(local().id());
        for (i, k) in pool().iter().enumerate().take(usize::from(n) + 1) {
            t.add_found(node(*k, public_ip(i)), t0());
        }
        let target = pool()[target_idx % 600].id();
        let got = t.closest(&target, BUCKET_SIZE, false);
        let mut all: Vec<NodeId> = t.entries().map(|e| e.node().id()).collect();
        all.sort_by(|a, b| target.distance_cmp(a, b));
        all.truncate(BUCKET_SIZE);
        got.iter().map(Node::id).collect::<Vec<_>>() == all
    }
}
