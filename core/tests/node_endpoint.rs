//! The node's own endpoint keeps its record current (DNSDISC_NAT.md §B.5–B.8): a node behind
//! a NAT learns its public endpoint from what enough peers say, its record follows with a
//! higher seq, and the peers that fetch the record see the new one; too few peers, or a
//! pinned address, change nothing; a restart from the saved database signs a higher seq.
//! First [`LocalRecord`] alone, then whole nodes in an in-memory network under virtual time.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::net::Net;
use devp2p_core::endpoint::{EndpointChange, LocalRecord, Observation, MIN_STATEMENTS};
use devp2p_core::node::{Node, NodeConfig, NodeEvent};
use devp2p_core::{Enr, Instant, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// A driver's first seq: the Unix time in milliseconds (geth's choice).
const FIRST_SEQ: u64 = 1_800_000_000_000;

fn key(seed: u64) -> NodeSecretKey {
    NodeSecretKey::generate(&mut ChaCha20Rng::seed_from_u64(seed))
}

fn record(key: &NodeSecretKey, at: &str) -> Enr {
    let a: SocketAddr = at.parse().unwrap();
    Enr::builder()
        .seq(FIRST_SEQ)
        .ip(a.ip())
        .udp4(a.port())
        .tcp4(30303)
        .sign(key)
        .unwrap()
}

fn statement(reporter: [u8; 4], endpoint: &str) -> Observation {
    Observation::Statement {
        reporter: reporter.into(),
        endpoint: endpoint.parse().unwrap(),
    }
}

// ---- LocalRecord alone -------------------------------------------------------------------

#[test]
fn ten_agreeing_hosts_move_the_record_which_is_signed_once_when_first_asked_for() {
    let k = key(1);
    let mut local = LocalRecord::new(record(&k, "10.0.0.2:30303"), false);
    let public = "21.0.0.1:40001";
    let now = Instant::from_millis(1000);
    for h in 1..MIN_STATEMENTS as u8 {
        assert_eq!(local.observe(now, statement([31, 0, h, 1], public)), None);
    }
    let change = local.observe(now, statement([31, 0, 99, 1], public));
    assert_eq!(
        change,
        Some(EndpointChange {
            old: Some("10.0.0.2:30303".parse().unwrap()),
            new: public.parse().unwrap(),
            seq: FIRST_SEQ + 1,
        })
    );
    assert_eq!(local.seq(), FIRST_SEQ + 1);
    // Signed on first use, then the same record every time.
    let first = local.record(&k).clone();
    assert_eq!(first.seq(), FIRST_SEQ + 1);
    assert_eq!(first.udp_endpoint(), Some(public.parse().unwrap()));
    assert_eq!(
        first.tcp_endpoint(),
        Some("21.0.0.1:30303".parse().unwrap()),
        "the TCP port is never predicted"
    );
    assert_eq!(local.record(&k), &first);
    assert_eq!(local.take_update(&k), Some(first.clone()));
    assert_eq!(local.take_update(&k), None, "handed on once");
    assert_eq!(local.record(&k), &first);
    // More of the same changes nothing.
    assert_eq!(local.observe(now, statement([31, 0, 100, 1], public)), None);
    assert_eq!(local.seq(), FIRST_SEQ + 1);
}

#[test]
fn changes_before_anyone_asks_share_one_seq_step() {
    let k = key(2);
    let mut local = LocalRecord::new(record(&k, "10.0.0.2:30303"), false);
    let now = Instant::from_millis(1000);
    for h in 1..=MIN_STATEMENTS as u8 {
        local.observe(now, statement([31, 0, h, 1], "21.0.0.1:40001"));
    }
    // Later, a majority for another mapping (the NAT restarted), still unsigned.
    let later = Instant::from_millis(2000);
    let mut last = None;
    for h in 1..=MIN_STATEMENTS as u8 + 1 {
        last = local
            .observe(later, statement([32, 0, h, 1], "21.0.0.1:40002"))
            .or(last);
    }
    assert_eq!(last.map(|c| c.seq), Some(FIRST_SEQ + 1));
    let r = local.take_update(&k).unwrap();
    assert_eq!(r.seq(), FIRST_SEQ + 1);
    assert_eq!(r.udp_endpoint(), Some("21.0.0.1:40002".parse().unwrap()));
}

#[test]
fn statements_no_reporter_could_make_are_not_counted() {
    let k = key(3);
    let mut local = LocalRecord::new(record(&k, "10.0.0.2:30303"), false);
    let now = Instant::ZERO;
    // Public hosts cannot reach a loopback or LAN endpoint of ours; nobody can reach port 0,
    // 0.0.0.0 or a multicast address.
    for h in 1..=20u8 {
        for bogus in [
            "127.0.0.1:30303",
            "192.168.1.1:30303",
            "21.0.0.1:0",
            "0.0.0.0:30303",
            "224.0.0.1:30303",
        ] {
            assert_eq!(local.observe(now, statement([31, 0, h, 1], bogus)), None);
        }
    }
    assert_eq!(local.prediction(now), None);
    assert_eq!(local.seq(), FIRST_SEQ);
}

#[test]
fn a_lapsed_prediction_keeps_the_record_and_a_pinned_one_never_moves() {
    let k = key(4);
    let public = "21.0.0.1:40001";
    let mut local = LocalRecord::new(record(&k, "10.0.0.2:30303"), false);
    let mut pinned = LocalRecord::new(record(&k, "10.0.0.2:30303"), true);
    for h in 1..=MIN_STATEMENTS as u8 {
        local.observe(Instant::ZERO, statement([31, 0, h, 1], public));
        assert_eq!(
            pinned.observe(Instant::ZERO, statement([31, 0, h, 1], public)),
            None
        );
    }
    assert_eq!(local.endpoint(), Some(public.parse().unwrap()));
    assert_eq!(
        pinned.prediction(Instant::ZERO),
        Some(public.parse().unwrap())
    );
    assert_eq!(pinned.endpoint(), Some("10.0.0.2:30303".parse().unwrap()));
    assert_eq!(pinned.seq(), FIRST_SEQ);
    // An hour later one host says something else: no prediction any more, no change.
    let hour = Instant::from_millis(3_600_000);
    assert_eq!(
        local.observe(hour, statement([33, 0, 0, 1], "21.0.0.9:1234")),
        None
    );
    assert_eq!(local.endpoint(), Some(public.parse().unwrap()));
}

// ---- whole nodes -------------------------------------------------------------------------

/// The public side of the NAT in front of the node under test. Loopback, as every address of
/// the in-memory network, so that peers relay it and each other's to it.
const PUBLIC: &str = "127.0.200.1:40001";

fn public() -> SocketAddr {
    PUBLIC.parse().unwrap()
}

fn config() -> NodeConfig {
    let mut c = NodeConfig::default();
    c.no_dial = true;
    c.enr_seq = Some(FIRST_SEQ);
    c
}

/// `honest` nodes (node 0 the bootnode of the others), then one node behind a NAT, with its
/// own settings: returns the network and that node's index.
fn network(honest: usize, nated: NodeConfig, seed: u64) -> (Net, usize) {
    let mut net = Net::new();
    for i in 0..honest {
        let mut c = config();
        if i > 0 {
            c.bootnodes = vec![net.enode(0)];
        }
        net.add(seed + i as u64, c);
    }
    let mut c = nated;
    c.bootnodes = vec![net.enode(0)];
    let n = net.add_behind_nat(seed + 1000, c, public());
    (net, n)
}

fn endpoint_changes(net: &Net, i: usize) -> Vec<(Option<SocketAddr>, SocketAddr, u64)> {
    net.events[i]
        .iter()
        .filter_map(|e| match e {
            NodeEvent::EndpointChanged { old, new, seq } => Some((*old, *new, *seq)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_node_behind_nat_advertises_its_public_endpoint_and_its_peers_fetch_it() {
    let (mut net, n) = network(12, config(), 10);
    let own = net.addrs[n];
    assert_eq!(
        net.nodes[n].local_enr().unwrap().udp_endpoint(),
        Some(own),
        "at first the record says what the node listens on"
    );
    net.run_for(Duration::from_secs(180));
    assert_eq!(
        endpoint_changes(&net, n),
        vec![(Some(own), public(), FIRST_SEQ + 1)]
    );
    let node = &net.nodes[n];
    let r = node.local_enr().unwrap().clone();
    assert_eq!(r.seq(), FIRST_SEQ + 1);
    assert_eq!(r.udp_endpoint(), Some(public()));
    assert_eq!(node.discovery().unwrap().local_record(), &r);
    assert_eq!(node.discv5().unwrap().local_record(), &r);
    let enode = node.local_enode();
    assert_eq!(enode.udp_addr(), Some(public()));
    assert_eq!(node.db_snapshot().local_seq, FIRST_SEQ + 1);
    // The honest nodes saw the same endpoint they always had: their records never moved.
    for i in 0..n {
        assert!(endpoint_changes(&net, i).is_empty(), "node {i}");
        assert_eq!(net.nodes[i].local_enr().unwrap().seq(), FIRST_SEQ);
    }
    // Peers that revalidated it saw the higher seq in its Pongs and PONGs and fetched the
    // record (ENRRequest, FINDNODE [0]).
    let id = node.local_id();
    let mut v4_holders = 0;
    let mut v5_holders = 0;
    for i in 0..n {
        let peer = &net.nodes[i];
        if let Some(e) = peer.discovery().unwrap().table().get(&id) {
            assert_eq!(e.node().udp_addr(), public(), "node {i}'s v4 table");
            if e.node().seq() == r.seq() {
                assert_eq!(e.node().record(), Some(&r));
                v4_holders += 1;
            }
        }
        if let Some(e) = peer.discv5().unwrap().table().get(&id) {
            assert_eq!(e.node().record(), Some(&r), "node {i}'s v5 table");
            v5_holders += 1;
        }
    }
    println!("record fetched by {v4_holders} peers over v4, {v5_holders} over v5");
    assert!(
        v4_holders >= 3,
        "{v4_holders} peers fetched the record over v4"
    );
    assert!(
        v5_holders >= 3,
        "{v5_holders} peers hold the record over v5"
    );
}

#[test]
fn fewer_agreeing_peers_than_the_minimum_change_nothing() {
    // The bootnode and 8 more: 9 hosts at most can say where the node is.
    let (mut net, n) = network(MIN_STATEMENTS - 1, config(), 20);
    net.run_for(Duration::from_secs(300));
    assert!(endpoint_changes(&net, n).is_empty());
    let r = net.nodes[n].local_enr().unwrap();
    assert_eq!(r.seq(), FIRST_SEQ);
    assert_eq!(r.udp_endpoint(), Some(net.addrs[n]));
    assert_eq!(net.nodes[n].predicted_endpoint(), None);
}

#[test]
fn a_pinned_address_never_changes() {
    let mut c = config();
    c.advertised_ip = Some("127.0.0.250".parse().unwrap());
    let (mut net, n) = network(12, c, 30);
    net.run_for(Duration::from_secs(300));
    assert!(endpoint_changes(&net, n).is_empty());
    let r = net.nodes[n].local_enr().unwrap();
    assert_eq!(r.seq(), FIRST_SEQ);
    assert_eq!(r.udp_endpoint(), Some("127.0.0.250:30303".parse().unwrap()));
    // It knows better, and says so when asked, but does not act on it.
    assert_eq!(net.nodes[n].predicted_endpoint(), Some(public()));
}

#[test]
fn a_restart_from_the_saved_database_signs_a_higher_seq() {
    let (mut net, n) = network(12, config(), 40);
    net.run_for(Duration::from_secs(180));
    let before = net.nodes[n].local_enr().unwrap().seq();
    assert_eq!(before, FIRST_SEQ + 1, "the endpoint changed once");
    let saved = net.nodes[n].db_snapshot();
    assert_eq!(saved.local_seq, before);
    // The clock went back, or the driver starts from the same seq: the database decides.
    for (enr_seq, db) in [
        (Some(FIRST_SEQ), saved.clone()),
        (None, saved.clone()),
        (Some(FIRST_SEQ + 1000), saved),
    ] {
        let mut c = config();
        c.enr_seq = enr_seq;
        c.node_db = db;
        c.listen = net.addrs[n];
        let restarted = Node::new(
            net.keys[n].clone(),
            c,
            ChaCha20Rng::seed_from_u64(7),
            net.now,
            common::net::UNIX_START + 180,
        );
        let seq = restarted.local_enr().unwrap().seq();
        assert!(
            seq > before,
            "restart with {enr_seq:?}: seq {seq} <= {before}"
        );
        assert_eq!(seq, (before + 1).max(enr_seq.unwrap_or(1)));
    }
}
