//! discv5 packets: the raw decoder, and the message decoders reached through a valid mask and
//! session. Both decode as node B of the discv5 vectors, so the vectors' packets (the seed
//! corpus) decode, open and complete their handshakes.

use std::sync::OnceLock;

use devp2p_core::discv5::packet::{
    apply_mask, encode_message, flag, Packet, PacketKind, MAX_PACKET_SIZE, PROTOCOL_ID,
    PROTOCOL_VERSION,
};
use devp2p_core::discv5::{HandshakeProof, Message, MessageKey, Nodes, OpenError, SessionKeys};
use devp2p_core::{Enr, NodeSecretKey};

/// Node A of the discv5 vectors: the sender of their packets.
pub fn node_a() -> NodeSecretKey {
    static K: OnceLock<NodeSecretKey> = OnceLock::new();
    K.get_or_init(|| {
        NodeSecretKey::from_hex("eef77acb6c6a6eebc5b363a475ac583ec7eccdb42b6481424c60f59aa326547f")
            .expect("valid key")
    })
    .clone()
}

/// Node B of the discv5 vectors: the recipient of their packets, and of ours.
pub fn node_b() -> NodeSecretKey {
    static K: OnceLock<NodeSecretKey> = OnceLock::new();
    K.get_or_init(|| {
        NodeSecretKey::from_hex("66fb62bfbd66b9177a138c1e5cddbe4f7c30c343e94e68df8769459cb1cde628")
            .expect("valid key")
    })
    .clone()
}

/// The session key B reads the vectors' ordinary PING with (A's write key there).
pub const READ_KEY: [u8; 16] = [0; 16];

/// The WHOAREYOU the vectors' handshakes answer, unmasked, with its enr-seq: 1 for the
/// handshake without record, 0 for the one carrying A's record.
pub fn challenge_data(enr_seq: u8) -> [u8; 63] {
    let mut c = [0u8; 63];
    c[16..22].copy_from_slice(&PROTOCOL_ID);
    c[23] = 1; // version
    c[24] = flag::WHOAREYOU;
    for (i, b) in c[25..37].iter_mut().enumerate() {
        *b = i as u8 + 1; // the challenged request's nonce 01..0c
    }
    c[38] = 24; // authdata size
    for (i, b) in c[39..55].iter_mut().enumerate() {
        *b = i as u8 + 1; // id-nonce 01..10
    }
    c[62] = enr_seq;
    c
}

/// Node A's record as the vectors carry it (seq 1); what B knows of A when no record comes.
pub fn record_a() -> &'static Enr {
    static R: OnceLock<Enr> = OnceLock::new();
    R.get_or_init(|| {
        Enr::decode(&hex_bytes(concat!(
            "f87db84017e1b073918da32d640642c762c0e2781698e4971f8ab39a77746adad83f01e76ffc874c",
            "5924808bbe7c50890882c2b8a01287a0b08312d1d53a17d517f5eb2701826964827634826970847f",
            "00000189736563703235366b31a10313d14211e0287b2361a1615890a9b5212080546d0a257ae4cff96c",
            "f534992cb9"
        )))
        .expect("the vectors' record verifies")
    })
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A decoded message re-encodes, and the re-encoding decodes to it: through the plaintext
/// and through a packet of our own.
fn check_round_trip(m: &Message) {
    let mut want = m.clone();
    if let Message::Nodes(Nodes {
        invalid_records, ..
    }) = &mut want
    {
        // Dropped records are not re-encoded.
        *invalid_records = 0;
    }
    assert_eq!(Message::decode(&m.to_vec()).as_ref(), Ok(&want));
    let (a, b) = (node_a(), node_b());
    let keys = SessionKeys::new([9; 16], [9; 16]);
    let mut out = Vec::new();
    // A message that fit a packet (ordinary or handshake) fits an ordinary one.
    encode_message(
        &mut out,
        &b.id(),
        &a.id(),
        &[3; 16],
        &[4; 12],
        &keys.write,
        m,
    )
    .expect("fits");
    let p = Packet::decode(&b.id(), &out).expect("our packet decodes");
    assert_eq!(p.open(&keys.read), Ok(want));
}

/// Any datagram, decoded as node B: header checks, the three authdata layouts, then the
/// message under the vectors' session key or the handshake against the vectors' challenge.
pub fn discv5_packet(data: &[u8]) {
    let b = node_b();
    let Ok(p) = Packet::decode(&b.id(), data) else {
        return;
    };
    assert!(p.header().len() <= MAX_PACKET_SIZE);
    let key = MessageKey::new(READ_KEY);
    match p.kind() {
        PacketKind::Whoareyou(_) => assert_eq!(p.open(&key), Err(OpenError::NoMessage)),
        PacketKind::Message { .. } => {
            if let Ok(m) = p.open(&key) {
                check_round_trip(&m);
            }
        }
        PacketKind::Handshake(auth) => {
            let (challenge, known) = match auth.record {
                Some(_) => (challenge_data(0), None),
                None => (challenge_data(1), Some(record_a())),
            };
            if let Ok(acc) = p.accept_handshake(&b, &challenge, known) {
                assert_eq!(acc.record.node_id(), auth.src_id);
                check_round_trip(&acc.message);
            }
        }
    }
}

/// The handshake proof A makes for the enr-seq-0 challenge with a fixed ephemeral key.
fn proof() -> &'static HandshakeProof {
    static P: OnceLock<HandshakeProof> = OnceLock::new();
    P.get_or_init(|| {
        let eph = NodeSecretKey::from_bytes(&[0x42; 32]).expect("valid key");
        HandshakeProof::new(&node_a(), node_b().public(), &challenge_data(0), eph.secp())
    })
}

/// The masking IV of the packets the message target builds.
const IV: [u8; 16] = [0x33; 16];

/// A packet to B: the header declaring `auth_size`, then `authdata`, then `plaintext` sealed
/// under `key` with the unmasked header as AAD; masked for B.
fn seal_packet(
    flag: u8,
    auth_size: u16,
    authdata: &[u8],
    plaintext: &[u8],
    key: &MessageKey,
) -> Vec<u8> {
    let nonce = [0x5a; 12];
    let mut out = IV.to_vec();
    out.extend_from_slice(&PROTOCOL_ID);
    out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    out.push(flag);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&auth_size.to_be_bytes());
    out.extend_from_slice(authdata);
    let sealed = key.seal(&nonce, &out, plaintext);
    apply_mask(&node_b().id(), &IV, &mut out[16..]);
    out.extend_from_slice(&sealed);
    out
}

/// Inside a valid mask and session. Byte 0 picks the mode, the rest is:
/// - mode 0: a message plaintext in an ordinary packet sealed with the session key;
/// - mode 1: a message plaintext in a handshake packet (A's valid proof, with A's record if
///   byte 1 is odd), so the message decoders are reached after the handshake checks;
/// - mode 2: `flag || authdata-size (2) || authdata and message bytes` behind a valid masked
///   static header, the message part sealed with the session key (header and authdata parsing
///   of every shape, with the record and signature checks behind them).
pub fn discv5_message(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let a = node_a();
    let key = MessageKey::new(READ_KEY);
    let datagram = match mode % 3 {
        0 => seal_packet(flag::MESSAGE, 32, &a.id().0, rest, &key),
        1 => {
            let Some((&opts, plaintext)) = rest.split_first() else {
                return;
            };
            let p = proof();
            let mut auth = a.id().0.to_vec();
            auth.extend_from_slice(&[64, 33]);
            auth.extend_from_slice(&p.id_signature);
            auth.extend_from_slice(&p.ephemeral_key);
            if opts % 2 == 1 {
                auth.extend_from_slice(record_a().as_bytes());
            }
            let write = MessageKey::new(p.keys.initiator_key);
            seal_packet(flag::HANDSHAKE, auth.len() as u16, &auth, plaintext, &write)
        }
        _ => {
            if rest.len() < 3 {
                return;
            }
            // The declared size may disagree with the authdata bytes that follow.
            let (flag, size) = (rest[0], u16::from_be_bytes([rest[1], rest[2]]));
            let body = &rest[3..];
            let split = usize::from(size).min(body.len());
            seal_packet(flag, size, &body[..split], &body[split..], &key)
        }
    };
    if datagram.len() > MAX_PACKET_SIZE {
        return;
    }
    let b = node_b();
    let Ok(p) = Packet::decode(&b.id(), &datagram) else {
        return;
    };
    match p.kind() {
        PacketKind::Message { .. } => {
            if let Ok(m) = p.open(&key) {
                check_round_trip(&m);
            }
        }
        PacketKind::Handshake(auth) => {
            let known = auth.record.is_none().then(record_a);
            if let Ok(acc) = p.accept_handshake(&b, &challenge_data(0), known) {
                assert_eq!(acc.record.node_id(), auth.src_id);
                check_round_trip(&acc.message);
            }
        }
        PacketKind::Whoareyou(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixtures are what the vectors use, so seeds get past every check.
    #[test]
    fn the_fixture_challenges_and_proof_complete_handshakes() {
        assert_eq!(
            hex_bytes(concat!(
                "000000000000000000000000000000006469736376350001010102030405060708090a0b0c00",
                "180102030405060708090a0b0c0d0e0f100000000000000001"
            )),
            challenge_data(1)
        );
        let p = proof();
        let mut auth = node_a().id().0.to_vec();
        auth.extend_from_slice(&[64, 33]);
        auth.extend_from_slice(&p.id_signature);
        auth.extend_from_slice(&p.ephemeral_key);
        let write = MessageKey::new(p.keys.initiator_key);
        let d = seal_packet(flag::HANDSHAKE, 131, &auth, &[1, 0xc2, 1, 1], &write);
        let b = node_b();
        let acc = Packet::decode(&b.id(), &d)
            .unwrap()
            .accept_handshake(&b, &challenge_data(0), Some(record_a()))
            .unwrap();
        assert_eq!(acc.message.type_byte(), 1);
    }
}
