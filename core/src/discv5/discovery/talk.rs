//! TALKREQ for applications ([DISCV5.md §3.5](crate::spec::discv5)): the registered protocol
//! names and the inbound requests waiting for the application's answer, with their limits.

use std::collections::{BTreeMap, BTreeSet};

use super::config::{Config, MAX_TALK_PROTOCOLS, MAX_TALK_RATE_PEERS, TALK_ANSWER_TIMEOUT};
use super::events::{Refusal, TalkRequestId};
use crate::discv5::message::RequestId;
use crate::discv5::sessions::session::RateLimiter;
use crate::discv5::sessions::NodeAddress;
use crate::identity::NodeId;
use crate::time::Instant;

/// One inbound TALKREQ handed to the application.
#[derive(Debug, Clone)]
pub(super) struct PendingTalk {
    pub from: NodeAddress,
    pub request_id: RequestId,
    pub expires: Instant,
    /// Bytes it holds (name and payload), counted against the byte limit.
    pub size: usize,
}

/// The registry and the pending requests.
pub(super) struct Talk {
    protocols: BTreeSet<Vec<u8>>,
    /// Ids grow with time, so the first entry is the oldest and the first to expire.
    pending: BTreeMap<TalkRequestId, PendingTalk>,
    pending_bytes: usize,
    next_id: u64,
    limiter: RateLimiter<NodeId>,
    max_pending: usize,
    max_bytes: usize,
}

impl Talk {
    pub fn new(config: &Config) -> Self {
        Talk {
            protocols: BTreeSet::new(),
            pending: BTreeMap::new(),
            pending_bytes: 0,
            next_id: 0,
            limiter: RateLimiter::new(
                config.talk_requests_per_peer_per_second,
                MAX_TALK_RATE_PEERS,
            ),
            max_pending: config.max_pending_talk_requests,
            max_bytes: config.max_pending_talk_bytes,
        }
    }

    /// Registers `name`; false if [`MAX_TALK_PROTOCOLS`] are registered already.
    pub fn register(&mut self, name: &[u8]) -> bool {
        if self.protocols.contains(name) {
            return true;
        }
        if self.protocols.len() >= MAX_TALK_PROTOCOLS {
            return false;
        }
        self.protocols.insert(name.to_vec());
        true
    }

    pub fn unregister(&mut self, name: &[u8]) {
        self.protocols.remove(name);
    }

    pub fn is_registered(&self, name: &[u8]) -> bool {
        self.protocols.contains(name)
    }

    pub fn protocols(&self) -> impl Iterator<Item = &[u8]> {
        self.protocols.iter().map(Vec::as_slice)
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Admits a TALKREQ of a registered protocol for the application, or says why not.
    pub fn admit(
        &mut self,
        now: Instant,
        from: NodeAddress,
        request_id: RequestId,
        size: usize,
    ) -> Result<Option<TalkRequestId>, Refusal> {
        // The asker's session layer resends a request it got no answer to: the application
        // has it already, and its answer will do for both.
        if self
            .pending
            .values()
            .any(|p| p.from == from && p.request_id == request_id)
        {
            return Ok(None);
        }
        if self.pending.len() >= self.max_pending
            || self.pending_bytes.saturating_add(size) > self.max_bytes
        {
            return Err(Refusal::TalkQueueFull);
        }
        if !self.limiter.allow(from.id, now) {
            return Err(Refusal::TalkRateLimited);
        }
        let id = TalkRequestId(self.next_id);
        self.next_id += 1;
        self.pending_bytes += size;
        self.pending.insert(
            id,
            PendingTalk {
                from,
                request_id,
                expires: now + TALK_ANSWER_TIMEOUT,
                size,
            },
        );
        Ok(Some(id))
    }

    /// Takes the pending request `id` out, to answer it.
    pub fn take(&mut self, id: TalkRequestId) -> Option<PendingTalk> {
        let p = self.pending.remove(&id)?;
        self.pending_bytes -= p.size;
        Some(p)
    }

    /// Forgets the requests whose time is up; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some(entry) = self.pending.first_entry() {
            if entry.get().expires > now {
                break;
            }
            self.pending_bytes -= entry.remove().size;
            n += 1;
        }
        n
    }

    /// When the oldest pending request expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.pending.first_key_value().map(|(_, p)| p.expires)
    }

    /// Whether the byte count matches the requests; `Err` names the drift.
    pub fn check(&self) -> Result<(), String> {
        let bytes: usize = self.pending.values().map(|p| p.size).sum();
        if bytes != self.pending_bytes {
            return Err(format!(
                "talk bytes drifted: {bytes} held, {} counted",
                self.pending_bytes
            ));
        }
        if self.pending.len() > self.max_pending || self.pending_bytes > self.max_bytes {
            return Err("talk requests over their limits".into());
        }
        Ok(())
    }
}
