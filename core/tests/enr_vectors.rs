//! EIP-778 records from `vectors/enr.json`: decode, verify, re-encode, and rebuild by signing.

use std::net::Ipv4Addr;
use std::str::FromStr;

use devp2p_core::enr::{Enr, EnrBuilder, EnrError, MAX_RECORD_SIZE};
use devp2p_core::NodeSecretKey;
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors/enr.json")).unwrap()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_str()
        .unwrap_or_else(|| panic!("{path:?}"))
}

#[test]
fn the_eip778_example_decodes_to_its_published_fields() {
    let v = vectors();
    let e = &v["eip778_example"];
    let enr = Enr::from_str(s(e, &["text"])).unwrap();
    assert_eq!(enr.seq(), 1);
    assert_eq!(enr.node_id().to_string(), s(e, &["expected_node_id"]));
    assert_eq!(enr.ip4(), Some(Ipv4Addr::new(127, 0, 0, 1)));
    assert_eq!(enr.udp4(), Some(30303));
    assert_eq!(enr.tcp4(), None);
    assert_eq!(
        hex::encode(enr.public_key().compressed()),
        s(e, &["expected", "secp256k1"])
    );
    assert_eq!(
        hex::encode(enr.signature()),
        s(e, &["expected", "signature"])
    );
    assert_eq!(hex::encode(enr.as_bytes()), s(e, &["decoded", "rlp"]));
    assert_eq!(enr.get_raw(b"id"), Some(&[0x82, b'v', b'4'][..]));
    assert_eq!(enr.to_string(), s(e, &["text"]));
}

#[test]
fn signing_the_example_content_reproduces_the_published_record_bit_for_bit() {
    // RFC 6979 signatures are deterministic, so our own builder must produce the exact record.
    let v = vectors();
    for name in ["eip778_example", "geth_valid_seq99"] {
        let e = &v[name];
        let key = NodeSecretKey::from_hex(s(e, &["private_key"])).unwrap();
        let seq = e["decoded"]["seq"].as_u64().unwrap();
        let built = EnrBuilder::new()
            .seq(seq)
            .ip4(Ipv4Addr::new(127, 0, 0, 1))
            .udp4(30303)
            .sign(&key)
            .unwrap();
        assert_eq!(built.to_string(), s(e, &["text"]), "{name}");
        assert_eq!(hex::encode(built.as_bytes()), s(e, &["decoded", "rlp"]));
        assert_eq!(built.node_id(), key.id());
    }
}

#[test]
fn the_geth_seq99_record_verifies_with_its_node_id() {
    let v = vectors();
    let e = &v["geth_valid_seq99"];
    let enr = Enr::from_str(s(e, &["text"])).unwrap();
    assert_eq!(enr.seq(), 99);
    assert_eq!(enr.node_id().to_string(), s(e, &["decoded", "node_id"]));
}

#[test]
fn a_record_with_a_bogus_signature_is_rejected() {
    let v = vectors();
    let e = &v["geth_invalid_signature"];
    assert_eq!(
        Enr::from_str(s(e, &["text"])).unwrap_err(),
        EnrError::InvalidSignature
    );
    let raw = hex::decode(s(e, &["decoded", "rlp"])).unwrap();
    assert_eq!(Enr::decode(&raw).unwrap_err(), EnrError::InvalidSignature);
}

#[test]
fn a_record_over_300_bytes_is_neither_built_nor_accepted() {
    let key = NodeSecretKey::from_bytes(&[7u8; 32]).unwrap();
    let big = EnrBuilder::new()
        .raw(b"zz", &rlp::encode(&vec![0xaau8; 200]))
        .unwrap();
    assert!(matches!(big.sign(&key), Err(EnrError::TooLarge { .. })));
    let fits = EnrBuilder::new()
        .raw(b"zz", &rlp::encode(&vec![0xaau8; 100]))
        .unwrap()
        .sign(&key)
        .unwrap();
    assert!(fits.as_bytes().len() <= MAX_RECORD_SIZE);
    assert_eq!(Enr::decode(fits.as_bytes()).unwrap(), fits);
}

#[test]
fn text_without_prefix_or_with_padding_is_rejected() {
    let v = vectors();
    let text = s(&v, &["eip778_example", "text"]);
    assert_eq!(
        Enr::from_str(&text[4..]).unwrap_err(),
        EnrError::MissingPrefix
    );
    assert_eq!(
        Enr::from_str(&format!("{text}=")).unwrap_err(),
        EnrError::InvalidBase64
    );
    let long = format!("enr:{}", "A".repeat(1000));
    assert!(matches!(
        Enr::from_str(&long),
        Err(EnrError::TooLarge { .. })
    ));
}
