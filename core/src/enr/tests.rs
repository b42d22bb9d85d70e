//! Malformed and hostile records, and the builder's guarantees.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use quickcheck::quickcheck;
use rlp::RlpStream;
use secp256k1::Message;

use super::*;
use crate::identity::{NodeSecretKey, SignatureScheme};
use crate::keccak::keccak256;

fn key() -> NodeSecretKey {
    NodeSecretKey::from_hex("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
        .unwrap()
}

/// Signs `pairs` exactly in the given order (so tests can make records that break the rules).
fn sign_raw(k: &NodeSecretKey, seq: u64, pairs: &[(&[u8], Vec<u8>)], high_s: bool) -> Vec<u8> {
    let mut content = RlpStream::new_list(1 + 2 * pairs.len());
    content.append(&seq);
    for (kk, v) in pairs {
        content.append(kk);
        content.append_raw(v, 1);
    }
    let content = content.out();
    let mut sig = secp256k1::ecdsa::sign(Message::from_digest(keccak256(&content)), k.secp())
        .serialize_compact();
    if high_s {
        // s' = n - s is the same signature's malleated twin.
        let n = hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
            .unwrap();
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = i16::from(n[i]) - i16::from(sig[32 + i]) - borrow;
            borrow = i16::from(d < 0);
            sig[32 + i] = (d + 256 * borrow) as u8;
        }
    }
    let mut rec = RlpStream::new_list(2 + 2 * pairs.len());
    rec.append(&&sig[..]);
    rec.append(&seq);
    for (kk, v) in pairs {
        rec.append(kk);
        rec.append_raw(v, 1);
    }
    rec.out().to_vec()
}

fn v4_pairs(k: &NodeSecretKey) -> Vec<(&'static [u8], Vec<u8>)> {
    vec![
        (b"id", rlp::encode(&"v4").to_vec()),
        (b"ip", rlp::encode(&&[127u8, 0, 0, 1][..]).to_vec()),
        (
            b"secp256k1",
            rlp::encode(&&k.public().compressed()[..]).to_vec(),
        ),
    ]
}

#[test]
fn a_hand_signed_record_in_canonical_order_verifies() {
    let k = key();
    let raw = sign_raw(&k, 5, &v4_pairs(&k), false);
    let enr = Enr::decode(&raw).unwrap();
    assert_eq!(enr.seq(), 5);
    assert_eq!(enr.node_id(), k.id());
}

#[test]
fn unsorted_and_duplicate_keys_are_rejected_even_when_signed() {
    let k = key();
    let mut p = v4_pairs(&k);
    p.swap(0, 1);
    assert_eq!(
        Enr::decode(&sign_raw(&k, 1, &p, false)).unwrap_err(),
        EnrError::UnsortedKeys(b"id".to_vec())
    );
    let mut p = v4_pairs(&k);
    p.insert(1, (b"id", rlp::encode(&"v4").to_vec()));
    assert_eq!(
        Enr::decode(&sign_raw(&k, 1, &p, false)).unwrap_err(),
        EnrError::DuplicateKey(b"id".to_vec())
    );
}

#[test]
fn a_high_s_signature_is_rejected_like_geth_does() {
    let k = key();
    let low = sign_raw(&k, 1, &v4_pairs(&k), false);
    let high = sign_raw(&k, 1, &v4_pairs(&k), true);
    // The twin is the same signature in the other (high-s) form, not just damaged bytes.
    // Both records are longer than 55 bytes: f8 <len>, then b8 40 <64-byte signature>.
    let sig_of = |raw: &[u8]| raw[4..68].to_vec();
    let (low_sig, high_sig) = (sig_of(&low), sig_of(&high));
    assert_eq!(Enr::decode(&low).unwrap().signature(), &low_sig[..]);
    assert_ne!(low_sig, high_sig);
    let mut normalized = secp256k1::ecdsa::Signature::from_compact(&high_sig).unwrap();
    normalized.normalize_s();
    assert_eq!(normalized.serialize_compact().to_vec(), low_sig);
    assert_eq!(Enr::decode(&high).unwrap_err(), EnrError::InvalidSignature);
}

#[test]
fn an_unknown_identity_scheme_is_rejected() {
    let k = key();
    let mut p = v4_pairs(&k);
    p[0].1 = rlp::encode(&"v5").to_vec();
    assert_eq!(
        Enr::decode(&sign_raw(&k, 1, &p, false)).unwrap_err(),
        EnrError::UnknownScheme(b"v5".to_vec())
    );
    p.remove(0);
    assert_eq!(
        Enr::decode(&sign_raw(&k, 1, &p, false)).unwrap_err(),
        EnrError::MissingScheme
    );
}

#[test]
fn structural_damage_is_reported_by_kind() {
    let k = key();
    let good = Enr::builder().sign(&k).unwrap();
    let mut trailing = good.as_bytes().to_vec();
    trailing.push(0x00);
    assert_eq!(Enr::decode(&trailing).unwrap_err(), EnrError::TrailingBytes);
    assert_eq!(
        Enr::decode(&[0xc1, 0x80]).unwrap_err(),
        EnrError::TooFewElements
    );
    assert!(matches!(
        Enr::decode(&[0xc4, 0x80, 0x01, 0x82, b'i', b'd'][..6]),
        Err(EnrError::Rlp(_))
    ));
    assert_eq!(
        Enr::decode(&[0xc3, 0x80, 0x01, 0x41]).unwrap_err(),
        EnrError::DanglingKey
    );
    assert!(matches!(Enr::decode(&[]), Err(EnrError::Rlp(_))));
    assert!(matches!(
        Enr::decode(&[0x83, 1, 2, 3]),
        Err(EnrError::Rlp(_))
    ));
}

#[test]
fn rlp_damage_reads_as_words_not_as_the_rlp_crates_variant_names() {
    for (input, words) in [
        (&[0x83, 1, 2, 3][..], "expected an RLP list"),
        (&[][..], "truncated"),
        (&[0xc4, 0x80, 0x01, 0x82, b'i'][..], "truncated"),
    ] {
        let text = Enr::decode(input).unwrap_err().to_string();
        assert!(text.contains(words), "{input:?}: {text}");
        assert!(!text.contains("Rlp"), "{input:?}: {text}");
    }
    // The text form too: `enr:AAAA` is three zero bytes.
    let text = "enr:AAAA".parse::<Enr>().unwrap_err().to_string();
    assert!(!text.contains("Rlp"), "{text}");
}

#[test]
fn to_builder_keeps_unknown_entries_and_bumps_the_sequence_number() {
    let k = key();
    let first = Enr::builder()
        .seq(7)
        .raw(b"snap", &[0xc0])
        .unwrap()
        .ip4(Ipv4Addr::new(10, 0, 0, 1))
        .sign(&k)
        .unwrap();
    let second = first.to_builder().tcp4(30303).sign(&k).unwrap();
    assert_eq!(second.seq(), 8);
    assert_eq!(second.get_raw(b"snap"), Some(&[0xc0][..]));
    assert_eq!(second.tcp4(), Some(30303));
    assert_eq!(second.ip4(), Some(Ipv4Addr::new(10, 0, 0, 1)));
}

#[test]
fn the_endpoint_prefers_the_more_global_address_and_ipv4_on_ties() {
    let k = key();
    let both_public = Enr::builder()
        .ip4(Ipv4Addr::new(1, 2, 3, 4))
        .ip6("2a00::1".parse().unwrap())
        .udp4(1000)
        .udp6(2000)
        .sign(&k)
        .unwrap();
    assert_eq!(
        both_public.udp_endpoint(),
        Some("1.2.3.4:1000".parse().unwrap())
    );
    let private_v4 = Enr::builder()
        .ip4(Ipv4Addr::new(192, 168, 0, 1))
        .ip6("2a00::1".parse().unwrap())
        .udp4(1000)
        .sign(&k)
        .unwrap();
    // udp6 falls back to udp when absent.
    assert_eq!(
        private_v4.udp_endpoint(),
        Some("[2a00::1]:1000".parse().unwrap())
    );
    assert_eq!(
        private_v4.ip(),
        Some(IpAddr::V6(Ipv6Addr::new(0x2a00, 0, 0, 0, 0, 0, 0, 1)))
    );
}

quickcheck! {
    fn built_records_round_trip_through_bytes_and_text(seq: u64, ip: u32, udp: u16, extra: Vec<u8>) -> bool {
        let k = key();
        let mut extra = extra;
        extra.truncate(100);
        let enr = Enr::builder()
            .seq(seq)
            .ip4(Ipv4Addr::from(ip))
            .udp4(udp)
            .raw(b"xtra", &rlp::encode(&extra))
            .unwrap()
            .sign(&k)
            .unwrap();
        let back = Enr::decode(enr.as_bytes()).unwrap();
        let text: Enr = enr.to_string().parse().unwrap();
        back == enr && text == enr && back.seq() == seq && back.udp4() == Some(udp)
            && back.ip4() == Some(Ipv4Addr::from(ip))
    }

    fn arbitrary_bytes_never_panic_the_decoder(data: Vec<u8>) -> bool {
        let _ = Enr::decode(&data);
        let mut list = vec![0xf8, data.len().min(255) as u8];
        list.extend_from_slice(&data);
        let _ = Enr::decode(&list);
        true
    }
}

#[test]
fn the_expected_signer_short_cuts_only_its_own_key() {
    let k = key();
    let other =
        NodeSecretKey::from_hex("49a7b37aa6f6645917e7b807e9d1c00d4fa71f18343b0d4122a4d2df64dd6fee")
            .unwrap();
    let rec = Enr::builder()
        .ip4(Ipv4Addr::new(10, 0, 0, 1))
        .udp4(30303)
        .sign(&k)
        .unwrap();
    let bytes = rec.as_bytes();
    for scheme in [
        SignatureScheme::Secp256k1,
        SignatureScheme::InsecureSimulation,
    ] {
        for hint in [None, Some(k.public()), Some(other.public())] {
            let (d, rest) = Enr::decode_prefix(bytes, scheme, hint).unwrap();
            assert!(rest.is_empty());
            assert_eq!(d, rec);
            assert_eq!(d.public_key(), k.public(), "hint {hint:?}");
            assert_eq!(d.node_id(), k.id());
        }
    }
    // A forged signature still fails under the real scheme, hint or not.
    let mut forged = bytes.to_vec();
    forged[5] ^= 1;
    for hint in [None, Some(k.public())] {
        assert!(Enr::decode_prefix(&forged, SignatureScheme::Secp256k1, hint).is_err());
    }
}
