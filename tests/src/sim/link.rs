//! How the simulated network carries bytes: per-link latency drawn once from the seed, and
//! per-packet jitter, loss, reordering and uplink bandwidth drawn from the sending node's
//! own network RNG (one stream per node, derived from the seed, so that the draws do not
//! depend on the order in which threads process nodes).

use std::time::Duration;

/// The network's behaviour. Latency is a property of a pair of nodes (fixed for the run,
/// derived from the seed and the pair); the rest is drawn per packet.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LinkConfig {
    /// Shortest one-way latency of a link (at least 1 ms: it is the parallel simulation's
    /// lookahead, [`LinkConfig::lookahead_ms`]).
    pub latency_min: Duration,
    /// Longest one-way latency of a link.
    pub latency_max: Duration,
    /// Each packet (datagram or stream write) is delayed by a further uniform `[0, jitter]`.
    /// Datagrams may therefore overtake each other; a TCP stream never reorders.
    pub jitter: Duration,
    /// Probability that a datagram is lost. TCP is reliable: stream writes are never lost
    /// (only cut by partitions and crashes).
    pub loss: f64,
    /// Probability that a datagram is held back by one more link latency, so that later
    /// datagrams overtake it.
    pub reorder: f64,
    /// Uplink bytes per second of every node; `None`: unlimited. A node's packets leave one
    /// after another, each taking `len / bandwidth`, so a burst queues up.
    pub bandwidth: Option<u64>,
}

impl Default for LinkConfig {
    /// 10–150 ms latency, 10 ms jitter, no loss, no reordering, unlimited bandwidth.
    fn default() -> Self {
        Self {
            latency_min: Duration::from_millis(10),
            latency_max: Duration::from_millis(150),
            jitter: Duration::from_millis(10),
            loss: 0.0,
            reorder: 0.0,
            bandwidth: None,
        }
    }
}

impl LinkConfig {
    /// The fixed one-way latency between nodes `a` and `b` (symmetric), in milliseconds.
    pub fn latency_ms(&self, seed: u64, a: usize, b: usize) -> u64 {
        let (lo, hi) = (a.min(b) as u64, a.max(b) as u64);
        let min = self.latency_min.as_millis() as u64;
        let max = (self.latency_max.as_millis() as u64).max(min);
        let h = mix64(seed ^ mix64(lo.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ mix64(hi)));
        min + h % (max - min + 1)
    }

    /// The lookahead of the parallel simulation ([`Sim`](super::Sim)), in milliseconds:
    /// nothing a node does reaches another node sooner than the shortest link latency, so all
    /// events within one lookahead of each other can be processed per node, in parallel.
    ///
    /// # Panics
    /// If `latency_min` is under 1 ms: then a packet could arrive in the millisecond it was
    /// sent, and no node could run ahead of any other.
    pub fn lookahead_ms(&self) -> u64 {
        let ms = self.latency_min.as_millis() as u64;
        assert!(ms >= 1, "links need a latency of at least 1 ms: {self:?}");
        ms
    }

    /// Milliseconds `len` bytes occupy the uplink.
    pub fn transmission_ms(&self, len: usize) -> u64 {
        match self.bandwidth {
            Some(bw) if bw > 0 => (len as u64 * 1000).div_ceil(bw),
            _ => 0,
        }
    }
}

/// SplitMix64's finaliser: a cheap, well-mixed hash of a 64-bit value.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_symmetric_within_bounds_and_depends_on_the_seed() {
        let l = LinkConfig::default();
        let mut differs = false;
        for a in 0..50 {
            for b in 0..50 {
                let ms = l.latency_ms(7, a, b);
                assert_eq!(ms, l.latency_ms(7, b, a));
                assert!((10..=150).contains(&ms));
                differs |= ms != l.latency_ms(8, a, b);
            }
        }
        assert!(differs);
    }

    #[test]
    fn bandwidth_costs_time() {
        let l = LinkConfig {
            bandwidth: Some(1000),
            ..LinkConfig::default()
        };
        assert_eq!(l.transmission_ms(1000), 1000);
        assert_eq!(l.transmission_ms(1), 1);
        assert_eq!(LinkConfig::default().transmission_ms(1_000_000), 0);
    }
}
