//! The Kademlia table as geth keeps it today ([PROTOCOL.md §8.1–§8.4](crate::spec::protocol)): 17
//! buckets of 16 with replacement lists, /24 limits, and the bookkeeping for fast and slow
//! revalidation.
//!
//! The table is a plain data structure: it never sends anything and never reads a clock.
//! [`super::Discovery`] decides when to ping whom and reports the outcome back here.

use std::collections::{BTreeSet, HashMap};

use foldhash::fast::FixedState;

use rand_core::CryptoRng;

use super::netutil::{is_lan, Subnet24};
use super::node::Node;
use crate::identity::NodeId;
use crate::time::Instant;

/// Entries per bucket (geth `bucketSize`; Kademlia k).
pub const BUCKET_SIZE: usize = 16;
/// Number of buckets: 256 / 15 (geth `nBuckets`; [PROTOCOL.md §8.1](crate::spec::protocol)).
pub const N_BUCKETS: usize = 256 / 15;
/// Log distances up to this one share bucket 0 (geth `bucketMinDistance` + 1 = 240).
pub const BUCKET_MIN_DISTANCE: u32 = 256 - N_BUCKETS as u32;
/// Replacement list length per bucket (geth `maxReplacements`).
pub const MAX_REPLACEMENTS: usize = 10;
/// Nodes per /24 in one bucket, replacements included (geth `bucketIPLimit`).
pub const BUCKET_IP_LIMIT: usize = 2;
/// Nodes per /24 in the whole table, replacements included (geth `tableIPLimit`).
pub const TABLE_IP_LIMIT: usize = 10;

/// Which revalidation list an entry is on ([PROTOCOL.md §8.4](crate::spec::protocol)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RevalidationList {
    /// New or recently changed nodes, checked every 3 s on average.
    Fast,
    /// Nodes that answered, checked every 9 s on average.
    Slow,
}

/// A node in a bucket with its liveness record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    node: Node,
    liveness_checks: u32,
    live: bool,
    added_at: Instant,
    list: RevalidationList,
}

impl TableEntry {
    fn new(node: Node, now: Instant) -> Self {
        TableEntry {
            node,
            liveness_checks: 0,
            live: false,
            added_at: now,
            list: RevalidationList::Fast,
        }
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// How many revalidation pings it has answered (divided by 3 on each miss).
    pub fn liveness_checks(&self) -> u32 {
        self.liveness_checks
    }

    /// Whether its last revalidation succeeded and its endpoint has not changed since.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// When it entered the bucket.
    pub fn added_at(&self) -> Instant {
        self.added_at
    }

    /// The revalidation list it is on.
    pub fn revalidation_list(&self) -> RevalidationList {
        self.list
    }
}

/// What [`Table::add_found`] or [`Table::add_inbound`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// The node is now in its bucket (on the fast revalidation list).
    Added,
    /// Its bucket is full; the node went to the front of the replacement list.
    Replacement,
    /// It was present and its record or endpoint was updated.
    Updated {
        /// The UDP endpoint changed; the node is back on the fast list, not live.
        endpoint_changed: bool,
    },
    /// It was present (in the bucket or the replacements) and nothing changed.
    Unchanged,
    /// It was not added.
    Rejected(AddRejection),
}

/// Why a node was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AddRejection {
    /// It is us.
    SelfNode,
    /// Its IP is 0.0.0.0 or ::.
    UnspecifiedIp,
    /// Its /24 already has [`BUCKET_IP_LIMIT`] nodes in the bucket or [`TABLE_IP_LIMIT`] in
    /// the table.
    IpLimit,
}

/// What a failed revalidation did to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevalidationFailure {
    /// It stays, on the fast list, with a third of its checks.
    Demoted,
    /// It had no checks left and was removed; a replacement may have taken its slot.
    Removed {
        /// The removed node.
        removed: NodeId,
        /// The replacement moved into the bucket, if there was one.
        promoted: Option<NodeId>,
    },
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    entries: Vec<TableEntry>,
    replacements: Vec<Node>,
    ips: SubnetCounts,
    /// The first 8 bytes of each entry's id, in `entries` order, and of each replacement's:
    /// finding a node reads one or two cache lines instead of every entry (with thousands of
    /// nodes in one process, the entries are rarely in cache).
    keys: Vec<u64>,
    replacement_keys: Vec<u64>,
    /// Bit `i` set: entry `i` is on the fast revalidation list.
    fast: u32,
}

/// The first 8 bytes of an id: enough to skip every non-matching entry.
fn key_of(id: &NodeId) -> u64 {
    u64::from_le_bytes(id.0[..8].try_into().expect("8 bytes"))
}

impl Bucket {
    fn find(&self, id: &NodeId) -> Option<usize> {
        let k = key_of(id);
        (0..self.keys.len()).find(|&i| self.keys[i] == k && self.entries[i].node.id() == *id)
    }

    fn find_replacement(&self, id: &NodeId) -> Option<usize> {
        let k = key_of(id);
        (0..self.replacement_keys.len())
            .find(|&i| self.replacement_keys[i] == k && self.replacements[i].id() == *id)
    }

    fn push_entry(&mut self, e: TableEntry) {
        self.keys.push(key_of(&e.node.id()));
        if e.list == RevalidationList::Fast {
            self.fast |= 1 << self.entries.len();
        }
        self.entries.push(e);
    }

    fn remove_entry(&mut self, i: usize) -> TableEntry {
        self.keys.remove(i);
        let below = self.fast & ((1u32 << i) - 1);
        self.fast = below | ((self.fast >> (i + 1)) << i);
        self.entries.remove(i)
    }

    fn set_list(&mut self, i: usize, list: RevalidationList) {
        self.entries[i].list = list;
        match list {
            RevalidationList::Fast => self.fast |= 1 << i,
            RevalidationList::Slow => self.fast &= !(1 << i),
        }
    }

    /// Entries on `list`, as a bit mask.
    fn mask(&self, list: RevalidationList) -> u32 {
        match list {
            RevalidationList::Fast => self.fast,
            RevalidationList::Slow => !self.fast & ((1u32 << self.entries.len()) - 1),
        }
    }

    fn push_front_replacement(&mut self, node: Node) {
        self.replacement_keys.insert(0, key_of(&node.id()));
        self.replacements.insert(0, node);
    }

    fn remove_replacement(&mut self, i: usize) -> Node {
        self.replacement_keys.remove(i);
        self.replacements.remove(i)
    }

    /// Whether the index matches the entries (for [`Table::check_invariants`]).
    fn index_consistent(&self) -> bool {
        let fast = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.list == RevalidationList::Fast)
            .fold(0u32, |m, (i, _)| m | 1 << i);
        self.keys
            .iter()
            .copied()
            .eq(self.entries.iter().map(|e| key_of(&e.node.id())))
            && self
                .replacement_keys
                .iter()
                .copied()
                .eq(self.replacements.iter().map(|n| key_of(&n.id())))
            && fast == self.fast
    }
}

/// Nodes per /24 among one bucket's entries and replacements: at most 26 subnets, where a
/// short list beats a map.
#[derive(Debug, Clone, Default)]
struct SubnetCounts(Vec<(Subnet24, usize)>);

impl SubnetCounts {
    fn get(&self, s: &Subnet24) -> usize {
        self.0.iter().find(|(k, _)| k == s).map_or(0, |(_, c)| *c)
    }

    fn up(&mut self, s: Subnet24) {
        match self.0.iter_mut().find(|(k, _)| *k == s) {
            Some((_, c)) => *c += 1,
            None => self.0.push((s, 1)),
        }
    }

    fn down(&mut self, s: Subnet24) {
        if let Some(i) = self.0.iter().position(|(k, _)| *k == s) {
            self.0[i].1 -= 1;
            if self.0[i].1 == 0 {
                self.0.swap_remove(i);
            }
        }
    }
}

/// The routing table of one node.
#[derive(Debug, Clone)]
pub struct Table {
    local: NodeId,
    buckets: Vec<Bucket>,
    /// Nodes per /24 in the whole table. Hashed with a fixed seed: only subnets already in
    /// the table are keys (at most 17 x 26), so nobody can flood it.
    ips: HashMap<Subnet24, usize, FixedState>,
}

/// Which bucket holds `id` in the table of `local`; `None` for `local` itself.
pub fn bucket_index(local: &NodeId, id: &NodeId) -> Option<usize> {
    let d = local.log_distance(id);
    if d == 0 {
        None
    } else {
        Some(d.saturating_sub(BUCKET_MIN_DISTANCE + 1) as usize)
    }
}

fn count_up(set: &mut HashMap<Subnet24, usize, FixedState>, s: Subnet24) {
    *set.entry(s).or_default() += 1;
}

fn count_down(set: &mut HashMap<Subnet24, usize, FixedState>, s: Subnet24) {
    if let Some(c) = set.get_mut(&s) {
        *c -= 1;
        if *c == 0 {
            set.remove(&s);
        }
    }
}

impl Table {
    /// An empty table for the node with id `local`.
    pub fn new(local: NodeId) -> Self {
        Table {
            local,
            buckets: vec![Bucket::default(); N_BUCKETS],
            ips: HashMap::default(),
        }
    }

    /// Our own id.
    pub fn local_id(&self) -> NodeId {
        self.local
    }

    /// Number of nodes in buckets (replacements not counted).
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.entries.len()).sum()
    }

    /// Whether no bucket holds a node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All bucket entries, nearest bucket first, each bucket in insertion order.
    pub fn entries(&self) -> impl Iterator<Item = &TableEntry> {
        self.buckets.iter().flat_map(|b| b.entries.iter())
    }

    /// The entries of bucket `i` in insertion order.
    pub fn bucket(&self, i: usize) -> &[TableEntry] {
        self.buckets.get(i).map_or(&[], |b| b.entries.as_slice())
    }

    /// The replacement list of bucket `i`, most recent first.
    pub fn replacements(&self, i: usize) -> &[Node] {
        self.buckets
            .get(i)
            .map_or(&[], |b| b.replacements.as_slice())
    }

    /// The entry for `id`, if it is in a bucket.
    pub fn get(&self, id: &NodeId) -> Option<&TableEntry> {
        let b = &self.buckets[bucket_index(&self.local, id)?];
        b.find(id).map(|i| &b.entries[i])
    }

    /// Whether `id` is in a bucket.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.get(id).is_some()
    }

    /// How many entries the bucket that would hold `id` has.
    pub fn bucket_len_for(&self, id: &NodeId) -> usize {
        bucket_index(&self.local, id).map_or(0, |i| self.buckets[i].entries.len())
    }

    /// Adds a node learnt from a lookup, a seed or a bootnode. A node already present only
    /// takes the new details when their record has a higher sequence number.
    pub fn add_found(&mut self, node: Node, now: Instant) -> AddOutcome {
        self.add(node, now, false)
    }

    /// Adds a node that proved its endpoint by pinging us. A node already present takes the
    /// new details whatever its sequence number (it may have moved).
    pub fn add_inbound(&mut self, node: Node, now: Instant) -> AddOutcome {
        self.add(node, now, true)
    }

    fn add(&mut self, node: Node, now: Instant, inbound: bool) -> AddOutcome {
        let Some(bi) = bucket_index(&self.local, &node.id()) else {
            return AddOutcome::Rejected(AddRejection::SelfNode);
        };
        if node.ip().is_unspecified() {
            return AddOutcome::Rejected(AddRejection::UnspecifiedIp);
        }
        let id = node.id();
        if let Some(pos) = self.buckets[bi].find(&id) {
            let current = &self.buckets[bi].entries[pos].node;
            if !inbound && node.seq() <= current.seq() {
                return AddOutcome::Unchanged;
            }
            if *current == node {
                return AddOutcome::Unchanged;
            }
            return self.update(bi, pos, node);
        }
        if self.buckets[bi].entries.len() >= BUCKET_SIZE {
            return self.add_replacement(bi, node);
        }
        // Leaving the replacement list releases its subnet slot before the new check.
        if let Some(rpos) = self.buckets[bi].find_replacement(&id) {
            let old = self.buckets[bi].remove_replacement(rpos);
            self.release_ip(bi, &old);
        }
        if !self.claim_ip(bi, &node) {
            return AddOutcome::Rejected(AddRejection::IpLimit);
        }
        self.buckets[bi].push_entry(TableEntry::new(node, now));
        AddOutcome::Added
    }

    fn update(&mut self, bi: usize, pos: usize, node: Node) -> AddOutcome {
        let old = self.buckets[bi].entries[pos].node.clone();
        if old.ip() != node.ip() {
            self.release_ip(bi, &old);
            if !self.claim_ip(bi, &node) {
                let reclaimed = self.claim_ip(bi, &old);
                debug_assert!(reclaimed, "the slot just released is free");
                return AddOutcome::Rejected(AddRejection::IpLimit);
            }
        }
        let endpoint_changed = !old.same_endpoint(&node);
        let b = &mut self.buckets[bi];
        b.entries[pos].node = node;
        if endpoint_changed {
            b.entries[pos].live = false;
            b.set_list(pos, RevalidationList::Fast);
        }
        AddOutcome::Updated { endpoint_changed }
    }

    fn add_replacement(&mut self, bi: usize, node: Node) -> AddOutcome {
        if self.buckets[bi].find_replacement(&node.id()).is_some() {
            return AddOutcome::Unchanged;
        }
        if !self.claim_ip(bi, &node) {
            return AddOutcome::Rejected(AddRejection::IpLimit);
        }
        self.buckets[bi].push_front_replacement(node);
        if self.buckets[bi].replacements.len() > MAX_REPLACEMENTS {
            let dropped = self.buckets[bi].remove_replacement(MAX_REPLACEMENTS);
            self.release_ip(bi, &dropped);
        }
        AddOutcome::Replacement
    }

    fn claim_ip(&mut self, bi: usize, node: &Node) -> bool {
        let ip = node.ip();
        if is_lan(&ip) {
            return true;
        }
        let s = Subnet24::of(&ip);
        let in_table = self.ips.get(&s).copied().unwrap_or(0);
        let in_bucket = self.buckets[bi].ips.get(&s);
        if in_table >= TABLE_IP_LIMIT || in_bucket >= BUCKET_IP_LIMIT {
            return false;
        }
        count_up(&mut self.ips, s);
        self.buckets[bi].ips.up(s);
        true
    }

    fn release_ip(&mut self, bi: usize, node: &Node) {
        let ip = node.ip();
        if is_lan(&ip) {
            return;
        }
        let s = Subnet24::of(&ip);
        count_down(&mut self.ips, s);
        self.buckets[bi].ips.down(s);
    }

    /// Removes `id` from its bucket and moves a random replacement into the freed slot.
    /// Returns the removed node and the promoted one.
    pub fn remove<R: CryptoRng + ?Sized>(
        &mut self,
        id: &NodeId,
        now: Instant,
        rng: &mut R,
    ) -> Option<(Node, Option<Node>)> {
        let bi = bucket_index(&self.local, id)?;
        let pos = self.buckets[bi].find(id)?;
        let removed = self.buckets[bi].remove_entry(pos).node;
        self.release_ip(bi, &removed);
        let b = &mut self.buckets[bi];
        let promoted = if b.replacements.is_empty() {
            None
        } else {
            let i = (rng.next_u64() % b.replacements.len() as u64) as usize;
            // The replacement's subnet slot is already counted; it just changes lists.
            let r = b.remove_replacement(i);
            b.push_entry(TableEntry::new(r.clone(), now));
            Some(r)
        };
        Some((removed, promoted))
    }

    /// A random node on `list` that is not in `busy`, or `None` if there is none: the
    /// `k`-th such node in [`Table::entries`] order, `k` drawn uniformly.
    pub fn pick_for_revalidation<R: CryptoRng + ?Sized>(
        &self,
        list: RevalidationList,
        rng: &mut R,
        busy: &BTreeSet<NodeId>,
    ) -> Option<&Node> {
        // Work on the bit masks; only the few busy nodes are looked up.
        let mut masks: [u32; N_BUCKETS] = std::array::from_fn(|i| self.buckets[i].mask(list));
        for id in busy {
            if let Some(bi) = bucket_index(&self.local, id) {
                if let Some(pos) = self.buckets[bi].find(id) {
                    masks[bi] &= !(1 << pos);
                }
            }
        }
        let n: u32 = masks.iter().map(|m| m.count_ones()).sum();
        if n == 0 {
            return None;
        }
        let mut pick = (rng.next_u64() % u64::from(n)) as u32;
        for (bi, mut m) in masks.into_iter().enumerate() {
            let c = m.count_ones();
            if pick >= c {
                pick -= c;
                continue;
            }
            for _ in 0..pick {
                m &= m - 1; // drop the lowest set bit
            }
            return Some(&self.buckets[bi].entries[m.trailing_zeros() as usize].node);
        }
        None
    }

    fn entry_pos(&self, id: &NodeId) -> Option<(usize, usize)> {
        let bi = bucket_index(&self.local, id)?;
        Some((bi, self.buckets[bi].find(id)?))
    }

    /// Records a revalidation Pong: one more check, live, onto the slow list. Returns the
    /// updated entry.
    pub fn revalidation_succeeded(&mut self, id: &NodeId) -> Option<&TableEntry> {
        let (bi, pos) = self.entry_pos(id)?;
        let b = &mut self.buckets[bi];
        b.set_list(pos, RevalidationList::Slow);
        let e = &mut b.entries[pos];
        e.liveness_checks = e.liveness_checks.saturating_add(1);
        e.live = true;
        Some(e)
    }

    /// Records a revalidation timeout: the checks drop to a third; at zero the node goes and a
    /// replacement takes its place.
    pub fn revalidation_failed<R: CryptoRng + ?Sized>(
        &mut self,
        id: &NodeId,
        now: Instant,
        rng: &mut R,
    ) -> Option<RevalidationFailure> {
        let (bi, pos) = self.entry_pos(id)?;
        let b = &mut self.buckets[bi];
        let e = &mut b.entries[pos];
        e.liveness_checks /= 3;
        if e.liveness_checks > 0 {
            e.live = false;
            b.set_list(pos, RevalidationList::Fast);
            return Some(RevalidationFailure::Demoted);
        }
        let (removed, promoted) = self.remove(id, now, rng)?;
        Some(RevalidationFailure::Removed {
            removed: removed.id(),
            promoted: promoted.map(|p| p.id()),
        })
    }

    /// The `n` nodes closest to `target`, nearest first. With `prefer_live`, only live nodes are
    /// considered whenever the table has any (geth `preferLive`,
    /// [PROTOCOL.md §7.6](crate::spec::protocol)).
    pub fn closest(&self, target: &NodeId, n: usize, prefer_live: bool) -> Vec<Node> {
        self.closest_refs(target, n, prefer_live)
            .into_iter()
            .cloned()
            .collect()
    }

    /// [`Table::closest`] without copying the nodes (a FindNode answer needs only their
    /// endpoints and keys, not their records).
    pub(crate) fn closest_refs(&self, target: &NodeId, n: usize, prefer_live: bool) -> Vec<&Node> {
        let any_live = prefer_live && self.entries().any(|e| e.live);
        let mut nodes: Vec<&Node> = self
            .entries()
            .filter(|e| !any_live || e.live)
            .map(|e| &e.node)
            .collect();
        let by_distance = |a: &&Node, b: &&Node| target.distance_cmp(&a.id(), &b.id());
        if nodes.len() > n && n > 0 {
            nodes.select_nth_unstable_by(n - 1, by_distance);
            nodes.truncate(n);
        }
        nodes.sort_by(by_distance);
        nodes.truncate(n);
        nodes
    }

    /// The bucket entries at log distance `distance` (1 to 256) from our id, in insertion
    /// order; with `live_only`, only those whose last revalidation succeeded. What a discv5
    /// FINDNODE asks for ([DISCV5.md §3.3](crate::spec::discv5)). geth serves the whole
    /// bucket, which for distances up to [`BUCKET_MIN_DISTANCE`] holds nodes at other
    /// distances too (and the asker drops them); we serve the exact distance.
    pub fn nodes_at_distance(&self, distance: u32, live_only: bool) -> Vec<&Node> {
        if distance == 0 || distance > 256 {
            return Vec::new();
        }
        let bi = distance.saturating_sub(BUCKET_MIN_DISTANCE + 1) as usize;
        self.buckets[bi]
            .entries
            .iter()
            .filter(|e| !live_only || e.live)
            .filter(|e| self.local.log_distance(&e.node.id()) == distance)
            .map(|e| &e.node)
            .collect()
    }

    /// Checks the structural invariants; used by tests and fuzzers. Sorts small vectors
    /// instead of building maps: the `table` fuzz target spent 60% of its time in maps here.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        // Every non-LAN node's subnet, counted from the nodes themselves.
        let mut subnets: Vec<Subnet24> = Vec::new();
        for i in 0..self.buckets.len() {
            self.check_bucket(i, &mut subnets)?;
        }
        subnets.sort_unstable_by_key(Subnet24::key);
        self.check_table_ips(run_lengths(&subnets))
    }

    /// What one operation on `id` can break: the bucket `id` falls in (its sizes, members,
    /// index and subnet counts, checked as [`Table::check_invariants`] checks them) and the
    /// table's subnet counts against the sum of the buckets'. Every operation on the table
    /// touches one node's bucket, so a fuzzer can run this after each operation and the
    /// whole check once per input; for tests and fuzzers.
    #[doc(hidden)]
    pub fn check_invariants_for(&self, id: &NodeId) -> Result<(), String> {
        if let Some(i) = bucket_index(&self.local, id) {
            self.check_bucket(i, &mut Vec::new())?;
        }
        let mut summed: Vec<(Subnet24, usize)> = self
            .buckets
            .iter()
            .flat_map(|b| b.ips.0.iter().copied())
            .collect();
        summed.sort_unstable_by_key(|(s, _)| s.key());
        self.check_table_ips(summed_runs(summed))
    }

    /// Bucket `i` against its limits and indexes; pushes its non-LAN nodes' subnets.
    fn check_bucket(&self, i: usize, subnets: &mut Vec<Subnet24>) -> Result<(), String> {
        let b = &self.buckets[i];
        if b.entries.len() > BUCKET_SIZE {
            return Err(format!("bucket {i} has {} entries", b.entries.len()));
        }
        if b.replacements.len() > MAX_REPLACEMENTS {
            return Err(format!(
                "bucket {i} has {} replacements",
                b.replacements.len()
            ));
        }
        if !b.index_consistent() {
            return Err(format!("bucket {i} index drifted"));
        }
        if b.entries.is_empty() && b.replacements.is_empty() {
            // Most buckets of a small table: nothing to count.
            return match b.ips.0.is_empty() {
                true => Ok(()),
                false => Err(format!("bucket {i} subnet counts drifted")),
            };
        }
        let first_subnet = subnets.len();
        // On the stack: the sizes were checked above.
        let mut ids = [NodeId::default(); BUCKET_SIZE + MAX_REPLACEMENTS];
        let all = b.entries.iter().map(|e| &e.node).chain(&b.replacements);
        for (slot, n) in ids.iter_mut().zip(all) {
            if n.id() == self.local {
                return Err("self in table".into());
            }
            // A node's bucket is a function of its id, so a node in two buckets fails this
            // check in one of them: duplicates need looking for within a bucket only.
            if bucket_index(&self.local, &n.id()) != Some(i) {
                return Err(format!("{:?} in wrong bucket {i}", n.id()));
            }
            *slot = n.id();
            if !is_lan(&n.ip()) {
                subnets.push(Subnet24::of(&n.ip()));
            }
        }
        let ids = &mut ids[..b.entries.len() + b.replacements.len()];
        ids.sort_unstable_by(|a, b| key_of(a).cmp(&key_of(b)).then_with(|| a.cmp(b)));
        if let Some(w) = ids
            .windows(2)
            .find(|w| key_of(&w[0]) == key_of(&w[1]) && w[0] == w[1])
        {
            return Err(format!("{:?} twice", w[0]));
        }
        let bucket_subnets = &mut subnets[first_subnet..];
        bucket_subnets.sort_unstable_by_key(Subnet24::key);
        let bucket_ips = run_lengths(bucket_subnets);
        if bucket_ips.iter().any(|&(_, c)| c > BUCKET_IP_LIMIT) {
            return Err(format!("bucket {i} over its subnet limit"));
        }
        let mut counted = b.ips.0.clone();
        counted.sort_unstable_by_key(|(s, _)| s.key());
        if bucket_ips != counted {
            return Err(format!("bucket {i} subnet counts drifted"));
        }
        Ok(())
    }

    /// The table's subnet counts against `expected` (sorted by subnet) and its limit.
    fn check_table_ips(&self, expected: Vec<(Subnet24, usize)>) -> Result<(), String> {
        if expected.iter().any(|&(_, c)| c > TABLE_IP_LIMIT) {
            return Err("table over its subnet limit".into());
        }
        let mut counted: Vec<(Subnet24, usize)> = self.ips.iter().map(|(k, v)| (*k, *v)).collect();
        counted.sort_unstable_by_key(|(s, _)| s.key());
        if expected != counted {
            return Err("table subnet counts drifted".into());
        }
        Ok(())
    }
}

/// `(subnet, count)` for each run of equal subnets in a sorted slice.
fn run_lengths(sorted: &[Subnet24]) -> Vec<(Subnet24, usize)> {
    summed_runs(sorted.iter().map(|s| (*s, 1)))
}

/// `(subnet, sum of counts)` for each run of equal subnets in `sorted` (sorted by subnet).
fn summed_runs(sorted: impl IntoIterator<Item = (Subnet24, usize)>) -> Vec<(Subnet24, usize)> {
    let mut out: Vec<(Subnet24, usize)> = Vec::new();
    for (s, c) in sorted {
        match out.last_mut() {
            Some((last, n)) if *last == s => *n += c,
            _ => out.push((s, c)),
        }
    }
    out
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
