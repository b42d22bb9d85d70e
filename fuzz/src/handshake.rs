//! RLPx handshake messages and the frame stream.

use devp2p_core::keccak::Keccak256;
use devp2p_core::rlpx::ecies;
use devp2p_core::rlpx::handshake::{decode_ack, decode_auth, HandshakeRandomness};
use devp2p_core::rlpx::{FrameCodec, Handshake, Secrets, MAX_HANDSHAKE_SIZE};

use crate::keys;

/// Fixed ECIES randomness: the targets encrypt fuzz data so it gets past the ECIES MAC.
fn ecies_parts() -> (secp256k1::SecretKey, [u8; 16]) {
    (*keys::nth(200).secp(), [7u8; 16])
}

/// First byte 0: raw bytes into a recipient state machine in chunks (size prefix, legacy
/// detection, MAC rejection). Otherwise: the rest is an EIP-8 auth *plaintext*, encrypted to
/// the recipient so the RLP body, the key checks and the signature recovery are reached.
pub fn auth_eip8(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let b = keys::recipient();
    if mode == 0 {
        let rnd = HandshakeRandomness {
            ephemeral_key: *keys::nth(1).secp(),
            nonce: [1; 32],
            ecies_key: *keys::nth(2).secp(),
            ecies_iv: [0; 16],
            padding_len: 100,
        };
        let mut hs = Handshake::recipient_with(&b, rnd);
        let mut pos = 0;
        let chunk = usize::from(rest.first().copied().unwrap_or(1)).max(1);
        while pos < rest.len() {
            let end = (pos + chunk).min(rest.len());
            match hs.read(&rest[pos..end]) {
                Ok(n) => {
                    assert!(n <= end - pos);
                    pos += n;
                    if n == 0 || hs.is_done() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        if hs.is_done() {
            assert!(
                pos <= 2 + MAX_HANDSHAKE_SIZE,
                "consumed past one handshake message"
            );
        }
        return;
    }
    let size = (rest.len() + ecies::ECIES_OVERHEAD) as u16;
    let mut packet = size.to_be_bytes().to_vec();
    let (k, iv) = ecies_parts();
    ecies::encrypt_with(&k, iv, b.public(), rest, &size.to_be_bytes(), &mut packet);
    if let Ok(auth) = decode_auth(&b, &packet) {
        // A decodable auth names a key on the curve and recovers one.
        let _ = (auth.initiator_key.id(), auth.initiator_ephemeral.id());
    }
}

/// The rest is a legacy auth plaintext (194 bytes when well-formed), encrypted without prefix.
pub fn auth_legacy(data: &[u8]) {
    let b = keys::recipient();
    let mut packet = Vec::new();
    let (k, iv) = ecies_parts();
    ecies::encrypt_with(&k, iv, b.public(), data, &[], &mut packet);
    let _ = decode_auth(&b, &packet);
}

/// First byte 0: the rest as a legacy ack plaintext; otherwise as an EIP-8 ack plaintext.
pub fn ack(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let a = keys::initiator();
    let (k, iv) = ecies_parts();
    let mut packet = Vec::new();
    if mode == 0 {
        ecies::encrypt_with(&k, iv, a.public(), rest, &[], &mut packet);
    } else {
        let size = (rest.len() + ecies::ECIES_OVERHEAD) as u16;
        packet.extend_from_slice(&size.to_be_bytes());
        ecies::encrypt_with(&k, iv, a.public(), rest, &size.to_be_bytes(), &mut packet);
    }
    let _ = decode_ack(&a, &packet);
}

/// Two codecs keyed from fixed secrets, mirrored, so frames from one pass the other's MACs.
pub(crate) fn codec_pair() -> (FrameCodec, FrameCodec) {
    let (a, b) = secrets_pair();
    (FrameCodec::new(a), FrameCodec::new(b))
}

pub(crate) fn secrets_pair() -> (Secrets, Secrets) {
    let sponge = |seed: &[u8]| {
        let mut k = Keccak256::new();
        k.update(seed);
        k
    };
    let s = |e: &[u8], i: &[u8]| Secrets {
        aes_secret: [0x11; 32],
        mac_secret: [0x22; 32],
        egress_mac: sponge(e),
        ingress_mac: sponge(i),
    };
    (s(b"a->b", b"b->a"), s(b"b->a", b"a->b"))
}

/// Byte 0 picks the mode; byte 1 the chunk size and snappy.
/// Mode even: the input after two bytes is a list of messages `[id, len_hi, len_lo, payload…]`
/// that one codec seals and the other must read back exactly, in chunks.
/// Mode odd: the rest is raw wire bytes for the receiving codec; it must fail cleanly.
pub fn frame_stream(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let (mode, knobs, rest) = (data[0], data[1], &data[2..]);
    let (mut a, mut b) = codec_pair();
    let snappy = knobs & 0x80 != 0;
    a.set_snappy(snappy);
    b.set_snappy(snappy);
    b.set_max_frame_size(1 << 20);
    let chunk = usize::from(knobs & 0x7f) + 1;
    if mode % 2 == 1 {
        let mut pos = 0;
        while pos < rest.len() {
            let end = (pos + chunk).min(rest.len());
            match b.decode(&rest[pos..end]) {
                Ok((n, _)) if n > 0 => pos += n,
                _ => break,
            }
        }
        return;
    }
    let mut sent = Vec::new();
    let mut wire = Vec::new();
    let mut msgs = rest;
    while msgs.len() >= 3 {
        let id = u64::from(msgs[0]);
        let len = (usize::from(msgs[1]) << 8 | usize::from(msgs[2])).min(msgs.len() - 3);
        let payload = &msgs[3..3 + len];
        a.encode(id, payload, &mut wire)
            .expect("small frames always encode");
        sent.push((id, payload.to_vec()));
        msgs = &msgs[3 + len..];
    }
    let mut got = Vec::new();
    let mut pos = 0;
    while pos < wire.len() {
        let end = (pos + chunk).min(wire.len());
        let (n, frame) = b
            .decode(&wire[pos..end])
            .expect("frames sealed by the peer decode");
        if let Some(f) = frame {
            got.push((f.id, f.payload.to_vec()));
        }
        pos += n;
        assert!(n > 0 || end == pos, "no progress");
    }
    assert_eq!(got, sent, "decode(encode(frames)) differs");
}
