//! Keccak-256 (the original padding, not NIST SHA3-256), as every devp2p hash uses it.
//!
//! One place chooses the implementation: `keccak-asm` (CRYPTOGAMS assembly) absorbs about
//! 1.27x faster than the portable `sha3` crate on x86_64, and the RLPx frame MACs run one
//! Keccak sponge per byte sent and received, so the faster one is worth a dependency.

use keccak_asm::Digest;

/// A Keccak-256 sponge that can be absorbed into and read without being consumed.
#[derive(Clone, Default)]
pub struct Keccak256(keccak_asm::Keccak256);

impl Keccak256 {
    /// A fresh sponge.
    pub fn new() -> Self {
        Self::default()
    }

    /// Absorbs `data`.
    #[inline]
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything absorbed so far; the sponge stays open for more input.
    #[inline]
    pub fn digest(&self) -> [u8; 32] {
        self.0.clone().finalize().into()
    }

    /// The digest of everything absorbed, consuming the sponge.
    #[inline]
    pub fn finalize(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

impl std::fmt::Debug for Keccak256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keccak256 { .. }")
    }
}

/// Keccak-256 of one byte string.
#[inline]
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    keccak_asm::Keccak256::digest(data).into()
}

/// Keccak-256 of the concatenation of several byte strings, without concatenating them.
pub fn keccak256_concat(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = keccak_asm::Keccak256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_hashes_to_the_well_known_value() {
        assert_eq!(
            keccak256(b""),
            [
                0xc5, 0xd2, 0x46, 0x01, 0x86, 0xf7, 0x23, 0x3c, 0x92, 0x7e, 0x7d, 0xb2, 0xdc, 0xc7,
                0x03, 0xc0, 0xe5, 0x00, 0xb6, 0x53, 0xca, 0x82, 0x27, 0x3b, 0x7b, 0xfa, 0xd8, 0x04,
                0x5d, 0x85, 0xa4, 0x70
            ]
        );
    }

    #[test]
    fn digest_leaves_the_sponge_open() {
        let mut s = Keccak256::new();
        s.update(b"foo");
        let d1 = s.digest();
        assert_eq!(d1, keccak256(b"foo"));
        s.update(b"bar");
        assert_eq!(s.digest(), keccak256(b"foobar"));
        assert_eq!(keccak256_concat(&[b"foo", b"bar"]), keccak256(b"foobar"));
    }
}
