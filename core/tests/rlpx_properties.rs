//! quickcheck properties of the RLPx handshake and frame codec.

use devp2p_core::keccak::Keccak256;
use devp2p_core::rlpx::{FrameCodec, FrameError, Handshake, HandshakeError, Secrets};
use devp2p_core::NodeSecretKey;
use quickcheck::{quickcheck, Arbitrary, Gen, TestResult};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Feeds `bytes` to `read` in chunks whose sizes come from `cuts` (cycled), asserting every
/// call makes progress until the consumer stops taking bytes; returns how many were taken.
fn feed_chunked(bytes: &[u8], cuts: &[u8], mut read: impl FnMut(&[u8]) -> usize) -> usize {
    let mut pos = 0;
    let mut i = 0;
    while pos < bytes.len() {
        let chunk = 1 + usize::from(cuts.get(i % cuts.len().max(1)).copied().unwrap_or(255)) * 3;
        let end = (pos + chunk).min(bytes.len());
        let used = read(&bytes[pos..end]);
        pos += used;
        i += 1;
        if used < end - (pos - used) {
            break;
        }
    }
    pos
}

fn pair_of_codecs(seed: u64) -> (FrameCodec, FrameCodec) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut aes = [0u8; 32];
    let mut mac = [0u8; 32];
    let mut a_seed = [0u8; 32];
    let mut b_seed = [0u8; 32];
    for b in [&mut aes, &mut mac, &mut a_seed, &mut b_seed] {
        rand_core::Rng::fill_bytes(&mut rng, b);
    }
    let sponge = |s: &[u8]| {
        let mut k = Keccak256::new();
        k.update(s);
        k
    };
    let a = Secrets {
        aes_secret: aes,
        mac_secret: mac,
        egress_mac: sponge(&a_seed),
        ingress_mac: sponge(&b_seed),
    };
    let b = Secrets {
        aes_secret: aes,
        mac_secret: mac,
        egress_mac: sponge(&b_seed),
        ingress_mac: sponge(&a_seed),
    };
    (FrameCodec::new(a), FrameCodec::new(b))
}

#[derive(Clone, Debug)]
struct Payload(Vec<u8>);

impl Arbitrary for Payload {
    /// 0 to 200 KiB, often compressible (runs), sometimes not (beyond one 64 KiB snappy
    /// block, incompressible payloads go as one stored literal).
    fn arbitrary(g: &mut Gen) -> Self {
        let len = match u8::arbitrary(g) % 5 {
            0 => usize::arbitrary(g) % 64,
            1 => usize::arbitrary(g) % 2048,
            2 => usize::arbitrary(g) % (200 * 1024 + 1),
            _ => usize::arbitrary(g) % (64 * 1024 + 1),
        };
        let runs = bool::arbitrary(g);
        let seed = u64::arbitrary(g);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut v = vec![0u8; len];
        if runs {
            let mut i = 0;
            while i < len {
                let b = u8::arbitrary(g) % 4;
                let n = (usize::arbitrary(g) % 100 + 1).min(len - i);
                v[i..i + n].fill(b);
                i += n;
            }
        } else {
            rand_core::Rng::fill_bytes(&mut rng, &mut v);
        }
        Payload(v)
    }
}

quickcheck! {
    fn a_handshake_completes_with_matching_secrets_for_any_chunking(seed: u64, cuts_auth: Vec<u8>, cuts_ack: Vec<u8>) -> bool {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let a = NodeSecretKey::generate(&mut rng);
        let b = NodeSecretKey::generate(&mut rng);
        let mut init = Handshake::initiator(&a, b.public(), &mut rng);
        let mut resp = Handshake::recipient(&b, &mut rng);
        let auth = init.take_output();
        let used = feed_chunked(&auth, &cuts_auth, |c| resp.read(c).unwrap());
        let ack = resp.take_output();
        let used2 = feed_chunked(&ack, &cuts_ack, |c| init.read(c).unwrap());
        let (i, r) = (init.into_outcome().unwrap(), resp.into_outcome().unwrap());
        let (mut ie, mut ri) = (i.secrets.egress_mac.clone(), r.secrets.ingress_mac.clone());
        ie.update(b"x");
        ri.update(b"x");
        used == auth.len() && used2 == ack.len()
            && i.remote == *b.public() && r.remote == *a.public()
            && i.secrets.aes_secret == r.secrets.aes_secret
            && i.secrets.mac_secret == r.secrets.mac_secret
            && ie.digest() == ri.digest()
            && i.secrets.ingress_mac.digest() == r.secrets.egress_mac.digest()
    }

    fn a_frame_round_trips_for_any_payload_and_chunking(seed: u64, id: u64, p: Payload, snappy: bool, cuts: Vec<u8>) -> bool {
        let (mut a, mut b) = pair_of_codecs(seed);
        a.set_snappy(snappy);
        b.set_snappy(snappy);
        let mut wire = Vec::new();
        let bound = a.max_frame_len(id, p.0.len());
        a.encode(id, &p.0, &mut wire).unwrap();
        if wire.len() > bound {
            return false;
        }
        // Two frames back to back, so chunks straddle frame boundaries too.
        a.encode(id ^ 1, &p.0[..p.0.len() / 2], &mut wire).unwrap();
        let mut got = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < wire.len() {
            let chunk = 1 + usize::from(cuts.get(i % cuts.len().max(1)).copied().unwrap_or(200)) * 97;
            let end = (pos + chunk).min(wire.len());
            let (used, frame) = b.decode(&wire[pos..end]).unwrap();
            if let Some(f) = frame {
                got.push((f.id, f.payload.to_vec()));
            }
            pos += used;
            i += 1;
        }
        got == vec![(id, p.0.clone()), (id ^ 1, p.0[..p.0.len() / 2].to_vec())]
    }

    fn flipping_any_bit_of_a_frame_gives_an_error(seed: u64, len: u16, bit: usize, snappy: bool) -> TestResult {
        let (mut a, mut b) = pair_of_codecs(seed);
        a.set_snappy(snappy);
        b.set_snappy(snappy);
        let payload: Vec<u8> = (0..usize::from(len) % 3000).map(|i| (i % 251) as u8).collect();
        let mut wire = Vec::new();
        a.encode(0x42, &payload, &mut wire).unwrap();
        let bit = bit % (wire.len() * 8);
        wire[bit / 8] ^= 1 << (bit % 8);
        match b.decode(&wire) {
            Err(FrameError::HeaderMac | FrameError::FrameMac) => {}
            Err(other) => return TestResult::error(format!("unexpected {other:?}")),
            // A flipped size field may leave the codec waiting for more bytes: feed padding,
            // the MAC must fail before any frame is accepted.
            Ok((_, Some(_))) => return TestResult::failed(),
            Ok((_, None)) => {
                let r = b.decode(&vec![0u8; 1 << 20]);
                if !matches!(r, Err(FrameError::FrameMac | FrameError::HeaderMac)) {
                    return TestResult::error(format!("expected a MAC error, got {r:?}"));
                }
            }
        }
        // The codec stays dead.
        TestResult::from_bool(b.decode(&wire).is_err())
    }
}

#[test]
fn a_handshake_message_announcing_more_than_2_kib_is_refused_at_once() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let b = NodeSecretKey::generate(&mut rng);
    let mut resp = Handshake::recipient(&b, &mut rng);
    assert_eq!(
        resp.read(&[0x08, 0x01]),
        Err(HandshakeError::TooLarge { size: 2049 })
    );
    assert_eq!(resp.read(&[0x00]), Err(HandshakeError::Failed));
}

#[test]
fn an_auth_for_another_key_is_a_bad_mac() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let (a, b, c) = (
        NodeSecretKey::generate(&mut rng),
        NodeSecretKey::generate(&mut rng),
        NodeSecretKey::generate(&mut rng),
    );
    let mut init = Handshake::initiator(&a, c.public(), &mut rng);
    let mut resp = Handshake::recipient(&b, &mut rng);
    assert_eq!(resp.read(&init.take_output()), Err(HandshakeError::BadMac));
    assert!(
        resp.take_output().is_empty(),
        "a recipient that gets a bad auth sends nothing"
    );
}

#[test]
fn an_off_curve_ecies_key_in_auth_is_an_invalid_key() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let (a, b) = (
        NodeSecretKey::generate(&mut rng),
        NodeSecretKey::generate(&mut rng),
    );
    let mut init = Handshake::initiator(&a, b.public(), &mut rng);
    let mut auth = init.take_output();
    auth[2 + 64] ^= 0x01; // last byte of the ECIES ephemeral key's Y coordinate
    let mut resp = Handshake::recipient(&b, &mut rng);
    assert_eq!(resp.read(&auth), Err(HandshakeError::InvalidKey));
}

#[test]
fn bytes_after_the_ack_are_left_for_the_frame_codec() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let (a, b) = (
        NodeSecretKey::generate(&mut rng),
        NodeSecretKey::generate(&mut rng),
    );
    let mut init = Handshake::initiator(&a, b.public(), &mut rng);
    let mut resp = Handshake::recipient(&b, &mut rng);
    resp.read(&init.take_output()).unwrap();
    let mut stream = resp.take_output();
    let ack_len = stream.len();
    let mut rcodec = FrameCodec::new(resp.into_outcome().unwrap().secrets);
    rcodec.encode(0, b"\xc0hello", &mut stream).unwrap();
    assert_eq!(init.read(&stream).unwrap(), ack_len);
    let mut icodec = FrameCodec::new(init.into_outcome().unwrap().secrets);
    let (used, frame) = icodec.decode(&stream[ack_len..]).unwrap();
    assert_eq!(used, stream.len() - ack_len);
    assert_eq!(frame.unwrap().payload, b"\xc0hello");
}

#[test]
fn an_announced_frame_above_the_limit_is_refused_before_its_body_arrives() {
    let (mut a, mut b) = pair_of_codecs(9);
    b.set_max_frame_size(1024);
    let mut wire = Vec::new();
    a.encode(1, &vec![7u8; 4096], &mut wire).unwrap();
    // Only the 32 header bytes: the size is known and refused without buffering the body.
    assert_eq!(
        b.decode(&wire[..32]),
        Err(FrameError::FrameTooLarge {
            size: 4097,
            limit: 1024
        })
    );
}

#[test]
fn a_snappy_length_beyond_what_the_bytes_can_expand_to_is_refused() {
    let (mut a, mut b) = pair_of_codecs(10);
    b.set_snappy(true);
    // uvarint 0xffffff (16 MiB - 1) followed by nothing: a 4-byte "compressed" payload.
    let mut wire = Vec::new();
    a.encode(0x10, &[0xff, 0xff, 0xff, 0x07], &mut wire)
        .unwrap();
    assert!(matches!(
        b.decode(&wire),
        Err(FrameError::MessageTooLarge {
            size: 0xff_ffff,
            ..
        })
    ));
}

#[test]
fn a_message_id_encoded_as_a_zero_byte_is_invalid() {
    let (mut a, mut b) = pair_of_codecs(11);
    let mut wire = Vec::new();
    // geth rejects 0x00: id 0 is the empty string 0x80.
    a.encode_frame_data(&[0x00, 0xc0], &mut wire).unwrap();
    assert_eq!(b.decode(&wire), Err(FrameError::InvalidMessageId));
    let (mut a, mut b) = pair_of_codecs(12);
    wire.clear();
    a.encode(0, &[0xc0], &mut wire).unwrap();
    assert_eq!(wire.len(), 64);
    let (_, f) = b.decode(&wire).unwrap();
    assert_eq!(f.unwrap().id, 0);
}
