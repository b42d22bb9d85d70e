//! The one place a driver reads OS randomness: a seed for the node's ChaCha20 stream, drawn
//! once at start-up. Everything random in the core (keys, nonces, padding, lookup targets,
//! jitter) comes from that stream.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// A ChaCha20 stream seeded from the operating system's entropy source.
pub fn os_seeded_rng() -> Result<ChaCha20Rng, getrandom::Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)?;
    Ok(ChaCha20Rng::from_seed(seed))
}
