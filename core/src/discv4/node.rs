//! A contact: what discovery knows about one remote node.

use std::net::{IpAddr, SocketAddr};

use crate::enr::Enr;
use crate::identity::{NodeId, NodePublicKey};

use super::netutil::canonical_ip;
use super::wire::{Endpoint, Neighbor};

/// A remote node: its key, where to reach it, and its signed record when we have one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    public_key: NodePublicKey,
    id: NodeId,
    ip: IpAddr,
    udp: u16,
    tcp: u16,
    record: Option<Enr>,
}

impl Node {
    /// A node known by key and address only (as from Neighbors or an enode URL): seq 0.
    pub fn new(public_key: NodePublicKey, ip: IpAddr, udp: u16, tcp: u16) -> Self {
        Node {
            id: public_key.id(),
            public_key,
            ip: canonical_ip(ip),
            udp,
            tcp,
            record: None,
        }
    }

    /// A node described by its record, if the record carries an IP and UDP port.
    pub fn from_enr(record: Enr) -> Option<Self> {
        let udp = record.udp_endpoint()?;
        let tcp = record.tcp_endpoint().map(|a| a.port()).unwrap_or(0);
        let mut n = Node::new(*record.public_key(), udp.ip(), udp.port(), tcp);
        n.record = Some(record);
        Some(n)
    }

    /// The node's public key.
    pub fn public_key(&self) -> &NodePublicKey {
        &self.public_key
    }

    /// The node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Its IP.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Its UDP (discovery) port.
    pub fn udp_port(&self) -> u16 {
        self.udp
    }

    /// Its TCP (RLPx) port; 0 when unknown.
    pub fn tcp_port(&self) -> u16 {
        self.tcp
    }

    /// Where to send discovery packets.
    pub fn udp_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.udp)
    }

    /// Its signed record, if we have fetched one.
    pub fn record(&self) -> Option<&Enr> {
        self.record.as_ref()
    }

    /// The record's sequence number, 0 without a record.
    pub fn seq(&self) -> u64 {
        self.record.as_ref().map_or(0, Enr::seq)
    }

    /// The endpoint as it appears in Neighbors.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            ip: Some(self.ip),
            udp: self.udp,
            tcp: self.tcp,
        }
    }

    /// This node as a Neighbors entry.
    pub fn to_neighbor(&self) -> Neighbor {
        Neighbor {
            endpoint: self.endpoint(),
            key: *self.public_key.raw(),
        }
    }

    /// Whether `other` has the same UDP endpoint.
    pub fn same_endpoint(&self, other: &Node) -> bool {
        self.ip == other.ip && self.udp == other.udp
    }
}
