//! Discovery v5 wire benchmarks: packet decode + decrypt against the bare cost of the same
//! work through the primitives, measured in the same interleaved rounds (see `common`).
//!
//! * Ordinary packets (PING, PONG, FINDNODE, TALKREQ, NODES): `Packet::decode` + `open`,
//!   against AES-128-CTR unmasking of the header (key schedule included: the key is the
//!   recipient's id) and one AES-128-GCM open under a session key set up beforehand, as a
//!   session holds it; for NODES also what verifying its records cannot avoid (Keccak-256 of
//!   each record's content, parsing its compressed key, one ECDSA verification).
//! * Handshake packets: `Packet::decode` + `accept_handshake`, against unmasking, parsing the
//!   ephemeral key, one ECDH, HKDF-SHA256, SHA-256 of the id-signature input, parsing the
//!   signer's key and one ECDSA verification, setting up the GCM key and opening the message;
//!   with a record also the record's verification.
//!
//! Every case runs in many short alternated batches (see [`compare`]).
//!
//! Run: `cargo bench -p devp2p-core --bench discv5` (add `-- --quick` for a short run, and
//! any other argument to run only the cases whose names contain it, for a profiler).

mod common;

use std::hint::black_box;

use aes::cipher::BlockCipherEncrypt;
use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes128Gcm;
use common::{calibrate, median, time_per_call, Config};
use devp2p_core::discv5::packet::{
    encode_handshake, encode_message, Whoareyou, MAX_MESSAGE_PLAINTEXT,
};
use devp2p_core::discv5::{
    encode_whoareyou, FindNode, Message, Nodes, Packet, Ping, Pong, RequestId, SessionKeys, TalkReq,
};
use devp2p_core::keccak::keccak256;
use devp2p_core::{Enr, NodeSecretKey};
use secp256k1::Message as Digest;
use sha2::{Digest as _, Sha256};
use std::time::Duration;

const HEADER: usize = 16 + 23;
/// Rounds of a full run (`--quick` and `cargo test --benches` take the common config's).
const ROUNDS: usize = 61;
/// Pairs of batches (one of ours, one of the floor's, which goes first alternating) in a
/// round of [`compare`].
const PAIRS: usize = 64;
/// About how long one batch runs: far below a scheduler time slice, so that on a loaded
/// machine few batches are cut by another process, and both batches of a pair see the same
/// machine (the same load on the sibling hyperthread, the same clock speed).
const BATCH: Duration = Duration::from_micros(25);

/// The medians of a comparison: both sides' times and the ratio floor / ours, with the
/// middle half of the per-round ratios.
struct Comparison {
    ours_ns: f64,
    floor_ns: f64,
    ratio: f64,
    q1: f64,
    q3: f64,
}

/// Runs `ours` and `floor` in [`ROUNDS`] rounds of [`PAIRS`] pairs of short batches (about
/// 3 ms a round); a round's ratio is the median over its pairs, the figure the median of the
/// rounds' ratios. The common harness's 40 ms rounds suit work of microseconds; these
/// packets take a third of one, and on the loaded machine a 40 ms round of them was cut by
/// other processes so often that the figure moved by ±5 % from run to run.
fn compare(cfg: &Config, mut ours: impl FnMut(), mut floor: impl FnMut()) -> Comparison {
    let n_ours = calibrate(BATCH, &mut ours);
    let n_floor = calibrate(BATCH, &mut floor);
    let (mut o, mut fl, mut r) = (Vec::new(), Vec::new(), Vec::new());
    let rounds = if cfg.rounds > 3 { ROUNDS } else { cfg.rounds };
    for _ in 0..rounds {
        let (mut po, mut pf, mut pr) = (Vec::new(), Vec::new(), Vec::new());
        for pair in 0..PAIRS {
            let (a, b) = if pair % 2 == 0 {
                let a = time_per_call(n_ours, &mut ours);
                (a, time_per_call(n_floor, &mut floor))
            } else {
                let b = time_per_call(n_floor, &mut floor);
                (time_per_call(n_ours, &mut ours), b)
            };
            po.push(a);
            pf.push(b);
            pr.push(b / a);
        }
        o.push(median(&mut po));
        fl.push(median(&mut pf));
        r.push(median(&mut pr));
    }
    let ratio = median(&mut r);
    Comparison {
        ours_ns: median(&mut o),
        floor_ns: median(&mut fl),
        ratio,
        q1: r[r.len() / 4],
        q3: r[3 * r.len() / 4],
    }
}

/// The floor of one record: what verifying it cannot avoid.
struct RecordFloor {
    content: Vec<u8>,
    signature: [u8; 64],
    key: [u8; 33],
}

impl RecordFloor {
    fn of(record: &Enr) -> Self {
        let raw = record.as_bytes();
        let payload_start = if raw[0] <= 0xf7 {
            1
        } else {
            1 + usize::from(raw[0] - 0xf7)
        };
        let body = &raw[payload_start + 2 + 64..]; // b8 40 || 64-byte signature
        let mut s = rlp::RlpStream::new();
        s.begin_unbounded_list();
        s.append_raw(body, 1);
        s.finalize_unbounded_list();
        RecordFloor {
            content: s.out().to_vec(),
            signature: record.signature().try_into().unwrap(),
            key: record.public_key().compressed(),
        }
    }

    fn verify(&self) {
        let digest = keccak256(&self.content);
        let sig = secp256k1::ecdsa::Signature::from_compact(&self.signature).unwrap();
        let key = secp256k1::PublicKey::from_byte_array_compressed(self.key).unwrap();
        secp256k1::ecdsa::verify(&sig, Digest::from_digest(digest), &key).unwrap();
    }
}

/// AES-128-CTR over the header after the IV: the key schedule, the counter blocks encrypted
/// in one batch straight through the block cipher (faster than `ctr`'s stream wrapper), XOR.
fn unmask(local: &[u8; 32], datagram: &[u8], header_len: usize, buf: &mut [u8]) {
    let key: [u8; 16] = local[..16].try_into().unwrap();
    let iv = u128::from_be_bytes(datagram[..16].try_into().unwrap());
    buf[..header_len].copy_from_slice(&datagram[..header_len]);
    let cipher = aes::Aes128::new(&key.into());
    let n = (header_len - 16).div_ceil(16);
    // No more keystream space than the header needs: an ordinary packet's fits 4 blocks.
    let mut small = [aes::Block::default(); 4];
    let mut large;
    let ks: &mut [aes::Block] = if n <= small.len() {
        &mut small[..n]
    } else {
        large = [aes::Block::default(); 32];
        &mut large[..n]
    };
    for (i, b) in ks.iter_mut().enumerate() {
        *b = iv.wrapping_add(i as u128).to_be_bytes().into();
    }
    cipher.encrypt_blocks(ks);
    for (d, k) in buf[16..header_len]
        .iter_mut()
        .zip(ks.iter().flat_map(|b| b.iter()))
    {
        *d ^= k;
    }
}

fn gcm_open(cipher: &Aes128Gcm, nonce: &[u8], aad: &[u8], sealed: &[u8], out: &mut [u8]) {
    let (ct, tag) = sealed.split_at(sealed.len() - 16);
    let nonce: [u8; 12] = nonce.try_into().unwrap();
    let tag: [u8; 16] = tag.try_into().unwrap();
    cipher
        .decrypt_inout_detached(
            &nonce.into(),
            aad,
            InOutBuf::new(ct, &mut out[..ct.len()]).unwrap(),
            &tag.into(),
        )
        .unwrap();
}

fn records(n: u8) -> Vec<Enr> {
    (1..=n)
        .map(|i| {
            let key = NodeSecretKey::from_bytes(&[i; 32]).unwrap();
            Enr::builder()
                .seq(1_700_000_000_000 + u64::from(i))
                .ip4([10, 1, 2, i].into())
                .udp4(30303)
                .tcp4(30303)
                .sign(&key)
                .unwrap()
        })
        .collect()
}

fn bench_ordinary(cfg: &Config) {
    let (a, b) = (
        NodeSecretKey::from_bytes(&[0xa1; 32]).unwrap(),
        NodeSecretKey::from_bytes(&[0xb2; 32]).unwrap(),
    );
    let (at_a, at_b) = (
        SessionKeys::new([1; 16], [2; 16]),
        SessionKeys::new([2; 16], [1; 16]),
    );
    let id = RequestId::from_u64(0x0123_4567_89ab_cdef);
    let nodes = records(4);
    let cases: Vec<(&str, Message)> = vec![
        (
            "PING",
            Message::Ping(Ping {
                request_id: id,
                enr_seq: 1_700_000_000_000,
            }),
        ),
        (
            "PONG",
            Message::Pong(Pong {
                request_id: id,
                enr_seq: 1_700_000_000_000,
                recipient_ip: Some([203, 0, 113, 9].into()),
                recipient_port: 30303,
            }),
        ),
        (
            "FINDNODE [256, 255, 254]",
            Message::FindNode(FindNode {
                request_id: id,
                distances: vec![256, 255, 254],
            }),
        ),
        (
            "TALKREQ 512 B",
            Message::TalkReq(TalkReq {
                request_id: id,
                protocol: b"portal".to_vec(),
                request: vec![0x5a; 512],
            }),
        ),
        (
            "NODES, 4 records",
            Message::Nodes(Nodes {
                request_id: id,
                total: 1,
                records: nodes.clone(),
                invalid_records: 0,
            }),
        ),
    ];
    let read_cipher = Aes128Gcm::new(&[1u8; 16].into());
    let local = b.id().0;
    let floors: Vec<RecordFloor> = nodes.iter().map(RecordFloor::of).collect();
    println!("ordinary packet decode + open:");
    for (name, m) in &cases {
        if !wanted(name) {
            continue;
        }
        let mut d = Vec::new();
        encode_message(&mut d, &b.id(), &a.id(), &[7; 16], &[9; 12], &at_a.write, m).unwrap();
        let is_nodes = matches!(m, Message::Nodes(_));
        let ours = || {
            let p = Packet::decode(black_box(&b.id()), black_box(&d)).unwrap();
            black_box(p.open(&at_b.read).unwrap());
        };
        let mut buf = [0u8; 1280];
        let mut out = [0u8; 1280];
        let header_len = HEADER + 32;
        let mut floor = || {
            unmask(black_box(&local), black_box(&d), header_len, &mut buf);
            gcm_open(
                &read_cipher,
                &buf[25..37],
                &buf[..header_len],
                &d[header_len..],
                &mut out,
            );
            if is_nodes {
                for f in &floors {
                    f.verify();
                }
            }
            black_box(&out);
        };
        let c = compare(cfg, ours, &mut floor);
        println!(
            "  {name:<26} {:>4} B: ours {:>8.0} ns, floor {:>8.0} ns, ratio {:.3} (middle half {:.3}–{:.3})",
            d.len(),
            c.ours_ns,
            c.floor_ns,
            c.ratio,
            c.q1,
            c.q3
        );
        let mut plain = [0u8; MAX_MESSAGE_PLAINTEXT];
        let in_place = || {
            let p = Packet::decode(black_box(&b.id()), black_box(&d)).unwrap();
            black_box(p.open_in(&at_b.read, &mut plain).unwrap());
        };
        let c = compare(cfg, in_place, &mut floor);
        println!(
            "  {:<26} {:>4} B: ours {:>8.0} ns, floor {:>8.0} ns, ratio {:.3} (middle half {:.3}–{:.3})",
            "  in place (open_in)",
            d.len(),
            c.ours_ns,
            c.floor_ns,
            c.ratio,
            c.q1,
            c.q3
        );
    }
}

fn bench_handshake(cfg: &Config) {
    let (a, b) = (
        NodeSecretKey::from_bytes(&[0xa1; 32]).unwrap(),
        NodeSecretKey::from_bytes(&[0xb2; 32]).unwrap(),
    );
    let record_a = records(1).pop().unwrap();
    let record_a = Enr::builder()
        .seq(record_a.seq())
        .ip4([10, 1, 2, 1].into())
        .udp4(30303)
        .tcp4(30303)
        .sign(&a)
        .unwrap();
    let ping = Message::Ping(Ping {
        request_id: RequestId::from_u64(5),
        enr_seq: record_a.seq(),
    });
    let eph = NodeSecretKey::from_bytes(&[0xe3; 32]).unwrap();
    println!("handshake packet decode + accept:");
    for with_record in [false, true] {
        if !wanted(if with_record {
            "with record"
        } else {
            "without record"
        }) {
            continue;
        }
        let mut w = Vec::new();
        let whoareyou = Whoareyou {
            id_nonce: [4; 16],
            enr_seq: if with_record { 0 } else { record_a.seq() },
        };
        let challenge = encode_whoareyou(&mut w, &a.id(), &[3; 16], &[2; 12], &whoareyou);
        let mut d = Vec::new();
        encode_handshake(
            &mut d,
            &a,
            b.public(),
            &challenge,
            eph.secp(),
            with_record.then_some(&record_a),
            &[7; 16],
            &[9; 12],
            &ping,
        )
        .unwrap();
        let known = (!with_record).then_some(&record_a);
        let ours = || {
            let p = Packet::decode(black_box(&b.id()), black_box(&d)).unwrap();
            black_box(p.accept_handshake(&b, &challenge, known).unwrap());
        };
        let local = b.id().0;
        let header_len = Packet::decode(&b.id(), &d).unwrap().header().len();
        let record_floor = RecordFloor::of(&record_a);
        let signer = record_a.public_key().uncompressed();
        let mut buf = [0u8; 1280];
        let mut out = [0u8; 64];
        let mut floor = || {
            unmask(black_box(&local), black_box(&d), header_len, &mut buf);
            let auth = &buf[HEADER..header_len];
            let (sig, eph_key) = (&auth[34..98], &auth[98..131]);
            if with_record {
                record_floor.verify();
            }
            let eph = secp256k1::PublicKey::from_byte_array_compressed(eph_key.try_into().unwrap())
                .unwrap();
            let mut h = Sha256::new();
            h.update(b"discovery v5 identity proof");
            h.update(challenge);
            h.update(eph_key);
            h.update(local);
            let digest: [u8; 32] = h.finalize().into();
            let key = secp256k1::PublicKey::from_byte_array_uncompressed(signer).unwrap();
            let sig = secp256k1::ecdsa::Signature::from_compact(sig).unwrap();
            secp256k1::ecdsa::verify(&sig, Digest::from_digest(digest), &key).unwrap();
            let xy = secp256k1::ecdh::shared_secret_point(&eph, b.secp());
            let mut secret = [0u8; 33];
            secret[0] = 2 | (xy[63] & 1);
            secret[1..].copy_from_slice(&xy[..32]);
            let mut info = b"discovery v5 key agreement".to_vec();
            info.extend_from_slice(&auth[..32]);
            info.extend_from_slice(&local);
            let mut okm = [0u8; 32];
            hkdf::Hkdf::<Sha256>::new(Some(&challenge), &secret)
                .expand(&info, &mut okm)
                .unwrap();
            let key: [u8; 16] = okm[..16].try_into().unwrap();
            let cipher = Aes128Gcm::new(&key.into());
            gcm_open(
                &cipher,
                &buf[25..37],
                &buf[..header_len],
                &d[header_len..],
                &mut out,
            );
            black_box(&out);
        };
        let c = compare(cfg, ours, &mut floor);
        println!(
            "  {:<26} {:>4} B: ours {:>8.1} µs, floor {:>8.1} µs, ratio {:.3} (middle half {:.3}–{:.3})",
            if with_record {
                "with record"
            } else {
                "without record"
            },
            d.len(),
            c.ours_ns / 1e3,
            c.floor_ns / 1e3,
            c.ratio,
            c.q1,
            c.q3
        );
    }
}

/// Whether the case `name` runs: every case, unless arguments other than flags name some.
fn wanted(name: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

fn main() {
    let cfg = Config::from_args();
    bench_ordinary(&cfg);
    bench_handshake(&cfg);
}
