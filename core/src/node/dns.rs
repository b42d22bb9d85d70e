//! DNS discovery inside the node ([DNSDISC_NAT.md §A.12](crate::spec::dnsdisc_nat)): the
//! trees of [`NodeConfig::dns`](super::NodeConfig::dns) as one more source of dial
//! candidates, beside the discovery lookups.
//!
//! geth mixes its DNS iterator with the discv4 and discv5 iterators in front of the dial
//! scheduler (`enode.FairMix` in `eth/backend.go`): every source keeps one node ready, and
//! the scheduler takes from them in turn while it has free slots. Here the walk
//! ([`dnsdisc::Client`]) is asked for one record at a time whenever the dialer has free dial
//! slots and nothing left to dial, the same condition that starts the discovery feeder
//! lookups; the two run side by side and fill the one candidate queue. The walk's own pace
//! applies (3 entry lookups a second, burst 10, cache hits included; the root re-checked
//! every 30 minutes), so a node that needs peers walks a tree of 3,000 records in about 20
//! minutes and then goes round again from its cache, as geth's does.
//!
//! **Departure from geth: records from a tree also seed discovery.** geth hands DNS nodes to
//! the dialer only. Here each one is also offered to the discv4 and discv5 tables, the way
//! bootnodes and database seeds enter them (found nodes, under the tables' IP limits,
//! revalidated like the rest; only those with a UDP endpoint, and for v5 with the record).
//! The records are as trustworthy as configured bootnodes (the tree's publisher signed
//! them), and a tree is what a node is given when it has no bootnodes: without seeding, a
//! node started with trees alone would dial what they list but never enter the DHT. A record
//! a table took reaches the dialer through that table's `NodeAdded`; the others go to the
//! dialer directly, so each record is offered once.

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, SeedableRng};

use super::types::NodeEvent;
use super::{Action, Node};
use crate::dial::DialTarget;
use crate::discv4::Node as DiscNode;
use crate::dnsdisc::{Client, ClientConfig, DnsError, Event, NameError, QueryId, ResolveError};
use crate::enr::Enr;
use crate::time::Instant;

/// The DNS client of a node: seeded from the node's randomness, holding the configured trees.
/// Trees beyond [`MAX_TREES`](crate::dnsdisc::MAX_TREES) are refused, each with an `Error`
/// event; duplicates are walked once.
pub(super) fn client<R: CryptoRng>(
    config: &super::NodeConfig,
    rng: &mut R,
    events: &mut std::collections::VecDeque<NodeEvent>,
) -> Option<Box<Client<ChaCha20Rng>>> {
    if config.dns.is_empty() {
        return None;
    }
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let mut client = Client::new(ClientConfig::default(), ChaCha20Rng::from_seed(seed));
    for url in &config.dns {
        let known = client.trees().any(|t| t == url);
        if !client.add_tree(url.clone()) && !known {
            events.push_back(NodeEvent::Dns(Box::new(Event::Error(NameError {
                name: url.domain().to_owned(),
                tree: url.clone(),
                error: DnsError::TooManyTrees,
                kind: None,
            }))));
        }
    }
    Some(Box::new(client))
}

impl<R: CryptoRng> Node<R> {
    /// The answer to the DNS lookup `query` of an [`Action::ResolveTxt`]: every TXT record
    /// at the name (each with its character-strings joined, no separator), or why there is
    /// none. The query id, not the name, says which lookup this answers: an answer that comes
    /// after the node gave the lookup up (5 s) is ignored rather than taken for a newer
    /// lookup of the same name. Unknown ids are ignored.
    ///
    /// What the answer leads to is reported as [`NodeEvent::Dns`]: a verified record, a root
    /// accepted, or the failure. A record becomes a dial candidate, as in geth, and also a
    /// seed of the discv4 and discv5 tables, which geth does not do: the tree's publisher
    /// signed it, so it is as trustworthy as a configured bootnode, and a node given trees
    /// and no bootnodes would otherwise dial what they list but never enter the DHT. Seeds
    /// enter the tables as bootnodes do (found nodes, under the IP limits, revalidated).
    pub fn dns_answer(
        &mut self,
        now: Instant,
        query: QueryId,
        answer: Result<Vec<String>, ResolveError>,
    ) {
        self.tick(now, self.unix_secs);
        if let Some(d) = &mut self.dns {
            d.handle_answer(now, query, answer);
        }
        self.after_dns();
        self.run_dialer();
    }

    /// The DNS discovery client, when [`NodeConfig::dns`](super::NodeConfig::dns) names trees:
    /// the trees walked (given and linked) and the root held for each.
    pub fn dns(&self) -> Option<&Client<ChaCha20Rng>> {
        self.dns.as_deref()
    }

    // ---- internals -------------------------------------------------------------------------

    /// When the DNS client's next deadline is (a lookup's timeout, the walk's next step).
    pub(super) fn dns_timeout(&self) -> Option<Instant> {
        self.dns.as_ref().and_then(|d| d.poll_timeout())
    }

    /// Runs the DNS client's deadlines due at `now`.
    pub(super) fn dns_handle_timeout(&mut self, now: Instant) {
        let due = self.dns_timeout().is_some_and(|t| t <= now);
        if let Some(d) = self.dns.as_mut().filter(|_| due) {
            d.handle_timeout(now);
            self.after_dns();
        }
    }

    /// Asks the walk for a record when the dialer has free slots and none owed already;
    /// true when candidates arrived at once (from the walk's cache).
    pub(super) fn feed_from_dns(&mut self) -> bool {
        let free = self.dialer.free_slots() > 0;
        let now = self.now;
        match self.dns.as_mut() {
            Some(d) if free && d.wanted() == 0 => d.want_nodes(now, 1),
            _ => return false,
        }
        self.after_dns()
    }

    /// Moves the DNS client's lookups to the driver and its events to the dialer, the
    /// discovery tables and the application; true when the dialer got candidates.
    pub(super) fn after_dns(&mut self) -> bool {
        let Some(d) = self.dns.as_mut() else {
            return false;
        };
        while let Some(q) = d.poll_query() {
            self.stats.dns_lookups += 1;
            self.actions.push_back(Action::ResolveTxt {
                query: q.id,
                name: q.name,
            });
        }
        let mut events = Vec::new();
        while let Some(e) = d.poll_event() {
            events.push(e);
        }
        let mut candidates = false;
        for e in events {
            match &e {
                Event::Node { record, .. } => {
                    self.stats.dns_nodes += 1;
                    self.dns_record(record);
                    candidates = true;
                }
                Event::Error(_) => self.stats.dns_errors += 1,
                _ => {}
            }
            self.events.push_back(NodeEvent::Dns(Box::new(e)));
        }
        if candidates {
            // The seeds' NodeAdded events, which offer them to the dialer.
            self.after_discovery();
        }
        candidates
    }

    /// A verified record from a tree: a discovery seed for every version that runs, and a
    /// dial candidate (through a table's `NodeAdded` when one took it, else directly; the
    /// dialer counts a record without a usable TCP endpoint as a skip).
    fn dns_record(&mut self, record: &Enr) {
        let allowed = |ip: &std::net::IpAddr| {
            self.config
                .net_restrict
                .as_ref()
                .is_none_or(|n| n.contains(ip))
        };
        let seed = DiscNode::from_enr(record.clone()).filter(|n| allowed(&n.ip()));
        let (now, unix) = (self.now, self.unix_secs);
        let mut taken = false;
        if let Some(n) = &seed {
            if let Some(d) = &mut self.discovery {
                taken |= d.add_seed(now, unix, n.clone());
            }
            if let Some(d) = &mut self.discv5 {
                taken |= d.add_seed(now, unix, n.clone());
            }
        }
        // A table's NodeAdded offers the node at the TCP port of its record (0: not at all).
        if !taken || seed.as_ref().is_some_and(|n| n.tcp_port() == 0) {
            self.dialer.add_candidate(DialTarget {
                public_key: *record.public_key(),
                addr: record.tcp_endpoint(),
            });
        }
    }
}
