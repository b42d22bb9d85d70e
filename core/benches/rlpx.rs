//! RLPx benchmarks, each reported as a ratio to its floor measured in the same run.
//!
//! * Frames: seal + open of one frame at 64 B, 1 KiB, 16 KiB and 1 MiB, against the bare cost
//!   of the same bytes through the primitives: AES-256-CTR over header and padded body, the two
//!   single-block AES steps of the MAC, the Keccak-256 absorption of header seed, ciphertext and
//!   frame seed, and the three digests the MAC chain needs per frame -- all done twice, once
//!   for each side.
//! * Handshakes: a full initiator + recipient exchange, against the secp256k1 operations it
//!   needs: 4 key generations, 8 ECDHs, 1 signature and 1 recovery.
//!
//! Codec and floor runs are interleaved in short rounds and the ratio is the median of the
//! per-round ratios, so drift on a shared machine hits both sides alike. A ratio of 1.00 means
//! the codec costs exactly what its primitives cost; above 0.95 is the target.
//!
//! Run: `cargo bench -p devp2p-core --bench rlpx` (add `-- --quick` for a short run).

mod common;

use std::hint::black_box;

use aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use devp2p_core::keccak::Keccak256;
use devp2p_core::rlpx::{FrameCodec, Handshake, Secrets};
use devp2p_core::NodeSecretKey;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use common::{compare, Config};

type Aes256Ctr = ctr::Ctr128BE<Aes256>;

fn codec_pair(rng: &mut ChaCha20Rng) -> (FrameCodec, FrameCodec, [u8; 32], [u8; 32]) {
    let mut aes = [0u8; 32];
    let mut mac = [0u8; 32];
    rng.fill_bytes(&mut aes);
    rng.fill_bytes(&mut mac);
    let mut s1 = Keccak256::new();
    s1.update(b"one direction");
    let mut s2 = Keccak256::new();
    s2.update(b"other direction");
    let a = Secrets {
        aes_secret: aes,
        mac_secret: mac,
        egress_mac: s1.clone(),
        ingress_mac: s2.clone(),
    };
    let b = Secrets {
        aes_secret: aes,
        mac_secret: mac,
        egress_mac: s2,
        ingress_mac: s1,
    };
    (FrameCodec::new(a), FrameCodec::new(b), aes, mac)
}

/// The primitives' cost for one frame of `body_len` padded body bytes on one side.
struct FrameFloor {
    ctr: Aes256Ctr,
    block: Aes256,
    sponge: Keccak256,
    buf: Vec<u8>,
}

impl FrameFloor {
    fn new(aes: &[u8; 32], mac: &[u8; 32], body_len: usize) -> Self {
        Self {
            ctr: Aes256Ctr::new(aes.into(), &[0u8; 16].into()),
            block: Aes256::new(mac.into()),
            sponge: Keccak256::new(),
            buf: vec![0x5a; 16 + body_len],
        }
    }

    fn run(&mut self) {
        let (header, body) = self.buf.split_at_mut(16);
        self.ctr.apply_keystream(header);
        let mut seed = [0u8; 16];
        self.block.encrypt_block((&mut seed).into());
        self.sponge.update(&seed);
        black_box(self.sponge.digest());
        self.ctr.apply_keystream(body);
        self.sponge.update(body);
        let f = self.sponge.digest();
        let mut seed: [u8; 16] = f[..16].try_into().unwrap();
        self.block.encrypt_block((&mut seed).into());
        self.sponge.update(&seed);
        black_box(self.sponge.digest());
    }
}

fn bench_frames(cfg: &Config, rng: &mut ChaCha20Rng) {
    println!(
        "frame seal + open, vs the bare AES-CTR + AES block + Keccak-256 cost of the same bytes"
    );
    println!(
        "{:>9} {:>12} {:>12} {:>10} {:>7}",
        "payload", "codec ns", "floor ns", "codec MB/s", "ratio"
    );
    for size in [64usize, 1024, 16 * 1024, 1024 * 1024] {
        let (mut a, mut b, aes, mac) = codec_pair(rng);
        let mut payload = vec![0u8; size];
        rng.fill_bytes(&mut payload);
        let mut wire = Vec::with_capacity(FrameCodec::frame_len(0x10, size));
        let ours = || {
            wire.clear();
            a.encode(0x10, black_box(&payload), &mut wire).unwrap();
            let (used, frame) = b.decode(&wire).unwrap();
            black_box((used, frame.unwrap().payload.len()));
        };
        let body = (size + 1).div_ceil(16) * 16;
        let mut seal = FrameFloor::new(&aes, &mac, body);
        let mut open = FrameFloor::new(&aes, &mac, body);
        let floor = || {
            seal.run();
            open.run();
        };
        let c = compare(cfg, ours, floor);
        let (o, f, r) = (c.ours_ns, c.floor_ns, c.ratio);
        let mbs = size as f64 / o * 1e3;
        println!(
            "{:>9} {:>12.0} {:>12.0} {:>10.0} {:>7.3}",
            human(size),
            o,
            f,
            mbs,
            r
        );
    }
}

fn human(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

fn bench_handshake(cfg: &Config, rng: &mut ChaCha20Rng) {
    println!();
    println!("handshake (initiator + recipient), vs 4 keygen + 8 ECDH + 1 sign + 1 recover");
    let a = NodeSecretKey::generate(rng);
    let b = NodeSecretKey::generate(rng);
    let mut r1 = ChaCha20Rng::seed_from_u64(1);
    let ours = || {
        let mut init = Handshake::initiator(&a, b.public(), &mut r1);
        let mut resp = Handshake::recipient(&b, &mut r1);
        let auth = init.take_output();
        resp.read(&auth).unwrap();
        let ack = resp.take_output();
        init.read(&ack).unwrap();
        black_box((init.into_outcome().unwrap(), resp.into_outcome().unwrap()));
    };
    let mut r2 = ChaCha20Rng::seed_from_u64(2);
    let peer = b.public().secp();
    let floor = || {
        let mut keys = [secp256k1::SecretKey::from_secret_bytes([1; 32]).unwrap(); 4];
        for k in keys.iter_mut() {
            let mut bytes = [0u8; 32];
            r2.fill_bytes(&mut bytes);
            *k = secp256k1::SecretKey::from_secret_bytes(bytes).unwrap();
            black_box(secp256k1::PublicKey::from_secret_key(k));
        }
        for k in keys.iter().cycle().take(8) {
            black_box(secp256k1::ecdh::shared_secret_point(&peer, k));
        }
        let msg = secp256k1::Message::from_digest([7; 32]);
        let sig = secp256k1::ecdsa::RecoverableSignature::sign_ecdsa_recoverable(msg, &keys[0]);
        black_box(sig.recover_ecdsa(msg).unwrap());
    };
    let c = compare(cfg, ours, floor);
    let (o, f, r) = (c.ours_ns, c.floor_ns, c.ratio);
    println!(
        "{:>12} {:>12} {:>12} {:>7}",
        "ours us", "floor us", "per second", "ratio"
    );
    println!(
        "{:>12.1} {:>12.1} {:>12.0} {:>7.3}",
        o / 1e3,
        f / 1e3,
        1e9 / o,
        r
    );
}

fn bench_keccak(cfg: &Config) {
    println!();
    println!("Keccak-256 absorb of 1 MiB: keccak-asm (used by the codec and the floor) vs sha3");
    let data = vec![0xa5u8; 1 << 20];
    let asm = || {
        black_box(devp2p_core::keccak::keccak256(black_box(&data)));
    };
    let portable = || {
        use sha3::Digest;
        black_box(sha3::Keccak256::digest(black_box(&data)));
    };
    let c = compare(cfg, asm, portable);
    let (o, f, r) = (c.ours_ns, c.floor_ns, c.ratio);
    println!(
        "keccak-asm {:.0} us, sha3 {:.0} us: keccak-asm is {:.2}x faster",
        o / 1e3,
        f / 1e3,
        r
    );
}

fn main() {
    let cfg = Config::from_args();
    let mut rng = ChaCha20Rng::seed_from_u64(0xbe7c);
    bench_frames(&cfg, &mut rng);
    bench_handshake(&cfg, &mut rng);
    bench_keccak(&cfg);
}
