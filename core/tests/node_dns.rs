//! DNS discovery in the `Node`, in memory under virtual time: the node asks for TXT names
//! through `Action::ResolveTxt`, the test network answers from a zone, and the records of the
//! tree become dial candidates and discovery seeds; failures are events and counted.

mod common;

use std::time::Duration;

use common::net::Net;
use devp2p_core::dnsdisc::{DnsError, Event as DnsEvent, ResolveError, Tree, TreeUrl};
use devp2p_core::node::{Action, NodeConfig, NodeEvent};
use devp2p_core::session::Protocol;
use devp2p_core::{Enr, Instant, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn config() -> NodeConfig {
    let mut node = NodeConfig::default();
    node.session.protocols = vec![Protocol::new("test", 1, 4)];
    node.max_peers = 10;
    node
}

/// A tree of `records` signed for `domain`, put into the network's zone; its URL.
fn publish(net: &mut Net, records: &[Enr], domain: &str) -> TreeUrl {
    let signer = NodeSecretKey::generate(&mut ChaCha20Rng::seed_from_u64(77));
    let (tree, url) = Tree::build(1, records, &[]).sign(&signer, domain).unwrap();
    net.zone.extend(tree.to_txt(domain));
    url
}

fn dns_errors(net: &Net, i: usize) -> Vec<DnsError> {
    net.events[i]
        .iter()
        .filter_map(|e| match e {
            NodeEvent::Dns(d) => match &**d {
                DnsEvent::Error(e) => Some(e.error.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn a_node_with_only_a_dns_tree_connects_to_every_node_it_lists_and_seeds_discovery_with_them() {
    let mut net = Net::new();
    // Four nodes that know nobody; their records are what the tree lists.
    for i in 0..4 {
        net.add(10 + i, config());
    }
    let records: Vec<Enr> = (0..4)
        .map(|i| net.nodes[i].local_enr().unwrap().clone())
        .collect();
    let url = publish(&mut net, &records, "nodes.example.org");
    let seeker = net.add(20, {
        let mut node = config();
        node.dns = vec![url.clone()];
        node
    });
    net.run_for(Duration::from_secs(30));

    let node = &net.nodes[seeker];
    let mut peers: Vec<_> = node.peers().iter().map(|p| p.id).collect();
    peers.sort();
    let mut want: Vec<_> = records.iter().map(|r| r.node_id()).collect();
    want.sort();
    assert_eq!(peers, want, "stats: {:?}", node.stats());
    let stats = node.stats();
    assert!(stats.dns_nodes >= 4, "{stats:?}");
    assert!(
        stats.dns_lookups >= 5,
        "root and four leaves at least: {stats:?}"
    );
    assert_eq!(stats.dns_errors, 0, "{:?}", dns_errors(&net, seeker));
    assert_eq!(node.dns().unwrap().root(&url).map(|r| r.seq), Some(1));
    // Every record reached the discovery tables too: without bootnodes, that is how this
    // node entered the DHT.
    let v4 = node.discovery().unwrap().table();
    assert!(
        want.iter().all(|id| v4.contains(id)),
        "discv4 table lacks tree nodes"
    );
    let v5 = node.discv5().unwrap().table();
    assert!(
        want.iter().all(|id| v5.contains(id)),
        "discv5 table lacks tree nodes"
    );
    // Lookups were names of the tree only: the root, then hash labels under it.
    assert!(net
        .lookups
        .iter()
        .all(|(i, name)| *i == seeker && name.ends_with("nodes.example.org")));
}

#[test]
fn a_tree_whose_root_is_missing_is_reported_counted_and_asked_again_later_not_in_a_loop() {
    let mut net = Net::new();
    let records = vec![{
        let key = NodeSecretKey::generate(&mut ChaCha20Rng::seed_from_u64(5));
        Enr::builder()
            .ip([127, 0, 0, 9].into())
            .tcp4(30303)
            .udp4(30303)
            .sign(&key)
            .unwrap()
    }];
    let url = publish(&mut net, &records, "gone.example.org");
    net.zone.remove("gone.example.org");
    let seeker = net.add(21, {
        let mut node = config();
        node.dns = vec![url];
        node
    });
    net.run_for(Duration::from_secs(120));
    let errors = dns_errors(&net, seeker);
    assert!(!errors.is_empty());
    assert!(errors
        .iter()
        .all(|e| *e == DnsError::Resolve(ResolveError::NotFound)));
    let stats = net.nodes[seeker].stats();
    assert_eq!(stats.dns_errors, errors.len() as u64);
    assert_eq!(stats.dns_nodes, 0);
    // Five quick tries, then one every 5 s and later every 10 s (geth's slowdown): about
    // 25 in two minutes, not thousands.
    assert!(
        (10..=40).contains(&errors.len()),
        "{} root lookups in 120 s",
        errors.len()
    );
}

#[test]
fn a_node_that_dials_nobody_never_walks_its_trees() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let signer = NodeSecretKey::generate(&mut rng);
    let (_, url) = Tree::build(1, &[], &[])
        .sign(&signer, "n.example.org")
        .unwrap();
    let mut node = config();
    node.no_dial = true;
    node.dns = vec![url];
    let key = NodeSecretKey::generate(&mut rng);
    let mut n = devp2p_core::node::Node::new(key, node, rng, Instant::ZERO, 1_800_000_000);
    n.handle_timeout(Instant::from_millis(60_000), 1_800_000_060);
    while let Some(a) = n.poll_action() {
        assert!(!matches!(a, Action::ResolveTxt { .. }), "{a:?}");
    }
    assert_eq!(n.stats().dns_lookups, 0);
}

#[test]
fn an_answer_that_comes_after_the_lookup_timed_out_is_ignored() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let signer = NodeSecretKey::generate(&mut rng);
    let (tree, url) = Tree::build(1, &[], &[])
        .sign(&signer, "late.example.org")
        .unwrap();
    let txt = tree.to_txt("late.example.org");
    let mut node = config();
    node.dns = vec![url];
    let key = NodeSecretKey::generate(&mut rng);
    let mut n = devp2p_core::node::Node::new(key, node, rng, Instant::ZERO, 1_800_000_000);
    let (query, name) = std::iter::from_fn(|| n.poll_action())
        .find_map(|a| match a {
            Action::ResolveTxt { query, name } => Some((query, name)),
            _ => None,
        })
        .expect("the root is asked for at start");
    assert_eq!(name, "late.example.org");
    // Six seconds later: the node gave up at 5 s and says so.
    n.handle_timeout(Instant::from_millis(6_000), 1_800_000_006);
    let timed_out = std::iter::from_fn(|| n.poll_event()).any(|e| {
        matches!(&e, NodeEvent::Dns(d) if matches!(&**d,
            DnsEvent::Error(e) if e.error == DnsError::Resolve(ResolveError::Timeout)))
    });
    assert!(timed_out);
    n.dns_answer(
        Instant::from_millis(6_001),
        query,
        Ok(vec![txt[&name].clone()]),
    );
    let root = std::iter::from_fn(|| n.poll_event())
        .any(|e| matches!(&e, NodeEvent::Dns(d) if matches!(&**d, DnsEvent::RootUpdated { .. })));
    assert!(!root, "a late answer is not taken");
}
