//! [`LocalRecord`]: our signed record, kept in step with the endpoint others see us at, with
//! geth's `enode.LocalNode` sequence-number policy ([DNSDISC_NAT.md §B.7–B.8](crate::spec::dnsdisc_nat)).

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use super::{IpTracker, Observation};
use crate::discv4::netutil::{canonical_ip, check_relay_ip};
use crate::enr::Enr;
use crate::identity::NodeSecretKey;
use crate::time::Instant;

/// The record's UDP endpoint moved (see [`LocalRecord::observe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointChange {
    /// What the record advertised before (`None`: no IP and UDP port).
    pub old: Option<SocketAddr>,
    /// What it advertises now.
    pub new: SocketAddr,
    /// The seq of the record carrying `new` (signed when first asked for).
    pub seq: u64,
}

/// Our record and the endpoint prediction behind it, as one pure machine.
///
/// - **Inputs**: [`observe`](Self::observe) for every [`Observation`] discovery reports,
///   [`replace`](Self::replace) for a record the application signed itself.
/// - **The record**: [`record`](Self::record) signs a pending change on first use and hands
///   out the same record until the next change; [`take_update`](Self::take_update) does the
///   same and tells whether there was one, for whoever must pass it on (the discovery
///   machines).
///
/// **Where the endpoint comes from.** A record built from an explicitly advertised address is
/// *pinned*: its IP and UDP port never change, as geth's `--nat extip:<IP>` disables the
/// prediction (§B.1). Otherwise, once [`MIN_STATEMENTS`](super::MIN_STATEMENTS) hosts agree
/// on an endpoint of the record's address family within
/// [`STATEMENT_WINDOW`](super::STATEMENT_WINDOW) and it differs from the advertised one, the
/// record takes its IP and UDP port (the TCP port stays: nothing reports it).
///
/// **Sequence numbers** (geth's, §B.7): a change only marks the record dirty; it is re-signed
/// lazily, when next asked for, with seq one higher, however many changes came in between.
/// The first seq is the owner's (geth: the stored one or the Unix time in milliseconds), so a
/// restart never signs one a peer already holds.
///
/// Departures from geth, each because peers are hostile or quiet:
/// - a statement counts only if the reporter could have reached the endpoint it names (geth's
///   relay rule, [`check_relay_ip`]: no unspecified, special or multicast IPs, no loopback
///   endpoint from a host off loopback, no LAN endpoint from a host off the LAN) and names a
///   port; geth counts any;
/// - a prediction that lapses (too few statements in the window) leaves the record as it is;
///   geth falls back to the listen address, which behind NAT nobody can reach, and which it
///   then re-signs with a new seq, only to move back at the next prediction;
/// - statements of the other address family are tracked apart and not applied: the record
///   carries one endpoint, of the family it started with.
#[derive(Debug)]
pub struct LocalRecord {
    /// The last record signed.
    record: Enr,
    /// `record.udp_endpoint()`, read once per record rather than per observation (each read
    /// scans the record's entries).
    record_udp: Option<SocketAddr>,
    /// The endpoint the record should carry, when it differs from `record`'s.
    pending: Option<SocketAddr>,
    /// `pending` signed, once someone asked for the record through `&self`.
    presigned: OnceLock<Enr>,
    pinned: bool,
    v4: IpTracker,
    v6: IpTracker,
}

impl LocalRecord {
    /// Starts from `record` (signed with our key); `pinned` keeps its endpoint whatever peers
    /// say.
    pub fn new(record: Enr, pinned: bool) -> Self {
        LocalRecord {
            record_udp: record.udp_endpoint(),
            record,
            pending: None,
            presigned: OnceLock::new(),
            pinned,
            v4: IpTracker::default(),
            v6: IpTracker::default(),
        }
    }

    /// Keys the trackers' host tables with `seed`, a secret (see [`IpTracker::with_hash_seed`]).
    pub fn with_hash_seed(mut self, seed: u64) -> Self {
        self.v4 = std::mem::take(&mut self.v4).with_hash_seed(seed);
        self.v6 = std::mem::take(&mut self.v6).with_hash_seed(seed);
        self
    }

    /// Pins the endpoint from now on (a gateway told the node its external address, which
    /// then outranks what peers say): predictions no longer move it.
    pub fn pin(&mut self) {
        self.pinned = true;
    }

    /// Whether the endpoint is pinned.
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// The UDP endpoint the record advertises (a pending change included).
    pub fn endpoint(&self) -> Option<SocketAddr> {
        self.pending.or(self.record_udp)
    }

    /// The record's seq (a pending change included: the seq it will be signed with).
    pub fn seq(&self) -> u64 {
        match self.pending {
            Some(_) => self.record.seq().saturating_add(1),
            None => self.record.seq(),
        }
    }

    /// The current record, signed with `key` (the key the record was first signed with) if a
    /// change is pending. Until the next change, every call returns the same record.
    pub fn record(&self, key: &NodeSecretKey) -> &Enr {
        match self.pending {
            None => &self.record,
            Some(e) => self.presigned.get_or_init(|| self.signed(key, e)),
        }
    }

    /// The record if it changed since the last call (signed with `key` now if need be), to
    /// pass on to whoever hands it out.
    pub fn take_update(&mut self, key: &NodeSecretKey) -> Option<Enr> {
        let e = self.pending.take()?;
        let record = match self.presigned.take() {
            Some(r) => r,
            None => self.signed(key, e),
        };
        self.record_udp = record.udp_endpoint();
        self.record = record.clone();
        Some(record)
    }

    /// Replaces the record with one the application signed (ours, with a higher seq than
    /// [`seq`](Self::seq)); says whether it was taken. It drops a pending change: its endpoint
    /// is what the record advertises until the prediction differs from it.
    pub fn replace(&mut self, record: Enr) -> bool {
        if record.public_key() != self.record.public_key() || record.seq() <= self.seq() {
            return false;
        }
        self.record_udp = record.udp_endpoint();
        self.record = record;
        self.pending = None;
        self.presigned = OnceLock::new();
        true
    }

    /// The endpoint the statements of the record's family predict now, pinned or not.
    pub fn prediction(&mut self, now: Instant) -> Option<SocketAddr> {
        let v6 = self.endpoint().is_some_and(|e| e.is_ipv6());
        self.tracker(v6).predict_endpoint(now)
    }

    /// Takes one observation; returns the change when it moved the record's endpoint.
    pub fn observe(&mut self, now: Instant, o: Observation) -> Option<EndpointChange> {
        match o {
            Observation::Contact { host } => {
                let host = canonical_ip(host);
                self.tracker(host.is_ipv6()).add_contact(now, host);
                None
            }
            Observation::Statement { reporter, endpoint } => {
                let reporter = canonical_ip(reporter);
                let endpoint = SocketAddr::new(canonical_ip(endpoint.ip()), endpoint.port());
                if endpoint.port() == 0 || check_relay_ip(&reporter, &endpoint.ip()).is_err() {
                    return None;
                }
                self.tracker(endpoint.is_ipv6())
                    .add_statement(now, reporter, endpoint);
                self.apply_prediction(now)
            }
        }
    }

    fn apply_prediction(&mut self, now: Instant) -> Option<EndpointChange> {
        if self.pinned {
            return None;
        }
        let old = self.endpoint();
        let new = self.prediction(now)?;
        // Of the record's family (`prediction` asks that tracker only).
        if old == Some(new) {
            return None;
        }
        // Back to what the signed record says before anyone asked: nothing to re-sign.
        self.pending = (self.record_udp != Some(new)).then_some(new);
        self.presigned = OnceLock::new();
        Some(EndpointChange {
            old,
            new,
            seq: self.seq(),
        })
    }

    fn tracker(&mut self, v6: bool) -> &mut IpTracker {
        if v6 {
            &mut self.v6
        } else {
            &mut self.v4
        }
    }

    /// `record` with `endpoint` and seq + 1. Adding an endpoint key can push a record the
    /// application filled to the brim over 300 bytes; it then stays as it was (the change is
    /// lost rather than the record).
    fn signed(&self, key: &NodeSecretKey, endpoint: SocketAddr) -> Enr {
        let b = self.record.to_builder();
        let b = match endpoint.ip() {
            IpAddr::V4(ip) => b.ip4(ip).udp4(endpoint.port()),
            IpAddr::V6(ip) => b.ip6(ip).udp6(endpoint.port()),
        };
        b.sign(key).unwrap_or_else(|_| self.record.clone())
    }
}
