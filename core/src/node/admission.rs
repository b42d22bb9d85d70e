//! Admission ([PROTOCOL.md §9.3–9.5](crate::spec::protocol)): the inbound throttle, the checks
//! after the RLPx handshake and after Hello, duplicate resolution, and bookkeeping when sessions
//! end.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use rand_core::CryptoRng;

use super::config::INBOUND_THROTTLE_TIME;
use super::types::{
    ConnectError, ConnectionFailure, DialOutcome, Direction, HandshakeOutcome, NodeEvent, PeerInfo,
};
use super::{ConnId, ConnState, Node};
use crate::discv4::netutil::is_lan;
use crate::identity::{NodeId, NodePublicKey};
use crate::session::{Closed, DisconnectReason, Established, SessionError, Side};
use crate::time::Instant;

/// Remembers recent inbound source IPs for [`INBOUND_THROTTLE_TIME`]; LAN addresses are exempt
/// (geth `inboundThrottleTime`, [PROTOCOL.md §9.3](crate::spec::protocol)).
#[derive(Debug, Default)]
pub(super) struct Throttle {
    until: BTreeMap<IpAddr, Instant>,
    /// The same entries in the order they expire (`now` never goes backwards).
    order: VecDeque<(Instant, IpAddr)>,
}

impl Throttle {
    /// Records an attempt from `ip`; `false` if it is throttled.
    pub(super) fn admit(&mut self, now: Instant, ip: IpAddr) -> bool {
        self.expire(now);
        if is_lan(&ip) {
            return true;
        }
        if self.until.contains_key(&ip) {
            return false;
        }
        let until = now + INBOUND_THROTTLE_TIME;
        self.until.insert(ip, until);
        self.order.push_back((until, ip));
        true
    }

    pub(super) fn expire(&mut self, now: Instant) {
        while let Some(&(t, ip)) = self.order.front() {
            if t > now {
                break;
            }
            self.order.pop_front();
            if self.until.get(&ip) == Some(&t) {
                self.until.remove(&ip);
            }
        }
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.order.front().map(|(t, _)| *t)
    }
}

impl<R: CryptoRng> Node<R> {
    /// The checks geth runs after the RLPx handshake and again after Hello, in its order:
    /// peer limit, inbound limit (both waived for trusted peers), already connected, self.
    /// `Ok(Some(other))` means this connection wins a duplicate race against `other`.
    fn check_admission(
        &self,
        conn: ConnId,
        id: NodeId,
    ) -> Result<Option<ConnId>, DisconnectReason> {
        let c = &self.conns[&conn];
        let trusted = self.is_trusted(&id);
        let established_elsewhere = self.peers.get(&id).is_some_and(|p| *p != conn);
        if !trusted && !established_elsewhere && c.peer.is_none() {
            if self.peers.len() >= self.config.max_peers {
                return Err(DisconnectReason::TooManyPeers);
            }
            let max_inbound = self.config.max_peers.saturating_sub(self.dialer_max());
            let inbound = self
                .peers
                .values()
                .filter(|p| {
                    self.conns
                        .get(p)
                        .is_some_and(|c| c.direction == Direction::Inbound)
                })
                .count();
            if c.direction == Direction::Inbound && inbound >= max_inbound {
                return Err(DisconnectReason::TooManyPeers);
            }
        }
        let rival = self
            .conns
            .iter()
            .find(|(other, oc)| **other != conn && oc.admitted && oc.remote == Some(id))
            .map(|(other, _)| *other);
        if let Some(other) = rival {
            return if self.preferred(conn, other, id) {
                Ok(Some(other))
            } else {
                Err(DisconnectReason::AlreadyConnected)
            };
        }
        if id == self.local_id() {
            return Err(DisconnectReason::ConnectedToSelf);
        }
        Ok(None)
    }

    pub(super) fn dialer_max(&self) -> usize {
        crate::dial::max_dialed_peers(
            self.config.max_peers,
            self.config.dial_ratio,
            self.config.no_dial,
        )
    }

    /// Resolves a race between two connections to the same node so that both ends keep the
    /// same one: the connection dialled by the node with the lower id wins. Connections
    /// opened the same way keep the older one.
    fn preferred(&self, new: ConnId, old: ConnId, remote: NodeId) -> bool {
        let (dn, dold) = (self.conns[&new].direction, self.conns[&old].direction);
        if dn == dold {
            return false;
        }
        let we_dial_preferred = self.local_id() < remote;
        (dn == Direction::Outbound) == we_dial_preferred
    }

    pub(super) fn on_authenticated(&mut self, conn: ConnId, remote: NodePublicKey) {
        let id = remote.id();
        let now = self.now;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.remote = Some(id);
            c.remote_key = Some(remote);
        }
        match self.check_admission(conn, id) {
            Ok(rival) => {
                if let Some(other) = rival {
                    self.evict(other);
                }
                let c = self.conns.get_mut(&conn).expect("pumped connection exists");
                c.admitted = true;
                let inbound = c.direction == Direction::Inbound;
                if let ConnState::Open(s) = &mut c.state {
                    s.admit(now);
                }
                if inbound {
                    self.dialer.set_inbound_pending(id, true);
                }
            }
            Err(reason) => {
                if reason == DisconnectReason::AlreadyConnected {
                    self.dialer.duplicate_closed(&id, now);
                }
                // Counted and reported when the session closes (`on_closed`).
                let c = self.conns.get_mut(&conn).expect("pumped connection exists");
                if let ConnState::Open(s) = &mut c.state {
                    s.disconnect(now, reason);
                }
            }
        }
    }

    pub(super) fn on_established(&mut self, conn: ConnId, est: Established) {
        let id = est.remote.id();
        let now = self.now;
        let rival = match self.check_admission(conn, id) {
            Ok(r) => r,
            Err(reason) => {
                if reason == DisconnectReason::AlreadyConnected {
                    self.dialer.duplicate_closed(&id, now);
                }
                if let Some(ConnState::Open(s)) = self.conns.get_mut(&conn).map(|c| &mut c.state) {
                    s.disconnect(now, reason);
                }
                return;
            }
        };
        if let Some(other) = rival {
            self.evict(other);
        }
        let trusted = self.is_trusted(&id);
        let is_static = self.dialer.is_static(&id);
        let c = self.conns.get_mut(&conn).expect("pumped connection exists");
        let info = PeerInfo {
            id,
            public_key: est.remote,
            conn,
            addr: c.addr,
            direction: c.direction,
            capabilities: est.capabilities,
            client_id: est.hello.client_id,
            trusted,
            is_static,
            bytes_in: 0,
            bytes_out: 0,
            queued: 0,
            connected_since: now,
        };
        c.peer = Some(info.clone());
        let dialed = c.direction == Direction::Outbound;
        if dialed {
            *self
                .stats
                .dials
                .entry(DialOutcome::Established)
                .or_default() += 1;
        } else {
            self.dialer.set_inbound_pending(id, false);
        }
        *self
            .stats
            .handshakes
            .entry(HandshakeOutcome::Established)
            .or_default() += 1;
        self.peers.insert(id, conn);
        self.dialer.peer_added(id, dialed);
        self.events.push_back(NodeEvent::PeerAdded(Box::new(info)));
    }

    /// Disconnects the losing side of a duplicate race.
    fn evict(&mut self, other: ConnId) {
        let now = self.now;
        if let Some(id) = self.conns.get(&other).and_then(|c| c.remote) {
            self.dialer.duplicate_closed(&id, now);
        }
        if let Some(ConnState::Open(s)) = self.conns.get_mut(&other).map(|c| &mut c.state) {
            s.disconnect(now, DisconnectReason::AlreadyConnected);
        }
        if let Some(c) = self.conns.get_mut(&other) {
            c.admitted = false;
        }
        self.pump(other);
    }

    pub(super) fn on_closed(&mut self, conn: ConnId, closed: Closed) {
        *self
            .stats
            .disconnects
            .entry((closed.initiator, closed.reason))
            .or_default() += 1;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.admitted = false;
        let remote = c.remote;
        let direction = c.direction;
        let dial = c.dial;
        if closed.initiator == Side::Remote
            && closed.reason == Some(DisconnectReason::AlreadyConnected)
        {
            if let Some(id) = remote.or(dial.map(|(k, _)| k.id())) {
                let now = self.now;
                self.dialer.refused_as_duplicate(&id, now);
            }
        }
        let c = self.conns.get_mut(&conn).expect("looked up above");
        match c.peer.take() {
            Some(p) => {
                if self.peers.get(&p.id) == Some(&conn) {
                    self.peers.remove(&p.id);
                    self.dialer.peer_removed(&p.id);
                }
                self.events.push_back(NodeEvent::PeerRemoved {
                    id: p.id,
                    initiator: closed.initiator,
                    reason: closed.reason,
                    error: closed.error,
                });
            }
            None => {
                // Never became a peer: free the dial or the inbound slot, count why, and tell.
                let error = connect_error(remote.is_some(), closed);
                let addr = c.addr;
                let remote_key = c.remote_key.or(dial.map(|(k, _)| k));
                if let Some((key, _)) = dial {
                    *self
                        .stats
                        .dials
                        .entry(DialOutcome::HandshakeFailed)
                        .or_default() += 1;
                    self.dialer.dial_failed(&key.id());
                }
                if let (Direction::Inbound, Some(id)) = (direction, remote) {
                    self.dialer.set_inbound_pending(id, false);
                }
                let trusted = remote_key.is_some_and(|k| self.is_trusted(&k.id()));
                self.fail(ConnectionFailure {
                    conn: Some(conn),
                    direction,
                    addr: Some(addr),
                    remote: remote_key,
                    dial: dial.map(|(_, kind)| kind),
                    trusted,
                    error,
                });
            }
        }
    }
}

/// Why a connection that never became a peer ended; `proved` when the RLPx handshake had
/// proved the remote's key.
fn connect_error(proved: bool, closed: Closed) -> ConnectError {
    match (closed.initiator, closed.reason, closed.error) {
        (Side::Local, Some(DisconnectReason::ClientQuitting), None) => ConnectError::ShuttingDown,
        (
            Side::Local,
            Some(reason),
            error @ (None | Some(SessionError::NoSharedCapability { .. })),
        ) => ConnectError::Refused { reason, error },
        (Side::Remote, reason, None | Some(SessionError::InvalidDisconnect)) => {
            ConnectError::RemoteDisconnected(reason)
        }
        (_, _, Some(SessionError::Handshake(e))) => ConnectError::Rlpx(e),
        (_, _, Some(SessionError::Timeout(k))) => ConnectError::Timeout(k),
        (_, _, Some(SessionError::ConnectionClosed)) if !proved => {
            ConnectError::ClosedDuringHandshake
        }
        (_, _, Some(SessionError::ConnectionClosed)) => ConnectError::ConnectionLost,
        (_, _, Some(e)) => ConnectError::Protocol(e),
        (Side::Local, None, None) => ConnectError::ConnectionLost,
    }
}
