//! Helpers shared by the integration tests: reading the vector files and hex.
#![allow(dead_code)]

pub mod net;
pub mod pair;
pub mod raw_peer;

use serde_json::Value;

/// Parses `tests/vectors/<name>` (copies of the project's shared vectors, kept here so that
/// the tests are hermetic).
pub fn vector(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

/// Decodes the hex string at `v` (with or without `0x`).
pub fn hx(v: &Value) -> Vec<u8> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    hex::decode(s.trim_start_matches("0x")).unwrap_or_else(|e| panic!("bad hex {s}: {e}"))
}

/// Decodes the hex string at `v` into a fixed-size array.
pub fn hx_arr<const N: usize>(v: &Value) -> [u8; N] {
    hx(v)
        .try_into()
        .unwrap_or_else(|_| panic!("{v} is not {N} bytes"))
}
