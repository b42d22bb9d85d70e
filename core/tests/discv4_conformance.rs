//! Every behaviour of [PROTOCOL.md §7.11](devp2p_core::spec::protocol) (what go-ethereum's
//! `devp2p discv4 test` checks), driven through the public API under virtual time.

mod discv4_support;

use std::net::IpAddr;

use devp2p_core::discv4::wire::{
    self, Endpoint, EnrRequest, FindNode, Neighbor, Neighbors, Packet, Ping, Pong,
};
use devp2p_core::discv4::DropReason;
use devp2p_core::NodeId;
use discv4_support::{sealed, Nut, Peer};
use rlp::RlpStream;

fn ping_hash_of(out: &[(std::net::SocketAddr, wire::Decoded)]) -> Option<[u8; 32]> {
    out.iter()
        .find_map(|(_, d)| matches!(d.packet, Packet::Ping(_)).then_some(d.hash))
}

#[test]
fn a_ping_from_an_unbonded_node_gets_exactly_one_pong_and_one_ping_back() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(2, "127.0.0.2:40000");
    let (ping, hash) = peer.ping(&nut, nut.unix() + 20);
    let out = nut.deliver(peer.addr, &ping);
    assert_eq!(out.len(), 2, "{out:?}");
    let pongs: Vec<&Pong> = out
        .iter()
        .filter_map(|(to, d)| match &d.packet {
            Packet::Pong(p) if *to == peer.addr => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(pongs.len(), 1);
    assert_eq!(pongs[0].ping_hash, hash);
    assert_eq!(pongs[0].to.ip, Some(peer.addr.ip()));
    assert_eq!(pongs[0].to.udp, peer.addr.port());
    assert!(!wire::is_expired(pongs[0].expiration, nut.unix()));
    assert!(out
        .iter()
        .any(|(to, d)| *to == peer.addr && matches!(d.packet, Packet::Ping(_))));
    // All of it signed by the node under test.
    assert!(out.iter().all(|(_, d)| d.sender == *nut.key.public()));
}

#[test]
fn a_ping_with_bogus_endpoints_is_answered_at_the_datagram_source() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(3, "127.0.0.2:40001");
    let bogus = Endpoint {
        ip: Some("192.0.2.0".parse().unwrap()),
        udp: 9,
        tcp: 9,
    };
    let (ping, hash) = peer.packet(&Packet::Ping(Ping {
        version: 4,
        from: bogus,
        to: bogus,
        expiration: nut.unix() + 20,
        enr_seq: None,
    }));
    let out = nut.deliver(peer.addr, &ping);
    assert_eq!(out.len(), 2);
    for (to, d) in &out {
        assert_eq!(*to, peer.addr);
        if let Packet::Pong(p) = &d.packet {
            assert_eq!(p.ping_hash, hash);
            assert_eq!(p.to.ip, Some(peer.addr.ip()));
            assert_eq!(p.to.udp, peer.addr.port());
        }
    }
}

#[test]
fn a_ping_with_two_extra_elements_is_answered() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(4, "127.0.0.2:40002");
    let mut s = RlpStream::new_list(6);
    s.append(&4u64);
    for e in [peer.endpoint(), peer.endpoint()] {
        s.begin_list(3);
        s.append(&match e.ip.unwrap() {
            IpAddr::V4(v) => v.octets().to_vec(),
            IpAddr::V6(v) => v.octets().to_vec(),
        });
        s.append(&e.udp);
        s.append(&e.tcp);
    }
    s.append(&(nut.unix() + 20));
    s.append(&7u64); // lands in the enr-seq slot
    s.append(&"extra");
    let ping = sealed(&peer.key, 1, &s.out());
    let out = nut.deliver(peer.addr, &ping);
    assert_eq!(out.len(), 2);
    assert!(out.iter().any(|(_, d)| matches!(d.packet, Packet::Pong(_))));
}

#[test]
fn a_ping_with_past_expiration_in_the_signed_int64_sense_gets_no_reply() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(5, "127.0.0.2:40003");
    // The conformance suite's value: 2^64 - (now + 20), i.e. -(now + 20) as an i64.
    let past = 0u64.wrapping_sub(nut.unix() + 20);
    let (ping, _) = peer.ping(&nut, past);
    assert!(nut.deliver(peer.addr, &ping).is_empty());
    let (ping, _) = peer.ping(&nut, nut.unix() - 1);
    assert!(nut.deliver(peer.addr, &ping).is_empty());
    assert_eq!(nut.disc.drop_count(DropReason::Expired), 2);
}

#[test]
fn an_unknown_packet_type_gets_no_reply() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(6, "127.0.0.2:40004");
    let mut s = RlpStream::new_list(1);
    s.append(&(nut.unix() + 20));
    let p = sealed(&peer.key, 66, &s.out());
    assert!(nut.deliver(peer.addr, &p).is_empty());
    assert_eq!(nut.disc.drop_count(DropReason::UnknownType), 1);
}

#[test]
fn after_bonding_a_ping_with_a_wrong_from_still_gets_a_pong() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(7, "127.0.0.2:40005");
    peer.bond(&mut nut);
    let (ping, hash) = peer.packet(&Packet::Ping(Ping {
        version: 4,
        from: Endpoint {
            ip: Some("1.2.3.4".parse().unwrap()),
            udp: 1,
            tcp: 1,
        },
        to: peer.endpoint(),
        expiration: nut.unix() + 20,
        enr_seq: None,
    }));
    let out = nut.deliver(peer.addr, &ping);
    // Bonded now, so no ping back: just the Pong.
    assert_eq!(out.len(), 1);
    assert!(matches!(&out[0].1.packet, Packet::Pong(p) if p.ping_hash == hash));
}

#[test]
fn an_enr_request_after_bonding_gets_the_nodes_record() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(8, "127.0.0.2:40006");
    peer.bond(&mut nut);
    let (req, hash) = peer.packet(&Packet::EnrRequest(EnrRequest {
        expiration: nut.unix() + 20,
    }));
    let out = nut.deliver(peer.addr, &req);
    assert_eq!(out.len(), 1);
    let Packet::EnrResponse(resp) = &out[0].1.packet else {
        panic!("{out:?}")
    };
    assert_eq!(resp.request_hash, hash);
    assert_eq!(resp.record.node_id(), nut.key.id());
    assert_eq!(resp.record.udp_endpoint(), Some(nut.addr));
}

fn findnode(peer: &Peer, target: [u8; 64], expiration: u64) -> Vec<u8> {
    peer.packet(&Packet::FindNode(FindNode { target, expiration }))
        .0
}

#[test]
fn findnode_without_a_bond_gets_no_neighbors() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(9, "127.0.0.2:40007");
    let out = nut.deliver(peer.addr, &findnode(&peer, [1; 64], nut.unix() + 20));
    assert!(out
        .iter()
        .all(|(_, d)| !matches!(d.packet, Packet::Neighbors(_))));
    assert_eq!(nut.disc.drop_count(DropReason::Unbonded), 1);
}

#[test]
fn findnode_after_bonding_is_answered_by_neighbors_next() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(10, "127.0.0.2:40008");
    peer.bond(&mut nut);
    let out = nut.deliver(peer.addr, &findnode(&peer, [1; 64], nut.unix() + 20));
    assert!(!out.is_empty());
    assert!(matches!(out[0].1.packet, Packet::Neighbors(_)), "{out:?}");
    assert_eq!(out[0].0, peer.addr);
}

#[test]
fn an_expired_findnode_gets_no_neighbors() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(11, "127.0.0.2:40009");
    peer.bond(&mut nut);
    let past = 0u64.wrapping_sub(nut.unix() + 20);
    assert!(nut
        .deliver(peer.addr, &findnode(&peer, [1; 64], past))
        .is_empty());
}

#[test]
fn unsolicited_neighbors_are_not_inserted_into_the_table() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(12, "127.0.0.2:40010");
    peer.bond(&mut nut);
    let planted = Peer::new(13, "127.0.0.3:30303");
    let (neighbors, _) = peer.packet(&Packet::Neighbors(Neighbors {
        nodes: vec![Neighbor {
            endpoint: planted.endpoint(),
            key: *planted.key.public().raw(),
        }],
        expiration: nut.unix() + 20,
    }));
    assert!(nut.deliver(peer.addr, &neighbors).is_empty());
    assert_eq!(nut.disc.drop_count(DropReason::Unsolicited), 1);
    let out = nut.deliver(
        peer.addr,
        &findnode(&peer, *planted.key.public().raw(), nut.unix() + 20),
    );
    let planted_id: NodeId = planted.key.id();
    for (_, d) in out {
        if let Packet::Neighbors(n) = d.packet {
            assert!(n.nodes.iter().all(|x| x.key != *planted.key.public().raw()));
        }
    }
    assert!(!nut.disc.table().contains(&planted_id));
}

#[test]
fn a_pong_with_the_wrong_hash_does_not_complete_a_bond() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(14, "127.0.0.2:40011");
    let (ping, _) = peer.ping(&nut, nut.unix() + 20);
    let out = nut.deliver(peer.addr, &ping);
    let real = ping_hash_of(&out).unwrap();
    let mut wrong = real;
    wrong[0] ^= 0xff;
    assert!(nut.deliver(peer.addr, &peer.pong(&nut, wrong)).is_empty());
    assert_eq!(nut.disc.drop_count(DropReason::Unsolicited), 1);
    let out = nut.deliver(peer.addr, &findnode(&peer, [1; 64], nut.unix() + 20));
    assert!(out
        .iter()
        .all(|(_, d)| !matches!(d.packet, Packet::Neighbors(_))));
}

#[test]
fn findnode_from_a_bonded_key_at_another_ip_gets_no_packet_at_all() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(15, "127.0.0.2:40012");
    peer.bond(&mut nut);
    let elsewhere = "127.0.0.3:40012".parse().unwrap();
    let out = nut.deliver(elsewhere, &findnode(&peer, [1; 64], nut.unix() + 20));
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn a_pong_after_the_500ms_deadline_is_unsolicited_and_proves_nothing() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(16, "127.0.0.2:40013");
    let (ping, _) = peer.ping(&nut, nut.unix() + 20);
    let out = nut.deliver(peer.addr, &ping);
    let h = ping_hash_of(&out).unwrap();
    nut.advance(501);
    assert!(nut.deliver(peer.addr, &peer.pong(&nut, h)).is_empty());
    assert_eq!(nut.disc.drop_count(DropReason::Unsolicited), 1);
    let out = nut.deliver(peer.addr, &findnode(&peer, [1; 64], nut.unix() + 20));
    assert!(out.is_empty());
}

#[test]
fn a_bonded_ping_adds_the_node_and_its_pong_from_the_same_ip_only() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(17, "127.0.0.2:40014");
    let (ping, _) = peer.ping(&nut, nut.unix() + 20);
    let out = nut.deliver(peer.addr, &ping);
    let h = ping_hash_of(&out).unwrap();
    // The right hash from the wrong IP does not match.
    assert!(nut
        .deliver("127.0.0.9:40014".parse().unwrap(), &peer.pong(&nut, h))
        .is_empty());
    assert!(!nut.disc.table().contains(&peer.key.id()));
    assert!(nut.deliver(peer.addr, &peer.pong(&nut, h)).is_empty());
    assert!(nut.disc.table().contains(&peer.key.id()));
}

#[test]
fn garbage_is_dropped_silently_and_counted_by_reason() {
    let mut nut = Nut::bootstrapped();
    let from = "127.0.0.2:1".parse().unwrap();
    assert!(nut.deliver(from, &[0u8; 10]).is_empty());
    assert!(nut.deliver(from, &[0u8; 200]).is_empty());
    assert!(nut.deliver(from, &[0u8; 2000]).is_empty());
    let peer = Peer::new(18, "127.0.0.2:40015");
    assert!(nut.deliver(from, &sealed(&peer.key, 1, &[0xc1])).is_empty());
    assert_eq!(nut.disc.drop_count(DropReason::TooSmall), 1);
    assert_eq!(nut.disc.drop_count(DropReason::BadHash), 1);
    assert_eq!(nut.disc.drop_count(DropReason::TooLarge), 1);
    assert_eq!(nut.disc.drop_count(DropReason::Malformed), 1);
    // Our own key on a packet is ignored too.
    let (own, _) = wire::encode(
        &Packet::EnrRequest(EnrRequest {
            expiration: nut.unix() + 20,
        }),
        &nut.key,
    );
    assert!(nut.deliver(from, &own).is_empty());
    assert_eq!(nut.disc.drop_count(DropReason::FromSelf), 1);
}

#[test]
fn an_enr_request_without_a_bond_gets_no_reply() {
    let mut nut = Nut::bootstrapped();
    let peer = Peer::new(19, "127.0.0.2:40016");
    let (req, _) = peer.packet(&Packet::EnrRequest(EnrRequest {
        expiration: nut.unix() + 20,
    }));
    assert!(nut.deliver(peer.addr, &req).is_empty());
    assert_eq!(nut.disc.drop_count(DropReason::Unbonded), 1);
    // After bonding from another IP only, still nothing for this one.
    let elsewhere = Peer {
        key: peer.key.clone(),
        addr: "127.0.0.3:40016".parse().unwrap(),
    };
    elsewhere.bond(&mut nut);
    assert!(nut.deliver(peer.addr, &req).is_empty());
    assert_eq!(nut.disc.drop_count(DropReason::Unbonded), 2);
}
