//! ethereum/tests RLPTests, verbatim: every valid case encodes to the expected bytes and
//! passes our strict validation; every invalid case is rejected by it.

mod common;

use common::vector;
use devp2p_core::rlp_ext;
use rlp::RlpStream;
use serde_json::Value;

/// Appends the test-format value `v` ("#n" = decimal big integer, numbers, strings, lists).
fn append(s: &mut RlpStream, v: &Value) {
    match v {
        Value::String(t) if t.starts_with('#') => {
            let be = decimal_to_be(&t[1..]);
            s.append(&be.as_slice());
        }
        Value::String(t) => {
            s.append(&t.as_bytes());
        }
        Value::Number(n) => {
            s.append(&n.as_u64().expect("test integers fit u64"));
        }
        Value::Array(items) => {
            s.begin_list(items.len());
            for i in items {
                append(s, i);
            }
        }
        other => panic!("unexpected test value {other}"),
    }
}

/// Big-endian minimal bytes of a decimal number.
fn decimal_to_be(dec: &str) -> Vec<u8> {
    let mut be: Vec<u8> = Vec::new();
    for d in dec.bytes() {
        let mut carry = u32::from(d - b'0');
        for b in be.iter_mut().rev() {
            let v = u32::from(*b) * 10 + carry;
            *b = v as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            be.insert(0, carry as u8);
            carry >>= 8;
        }
    }
    be
}

#[test]
fn every_valid_case_encodes_and_validates() {
    let cases = vector("rlp/rlptest.json");
    let cases = cases.as_object().unwrap();
    assert_eq!(cases.len(), 28, "all of rlptest.json");
    for (name, case) in cases {
        let want = common::hx(&case["out"]);
        let mut s = RlpStream::new();
        append(&mut s, &case["in"]);
        assert_eq!(s.out().to_vec(), want, "{name}: encoding");
        assert_eq!(rlp_ext::validate(&want), Ok(()), "{name}: validation");
        if let Some(n) = case["in"].as_u64() {
            assert_eq!(
                rlp_ext::uint(&rlp::Rlp::new(&want)),
                Ok(n),
                "{name}: integer decode"
            );
        }
    }
}

#[test]
fn every_invalid_case_is_rejected() {
    let cases = vector("rlp/invalidRLPTest.json");
    let cases = cases.as_object().unwrap();
    assert_eq!(cases.len(), 26, "all of invalidRLPTest.json");
    for (name, case) in cases {
        let bytes = common::hx(&case["out"]);
        assert!(
            rlp_ext::validate(&bytes).is_err(),
            "{name}: {} must be rejected",
            hex::encode(&bytes)
        );
    }
}
