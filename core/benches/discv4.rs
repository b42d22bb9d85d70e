//! Discovery v4 benchmarks.
//!
//! * Packet decode + verify, against its floor measured in the same run: the two Keccak-256
//!   hashes every packet needs (the outer hash check and the signed digest) and one secp256k1
//!   public-key recovery, over the same packets. Rounds interleave ours and the floor and the
//!   ratio `floor / ours` is the median of per-round ratios; the target is 0.90 or better.
//! * The table: inserting a stream of 10 000 distinct nodes into an empty table, and
//!   closest-16 queries for random targets against the table that stream leaves behind.
//!
//! Run: `cargo bench -p devp2p-core --bench discv4` (add `-- --quick` for a short run).

mod common;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use common::{compare, median, Config};

use devp2p_core::discv4::wire::{self, Endpoint, Neighbor, Neighbors, Packet, Ping, Pong};
use devp2p_core::discv4::{Node, Table};
use devp2p_core::keccak::keccak256;
use devp2p_core::{Enr, NodeId, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::Message;

/// A realistic mix: Ping, Pong, FindNode, a full Neighbors (12), ENRRequest, ENRResponse.
fn packets(key: &NodeSecretKey) -> (Vec<Vec<u8>>, RecordFloor) {
    let e = Endpoint {
        ip: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))),
        udp: 30303,
        tcp: 30303,
    };
    let record = Enr::builder()
        .ip4(Ipv4Addr::new(10, 1, 2, 3))
        .udp4(30303)
        .tcp4(30303)
        .sign(key)
        .unwrap();
    let record_floor = RecordFloor::of(&record);
    let exp = 1_800_000_000;
    let pkts = [
        Packet::Ping(Ping {
            version: 4,
            from: e,
            to: e,
            expiration: exp,
            enr_seq: Some(3),
        }),
        Packet::Pong(Pong {
            to: e,
            ping_hash: [7; 32],
            expiration: exp,
            enr_seq: Some(3),
        }),
        Packet::FindNode(wire::FindNode {
            target: [9; 64],
            expiration: exp,
        }),
        Packet::Neighbors(Neighbors {
            nodes: vec![
                Neighbor {
                    endpoint: e,
                    key: *key.public().raw()
                };
                12
            ],
            expiration: exp,
        }),
        Packet::EnrRequest(wire::EnrRequest { expiration: exp }),
        Packet::EnrResponse(wire::EnrResponse {
            request_hash: [1; 32],
            record,
        }),
    ]
    .iter()
    .map(|p| wire::encode(p, key).0)
    .collect();
    (pkts, record_floor)
}

/// What verifying an embedded record costs at least: its signed content, signature and key.
struct RecordFloor {
    content: Vec<u8>,
    signature: [u8; 64],
    key: [u8; 33],
}

impl RecordFloor {
    fn of(record: &Enr) -> Self {
        // The signed content is the record list minus its first element (the signature).
        let raw = record.as_bytes();
        let payload_start = if raw[0] <= 0xf7 {
            1
        } else {
            1 + usize::from(raw[0] - 0xf7)
        };
        let body = &raw[payload_start + 1 + 1 + 64..]; // b8 40 || 64-byte signature
        let mut content = Vec::new();
        let mut s = rlp::RlpStream::new();
        s.begin_unbounded_list();
        s.append_raw(body, 1);
        s.finalize_unbounded_list();
        content.extend_from_slice(&s.out());
        RecordFloor {
            content,
            signature: record.signature().try_into().unwrap(),
            key: record.public_key().compressed(),
        }
    }

    fn verify(&self) {
        let digest = keccak256(&self.content);
        let sig = secp256k1::ecdsa::Signature::from_compact(&self.signature).unwrap();
        let key = secp256k1::PublicKey::from_byte_array_compressed(self.key).unwrap();
        secp256k1::ecdsa::verify(&sig, Message::from_digest(digest), &key).unwrap();
    }
}

/// The floor: hash check, signed digest, recovery -- and for ENRResponse the record's own
/// signature check -- nothing else.
fn floor(p: &[u8], record: Option<&RecordFloor>) -> secp256k1::PublicKey {
    let ok = keccak256(&p[32..]) == p[..32];
    let digest = keccak256(&p[97..]);
    let recid = RecoveryId::try_from(i32::from(p[96])).unwrap();
    let sig = RecoverableSignature::from_compact(&p[32..96], recid).unwrap();
    assert!(ok);
    if let Some(r) = record {
        r.verify();
    }
    sig.recover_ecdsa(Message::from_digest(digest)).unwrap()
}

fn bench_decode(cfg: &Config) {
    let key = NodeSecretKey::from_bytes(&[5; 32]).unwrap();
    let (pkts, record) = packets(&key);
    let ours = || {
        for p in &pkts {
            black_box(wire::decode(black_box(p)).unwrap());
        }
    };
    let base = || {
        for p in &pkts {
            let rec = (p[97] == 6).then_some(&record);
            black_box(floor(black_box(p), rec));
        }
    };
    let c = compare(cfg, ours, base);
    let (o, b) = (
        c.ours_ns / pkts.len() as f64,
        c.floor_ns / pkts.len() as f64,
    );
    println!(
        "decode+verify: ours {:.0} ns/packet ({:.0}/s), floor {:.0} ns ({:.0}/s), ratio {:.3}",
        o,
        1e9 / o,
        b,
        1e9 / b,
        c.ratio
    );
}

fn bench_table(rounds: usize) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let local = NodeSecretKey::generate(&mut rng).id();
    let nodes: Vec<Node> = (0..10_000u32)
        .map(|i| {
            let k = NodeSecretKey::generate(&mut rng);
            let ip = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + (i << 8) + 1));
            Node::new(*k.public(), ip, 30303, 30303)
        })
        .collect();
    let now = devp2p_core::Instant::from_millis(0);
    let mut insert = Vec::new();
    let mut table = Table::new(local);
    for _ in 0..rounds {
        let start = Instant::now();
        table = Table::new(local);
        for n in &nodes {
            black_box(table.add_found(n.clone(), now));
        }
        insert.push(start.elapsed().as_nanos() as f64 / nodes.len() as f64);
    }
    let targets: Vec<NodeId> = (0..1000)
        .map(|_| {
            let mut t = [0u8; 32];
            rng.fill_bytes(&mut t);
            NodeId(t)
        })
        .collect();
    let mut query = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        for t in &targets {
            black_box(table.closest(t, 16, false));
        }
        query.push(start.elapsed().as_nanos() as f64 / targets.len() as f64);
    }
    let (i, q) = (median(&mut insert), median(&mut query));
    println!(
        "table: insert {:.0} ns ({:.0}/s) over a 10k-node stream; table then holds {} + {} replacements",
        i,
        1e9 / i,
        table.len(),
        (0..17).map(|b| table.replacements(b).len()).sum::<usize>()
    );
    println!("table: closest-16 {:.0} ns ({:.0}/s)", q, 1e9 / q);
}

fn main() {
    let cfg = Config::from_args();
    bench_decode(&cfg);
    bench_table(if cfg.rounds > 3 { 11 } else { 3 });
}
