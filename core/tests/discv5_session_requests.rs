//! Requests through the discv5 session layer between in-memory machines: queues and their
//! limits, multi-part NODES answers, responses and what needs a session, contacts without a
//! record, the session cache's eviction, and size limits.

mod discv5_support;

use devp2p_core::discv5::message::{Message, Nodes, Ping, Pong, RequestId, MAX_NODES_RESPONSES};
use devp2p_core::discv5::packet::flag;
use devp2p_core::discv5::sessions::REQUEST_TIMEOUT;
use devp2p_core::discv5::{
    Contact, DropReason, Event, NodesResponse, Request, RequestFailure, Response, SendError,
    SessionsConfig,
};
use devp2p_core::Enr;
use discv5_support::{key, pong_of, two, Net, LATENCY};

#[test]
fn requests_queued_behind_a_handshake_go_out_once_it_is_done() {
    let (mut net, a, b) = two();
    let ids: Vec<_> = (0..5).map(|_| net.request(a, b, Request::Ping)).collect();
    // Only the first is on the wire.
    assert_eq!(net.log.len(), 1);
    assert_eq!(net.peers[a].m.request_count(), 5);
    assert_eq!(net.peers[a].m.active_request_count(), 1);
    net.run_idle();
    for id in ids {
        pong_of(&net, a, id);
    }
    assert_eq!(net.whoareyous_by(b).len(), 1);
    assert_eq!(net.sent_by(a, flag::HANDSHAKE).len(), 1);
}

#[test]
fn a_full_queue_refuses_further_requests() {
    let mut net = Net::new();
    let mut config = SessionsConfig::default();
    config.max_queued_requests_per_node = 2;
    config.max_requests = 4;
    let a = net.add_at(1, "127.0.0.1:30301".parse().unwrap(), config);
    let b = net.add(2, 30302);
    let c = net.add(3, 30303);
    let (cb, cc) = (net.contact(b), net.contact(c));
    let now = net.now;
    let m = &mut net.peers[a].m;
    for _ in 0..3 {
        m.send_request(now, cb.clone(), Request::Ping).unwrap();
    }
    assert_eq!(
        m.send_request(now, cb.clone(), Request::Ping),
        Err(SendError::QueueFull)
    );
    m.send_request(now, cc.clone(), Request::Ping).unwrap();
    assert_eq!(
        m.send_request(now, cc, Request::Ping),
        Err(SendError::TooManyRequests)
    );
    assert_eq!(m.request_count(), 4);
    let own = Contact::from_record(net.peers[a].record.clone()).unwrap();
    assert_eq!(
        net.peers[a].m.send_request(now, own, Request::Ping),
        Err(SendError::ToSelf)
    );
}

fn nodes_records(n: u8) -> Vec<Enr> {
    (0..n)
        .map(|i| {
            let k = key(1000 + u64::from(i));
            Enr::builder()
                .ip([10, 0, 0, i].into())
                .udp4(30303)
                .tcp4(30303)
                .raw(b"pad", &[&[0x80 + 40][..], &[i; 40]].concat())
                .unwrap()
                .sign(&k)
                .unwrap()
        })
        .collect()
}

fn nodes_of(net: &Net, i: usize, id: RequestId) -> NodesResponse {
    match net.response(i, id) {
        Some(Event::Response {
            response: Response::Nodes(n),
            ..
        }) => n.clone(),
        other => panic!("no NODES for {id:?}: {other:?}"),
    }
}

#[test]
fn a_findnode_answer_in_several_nodes_messages_arrives_as_one_response() {
    let (mut net, a, b) = two();
    let records = nodes_records(16);
    let responder = net.id(b);
    let mut distances: Vec<u64> = records
        .iter()
        .map(|r| u64::from(responder.log_distance(&r.node_id())))
        .collect();
    distances.sort();
    distances.dedup();
    net.peers[b].nodes_answer = records.clone();
    let id = net.request(a, b, Request::FindNode { distances });
    net.run_idle();
    let n = nodes_of(&net, a, id);
    assert!(n.total > 1, "{} messages", n.total);
    assert_eq!((n.messages, n.rejected), (n.total, 0));
    assert_eq!(n.records, records);
    // Asked for one distance only, the rest are left out.
    let d = u64::from(responder.log_distance(&records[0].node_id()));
    let id = net.request(a, b, Request::FindNode { distances: vec![d] });
    net.run_idle();
    let n = nodes_of(&net, a, id);
    assert!(n
        .records
        .iter()
        .all(|r| u64::from(responder.log_distance(&r.node_id())) == d));
    assert_eq!(n.records.len() + n.rejected, 16);
}

#[test]
fn findnode_zero_returns_the_responders_own_record_and_nothing_else() {
    let (mut net, a, b) = two();
    let own = net.peers[b].record.clone();
    let mut answer = nodes_records(2);
    answer.push(own.clone());
    net.peers[b].nodes_answer = answer;
    let id = net.request(a, b, Request::FindNode { distances: vec![0] });
    net.run_idle();
    let n = nodes_of(&net, a, id);
    assert_eq!((n.records, n.rejected), (vec![own], 2));
}

#[test]
fn nodes_parts_beyond_six_are_unsolicited_and_total_zero_is_read_as_one() {
    // B answers with hand-made NODES messages under its session with A.
    let (mut net, a, b) = two();
    net.request(a, b, Request::Ping);
    net.run_idle();
    net.peers[b].answers = false;
    let records = nodes_records(7);
    let responder = net.id(b);
    let distances: Vec<u64> = (0..=256).collect();
    let id = net.request(a, b, Request::FindNode { distances });
    net.run_until_request(b);
    let from = net.address(a);
    // total 9 is cut to 6 (geth: 5; 6 parts of 3 records carry ChainSafe's 16): the answer
    // is complete after six parts.
    for r in &records {
        let m = Message::Nodes(Nodes {
            request_id: id,
            total: 9,
            records: vec![r.clone()],
            invalid_records: 0,
        });
        let now = net.now;
        let _ = net.peers[b].m.send_response(now, &from, m);
    }
    net.flush(b);
    net.run_idle();
    let n = nodes_of(&net, a, id);
    assert_eq!(MAX_NODES_RESPONSES, 6);
    assert_eq!((n.messages, n.total), (6, 6));
    assert_eq!(n.records, records[..6].to_vec());
    assert!(responder != net.id(a));
    // The part after the sixth is unsolicited.
    assert_eq!(net.peers[a].m.drop_count(DropReason::Unsolicited), 1);
    // total 0 is read as 1.
    let id = net.request(a, b, Request::FindNode { distances: vec![0] });
    net.run_until_request(b);
    let m = Message::Nodes(Nodes {
        request_id: id,
        total: 0,
        records: vec![],
        invalid_records: 0,
    });
    let now = net.now;
    net.peers[b].m.send_response(now, &from, m).unwrap();
    net.flush(b);
    net.run_idle();
    let n = nodes_of(&net, a, id);
    assert_eq!((n.messages, n.total, n.records.len()), (1, 1, 0));
}

#[test]
fn a_partial_nodes_answer_ends_the_request_when_the_timer_runs_out() {
    let (mut net, a, b) = two();
    net.request(a, b, Request::Ping);
    net.run_idle();
    net.peers[b].answers = false;
    let id = net.request(a, b, Request::FindNode { distances: vec![0] });
    net.run_until_request(b);
    let from = net.address(a);
    let own = net.peers[b].record.clone();
    let m = Message::Nodes(Nodes {
        request_id: id,
        total: 3,
        records: vec![own.clone()],
        invalid_records: 0,
    });
    let now = net.now;
    net.peers[b].m.send_response(now, &from, m).unwrap();
    net.flush(b);
    let t = net.now;
    net.run_idle();
    let n = nodes_of(&net, a, id);
    assert_eq!((n.messages, n.total, n.records), (1, 3, vec![own]));
    // The part re-armed the timer: the request ended one timeout after it arrived.
    assert_eq!(net.now, t + LATENCY + REQUEST_TIMEOUT);
}

#[test]
fn responses_need_a_session_and_unsolicited_ones_are_dropped() {
    let (mut net, a, b) = two();
    let to = net.address(b);
    let pong = Message::Pong(Pong {
        request_id: RequestId::from_u64(5),
        enr_seq: 1,
        recipient_ip: None,
        recipient_port: 0,
    });
    let now = net.now;
    assert_eq!(
        net.peers[a].m.send_response(now, &to, pong.clone()),
        Err(SendError::NoSession)
    );
    assert_eq!(
        net.peers[a].m.send_response(
            now,
            &to,
            Message::Ping(Ping {
                request_id: RequestId::from_u64(5),
                enr_seq: 1
            })
        ),
        Err(SendError::NotAResponse)
    );
    net.request(a, b, Request::Ping);
    net.run_idle();
    // B sends a PONG nobody asked for.
    let from = net.address(a);
    net.peers[b].m.send_response(now, &from, pong).unwrap();
    net.flush(b);
    net.run_idle();
    assert_eq!(net.peers[a].m.drop_count(DropReason::Unsolicited), 1);
}

#[test]
fn a_request_by_id_only_uses_a_known_record_for_the_handshake_or_fails() {
    let (mut net, a, b) = two();
    let now = net.now;
    let by_id = Contact::from_id(net.id(b), net.peers[b].addr);
    let id = net.peers[a]
        .m
        .send_request(now, by_id.clone(), Request::Ping)
        .unwrap();
    net.flush(a);
    net.run_idle();
    assert!(matches!(
        net.response(a, id),
        Some(Event::RequestFailed {
            reason: RequestFailure::NoPublicKey,
            ..
        })
    ));
    let rec = net.peers[b].record.clone();
    net.peers[a].m.learn_record(rec);
    let now = net.now;
    let id = net.peers[a]
        .m
        .send_request(now, by_id, Request::Ping)
        .unwrap();
    net.flush(a);
    net.run_idle();
    pong_of(&net, a, id);
    // By key only also works.
    let (mut net, a, b) = two();
    let by_key = Contact::from_key(*net.peers[b].key.public(), net.peers[b].addr);
    let now = net.now;
    let id = net.peers[a]
        .m
        .send_request(now, by_key, Request::Ping)
        .unwrap();
    net.flush(a);
    net.run_idle();
    pong_of(&net, a, id);
}

#[test]
fn the_session_cache_evicts_the_least_recently_used_session() {
    let mut net = Net::new();
    let mut config = SessionsConfig::default();
    config.max_sessions = 2;
    let a = net.add_at(1, "127.0.0.1:30301".parse().unwrap(), config);
    let others: Vec<usize> = (2..6).map(|i| net.add(i, 30300 + i as u16)).collect();
    for &o in &others {
        net.request(a, o, Request::Ping);
        net.run_idle();
        assert!(net.peers[a].m.session_count() <= 2);
    }
    assert!(!net.peers[a].m.has_session(&net.address(others[0])));
    assert!(net.peers[a].m.has_session(&net.address(others[3])));
    // An evicted peer is reached again through a new handshake.
    let id = net.request(a, others[0], Request::Ping);
    net.run_idle();
    pong_of(&net, a, id);
}

#[test]
fn a_request_too_large_for_any_packet_is_refused() {
    let (mut net, a, b) = two();
    let c = net.contact(b);
    let now = net.now;
    let r = net.peers[a].m.send_request(
        now,
        c,
        Request::TalkReq {
            protocol: b"x".to_vec(),
            request: vec![0; 1200],
        },
    );
    assert!(matches!(r, Err(SendError::TooLarge(_))));
}

#[test]
fn a_request_that_fits_an_ordinary_packet_but_not_a_handshake_fails_at_the_handshake() {
    let (mut net, a, b) = two();
    let id = net.request(
        a,
        b,
        Request::TalkReq {
            protocol: b"x".to_vec(),
            request: vec![0; 1100],
        },
    );
    net.run_idle();
    assert!(matches!(
        net.response(a, id),
        Some(Event::RequestFailed {
            reason: RequestFailure::TooLargeForHandshake,
            ..
        })
    ));
    // Under a session it goes through.
    net.request(a, b, Request::Ping);
    net.run_idle();
    let id = net.request(
        a,
        b,
        Request::TalkReq {
            protocol: b"x".to_vec(),
            request: vec![0; 1100],
        },
    );
    net.run_idle();
    assert!(matches!(
        net.response(a, id),
        Some(Event::Response { response: Response::TalkResp(r), .. }) if r.len() == 1100
    ));
}

#[test]
fn three_nodes_a_record_learnt_from_nodes_is_enough_to_reach_its_node() {
    // A asks B for the nodes at C's distance, then pings C with the record B returned, while
    // C pings B: three sessions, requests in flight to two nodes at once.
    let mut net = Net::new();
    let (a, b, c) = (net.add(1, 30301), net.add(2, 30302), net.add(3, 30303));
    net.request(b, c, Request::Ping);
    net.run_idle();
    let c_record = net.peers[c].record.clone();
    net.peers[b].nodes_answer = vec![c_record.clone()];
    let d = u64::from(net.id(b).log_distance(&net.id(c)));
    let find = net.request(a, b, Request::FindNode { distances: vec![d] });
    let ping_b = net.request(c, b, Request::Ping);
    net.run_idle();
    let found = match net.response(a, find) {
        Some(Event::Response {
            response: Response::Nodes(n),
            ..
        }) => n.records.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(found, vec![c_record]);
    pong_of(&net, c, ping_b);
    let contact = Contact::from_record(found[0].clone()).unwrap();
    let (now, to_b) = (net.now, net.contact(b));
    let ping_c = net.peers[a]
        .m
        .send_request(now, contact, Request::Ping)
        .unwrap();
    let ping_b = net.peers[a]
        .m
        .send_request(now, to_b, Request::Ping)
        .unwrap();
    assert_eq!(net.peers[a].m.active_request_count(), 2);
    net.flush(a);
    net.run_idle();
    pong_of(&net, a, ping_c);
    pong_of(&net, a, ping_b);
    for i in [a, b, c] {
        assert_eq!(net.peers[i].m.session_count(), 2, "node {i}");
    }
}

#[test]
fn our_request_ids_are_8_bytes_and_never_start_with_a_zero_byte() {
    // @chainsafe/discv5 11.0.0 echoes a request id as an integer, without its leading zero
    // bytes (ChainSafe/discv5#312): an id starting with 00 would never match its answer.
    // With 4,096 ids, a uniform draw has one starting with 00 in all but 1e-7 of runs.
    let mut net = Net::new();
    let mut config = SessionsConfig::default();
    config.max_requests = 4096;
    config.max_queued_requests_per_node = 4096;
    let a = net.add_at(1, "127.0.0.1:30301".parse().unwrap(), config);
    let b = net.add(2, 30302);
    for _ in 0..4096 {
        let id = net.request(a, b, Request::Ping);
        assert_eq!(id.as_bytes().len(), 8, "{id:?}");
        assert_ne!(id.as_bytes()[0], 0, "{id:?}");
    }
}
