//! Sending: requests (queued one per node and address, resent on timeout), responses, and
//! how a request ends ([DISCV5.md §7](crate::spec::discv5)).

use rand_core::CryptoRng;
use smallvec::SmallVec;

use super::calls::Call;
use super::types::{Contact, Event, NodeAddress, Request, RequestFailure, Response, SendError};
use super::{canonical, Sessions};
use crate::discv5::crypto::Nonce;
use crate::discv5::message::{
    pack_nodes, Message, RequestId, FINDNODE_RESULT_LIMIT, MAX_REQUEST_ID_SIZE,
};
use crate::discv5::packet::{
    encode_message, encode_random, MAX_MESSAGE_PLAINTEXT, RANDOM_PACKET_FILLER,
};
use crate::enr::Enr;
use crate::time::Instant;

impl<R: CryptoRng> Sessions<R> {
    /// Sends `request` to `contact` and returns its id, which the [`Event::Response`] or
    /// [`Event::RequestFailed`] that ends it carries. If a request to the same node and
    /// address is in flight, this one waits behind it (one at a time, as geth does; at most
    /// [`SessionsConfig::max_queued_requests_per_node`](super::SessionsConfig)). Without a
    /// session the first packet is a random one and the node's WHOAREYOU gets the request as
    /// a handshake packet. A contact's record is remembered as by [`Sessions::learn_record`].
    pub fn send_request(
        &mut self,
        now: Instant,
        contact: Contact,
        request: Request,
    ) -> Result<RequestId, SendError> {
        self.advance(now);
        let node = contact.address();
        if node.id == self.local_id {
            return Err(SendError::ToSelf);
        }
        if self.calls.len() >= self.config.max_requests {
            return Err(SendError::TooManyRequests);
        }
        if self
            .calls
            .queued(&node)
            .is_some_and(|q| q >= self.config.max_queued_requests_per_node)
        {
            return Err(SendError::QueueFull);
        }
        let id = self.fresh_request_id();
        let message = request.to_message(id, self.local_record.seq());
        check_size(&message)?;
        if let Some(record) = contact.record() {
            self.learn_record(record.clone());
        }
        let call = Call {
            id,
            contact,
            message,
            attempts: 0,
            handshake_sent: false,
            held: false,
            nonces: SmallVec::new(),
            deadline: Instant::MAX,
            nodes: None,
        };
        if self.calls.push(node, call) {
            self.send_attempt(node);
        }
        Ok(id)
    }

    /// Sends `response` (PONG, NODES or TALKRESP, with the request's id) to `to` under the
    /// session with it. Without a session nothing is sent: a response never starts a
    /// handshake, since a WHOAREYOU naming it could not be answered (geth sends a random
    /// packet in its place, go-ethereum#30592).
    pub fn send_response(
        &mut self,
        now: Instant,
        to: &NodeAddress,
        response: Message,
    ) -> Result<(), SendError> {
        self.advance(now);
        if response.is_request() {
            return Err(SendError::NotAResponse);
        }
        check_size(&response)?;
        let to = canonical(to);
        let Some(session) = self.sessions.get_mut(&to) else {
            return Err(SendError::NoSession);
        };
        let Some(nonce) = session.next_nonce(&mut self.rng) else {
            self.sessions.remove(&to);
            return Err(SendError::NoSession);
        };
        let iv = self.random_bytes();
        let session = self.sessions.peek(&to).expect("fetched above");
        let mut out = Vec::new();
        encode_message(
            &mut out,
            &to.id,
            &self.local_id,
            &iv,
            &nonce,
            session.write_key(),
            &response,
        )
        .map_err(|_| SendError::TooLarge(response.to_vec().len()))?;
        self.remember_nonce(to, nonce);
        self.transmit(to.addr, out);
        Ok(())
    }

    /// Answers FINDNODE `request_id` from `to` with `records`, packed into NODES messages as
    /// geth packs them ([`pack_nodes`]: at most 1000 record bytes each, `total` in every one)
    /// after cutting them to [`FINDNODE_RESULT_LIMIT`]. Returns how many messages went out.
    pub fn send_nodes(
        &mut self,
        now: Instant,
        to: &NodeAddress,
        request_id: RequestId,
        records: &[Enr],
    ) -> Result<usize, SendError> {
        let records = &records[..records.len().min(FINDNODE_RESULT_LIMIT)];
        let messages = pack_nodes(request_id, records);
        let n = messages.len();
        for m in messages {
            self.send_response(now, to, Message::Nodes(m))?;
        }
        Ok(n)
    }

    /// The request in flight to `node` is due: send it again, or give up. A FINDNODE that
    /// got part of its answer ends with that part instead.
    pub(super) fn request_due(&mut self, node: NodeAddress) {
        let Some(call) = self.calls.active_mut(&node) else {
            return;
        };
        if let Some(progress) = call.nodes.take() {
            self.complete_request(node, Response::Nodes(progress.into_response()));
        } else if call.attempts <= self.config.request_retries {
            self.send_attempt(node);
        } else {
            self.fail_request(node, RequestFailure::Timeout);
        }
    }

    /// Sends the request in flight to `node` once more: under the session if there is one,
    /// else as a random packet that draws a WHOAREYOU. A fresh packet each time (not the
    /// last one again) so that a lost response is recovered as well as a lost handshake.
    ///
    /// A first attempt while a WHOAREYOU of ours to the node is pending waits for the node's
    /// handshake (then it goes under the session the handshake makes) or for the
    /// challenge to expire, whichever comes first: the node is handshaking with us already,
    /// and a packet of ours crossing its handshake would start a second one the other way.
    /// sigp drops its new session on such a packet, undecryptable to it, and with it our
    /// answer to its request (seen in the interop tests).
    pub(super) fn send_attempt(&mut self, node: NodeAddress) {
        let challenge_expires = self.challenges.peek(&node).map(|c| c.expires);
        let Some(call) = self.calls.active_mut(&node) else {
            return;
        };
        if let Some(expires) = challenge_expires.filter(|_| call.attempts == 0 && !call.held) {
            call.held = true;
            call.deadline = expires.min(self.now + self.config.request_timeout);
            return;
        }
        call.attempts = call.attempts.saturating_add(1);
        call.handshake_sent = false;
        call.deadline = self.now + self.config.request_timeout;
        let message = call.message.clone();
        let iv = self.random_bytes();
        let mut out = Vec::new();
        let nonce = match self.sessions.get_mut(&node) {
            Some(session) => match session.next_nonce(&mut self.rng) {
                Some(nonce) => {
                    let key = session.write_key();
                    match encode_message(
                        &mut out,
                        &node.id,
                        &self.local_id,
                        &iv,
                        &nonce,
                        key,
                        &message,
                    ) {
                        Ok(()) => Some(nonce),
                        Err(_) => None,
                    }
                }
                None => {
                    // Its nonces are used up: a new handshake replaces it.
                    self.sessions.remove(&node);
                    None
                }
            },
            None => None,
        };
        let nonce = match nonce {
            Some(n) => n,
            None => {
                out.clear();
                let nonce: Nonce = self.random_bytes();
                let filler: [u8; RANDOM_PACKET_FILLER] = self.random_bytes();
                encode_random(&mut out, &node.id, &self.local_id, &iv, &nonce, &filler)
                    .expect("a random packet is far below the size limit");
                nonce
            }
        };
        self.calls.sent_with(&node, nonce);
        self.transmit(node.addr, out);
    }

    /// The request in flight to `node` was answered.
    pub(super) fn complete_request(&mut self, node: NodeAddress, response: Response) {
        let Some((call, next)) = self.calls.finish(&node) else {
            return;
        };
        for nonce in &call.nonces {
            self.remember_nonce(node, *nonce);
        }
        self.emit(Event::Response {
            id: call.id,
            from: node,
            response,
        });
        if next {
            self.send_attempt(node);
        }
    }

    /// The request in flight to `node` failed.
    pub(super) fn fail_request(&mut self, node: NodeAddress, reason: RequestFailure) {
        let Some((call, next)) = self.calls.finish(&node) else {
            return;
        };
        for nonce in &call.nonces {
            self.remember_nonce(node, *nonce);
        }
        self.emit(Event::RequestFailed {
            id: call.id,
            to: node,
            reason,
        });
        if next {
            self.send_attempt(node);
        }
    }

    /// 8 random bytes, as geth's request ids, none of ours outstanding, and never with a
    /// leading zero byte: @chainsafe/discv5 before 11.0.4 keeps a request id as an integer
    /// and echoes it without its leading zeros (ChainSafe/discv5#312), so 1 in 256 of
    /// geth's requests to such a node is never answered in effect. The spec asks for the
    /// bytes echoed as they came, which we do; this only keeps our own ids clear of the bug.
    fn fresh_request_id(&mut self) -> RequestId {
        loop {
            let id = RequestId::from_u64(self.rng.next_u64());
            if id.as_bytes()[0] != 0 && !self.calls.contains_id(&id) {
                debug_assert_eq!(id.as_bytes().len(), MAX_REQUEST_ID_SIZE);
                return id;
            }
        }
    }
}

/// Refuses a message whose plaintext cannot fit in an ordinary packet.
fn check_size(message: &Message) -> Result<(), SendError> {
    let len = message.to_vec().len();
    if len > MAX_MESSAGE_PLAINTEXT {
        return Err(SendError::TooLarge(len));
    }
    Ok(())
}
