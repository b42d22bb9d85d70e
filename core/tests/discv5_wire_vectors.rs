//! The discv5.1 wire vectors from `vectors/discv5_wire.json` (devp2p's test-vector document,
//! byte-identical to geth's `v5wire` testdata): every packet decodes to its published fields
//! and plaintext, and encodes back to the same bytes from the given keys, nonces and masking
//! IVs; the crypto vectors hold; the negative cases fail as they should.

use devp2p_core::discv5::crypto::{
    derive_keys, ecdh, id_signature_digest, sign_id_nonce, verify_id_signature, MessageKey,
    SessionKeys,
};
use devp2p_core::discv5::packet::{
    encode_handshake, encode_message, encode_whoareyou, flag, resend_whoareyou, HandshakeError,
    Packet, PacketError, PacketKind, Whoareyou, WHOAREYOU_SIZE,
};
use devp2p_core::discv5::{Message, Ping, RequestId};
use devp2p_core::{Enr, NodeId, NodePublicKey, NodeSecretKey};
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors/discv5_wire.json")).unwrap()
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))).unwrap()
}

fn arr<const N: usize>(v: &Value) -> [u8; N] {
    hx(v).try_into().unwrap()
}

fn key(v: &Value) -> NodeSecretKey {
    NodeSecretKey::from_bytes(&hx(v)).unwrap()
}

fn id(v: &Value) -> NodeId {
    NodeId(arr(v))
}

struct Nodes {
    a: NodeSecretKey,
    b: NodeSecretKey,
}

fn nodes(v: &Value) -> Nodes {
    let a = key(&v["keys"]["node_a"]["upstream"]["private_key"]);
    let b = key(&v["keys"]["node_b"]["upstream"]["private_key"]);
    Nodes { a, b }
}

fn ping(v: &Value) -> Message {
    Message::Ping(Ping {
        request_id: RequestId::new(&hx(&v["ping_req_id"])).unwrap(),
        enr_seq: v["ping_enr_seq"].as_u64().unwrap(),
    })
}

/// Node A's record, carried by the with-record handshake (seq 1).
fn record_a(v: &Value) -> Enr {
    Enr::decode(&hx(
        &v["packets"]["ping_handshake_with_enr"]["derived"]["record_rlp"]
    ))
    .unwrap()
}

#[test]
fn the_node_keys_have_the_published_ids_and_public_keys() {
    let v = vectors();
    let n = nodes(&v);
    for (k, name) in [(&n.a, "node_a"), (&n.b, "node_b")] {
        let d = &v["keys"][name]["derived"];
        assert_eq!(k.id(), id(&d["node_id"]), "{name}");
        assert_eq!(
            k.public().compressed().to_vec(),
            hx(&d["public_key_compressed"])
        );
        assert_eq!(
            k.public().raw().to_vec(),
            hx(&d["public_key_uncompressed_xy"])
        );
    }
}

#[test]
fn the_ping_message_packet_decodes_opens_and_reencodes_byte_for_byte() {
    let v = vectors();
    let n = nodes(&v);
    let p = &v["packets"]["ping_message"];
    let (up, d) = (&p["upstream"], &p["derived"]);
    let wire = hx(&up["packet"]);
    assert_eq!(wire.len() as u64, d["packet_len"].as_u64().unwrap());

    let packet = Packet::decode(&n.b.id(), &wire).unwrap();
    assert_eq!(packet.flag(), flag::MESSAGE);
    assert_eq!(packet.version(), 1);
    assert_eq!(packet.masking_iv().to_vec(), hx(&d["masking_iv"]));
    assert_eq!(packet.nonce().to_vec(), hx(&up["nonce"]));
    assert_eq!(packet.header().to_vec(), hx(&d["message_ad"]));
    assert_eq!(
        packet.header()[16..39].to_vec(),
        hx(&d["static_header_plain"])
    );
    assert_eq!(
        packet.message_ciphertext().to_vec(),
        hx(&d["message_ciphertext"])
    );
    assert_eq!(
        packet.kind(),
        PacketKind::Message {
            src_id: id(&up["src_node_id"])
        }
    );
    let read = MessageKey::new(arr(&up["read_key"]));
    let msg = packet.open(&read).unwrap();
    assert_eq!(msg, ping(up));
    assert_eq!(msg.to_vec(), hx(&d["message_plaintext"]));

    // A writes with the key B reads with.
    let mut out = Vec::new();
    encode_message(
        &mut out,
        &n.b.id(),
        &n.a.id(),
        &arr(&d["masking_iv"]),
        &arr(&up["nonce"]),
        &read,
        &ping(up),
    )
    .unwrap();
    assert_eq!(hex::encode(&out), hex::encode(&wire));
}

#[test]
fn the_whoareyou_decodes_to_its_challenge_and_reencodes_byte_for_byte() {
    let v = vectors();
    let n = nodes(&v);
    let p = &v["packets"]["whoareyou"];
    let (up, d) = (&p["upstream"], &p["derived"]);
    let wire = hx(&up["packet"]);
    assert_eq!(wire.len(), WHOAREYOU_SIZE);

    let packet = Packet::decode(&n.b.id(), &wire).unwrap();
    let want = Whoareyou {
        id_nonce: arr(&up["id_nonce"]),
        enr_seq: up["enr_seq"].as_u64().unwrap(),
    };
    assert_eq!(packet.kind(), PacketKind::Whoareyou(want));
    assert_eq!(packet.src_id(), None);
    assert_eq!(packet.nonce().to_vec(), hx(&up["request_nonce"]));
    assert_eq!(packet.header().to_vec(), hx(&up["challenge_data"]));
    assert_eq!(packet.header()[39..].to_vec(), hx(&d["authdata"]));
    assert!(packet.message_ciphertext().is_empty());

    let mut out = Vec::new();
    let challenge = encode_whoareyou(
        &mut out,
        &n.b.id(),
        &arr(&d["masking_iv"]),
        &arr(&up["request_nonce"]),
        &want,
    );
    assert_eq!(hex::encode(&out), hex::encode(&wire));
    assert_eq!(challenge.to_vec(), hx(&up["challenge_data"]));
    // A resend from the stored challenge-data is the identical datagram.
    let mut again = Vec::new();
    resend_whoareyou(&mut again, &n.b.id(), &challenge);
    assert_eq!(again, wire);
}

/// Both handshake vectors: B accepts (with `known` as B's copy of A's record) and A's
/// encoder reproduces the packet from the fixed ephemeral key.
fn check_handshake(name: &str, known: Option<Enr>, include_record: bool) {
    let v = vectors();
    let n = nodes(&v);
    let p = &v["packets"][name];
    let (up, d) = (&p["upstream"], &p["derived"]);
    let wire = hx(&up["packet"]);
    let challenge = hx(&up["whoareyou_challenge_data"]);

    let packet = Packet::decode(&n.b.id(), &wire).unwrap();
    assert_eq!(packet.flag(), flag::HANDSHAKE);
    assert_eq!(packet.header().to_vec(), hx(&d["message_ad"]), "{name}");
    assert_eq!(
        packet.message_ciphertext().to_vec(),
        hx(&d["message_ciphertext"])
    );
    let PacketKind::Handshake(auth) = packet.kind() else {
        panic!("{name}: not a handshake");
    };
    assert_eq!(auth.src_id, id(&up["src_node_id"]));
    assert_eq!(auth.id_signature.to_vec(), hx(&d["id_signature"]));
    assert_eq!(auth.ephemeral_key.to_vec(), hx(&up["ephemeral_pubkey"]));
    assert_eq!(
        auth.record.map(<[u8]>::len).unwrap_or(0) as u64,
        d["record_len"].as_u64().unwrap()
    );
    assert_eq!(
        id_signature_digest(&challenge, auth.ephemeral_key, &n.b.id()).to_vec(),
        hx(&d["id_signature_input_sha256"])
    );
    // B's side of the ECDH: its static key with A's ephemeral key.
    let eph_pub = NodePublicKey::from_compressed(auth.ephemeral_key).unwrap();
    assert_eq!(
        ecdh(&eph_pub.secp(), n.b.secp()).to_vec(),
        hx(&d["ecdh_shared_secret"])
    );

    let accepted = packet
        .accept_handshake(&n.b, &challenge, known.as_ref())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(accepted.record.node_id(), n.a.id());
    assert_eq!(accepted.message, ping(up));
    assert_eq!(accepted.message.to_vec(), hx(&d["message_plaintext"]));
    assert_eq!(accepted.keys.read.as_bytes().to_vec(), hx(&up["read_key"]));
    assert_eq!(
        accepted.keys.read.as_bytes().to_vec(),
        hx(&d["initiator_key"])
    );
    assert_eq!(
        accepted.keys.write.as_bytes().to_vec(),
        hx(&d["recipient_key"])
    );

    let ephemeral = secp256k1::SecretKey::from_secret_bytes(arr(&up["ephemeral_key"])).unwrap();
    let record = include_record.then(|| record_a(&v));
    let mut out = Vec::new();
    let keys = encode_handshake(
        &mut out,
        &n.a,
        n.b.public(),
        &challenge,
        &ephemeral,
        record.as_ref(),
        &arr(&d["masking_iv"]),
        &arr(&up["nonce"]),
        &ping(up),
    )
    .unwrap();
    assert_eq!(hex::encode(&out), hex::encode(&wire), "{name}");
    // The initiator's session is the recipient's mirrored.
    assert_eq!(
        keys,
        SessionKeys {
            write: accepted.keys.read.clone(),
            read: accepted.keys.write.clone()
        }
    );
}

#[test]
fn the_handshake_without_record_is_accepted_against_the_known_record_and_reencodes() {
    let v = vectors();
    check_handshake("ping_handshake", Some(record_a(&v)), false);
}

#[test]
fn the_handshake_with_record_is_accepted_by_a_node_that_knew_none_and_reencodes() {
    check_handshake("ping_handshake_with_enr", None, true);
    // Knowing the same record (seq 1 = carried seq 1) keeps the known copy: same result.
    let v = vectors();
    check_handshake("ping_handshake_with_enr", Some(record_a(&v)), true);
}

#[test]
fn the_carried_record_decodes_to_its_published_fields_though_it_has_no_udp_entry() {
    let v = vectors();
    let d = &v["packets"]["ping_handshake_with_enr"]["derived"];
    let r = record_a(&v);
    let want = &d["record_decoded"];
    assert_eq!(r.seq(), want["seq"].as_u64().unwrap());
    assert_eq!(r.node_id(), id(&want["node_id"]));
    assert_eq!(r.as_bytes().len() as u64, want["size"].as_u64().unwrap());
    assert_eq!(r.ip4().unwrap().to_string(), want["ip"].as_str().unwrap());
    assert_eq!(r.udp4(), None);
    assert_eq!(r.to_string(), d["record_text"].as_str().unwrap());
}

#[test]
fn a_handshake_without_record_from_a_node_we_know_nothing_of_is_refused() {
    let v = vectors();
    let n = nodes(&v);
    let up = &v["packets"]["ping_handshake"]["upstream"];
    let wire = hx(&up["packet"]);
    let packet = Packet::decode(&n.b.id(), &wire).unwrap();
    let challenge = hx(&up["whoareyou_challenge_data"]);
    assert_eq!(
        packet.accept_handshake(&n.b, &challenge, None).unwrap_err(),
        HandshakeError::NoRecord
    );
    // Against the other challenge (enr-seq 0 instead of 1) the signature fails.
    let other =
        hx(&v["packets"]["ping_handshake_with_enr"]["upstream"]["whoareyou_challenge_data"]);
    assert_eq!(
        packet
            .accept_handshake(&n.b, &other, Some(&record_a(&v)))
            .unwrap_err(),
        HandshakeError::BadSignature
    );
}

#[test]
fn ecdh_gives_the_compressed_shared_point() {
    let v = vectors();
    let up = &v["crypto"]["ecdh"]["upstream"];
    let public = NodePublicKey::from_compressed(&hx(&up["public_key"])).unwrap();
    let secret = key(&up["secret_key"]);
    assert_eq!(
        ecdh(&public.secp(), secret.secp()).to_vec(),
        hx(&up["shared_secret"])
    );
}

#[test]
fn key_derivation_matches_and_the_swapped_hkdf_arguments_do_not() {
    let v = vectors();
    let kd = &v["crypto"]["key_derivation"];
    let (up, d) = (&kd["upstream"], &kd["derived"]);
    let eph = key(&up["ephemeral_key"]);
    let dest = NodePublicKey::from_compressed(&hx(&up["dest_pubkey"])).unwrap();
    let secret = ecdh(&dest.secp(), eph.secp());
    assert_eq!(secret.to_vec(), hx(&d["ecdh_shared_secret"]));
    let challenge = hx(&up["challenge_data"]);
    let keys = derive_keys(
        &secret,
        &id(&up["node_id_a"]),
        &id(&up["node_id_b"]),
        &challenge,
    );
    assert_eq!(keys.initiator_key.to_vec(), hx(&up["initiator_key"]));
    assert_eq!(keys.recipient_key.to_vec(), hx(&up["recipient_key"]));

    // The order the spec text had before devp2p#271 (salt = secret, IKM = challenge-data)
    // gives the published wrong key, which ours is not.
    let wrong = hx(&d["wrong_argument_order_initiator_key"]);
    let mut okm = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(&secret), &challenge)
        .expand(&hx(&d["kdf_info"]), &mut okm)
        .unwrap();
    assert_eq!(okm[..16].to_vec(), wrong);
    assert_ne!(keys.initiator_key.to_vec(), wrong);
    // And the right order through the same HKDF gives ours (the PRK is the published one).
    let (prk, _) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(&challenge), &secret);
    assert_eq!(prk.to_vec(), hx(&d["hkdf_prk"]));
}

#[test]
fn the_id_nonce_signature_is_reproduced_and_verifies() {
    let v = vectors();
    let s = &v["crypto"]["id_nonce_signing"];
    let (up, d) = (&s["upstream"], &s["derived"]);
    let k = key(&up["static_key"]);
    assert_eq!(
        k.public().compressed().to_vec(),
        hx(&d["static_pubkey_compressed"])
    );
    let challenge = hx(&up["challenge_data"]);
    let eph: [u8; 33] = arr(&up["ephemeral_pubkey"]);
    let node_b = id(&up["node_id_b"]);
    assert_eq!(
        id_signature_digest(&challenge, &eph, &node_b).to_vec(),
        hx(&d["signing_input_sha256"])
    );
    let sig = sign_id_nonce(&k, &challenge, &eph, &node_b);
    assert_eq!(sig.to_vec(), hx(&up["id_signature"]));
    assert!(verify_id_signature(
        k.public(),
        &sig,
        &challenge,
        &eph,
        &node_b
    ));
    let mut bad = sig;
    bad[10] ^= 1;
    assert!(!verify_id_signature(
        k.public(),
        &bad,
        &challenge,
        &eph,
        &node_b
    ));
    assert!(!verify_id_signature(
        k.public(),
        &sig,
        &challenge[1..],
        &eph,
        &node_b
    ));
}

#[test]
fn aes_gcm_seals_to_the_published_ciphertext_and_refuses_a_changed_one() {
    let v = vectors();
    let up = &v["crypto"]["aes_gcm"]["upstream"];
    let key = MessageKey::new(arr(&up["key"]));
    let (nonce, ad, pt) = (arr(&up["nonce"]), hx(&up["ad"]), hx(&up["plaintext"]));
    let sealed = key.seal(&nonce, &ad, &pt);
    assert_eq!(sealed, hx(&up["ciphertext_with_tag"]));
    assert_eq!(key.open(&nonce, &ad, &sealed).unwrap(), pt);
    let mut bad = sealed.clone();
    bad[0] ^= 1;
    assert!(key.open(&nonce, &ad, &bad).is_err());
    assert!(key.open(&nonce, &ad[1..], &sealed).is_err());
}

#[test]
fn the_decode_error_packets_are_refused_as_geth_refuses_them() {
    let v = vectors();
    let n = nodes(&v);
    let e = &v["decode_errors"];
    let decode = |name: &str| {
        let wire = hx(&e[name]["packet"]);
        Packet::decode(&n.b.id(), &wire).unwrap_err()
    };
    assert_eq!(decode("too_short_62"), PacketError::TooShort(62));
    assert_eq!(decode("zero_63"), PacketError::ProtocolId);
    assert_eq!(decode("truncated_handshake"), PacketError::MessageTooShort);
    // All three are "not discv5" in geth's sense: a shared socket passes them on.
    for name in ["too_short_62", "zero_63", "truncated_handshake"] {
        assert!(decode(name).is_not_discv5(), "{name}");
    }
}

#[test]
fn a_packet_for_another_node_does_not_unmask() {
    let v = vectors();
    let n = nodes(&v);
    let wire = hx(&v["packets"]["ping_message"]["upstream"]["packet"]);
    assert_eq!(
        Packet::decode(&n.a.id(), &wire).unwrap_err(),
        PacketError::ProtocolId
    );
}
