//! Stateless decoders: snappy inside a frame, Hello, Disconnect, discv4 packets, ENR, enode.

use devp2p_core::discv4::wire::{self, HEAD_SIZE};
use devp2p_core::enr::Enr;
use devp2p_core::keccak::keccak256_concat;
use devp2p_core::rlpx::FrameError;
use devp2p_core::session::{DisconnectReason, Hello};
use devp2p_core::Enode;

use crate::handshake::codec_pair;
use crate::keys;

/// Mode byte even: the rest is a snappy block framed as one message's payload for a receiver
/// with snappy on (lengths, corrupt blocks, expansion limits). Odd: the rest is a payload
/// compressed by a sender and read back: it must come out unchanged.
pub fn snappy(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (mut a, mut b) = codec_pair();
    b.set_snappy(true);
    let mut wire = Vec::new();
    if mode % 2 == 0 {
        let mut frame_data = vec![0x10];
        frame_data.extend_from_slice(rest);
        a.encode_frame_data(&frame_data, &mut wire)
            .expect("small frame");
        match b.decode(&wire) {
            Ok((_, Some(f))) => assert!(f.payload.len() <= rest.len() * 22 + 8),
            Ok((_, None)) => panic!("a whole frame must decode or fail"),
            Err(FrameError::Snappy(_) | FrameError::MessageTooLarge { .. }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    } else {
        a.set_snappy(true);
        a.encode(0x11, rest, &mut wire).expect("small frame");
        let (_, f) = b.decode(&wire).expect("our own compression decodes");
        assert_eq!(f.expect("whole frame").payload, rest);
    }
}

/// Any payload: decode must not panic; a decoded Hello re-encodes to an equal Hello.
pub fn hello(data: &[u8]) {
    if let Ok(h) = Hello::decode(data) {
        let again = Hello::decode(&h.encode()).expect("our encoding decodes");
        assert_eq!(again, h);
    }
}

/// Any payload: decode must not panic; every decoded reason re-encodes to itself.
pub fn disconnect(data: &[u8]) {
    if let Ok(Some(r)) = DisconnectReason::decode(data) {
        if r.code() < 0x80 {
            assert_eq!(DisconnectReason::decode(&r.encode()), Ok(Some(r)));
        }
    }
}

/// Mode byte even: the rest is a raw datagram. Odd: the rest is `type || packet-data`, hashed
/// and signed with a fixed key so decoding reaches the RLP of every packet type; anything
/// that decodes must re-encode and decode to the same packet.
pub fn discv4_packet(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let datagram = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let key = keys::nth(7);
        let digest = keccak256_concat(&[rest]);
        let sig = key.sign_recoverable(&digest);
        let hash = keccak256_concat(&[&sig, rest]);
        let mut d = Vec::with_capacity(HEAD_SIZE + rest.len());
        d.extend_from_slice(&hash);
        d.extend_from_slice(&sig);
        d.extend_from_slice(rest);
        d
    };
    let Ok(decoded) = wire::decode(&datagram) else {
        return;
    };
    if mode % 2 == 1 {
        assert_eq!(decoded.sender, *keys::nth(7).public());
    }
    let key = keys::nth(9);
    let (again, _) = wire::encode(&decoded.packet, &key);
    // Our encoding of a packet that fit 1280 bytes may only exceed it by what the peer's
    // encoding saved (non-minimal forms are rejected, so nothing).
    let redecoded = wire::decode(&again).expect("our encoding decodes");
    assert_eq!(redecoded.packet, decoded.packet);
    assert_eq!(redecoded.sender, *key.public());
}

/// Mode 0: the rest as a raw record; 1: as `enr:` text; 2: as key/value pairs signed with a
/// fixed key. A decoded record re-decodes from its bytes and its text to an equal record.
pub fn enr(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let record = match mode % 3 {
        0 => Enr::decode(rest).ok(),
        1 => std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.parse::<Enr>().ok()),
        _ => {
            let mut b = Enr::builder().seq(u64::from(rest.first().copied().unwrap_or(0)));
            let mut pairs = rest.get(1..).unwrap_or_default();
            while pairs.len() >= 2 {
                let (kl, vl) = (usize::from(pairs[0] % 12) + 1, usize::from(pairs[1] % 40));
                let Some(k) = pairs.get(2..2 + kl) else { break };
                let Some(v) = pairs.get(2 + kl..2 + kl + vl) else {
                    break;
                };
                // Values are raw RLP items; wrap the bytes as an RLP string.
                let item = rlp::encode(&v).to_vec();
                b = match b.raw(k, &item) {
                    Ok(b) => b,
                    Err(_) => return,
                };
                pairs = &pairs[2 + kl + vl..];
            }
            b.sign(&keys::nth(3)).ok()
        }
    };
    if let Some(r) = record {
        let again = Enr::decode(r.as_bytes()).expect("a record's own bytes decode");
        assert_eq!(again.as_bytes(), r.as_bytes());
        let text: Enr = r.to_string().parse().expect("a record's own text decodes");
        assert_eq!(text.as_bytes(), r.as_bytes());
    }
}

/// Any text: parsing must not panic; a parsed URL prints and parses back to itself.
pub fn enode(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(e) = s.parse::<Enode>() {
        let again: Enode = e.to_string().parse().expect("printed enode parses");
        assert_eq!(again, e);
    }
}
