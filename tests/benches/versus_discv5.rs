//! Side by side with sigp/discv5 0.12.0 (the Rust client Lighthouse and reth use), in one
//! process: receiving the same discv5 datagrams (written by our encoder) with our packet codec
//! and with sigp's, alternated in short batches.
//!
//! What each side does with one datagram, as a node does on receiving it:
//!
//! * ordinary packets (PING, PONG, FINDNODE, TALKREQ, NODES of 4 records): unmask and check
//!   the header, decrypt the message under the session's read key, decode it into an owned
//!   message (NODES: every record verified). Ours: `Packet::decode` + `Packet::open`, and in a
//!   second row `Packet::open_in` (decoded in place, borrowing the plaintext);
//! * handshake packets answering our WHOAREYOU, without and with the initiator's record:
//!   unmask, check the id-nonce signature, ECDH, derive the keys, decrypt and decode the PING
//!   inside. Ours: `Packet::decode` + `Packet::accept_handshake`.
//!
//! sigp's codec is crate-private except `packet::PacketKind::decode` (authdata), which is
//! called as it is. The private steps are done through the same crate calls, in the same
//! order, with the same copies, as discv5 0.12.0 makes them (file by file below:
//! `src/packet/mod.rs` `Packet::decode`, `src/handler/crypto/mod.rs` `decrypt_message`,
//! `verify_authentication_nonce`, `derive_keys_from_pubkey`, `src/handler/crypto/ecdh.rs`,
//! `src/rpc.rs` `Message::decode`): AES-128-CTR with a 64-bit counter (`ctr::Ctr64BE`) over
//! copies of the static header and the authdata; `Aes128Gcm::new` for every message and
//! `Aead::decrypt` into a new vector; the message decoded with `alloy-rlp`; records with the
//! `enr` crate (k256). What sigp's service does around the codec (the socket task, channels,
//! session lookups in an LRU cache, the filter) is left out on both sides.
//!
//! Every figure is the median of per-round ratios **ours / sigp** of packets per second; a
//! round is 64 pairs of batches of about 25 µs (which side goes first alternating), its ratio
//! the median over its pairs, so that both sides of a pair run on the same loaded machine.
//!
//! Run: `cargo bench -p devp2p-tests --bench versus_discv5` (a few seconds). Without
//! `--bench` (as `cargo test --benches` runs it) it checks that both sides read every datagram
//! alike and measures one round.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use aes::cipher::{KeyIvInit, StreamCipher};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes128Gcm;
use alloy_rlp::{Buf, Decodable, Header};
use devp2p_core::discv5::message::MAX_REQUEST_ID_SIZE;
use devp2p_core::discv5::packet::{
    encode_handshake, encode_message, encode_whoareyou, Whoareyou, MAX_MESSAGE_PLAINTEXT,
};
use devp2p_core::discv5::{
    FindNode, Message, Nodes, Packet, Ping, Pong, RequestId, SessionKeys, TalkReq,
};
use devp2p_core::{Enr, NodeSecretKey};
use enr::k256;

/// Rounds of a full run.
const ROUNDS: usize = 61;
/// Pairs of batches per round.
const PAIRS: usize = 64;
/// About how long a batch runs.
const BATCH: Duration = Duration::from_micros(25);

// ---- measuring --------------------------------------------------------------------------

fn time_per_call(n: u64, f: &mut impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// Calls for which `f` runs about `budget`.
fn calibrate(budget: Duration, f: &mut impl FnMut()) -> u64 {
    let mut n = 1u64;
    loop {
        let t = time_per_call(n, f) * n as f64;
        if t >= budget.as_nanos() as f64 / 4.0 || n >= 1 << 24 {
            return ((budget.as_nanos() as f64 * n as f64 / t) as u64).max(1);
        }
        n *= 4;
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Per-round ratios ours/sigp (of rates: sigp's time over ours) and both sides' median times.
struct Figure {
    ratios: Vec<f64>,
    ours_ns: f64,
    sigp_ns: f64,
}

impl Figure {
    /// `**median** | q1–q3 | min–max`.
    fn cells(&self) -> String {
        let mut r = self.ratios.clone();
        let m = median(&mut r);
        let n = r.len();
        format!(
            "**{m:.2}** | {:.2}–{:.2} | {:.2}–{:.2}",
            r[n / 4],
            r[3 * n / 4],
            r[0],
            r[n - 1]
        )
    }
}

fn versus(rounds: usize, mut ours: impl FnMut(), mut sigp: impl FnMut()) -> Figure {
    let (n_ours, n_sigp) = (calibrate(BATCH, &mut ours), calibrate(BATCH, &mut sigp));
    let (mut ratios, mut o, mut s) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (mut pr, mut po, mut ps) = (Vec::new(), Vec::new(), Vec::new());
        for pair in 0..PAIRS {
            let (a, b) = if pair % 2 == 0 {
                let a = time_per_call(n_ours, &mut ours);
                (a, time_per_call(n_sigp, &mut sigp))
            } else {
                let b = time_per_call(n_sigp, &mut sigp);
                (time_per_call(n_ours, &mut ours), b)
            };
            pr.push(b / a);
            po.push(a);
            ps.push(b);
        }
        ratios.push(median(&mut pr));
        o.push(median(&mut po));
        s.push(median(&mut ps));
    }
    Figure {
        ratios,
        ours_ns: median(&mut o),
        sigp_ns: median(&mut s),
    }
}

// ---- sigp's receive path, through the crates it uses ------------------------------------

/// sigp's masking cipher: AES-128-CTR with a 64-bit big-endian counter.
type SigpMasking = ctr::Ctr64BE<aes::Aes128>;

/// What sigp's `Packet::decode` returns: the packet (IV, nonce, kind, a copy of the message)
/// and the authenticated data, a new vector.
struct SigpPacket {
    nonce: [u8; 12],
    kind: discv5::packet::PacketKind,
    message: Vec<u8>,
    aad: Vec<u8>,
}

/// discv5 0.12.0 `Packet::decode`: each step as it takes it (copies included).
fn sigp_packet_decode(local_id: &[u8; 32], data: &[u8]) -> Result<SigpPacket, &'static str> {
    const IV: usize = 16;
    const STATIC: usize = 23;
    if data.len() > 1280 {
        return Err("too large");
    }
    if data.len() < IV + STATIC + 24 {
        return Err("too small");
    }
    let iv = data[..IV].to_vec();
    let key: [u8; 16] = local_id[..16].try_into().expect("16 bytes");
    let nonce: [u8; 16] = iv[..].try_into().expect("16 bytes");
    let mut cipher = SigpMasking::new(&key.into(), &nonce.into());
    let mut static_header = data[IV..IV + STATIC].to_vec();
    cipher.apply_keystream(&mut static_header);
    if static_header[..6] != *b"discv5" {
        return Err("protocol id");
    }
    if static_header[6..8] != [0, 1] {
        return Err("version");
    }
    let flag = static_header[8];
    let message_nonce: [u8; 12] = static_header[9..21].try_into().expect("12 bytes");
    let auth_size = usize::from(u16::from_be_bytes([static_header[21], static_header[22]]));
    // sigp copies the rest of the datagram to compare its length.
    let remaining = data[IV + STATIC..].to_vec();
    if auth_size > remaining.len() {
        return Err("authdata size");
    }
    let mut auth_data = data[IV + STATIC..IV + STATIC + auth_size].to_vec();
    cipher.apply_keystream(&mut auth_data);
    let kind = discv5::packet::PacketKind::decode(flag, &auth_data).map_err(|_| "authdata")?;
    let message = data[IV + STATIC + auth_size..].to_vec();
    if !message.is_empty() && kind.is_whoareyou() {
        return Err("bytes after a WHOAREYOU");
    }
    let mut aad = iv.to_vec();
    aad.extend_from_slice(&static_header);
    aad.extend_from_slice(&auth_data);
    Ok(SigpPacket {
        nonce: message_nonce,
        kind,
        message,
        aad,
    })
}

/// discv5 0.12.0 `handler::crypto::decrypt_message`: a GCM key set up for every message.
fn sigp_decrypt(key: &[u8; 16], p: &SigpPacket) -> Result<Vec<u8>, &'static str> {
    if p.message.len() < 16 {
        return Err("no room for a tag");
    }
    let aead = Aes128Gcm::new(key.into());
    let payload = Payload {
        msg: &p.message,
        aad: &p.aad,
    };
    aead.decrypt(&p.nonce.into(), payload)
        .map_err(|_| "decryption")
}

/// What sigp's `rpc::Message::decode` builds (its types are crate-private; these hold the
/// same owned fields).
#[derive(Debug, PartialEq)]
#[allow(dead_code)] // the fields are built to be measured, and compared in the check
enum SigpMessage {
    Ping {
        id: Vec<u8>,
        enr_seq: u64,
    },
    Pong {
        id: Vec<u8>,
        enr_seq: u64,
        ip: IpAddr,
        port: u16,
    },
    FindNode {
        id: Vec<u8>,
        distances: Vec<u64>,
    },
    Nodes {
        id: Vec<u8>,
        total: u64,
        nodes: Vec<discv5::Enr>,
    },
    Talk {
        id: Vec<u8>,
        protocol: Vec<u8>,
        request: Vec<u8>,
    },
}

/// discv5 0.12.0 `rpc::Message::decode` for the five message types measured, through
/// `alloy-rlp` and `enr` as it calls them.
fn sigp_message_decode(data: &[u8]) -> Result<SigpMessage, alloy_rlp::Error> {
    use alloy_rlp::{bytes::Bytes, Error};
    if data.len() < 3 {
        return Err(Error::InputTooShort);
    }
    let payload = &mut &data[1..];
    let header = Header::decode(payload)?;
    if !header.list || header.payload_length != payload.len() {
        return Err(Error::Custom("header"));
    }
    let id = Bytes::decode(payload)?.to_vec();
    if id.len() > MAX_REQUEST_ID_SIZE {
        return Err(Error::Custom("id"));
    }
    let done = |payload: &[u8]| match payload.is_empty() {
        true => Ok(()),
        false => Err(Error::Custom("Payload should be empty")),
    };
    Ok(match data[0] {
        1 => {
            let enr_seq = u64::decode(payload)?;
            done(payload)?;
            SigpMessage::Ping { id, enr_seq }
        }
        2 => {
            let enr_seq = u64::decode(payload)?;
            let ip = Bytes::decode(payload)?;
            let ip = match ip.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(&ip[..]).expect("4 bytes")),
                16 => {
                    let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&ip[..]).expect("16"));
                    match v6.to_ipv4() {
                        Some(v4) if !v6.is_loopback() => IpAddr::V4(v4),
                        _ => IpAddr::V6(v6),
                    }
                }
                _ => return Err(Error::Custom("ip")),
            };
            let port = u16::decode(payload)?;
            if port == 0 {
                return Err(Error::Custom("port"));
            }
            done(payload)?;
            SigpMessage::Pong {
                id,
                enr_seq,
                ip,
                port,
            }
        }
        3 => {
            let distances = Vec::<u64>::decode(payload)?;
            if distances.iter().any(|&d| d > 256) {
                return Err(Error::Custom("distance"));
            }
            done(payload)?;
            SigpMessage::FindNode { id, distances }
        }
        4 => {
            let total = u64::decode(payload)?;
            let header = Header::decode(payload)?;
            if !header.list {
                return Err(Error::Custom("header"));
            }
            let mut nodes = Vec::new();
            while !payload.is_empty() {
                let node = Header::decode(&mut &payload[..])?;
                if !node.list || node.length_with_payload() > payload.len() {
                    return Err(Error::Custom("record header"));
                }
                let record = discv5::Enr::decode(&mut &payload[..node.length_with_payload()])?;
                // sigp advances by the record's size, which `enr` finds by encoding it again.
                payload.advance(record.size());
                nodes.push(record);
            }
            done(payload)?;
            SigpMessage::Nodes { id, total, nodes }
        }
        5 => {
            let protocol = Bytes::decode(payload)?.to_vec();
            let request = Bytes::decode(payload)?.to_vec();
            done(payload)?;
            SigpMessage::Talk {
                id,
                protocol,
                request,
            }
        }
        _ => return Err(Error::Custom("type")),
    })
}

/// An ordinary packet through sigp's path.
fn sigp_receive(local_id: &[u8; 32], read_key: &[u8; 16], datagram: &[u8]) -> SigpMessage {
    let p = sigp_packet_decode(local_id, datagram).expect("sigp decodes our packet");
    let plain = sigp_decrypt(read_key, &p).expect("sigp decrypts our packet");
    sigp_message_decode(&plain).expect("sigp decodes our message")
}

/// A handshake packet through sigp's path: `Session::establish_from_challenge` (the record
/// picked, `verify_authentication_nonce`, `derive_keys_from_pubkey` with its k256 ECDH), then
/// the message decrypted and decoded.
fn sigp_accept_handshake(
    local: &k256::ecdsa::SigningKey,
    local_id: &[u8; 32],
    remote_id: &[u8; 32],
    challenge: &[u8],
    known: Option<&discv5::Enr>,
    datagram: &[u8],
) -> SigpMessage {
    use k256::ecdsa::signature::Verifier;
    use k256::elliptic_curve::sec1::ToSec1Point;
    let p = sigp_packet_decode(local_id, datagram).expect("sigp decodes our handshake");
    let discv5::packet::PacketKind::Handshake {
        id_nonce_sig,
        ephem_pubkey,
        enr_record,
        ..
    } = &p.kind
    else {
        panic!("not a handshake");
    };
    let record = match (enr_record.as_ref(), known) {
        (Some(new), Some(k)) if new.seq() <= k.seq() => k,
        (Some(new), _) => new,
        (None, Some(k)) => k,
        (None, None) => panic!("no record"),
    };
    let enr::CombinedPublicKey::Secp256k1(signer) = record.public_key() else {
        panic!("not a secp256k1 record");
    };
    // The signed input, built in a new vector; k256 hashes it with SHA-256 and verifies.
    let mut signed = b"discovery v5 identity proof".to_vec();
    signed.extend_from_slice(challenge);
    signed.extend_from_slice(ephem_pubkey);
    signed.extend_from_slice(local_id);
    let sig = k256::ecdsa::Signature::try_from(&id_nonce_sig[..]).expect("a signature");
    signer
        .verify(&signed, &sig)
        .expect("the id-nonce signature verifies");
    let eph = k256::ecdsa::VerifyingKey::from_sec1_bytes(ephem_pubkey).expect("a key");
    let shared =
        (k256::ProjectivePoint::from(eph.as_affine()) * **local.as_nonzero_scalar()).to_affine();
    let secret = shared.to_sec1_point(true).as_bytes().to_vec();
    let mut info = [0u8; 26 + 64];
    info[..26].copy_from_slice(b"discovery v5 key agreement");
    info[26..58].copy_from_slice(remote_id);
    info[58..].copy_from_slice(local_id);
    let mut okm = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(challenge), &secret)
        .expand(&info, &mut okm)
        .expect("32 bytes");
    let read_key: [u8; 16] = okm[..16].try_into().expect("16 bytes");
    let plain = sigp_decrypt(&read_key, &p).expect("sigp decrypts the handshake message");
    sigp_message_decode(&plain).expect("sigp decodes the handshake message")
}

// ---- the fixture ------------------------------------------------------------------------

fn records(n: u8) -> Vec<Enr> {
    (1..=n)
        .map(|i| {
            let key = NodeSecretKey::from_bytes(&[i; 32]).expect("a key");
            Enr::builder()
                .seq(1_700_000_000_000 + u64::from(i))
                .ip4([10, 1, 2, i].into())
                .udp4(30303)
                .tcp4(30303)
                .sign(&key)
                .expect("a record")
        })
        .collect()
}

/// The message sigp's path should find in our encoding of `m`.
fn as_sigp(m: &Message) -> SigpMessage {
    let id = m.request_id().as_bytes().to_vec();
    match m {
        Message::Ping(p) => SigpMessage::Ping {
            id,
            enr_seq: p.enr_seq,
        },
        Message::Pong(p) => SigpMessage::Pong {
            id,
            enr_seq: p.enr_seq,
            ip: p.recipient_ip.expect("an ip"),
            port: p.recipient_port,
        },
        Message::FindNode(f) => SigpMessage::FindNode {
            id,
            distances: f.distances.clone(),
        },
        Message::Nodes(n) => SigpMessage::Nodes {
            id,
            total: n.total.into(),
            nodes: n
                .records
                .iter()
                .map(|r| discv5::Enr::decode(&mut r.as_bytes()).expect("sigp reads our record"))
                .collect(),
        },
        Message::TalkReq(t) => SigpMessage::Talk {
            id,
            protocol: t.protocol.clone(),
            request: t.request.clone(),
        },
        Message::TalkResp(_) => unreachable!("not measured"),
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = if full { ROUNDS } else { 1 };
    let (a, b) = (
        NodeSecretKey::from_bytes(&[0xa1; 32]).expect("a key"),
        NodeSecretKey::from_bytes(&[0xb2; 32]).expect("a key"),
    );
    let b_sigp = k256::ecdsa::SigningKey::from_slice(&b.to_bytes()).expect("the same key");
    let (local, remote) = (b.id().0, a.id().0);
    let (read, write) = ([1u8; 16], [2u8; 16]);
    let (at_a, at_b) = (SessionKeys::new(read, write), SessionKeys::new(write, read));
    let id = RequestId::from_u64(0x0123_4567_89ab_cdef);
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
            "TALKREQ, 512-byte request",
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
                records: records(4),
                invalid_records: 0,
            }),
        ),
    ];
    println!(
        "## Versus sigp/discv5 0.12.0: {rounds} rounds of {PAIRS} pairs of ~{} µs batches, ratio = median of per-round ours/sigp packets per second\n",
        BATCH.as_micros()
    );
    println!("| packet | bytes | ours ns | sigp ns | ours/sigp | middle half | range |");
    println!("|---|---|---|---|---|---|---|");
    let row = |name: &str, len: usize, f: &Figure| {
        println!(
            "| {name} | {len} | {:.0} | {:.0} | {} |",
            f.ours_ns,
            f.sigp_ns,
            f.cells()
        );
    };
    for (name, m) in &cases {
        let mut d = Vec::new();
        encode_message(&mut d, &b.id(), &a.id(), &[7; 16], &[9; 12], &at_a.write, m).expect("fits");
        // Both sides read the same message, or the figure would mean nothing.
        let ours = Packet::decode(&b.id(), &d).expect("ours").open(&at_b.read);
        assert_eq!(ours.as_ref(), Ok(m));
        assert_eq!(sigp_receive(&local, &read, &d), as_sigp(m), "{name}");
        let f = versus(
            rounds,
            || {
                let p = Packet::decode(black_box(&b.id()), black_box(&d)).expect("ours");
                black_box(p.open(&at_b.read).expect("opens"));
            },
            || {
                black_box(sigp_receive(black_box(&local), &read, black_box(&d)));
            },
        );
        row(name, d.len(), &f);
        let mut plain = [0u8; MAX_MESSAGE_PLAINTEXT];
        let f = versus(
            rounds,
            || {
                let p = Packet::decode(black_box(&b.id()), black_box(&d)).expect("ours");
                black_box(p.open_in(&at_b.read, &mut plain).expect("opens"));
            },
            || {
                black_box(sigp_receive(black_box(&local), &read, black_box(&d)));
            },
        );
        row(&format!("{name}, ours in place (`open_in`)"), d.len(), &f);
    }

    // Handshakes: B challenged A; A answers with a PING, with or without its record.
    let record_a = Enr::builder()
        .seq(1_700_000_000_001)
        .ip4([10, 1, 2, 1].into())
        .udp4(30303)
        .tcp4(30303)
        .sign(&a)
        .expect("a record");
    let known_sigp = discv5::Enr::decode(&mut record_a.as_bytes()).expect("sigp reads it");
    let ping = Message::Ping(Ping {
        request_id: RequestId::from_u64(5),
        enr_seq: record_a.seq(),
    });
    let eph = NodeSecretKey::from_bytes(&[0xe3; 32]).expect("a key");
    for with_record in [false, true] {
        let whoareyou = Whoareyou {
            id_nonce: [4; 16],
            enr_seq: if with_record { 0 } else { record_a.seq() },
        };
        let challenge = encode_whoareyou(&mut Vec::new(), &a.id(), &[3; 16], &[2; 12], &whoareyou);
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
        .expect("fits");
        let (known, known_s) = match with_record {
            true => (None, None),
            false => (Some(&record_a), Some(&known_sigp)),
        };
        let accepted = Packet::decode(&b.id(), &d)
            .expect("ours")
            .accept_handshake(&b, &challenge, known)
            .expect("accepted");
        assert_eq!(accepted.message, ping);
        let sigp = || sigp_accept_handshake(&b_sigp, &local, &remote, &challenge, known_s, &d);
        assert_eq!(sigp(), as_sigp(&ping));
        let f = versus(
            rounds,
            || {
                let p = Packet::decode(black_box(&b.id()), black_box(&d)).expect("ours");
                black_box(p.accept_handshake(&b, &challenge, known).expect("accepted"));
            },
            || {
                black_box(sigp());
            },
        );
        let name = match with_record {
            true => "handshake with a record",
            false => "handshake without record",
        };
        row(name, d.len(), &f);
    }
}
