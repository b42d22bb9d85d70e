//! Public keys already validated and hashed, for processes that run many nodes.
//!
//! Every key a node reads from the wire (a packet's sender, each entry of a Neighbors
//! packet, an ENR's `secp256k1` entry) is checked to lie on the curve and hashed into its
//! node id: about 0.4 µs each. A network simulation runs thousands of nodes that read the
//! same few thousand keys tens of millions of times. [`KnownKeys`] holds those conversions
//! once for the whole process; [`KnownKeys::enter`] makes them the ones that
//! [`NodePublicKey::from_raw`] and [`NodePublicKey::from_compressed`] consult first, on the
//! calling thread, until the guard drops.
//!
//! It changes no result: a key is taken from the set only when its bytes equal the input
//! byte for byte, and each entry was made by the same conversion from those bytes. Input that
//! is not in the set (every key of a real network) is converted as before. Nodes never need
//! it; it is a cache that the embedding process owns and installs.
//!
//! ```
//! use std::sync::Arc;
//! use devp2p_core::{KnownKeys, NodePublicKey, NodeSecretKey};
//! use rand_core::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
//! let key = NodeSecretKey::generate(&mut rng);
//! let mut known = KnownKeys::default();
//! known.insert(key.public());
//! let known = Arc::new(known);
//!
//! let _on_this_thread = KnownKeys::enter(known.clone());
//! let read = NodePublicKey::from_raw(key.public().raw()).unwrap();
//! assert_eq!(read.id(), key.id());
//! assert_eq!(NodePublicKey::from_compressed(&key.public().compressed()).unwrap(), read);
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::identity::{NodePublicKey, PUBLIC_KEY_LEN};

/// Length of a compressed SEC1 public key.
const COMPRESSED_LEN: usize = 33;

/// A set of validated public keys with their node ids, looked up by their raw64 and their
/// compressed forms. See the [module docs](self).
#[derive(Clone, Default)]
pub struct KnownKeys {
    /// By the first 8 bytes of the raw form (uniform: an x coordinate); the entry's own
    /// bytes are compared in full before it is used.
    raw: HashMap<u64, NodePublicKey, BuildHasherDefault<PrefixHasher>>,
    /// By bytes 1..9 of the compressed form, with the full compressed bytes to compare.
    compressed:
        HashMap<u64, ([u8; COMPRESSED_LEN], NodePublicKey), BuildHasherDefault<PrefixHasher>>,
}

impl KnownKeys {
    /// Adds `key`. Of two keys whose first 8 bytes agree (about one chance in 10^9 among
    /// 100,000 keys) the first stays and the other is converted each time, as without a set.
    pub fn insert(&mut self, key: &NodePublicKey) {
        self.raw.entry(prefix(&key.raw()[..8])).or_insert(*key);
        let c = key.compressed();
        self.compressed.entry(prefix(&c[1..9])).or_insert((c, *key));
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Makes `keys` the set this thread's key conversions consult, until the guard drops
    /// (then the previous one, if any, is back).
    pub fn enter(keys: Arc<KnownKeys>) -> KnownKeysGuard {
        let previous = CURRENT.with(|c| c.borrow_mut().replace(keys));
        KnownKeysGuard { previous }
    }
}

impl std::fmt::Debug for KnownKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownKeys")
            .field("len", &self.len())
            .finish()
    }
}

/// Keeps a [`KnownKeys`] set installed on its thread; see [`KnownKeys::enter`].
#[derive(Debug)]
#[must_use = "the set is uninstalled when the guard drops"]
pub struct KnownKeysGuard {
    previous: Option<Arc<KnownKeys>>,
}

impl Drop for KnownKeysGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<KnownKeys>>> = const { RefCell::new(None) };
}

/// The installed set's conversion of `raw`, if it holds it.
pub(crate) fn lookup_raw(raw: &[u8; PUBLIC_KEY_LEN]) -> Option<NodePublicKey> {
    CURRENT.with(|c| {
        let c = c.borrow();
        let k = c.as_ref()?.raw.get(&prefix(&raw[..8]))?;
        (k.raw() == raw).then_some(*k)
    })
}

/// The installed set's conversion of the compressed key `bytes`, if it holds it.
pub(crate) fn lookup_compressed(bytes: &[u8; COMPRESSED_LEN]) -> Option<NodePublicKey> {
    CURRENT.with(|c| {
        let c = c.borrow();
        let (full, k) = c.as_ref()?.compressed.get(&prefix(&bytes[1..9]))?;
        (full == bytes).then_some(*k)
    })
}

fn prefix(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

/// Hashes a `u64` key as itself: the keys are already uniform.
#[derive(Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeSecretKey;
    use rand_core::SeedableRng;

    #[test]
    fn conversions_with_a_set_equal_those_without_and_unknown_keys_still_convert() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let keys: Vec<NodeSecretKey> = (0..50).map(|_| NodeSecretKey::generate(&mut rng)).collect();
        let mut known = KnownKeys::default();
        for k in &keys[..25] {
            known.insert(k.public());
        }
        assert_eq!(known.len(), 25);
        let without: Vec<_> = keys
            .iter()
            .map(|k| {
                let p = k.public();
                (
                    NodePublicKey::from_raw(p.raw()).unwrap(),
                    NodePublicKey::from_compressed(&p.compressed()).unwrap(),
                )
            })
            .collect();
        let guard = KnownKeys::enter(Arc::new(known));
        for (k, (raw, compressed)) in keys.iter().zip(&without) {
            let p = k.public();
            let (r, c) = (
                NodePublicKey::from_raw(p.raw()).unwrap(),
                NodePublicKey::from_compressed(&p.compressed()).unwrap(),
            );
            assert_eq!((r.raw(), r.id()), (raw.raw(), raw.id()));
            assert_eq!((c.raw(), c.id()), (compressed.raw(), compressed.id()));
        }
        assert!(lookup_raw(keys[0].public().raw()).is_some());
        assert!(lookup_raw(keys[30].public().raw()).is_none());
        // Same prefix, other bytes: not taken from the set, and not a key at all.
        let mut forged = *keys[0].public().raw();
        forged[63] ^= 1;
        assert!(lookup_raw(&forged).is_none());
        assert!(NodePublicKey::from_raw(&forged).is_err());
        let mut forged = keys[0].public().compressed();
        forged[0] ^= 1; // the other y parity: a valid key, but a different one
        assert!(lookup_compressed(&forged).is_none());
        assert_ne!(
            NodePublicKey::from_compressed(&forged).unwrap().id(),
            keys[0].id()
        );
        drop(guard);
        assert!(lookup_raw(keys[0].public().raw()).is_none());
    }

    #[test]
    fn guards_nest_and_restore() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let (a, b) = (
            NodeSecretKey::generate(&mut rng),
            NodeSecretKey::generate(&mut rng),
        );
        let (mut sa, mut sb) = (KnownKeys::default(), KnownKeys::default());
        sa.insert(a.public());
        sb.insert(b.public());
        let ga = KnownKeys::enter(Arc::new(sa));
        {
            let _gb = KnownKeys::enter(Arc::new(sb));
            assert!(lookup_raw(a.public().raw()).is_none());
            assert!(lookup_raw(b.public().raw()).is_some());
        }
        assert!(lookup_raw(a.public().raw()).is_some());
        drop(ga);
        assert!(lookup_raw(a.public().raw()).is_none());
    }
}
