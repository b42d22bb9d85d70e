//! The EIP-8 handshake vectors and the RLPx frame vectors, read from the vector files.

mod common;

use common::{hx, hx_arr, vector};
use devp2p_core::rlpx::handshake::{decode_ack, decode_auth, HandshakeRandomness};
use devp2p_core::rlpx::{FrameCodec, Handshake, MessageFormat, Secrets};
use devp2p_core::{keccak::Keccak256, NodeSecretKey};
use serde_json::Value;

fn key(v: &Value) -> NodeSecretKey {
    NodeSecretKey::from_bytes(&hx(v)).unwrap()
}

fn secp(v: &Value) -> secp256k1::SecretKey {
    secp256k1::SecretKey::from_secret_bytes(hx_arr(v)).unwrap()
}

struct Eip8 {
    v: Value,
}

impl Eip8 {
    fn load() -> Self {
        Eip8 {
            v: vector("rlpx_handshake_eip8.json"),
        }
    }
    fn src(&self, k: &str) -> &Value {
        &self.v["source"][k]
    }
    fn derived(&self, k: &str) -> &Value {
        &self.v["derived"][k]
    }
    /// Secrets for (auth, ack) as each side derives them from the vector keys and nonces.
    fn secrets(&self, auth: &[u8], ack: &[u8], initiator: bool) -> Secrets {
        let a = key(self.src("static_key_a"));
        let b = key(self.src("static_key_b"));
        let (own_eph, remote_eph) = if initiator {
            (
                secp(self.src("ephemeral_key_a")),
                decode_ack(&a, ack).unwrap().recipient_ephemeral,
            )
        } else {
            (
                secp(self.src("ephemeral_key_b")),
                decode_auth(&b, auth).unwrap().initiator_ephemeral,
            )
        };
        Secrets::derive(
            initiator,
            &own_eph,
            &remote_eph,
            &hx_arr(self.src("nonce_a")),
            &hx_arr(self.src("nonce_b")),
            auth,
            ack,
        )
    }
}

fn foo_digest(mut mac: Keccak256) -> String {
    mac.update(b"foo");
    hex::encode(mac.digest())
}

#[test]
fn all_three_auth_messages_decrypt_to_the_published_fields() {
    let t = Eip8::load();
    let b = key(t.src("static_key_b"));
    for (name, field, format) in [
        ("auth1", "auth1_legacy", MessageFormat::Legacy),
        ("auth2", "auth2_eip8", MessageFormat::Eip8),
        ("auth3", "auth3_eip8_version56_extra", MessageFormat::Eip8),
    ] {
        let want = &t.derived("decoded")[name];
        let auth = decode_auth(&b, &hx(t.src(field))).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(auth.format, format, "{name}");
        assert_eq!(
            auth.initiator_key.raw().to_vec(),
            hx(&want["initiator_pubkey"]),
            "{name}"
        );
        assert_eq!(auth.nonce.to_vec(), hx(&want["initiator_nonce"]), "{name}");
        assert_eq!(
            auth.initiator_ephemeral.raw().to_vec(),
            hx(t.derived("ephemeral_pubkey_a")),
            "{name}: ephemeral key recovered from the signature"
        );
        if let Some(v) = want["version"].as_u64() {
            assert_eq!(auth.version, v, "{name}");
        }
    }
}

#[test]
fn all_three_ack_messages_decrypt_to_the_published_fields() {
    let t = Eip8::load();
    let a = key(t.src("static_key_a"));
    for (name, field, format) in [
        ("ack1", "ack1_legacy", MessageFormat::Legacy),
        ("ack2", "ack2_eip8", MessageFormat::Eip8),
        ("ack3", "ack3_eip8_version57_extra", MessageFormat::Eip8),
    ] {
        let want = &t.derived("decoded")[name];
        let ack = decode_ack(&a, &hx(t.src(field))).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ack.format, format, "{name}");
        assert_eq!(
            ack.recipient_ephemeral.raw().to_vec(),
            hx(&want["recipient_ephemeral_pubkey"])
        );
        assert_eq!(ack.nonce.to_vec(), hx(&want["recipient_nonce"]), "{name}");
        if let Some(v) = want["version"].as_u64() {
            assert_eq!(ack.version, v, "{name}");
        }
    }
}

#[test]
fn node_b_derives_the_published_secrets_and_ingress_mac_from_auth2_ack2() {
    let t = Eip8::load();
    let expected = t.src("expected_for_auth2_ack2_on_node_b");
    let s = t.secrets(&hx(t.src("auth2_eip8")), &hx(t.src("ack2_eip8")), false);
    assert_eq!(
        hex::encode(s.aes_secret),
        expected["aes_secret"].as_str().unwrap()
    );
    assert_eq!(
        hex::encode(s.mac_secret),
        expected["mac_secret"].as_str().unwrap()
    );
    assert_eq!(
        foo_digest(s.ingress_mac),
        expected["ingress_mac_after_update_foo"].as_str().unwrap()
    );
}

#[test]
fn both_sides_agree_on_the_mac_states_of_every_auth_ack_pair() {
    let t = Eip8::load();
    let macs = t.derived("mac_states_after_update_foo");
    for (pair, auth, ack) in [
        ("Auth₁+Ack₁", "auth1_legacy", "ack1_legacy"),
        ("Auth₂+Ack₂", "auth2_eip8", "ack2_eip8"),
        (
            "Auth₃+Ack₃",
            "auth3_eip8_version56_extra",
            "ack3_eip8_version57_extra",
        ),
    ] {
        let (auth, ack) = (hx(t.src(auth)), hx(t.src(ack)));
        let a = t.secrets(&auth, &ack, true);
        let b = t.secrets(&auth, &ack, false);
        let want = &macs[pair];
        assert_eq!(
            foo_digest(b.ingress_mac),
            want["b_ingress_eq_a_egress"].as_str().unwrap(),
            "{pair}"
        );
        assert_eq!(
            foo_digest(a.egress_mac),
            want["b_ingress_eq_a_egress"].as_str().unwrap(),
            "{pair}"
        );
        assert_eq!(
            foo_digest(b.egress_mac),
            want["b_egress_eq_a_ingress"].as_str().unwrap(),
            "{pair}"
        );
        assert_eq!(
            foo_digest(a.ingress_mac),
            want["b_egress_eq_a_ingress"].as_str().unwrap(),
            "{pair}"
        );
        assert_eq!(
            hex::encode(a.aes_secret),
            t.derived("aes_secret").as_str().unwrap(),
            "{pair}"
        );
    }
}

/// A recipient state machine with node B's vector ephemeral key and nonce.
fn recipient_b(t: &Eip8) -> Handshake {
    let mut rnd = HandshakeRandomness::draw(
        &mut <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(3),
    );
    rnd.ephemeral_key = secp(t.src("ephemeral_key_b"));
    rnd.nonce = hx_arr(t.src("nonce_b"));
    Handshake::recipient_with(&key(t.src("static_key_b")), rnd)
}

#[test]
fn a_recipient_reads_each_auth_and_answers_in_the_same_format() {
    let t = Eip8::load();
    let a = key(t.src("static_key_a"));
    for (field, format) in [
        ("auth1_legacy", MessageFormat::Legacy),
        ("auth2_eip8", MessageFormat::Eip8),
        ("auth3_eip8_version56_extra", MessageFormat::Eip8),
    ] {
        let auth = hx(t.src(field));
        let mut b = recipient_b(&t);
        // Feed it one byte at a time, with a trailing frame byte that must not be consumed.
        let mut stream = auth.clone();
        stream.push(0xee);
        let mut used = 0;
        for i in 0..stream.len() {
            used += b.read(&stream[i..i + 1]).unwrap();
        }
        assert_eq!(used, auth.len(), "{field}");
        let ack = b.take_output();
        if format == MessageFormat::Legacy {
            assert_eq!(ack.len(), 210, "legacy auth gets a legacy ack");
        } else {
            assert_eq!(
                usize::from(u16::from_be_bytes([ack[0], ack[1]])),
                ack.len() - 2
            );
        }
        let decoded = decode_ack(&a, &ack).unwrap();
        assert_eq!(decoded.format, format, "{field}");
        assert_eq!(decoded.nonce.to_vec(), hx(t.src("nonce_b")));
        let outcome = b.into_outcome().unwrap();
        assert_eq!(outcome.remote, *a.public(), "{field}");
        assert_eq!(
            hex::encode(outcome.secrets.aes_secret),
            t.derived("aes_secret").as_str().unwrap()
        );
    }
}

#[test]
fn geth_golden_frame_matches_in_layout_and_ciphertext() {
    // geth's TestFrameReadWrite fakes the MAC sponge (every digest is 16 x 0x01), so only the
    // header and body ciphertext are comparable; the MAC positions are checked separately.
    let v = vector("rlpx_frames.json");
    let g = &v["geth_frame_read_write"];
    let secrets = Secrets {
        aes_secret: hx_arr(&g["aes_secret"]),
        mac_secret: hx_arr(&g["mac_secret"]),
        egress_mac: Keccak256::new(),
        ingress_mac: Keccak256::new(),
    };
    let mut codec = FrameCodec::new(secrets);
    let mut out = Vec::new();
    codec
        .encode(
            g["msg_code"].as_u64().unwrap(),
            &hx(&g["msg_payload_rlp"]),
            &mut out,
        )
        .unwrap();
    let golden = hx(&g["frame"]);
    assert_eq!(out.len(), golden.len());
    assert_eq!(out[..16], golden[..16], "header ciphertext");
    assert_eq!(out[32..48], golden[32..48], "body ciphertext");
}

#[test]
fn derived_session_frames_match_byte_for_byte_in_both_directions() {
    let t = Eip8::load();
    let v = vector("rlpx_frames.json");
    let frames = &v["eip8_session_frames"];
    let (auth, ack) = (hx(t.src("auth2_eip8")), hx(t.src("ack2_eip8")));
    let mut a = FrameCodec::new(t.secrets(&auth, &ack, true));
    let mut b = FrameCodec::new(t.secrets(&auth, &ack, false));
    for dir in ["b_to_a", "a_to_b"] {
        let (sender, receiver) = if dir == "b_to_a" {
            (&mut b, &mut a)
        } else {
            (&mut a, &mut b)
        };
        for (i, f) in frames[dir].as_array().unwrap().iter().enumerate() {
            let code = f["msg_code"].as_u64().unwrap();
            // The first frame is Hello (never compressed); the rest go after the Hello exchange.
            sender.set_snappy(i > 0);
            receiver.set_snappy(i > 0);
            let mut out = Vec::new();
            sender.encode(code, &hx(&f["payload"]), &mut out).unwrap();
            assert_eq!(
                hex::encode(&out),
                f["frame"].as_str().unwrap(),
                "{dir} frame {i}"
            );
            let (used, frame) = receiver.decode(&out).unwrap();
            let frame = frame.expect("one whole frame");
            assert_eq!(
                (frame.id, frame.payload.to_vec()),
                (code, hx(&f["payload"])),
                "{dir} {i}"
            );
            assert_eq!(used, out.len());
        }
    }
}
