//! The EIP-8 / geth discv4 packets from `vectors/discv4_packets_eip8.json`.

use std::net::IpAddr;

use devp2p_core::discv4::wire::{
    decode, encode, is_expired, Endpoint, EnrRequest, EnrResponse, FindNode, Neighbor, Neighbors,
    Packet, Ping, Pong, WireError, MAX_PACKET_SIZE,
};
use devp2p_core::{Enr, NodeSecretKey};
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors/discv4_packets_eip8.json")).unwrap()
}

fn packet(v: &Value, name: &str) -> Vec<u8> {
    hex::decode(v["packets"][name]["packet"].as_str().unwrap()).unwrap()
}

fn ep(v: &Value) -> Endpoint {
    Endpoint {
        ip: Some(v["ip"].as_str().unwrap().parse::<IpAddr>().unwrap()),
        udp: v["udp"].as_u64().unwrap() as u16,
        tcp: v["tcp"].as_u64().unwrap() as u16,
    }
}

fn hex32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

#[test]
fn every_packet_geth_accepts_decodes_to_its_published_fields_and_signer() {
    let v = vectors();
    let signer = v["signer_pubkey"].as_str().unwrap();
    for name in [
        "ping_geth_no_extra",
        "ping_v4_extra_eip8",
        "findnode_eip8",
        "neighbours_eip8",
    ] {
        let d = decode(&packet(&v, name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = &v["packets"][name]["decoded"];
        assert_eq!(d.sender.to_string(), signer, "{name}");
        assert_eq!(d.hash, hex32(&want["hash"]), "{name}");
        assert_eq!(d.packet.type_byte() as u64, want["type"].as_u64().unwrap());
        assert_eq!(d.packet.expiration(), want["expiration"].as_u64());
        match &d.packet {
            Packet::Ping(p) => {
                assert_eq!(p.version, want["version"].as_u64().unwrap());
                assert_eq!(p.from, ep(&want["from"]));
                assert_eq!(p.to, ep(&want["to"]));
            }
            Packet::FindNode(f) => {
                assert_eq!(hex::encode(f.target), want["target"].as_str().unwrap());
            }
            Packet::Neighbors(n) => {
                let nodes = want["nodes"].as_array().unwrap();
                assert_eq!(n.nodes.len(), nodes.len());
                for (got, w) in n.nodes.iter().zip(nodes) {
                    assert_eq!(got.endpoint, ep(w));
                    assert_eq!(hex::encode(got.key), w["id"].as_str().unwrap());
                }
            }
            other => panic!("{name}: unexpected {other:?}"),
        }
    }
}

#[test]
fn eip868_reads_the_first_extra_ping_element_as_the_enr_seq() {
    let v = vectors();
    let Packet::Ping(plain) = decode(&packet(&v, "ping_geth_no_extra")).unwrap().packet else {
        panic!()
    };
    assert_eq!(plain.enr_seq, None);
    let Packet::Ping(extra) = decode(&packet(&v, "ping_v4_extra_eip8")).unwrap().packet else {
        panic!()
    };
    assert_eq!(extra.enr_seq, Some(1));
}

#[test]
fn like_geth_we_reject_the_two_eip8_vectors_with_a_list_where_enr_seq_belongs() {
    // core/docs/PROTOCOL.md §7.10: EIP-8's "ping v555" and "pong" put a list in the slot EIP-868
    // later gave to the integer enr-seq. We follow current geth and refuse them (issue 4 decision),
    // so a node never answers a packet geth itself would drop.
    let v = vectors();
    for name in ["ping_v555_eip8", "pong_eip8"] {
        assert_eq!(
            decode(&packet(&v, name)).unwrap_err(),
            WireError::BadEnrSeq,
            "{name}"
        );
    }
}

#[test]
fn the_vectors_are_long_expired_and_expiry_is_signed() {
    let v = vectors();
    let d = decode(&packet(&v, "findnode_eip8")).unwrap();
    let exp = d.packet.expiration().unwrap();
    assert!(is_expired(exp, 1_700_000_000));
    assert!(!is_expired(exp, exp));
    // The conformance suite's "past" expiration: 2^64 - (now + 20) is negative as an i64.
    let now = 1_700_000_000u64;
    assert!(is_expired(u64::MAX - (now + 20) + 1, now));
    assert!(!is_expired(now + 20, now));
}

#[test]
fn a_flipped_byte_anywhere_fails_the_hash_and_size_limits_hold() {
    let v = vectors();
    let p = packet(&v, "neighbours_eip8");
    for i in [0, 40, 97, p.len() - 1] {
        let mut bad = p.clone();
        bad[i] ^= 1;
        assert_eq!(decode(&bad).unwrap_err(), WireError::BadHash, "byte {i}");
    }
    assert_eq!(decode(&p[..97]).unwrap_err(), WireError::TooSmall);
    let mut big = p.clone();
    big.resize(MAX_PACKET_SIZE + 1, 0);
    assert_eq!(decode(&big).unwrap_err(), WireError::TooLarge);
}

#[test]
fn each_packet_type_round_trips_through_encode_and_decode() {
    let key = NodeSecretKey::from_hex(vectors()["signing_key"].as_str().unwrap()).unwrap();
    let e4 = Endpoint {
        ip: Some("10.0.0.1".parse().unwrap()),
        udp: 30303,
        tcp: 30304,
    };
    let e6 = Endpoint {
        ip: Some("2001:db8::1".parse().unwrap()),
        udp: 1,
        tcp: 0,
    };
    let none = Endpoint {
        ip: None,
        udp: 0,
        tcp: 0,
    };
    let record = Enr::builder().udp4(30303).sign(&key).unwrap();
    let packets = [
        Packet::Ping(Ping {
            version: 4,
            from: none,
            to: e4,
            expiration: 1,
            enr_seq: Some(7),
        }),
        Packet::Pong(Pong {
            to: e6,
            ping_hash: [9; 32],
            expiration: u64::MAX,
            enr_seq: None,
        }),
        Packet::FindNode(FindNode {
            target: [3; 64],
            expiration: 5,
        }),
        Packet::Neighbors(Neighbors {
            nodes: vec![
                Neighbor {
                    endpoint: e4,
                    key: [1; 64]
                };
                3
            ],
            expiration: 6,
        }),
        Packet::EnrRequest(EnrRequest { expiration: 8 }),
        Packet::EnrResponse(EnrResponse {
            request_hash: [4; 32],
            record,
        }),
    ];
    for p in packets {
        let (bytes, hash) = encode(&p, &key);
        let d = decode(&bytes).unwrap();
        assert_eq!(d.packet, p);
        assert_eq!(d.hash, hash);
        assert_eq!(d.sender, *key.public());
    }
}

#[test]
fn twelve_ipv6_neighbors_with_maximal_fields_fit_the_packet_limit() {
    let key = NodeSecretKey::from_bytes(&[1u8; 32]).unwrap();
    let worst = Neighbor {
        endpoint: Endpoint {
            ip: Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap()),
            udp: u16::MAX,
            tcp: u16::MAX,
        },
        key: [0xff; 64],
    };
    let size = |n: usize| {
        encode(
            &Packet::Neighbors(Neighbors {
                nodes: vec![worst; n],
                expiration: u64::MAX,
            }),
            &key,
        )
        .0
        .len()
    };
    assert_eq!(size(12), 1205);
    assert_eq!(size(13), 1296);
}

/// A correctly hashed and signed datagram around arbitrary packet data.
fn sealed(key: &NodeSecretKey, ty: u8, body: &[u8]) -> Vec<u8> {
    use devp2p_core::keccak::keccak256_concat;
    let sig = key.sign_recoverable(&keccak256_concat(&[&[ty], body]));
    let hash = keccak256_concat(&[&sig, &[ty], body]);
    [&hash[..], &sig[..], &[ty], body].concat()
}

#[test]
fn an_unknown_packet_type_is_reported_as_such() {
    let key = NodeSecretKey::from_bytes(&[2u8; 32]).unwrap();
    assert_eq!(
        decode(&sealed(&key, 66, &[0xc1, 0x01])).unwrap_err(),
        WireError::UnknownType(66)
    );
}

#[test]
fn missing_fields_and_bad_lengths_are_typed_errors() {
    let key = NodeSecretKey::from_bytes(&[2u8; 32]).unwrap();
    assert_eq!(
        decode(&sealed(&key, 5, &[0xc0])).unwrap_err(),
        WireError::MissingField("expiration")
    );
    // FindNode with a 3-byte target.
    assert_eq!(
        decode(&sealed(&key, 3, &[0xc5, 0x83, 1, 2, 3, 0x01])).unwrap_err(),
        WireError::BadField("target")
    );
    // A port above 65535.
    let from = [0xc6, 0x80, 0x83, 1, 0, 0, 0x80];
    let body = [&[0xd0, 0x04][..], &from, &from, &[0x01]].concat();
    assert_eq!(
        decode(&sealed(&key, 1, &body)).unwrap_err(),
        WireError::BadField("udp port")
    );
}

quickcheck::quickcheck! {
    fn arbitrary_datagrams_never_panic(data: Vec<u8>) -> bool {
        let _ = decode(&data);
        true
    }

    fn arbitrary_signed_bodies_never_panic(ty: u8, body: Vec<u8>) -> bool {
        let key = NodeSecretKey::from_bytes(&[3u8; 32]).unwrap();
        let mut body = body;
        body.truncate(1100);
        let _ = decode(&sealed(&key, ty % 8, &body));
        true
    }
}
