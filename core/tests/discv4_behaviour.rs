//! Discovery behaviour beyond the conformance suite: Neighbors chunking and relay filtering,
//! revalidation and record refresh, failure counting, bond expiry and the node database.

mod discv4_support;

use std::net::SocketAddr;

use devp2p_core::discv4::table::bucket_index;
use devp2p_core::discv4::wire::{
    self, Decoded, Endpoint, EnrResponse, FindNode, Neighbor, Neighbors, Packet, MAX_NEIGHBORS,
};
use devp2p_core::discv4::{Config, DropReason, Event, Node, BOND_EXPIRATION_SECS};
use devp2p_core::{Enr, NodeSecretKey};
use discv4_support::{pong_only, Nut, Peer};

/// `n` peers on 127.0.0.x, each bonded with the node (so all sit in its table).
fn bonded_peers(nut: &mut Nut, n: usize, first_seed: u8) -> Vec<Peer> {
    (0..n)
        .map(|i| {
            let p = Peer::new(first_seed + i as u8, &format!("127.0.0.{}:40000", 10 + i));
            p.bond(nut);
            p
        })
        .collect()
}

fn neighbors_of(out: &[(SocketAddr, Decoded)]) -> Vec<usize> {
    out.iter()
        .filter_map(|(_, d)| match &d.packet {
            Packet::Neighbors(n) => Some(n.nodes.len()),
            _ => None,
        })
        .collect()
}

fn findnode(peer: &Peer, nut: &Nut, target: [u8; 64]) -> Vec<u8> {
    peer.packet(&Packet::FindNode(FindNode {
        target,
        expiration: nut.unix() + 20,
    }))
    .0
}

#[test]
fn sixteen_neighbors_are_sent_as_twelve_plus_four() {
    let mut nut = Nut::bootstrapped();
    let peers = bonded_peers(&mut nut, 20, 30);
    assert_eq!(nut.disc.table().len(), 20);
    let out = nut.deliver(peers[0].addr, &findnode(&peers[0], &nut, [7; 64]));
    assert_eq!(neighbors_of(&out), vec![MAX_NEIGHBORS, 16 - MAX_NEIGHBORS]);
    assert!(out.iter().all(|(to, _)| *to == peers[0].addr));
}

#[test]
fn before_the_first_refresh_pinging_nodes_stay_out_and_findnode_gets_one_empty_neighbors() {
    let mut nut = Nut::new(9, "127.0.0.1:30303".parse().unwrap(), Config::default());
    assert!(!nut.disc.is_bootstrapped());
    let peer = Peer::new(50, "127.0.0.2:40000");
    peer.bond(&mut nut);
    assert!(nut.disc.table().is_empty(), "inbound nodes wait for init");
    let out = nut.deliver(peer.addr, &findnode(&peer, &nut, [7; 64]));
    assert_eq!(neighbors_of(&out), vec![0]);
}

#[test]
fn lan_nodes_are_not_relayed_to_a_public_requester() {
    let mut nut = Nut::bootstrapped();
    let _lan = bonded_peers(&mut nut, 3, 60);
    let public = Peer::new(70, "8.8.8.8:40000");
    public.bond(&mut nut);
    let out = nut.deliver(public.addr, &findnode(&public, &nut, [7; 64]));
    let Packet::Neighbors(n) = &out[0].1.packet else {
        panic!("{out:?}")
    };
    // Only the public requester itself is relayable to a public address.
    assert_eq!(n.nodes.len(), 1);
    assert_eq!(n.nodes[0].key, *public.key.public().raw());
}

#[test]
fn a_node_that_stops_answering_revalidation_is_removed() {
    let mut nut = Nut::bootstrapped();
    let peers = bonded_peers(&mut nut, 1, 80);
    let id = peers[0].key.id();
    assert!(nut.disc.table().contains(&id));
    // Silence: the first revalidation ping times out and, with no checks banked, removes it.
    let sent = nut.advance_with(10_000, |_, _, _| vec![]);
    assert!(sent
        .iter()
        .any(|(to, d)| *to == peers[0].addr && matches!(d.packet, Packet::Ping(_))));
    assert!(!nut.disc.table().contains(&id));
    assert!(nut.events.contains(&Event::NodeRemoved(id)));
}

#[test]
fn answering_nodes_become_live_and_a_higher_enr_seq_fetches_their_record() {
    let mut nut = Nut::bootstrapped();
    let peer = bonded_peers(&mut nut, 1, 90).remove(0);
    let record = Enr::builder()
        .seq(5)
        .ip(peer.addr.ip())
        .udp4(peer.addr.port())
        .tcp4(30399)
        .sign(&peer.key)
        .unwrap();
    let mut enr_requests = 0;
    nut.advance_with(30_000, |nut, to, d| {
        if to != peer.addr {
            return vec![];
        }
        match &d.packet {
            Packet::Ping(_) => {
                let mut pong = wire::Pong {
                    to: peer.endpoint(),
                    ping_hash: d.hash,
                    expiration: nut.unix() + 20,
                    enr_seq: Some(5),
                };
                pong.to.ip = Some(nut.addr.ip());
                vec![peer.packet(&Packet::Pong(pong)).0]
            }
            Packet::EnrRequest(_) => {
                enr_requests += 1;
                vec![
                    peer.packet(&Packet::EnrResponse(EnrResponse {
                        request_hash: d.hash,
                        record: record.clone(),
                    }))
                    .0,
                ]
            }
            _ => vec![],
        }
    });
    assert_eq!(enr_requests, 1, "fetched once, then the seq is known");
    let entry = nut.disc.table().get(&peer.key.id()).unwrap();
    assert!(entry.is_live());
    assert!(entry.liveness_checks() > 1);
    assert_eq!(entry.node().seq(), 5);
    assert_eq!(entry.node().tcp_port(), 30399);
}

#[test]
fn an_enr_response_for_another_node_is_refused() {
    let mut nut = Nut::bootstrapped();
    let peer = bonded_peers(&mut nut, 1, 100).remove(0);
    let impostor = NodeSecretKey::from_bytes(&[101; 32]).unwrap();
    let other = Enr::builder()
        .seq(9)
        .ip(peer.addr.ip())
        .udp4(peer.addr.port())
        .sign(&impostor)
        .unwrap();
    nut.advance_with(10_000, |nut, to, d| match &d.packet {
        Packet::Ping(_) if to == peer.addr => {
            let pong = wire::Pong {
                to: peer.endpoint(),
                ping_hash: d.hash,
                expiration: nut.unix() + 20,
                enr_seq: Some(9),
            };
            vec![peer.packet(&Packet::Pong(pong)).0]
        }
        Packet::EnrRequest(_) if to == peer.addr => vec![
            peer.packet(&Packet::EnrResponse(EnrResponse {
                request_hash: d.hash,
                record: other.clone(),
            }))
            .0,
        ],
        _ => vec![],
    });
    assert!(nut.disc.drop_count(DropReason::BadRecord) >= 1);
    assert_eq!(
        nut.disc.table().get(&peer.key.id()).unwrap().node().seq(),
        0
    );
    assert!(!nut.disc.table().contains(&impostor.id()));
}

#[test]
fn nodes_failing_findnode_five_times_are_evicted_from_buckets_of_four_or_more() {
    let mut nut = Nut::bootstrapped();
    // Five peers that share one bucket; they answer pings but never FindNode.
    let me = nut.key.id();
    let mut peers = Vec::new();
    let mut seed = 120u8;
    while peers.len() < 5 {
        let k = NodeSecretKey::from_bytes(&[seed; 32]).unwrap();
        if bucket_index(&me, &k.id()) == Some(16) {
            let p = Peer::new(seed, &format!("127.0.1.{}:40000", peers.len() + 1));
            p.bond(&mut nut);
            peers.push(p);
        }
        seed += 1;
    }
    assert_eq!(nut.disc.table().len(), 5);
    for round in 0..5 {
        let (now, unix) = (nut.now, nut.unix());
        nut.disc.start_random_lookup(now, unix);
        nut.advance_with(3_000, pong_only(&peers));
        let left = nut.disc.table().len();
        if round < 4 {
            assert_eq!(
                left, 5,
                "round {round}: fewer than five failures keep a node"
            );
        }
    }
    // Evictions stop once the bucket is down to three.
    assert_eq!(nut.disc.table().len(), 3);
}

#[test]
fn a_bond_expires_after_24_hours() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(140, "127.0.0.2:40000");
    peer.bond(&mut nut);
    let out = nut.deliver(peer.addr, &findnode(&peer, &nut, [7; 64]));
    assert_eq!(neighbors_of(&out).len(), 1);
    // The peer goes quiet for a day (answering revalidation pings would renew the proof).
    nut.advance_with((BOND_EXPIRATION_SECS + 1) * 1000, |_, _, _| vec![]);
    let out = nut.deliver(peer.addr, &findnode(&peer, &nut, [7; 64]));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(nut.disc.drop_count(DropReason::Unbonded), 1);
}

#[test]
fn proven_nodes_are_persisted_and_seed_the_next_start_until_they_expire() {
    let mut nut = Nut::bootstrapped();
    let peers = bonded_peers(&mut nut, 2, 150);
    nut.advance_with(120_000, pong_only(&peers));
    let snapshot = nut.disc.db_snapshot();
    let stored: Vec<_> = snapshot.nodes.iter().map(Node::id).collect();
    assert!(stored.contains(&peers[0].key.id()) && stored.contains(&peers[1].key.id()));

    // A restart an hour later: the stored nodes are in the table after the first refresh.
    let addr = nut.addr;
    let mut again = Nut::new(1, addr, Config::default());
    again.disc = rebuild(&nut, snapshot.clone(), 3600);
    again.tick();
    for p in &peers {
        assert!(again.disc.table().contains(&p.key.id()));
    }
    // Two days later they have expired and the table starts empty.
    let mut late = Nut::new(1, addr, Config::default());
    late.disc = rebuild(&nut, snapshot, 2 * 24 * 3600);
    late.tick();
    assert!(late.disc.table().is_empty());
    assert!(late.disc.db_snapshot().nodes.is_empty());
}

/// A fresh machine with `nut`'s key and record, restored from `snapshot`, `later_secs` after
/// `nut`'s current wall-clock time (its virtual clock restarts at zero, as after a reboot).
fn rebuild(
    nut: &Nut,
    snapshot: devp2p_core::discv4::NodeDbSnapshot,
    later_secs: u64,
) -> devp2p_core::discv4::Discovery<rand_chacha::ChaCha20Rng> {
    use rand_core::SeedableRng;
    devp2p_core::discv4::Discovery::new(
        nut.key.clone(),
        nut.disc.local_record().clone(),
        Config::default(),
        snapshot,
        rand_chacha::ChaCha20Rng::seed_from_u64(5),
        devp2p_core::Instant::from_millis(0),
        nut.unix() + later_secs,
    )
}

#[test]
fn a_ping_flood_from_fresh_keys_is_ponged_but_pinged_back_only_up_to_the_cap() {
    use devp2p_core::discv4::MAX_PENDING_INBOUND_BONDS;
    let mut nut = Nut::bootstrapped();
    let friend = bonded_peers(&mut nut, 1, 200).remove(0);
    let flood = MAX_PENDING_INBOUND_BONDS + 50;
    let (mut pongs, mut pings) = (0, 0);
    for i in 0..flood {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
        seed[31] = 1;
        let peer = Peer {
            key: NodeSecretKey::from_bytes(&seed).unwrap(),
            addr: format!("127.1.{}.{}:30303", i / 200, i % 200 + 1)
                .parse()
                .unwrap(),
        };
        for (_, d) in nut.deliver(peer.addr, &peer.ping(&nut, nut.unix() + 20).0) {
            match d.packet {
                Packet::Pong(_) => pongs += 1,
                Packet::Ping(_) => pings += 1,
                _ => {}
            }
        }
    }
    assert_eq!(pongs, flood);
    assert_eq!(pings, MAX_PENDING_INBOUND_BONDS);
    // Once those requests time out, new pingers are pinged back again, and the bonded
    // friend kept its place throughout.
    nut.advance_with(600, |_, _, _| vec![]);
    let late = Peer::new(201, "127.0.0.99:30303");
    let out = nut.deliver(late.addr, &late.ping(&nut, nut.unix() + 20).0);
    assert_eq!(out.len(), 2, "{out:?} {:?}", nut.disc.drop_counts());
    assert!(nut.disc.table().contains(&friend.key.id()));
}

#[test]
fn neighbors_entries_failing_the_checks_are_dropped_and_the_rest_are_used() {
    let mut nut = Nut::bootstrapped();
    let peer = bonded_peers(&mut nut, 1, 210).remove(0);
    let good = Peer::new(211, "127.0.0.50:30303");
    let entry = |ip: &str, udp: u16, key: [u8; 64]| Neighbor {
        endpoint: Endpoint {
            ip: Some(ip.parse().unwrap()),
            udp,
            tcp: udp,
        },
        key,
    };
    let mut off_curve = [0u8; 64];
    off_curve[63] = 1;
    let other = *Peer::new(212, "127.0.0.51:1").key.public().raw();
    let nodes = vec![
        entry("127.0.0.50", 30303, *good.key.public().raw()), // fine
        entry("127.0.0.51", 1024, other),                     // port too low
        entry("192.0.2.1", 30303, other),                     // TEST-NET-1
        entry("0.0.0.0", 30303, other),                       // unspecified
        entry("224.0.0.1", 30303, other),                     // multicast
        entry("127.0.0.52", 30303, off_curve),                // not a key
    ];
    let (now, unix) = (nut.now, nut.unix());
    nut.disc.start_lookup(now, unix, *good.key.public().raw());
    let mut answered = 0;
    nut.advance_with(2_000, |nut, to, d| match &d.packet {
        Packet::Ping(_) if to == peer.addr => vec![peer.pong(nut, d.hash)],
        Packet::FindNode(_) if to == peer.addr => {
            answered += 1;
            vec![
                peer.packet(&Packet::Neighbors(Neighbors {
                    nodes: nodes.clone(),
                    expiration: nut.unix() + 20,
                }))
                .0,
            ]
        }
        _ => vec![],
    });
    assert_eq!(answered, 1);
    assert_eq!(nut.disc.drop_count(DropReason::InvalidNeighbor), 5);
    assert!(nut.disc.table().contains(&good.key.id()));
    assert!(nut
        .events
        .iter()
        .any(|e| matches!(e, Event::NodeSeen(n) if n.id() == good.key.id())));
    // One packet with fewer than 16 entries, then the deadline: a success, not a failure.
    let db = nut.disc.db_snapshot();
    let rec = db.endpoints.iter().find(|e| e.id == peer.key.id()).unwrap();
    assert_eq!(rec.record.find_failures, 0);
    assert!(nut
        .events
        .iter()
        .any(|e| matches!(e, Event::LookupFinished { nodes, .. } if nodes.iter().any(|n| n.id() == good.key.id()))));
}

#[test]
fn a_node_starts_with_a_self_lookup_via_its_bootnode_and_recontacts_it_on_refresh() {
    let boot = Peer::new(220, "127.0.0.2:30303");
    let boot_node = Node::new(*boot.key.public(), boot.addr.ip(), 30303, 30303);
    let mut config = Config::default();
    config.bootnodes = vec![boot_node];
    let mut nut = Nut::new(3, "127.0.0.1:30303".parse().unwrap(), config);
    let own_key = *nut.key.public().raw();
    // The bootnode answers pings, pings back (completing its side of the proof) and answers
    // FindNode with nothing.
    let mut targets = Vec::new();
    let responder = |nut: &Nut, to: SocketAddr, d: &Decoded, targets: &mut Vec<[u8; 64]>| {
        if to != boot.addr {
            return vec![];
        }
        match &d.packet {
            Packet::Ping(_) => vec![boot.pong(nut, d.hash), boot.ping(nut, nut.unix() + 20).0],
            Packet::FindNode(f) => {
                targets.push(f.target);
                vec![
                    boot.packet(&Packet::Neighbors(Neighbors {
                        nodes: vec![],
                        expiration: nut.unix() + 20,
                    }))
                    .0,
                ]
            }
            _ => vec![],
        }
    };
    nut.advance_with(5_000, |n, to, d| responder(n, to, d, &mut targets));
    assert!(nut.disc.is_bootstrapped());
    assert!(nut.events.contains(&Event::Bootstrapped));
    assert_eq!(
        targets.first(),
        Some(&own_key),
        "the first lookup is for ourselves"
    );
    assert!(targets.len() >= 2, "then random lookups: {}", targets.len());

    // The bootnode goes silent and is dropped by revalidation ...
    nut.advance_with(60_000, |_, _, _| vec![]);
    assert!(!nut.disc.table().contains(&boot.key.id()));
    // ... and the next refresh, within 30 minutes, brings it back.
    let sent = nut.advance_with(30 * 60 * 1000, |_, _, _| vec![]);
    let pings_to_boot = sent
        .iter()
        .filter(|(to, d)| *to == boot.addr && matches!(d.packet, Packet::Ping(_)))
        .count();
    assert!(pings_to_boot >= 1);
}

#[test]
fn many_unanswered_requests_in_a_row_raise_a_clock_skew_suspicion_at_most_every_ten_minutes() {
    use devp2p_core::discv4::CLOCK_SKEW_TIMEOUT_THRESHOLD;
    let mut nut = Nut::bootstrapped();
    let _peers = bonded_peers(&mut nut, 40, 160);
    let skews = |nut: &Nut| {
        nut.events
            .iter()
            .filter(|e| matches!(e, Event::ClockSkewSuspected { .. }))
            .count()
    };
    // Everybody has gone quiet (as happens when our clock is far off): lookups time out.
    for _ in 0..4 {
        let (now, unix) = (nut.now, nut.unix());
        nut.disc.start_random_lookup(now, unix);
        nut.advance_with(2_000, |_, _, _| vec![]);
    }
    assert_eq!(skews(&nut), 1);
    let Some(Event::ClockSkewSuspected {
        consecutive_timeouts,
    }) = nut
        .events
        .iter()
        .find(|e| matches!(e, Event::ClockSkewSuspected { .. }))
    else {
        unreachable!()
    };
    assert!(*consecutive_timeouts > CLOCK_SKEW_TIMEOUT_THRESHOLD);
    // More silence within ten minutes: no second report.
    for _ in 0..4 {
        let (now, unix) = (nut.now, nut.unix());
        nut.disc.start_random_lookup(now, unix);
        nut.advance_with(2_000, |_, _, _| vec![]);
    }
    assert_eq!(skews(&nut), 1);
}

#[test]
fn answered_requests_keep_the_clock_above_suspicion() {
    let mut nut = Nut::bootstrapped();
    let peers = bonded_peers(&mut nut, 40, 160);
    nut.advance_with(10 * 60 * 1000, pong_only(&peers));
    assert!(!nut
        .events
        .iter()
        .any(|e| matches!(e, Event::ClockSkewSuspected { .. })));
}

#[test]
fn net_restrict_keeps_nodes_outside_the_allowed_networks_out() {
    let allowed: devp2p_core::netlist::NetList = "127.0.0.0/24".parse().unwrap();
    let outside_boot = Peer::new(230, "127.0.5.1:30303");
    let mut config = Config::default();
    config.net_restrict = Some(allowed);
    config.bootnodes = vec![Node::new(
        *outside_boot.key.public(),
        outside_boot.addr.ip(),
        30303,
        30303,
    )];
    let mut nut = Nut::new(4, "127.0.0.1:30303".parse().unwrap(), config);
    nut.tick();
    assert!(
        !nut.disc.table().contains(&outside_boot.key.id()),
        "a bootnode outside NetRestrict is skipped"
    );
    let peer = bonded_peers(&mut nut, 1, 231).remove(0);
    let inside = Peer::new(232, "127.0.0.60:30303");
    let outside = Peer::new(233, "127.0.9.60:30303");
    let nodes: Vec<Neighbor> = [&inside, &outside]
        .iter()
        .map(|p| Neighbor {
            endpoint: p.endpoint(),
            key: *p.key.public().raw(),
        })
        .collect();
    let (now, unix) = (nut.now, nut.unix());
    nut.disc.start_lookup(now, unix, [3; 64]);
    nut.advance_with(2_000, |nut, to, d| match &d.packet {
        Packet::Ping(_) if to == peer.addr => vec![peer.pong(nut, d.hash)],
        Packet::FindNode(_) if to == peer.addr => vec![
            peer.packet(&Packet::Neighbors(Neighbors {
                nodes: nodes.clone(),
                expiration: nut.unix() + 20,
            }))
            .0,
        ],
        _ => vec![],
    });
    assert!(nut.disc.table().contains(&inside.key.id()));
    assert!(!nut.disc.table().contains(&outside.key.id()));
    assert_eq!(nut.disc.drop_count(DropReason::InvalidNeighbor), 1);
}
