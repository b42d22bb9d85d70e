//! A fast 128-bit multiply-rotate mix. It detects accidental change and resists nobody: the
//! simulated signature scheme's packet checksum and the network simulation's trace digest
//! use it where Keccak-256 would cost a large share of a run.

/// Two 64-bit lanes; every word is mixed into both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mix128 {
    /// The first lane.
    pub a: u64,
    /// The second lane.
    pub b: u64,
}

impl Mix128 {
    /// A mix starting from the given lanes.
    pub const fn new(a: u64, b: u64) -> Self {
        Mix128 { a, b }
    }

    /// Mixes one word in.
    #[inline]
    pub fn mix(&mut self, w: u64) {
        self.a = (self.a ^ w)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
        self.b = (self.b.rotate_left(23) ^ w).wrapping_mul(0xC2B2_AE3D_27D4_EB4F) ^ self.a;
    }
}
