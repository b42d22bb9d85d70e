//! What the service does with each event of the session layer: answering PING, FINDNODE and
//! TALKREQ, and finishing our own requests ([DISCV5.md §3, §7](crate::spec::discv5)).

use std::net::{IpAddr, SocketAddr};

use rand_core::CryptoRng;

use super::config::MIN_RECORD_UDP_PORT;
use super::events::{Event, Refusal};
use super::{Discovery, Purpose};
use crate::discv4::netutil::check_relay_ip;
use crate::discv4::table::BUCKET_SIZE;
use crate::discv4::Node;
use crate::discv5::message::{
    FindNode, Message, Pong, RequestId, TalkReq, TalkResp, FINDNODE_RESULT_LIMIT, MAX_DISTANCE,
};
use crate::discv5::sessions::{
    canonical_addr, Direction, Event as SessionEvent, NodeAddress, RequestFailure, Response,
};
use crate::enr::Enr;

impl<R: CryptoRng> Discovery<R> {
    /// Handles everything the session layer reported, until it reports nothing more
    /// (answering is itself an input to it).
    pub(super) fn drain_sessions(&mut self) {
        while let Some(event) = self.sessions.poll_event() {
            match event {
                SessionEvent::SessionEstablished {
                    node,
                    record,
                    direction,
                } => {
                    if direction == Direction::Inbound {
                        if let Some(r) = record {
                            self.on_inbound_session(node, r);
                        }
                    }
                }
                SessionEvent::Request { from, request } => self.on_request(from, request),
                SessionEvent::Response { id, from, response } => {
                    self.on_response(id, from, response)
                }
                SessionEvent::RequestFailed { id, to, reason } => self.on_failed(id, to, reason),
            }
        }
    }

    /// geth adds a node that handshook with us to its table as an inbound node
    /// (`addInboundNode`), once its first refresh is done; we also want its record to
    /// advertise the address it wrote from, so that what we relay is where it was seen.
    pub(super) fn on_inbound_session(&mut self, from: NodeAddress, record: Enr) {
        if !self.bootstrapped {
            return;
        }
        let advertised = record.udp_endpoint().map(canonical_addr);
        if advertised != Some(from.addr) || !self.config.allows(&from.addr.ip()) {
            self.refuse(Refusal::InboundAddressMismatch);
            return;
        }
        if let Some(node) = Node::from_enr(record) {
            self.add_to_table(node, true);
        }
    }

    fn on_request(&mut self, from: NodeAddress, request: Message) {
        match request {
            Message::Ping(p) => {
                let pong = Pong {
                    request_id: p.request_id,
                    enr_seq: self.sessions.local_record().seq(),
                    recipient_ip: Some(from.addr.ip()),
                    recipient_port: from.addr.port(),
                };
                // Refused only without a session, which the PING just used: nothing to do.
                let _ = self
                    .sessions
                    .send_response(self.now, &from, Message::Pong(pong));
                self.ping_named_seq(from, p.enr_seq);
            }
            Message::FindNode(f) => self.on_findnode(from, f),
            Message::TalkReq(t) => self.on_talkreq(from, t),
            // The session layer hands on requests only.
            _ => {}
        }
    }

    /// NODES for exactly the distances asked, each once, never an address the asker may not
    /// be told of (geth `CheckRelayAddr`), at most 16 records. At each distance the live
    /// nodes are served, or, when none there is live yet, the others (see
    /// [`Config::prefer_live`](super::Config::prefer_live)).
    fn on_findnode(&mut self, from: NodeAddress, f: FindNode) {
        let mut records: Vec<Enr> = Vec::new();
        let mut done: Vec<u64> = Vec::new();
        let asker = from.addr.ip();
        for d in f.distances {
            if d > MAX_DISTANCE || done.contains(&d) || records.len() >= FINDNODE_RESULT_LIMIT {
                continue;
            }
            done.push(d);
            if d == 0 {
                records.push(self.sessions.local_record().clone());
                continue;
            }
            let mut nodes = self
                .table
                .nodes_at_distance(d as u32, self.config.prefer_live);
            if nodes.is_empty() && self.config.prefer_live {
                nodes = self.table.nodes_at_distance(d as u32, false);
            }
            for n in nodes {
                if records.len() >= FINDNODE_RESULT_LIMIT {
                    break;
                }
                if check_relay_ip(&asker, &n.ip()).is_err() {
                    continue;
                }
                if let Some(r) = n.record() {
                    records.push(r.clone());
                }
            }
        }
        let _ = self
            .sessions
            .send_nodes(self.now, &from, f.request_id, &records);
    }

    fn on_talkreq(&mut self, from: NodeAddress, t: TalkReq) {
        if !self.talk.is_registered(&t.protocol) {
            self.refuse(Refusal::TalkUnknownProtocol);
            let empty = TalkResp {
                request_id: t.request_id,
                response: Vec::new(),
            };
            let _ = self
                .sessions
                .send_response(self.now, &from, Message::TalkResp(empty));
            return;
        }
        let size = t.protocol.len() + t.request.len();
        match self.talk.admit(self.now, from, t.request_id, size) {
            Ok(None) => {}
            Ok(Some(id)) => self.emit(Event::TalkRequest {
                id,
                from,
                protocol: t.protocol,
                request: t.request,
            }),
            Err(refusal) => self.refuse(refusal),
        }
    }

    fn on_response(&mut self, id: RequestId, from: NodeAddress, response: Response) {
        let Some(purpose) = self.requests.remove(&id) else {
            return;
        };
        match (purpose, response) {
            (Purpose::Revalidate(node), Response::Pong(p)) => {
                self.observe_pong(&from.addr, &p);
                self.db
                    .set_last_pong_received(&node.id(), &from.addr.ip(), self.unix_secs);
                self.revalidation_done(&node, true, Some(p.enr_seq));
            }
            (Purpose::FetchRecord(node), Response::Nodes(n)) => {
                self.fetching.remove(&node.id());
                let own = n.records.into_iter().find(|r| r.node_id() == node.id());
                if let Some(found) = own.and_then(|r| self.checked_record(&from.addr, r)) {
                    self.add_to_table(found, false);
                }
            }
            (Purpose::FetchInbound(node), Response::Nodes(n)) => {
                self.fetching.remove(&node.id);
                if let Some(r) = n.records.into_iter().find(|r| r.node_id() == node.id) {
                    // Known from now on, whether it qualifies or not: no fetch for this seq
                    // again.
                    self.sessions.learn_record(r.clone());
                    self.on_inbound_session(node, r);
                }
            }
            (Purpose::Query { lookup, node }, Response::Nodes(n)) => {
                let found: Vec<Node> = n
                    .records
                    .into_iter()
                    .filter_map(|r| self.checked_record(&from.addr, r))
                    .take(BUCKET_SIZE)
                    .collect();
                self.query_done(lookup, node, Some(found));
            }
            (Purpose::Ping, Response::Pong(pong)) => {
                self.observe_pong(&from.addr, &pong);
                self.emit(Event::PingResponse {
                    id,
                    to: from,
                    result: Ok(pong),
                })
            }
            (Purpose::FindNode, Response::Nodes(nodes)) => self.emit(Event::FindNodeResponse {
                id,
                to: from,
                result: Ok(nodes),
            }),
            (Purpose::Talk, Response::TalkResp(bytes)) => self.emit(Event::TalkResponse {
                id,
                to: from,
                result: Ok(bytes),
            }),
            // The session layer matches answers to requests by type; a mismatch cannot
            // happen, and would be ended like a failure.
            (purpose, _) => self.purpose_failed(id, from, purpose, RequestFailure::Timeout),
        }
    }

    fn on_failed(&mut self, id: RequestId, to: NodeAddress, reason: RequestFailure) {
        if let Some(purpose) = self.requests.remove(&id) {
            self.purpose_failed(id, to, purpose, reason);
        }
    }

    fn purpose_failed(
        &mut self,
        id: RequestId,
        to: NodeAddress,
        purpose: Purpose,
        reason: RequestFailure,
    ) {
        match purpose {
            Purpose::Revalidate(node) => self.revalidation_done(&node, false, None),
            Purpose::FetchRecord(node) => {
                self.fetching.remove(&node.id());
            }
            Purpose::FetchInbound(node) => {
                self.fetching.remove(&node.id);
            }
            Purpose::Query { lookup, node } => self.query_done(lookup, node, None),
            Purpose::Ping => self.emit(Event::PingResponse {
                id,
                to,
                result: Err(reason),
            }),
            Purpose::FindNode => self.emit(Event::FindNodeResponse {
                id,
                to,
                result: Err(reason),
            }),
            Purpose::Talk => self.emit(Event::TalkResponse {
                id,
                to,
                result: Err(reason),
            }),
        }
    }

    /// The checks a record from NODES passes before its node may enter the table, a lookup
    /// or the dialer (geth `verifyResponseNode`; the session layer checked the signature,
    /// the distance and repeats): an IP and UDP port, the port above
    /// [`MIN_RECORD_UDP_PORT`], an address the responder at `responder` may relay, and
    /// NetRestrict.
    pub(super) fn checked_record(&mut self, responder: &SocketAddr, r: Enr) -> Option<Node> {
        let ok = Node::from_enr(r).filter(|n| {
            n.udp_port() > MIN_RECORD_UDP_PORT
                && !n.ip().is_unspecified()
                && relayable(&responder.ip(), &n.ip())
                && self.config.allows(&n.ip())
        });
        if ok.is_none() {
            self.refuse(Refusal::BadRecordAddress);
        }
        ok
    }
}

fn relayable(sender: &IpAddr, addr: &IpAddr) -> bool {
    check_relay_ip(sender, addr).is_ok()
}
