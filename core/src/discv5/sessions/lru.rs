//! A bounded map that forgets its least recently used entry when full. Ordered maps inside,
//! so that which entry goes is decided by use alone, never by hashing (STYLE: no `HashMap`
//! iteration decides anything).

use std::collections::BTreeMap;

/// At most `capacity` entries; inserting into a full map evicts the entry used longest ago.
/// "Used" means inserted or fetched with [`Lru::get_mut`]; [`Lru::peek`] leaves the order.
#[derive(Debug, Clone)]
pub(in crate::discv5) struct Lru<K, V> {
    capacity: usize,
    entries: BTreeMap<K, (u64, V)>,
    /// Use stamp → key; the first entry is the least recently used.
    order: BTreeMap<u64, K>,
    clock: u64,
}

impl<K: Ord + Clone, V> Lru<K, V> {
    /// An empty map holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Lru {
            capacity: capacity.max(1),
            entries: BTreeMap::new(),
            order: BTreeMap::new(),
            clock: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// The value, without counting this as a use.
    pub fn peek(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(_, v)| v)
    }

    /// The value, counting this as a use.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let stamp = self.next_stamp();
        let (old, v) = self.entries.get_mut(key)?;
        if let Some(k) = self.order.remove(old) {
            self.order.insert(stamp, k);
        }
        *old = stamp;
        Some(v)
    }

    /// Inserts or replaces `key`, counting it as used; returns the entry evicted to make room.
    pub fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        let stamp = self.next_stamp();
        if let Some((old, _)) = self.entries.insert(key.clone(), (stamp, value)) {
            self.order.remove(&old);
            self.order.insert(stamp, key);
            return None;
        }
        self.order.insert(stamp, key);
        if self.entries.len() > self.capacity {
            return self.pop_oldest();
        }
        None
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let (stamp, v) = self.entries.remove(key)?;
        self.order.remove(&stamp);
        Some(v)
    }

    /// The least recently used entry.
    pub fn oldest(&self) -> Option<(&K, &V)> {
        let (_, k) = self.order.first_key_value()?;
        self.entries.get_key_value(k).map(|(k, (_, v))| (k, v))
    }

    pub fn pop_oldest(&mut self) -> Option<(K, V)> {
        let (_, k) = self.order.pop_first()?;
        let (_, v) = self.entries.remove(&k)?;
        Some((k, v))
    }

    /// Stamps only grow; a u64 of uses never wraps in practice, and if it did the order would
    /// merely be wrong, never unsafe.
    fn next_stamp(&mut self) -> u64 {
        self.clock = self.clock.wrapping_add(1);
        self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::Lru;

    #[test]
    fn a_full_map_evicts_the_entry_used_longest_ago() {
        let mut m = Lru::new(2);
        assert_eq!(m.insert(1, "a"), None);
        assert_eq!(m.insert(2, "b"), None);
        // Using 1 makes 2 the oldest.
        assert!(m.get_mut(&1).is_some());
        assert_eq!(m.insert(3, "c"), Some((2, "b")));
        assert_eq!(m.len(), 2);
        // Peeking does not count as a use.
        assert_eq!(m.peek(&1), Some(&"a"));
        assert_eq!(m.insert(4, "d"), Some((1, "a")));
        // Replacing does not evict.
        assert_eq!(m.insert(4, "e"), None);
        assert_eq!(m.oldest(), Some((&3, &"c")));
        assert_eq!(m.remove(&3), Some("c"));
        assert_eq!(m.pop_oldest(), Some((4, "e")));
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn capacity_zero_still_holds_one() {
        let mut m = Lru::new(0);
        assert_eq!(m.insert(1, ()), None);
        assert_eq!(m.insert(2, ()), Some((1, ())));
        assert!(m.contains(&2));
    }
}
