//! Discovery inside the node: one UDP socket for both versions, both feeding the dialer, the
//! lookups over either, and discv5's TALKREQ for applications.
//!
//! geth shares the socket the same way (`p2p/server.go` `setupDiscovery`): v4 reads every
//! datagram first, and what it cannot read goes to v5. Here "cannot read" is the framing:
//! a v4 packet's head hashes the rest ([`wire::is_packet`]); anything else goes to v5,
//! which drops what is not discv5 either (counted as
//! [`DropReason::NotDiscv5`](crate::discv5::DropReason::NotDiscv5)). A v4 packet with a
//! good hash and a bad signature stays with v4 and is counted there.

use std::net::SocketAddr;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, SeedableRng};

use super::types::{
    ConnectError, ConnectionFailure, Direction, DiscoveryVersion, Discv5Error, LocalRecordError,
    NodeEvent, PacketKind,
};
use super::{Action, ConnState, Node, DIAL_TIMEOUT, LOOKUP_MIN_INTERVAL};
use crate::dial::{DialAction, DialKind, DialTarget};
use crate::discv4::wire::{self, MAX_PACKET_SIZE};
use crate::discv4::{
    Config as Discv4Config, Discovery as Discv4, Event as Discv4Event, LookupId, Node as DiscNode,
};
use crate::discv5::discovery::{
    Config as Discv5Config, Discovery as Discv5, Event as Discv5Event, TalkRequestId,
};
use crate::discv5::RequestId;
use crate::enr::Enr;
use crate::identity::{NodeId, NodePublicKey};
use crate::time::Instant;

use super::NodeConfig;

/// The discovery machines a node runs, built from its configuration.
pub(super) struct Machines {
    pub v4: Option<Discv4<ChaCha20Rng>>,
    pub v5: Option<Box<Discv5<ChaCha20Rng>>>,
}

impl Machines {
    /// Builds what `config` asks for, with `record` as the local record of both and the
    /// configured bootnodes (enodes and records) given to both. Each machine's randomness is
    /// a stream seeded from `rng`.
    pub fn new<R: CryptoRng>(
        key: &crate::identity::NodeSecretKey,
        config: &NodeConfig,
        record: Option<&Enr>,
        rng: &mut R,
        now: Instant,
        unix_secs: u64,
    ) -> Self {
        let Some(record) = record else {
            return Machines { v4: None, v5: None };
        };
        let allowed =
            |ip: &std::net::IpAddr| config.net_restrict.as_ref().is_none_or(|n| n.contains(ip));
        let mut bootnodes: Vec<DiscNode> = config
            .bootnodes
            .iter()
            .filter_map(|e| Some(DiscNode::new(e.public_key, e.ip()?, e.udp_port, e.tcp_port)))
            .collect();
        bootnodes.extend(
            config
                .bootnode_records
                .iter()
                .filter_map(|r| DiscNode::from_enr(r.clone())),
        );
        bootnodes.retain(|n| allowed(&n.ip()) && n.id() != key.id());
        let mut seed = || {
            let mut s = [0u8; 32];
            rng.fill_bytes(&mut s);
            ChaCha20Rng::from_seed(s)
        };
        let v4 = config.runs_discv4().then(|| {
            Discv4::new(
                key.clone(),
                record.clone(),
                Discv4Config {
                    bootnodes: bootnodes.clone(),
                    ..Discv4Config::default()
                },
                config.node_db.clone(),
                seed(),
                now,
                unix_secs,
            )
        });
        let v5 = config.runs_discv5().then(|| {
            let c = Discv5Config {
                bootnodes: bootnodes.clone(),
                net_restrict: config.net_restrict.clone(),
                ..config.discv5_config.clone()
            };
            Box::new(Discv5::new(
                key.clone(),
                record.clone(),
                c,
                config.node_db.clone(),
                seed(),
                now,
                unix_secs,
            ))
        });
        Machines { v4, v5 }
    }
}

impl<R: CryptoRng> Node<R> {
    /// A UDP datagram arrived. With both versions running, it goes to v4 when its framing
    /// is v4's ([`wire::is_packet`]: the head hashes the rest; or it is too large for
    /// either, which v4 counts as `TooLarge`) and to v5 otherwise, as geth
    /// hands v5 what its v4 decoder cannot read; v5 drops what is not discv5 either
    /// (counted as [`DropReason::NotDiscv5`](crate::discv5::DropReason::NotDiscv5)).
    pub fn handle_datagram(&mut self, now: Instant, unix_secs: u64, from: SocketAddr, data: &[u8]) {
        self.tick(now, unix_secs);
        self.publish_local_record();
        self.stats.udp_bytes_in += data.len() as u64;
        let to_v4 = match (&self.discovery, &self.discv5) {
            // Over 1280 bytes a datagram is neither's; v4 counts it as `TooLarge`.
            (Some(d), Some(_)) => {
                data.len() > MAX_PACKET_SIZE || wire::is_packet(data, d.signature_scheme())
            }
            (Some(_), None) => true,
            _ => false,
        };
        if to_v4 {
            *self
                .stats
                .packets_in
                .entry(PacketKind::of(data))
                .or_default() += 1;
            if let Some(d) = &mut self.discovery {
                d.handle_datagram(now, unix_secs, from, data);
            }
        } else if let Some(d) = &mut self.discv5 {
            self.stats.discv5_packets_in += 1;
            let _ = d.handle_datagram(now, unix_secs, from, data);
        }
        self.after_discovery();
        self.run_dialer();
    }

    /// The next datagram to send, of either version: written into `buf`, returned as
    /// (destination, length).
    pub fn poll_transmit(
        &mut self,
        buf: &mut [u8; MAX_PACKET_SIZE],
    ) -> Option<(SocketAddr, usize)> {
        if let Some(t) = self.discovery.as_mut().and_then(|d| d.poll_transmit(buf)) {
            *self
                .stats
                .packets_out
                .entry(PacketKind::of(&buf[..t.len]))
                .or_default() += 1;
            self.stats.udp_bytes_out += t.len as u64;
            return Some((t.destination, t.len));
        }
        let t = self.discv5.as_mut()?.poll_transmit(buf)?;
        self.stats.discv5_packets_out += 1;
        self.stats.udp_bytes_out += t.len as u64;
        Some((t.destination, t.len))
    }

    // ---- lookups ---------------------------------------------------------------------------

    /// Starts a discv4 lookup for the nodes closest to `target`; the result arrives as
    /// [`NodeEvent::Discovery`] holding a `LookupFinished` with the returned id. `None`
    /// without discv4.
    pub fn lookup(&mut self, now: Instant, target: &NodePublicKey) -> Option<LookupId> {
        self.tick(now, self.unix_secs);
        self.publish_local_record();
        let unix = self.unix_secs;
        let id = self
            .discovery
            .as_mut()?
            .start_lookup(now, unix, *target.raw());
        Some(id)
    }

    /// Starts a discv4 lookup for any 64-byte `target` (a discv4 target need not be a valid
    /// key: simulations and crawlers pick them at random); reported like
    /// [`lookup`](Self::lookup).
    pub fn lookup_target(&mut self, now: Instant, target: &[u8; 64]) -> Option<LookupId> {
        self.tick(now, self.unix_secs);
        self.publish_local_record();
        let unix = self.unix_secs;
        let id = self.discovery.as_mut()?.start_lookup(now, unix, *target);
        Some(id)
    }

    /// Starts a discv4 lookup for a random target (what a crawler runs to walk the DHT);
    /// reported like [`lookup`](Self::lookup).
    pub fn lookup_random(&mut self, now: Instant) -> Option<LookupId> {
        self.tick(now, self.unix_secs);
        self.publish_local_record();
        let unix = self.unix_secs;
        let id = self.discovery.as_mut()?.start_random_lookup(now, unix);
        Some(id)
    }

    /// Starts a discv5 lookup for the nodes closest to the node id `target`; the result
    /// arrives as [`NodeEvent::Discv5`] holding a `LookupFinished` with the returned id
    /// (discv5's ids are its own: the same number may name a discv4 lookup). `None` without
    /// discv5.
    pub fn lookup_v5(&mut self, now: Instant, target: &NodeId) -> Option<LookupId> {
        self.tick(now, self.unix_secs);
        self.publish_local_record();
        let unix = self.unix_secs;
        Some(self.discv5.as_mut()?.start_lookup(now, unix, *target))
    }

    /// Starts a discv5 lookup for a random target; reported like
    /// [`lookup_v5`](Self::lookup_v5).
    pub fn lookup_random_v5(&mut self, now: Instant) -> Option<LookupId> {
        self.tick(now, self.unix_secs);
        self.publish_local_record();
        let unix = self.unix_secs;
        Some(self.discv5.as_mut()?.start_random_lookup(now, unix))
    }

    // ---- discv5 requests to one node -------------------------------------------------------

    /// Sends a discv5 PING to the node of `record` (at the UDP endpoint it advertises,
    /// handshaking first if need be). The PONG (the node's record seq, and our address as it
    /// saw the PING), or why none came, arrives as [`NodeEvent::Discv5`] holding a
    /// `PingResponse` with the returned id. A liveness check the application runs itself:
    /// the table is not touched.
    pub fn ping_v5(&mut self, now: Instant, record: &Enr) -> Result<RequestId, Discv5Error> {
        self.tick(now, self.unix_secs);
        let d = self.discv5.as_mut().ok_or(Discv5Error::NotRunning)?;
        let id = d.ping(now, record).map_err(Discv5Error::Send)?;
        self.after_discovery();
        Ok(id)
    }

    /// Sends a discv5 FINDNODE for the log `distances` (0 asks for the node's own record) to
    /// the node of `record`. Every NODES message of the answer put together (the verified
    /// records at the distances asked, each node once, and how many messages came of how
    /// many announced), or why none came, arrives as [`NodeEvent::Discv5`] holding a
    /// `FindNodeResponse` with the returned id. The records are not put into the table nor
    /// offered to the dialer: what to do with them is the caller's choice.
    pub fn find_node_v5(
        &mut self,
        now: Instant,
        record: &Enr,
        distances: &[u64],
    ) -> Result<RequestId, Discv5Error> {
        self.tick(now, self.unix_secs);
        let d = self.discv5.as_mut().ok_or(Discv5Error::NotRunning)?;
        let id = d
            .find_node(now, record, distances)
            .map_err(Discv5Error::Send)?;
        self.after_discovery();
        Ok(id)
    }

    // ---- discv5 TALKREQ --------------------------------------------------------------------

    /// Registers the TALKREQ protocol `name`: its requests reach the application as
    /// [`NodeEvent::Discv5`] holding a `TalkRequest`, to answer with
    /// [`answer_talk`](Self::answer_talk). Requests for protocols nobody registered get an
    /// empty TALKRESP, as the spec asks.
    pub fn register_talk_protocol(&mut self, name: &[u8]) -> Result<(), Discv5Error> {
        let d = self.discv5.as_mut().ok_or(Discv5Error::NotRunning)?;
        if d.register_talk_protocol(name) {
            Ok(())
        } else {
            Err(Discv5Error::TooManyProtocols)
        }
    }

    /// Unregisters `name`: its requests get an empty TALKRESP from now on.
    pub fn unregister_talk_protocol(&mut self, name: &[u8]) -> Result<(), Discv5Error> {
        let d = self.discv5.as_mut().ok_or(Discv5Error::NotRunning)?;
        d.unregister_talk_protocol(name);
        Ok(())
    }

    /// Sends a TALKREQ of `protocol` to the node of `record` (at the UDP endpoint it
    /// advertises, handshaking first if need be). Its answer, or why none came, arrives as
    /// [`NodeEvent::Discv5`] holding a `TalkResponse` with the returned id.
    pub fn talk_request(
        &mut self,
        now: Instant,
        record: &Enr,
        protocol: &[u8],
        request: &[u8],
    ) -> Result<RequestId, Discv5Error> {
        self.tick(now, self.unix_secs);
        self.publish_local_record();
        let d = self.discv5.as_mut().ok_or(Discv5Error::NotRunning)?;
        let id = d
            .talk_request(now, record, protocol, request)
            .map_err(Discv5Error::Send)?;
        self.after_discovery();
        Ok(id)
    }

    /// Answers the TALKREQ `id` (from a `TalkRequest` event) with `response`, within
    /// [`TALK_ANSWER_TIMEOUT`](crate::discv5::discovery::TALK_ANSWER_TIMEOUT) of its arrival.
    pub fn answer_talk(
        &mut self,
        now: Instant,
        id: TalkRequestId,
        response: &[u8],
    ) -> Result<(), Discv5Error> {
        self.tick(now, self.unix_secs);
        self.publish_local_record();
        let d = self.discv5.as_mut().ok_or(Discv5Error::NotRunning)?;
        d.answer_talk(now, id, response)
            .map_err(Discv5Error::Talk)?;
        self.after_discovery();
        Ok(())
    }

    /// Replaces our record, for every version that runs: it must be signed with our key
    /// and carry a higher seq than the current one, or it is refused saying which. discv4's
    /// ENRResponse and Pings, and discv5's handshakes, PINGs, PONGs and `FINDNODE [0]`
    /// answers carry it from now on. Its endpoint stays until the endpoint prediction differs
    /// from it (unless [`NodeConfig::advertised_ip`] pins it): a record the application
    /// keeps must start from [`local_enr`](Self::local_enr) after every
    /// [`NodeEvent::EndpointChanged`]. Without discovery there is no record to replace
    /// ([`LocalRecordError::NoDiscovery`]).
    pub fn set_local_record(&mut self, record: Enr) -> Result<(), LocalRecordError> {
        if record.node_id() != self.local_id() {
            return Err(LocalRecordError::NotOurs {
                signer: record.node_id(),
            });
        }
        let Some(local) = &mut self.local else {
            return Err(LocalRecordError::NoDiscovery);
        };
        let current = local.seq();
        if record.seq() <= current || !local.replace(record.clone()) {
            return Err(LocalRecordError::NotNewer {
                seq: record.seq(),
                current,
            });
        }
        self.hand_to_machines(record);
        Ok(())
    }

    // ---- internals -------------------------------------------------------------------------

    /// Gives both machines our record if it changed since they last had it, signing it now
    /// if nobody has asked for it yet. Called before every input that may reach discovery,
    /// whose answers carry the record or its seq: this is the lazy re-signing of geth's
    /// `LocalNode` (one seq step however many changes came in between).
    pub(super) fn publish_local_record(&mut self) {
        if let Some(record) = self.local.as_mut().and_then(|l| l.take_update(&self.key)) {
            self.hand_to_machines(record);
        }
    }

    fn hand_to_machines(&mut self, record: Enr) {
        if let Some(d) = &mut self.discovery {
            d.set_local_record(record.clone());
        }
        if let Some(d) = &mut self.discv5 {
            d.set_local_record(record);
        }
    }

    /// Hands what both machines observed about our endpoint to the local record; reports a
    /// change of the endpoint it advertises.
    fn take_observations(&mut self) {
        let Some(local) = &mut self.local else { return };
        let now = self.now;
        let v4 = std::iter::from_fn(|| self.discovery.as_mut()?.poll_observation());
        let v5 = std::iter::from_fn(|| self.discv5.as_mut()?.poll_observation());
        for o in v4.chain(v5) {
            if let Some(c) = local.observe(now, o) {
                self.events.push_back(NodeEvent::EndpointChanged {
                    old: c.old,
                    new: c.new,
                    seq: c.seq,
                });
            }
        }
    }

    /// When a feeder lookup may start, if the dialer wants candidates.
    pub(super) fn feed_due(&self) -> Option<Instant> {
        let runs = self.discovery.is_some() || self.discv5.is_some();
        if !runs || self.feeder.is_some() || self.dialer.free_slots() == 0 {
            return None;
        }
        Some(self.last_feed.map_or(self.now, |t| t + LOOKUP_MIN_INTERVAL))
    }

    /// Starts dials and resolves while the dialer has them; when it runs out of candidates,
    /// asks the DNS walk for a record and starts a feeder lookup (the discovery versions take
    /// turns, as geth mixes their iterators with its DNS iterator).
    pub(super) fn run_dialer(&mut self) {
        self.dial_candidates();
        // The walk's cache can answer at once; those records are dialled now too.
        if self.feed_from_dns() {
            self.dial_candidates();
        }
        self.feed_from_discovery();
    }

    /// Starts dials and resolves while the dialer has them.
    fn dial_candidates(&mut self) {
        let now = self.now;
        while let Some(action) = self.dialer.poll_action(now, &mut self.rng) {
            match action {
                DialAction::Dial { target, kind } => {
                    let addr = target.addr.expect("the dialer only dials known addresses");
                    let conn = self.new_conn(
                        Direction::Outbound,
                        addr,
                        ConnState::Connecting {
                            deadline: now + DIAL_TIMEOUT,
                        },
                        Some((target.public_key, kind)),
                    );
                    self.stats.dials_started += 1;
                    self.actions.push_back(Action::Dial { conn, addr });
                }
                DialAction::Resolve(id) => {
                    self.publish_local_record();
                    let key = self.dialer.static_key(&id);
                    let unix = self.unix_secs;
                    if let (Some(d), Some(key)) = (&mut self.discovery, key) {
                        let lookup = d.start_lookup(now, unix, *key.raw());
                        self.resolving.insert((DiscoveryVersion::V4, lookup), id);
                    } else if let Some(d) = &mut self.discv5 {
                        let lookup = d.start_lookup(now, unix, id);
                        self.resolving.insert((DiscoveryVersion::V5, lookup), id);
                    }
                }
            }
        }
    }

    /// Starts a feeder lookup when the dialer has run out of candidates.
    fn feed_from_discovery(&mut self) {
        let now = self.now;
        if self.feed_due().is_some_and(|t| t <= now) {
            self.publish_local_record();
            let unix = self.unix_secs;
            let v5_turn = self.next_feeder == DiscoveryVersion::V5 || self.discovery.is_none();
            let started = match (&mut self.discovery, &mut self.discv5) {
                (_, Some(d)) if v5_turn => {
                    Some((DiscoveryVersion::V5, d.start_random_lookup(now, unix)))
                }
                (Some(d), _) => Some((DiscoveryVersion::V4, d.start_random_lookup(now, unix))),
                _ => None,
            };
            if let Some((version, _)) = started {
                self.next_feeder = match version {
                    DiscoveryVersion::V4 if self.discv5.is_some() => DiscoveryVersion::V5,
                    _ => DiscoveryVersion::V4,
                };
                self.feeder = started;
                self.last_feed = Some(now);
            }
        }
    }

    /// Moves both versions' events to the dialer and the application, and what they
    /// observed about our endpoint to our record.
    pub(super) fn after_discovery(&mut self) {
        self.take_observations();
        let mut v4 = Vec::new();
        if let Some(d) = &mut self.discovery {
            while let Some(e) = d.poll_event() {
                v4.push(e);
            }
        }
        let mut v5 = Vec::new();
        if let Some(d) = &mut self.discv5 {
            while let Some(e) = d.poll_event() {
                v5.push(e);
            }
        }
        for e in v4 {
            match &e {
                Discv4Event::NodeAdded(n) | Discv4Event::NodeSeen(n) => self.offer_candidate(n),
                Discv4Event::LookupFinished { id, nodes, .. } => {
                    self.lookup_finished(DiscoveryVersion::V4, *id, nodes)
                }
                _ => {}
            }
            self.events.push_back(NodeEvent::Discovery(Box::new(e)));
        }
        for e in v5 {
            match &e {
                Discv5Event::NodeAdded(n) | Discv5Event::NodeSeen(n) => self.offer_candidate(n),
                Discv5Event::LookupFinished { id, nodes, .. } => {
                    self.lookup_finished(DiscoveryVersion::V5, *id, nodes)
                }
                _ => {}
            }
            self.events.push_back(NodeEvent::Discv5(Box::new(e)));
        }
    }

    /// A lookup of `version` ended: a feeder's nodes go to the dialer, a static node's
    /// address is updated (or its absence reported).
    fn lookup_finished(&mut self, version: DiscoveryVersion, id: LookupId, nodes: &[DiscNode]) {
        if self.feeder == Some((version, id)) {
            self.feeder = None;
        }
        if let Some(static_id) = self.resolving.remove(&(version, id)) {
            match nodes.iter().find(|n| n.id() == static_id) {
                Some(n) if n.tcp_port() != 0 => self
                    .dialer
                    .update_static(&static_id, SocketAddr::new(n.ip(), n.tcp_port())),
                // A static node with an address is dialled there again; one without is
                // reported, and looked up again later.
                _ if self.dialer.static_addr(&static_id).is_some() => {}
                _ => {
                    let key = self.dialer.static_key(&static_id);
                    self.dialer.resolve_failed(&static_id, self.now);
                    self.fail(ConnectionFailure {
                        conn: None,
                        direction: Direction::Outbound,
                        addr: None,
                        remote: key,
                        dial: Some(DialKind::Static),
                        trusted: self.is_trusted(&static_id),
                        error: ConnectError::Unresolved,
                    });
                }
            }
        }
        for n in nodes {
            self.offer_candidate(n);
        }
    }

    /// A node either version found becomes a dial candidate at the TCP endpoint its
    /// discovery data gives (discv5: its record, which passed the address checks of NODES
    /// answers; the dialer applies NetRestrict).
    fn offer_candidate(&mut self, n: &DiscNode) {
        if n.tcp_port() == 0 {
            return;
        }
        self.dialer.add_candidate(DialTarget {
            public_key: *n.public_key(),
            addr: Some(SocketAddr::new(n.ip(), n.tcp_port())),
        });
    }
}
