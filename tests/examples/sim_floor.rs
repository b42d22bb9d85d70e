//! What a simulated datagram cannot cost less than: the per-packet work every node does
//! (key checks and node ids, packet encoding and decoding under the simulated scheme), timed
//! in a loop. BENCHMARKS.md uses these figures to bound `devp2p sim` from below.
//!
//! `cargo run --release -p devp2p-tests --example sim_floor`

use devp2p_core::discv4::wire::{self, Endpoint, Neighbor, Neighbors, Packet, Ping};
use devp2p_core::{NodePublicKey, NodeSecretKey, SignatureScheme};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::hint::black_box;
use std::time::Instant;

/// Mean time of `f` over `n` calls.
fn time<F: FnMut()>(name: &str, n: u32, mut f: F) {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    println!("{name}: {:.0} ns", t.elapsed().as_nanos() as f64 / n as f64);
}

fn main() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let key = NodeSecretKey::generate(&mut rng)
        .with_signature_scheme(SignatureScheme::InsecureSimulation);
    let raw = *key.public().raw();
    time("keccak256(64 B)", 1_000_000, || {
        black_box(devp2p_core::keccak::keccak256(black_box(&raw)));
    });
    time(
        "NodePublicKey::from_raw (curve check + keccak)",
        1_000_000,
        || {
            black_box(NodePublicKey::from_raw(black_box(&raw)).unwrap());
        },
    );
    let e = Endpoint {
        ip: Some("11.0.0.1".parse().unwrap()),
        udp: 30303,
        tcp: 30303,
    };
    let ping = Packet::Ping(Ping {
        version: 4,
        from: e,
        to: e,
        expiration: 1_900_000_000,
        enr_seq: Some(1),
    });
    time("encode Ping (sim)", 1_000_000, || {
        black_box(wire::encode(black_box(&ping), &key));
    });
    let (bytes, _) = wire::encode(&ping, &key);
    time("decode Ping (sim)", 1_000_000, || {
        black_box(
            wire::decode_with(black_box(&bytes), SignatureScheme::InsecureSimulation).unwrap(),
        );
    });
    let nodes: Vec<Neighbor> = (0..12)
        .map(|i| Neighbor {
            endpoint: e,
            key: *NodeSecretKey::generate(&mut ChaCha20Rng::seed_from_u64(i))
                .public()
                .raw(),
        })
        .collect();
    let nb = Packet::Neighbors(Neighbors {
        nodes,
        expiration: 1_900_000_000,
    });
    time("encode Neighbors x12 (sim)", 200_000, || {
        black_box(wire::encode(black_box(&nb), &key));
    });
    let (bytes, _) = wire::encode(&nb, &key);
    time("decode Neighbors x12 (sim)", 200_000, || {
        black_box(
            wire::decode_with(black_box(&bytes), SignatureScheme::InsecureSimulation).unwrap(),
        );
    });
    if let Packet::Neighbors(n) = wire::decode_with(&bytes, SignatureScheme::InsecureSimulation)
        .unwrap()
        .packet
    {
        time("12 x NodePublicKey::from_raw", 200_000, || {
            for x in &n.nodes {
                black_box(NodePublicKey::from_raw(&x.key).unwrap());
            }
        });
    }
}
