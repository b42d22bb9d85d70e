//! Nodes behind NAT: a full-cone mapping in the link layer in front of a node, and what the
//! network makes of it ([`Sim::nat_report`]).
//!
//! A node behind NAT listens on a private address, [`PRIVATE_IP`]:[`PORT`](super::PORT), the same for
//! every such node (each is on a LAN of its own), which nobody can send to. Its NAT owns the
//! node's public IP ([`honest_ip`]) and maps the node's port to [`public_port`] of it, for UDP
//! and TCP alike: everything the node sends leaves from that public endpoint, and whatever
//! anyone sends to it reaches the node (full cone: no prior contact needed). Nothing tells the
//! node its public endpoint; it starts advertising the private one, and endpoint prediction
//! must find the public one. The TCP port of its record stays the listen port, which the NAT
//! does not forward, so such a node dials out but is never dialled (as behind a real NAT
//! without port forwarding).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::{derive, honest_ip, Sim};

/// The private address of every node behind NAT (each on its own LAN).
pub const PRIVATE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);
/// The first public port a NAT maps a node's port to.
pub const FIRST_PUBLIC_PORT: u16 = 40_000;

/// The public UDP (and TCP) port the NAT of node `i` maps the node's [`PORT`](super::PORT) to: never
/// [`PORT`](super::PORT) itself, so that prediction must find the port as well as the IP.
pub fn public_port(i: usize) -> u16 {
    FIRST_PUBLIC_PORT + (i % 20_000) as u16
}

/// The public endpoint of node `i` behind a NAT: its NAT's IP and mapped port.
pub fn public_addr(i: usize) -> SocketAddr {
    SocketAddr::new(honest_ip(i).into(), public_port(i))
}

/// Which of `nodes` nodes (the first `bootnodes` never) go behind a NAT: `share` of the
/// others, rounded, picked at random from the seed (a stream of its own, so that the choice
/// shifts no other draw).
pub fn pick(seed: u64, nodes: usize, bootnodes: usize, share: f64) -> BTreeSet<usize> {
    let mut candidates: Vec<usize> = (bootnodes.min(nodes)..nodes).collect();
    let k =
        ((share.clamp(0.0, 1.0) * candidates.len() as f64).round() as usize).min(candidates.len());
    let mut rng = ChaCha20Rng::from_seed(derive(seed, "nat", 0, 0));
    // A partial Fisher–Yates shuffle: the first k are the pick.
    for j in 0..k {
        let r = j + (rng.next_u64() % (candidates.len() - j) as u64) as usize;
        candidates.swap(j, r);
    }
    candidates.truncate(k);
    candidates.into_iter().collect()
}

/// What the network knows about its nodes behind NAT ([`Sim::nat_report`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatReport {
    /// Nodes behind NAT.
    pub nodes: usize,
    /// Of those, the ones running.
    pub running: usize,
    /// Running ones whose record advertises their public endpoint (IP and UDP port).
    pub advertising_public: usize,
    /// Entries for them in the other running nodes' tables (v4's and v5's, as they run).
    pub table_entries: usize,
    /// Of those, entries at the public endpoint.
    pub entries_public: usize,
    /// Of those, entries holding the NATed node's current record (the one advertising the
    /// public endpoint, with its seq).
    pub entries_current_record: usize,
}

impl NatReport {
    /// Whether every running NATed node advertises its public endpoint and every table
    /// entry for one holds it.
    pub fn converged(&self) -> bool {
        self.advertising_public == self.running && self.entries_public == self.table_entries
    }
}

impl Sim {
    /// Puts node `i` behind a full-cone NAT whose public endpoint is `public`: from now on
    /// what it sends comes from `public`, what is sent to `public` reaches it, and its own
    /// address reaches nobody. Meant right after [`Sim::add_node`], before it starts.
    ///
    /// # Panics
    /// If another node already has the address `public`.
    pub fn put_behind_nat(&mut self, i: usize, public: SocketAddr) {
        let own = self.slots[i].addr;
        if self.net.by_addr.get(&own) == Some(&i) {
            self.net.by_addr.remove(&own);
        }
        assert!(
            self.net.by_addr.insert(public, i).is_none(),
            "two simulated nodes at {public}"
        );
        self.slots[i].nat = Some(public);
        self.net.public[i] = public;
    }

    /// Where node `i`'s packets come from: its NAT's public endpoint, or its own address.
    pub fn public_addr(&self, i: usize) -> SocketAddr {
        self.net.public[i]
    }

    /// Whether node `i` is behind a NAT.
    pub fn is_behind_nat(&self, i: usize) -> bool {
        self.slots[i].nat.is_some()
    }

    /// The nodes behind NAT.
    pub fn nated_nodes(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| self.is_behind_nat(i))
            .collect()
    }

    /// The NATed nodes' records, and the other nodes' table entries for them (in the table of
    /// every version a node runs).
    pub fn nat_report(&self) -> NatReport {
        let nated = self.nated_nodes();
        let mut r = NatReport {
            nodes: nated.len(),
            ..NatReport::default()
        };
        for &n in &nated {
            let Some(node) = self.node(n) else { continue };
            r.running += 1;
            let public = self.public_addr(n);
            let record = node.local_enr();
            if record.and_then(|e| e.udp_endpoint()) == Some(public) {
                r.advertising_public += 1;
            }
            let id = self.id(n);
            for i in (0..self.slots.len()).filter(|&i| i != n) {
                let Some(peer) = self.node(i) else { continue };
                let v4 = peer.discovery().and_then(|d| d.table().get(&id));
                let v5 = peer.discv5().and_then(|d| d.table().get(&id));
                for e in v4.into_iter().chain(v5) {
                    r.table_entries += 1;
                    if e.node().udp_addr() == public {
                        r.entries_public += 1;
                    }
                    if e.node().record().is_some() && e.node().record() == record {
                        r.entries_current_record += 1;
                    }
                }
            }
        }
        r
    }
}
