//! One session's keys, and the WHOAREYOU rate limit per IP address.

use std::net::IpAddr;

use rand_core::CryptoRng;

use super::lru::Lru;
use crate::discv5::crypto::{MessageKey, Nonce, SessionKeys, NONCE_SIZE};
use crate::discv5::message::Message;
use crate::discv5::packet::{OpenError, Packet};
use crate::identity::SignatureScheme;
use crate::time::Instant;

/// One set of keys and the counter that makes our nonces under them unique.
#[derive(Debug, Clone)]
struct Keys {
    keys: SessionKeys,
    /// Whether the peer has shown it holds them: it sent a packet under them, or they came
    /// from its own handshake.
    confirmed: bool,
    /// Packets we sealed with them.
    sent: u32,
    /// They are our own handshake's, sent while a WHOAREYOU of ours to the same node was
    /// pending (both ends handshaking at once, our challenge out first).
    after_our_challenge: bool,
}

/// The keys shared with one node at one address ([DISCV5.md §6](crate::spec::discv5)).
///
/// A session holds the keys of its latest handshake and, for reading only, the ones before.
/// When both ends handshake at once, each ends up writing with keys from a different
/// handshake; a packet that opens only under the older keys shows which ones the peer
/// writes with, and we switch to them, so both ends converge on one set without another
/// round trip (sigp keeps old and new keys side by side for the same reason, sigp/discv5#122;
/// geth keeps one set and lets the next decryption failure start another handshake).
#[derive(Debug, Clone)]
pub(super) struct Session {
    current: Keys,
    previous: Option<Keys>,
}

impl Session {
    /// A session from a handshake; `confirmed` when it was the peer's handshake.
    pub fn new(keys: SessionKeys, confirmed: bool) -> Self {
        Session {
            current: Keys {
                keys,
                confirmed,
                sent: 0,
                after_our_challenge: false,
            },
            previous: None,
        }
    }

    /// Marks the current keys as our own handshake's, sent while a WHOAREYOU of ours to the
    /// same node was pending (see [`Session::accept`]).
    pub fn sent_after_our_challenge(&mut self) {
        self.current.after_our_challenge = true;
    }

    /// The keys of the peer's handshake, which answered our WHOAREYOU. They take over, as
    /// in [`Session::rekey`], unless both ends are handshaking at once and our own
    /// handshake went out after our WHOAREYOU and is not yet answered: then the peer got
    /// our WHOAREYOU first, answered it with these keys, and will take our handshake's keys
    /// when it arrives, after. geth and ChainSafe keep only the keys of the last handshake
    /// they handled, so we keep writing with ours, and keep these for reading; what we
    /// write in answer to the handshake's own request then reaches them (a PONG under these
    /// keys was lost, and geth's PING with it, seen in the interop tests).
    pub fn accept(&mut self, keys: SessionKeys) {
        if self.current.after_our_challenge && !self.current.confirmed {
            self.previous = Some(Keys {
                keys,
                confirmed: true,
                sent: 0,
                after_our_challenge: false,
            });
        } else {
            self.rekey(keys, true);
        }
    }

    /// A newer handshake's keys take over; the ones they replace stay readable, and the
    /// ones before those go. The replaced keys stay even if never confirmed: when both ends
    /// handshake at once, the peer may well be writing with them.
    pub fn rekey(&mut self, keys: SessionKeys, confirmed: bool) {
        let new = Keys {
            keys,
            confirmed,
            sent: 0,
            after_our_challenge: false,
        };
        self.previous = Some(std::mem::replace(&mut self.current, new));
    }

    /// The key we seal with.
    pub fn write_key(&self) -> &MessageKey {
        &self.current.keys.write
    }

    /// The nonce for our next packet: a 32-bit count of packets under these keys, then 8
    /// random bytes (geth `generateNonce`, sigp alike; [DISCV5.md §5](crate::spec::discv5)).
    /// `None` once 2³² packets were sealed with these keys: the session must then go, and
    /// a new handshake replace it (geth's open TODO "rehandshake after X packets").
    pub fn next_nonce<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Option<Nonce> {
        self.current.sent = self.current.sent.checked_add(1)?;
        let mut nonce = [0u8; NONCE_SIZE];
        nonce[..4].copy_from_slice(&self.current.sent.to_be_bytes());
        rng.fill_bytes(&mut nonce[4..]);
        Some(nonce)
    }

    /// Opens an ordinary packet: under the current keys, else the previous ones (which then
    /// become current). Also says whether this confirmed keys for the first time, which for
    /// keys from our own handshake means the session is now established.
    /// `scheme` is how a NODES message's records are checked ([`Message::decode_with`]).
    pub fn open(
        &mut self,
        packet: &Packet<'_>,
        scheme: SignatureScheme,
    ) -> Result<(Message, bool), OpenError> {
        match packet.open_with(&self.current.keys.read, scheme) {
            Ok(m) => Ok((m, confirm(&mut self.current))),
            Err(OpenError::Decrypt) => {
                let Some(previous) = self.previous.as_mut() else {
                    return Err(OpenError::Decrypt);
                };
                let m = packet.open_with(&previous.keys.read, scheme)?;
                std::mem::swap(&mut self.current, previous);
                Ok((m, confirm(&mut self.current)))
            }
            Err(e) => Err(e),
        }
    }
}

/// Marks `keys` confirmed; whether they were not before.
fn confirm(keys: &mut Keys) -> bool {
    !std::mem::replace(&mut keys.confirmed, true)
}

/// A token bucket per IP address for the WHOAREYOUs we send: a burst of `per_second`, refilled
/// at `per_second` a second ([`super::WHOAREYOU_PER_IP_PER_SECOND`]). Tokens are counted in
/// thousandths so that refilling by the millisecond stays exact.
#[derive(Debug, Clone)]
pub(in crate::discv5) struct RateLimiter<K> {
    per_second: u32,
    buckets: Lru<K, Bucket>,
}

/// The WHOAREYOU budget of each IP address.
pub(super) type WhoareyouLimiter = RateLimiter<IpAddr>;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli_tokens: u64,
    at: Instant,
}

impl<K: Ord + Clone> RateLimiter<K> {
    pub fn new(per_second: u32, max_ips: usize) -> Self {
        RateLimiter {
            per_second,
            buckets: Lru::new(max_ips),
        }
    }

    pub fn tracked_ips(&self) -> usize {
        self.buckets.len()
    }

    /// Takes one token (a WHOAREYOU, say) from `ip`'s budget if there is one left.
    pub fn allow(&mut self, ip: K, now: Instant) -> bool {
        let rate = u64::from(self.per_second);
        if rate == 0 {
            return false;
        }
        let full = rate * 1000;
        let Some(b) = self.buckets.get_mut(&ip) else {
            self.buckets.insert(
                ip,
                Bucket {
                    milli_tokens: full - 1000,
                    at: now,
                },
            );
            return true;
        };
        let elapsed = u64::try_from(now.saturating_duration_since(b.at).as_millis()).unwrap_or(0);
        b.milli_tokens = b
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(rate))
            .min(full);
        b.at = b.at.max(now);
        if b.milli_tokens >= 1000 {
            b.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_allows_a_burst_then_refills_by_the_millisecond() {
        let ip: IpAddr = [192, 0, 2, 1].into();
        let other: IpAddr = [192, 0, 2, 2].into();
        let mut l = WhoareyouLimiter::new(3, 8);
        let t = Instant::from_millis(1_000);
        assert!((0..3).all(|_| l.allow(ip, t)));
        assert!(!l.allow(ip, t));
        // Another address has its own budget.
        assert!(l.allow(other, t));
        // One token every 333⅓ ms.
        assert!(!l.allow(ip, Instant::from_millis(1_333)));
        assert!(l.allow(ip, Instant::from_millis(1_334)));
        assert!(!l.allow(ip, Instant::from_millis(1_334)));
        // Never more than the burst, however long the pause.
        let later = Instant::from_millis(1_000_000);
        assert!((0..3).all(|_| l.allow(ip, later)));
        assert!(!l.allow(ip, later));
        assert!(!WhoareyouLimiter::new(0, 8).allow(ip, t));
    }

    #[test]
    fn the_limiter_forgets_the_least_recently_seen_address() {
        let mut l = WhoareyouLimiter::new(1, 2);
        let t = Instant::from_millis(0);
        for i in 0..10u8 {
            assert!(l.allow([10, 0, 0, i].into(), t));
            assert!(l.tracked_ips() <= 2);
        }
    }
}
