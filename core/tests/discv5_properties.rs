//! Properties of the discv5 wire layer: every message and every packet kind round-trips, a
//! changed bit never opens to a message, and no input makes a decoder panic.

use std::net::IpAddr;
use std::sync::OnceLock;

use devp2p_core::discv5::packet::{
    encode_handshake, encode_message, encode_random, encode_whoareyou, EncodeError, Packet,
    PacketKind, Whoareyou, MAX_PACKET_SIZE, WHOAREYOU_SIZE,
};
use devp2p_core::discv5::{
    FindNode, Message, Nodes, OpenError, Ping, Pong, RequestId, SessionKeys, TalkReq, TalkResp,
};
use devp2p_core::{Enr, NodeSecretKey};
use quickcheck::{quickcheck, Arbitrary, Gen, TestResult};

fn key(i: u8) -> NodeSecretKey {
    let mut b = [0x11u8; 32];
    b[31] = i;
    NodeSecretKey::from_bytes(&b).unwrap()
}

/// A few signed records of different sizes (signing one per case would dominate the run).
fn records() -> &'static [Enr] {
    static R: OnceLock<Vec<Enr>> = OnceLock::new();
    R.get_or_init(|| {
        (1..=4u8)
            .map(|i| {
                let mut b = Enr::builder()
                    .seq(u64::from(i) * 1000)
                    .udp4(30300 + u16::from(i));
                if i % 2 == 0 {
                    b = b.ip4([10, 0, 0, i].into()).tcp4(30303);
                }
                if i == 4 {
                    b = b.ip6("2001:db8::1".parse().unwrap()).udp6(9000);
                }
                b.sign(&key(i)).unwrap()
            })
            .collect()
    })
}

#[derive(Debug, Clone)]
struct AnyMessage(Message);

fn bytes(g: &mut Gen, max: usize) -> Vec<u8> {
    let n = usize::arbitrary(g) % (max + 1);
    (0..n).map(|_| u8::arbitrary(g)).collect()
}

impl Arbitrary for AnyMessage {
    fn arbitrary(g: &mut Gen) -> Self {
        let request_id = RequestId::new(&bytes(g, 8)).unwrap();
        let m = match u8::arbitrary(g) % 6 {
            0 => Message::Ping(Ping {
                request_id,
                enr_seq: u64::arbitrary(g),
            }),
            1 => Message::Pong(Pong {
                request_id,
                enr_seq: u64::arbitrary(g),
                recipient_ip: match u8::arbitrary(g) % 3 {
                    0 => None,
                    1 => Some(IpAddr::V4(u32::arbitrary(g).into())),
                    _ => Some(IpAddr::V6(u128::arbitrary(g).into())),
                },
                recipient_port: u16::arbitrary(g),
            }),
            2 => Message::FindNode(FindNode {
                request_id,
                distances: Vec::<u64>::arbitrary(g),
            }),
            3 => {
                let pool = records();
                let n = usize::arbitrary(g) % 6;
                Message::Nodes(Nodes {
                    request_id,
                    total: u8::arbitrary(g),
                    records: (0..n)
                        .map(|_| pool[usize::arbitrary(g) % pool.len()].clone())
                        .collect(),
                    invalid_records: 0,
                })
            }
            4 => Message::TalkReq(TalkReq {
                request_id,
                protocol: bytes(g, 20),
                request: Vec::arbitrary(g),
            }),
            _ => Message::TalkResp(TalkResp {
                request_id,
                response: Vec::arbitrary(g),
            }),
        };
        AnyMessage(m)
    }
}

fn arr<const N: usize>(v: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    for (x, y) in a.iter_mut().zip(v) {
        *x = *y;
    }
    a
}

quickcheck! {
    fn every_message_decodes_to_itself(m: AnyMessage) -> bool {
        Message::decode(&m.0.to_vec()) == Ok(m.0)
    }

    /// Decoding is strict enough that an encoding is unique: whatever a changed plaintext
    /// still decodes to re-encodes to exactly those bytes (but for the two fields decoding
    /// normalises: a PONG IP of odd length, NODES records that fail verification).
    fn a_changed_plaintext_that_still_decodes_is_canonical(m: AnyMessage, pos: usize, v: u8) -> TestResult {
        let mut pt = m.0.to_vec();
        let i = pos % pt.len();
        pt[i] = v;
        let Ok(d) = Message::decode(&pt) else { return TestResult::discard() };
        match &d {
            Message::Pong(Pong { recipient_ip: None, .. }) => TestResult::discard(),
            Message::Nodes(n) if n.invalid_records > 0 => TestResult::discard(),
            _ => TestResult::from_bool(d.to_vec() == pt),
        }
    }

    fn every_message_round_trips_through_an_ordinary_packet(
        m: AnyMessage, iv: Vec<u8>, nonce: Vec<u8>, write: Vec<u8>
    ) -> TestResult {
        let (a, b) = (key(1), key(2));
        let (iv, nonce, write) = (arr::<16>(&iv), arr::<12>(&nonce), arr::<16>(&write));
        let keys = SessionKeys::new(write, [0; 16]);
        let mut out = vec![0xee]; // encoding appends
        match encode_message(&mut out, &b.id(), &a.id(), &iv, &nonce, &keys.write, &m.0) {
            Ok(()) => {}
            Err(EncodeError::TooLarge(n)) => {
                return TestResult::from_bool(n > MAX_PACKET_SIZE && out == [0xee]);
            }
        }
        let datagram = &out[1..];
        let Ok(p) = Packet::decode(&b.id(), datagram) else { return TestResult::failed() };
        TestResult::from_bool(
            p.kind() == PacketKind::Message { src_id: a.id() }
                && p.masking_iv() == iv
                && p.nonce() == nonce
                && p.open(&SessionKeys::new([0; 16], write).read) == Ok(m.0)
        )
    }

    fn a_whoareyou_decodes_to_its_fields_and_its_challenge_data(
        iv: Vec<u8>, nonce: Vec<u8>, id_nonce: Vec<u8>, enr_seq: u64
    ) -> bool {
        let b = key(2);
        let w = Whoareyou { id_nonce: arr(&id_nonce), enr_seq };
        let mut out = Vec::new();
        let challenge = encode_whoareyou(&mut out, &b.id(), &arr(&iv), &arr(&nonce), &w);
        let p = Packet::decode(&b.id(), &out).unwrap();
        out.len() == WHOAREYOU_SIZE
            && p.kind() == PacketKind::Whoareyou(w)
            && p.nonce() == arr::<12>(&nonce)
            && p.header() == challenge
            && p.open(&SessionKeys::new([0; 16], [0; 16]).read) == Err(OpenError::NoMessage)
    }

    fn a_handshake_round_trips_with_or_without_record(
        m: AnyMessage, seed: u8, with_record: bool, iv: Vec<u8>, nonce: Vec<u8>
    ) -> TestResult {
        let (a, b) = (key(10 + seed % 5), key(2));
        let record_a = Enr::builder().seq(5).udp4(30303).sign(&a).unwrap();
        let mut whoareyou = Vec::new();
        let w = Whoareyou { id_nonce: [seed; 16], enr_seq: if with_record { 0 } else { 5 } };
        let challenge = encode_whoareyou(&mut whoareyou, &a.id(), &[seed; 16], &[7; 12], &w);
        let ephemeral = *key(100 + seed % 50).secp();
        let mut out = Vec::new();
        let sent = match encode_handshake(
            &mut out, &a, b.public(), &challenge, &ephemeral,
            with_record.then_some(&record_a), &arr(&iv), &arr(&nonce), &m.0,
        ) {
            Ok(keys) => keys,
            Err(EncodeError::TooLarge(n)) => return TestResult::from_bool(n > MAX_PACKET_SIZE),
        };
        let p = Packet::decode(&b.id(), &out).unwrap();
        let known = (!with_record).then_some(&record_a);
        let Ok(acc) = p.accept_handshake(&b, &challenge, known) else {
            return TestResult::failed();
        };
        TestResult::from_bool(
            acc.message == m.0
                && acc.record == record_a
                && acc.keys.read == sent.write
                && acc.keys.write == sent.read
                && p.src_id() == Some(a.id())
        )
    }

    fn a_message_packet_with_any_bit_flipped_never_opens(
        m: AnyMessage, pos: usize, bit: u8
    ) -> TestResult {
        let (a, b) = (key(1), key(2));
        let keys = SessionKeys::new([3; 16], [3; 16]);
        let mut out = Vec::new();
        if encode_message(&mut out, &b.id(), &a.id(), &[1; 16], &[2; 12], &keys.write, &m.0)
            .is_err()
        {
            return TestResult::discard();
        }
        let i = pos % out.len();
        out[i] ^= 1 << (bit % 8);
        // Either the header no longer decodes, or it (the AAD) or the ciphertext changed.
        TestResult::from_bool(match Packet::decode(&b.id(), &out) {
            Err(_) => true,
            Ok(p) => p.open(&keys.read).is_err(),
        })
    }

    fn a_random_packet_draws_a_decrypt_error(filler: Vec<u8>) -> TestResult {
        let (a, b) = (key(1), key(2));
        let mut out = Vec::new();
        if encode_random(&mut out, &b.id(), &a.id(), &[5; 16], &[6; 12], &filler).is_err() {
            return TestResult::from_bool(filler.len() > MAX_PACKET_SIZE - 71);
        }
        let p = Packet::decode(&b.id(), &out).unwrap();
        TestResult::from_bool(
            p.src_id() == Some(a.id())
                && p.open(&SessionKeys::new([0; 16], [9; 16]).read) == Err(OpenError::Decrypt)
        )
    }

    fn decoding_arbitrary_bytes_never_panics(data: Vec<u8>, as_plaintext: bool) -> bool {
        let b = key(2);
        let _ = Message::decode(&data);
        if as_plaintext {
            return true;
        }
        if let Ok(p) = Packet::decode(&b.id(), &data) {
            let _ = (p.kind(), p.src_id(), p.header().len());
            let _ = p.open(&SessionKeys::new([0; 16], [0; 16]).read);
            let _ = p.accept_handshake(&b, &data, records().first());
        }
        true
    }

    /// Arbitrary bytes behind a valid unmasked static header, masked for us: the header
    /// checks and per-flag authdata parsing see every shape.
    fn arbitrary_headers_under_a_valid_mask_never_panic(flag: u8, size: u16, rest: Vec<u8>) -> bool {
        let b = key(2);
        let mut rest = rest;
        if flag % 4 == 2 && rest.len() > 33 && size.is_multiple_of(2) {
            // Mostly the "v4" sig-size and eph-key-size, so the record and crypto are reached.
            rest[32] = 64;
            rest[33] = 33;
        }
        let mut unmasked = vec![0u8; 16];
        unmasked.extend_from_slice(b"discv5");
        unmasked.extend_from_slice(&[0, 1, flag % 4]);
        unmasked.extend_from_slice(&[0; 12]);
        unmasked.extend_from_slice(&(size % 400).to_be_bytes());
        unmasked.extend_from_slice(&rest);
        let masked = mask(&b, &unmasked);
        if let Ok(p) = Packet::decode(&b.id(), &masked) {
            let _ = p.kind();
            let _ = p.open(&SessionKeys::new([0; 16], [0; 16]).read);
            let _ = p.accept_handshake(&b, &[0; 63], records().first());
        }
        true
    }
}

/// Masks everything after the IV for `to`: AES-128-CTR keyed by its id, written here apart
/// from the codec's own masking.
fn mask(to: &NodeSecretKey, unmasked: &[u8]) -> Vec<u8> {
    use aes::cipher::{KeyIvInit, StreamCipher};
    let mut out = unmasked.to_vec();
    let key: [u8; 16] = to.id().0[..16].try_into().unwrap();
    let iv: [u8; 16] = out[..16].try_into().unwrap();
    ctr::Ctr128BE::<aes::Aes128>::new(&key.into(), &iv.into()).apply_keystream(&mut out[16..]);
    out
}
