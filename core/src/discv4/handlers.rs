//! What the machine does with each verified, unexpired packet
//! ([PROTOCOL.md §7.4–§7.8](crate::spec::protocol)).

use std::net::{IpAddr, SocketAddr};

use rand_core::CryptoRng;

use super::config::{BOND_EXPIRATION_SECS, MAX_PENDING_INBOUND_BONDS};
use super::discovery::Discovery;
use super::events::DropReason;
use super::netutil::check_relay_ip;
use super::node::Node;
use super::requests::{Expect, Purpose};
use super::table::BUCKET_SIZE;
use super::wire::{
    Decoded, Endpoint, EnrResponse, FindNode, Neighbor, Neighbors, Packet, Ping, Pong,
    MAX_NEIGHBORS,
};
use crate::endpoint::Observation;
use crate::identity::{NodeId, NodePublicKey};

/// Neighbors entries with a UDP port at or below this are refused (geth `lowPort` check,
/// [PROTOCOL.md §7.8](crate::spec::protocol)).
const MIN_NEIGHBOR_UDP_PORT: u16 = 1024;

impl<R: CryptoRng> Discovery<R> {
    pub(super) fn handle_packet(&mut self, from: SocketAddr, d: Decoded) {
        match d.packet {
            Packet::Ping(p) => self.on_ping(from, d.sender, d.hash, p),
            Packet::Pong(p) => self.on_pong(from, d.sender.id(), p),
            Packet::FindNode(p) => self.on_findnode(from, d.sender.id(), p),
            Packet::Neighbors(p) => self.on_neighbors(from, d.sender.id(), p),
            Packet::EnrRequest(_) => self.on_enr_request(from, d.sender.id(), d.hash),
            Packet::EnrResponse(p) => self.on_enr_response(from, d.sender.id(), p),
        }
    }

    /// Whether `id` at `ip` answered one of our pings within the bond window
    /// ([PROTOCOL.md §7.4](crate::spec::protocol)).
    fn has_bond(&self, id: &NodeId, ip: &IpAddr) -> bool {
        let pong = self.db.endpoint(id, ip).last_pong_received;
        pong != 0 && self.unix_secs.saturating_sub(pong) < BOND_EXPIRATION_SECS
    }

    fn on_ping(&mut self, from: SocketAddr, sender: NodePublicKey, hash: [u8; 32], ping: Ping) {
        // The datagram's source is authoritative; only `from.tcp` is taken from the packet.
        let pong = Packet::Pong(Pong {
            to: Endpoint {
                ip: Some(from.ip()),
                udp: from.port(),
                tcp: ping.from.tcp,
            },
            ping_hash: hash,
            expiration: self.expiration(),
            enr_seq: Some(self.local_record.seq()),
        });
        self.send(from, &pong);
        let node = Node::new(sender, from.ip(), from.port(), ping.from.tcp);
        if self.has_bond(&node.id(), &from.ip()) {
            // geth counts every Ping's `to`; only a bonded sender's here: an unbonded source
            // address may be spoofed, and ten spoofed Pings would move our record.
            if let Some(ip) = ping.to.ip {
                self.observe(Observation::Statement {
                    reporter: from.ip(),
                    endpoint: SocketAddr::new(ip, ping.to.udp),
                });
            }
            if self.bootstrapped {
                self.add_to_table(node.clone(), true);
            }
        } else if self.inbound_bonds < MAX_PENDING_INBOUND_BONDS {
            // Prove its endpoint before it may enter the table.
            self.send_ping(&node.clone(), Purpose::BondInbound(node.clone()));
        }
        self.db
            .set_last_ping_received(&node.id(), &from.ip(), self.unix_secs);
    }

    fn on_pong(&mut self, from: SocketAddr, id: NodeId, pong: Pong) {
        let ip = from.ip();
        let Some(i) = self
            .pending
            .iter()
            .position(|p| p.matches_pong(&id, &ip, &pong.ping_hash))
        else {
            self.count_drop(DropReason::Unsolicited);
            return;
        };
        let p = self.take_pending(i);
        self.db.set_last_pong_received(&id, &ip, self.unix_secs);
        if let Some(to) = pong.to.ip {
            self.observe(Observation::Statement {
                reporter: ip,
                endpoint: SocketAddr::new(to, pong.to.udp),
            });
        }
        self.ping_answered(p, pong.enr_seq);
    }

    fn on_findnode(&mut self, from: SocketAddr, id: NodeId, req: FindNode) {
        if !self.has_bond(&id, &from.ip()) {
            // No reply at all, not even a ping: the sender may be spoofing the source
            // (core/docs/PROTOCOL.md §7.11).
            self.count_drop(DropReason::Unbonded);
            return;
        }
        let target = NodeId::of_target(&req.target);
        let relayable: Vec<Neighbor> = self
            .table
            .closest_refs(&target, BUCKET_SIZE, self.config.prefer_live)
            .into_iter()
            .filter(|n| check_relay_ip(&from.ip(), &n.ip()).is_ok())
            .map(Node::to_neighbor)
            .collect();
        let expiration = self.expiration();
        if relayable.is_empty() {
            self.send(
                from,
                &Packet::Neighbors(Neighbors {
                    nodes: Vec::new(),
                    expiration,
                }),
            );
        }
        for chunk in relayable.chunks(MAX_NEIGHBORS) {
            self.send(
                from,
                &Packet::Neighbors(Neighbors {
                    nodes: chunk.to_vec(),
                    expiration,
                }),
            );
        }
    }

    /// Applies the [PROTOCOL.md §7.8](crate::spec::protocol) checks to one Neighbors entry from a
    /// node at `sender`.
    fn validate_neighbor(&self, sender: &IpAddr, n: &Neighbor) -> Option<Node> {
        let ip = n.endpoint.ip?;
        if n.endpoint.udp <= MIN_NEIGHBOR_UDP_PORT {
            return None;
        }
        check_relay_ip(sender, &ip).ok()?;
        if !self.config.allows(&ip) {
            return None;
        }
        let key = NodePublicKey::from_raw(&n.key).ok()?;
        Some(Node::new(key, ip, n.endpoint.udp, n.endpoint.tcp))
    }

    fn on_neighbors(&mut self, from: SocketAddr, id: NodeId, packet: Neighbors) {
        let ip = from.ip();
        let Some(i) = self
            .pending
            .iter()
            .position(|p| p.matches_neighbors(&id, &ip))
        else {
            self.count_drop(DropReason::Unsolicited);
            return;
        };
        self.reply_matched();
        let mut valid = Vec::with_capacity(packet.nodes.len());
        for n in &packet.nodes {
            match self.validate_neighbor(&ip, n) {
                Some(node) => valid.push(node),
                None => self.count_drop(DropReason::InvalidNeighbor),
            }
        }
        let done = match &mut self.pending[i].expect {
            Expect::Neighbors {
                entries,
                packets,
                nodes,
            } => {
                // Invalid entries count towards the 16 too, as in geth.
                *entries += packet.nodes.len();
                *packets += 1;
                for n in valid {
                    if nodes.len() < BUCKET_SIZE && !nodes.iter().any(|m| m.id() == n.id()) {
                        nodes.push(n);
                    }
                }
                *entries >= BUCKET_SIZE
            }
            _ => false,
        };
        if done {
            let p = self.take_pending(i);
            if let (Purpose::Query { lookup, node }, Expect::Neighbors { nodes, .. }) =
                (p.purpose, p.expect)
            {
                self.query_done(lookup, node, Some(nodes));
            }
        }
    }

    fn on_enr_request(&mut self, from: SocketAddr, id: NodeId, hash: [u8; 32]) {
        if !self.has_bond(&id, &from.ip()) {
            self.count_drop(DropReason::Unbonded);
            return;
        }
        let response = Packet::EnrResponse(EnrResponse {
            request_hash: hash,
            record: self.local_record.clone(),
        });
        self.send(from, &response);
    }

    fn on_enr_response(&mut self, from: SocketAddr, id: NodeId, resp: EnrResponse) {
        let ip = from.ip();
        let Some(i) = self
            .pending
            .iter()
            .position(|p| p.matches_enr_response(&id, &ip, &resp.request_hash))
        else {
            self.count_drop(DropReason::Unsolicited);
            return;
        };
        self.take_pending(i);
        let record = resp.record;
        if record.node_id() != id {
            self.count_drop(DropReason::BadRecord);
            return;
        }
        let Some(node) = Node::from_enr(record) else {
            return;
        };
        if check_relay_ip(&ip, &node.ip()).is_err() || !self.config.allows(&node.ip()) {
            return;
        }
        // A lower or equal seq keeps the record we have (core/docs/PROTOCOL.md §7.7); the table
        // enforces that.
        let id = node.id();
        self.add_to_table(node, false);
        if let Some(e) = self.table.get(&id) {
            if e.liveness_checks() > super::config::PERSIST_MIN_LIVENESS_CHECKS {
                let n = e.node().clone();
                self.db.store_node(n);
            }
        }
    }
}
