//! The sans-IO DNS discovery client ([DNSDISC_NAT.md §A.8–A.14](crate::spec::dnsdisc_nat)):
//! it asks for TXT names ([`Client::poll_query`]), takes the answers
//! ([`Client::handle_answer`]), and yields the node records it has verified, one lookup at a
//! time, in a random walk over every tree it was given and every tree those link to
//! ([`Client::want_nodes`], [`Event::Node`]). It also syncs one tree completely
//! ([`Client::sync_tree`]), as `devp2p dns sync` does.
//!
//! How it follows geth's client, and where it departs:
//! - per tree: the root is re-checked every [`RECHECK_INTERVAL`], and at every step once more
//!   than [`ROOT_RECHECK_FAIL_COUNT`] leaf lookups have failed since the last good root; after
//!   more than 5 (20) consecutive root failures each root lookup waits 5 s (10 s) first;
//! - the link subtree is walked to the end first, in order; then ENR labels are drawn at
//!   random from those not yet resolved, and the walk starts over from the top once all were;
//! - every entry lookup, cache hits included, takes a token from a bucket of
//!   [`RATE_LIMIT_BURST`] refilled at [`RATE_LIMIT_PER_SECOND`]; entries are cached in an LRU
//!   of [`CACHE_LIMIT`] shared by all trees; a lookup unanswered after [`LOOKUP_TIMEOUT`] fails;
//! - links form a graph: a tree stays while a tree given by the application reaches it;
//! - **departure**: a root with a lower `seq` than the last one accepted for that tree is
//!   ignored (geth takes any validly signed root). A caching resolver can serve an older root
//!   for up to its TTL, and going back to an older tree would undo a republication; it is not
//!   counted as a failure.
//! - every failure (lookup, hash mismatch, bad entry, bad signature) is an [`Event::Error`]
//!   naming the tree and the name.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::Duration;

use rand_core::Rng;

use super::entry::{Entry, EntryError, Label, Root, TreeUrl, ROOT_PREFIX};
use super::tree::Tree;
use super::{MAX_TREES, MAX_TXT_RECORDS};
use crate::enr::Enr;
use crate::time::Instant;

/// How long one TXT lookup may take (geth `Config.Timeout`).
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Time between root checks of a tree (geth `Config.RecheckInterval`).
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// Entries kept in the shared cache (geth `Config.CacheLimit`).
pub const CACHE_LIMIT: usize = 1000;
/// Entry lookups per second (geth `Config.RateLimit`).
pub const RATE_LIMIT_PER_SECOND: u32 = 3;
/// Entry lookups that may run back to back before the rate applies (geth: burst 10).
pub const RATE_LIMIT_BURST: u32 = 10;
/// Leaf failures after which the root is re-checked at every step (geth
/// `rootRecheckFailCount`).
pub const ROOT_RECHECK_FAIL_COUNT: u32 = 5;
/// Nodes the application may ask for at once ([`Client::want_nodes`]); our choice, a bound
/// on the counter only.
pub const MAX_WANTED: usize = 1 << 20;
/// Events kept for [`Client::poll_event`]; beyond it the oldest are dropped (our choice).
pub const MAX_QUEUED_EVENTS: usize = 4096;

/// Identifies a TXT lookup the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueryId(pub u64);

/// Identifies a full sync ([`Client::sync_tree`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SyncId(pub u64);

/// A TXT lookup to make: resolve `name` and hand every TXT record of the answer (each with
/// its character-strings joined, no separator) to [`Client::handle_answer`] with `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The lookup.
    pub id: QueryId,
    /// The name to resolve, for example `C7HRFPF3BLGF3YR4DY5KX3SMBE.nodes.example.org`.
    pub name: String,
}

/// Why a lookup found nothing, as the driver's resolver says it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolveError {
    /// The name does not exist, or has no TXT record.
    NotFound,
    /// No answer in time.
    Timeout,
    /// Anything else the resolver reported.
    Failed(String),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::NotFound => f.write_str("no such name or no TXT record"),
            ResolveError::Timeout => f.write_str("lookup timed out"),
            ResolveError::Failed(e) => write!(f, "lookup failed: {e}"),
        }
    }
}

/// What went wrong with one name of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsError {
    /// The lookup itself failed.
    Resolve(ResolveError),
    /// No TXT record at the tree's domain is a valid root (geth `errNoRoot`), with why the
    /// first one that looked like a root did not parse, if any.
    NoRoot(Option<EntryError>),
    /// The root's signature is not the tree key's.
    BadSignature,
    /// No TXT record at the name is a tree entry (geth `errNoEntry`).
    NoEntry,
    /// The entry's Keccak-256 does not start with its label (geth `errHashMismatch`).
    HashMismatch,
    /// The entry did not parse.
    Entry(EntryError),
    /// A node record in the link subtree (geth `errENRInLinkTree`).
    EnrInLinkTree,
    /// A link in the ENR subtree (geth `errLinkInENRTree`).
    LinkInEnrTree,
    /// The tree was dropped (no longer linked) while this sync or lookup ran.
    TreeDropped,
    /// A link would add a tree beyond [`MAX_TREES`].
    TooManyTrees,
    /// A full sync found more than [`MAX_SYNC_ENTRIES`](super::MAX_SYNC_ENTRIES) entries.
    TreeTooLarge,
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::Resolve(e) => e.fmt(f),
            DnsError::NoRoot(None) => f.write_str("no valid root found"),
            DnsError::NoRoot(Some(e)) => write!(f, "no valid root found (invalid root entry: {e})"),
            DnsError::BadSignature => {
                f.write_str("root signature does not verify with the tree's public key")
            }
            DnsError::NoEntry => f.write_str("no valid tree entry found"),
            DnsError::HashMismatch => f.write_str("hash mismatch"),
            DnsError::Entry(e) => e.fmt(f),
            DnsError::EnrInLinkTree => f.write_str("enr entry in link tree"),
            DnsError::LinkInEnrTree => f.write_str("link entry in ENR tree"),
            DnsError::TreeDropped => f.write_str("tree no longer linked"),
            DnsError::TooManyTrees => write!(f, "more than {MAX_TREES} linked trees"),
            DnsError::TreeTooLarge => {
                write!(f, "tree has more than {} entries", super::MAX_SYNC_ENTRIES)
            }
        }
    }
}

impl std::error::Error for DnsError {}

/// A failure at one name, with where it happened: what [`Event::Error`] and a failed sync
/// carry. Its message reads as geth's: `invalid enr entry at <name>: invalid node record`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    /// The tree.
    pub tree: TreeUrl,
    /// The name that was resolved.
    pub name: String,
    /// What was wrong.
    pub error: DnsError,
    /// The kind of entry the text claimed to be, when one was found.
    pub kind: Option<&'static str>,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.error, self.kind) {
            (DnsError::Entry(e), Some(kind)) => {
                write!(f, "invalid {kind} entry at {}: {e}", self.name)
            }
            (e, _) => write!(f, "{}: {e}", self.name),
        }
    }
}

impl std::error::Error for NameError {}

/// What a full sync found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedTree {
    /// The tree synced.
    pub url: TreeUrl,
    /// Its root and every entry.
    pub tree: Tree,
}

/// What the client reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A verified record from `tree`, for the dialer.
    Node {
        /// The tree it came from.
        tree: TreeUrl,
        /// The record.
        record: Enr,
    },
    /// A tree's root was accepted (a first root, or one that changed).
    RootUpdated {
        /// The tree.
        tree: TreeUrl,
        /// Its sequence number.
        seq: u64,
    },
    /// A root with a lower sequence number than the one held was ignored.
    StaleRoot {
        /// The tree.
        tree: TreeUrl,
        /// The seq held.
        held: u64,
        /// The seq served.
        served: u64,
    },
    /// A tree was added because a tree links to it, or dropped because none does any more.
    TreeLinked {
        /// The tree.
        tree: TreeUrl,
        /// True when added, false when dropped.
        added: bool,
    },
    /// A lookup failed; the walk goes on.
    Error(NameError),
    /// A full sync ended.
    Synced {
        /// The sync.
        id: SyncId,
        /// The tree, or the first failure (which ends a full sync, as in geth).
        result: Result<SyncedTree, NameError>,
    },
}

/// The client's settings, defaulting to geth's.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// [`LOOKUP_TIMEOUT`].
    pub lookup_timeout: Duration,
    /// [`RECHECK_INTERVAL`].
    pub recheck_interval: Duration,
    /// [`CACHE_LIMIT`].
    pub cache_limit: usize,
    /// [`RATE_LIMIT_PER_SECOND`]; 0 means no limit.
    pub rate_limit_per_second: u32,
    /// [`RATE_LIMIT_BURST`].
    pub rate_limit_burst: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            lookup_timeout: LOOKUP_TIMEOUT,
            recheck_interval: RECHECK_INTERVAL,
            cache_limit: CACHE_LIMIT,
            rate_limit_per_second: RATE_LIMIT_PER_SECOND,
            rate_limit_burst: RATE_LIMIT_BURST,
        }
    }
}

/// A subtree being walked: the labels not resolved yet.
#[derive(Debug, Clone)]
struct SubtreeSync {
    top: Label,
    missing: Vec<Label>,
    leaves: u64,
}

impl SubtreeSync {
    fn new(top: Label) -> Self {
        SubtreeSync {
            missing: vec![top.clone()],
            top,
            leaves: 0,
        }
    }

    fn done(&self) -> bool {
        self.missing.is_empty()
    }
}

/// One tree of the walk (geth `clientTree`).
#[derive(Debug, Clone)]
struct ClientTree {
    url: TreeUrl,
    root: Option<Root>,
    last_root_check: Option<Instant>,
    root_fails: u32,
    leaf_fails: u32,
    links: Option<SubtreeSync>,
    enrs: Option<SubtreeSync>,
    /// Trees linked from this one in the current link subtree.
    current_links: BTreeSet<String>,
    /// The `l` whose links were garbage-collected.
    links_gc_for: Option<Label>,
    /// A root lookup may not start before this (the failure slowdown).
    root_not_before: Instant,
}

impl ClientTree {
    fn new(url: TreeUrl) -> Self {
        ClientTree {
            url,
            root: None,
            last_root_check: None,
            root_fails: 0,
            leaf_fails: 0,
            links: None,
            enrs: None,
            current_links: BTreeSet::new(),
            links_gc_for: None,
            root_not_before: Instant::ZERO,
        }
    }

    fn root_due(&self, now: Instant, recheck: Duration) -> bool {
        self.root.is_none()
            || self.leaf_fails > ROOT_RECHECK_FAIL_COUNT
            || self
                .last_root_check
                .is_none_or(|t| now >= t.saturating_add(recheck))
    }

    /// Whether the tree's next step may run now: not while a root lookup it needs waits out
    /// the failure slowdown (geth sleeps the whole iterator then; we hold back only this tree).
    fn ready(&self, now: Instant, recheck: Duration) -> bool {
        !(self.root_due(now, recheck) && now < self.root_not_before)
    }

    /// Whether a step on this tree can do anything (geth `canSyncRandom`).
    fn useful(&self, now: Instant, recheck: Duration) -> bool {
        self.root_due(now, recheck)
            || self.links.as_ref().is_some_and(|l| !l.done())
            || self
                .enrs
                .as_ref()
                .is_some_and(|e| !e.done() || e.leaves > 0)
    }
}

/// What a lookup in flight is for.
#[derive(Debug, Clone)]
enum Purpose {
    WalkRoot {
        tree: String,
    },
    WalkEntry {
        tree: String,
        label: Label,
        links: bool,
    },
    SyncRoot {
        sync: SyncId,
    },
    SyncEntry {
        sync: SyncId,
        label: Label,
        links: bool,
    },
}

#[derive(Debug, Clone)]
struct Pending {
    purpose: Purpose,
    name: String,
    deadline: Instant,
}

/// A full sync: root, then the link subtree in order, then the ENR subtree in order.
#[derive(Debug, Clone)]
struct FullSync {
    url: TreeUrl,
    root: Option<Root>,
    links: VecDeque<Label>,
    enrs: VecDeque<Label>,
    entries: BTreeMap<Label, String>,
}

/// A small LRU of entry texts by cache key.
#[derive(Debug, Clone, Default)]
struct EntryCache {
    limit: usize,
    stamp: u64,
    /// By cache key: when last used, the entry's text, and the text parsed once it has
    /// been (as geth caches parsed entries: a walk revisits them, and parsing an `enr:`
    /// entry checks its record's signature).
    map: BTreeMap<String, (u64, String, Option<Entry>)>,
    order: BTreeMap<u64, String>,
}

impl EntryCache {
    fn get(&mut self, key: &str) -> Option<String> {
        let (old, text, _) = self.map.get_mut(key)?;
        self.order.remove(old);
        self.stamp += 1;
        *old = self.stamp;
        self.order.insert(self.stamp, key.to_owned());
        Some(text.clone())
    }

    fn insert(&mut self, key: &str, text: String) {
        if self.limit == 0 {
            return;
        }
        self.stamp += 1;
        if let Some((old, _, _)) = self.map.insert(key.to_owned(), (self.stamp, text, None)) {
            self.order.remove(&old);
        }
        self.order.insert(self.stamp, key.to_owned());
        while self.map.len() > self.limit {
            let Some((_, k)) = self.order.pop_first() else {
                break;
            };
            self.map.remove(&k);
        }
    }

    /// The parsed entry cached for `key`, if its text is `text` and it has been parsed.
    fn parsed(&self, key: &str, text: &str) -> Option<Entry> {
        match self.map.get(key) {
            Some((_, t, Some(e))) if t == text => Some(e.clone()),
            _ => None,
        }
    }

    /// Remembers `entry` as the parse of the text cached for `key`, if that text is `text`.
    fn set_parsed(&mut self, key: &str, text: &str, entry: &Entry) {
        if let Some((_, t, parsed)) = self.map.get_mut(key) {
            if t == text {
                *parsed = Some(entry.clone());
            }
        }
    }
}

/// The DNS discovery client. See the [module documentation](self).
///
/// ```
/// use devp2p_core::dnsdisc::{Client, ClientConfig, Event, Tree};
/// use devp2p_core::{Enr, Instant, NodeSecretKey};
/// use rand_chacha::ChaCha20Rng;
/// use rand_core::SeedableRng;
///
/// // A tree of three records, published (here: served from a map) at nodes.example.org.
/// let mut rng = ChaCha20Rng::seed_from_u64(1);
/// let records: Vec<Enr> = (0..3)
///     .map(|_| Enr::builder().sign(&NodeSecretKey::generate(&mut rng)).unwrap())
///     .collect();
/// let signer = NodeSecretKey::generate(&mut rng);
/// let (tree, url) = Tree::build(1, &records, &[]).sign(&signer, "nodes.example.org").unwrap();
/// let zone = tree.to_txt("nodes.example.org");
///
/// let mut client = Client::new(ClientConfig::default(), ChaCha20Rng::seed_from_u64(2));
/// client.add_tree(url);
/// let now = Instant::ZERO;
/// client.want_nodes(now, 3);
/// let mut found = Vec::new();
/// loop {
///     while let Some(q) = client.poll_query() {
///         let answer = zone.get(&q.name).cloned().into_iter().collect();
///         client.handle_answer(now, q.id, Ok(answer));
///     }
///     match client.poll_event() {
///         Some(Event::Node { record, .. }) => found.push(record),
///         Some(_) => {}
///         None => break,
///     }
/// }
/// found.sort_by_key(|r| r.node_id());
/// let mut want = records.clone();
/// want.sort_by_key(|r| r.node_id());
/// assert_eq!(found, want);
/// ```
pub struct Client<R> {
    config: ClientConfig,
    rng: R,
    trees: BTreeMap<String, ClientTree>,
    /// Trees the application added (the roots of the link graph).
    given: BTreeSet<String>,
    /// Link graph: tree → trees it links to.
    links: BTreeMap<String, BTreeSet<String>>,
    cache: EntryCache,
    /// Rate limiter: thousandths of a token, and when they were counted.
    milli_tokens: u64,
    tokens_at: Instant,
    /// Highest root seq accepted per tree (kept when a tree is dropped and linked again).
    best_seq: BTreeMap<String, u64>,
    wanted: usize,
    /// The walk's lookup in flight (one at a time, as geth's iterator).
    walk_query: Option<QueryId>,
    /// When the walk may take its next step.
    walk_not_before: Instant,
    syncs: BTreeMap<SyncId, FullSync>,
    next_sync: u64,
    pending: BTreeMap<QueryId, Pending>,
    queries: VecDeque<Query>,
    next_query: u64,
    events: VecDeque<Event>,
    now: Instant,
    /// The last root verified, as text, with the key it verified under: walks and syncs
    /// fetch a tree's root again every few minutes and it rarely changes, so the same text
    /// under the same key is taken without checking its signature again (it would pass).
    last_root: Option<(crate::NodePublicKey, String, Root)>,
}

impl<R: Rng> Client<R> {
    /// A client with no trees; `rng` picks trees and labels.
    pub fn new(config: ClientConfig, rng: R) -> Self {
        let burst = u64::from(config.rate_limit_burst.max(1)) * 1000;
        Client {
            cache: EntryCache {
                limit: config.cache_limit,
                ..EntryCache::default()
            },
            config,
            rng,
            trees: BTreeMap::new(),
            given: BTreeSet::new(),
            links: BTreeMap::new(),
            milli_tokens: burst,
            tokens_at: Instant::ZERO,
            best_seq: BTreeMap::new(),
            wanted: 0,
            walk_query: None,
            walk_not_before: Instant::ZERO,
            syncs: BTreeMap::new(),
            next_sync: 0,
            pending: BTreeMap::new(),
            queries: VecDeque::new(),
            next_query: 0,
            events: VecDeque::new(),
            now: Instant::ZERO,
            last_root: None,
        }
    }

    /// Adds a tree to walk; false if it was there already or [`MAX_TREES`] are known.
    pub fn add_tree(&mut self, url: TreeUrl) -> bool {
        let id = url.identity();
        if self.given.contains(&id) || self.trees.len() >= MAX_TREES {
            return false;
        }
        self.given.insert(id.clone());
        self.trees.entry(id).or_insert_with(|| ClientTree::new(url));
        true
    }

    /// The trees being walked (given and linked), by identity.
    pub fn trees(&self) -> impl Iterator<Item = &TreeUrl> {
        self.trees.values().map(|t| &t.url)
    }

    /// The root held for a tree, if any.
    pub fn root(&self, url: &TreeUrl) -> Option<&Root> {
        self.trees
            .get(&url.identity())
            .and_then(|t| t.root.as_ref())
    }

    /// Asks the walk for `n` more records; they arrive as [`Event::Node`].
    pub fn want_nodes(&mut self, now: Instant, n: usize) {
        self.advance(now);
        self.wanted = self.wanted.saturating_add(n).min(MAX_WANTED);
        self.step_walk();
    }

    /// Records the walk still owes.
    pub fn wanted(&self) -> usize {
        self.wanted
    }

    /// Syncs the tree at `url` completely; the result arrives as [`Event::Synced`].
    pub fn sync_tree(&mut self, now: Instant, url: TreeUrl) -> SyncId {
        self.advance(now);
        let id = SyncId(self.next_sync);
        self.next_sync += 1;
        let name = url.domain().to_owned();
        self.syncs.insert(
            id,
            FullSync {
                url,
                root: None,
                links: VecDeque::new(),
                enrs: VecDeque::new(),
                entries: BTreeMap::new(),
            },
        );
        self.ask(name, Purpose::SyncRoot { sync: id });
        id
    }

    /// The next lookup to make.
    pub fn poll_query(&mut self) -> Option<Query> {
        self.queries.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Client::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadlines = self.pending.values().map(|p| p.deadline).min();
        let walk = (self.wanted > 0 && self.walk_query.is_none()).then(|| self.next_walk_time());
        deadlines.into_iter().chain(walk.flatten()).min()
    }

    /// Fails the lookups whose time is up and lets the walk go on.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        let expired: Vec<QueryId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.answer(id, Err(ResolveError::Timeout));
        }
        self.step_walk();
    }

    /// The answer to the lookup `id`: every TXT record at the name (each with its
    /// character-strings joined), or why there is none. Unknown or late ids are ignored.
    pub fn handle_answer(
        &mut self,
        now: Instant,
        id: QueryId,
        answer: Result<Vec<String>, ResolveError>,
    ) {
        self.advance(now);
        self.answer(id, answer);
        self.step_walk();
    }

    // ----- internals -----

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    fn emit(&mut self, event: Event) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    fn ask(&mut self, name: String, purpose: Purpose) -> QueryId {
        let id = QueryId(self.next_query);
        self.next_query += 1;
        self.pending.insert(
            id,
            Pending {
                purpose,
                name: name.clone(),
                deadline: self.now.saturating_add(self.config.lookup_timeout),
            },
        );
        self.queries.push_back(Query { id, name });
        id
    }

    /// Refills the bucket and takes a token if there is one.
    fn take_token(&mut self) -> bool {
        let rate = u64::from(self.config.rate_limit_per_second);
        if rate == 0 {
            return true;
        }
        let cap = u64::from(self.config.rate_limit_burst.max(1)) * 1000;
        let elapsed = self
            .now
            .saturating_duration_since(self.tokens_at)
            .as_millis() as u64;
        self.milli_tokens = (self.milli_tokens + elapsed.saturating_mul(rate)).min(cap);
        self.tokens_at = self.now;
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }

    /// When the bucket next holds a whole token.
    fn next_token_time(&self) -> Instant {
        let rate = u64::from(self.config.rate_limit_per_second);
        if rate == 0 || self.milli_tokens >= 1000 {
            return self.now;
        }
        let ms = (1000 - self.milli_tokens).div_ceil(rate);
        self.tokens_at.saturating_add(Duration::from_millis(ms))
    }

    fn next_walk_time(&self) -> Option<Instant> {
        if self.trees.is_empty() {
            return None;
        }
        let (now, recheck) = (self.now, self.config.recheck_interval);
        if self
            .trees
            .values()
            .any(|t| t.useful(now, recheck) && t.ready(now, recheck))
        {
            return Some(self.walk_not_before.max(now));
        }
        // Trees waiting out a root slowdown, and idle trees until their root is due again
        // (geth #22313: no spinning on empty trees).
        self.trees
            .values()
            .filter_map(|t| {
                if t.useful(now, recheck) {
                    Some(t.root_not_before)
                } else {
                    t.last_root_check.map(|c| c.saturating_add(recheck))
                }
            })
            .min()
    }

    /// Takes walk steps until a lookup is in flight, the walk must wait, or nothing is wanted.
    fn step_walk(&mut self) {
        // Steps that end at once (cache hits) loop here; bounded so that a tree of cached
        // empty branches cannot keep us for ever.
        for _ in 0..64 {
            if self.wanted == 0 || self.walk_query.is_some() || self.now < self.walk_not_before {
                return;
            }
            let recheck = self.config.recheck_interval;
            let useful: Vec<String> = self
                .trees
                .iter()
                .filter(|(_, t)| t.useful(self.now, recheck) && t.ready(self.now, recheck))
                .map(|(id, _)| id.clone())
                .collect();
            if useful.is_empty() {
                return;
            }
            let pick = useful[(self.rng.next_u64() % useful.len() as u64) as usize].clone();
            self.step_tree(&pick);
        }
    }

    /// One step on one tree (geth `clientTree.syncRandom`).
    fn step_tree(&mut self, id: &str) {
        let recheck = self.config.recheck_interval;
        let Some(tree) = self.trees.get_mut(id) else {
            return;
        };
        if tree.root_due(self.now, recheck) {
            tree.last_root_check = Some(self.now);
            let name = tree.url.domain().to_owned();
            let q = self.ask(
                name,
                Purpose::WalkRoot {
                    tree: id.to_owned(),
                },
            );
            self.walk_query = Some(q);
            return;
        }
        // The link subtree first, in order.
        if let Some(links) = tree.links.as_ref().filter(|l| !l.done()) {
            let label = links.missing[0].clone();
            self.resolve_walk_entry(id, label, true);
            return;
        }
        // Links done: drop the trees no longer linked, once per `l`.
        let l = tree.root.as_ref().map(|r| r.l.clone());
        if tree.links_gc_for != l {
            tree.links_gc_for = l;
            let current = tree.current_links.clone();
            self.set_links(id, current);
        }
        let Some(tree) = self.trees.get_mut(id) else {
            return;
        };
        let Some(enrs) = tree.enrs.as_mut() else {
            return;
        };
        if enrs.done() {
            let top = enrs.top.clone();
            *enrs = SubtreeSync::new(top);
        }
        let i = (self.rng.next_u64() % enrs.missing.len() as u64) as usize;
        let label = enrs.missing[i].clone();
        self.resolve_walk_entry(id, label, false);
    }

    /// Resolves one label for the walk: from the cache at once, else by a lookup.
    fn resolve_walk_entry(&mut self, tree: &str, label: Label, links: bool) {
        if !self.take_token() {
            self.walk_not_before = self.next_token_time();
            return;
        }
        if let Some(text) = self.cache.get(label.cache_key()) {
            let name = self.entry_name(tree, &label);
            self.walk_entry_found(tree, &label, links, &name, Ok(text));
            return;
        }
        let name = self.entry_name(tree, &label);
        let q = self.ask(
            name,
            Purpose::WalkEntry {
                tree: tree.to_owned(),
                label,
                links,
            },
        );
        self.walk_query = Some(q);
    }

    /// `text` (the entry at `label`) parsed, through the cache.
    fn parse_entry(&mut self, label: &Label, text: &str) -> Result<Entry, EntryError> {
        if let Some(e) = self.cache.parsed(label.cache_key(), text) {
            return Ok(e);
        }
        let e = Entry::parse(text)?;
        self.cache.set_parsed(label.cache_key(), text, &e);
        Ok(e)
    }

    fn entry_name(&self, tree: &str, label: &Label) -> String {
        let domain = self.trees.get(tree).map(|t| t.url.domain()).unwrap_or("");
        format!("{label}.{domain}")
    }

    fn answer(&mut self, id: QueryId, answer: Result<Vec<String>, ResolveError>) {
        let Some(p) = self.pending.remove(&id) else {
            return;
        };
        if self.walk_query == Some(id) {
            self.walk_query = None;
        }
        let mut answer = answer;
        if let Ok(records) = answer.as_mut() {
            records.truncate(MAX_TXT_RECORDS);
        }
        match p.purpose {
            Purpose::WalkRoot { tree } => {
                let result = self.check_root(&tree, answer);
                self.walk_root(&tree, &p.name, result);
            }
            Purpose::WalkEntry { tree, label, links } => {
                let text = pick_entry(&label, answer);
                if let Ok(t) = &text {
                    self.cache.insert(label.cache_key(), t.clone());
                }
                self.walk_entry_found(&tree, &label, links, &p.name, text);
            }
            Purpose::SyncRoot { sync } => self.sync_root(sync, &p.name, answer),
            Purpose::SyncEntry { sync, label, links } => {
                let text = pick_entry(&label, answer);
                if let Ok(t) = &text {
                    self.cache.insert(label.cache_key(), t.clone());
                }
                self.sync_entry(sync, &label, links, &p.name, text);
            }
        }
    }

    /// The verified root of an answer for the tree `id`.
    fn check_root(
        &mut self,
        id: &str,
        answer: Result<Vec<String>, ResolveError>,
    ) -> Result<Root, (DnsError, Option<&'static str>)> {
        let key = match self.trees.get(id) {
            Some(t) => *t.url.public_key(),
            None => return Err((DnsError::TreeDropped, None)),
        };
        self.verified_root(&key, answer)
    }

    /// The first TXT record with a root prefix, parsed and verified with `key`.
    fn verified_root(
        &mut self,
        key: &crate::NodePublicKey,
        answer: Result<Vec<String>, ResolveError>,
    ) -> Result<Root, (DnsError, Option<&'static str>)> {
        let records = answer.map_err(|e| (DnsError::Resolve(e), None))?;
        let Some(text) = records.iter().find(|t| t.starts_with(ROOT_PREFIX)) else {
            return Err((DnsError::NoRoot(None), None));
        };
        if let Some((k, t, root)) = &self.last_root {
            if k == key && t == text {
                return Ok(root.clone());
            }
        }
        let root = Root::parse(text).map_err(|e| (DnsError::NoRoot(Some(e)), Some("root")))?;
        if !root.verify(key) {
            return Err((DnsError::BadSignature, Some("root")));
        }
        self.last_root = Some((*key, text.clone(), root.clone()));
        Ok(root)
    }

    fn walk_root(
        &mut self,
        id: &str,
        name: &str,
        result: Result<Root, (DnsError, Option<&'static str>)>,
    ) {
        let best = self.best_seq.get(id).copied();
        let Some(tree) = self.trees.get_mut(id) else {
            return;
        };
        match result {
            Err((error, kind)) => {
                tree.root_fails += 1;
                let slow = if tree.root_fails > 20 {
                    Duration::from_secs(10)
                } else if tree.root_fails > 5 {
                    Duration::from_secs(5)
                } else {
                    Duration::ZERO
                };
                tree.root_not_before = self.now.saturating_add(slow);
                let e = NameError {
                    tree: tree.url.clone(),
                    name: name.to_owned(),
                    error,
                    kind,
                };
                self.emit(Event::Error(e));
            }
            Ok(root) if best.is_some_and(|b| root.seq < b) => {
                let (url, held) = (tree.url.clone(), best.unwrap_or(0));
                // Counted as neither failure nor success: the old root stays, and so do the
                // leaf failures that asked for this check.
                self.emit(Event::StaleRoot {
                    tree: url,
                    held,
                    served: root.seq,
                });
            }
            Ok(root) => {
                tree.root_fails = 0;
                tree.leaf_fails = 0;
                let changed = tree.root.as_ref() != Some(&root);
                let old = tree.root.replace(root.clone());
                if old.as_ref().map(|r| &r.l) != Some(&root.l) {
                    tree.links = Some(SubtreeSync::new(root.l.clone()));
                    tree.current_links.clear();
                }
                if old.as_ref().map(|r| &r.e) != Some(&root.e) {
                    tree.enrs = Some(SubtreeSync::new(root.e.clone()));
                }
                let url = tree.url.clone();
                self.best_seq.insert(id.to_owned(), root.seq);
                if changed {
                    self.emit(Event::RootUpdated {
                        tree: url,
                        seq: root.seq,
                    });
                }
            }
        }
    }

    fn walk_entry_found(
        &mut self,
        id: &str,
        label: &Label,
        links: bool,
        name: &str,
        text: Result<String, (DnsError, Option<&'static str>)>,
    ) {
        let Some(tree) = self.trees.get(id) else {
            return;
        };
        let url = tree.url.clone();
        let entry = text.and_then(|t| {
            let kind = Entry::kind_of(&t);
            let e = self
                .parse_entry(label, &t)
                .map_err(|e| (DnsError::Entry(e), kind))?;
            match (&e, links) {
                (Entry::Enr(_), true) => Err((DnsError::EnrInLinkTree, kind)),
                (Entry::Link(_), false) => Err((DnsError::LinkInEnrTree, kind)),
                _ => Ok(e),
            }
        });
        let entry = match entry {
            Ok(e) => e,
            Err((error, kind)) => {
                if let Some(t) = self.trees.get_mut(id) {
                    t.leaf_fails += 1;
                }
                self.emit(Event::Error(NameError {
                    tree: url,
                    name: name.to_owned(),
                    error,
                    kind,
                }));
                return;
            }
        };
        let Some(tree) = self.trees.get_mut(id) else {
            return;
        };
        let sub = if links {
            tree.links.as_mut()
        } else {
            tree.enrs.as_mut()
        };
        let Some(sub) = sub else {
            return;
        };
        // The label may have gone if the root changed while this lookup ran.
        let Some(i) = sub.missing.iter().position(|m| m == label) else {
            return;
        };
        if links {
            sub.missing.remove(i); // in order: the link subtree is walked first to last
        } else {
            sub.missing.swap_remove(i);
        }
        match entry {
            Entry::Branch(children) => sub.missing.extend(children),
            Entry::Link(target) => {
                sub.leaves += 1;
                tree.current_links.insert(target.identity());
                self.link_to(id, target);
            }
            Entry::Enr(record) => {
                sub.leaves += 1;
                if self.wanted > 0 {
                    self.wanted -= 1;
                }
                self.emit(Event::Node { tree: url, record });
            }
        }
    }

    /// Adds the edge `from → target`, and the target tree if it is new.
    fn link_to(&mut self, from: &str, target: TreeUrl) {
        let to = target.identity();
        if !self.trees.contains_key(&to) {
            if self.trees.len() >= MAX_TREES {
                let e = NameError {
                    tree: target,
                    name: to,
                    error: DnsError::TooManyTrees,
                    kind: Some("link"),
                };
                self.emit(Event::Error(e));
                return;
            }
            self.trees
                .insert(to.clone(), ClientTree::new(target.clone()));
            self.emit(Event::TreeLinked {
                tree: target,
                added: true,
            });
        }
        self.links.entry(from.to_owned()).or_default().insert(to);
    }

    /// Replaces the links of `from` with `current` and drops trees no given tree reaches.
    fn set_links(&mut self, from: &str, current: BTreeSet<String>) {
        if current.is_empty() {
            self.links.remove(from);
        } else {
            self.links.insert(from.to_owned(), current);
        }
        let mut reached: BTreeSet<String> = self.given.clone();
        let mut stack: Vec<String> = self.given.iter().cloned().collect();
        while let Some(t) = stack.pop() {
            for next in self.links.get(&t).into_iter().flatten() {
                if reached.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        let gone: Vec<String> = self
            .trees
            .keys()
            .filter(|k| !reached.contains(*k))
            .cloned()
            .collect();
        for g in gone {
            self.links.remove(&g);
            if let Some(t) = self.trees.remove(&g) {
                self.emit(Event::TreeLinked {
                    tree: t.url,
                    added: false,
                });
            }
        }
    }

    // ----- full sync -----

    fn sync_fail(&mut self, sync: SyncId, name: &str, error: DnsError, kind: Option<&'static str>) {
        if let Some(s) = self.syncs.remove(&sync) {
            let e = NameError {
                tree: s.url,
                name: name.to_owned(),
                error,
                kind,
            };
            self.emit(Event::Synced {
                id: sync,
                result: Err(e),
            });
        }
    }

    fn sync_root(&mut self, sync: SyncId, name: &str, answer: Result<Vec<String>, ResolveError>) {
        let Some(key) = self.syncs.get(&sync).map(|s| *s.url.public_key()) else {
            return;
        };
        match self.verified_root(&key, answer) {
            Err((error, kind)) => self.sync_fail(sync, name, error, kind),
            Ok(root) => {
                let s = self.syncs.get_mut(&sync).expect("present");
                s.links.push_back(root.l.clone());
                s.enrs.push_back(root.e.clone());
                s.root = Some(root);
                self.sync_next(sync);
            }
        }
    }

    fn sync_next(&mut self, sync: SyncId) {
        let Some(s) = self.syncs.get_mut(&sync) else {
            return;
        };
        let (label, links) = if let Some(l) = s.links.front() {
            (l.clone(), true)
        } else if let Some(e) = s.enrs.front() {
            (e.clone(), false)
        } else {
            let s = self.syncs.remove(&sync).expect("present");
            let tree = Tree::from_parts(s.root.expect("root before entries"), s.entries);
            self.emit(Event::Synced {
                id: sync,
                result: Ok(SyncedTree { url: s.url, tree }),
            });
            return;
        };
        let name = format!("{label}.{}", s.url.domain());
        // A full sync is not paced by the walk's bucket: it is what `devp2p dns sync` runs
        // on its own, one lookup at a time (geth paces it; a user waiting for a 3,000-node
        // tree at 3 lookups/s would wait 20 minutes).
        if let Some(text) = self.cache.get(label.cache_key()) {
            self.sync_entry(sync, &label, links, &name, Ok(text));
            return;
        }
        self.ask(name, Purpose::SyncEntry { sync, label, links });
    }

    fn sync_entry(
        &mut self,
        sync: SyncId,
        label: &Label,
        links: bool,
        name: &str,
        text: Result<String, (DnsError, Option<&'static str>)>,
    ) {
        let parsed = text.and_then(|t| {
            let kind = Entry::kind_of(&t);
            let e = self
                .parse_entry(label, &t)
                .map_err(|e| (DnsError::Entry(e), kind))?;
            match (&e, links) {
                (Entry::Enr(_), true) => Err((DnsError::EnrInLinkTree, kind)),
                (Entry::Link(_), false) => Err((DnsError::LinkInEnrTree, kind)),
                _ => Ok((e, t)),
            }
        });
        let (entry, text) = match parsed {
            Ok(x) => x,
            Err((error, kind)) => return self.sync_fail(sync, name, error, kind),
        };
        let Some(s) = self.syncs.get_mut(&sync) else {
            return;
        };
        let queue = if links { &mut s.links } else { &mut s.enrs };
        queue.pop_front();
        if let Entry::Branch(children) = &entry {
            queue.extend(children.iter().cloned());
        }
        if s.entries.len() >= super::MAX_SYNC_ENTRIES {
            return self.sync_fail(sync, name, DnsError::TreeTooLarge, None);
        }
        s.entries.insert(label.clone(), text);
        self.sync_next(sync);
    }
}

/// The entry text of an answer at `label` (geth `resolveEntry`): records without a known
/// prefix are skipped; the first with one decides.
fn pick_entry(
    label: &Label,
    answer: Result<Vec<String>, ResolveError>,
) -> Result<String, (DnsError, Option<&'static str>)> {
    let records = answer.map_err(|e| (DnsError::Resolve(e), None))?;
    for text in records {
        let kind = match Entry::kind_of(&text) {
            Some("root") | None => continue,
            Some(k) => k,
        };
        if !label.matches(&text) {
            return Err((DnsError::HashMismatch, Some(kind)));
        }
        return Ok(text);
    }
    Err((DnsError::NoEntry, None))
}
