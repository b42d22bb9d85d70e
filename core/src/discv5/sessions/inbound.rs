//! What a datagram does: decode, then by packet kind open the message, challenge the sender,
//! answer a challenge of ours, or accept a handshake ([DISCV5.md §2.4, §4](crate::spec::discv5)).

use std::net::SocketAddr;

use rand_core::CryptoRng;

use super::calls::NodesProgress;
use super::session::Session;
use super::types::{Direction, DropReason, Event, NodeAddress, RequestFailure, Response};
use super::{Challenge, Sessions};
use crate::discv5::crypto::Nonce;
use crate::discv5::message::Message;
use crate::discv5::packet::{
    encode_handshake, encode_whoareyou, resend_whoareyou, HandshakeAuth, OpenError, Packet,
    PacketError, PacketKind, Whoareyou,
};
use crate::identity::NodeId;

impl<R: CryptoRng> Sessions<R> {
    pub(super) fn process_datagram(
        &mut self,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), DropReason> {
        let packet = Packet::decode(&self.local_id, data).map_err(drop_reason)?;
        self.expire_challenges();
        match packet.kind() {
            PacketKind::Message { src_id } => self.on_message(from, src_id, &packet),
            PacketKind::Whoareyou(w) => self.on_whoareyou(from, &packet, w),
            PacketKind::Handshake(auth) => self.on_handshake(from, &packet, auth),
        }
    }

    /// An ordinary packet: open it under the session, or challenge the sender.
    fn on_message(
        &mut self,
        from: SocketAddr,
        src_id: NodeId,
        packet: &Packet<'_>,
    ) -> Result<(), DropReason> {
        if src_id == self.local_id {
            return Err(DropReason::FromSelf);
        }
        let node = NodeAddress::new(src_id, from);
        let opened = match self.sessions.get_mut(&node) {
            Some(s) => s.open(packet, self.key.signature_scheme()),
            None => Err(OpenError::Decrypt),
        };
        match opened {
            Ok((message, newly_confirmed)) => {
                if newly_confirmed {
                    // Keys of our own handshake, now shown to be the peer's too.
                    self.emit(Event::SessionEstablished {
                        node,
                        record: self.records.peek(&node.id).cloned(),
                        direction: Direction::Outbound,
                    });
                }
                self.on_plaintext(node, message)
            }
            Err(OpenError::Message(_)) => Err(DropReason::BadMessage),
            // No session, or not one the packet opens under (a random packet, a peer that
            // restarted, keys from a handshake the peer never got): ask who it is. The old
            // session stays until a handshake replaces it (geth; sigp drops it here).
            Err(OpenError::Decrypt | OpenError::NoMessage) => self.challenge(node, &packet.nonce()),
        }
    }

    /// Sends `node` a WHOAREYOU naming the packet with `nonce`, or the one already pending
    /// for it, byte for byte (geth since #31356; hive `HandshakeResend`;
    /// [DISCV5.md §4.9](crate::spec::discv5)).
    fn challenge(&mut self, node: NodeAddress, nonce: &Nonce) -> Result<(), DropReason> {
        // Loopback sources are exempt: they are this host (the kernel drops them arriving
        // from outside), and a test network puts every node on 127.0.0.1.
        let ip = node.addr.ip();
        if !ip.is_loopback() && !self.limiter.allow(ip, self.now) {
            return Err(DropReason::RateLimited);
        }
        let mut out = Vec::with_capacity(crate::discv5::packet::WHOAREYOU_SIZE);
        if let Some(pending) = self.challenges.peek(&node) {
            resend_whoareyou(&mut out, &node.id, &pending.data);
        } else {
            let record = self.records.peek(&node.id).cloned();
            let whoareyou = Whoareyou {
                id_nonce: self.random_bytes(),
                enr_seq: record.as_ref().map_or(0, |r| r.seq()),
            };
            let iv = self.random_bytes();
            let data = encode_whoareyou(&mut out, &node.id, &iv, nonce, &whoareyou);
            let expires = self.now + self.config.handshake_timeout;
            self.challenges.insert(
                node,
                Challenge {
                    data,
                    expires,
                    record,
                },
            );
        }
        self.transmit(node.addr, out);
        Ok(())
    }

    /// A WHOAREYOU: if it names a packet of the request in flight to where it came from, or
    /// another packet we sent there shortly before while a request is in flight there
    /// ([`RECENT_NONCE_LIFETIME`](super::RECENT_NONCE_LIFETIME)), answer with that request as
    /// a handshake packet ([DISCV5.md §4.8](crate::spec::discv5)).
    fn on_whoareyou(
        &mut self,
        from: SocketAddr,
        packet: &Packet<'_>,
        whoareyou: Whoareyou,
    ) -> Result<(), DropReason> {
        let nonce = packet.nonce();
        let node = self
            .calls
            .by_nonce(&nonce)
            .or_else(|| {
                self.recent_nonce(&nonce)
                    .filter(|n| self.calls.active(n).is_some())
            })
            .filter(|n| n.addr == from)
            .ok_or(DropReason::UnknownChallenge)?;
        let call = self
            .calls
            .active(&node)
            .ok_or(DropReason::UnknownChallenge)?;
        if call.handshake_sent {
            return Err(DropReason::RepeatedChallenge);
        }
        let remote = call
            .contact
            .public_key()
            .copied()
            .or_else(|| self.records.peek(&node.id).map(|r| *r.public_key()));
        let Some(remote) = remote else {
            self.fail_request(node, RequestFailure::NoPublicKey);
            return Ok(());
        };
        let message = call.message.clone();
        let ephemeral = crate::identity::random_secret(&mut self.rng);
        let iv = self.random_bytes();
        // The first packet under new keys: counter 1, then random bytes, as every nonce.
        let mut nonce: Nonce = self.random_bytes();
        nonce[..4].copy_from_slice(&1u32.to_be_bytes());
        // Our record goes along iff the peer's copy is older (§4.6).
        let record = (whoareyou.enr_seq < self.local_record.seq()).then_some(&self.local_record);
        let mut out = Vec::new();
        let keys = match encode_handshake(
            &mut out,
            &self.key,
            &remote,
            packet.header(),
            &ephemeral,
            record,
            &iv,
            &nonce,
            &message,
        ) {
            Ok(keys) => keys,
            Err(_) => {
                self.fail_request(node, RequestFailure::TooLargeForHandshake);
                return Ok(());
            }
        };
        // Stored as geth does, when the handshake goes out; confirmed when the peer answers.
        // The handshake packet used nonce 1 under the new keys, so the count moves past it.
        let after_our_challenge = self.challenges.peek(&node).is_some();
        match self.sessions.get_mut(&node) {
            Some(s) => {
                s.rekey(keys, false);
                let _ = s.next_nonce(&mut self.rng);
            }
            None => {
                let mut s = Session::new(keys, false);
                let _ = s.next_nonce(&mut self.rng);
                self.sessions.insert(node, s);
            }
        }
        if after_our_challenge {
            if let Some(s) = self.sessions.get_mut(&node) {
                s.sent_after_our_challenge();
            }
        }
        let deadline = self.now + self.config.request_timeout;
        if let Some(call) = self.calls.active_mut(&node) {
            call.handshake_sent = true;
            call.deadline = deadline;
        }
        self.calls.sent_with(&node, nonce);
        self.transmit(node.addr, out);
        Ok(())
    }

    /// A handshake packet: check it against the WHOAREYOU we sent that node at that address,
    /// which goes whatever the outcome ([DISCV5.md §4.7](crate::spec::discv5)).
    fn on_handshake(
        &mut self,
        from: SocketAddr,
        packet: &Packet<'_>,
        auth: HandshakeAuth<'_>,
    ) -> Result<(), DropReason> {
        if auth.src_id == self.local_id {
            return Err(DropReason::FromSelf);
        }
        let node = NodeAddress::new(auth.src_id, from);
        let challenge = self
            .challenges
            .remove(&node)
            .ok_or(DropReason::UnexpectedHandshake)?;
        let accepted = packet
            .accept_handshake(&self.key, &challenge.data, challenge.record.as_ref())
            .map_err(|_| DropReason::BadHandshake)?;
        match self.sessions.get_mut(&node) {
            Some(s) => s.accept(accepted.keys),
            None => {
                self.sessions
                    .insert(node, Session::new(accepted.keys, true));
            }
        }
        self.learn_record(accepted.record.clone());
        self.emit(Event::SessionEstablished {
            node,
            record: Some(accepted.record),
            direction: Direction::Inbound,
        });
        // A request held back for this handshake goes out under the session it made.
        if self
            .calls
            .active(&node)
            .is_some_and(|c| c.held && c.attempts == 0)
        {
            self.send_attempt(node);
        }
        self.on_plaintext(node, accepted.message)
    }

    /// A message that authenticated: a request for the layer above, or an answer to ours.
    fn on_plaintext(&mut self, from: NodeAddress, message: Message) -> Result<(), DropReason> {
        if message.is_request() {
            self.emit(Event::Request {
                from,
                request: message,
            });
            return Ok(());
        }
        self.on_response(from, message)
    }

    /// A response: it must match the request in flight to that node at that address by id
    /// and type (geth `handleCallResponse`; [DISCV5.md §7.3](crate::spec::discv5)).
    fn on_response(&mut self, from: NodeAddress, message: Message) -> Result<(), DropReason> {
        let call = self
            .calls
            .active_mut(&from)
            .filter(|c| c.id == *message.request_id())
            .ok_or(DropReason::Unsolicited)?;
        let response = match (&call.message, message) {
            (Message::Ping(_), Message::Pong(p)) => Response::Pong(p),
            (Message::TalkReq(_), Message::TalkResp(t)) => Response::TalkResp(t.response),
            (Message::FindNode(f), Message::Nodes(n)) => {
                let progress = call.nodes.get_or_insert_with(NodesProgress::default);
                progress.add(&from.id, &f.distances, n);
                if !progress.is_complete() {
                    // Each part re-arms the timer (geth `startResponseTimeout`).
                    call.deadline = self.now + self.config.request_timeout;
                    return Ok(());
                }
                let progress = call.nodes.take().expect("set above");
                Response::Nodes(progress.into_response())
            }
            _ => return Err(DropReason::Unsolicited),
        };
        self.complete_request(from, response);
        Ok(())
    }
}

/// Which counter a header that did not decode goes to.
fn drop_reason(e: PacketError) -> DropReason {
    if e.is_not_discv5() {
        DropReason::NotDiscv5
    } else {
        DropReason::BadHeader
    }
}
