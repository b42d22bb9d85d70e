//! The discv5 session layer in scenarios between in-memory machines under virtual time:
//! handshakes from either side and both at once, lost packets and retries, restarts, timeouts,
//! the repeated WHOAREYOU and its rate limit, sessions bound to addresses, forged and
//! malformed packets. Requests and their answers are in `discv5_session_requests.rs`.

mod discv5_support;

use std::time::Duration;

use devp2p_core::discv5::message::{Message, Ping, RequestId};
use devp2p_core::discv5::packet::{encode_random, flag, Packet, PacketKind};
use devp2p_core::discv5::sessions::REQUEST_TIMEOUT;
use devp2p_core::discv5::{
    Contact, Direction, DropReason, Event, NodeAddress, Request, RequestFailure, Response,
    SessionsConfig,
};
use devp2p_core::NodeSecretKey;
use discv5_support::{key, pong_of, record, two, Fate, Net, Scripted, Sent, LATENCY};

#[test]
fn a_ping_without_a_session_goes_through_a_handshake_and_gets_its_pong() {
    let (mut net, a, b) = two();
    let id = net.request(a, b, Request::Ping);
    net.run_idle();
    let pong = pong_of(&net, a, id);
    assert_eq!(pong.request_id, id);
    assert_eq!(pong.recipient_port, 30301);
    // random packet, WHOAREYOU, handshake, PONG: four datagrams.
    assert_eq!(net.log.len(), 4);
    assert_eq!(net.sent_by(a, flag::MESSAGE).len(), 1);
    assert_eq!(net.whoareyous_by(b).len(), 1);
    assert_eq!(net.sent_by(a, flag::HANDSHAKE).len(), 1);
    // B saw the handshake (with A's record: B knew none), A saw the PONG under the new keys.
    let rec_a = net.peers[a].record.clone();
    assert_eq!(
        net.established(b),
        vec![&Event::SessionEstablished {
            node: net.address(a),
            record: Some(rec_a),
            direction: Direction::Inbound
        }]
    );
    assert!(matches!(
        net.established(a)[..],
        [Event::SessionEstablished {
            direction: Direction::Outbound,
            record: Some(_),
            ..
        }]
    ));
    assert!(net.peers[a].m.has_session(&net.address(b)));
    assert!(net.peers[b].m.has_session(&net.address(a)));
}

#[test]
fn a_session_serves_later_requests_both_ways_without_another_handshake() {
    let (mut net, a, b) = two();
    net.request(a, b, Request::Ping);
    net.run_idle();
    let before = net.log.len();
    let from_a = net.request(
        a,
        b,
        Request::TalkReq {
            protocol: b"echo".to_vec(),
            request: b"hi".to_vec(),
        },
    );
    let from_b = net.request(b, a, Request::Ping);
    net.run_idle();
    assert!(matches!(
        net.response(a, from_a),
        Some(Event::Response { response: Response::TalkResp(r), .. }) if r == b"hi"
    ));
    pong_of(&net, b, from_b);
    // Two requests and two answers, all ordinary packets.
    assert_eq!(net.log.len() - before, 4);
    assert!(net.log[before..]
        .iter()
        .all(|s| net.flag_of(s) == Some(flag::MESSAGE)));
}

#[test]
fn both_ends_handshaking_at_once_converge_on_one_session() {
    let (mut net, a, b) = two();
    let ab = net.request(a, b, Request::Ping);
    let ba = net.request(b, a, Request::Ping);
    net.run_idle();
    pong_of(&net, a, ab);
    pong_of(&net, b, ba);
    // Both handshakes went through; afterwards every packet opens at the first try, in
    // either direction.
    for round in 0..3 {
        let x = net.request(a, b, Request::Ping);
        let y = net.request(b, a, Request::Ping);
        let before = net.log.len();
        net.run_idle();
        pong_of(&net, a, x);
        pong_of(&net, b, y);
        assert_eq!(
            net.log.len() - before,
            2,
            "round {round}: only the two PONGs"
        );
    }
    assert_eq!(net.whoareyous_by(a).len(), 1);
    assert_eq!(net.whoareyous_by(b).len(), 1);
}

#[test]
fn a_lost_whoareyou_is_recovered_by_the_retry_and_the_resent_challenge() {
    let (mut net, a, b) = two();
    let b_addr = net.peers[b].addr;
    let mut lost = false;
    net.filter = Some(Box::new(move |net: &Net, s: &Sent| {
        if !lost && s.from == b_addr && net.flag_of(s) == Some(flag::WHOAREYOU) {
            lost = true;
            return Fate::Lose;
        }
        Fate::Deliver
    }));
    let t0 = net.now;
    let id = net.request(a, b, Request::Ping);
    net.run_idle();
    pong_of(&net, a, id);
    // The retry's random packet drew the pending challenge again, byte for byte.
    let w = net.whoareyous_by(b);
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].bytes, w[1].bytes);
    assert!(w[1].at >= t0 + REQUEST_TIMEOUT);
    // The WHOAREYOU names A's first packet, which A still matched.
    let first = &net.sent_by(a, flag::MESSAGE)[0];
    let nonce = Packet::decode(&net.id(b), &first.bytes).unwrap().nonce();
    assert_eq!(
        Packet::decode(&net.id(a), &w[1].bytes).unwrap().nonce(),
        nonce
    );
}

#[test]
fn the_next_request_answers_a_repeated_challenge_that_names_its_failed_predecessor() {
    // No retries, as in geth: the first PING's WHOAREYOU is lost and it times out. The
    // queued second PING's random packet draws B's pending challenge again, which names the
    // first PING's packet; it is answered for the second PING.
    let mut net = Net::new();
    let mut config = SessionsConfig::default();
    config.request_retries = 0;
    let a = net.add_at(1, "127.0.0.1:30301".parse().unwrap(), config);
    let b = net.add(2, 30302);
    let b_addr = net.peers[b].addr;
    let mut lost = false;
    net.filter = Some(Box::new(move |net: &Net, s: &Sent| {
        if !lost && s.from == b_addr && net.flag_of(s) == Some(flag::WHOAREYOU) {
            lost = true;
            return Fate::Lose;
        }
        Fate::Deliver
    }));
    let first = net.request(a, b, Request::Ping);
    let second = net.request(a, b, Request::Ping);
    net.run_idle();
    assert!(matches!(
        net.response(a, first),
        Some(Event::RequestFailed {
            reason: RequestFailure::Timeout,
            ..
        })
    ));
    pong_of(&net, a, second);
    let w = net.whoareyous_by(b);
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].bytes, w[1].bytes);
}

#[test]
fn a_lost_handshake_packet_is_recovered_by_the_retry() {
    let (mut net, a, b) = two();
    let a_addr = net.peers[a].addr;
    let mut lost = false;
    net.filter = Some(Box::new(move |net: &Net, s: &Sent| {
        if !lost && s.from == a_addr && net.flag_of(s) == Some(flag::HANDSHAKE) {
            lost = true;
            return Fate::Lose;
        }
        Fate::Deliver
    }));
    let id = net.request(a, b, Request::Ping);
    net.run_idle();
    pong_of(&net, a, id);
    assert_eq!(net.sent_by(a, flag::HANDSHAKE).len(), 2);
}

#[test]
fn a_lost_response_is_recovered_by_the_retry_under_the_session() {
    let (mut net, a, b) = two();
    net.request(a, b, Request::Ping);
    net.run_idle();
    let b_addr = net.peers[b].addr;
    let mut lost = false;
    net.filter = Some(Box::new(move |_: &Net, s: &Sent| {
        if !lost && s.from == b_addr {
            lost = true;
            return Fate::Lose;
        }
        Fate::Deliver
    }));
    let id = net.request(a, b, Request::Ping);
    net.run_idle();
    pong_of(&net, a, id);
    // B answered both attempts; no handshake was needed.
    assert_eq!(net.sent_by(a, flag::HANDSHAKE).len(), 1);
}

#[test]
fn a_silent_peer_fails_the_request_after_every_attempt() {
    let (mut net, a, b) = two();
    net.peers[b].up = false;
    let t0 = net.now;
    let id = net.request(a, b, Request::Ping);
    net.run_idle();
    assert_eq!(
        net.response(a, id),
        Some(&Event::RequestFailed {
            id,
            to: net.address(b),
            reason: RequestFailure::Timeout
        })
    );
    // Two attempts of 700 ms each, both random packets.
    assert_eq!(net.sent_by(a, flag::MESSAGE).len(), 2);
    assert_eq!(net.log.len(), 2);
    assert_eq!(net.now, t0 + REQUEST_TIMEOUT * 2);
    assert_eq!(net.peers[a].m.request_count(), 0);
}

#[test]
fn without_retries_a_request_fails_after_one_timeout() {
    let mut net = Net::new();
    let mut config = SessionsConfig::default();
    config.request_retries = 0;
    let a = net.add_at(1, "127.0.0.1:30301".parse().unwrap(), config);
    let b = net.add(2, 30302);
    net.peers[b].answers = false;
    let t0 = net.now;
    let id = net.request(a, b, Request::Ping);
    net.run_idle();
    assert!(matches!(
        net.response(a, id),
        Some(Event::RequestFailed {
            reason: RequestFailure::Timeout,
            ..
        })
    ));
    // The handshake re-armed the timer when it went out, two latencies in.
    assert_eq!(net.now, t0 + LATENCY * 2 + REQUEST_TIMEOUT);
    // The handshake went through though: B holds the session.
    assert!(net.peers[b].m.has_session(&net.address(a)));
}

#[test]
fn a_peer_that_restarted_with_the_same_key_and_a_newer_record_handshakes_anew() {
    let (mut net, a, b) = two();
    net.request(a, b, Request::Ping);
    net.run_idle();
    // B restarts: same key, seq 2, no sessions. A's next PING cannot be opened.
    net.restart(b, 2, 2, SessionsConfig::default());
    let id = net.request(a, b, Request::Ping);
    net.run_idle();
    assert_eq!(pong_of(&net, a, id).enr_seq, 2);
    // B challenged A (seq 0: it knows nothing after the restart) and got A's record.
    assert_eq!(net.established(b).len(), 1);
    // Now B pings A: A's WHOAREYOU carries the seq of the record A knows (1), lower than
    // B's, so B's handshake carries its new record, which A reports.
    net.restart(a, 1, 1, SessionsConfig::default());
    let old_b = record(&key(2), net.peers[b].addr, 1);
    net.peers[a].m.learn_record(old_b);
    let id = net.request(b, a, Request::Ping);
    net.run_idle();
    pong_of(&net, b, id);
    let new_b = net.peers[b].record.clone();
    assert_eq!(
        net.established(a),
        vec![&Event::SessionEstablished {
            node: net.address(b),
            record: Some(new_b.clone()),
            direction: Direction::Inbound
        }]
    );
    assert_eq!(net.peers[a].m.known_record(&net.id(b)), Some(&new_b));
}

#[test]
fn a_known_peer_that_restarts_gets_the_old_session_replaced_by_its_handshake() {
    let (mut net, a, b) = two();
    net.request(a, b, Request::Ping);
    net.run_idle();
    // A restarts (same key and record) and pings B: B's session keys no longer match, so B
    // challenges, A handshakes, and B's session is replaced.
    net.restart(a, 1, 1, SessionsConfig::default());
    let id = net.request(a, b, Request::Ping);
    net.run_idle();
    pong_of(&net, a, id);
    assert_eq!(net.established(b).len(), 2);
    // The two ends agree from now on: a PING and its PONG.
    let before = net.log.len();
    let id = net.request(b, a, Request::Ping);
    net.run_idle();
    pong_of(&net, b, id);
    assert_eq!(net.log.len() - before, 2);
}

#[test]
fn a_peer_that_restarted_with_a_new_key_is_a_new_node() {
    let (mut net, a, b) = two();
    net.request(a, b, Request::Ping);
    net.run_idle();
    let old = net.address(b);
    net.restart(b, 77, 1, SessionsConfig::default());
    // A's request to the old id is unreadable to the new node (masked for the old id).
    let c = Contact::from_record_at(
        net.peers[a].m.known_record(&old.id).unwrap().clone(),
        old.addr,
    );
    let now = net.now;
    let id = net.peers[a].m.send_request(now, c, Request::Ping).unwrap();
    net.flush(a);
    net.run_idle();
    assert!(matches!(
        net.response(a, id),
        Some(Event::RequestFailed {
            reason: RequestFailure::Timeout,
            ..
        })
    ));
    assert!(net.peers[b].m.drop_count(DropReason::NotDiscv5) >= 1);
    // The new node is reached under its own id.
    let id = net.request(a, b, Request::Ping);
    net.run_idle();
    pong_of(&net, a, id);
}

#[test]
fn a_repeated_undecryptable_packet_gets_the_identical_whoareyou_until_it_expires() {
    let (mut net, _a, b) = two();
    let stranger = NodeSecretKey::from_bytes(&[0x11; 32]).unwrap();
    let from: std::net::SocketAddr = "127.0.0.9:4000".parse().unwrap();
    let random = |nonce: [u8; 12]| {
        let mut out = Vec::new();
        encode_random(
            &mut out,
            &net.id(b),
            &stranger.id(),
            &[nonce[0]; 16],
            &nonce,
            &[7; 20],
        )
        .unwrap();
        out
    };
    let (p1, p2) = (random([1; 12]), random([2; 12]));
    net.inject(b, from, &p1).unwrap();
    net.inject(b, from, &p2).unwrap();
    let w: Vec<_> = net.log.iter().filter(|s| s.to == from).collect();
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].bytes, w[1].bytes, "byte for byte the same");
    let p = Packet::decode(&stranger.id(), &w[0].bytes).unwrap();
    assert_eq!(p.nonce(), [1; 12], "naming the first packet");
    assert!(matches!(p.kind(), PacketKind::Whoareyou(w) if w.enr_seq == 0));
    assert_eq!(net.peers[b].m.pending_challenges(), 1);
    // After the challenge expires, a fresh one.
    net.run_for(Duration::from_millis(1_000));
    assert_eq!(net.peers[b].m.pending_challenges(), 0);
    net.inject(b, from, &p2).unwrap();
    let w: Vec<_> = net.log.iter().filter(|s| s.to == from).collect();
    assert_eq!(w.len(), 3);
    assert_ne!(w[2].bytes, w[0].bytes);
    assert_eq!(
        Packet::decode(&stranger.id(), &w[2].bytes).unwrap().nonce(),
        [2; 12]
    );
}

#[test]
fn whoareyous_to_one_ip_are_rate_limited_except_on_loopback() {
    let (mut net, _a, b) = two();
    let to = net.id(b);
    let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let mut answered = 0;
    // Many spoofed senders from one IP: a burst of 9, then one every 1/9 s.
    for i in 0..40u16 {
        let k = NodeSecretKey::from_bytes(&[(i + 1) as u8; 32]).unwrap();
        let mut out = Vec::new();
        encode_random(&mut out, &to, &k.id(), &[1; 16], &[i as u8; 12], &[0; 20]).unwrap();
        if net.inject(b, (ip, 1000 + i).into(), &out).is_ok() {
            answered += 1;
        }
    }
    assert_eq!(answered, 9);
    assert_eq!(net.peers[b].m.drop_count(DropReason::RateLimited), 31);
    net.run_for(Duration::from_millis(112));
    let k = NodeSecretKey::from_bytes(&[0x77; 32]).unwrap();
    let mut out = Vec::new();
    encode_random(&mut out, &to, &k.id(), &[1; 16], &[0x77; 12], &[0; 20]).unwrap();
    assert_eq!(net.inject(b, (ip, 999).into(), &out), Ok(()));
    // Another IP is not affected.
    assert_eq!(net.inject(b, "192.0.2.8:1".parse().unwrap(), &out), Ok(()));
    // Nor is loopback, which cannot be spoofed from outside.
    for i in 0..40u16 {
        let k = NodeSecretKey::from_bytes(&[(i + 100) as u8; 32]).unwrap();
        let mut out = Vec::new();
        encode_random(&mut out, &to, &k.id(), &[1; 16], &[i as u8; 12], &[0; 20]).unwrap();
        let from = std::net::SocketAddr::from(([127, 0, 0, 1], 2000 + i));
        assert_eq!(net.inject(b, from, &out), Ok(()));
    }
}

#[test]
fn a_whoareyou_for_an_unknown_nonce_or_from_elsewhere_is_ignored() {
    let (mut net, a, b) = two();
    let b_addr = net.peers[b].addr;
    // Keep B's WHOAREYOU from arriving; A's request stays in flight.
    net.filter = Some(Box::new(move |_: &Net, s: &Sent| {
        if s.from == b_addr {
            Fate::Lose
        } else {
            Fate::Deliver
        }
    }));
    net.request(a, b, Request::Ping);
    net.run_for(Duration::from_millis(10));
    let w = net.whoareyous_by(b)[0].bytes.clone();
    // From another address: ignored.
    assert_eq!(
        net.inject(a, "127.0.0.1:40000".parse().unwrap(), &w),
        Err(DropReason::UnknownChallenge)
    );
    // A WHOAREYOU naming a nonce A never used.
    let mut out = Vec::new();
    devp2p_core::discv5::encode_whoareyou(
        &mut out,
        &net.id(a),
        &[3; 16],
        &[9; 12],
        &devp2p_core::discv5::Whoareyou {
            id_nonce: [4; 16],
            enr_seq: 0,
        },
    );
    assert_eq!(
        net.inject(a, b_addr, &out),
        Err(DropReason::UnknownChallenge)
    );
    assert_eq!(net.sent_by(a, flag::HANDSHAKE).len(), 0);
    // The real one, twice: one handshake, the repeat ignored.
    assert_eq!(net.inject(a, b_addr, &w), Ok(()));
    assert_eq!(
        net.inject(a, b_addr, &w),
        Err(DropReason::RepeatedChallenge)
    );
    assert_eq!(net.sent_by(a, flag::HANDSHAKE).len(), 1);
}

#[test]
fn a_session_is_bound_to_the_address_it_was_made_from() {
    let (mut net, a, b) = two();
    net.request(a, b, Request::Ping);
    net.run_idle();
    // Replay A's last ordinary packet from another address: B cannot use the session there.
    let last = net.sent_by(a, flag::HANDSHAKE)[0].bytes.clone();
    let id = net.request(a, b, Request::Ping);
    let ping = net.log.last().unwrap().bytes.clone();
    net.run_idle();
    pong_of(&net, a, id);
    let elsewhere: std::net::SocketAddr = "127.0.0.5:30301".parse().unwrap();
    let before = net.log.len();
    net.inject(b, elsewhere, &ping).unwrap();
    assert_eq!(net.log.len(), before + 1);
    assert_eq!(net.flag_of(&net.log[before].clone()), None); // to an unknown node
    let w = Packet::decode(&net.id(a), &net.log[before].bytes).unwrap();
    assert_eq!(w.flag(), flag::WHOAREYOU);
    // A handshake replayed from its own address finds no challenge.
    assert_eq!(
        net.inject(b, net.peers[a].addr, &last),
        Err(DropReason::UnexpectedHandshake)
    );
}

#[test]
fn a_message_that_opens_but_does_not_decode_is_dropped_without_a_challenge() {
    let (mut net, _a, b) = two();
    let mut peer = Scripted::new(50, "127.0.0.50:30350".parse().unwrap());
    let ping = Message::Ping(Ping {
        request_id: RequestId::from_u64(1),
        enr_seq: 1,
    });
    let answer = peer.handshake(&mut net, b, &ping);
    // B answered the PING in the handshake under the new session.
    assert!(matches!(
        peer.open(&answer[0].bytes),
        Some(Message::Pong(_))
    ));
    let before = net.log.len();
    let to = net.id(b);
    // An empty PING, an unknown type, nothing at all, and a PING whose request id is 9 bytes
    // long (hive `PingLargeRequestID`: no answer of any kind).
    let long_id = [0x01, 0xcb, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x01];
    for junk in [&[0x01u8, 0xc0][..], &[0x09, 0xc1, 0x80], &[], &long_id] {
        let p = peer.seal(&to, junk);
        assert_eq!(net.inject(b, peer.addr, &p), Err(DropReason::BadMessage));
    }
    assert_eq!(net.log.len(), before, "no WHOAREYOU, no answer");
    // A valid message under the same session still works.
    let p = peer.seal(&to, &ping.to_vec());
    net.inject(b, peer.addr, &p).unwrap();
    assert!(matches!(
        peer.open(&net.log.last().unwrap().bytes),
        Some(Message::Pong(_))
    ));
    // A packet claiming to come from B itself is refused before any lookup.
    let me = net.id(b);
    let mut out = Vec::new();
    encode_random(&mut out, &me, &me, &[0; 16], &[0; 12], &[0; 20]).unwrap();
    assert_eq!(net.inject(b, peer.addr, &out), Err(DropReason::FromSelf));
    assert_eq!(
        net.inject(b, peer.addr, &[0u8; 40]),
        Err(DropReason::NotDiscv5)
    );
}

#[test]
fn a_forged_handshake_deletes_the_challenge() {
    let (mut net, _a, b) = two();
    let mut peer = Scripted::new(51, "127.0.0.51:30351".parse().unwrap());
    let to = net.id(b);
    let random = peer.random(&to);
    net.inject(b, peer.addr, &random).unwrap();
    assert_eq!(net.peers[b].m.pending_challenges(), 1);
    // A handshake signed over some other challenge.
    let ping = Message::Ping(Ping {
        request_id: RequestId::from_u64(1),
        enr_seq: 1,
    });
    let eph = secp256k1::SecretKey::from_secret_bytes([0x44; 32]).unwrap();
    let mut out = Vec::new();
    devp2p_core::discv5::encode_handshake(
        &mut out,
        &peer.key,
        net.peers[b].key.public(),
        &[0u8; 63],
        &eph,
        Some(&peer.record()),
        &[1; 16],
        &[2; 12],
        &ping,
    )
    .unwrap();
    assert_eq!(
        net.inject(b, peer.addr, &out),
        Err(DropReason::BadHandshake)
    );
    assert_eq!(net.peers[b].m.pending_challenges(), 0);
    assert_eq!(
        net.inject(b, peer.addr, &out),
        Err(DropReason::UnexpectedHandshake)
    );
    // A correct one after a new challenge succeeds.
    peer.handshake(&mut net, b, &ping);
    assert!(net.peers[b]
        .m
        .has_session(&NodeAddress::new(peer.key.id(), peer.addr)));
}

#[test]
fn a_session_from_one_address_is_not_used_from_another() {
    // hive `PingMultiIP`: one node id, one set of keys, two source addresses.
    let (mut net, _a, b) = two();
    let (addr1, addr2) = (
        "127.0.0.61:30361".parse().unwrap(),
        "127.0.0.62:30362".parse().unwrap(),
    );
    let mut peer = Scripted::new(60, addr1);
    let ping = Message::Ping(Ping {
        request_id: RequestId::from_u64(1),
        enr_seq: 1,
    });
    peer.handshake(&mut net, b, &ping);
    let to = net.id(b);
    // The session's keys from the second address: a WHOAREYOU, not a PONG.
    let sealed = peer.seal(&to, &ping.to_vec());
    net.inject(b, addr2, &sealed).unwrap();
    let last = net.log.last().unwrap().clone();
    assert_eq!(last.to, addr2);
    let p = Packet::decode(&peer.key.id(), &last.bytes).unwrap();
    assert_eq!(p.flag(), flag::WHOAREYOU);
    // A handshake from the second address: the PONG reports it.
    peer.addr = addr2;
    let answer = peer.handshake(&mut net, b, &ping);
    let Some(Message::Pong(pong)) = peer.open(&answer[0].bytes) else {
        panic!("no PONG");
    };
    assert_eq!(
        (pong.recipient_ip, pong.recipient_port),
        (Some(addr2.ip()), 30362)
    );
    // The second address's keys from the first: a WHOAREYOU again.
    let sealed = peer.seal(&to, &ping.to_vec());
    net.inject(b, addr1, &sealed).unwrap();
    let last = net.log.last().unwrap().clone();
    assert_eq!(last.to, addr1);
    assert_eq!(
        Packet::decode(&peer.key.id(), &last.bytes).unwrap().flag(),
        flag::WHOAREYOU
    );
    assert_eq!(net.peers[b].m.session_count(), 2);
}

#[test]
fn a_changed_local_record_goes_to_peers_that_hold_an_older_one() {
    let (mut net, a, b) = two();
    let addr = net.peers[a].addr;
    let newer = record(&net.peers[a].key, addr, 2);
    let foreign = record(&key(9), addr, 5);
    assert!(!net.peers[a].m.set_local_record(foreign));
    assert!(net.peers[a].m.set_local_record(newer.clone()));
    assert!(!net.peers[a].m.set_local_record(newer.clone()));
    // B knows A's seq-1 record: its WHOAREYOU says so, and A's handshake carries seq 2.
    let old = net.peers[a].record.clone();
    net.peers[b].m.learn_record(old);
    let id = net.request(a, b, Request::Ping);
    net.run_idle();
    pong_of(&net, a, id);
    assert!(matches!(
        net.established(b)[..],
        [Event::SessionEstablished { record: Some(r), .. }] if *r == newer
    ));
    // And its PINGs carry the new seq.
    assert!(net.peers[b].events.iter().any(|e| matches!(
        e,
        Event::Request { request: Message::Ping(p), .. } if p.enr_seq == 2
    )));
}

/// The last datagram sent to `to`.
fn last_to(net: &Net, to: std::net::SocketAddr) -> Vec<u8> {
    net.log
        .iter()
        .rev()
        .find(|s| s.to == to)
        .expect("a datagram")
        .bytes
        .clone()
}

#[test]
fn crossing_handshakes_answer_under_the_keys_a_peer_keeping_one_set_ends_with() {
    // geth and ChainSafe keep only the keys of the last handshake they handled. Both ends
    // handshake at once, and our WHOAREYOU leaves before our handshake: the peer answers
    // the WHOAREYOU first, then takes our handshake's keys. Our answer to the request in
    // its handshake must be readable under those (it was lost, and geth's PING with it).
    use devp2p_core::discv5::message::Pong;
    use devp2p_core::discv5::packet::{encode_handshake, encode_whoareyou, Whoareyou};
    let mut net = Net::new();
    let a = net.add(1, 30301);
    let mut peer = Scripted::new(7, "127.0.0.1:30399".parse().unwrap());
    let a_id = net.id(a);
    let contact = Contact::from_record(peer.record()).unwrap();
    let now = net.now;
    let ours = net.peers[a]
        .m
        .send_request(now, contact, Request::Ping)
        .unwrap();
    net.flush(a);
    let p_a = last_to(&net, peer.addr);
    // The peer's own first packet reaches us: we challenge it.
    let random = peer.random(&a_id);
    net.inject(a, peer.addr, &random).unwrap();
    let w_a = last_to(&net, peer.addr);
    // The peer challenges our first packet; our handshake goes out after our WHOAREYOU.
    let p_a_nonce = Packet::decode(&peer.key.id(), &p_a).unwrap().nonce();
    let mut w_b = Vec::new();
    let challenge = Whoareyou {
        id_nonce: [2; 16],
        enr_seq: 0,
    };
    let w_b_data = encode_whoareyou(&mut w_b, &a_id, &[1; 16], &p_a_nonce, &challenge);
    net.inject(a, peer.addr, &w_b).unwrap();
    let h_a = last_to(&net, peer.addr);
    let h_a_packet = Packet::decode(&peer.key.id(), &h_a).unwrap();
    assert_eq!(h_a_packet.flag(), flag::HANDSHAKE);
    // The peer answers our WHOAREYOU with its handshake, carrying its PING; we PONG.
    let w_a_packet = Packet::decode(&peer.key.id(), &w_a).unwrap();
    let ping = Message::Ping(Ping {
        request_id: RequestId::from_u64(0x77),
        enr_seq: 1,
    });
    let eph = secp256k1::SecretKey::from_secret_bytes([0x44; 32]).unwrap();
    let mut h_b = Vec::new();
    encode_handshake(
        &mut h_b,
        &peer.key,
        net.peers[a].key.public(),
        w_a_packet.header(),
        &eph,
        Some(&peer.record()),
        &[3; 16],
        &[0, 0, 0, 1, 9, 9, 9, 9, 9, 9, 9, 9],
        &ping,
    )
    .unwrap();
    net.inject(a, peer.addr, &h_b).unwrap();
    let pong = last_to(&net, peer.addr);
    // Then the peer takes our handshake, and those keys are the only ones it holds.
    let a_record = net.peers[a].record.clone();
    let accepted = h_a_packet
        .accept_handshake(&peer.key, &w_b_data, Some(&a_record))
        .unwrap();
    let answer = Packet::decode(&peer.key.id(), &pong)
        .unwrap()
        .open(&accepted.keys.read)
        .expect("our PONG opens under the keys the peer kept");
    match answer {
        Message::Pong(Pong { request_id, .. }) => {
            assert_eq!(request_id.as_bytes(), &[0, 0, 0, 0, 0, 0, 0, 0x77])
        }
        other => panic!("not a PONG: {other:?}"),
    }
    // Its PONG to our PING, under those keys, completes our request.
    peer.keys = Some(accepted.keys.clone());
    let pong_b = Message::Pong(Pong {
        request_id: ours,
        enr_seq: 1,
        recipient_ip: Some(net.peers[a].addr.ip()),
        recipient_port: net.peers[a].addr.port(),
    });
    let sealed = peer.seal(&a_id, &pong_b.to_vec());
    net.inject(a, peer.addr, &sealed).unwrap();
    assert_eq!(pong_of(&net, a, ours).request_id, ours);
}

#[test]
fn a_request_while_our_whoareyou_is_pending_waits_for_the_peers_handshake() {
    // B pings A; A's WHOAREYOU is on its way when A's application pings B. A holds its PING
    // back and sends it under the session B's handshake makes: no random packet crosses
    // B's handshake, so B never challenges A and one handshake serves both requests (sigp
    // drops its fresh session on such a crossing packet, and our answer with it).
    let (mut net, a, b) = two();
    let ba = net.request(b, a, Request::Ping);
    net.run_for(LATENCY);
    assert_eq!(
        net.whoareyous_by(a).len(),
        1,
        "A challenged B's first packet"
    );
    let ab = net.request(a, b, Request::Ping);
    assert_eq!(
        net.sent_by(a, flag::MESSAGE).len(),
        0,
        "A's PING waits for B's handshake"
    );
    net.run_idle();
    pong_of(&net, a, ab);
    pong_of(&net, b, ba);
    assert_eq!(net.whoareyous_by(b).len(), 0, "B never challenged A");
    assert_eq!(net.sent_by(a, flag::HANDSHAKE).len(), 0);
    assert_eq!(net.sent_by(b, flag::HANDSHAKE).len(), 1);
    // A's PING and its PONG to B, both under B's handshake's session.
    assert_eq!(net.sent_by(a, flag::MESSAGE).len(), 2);
}

#[test]
fn a_held_request_goes_out_when_the_peers_handshake_never_comes() {
    // As above, but B's handshake is lost: A's PING goes out when its WHOAREYOU expires
    // (at most 1 s) and is answered through a handshake of its own.
    let (mut net, a, b) = two();
    let b_addr = net.peers[b].addr;
    let mut lost = false;
    net.filter = Some(Box::new(move |net: &Net, s: &Sent| {
        if !lost && s.from == b_addr && net.flag_of(s) == Some(flag::HANDSHAKE) {
            lost = true;
            return Fate::Lose;
        }
        Fate::Deliver
    }));
    let _ba = net.request(b, a, Request::Ping);
    net.run_for(LATENCY);
    let t0 = net.now;
    let ab = net.request(a, b, Request::Ping);
    net.run_idle();
    pong_of(&net, a, ab);
    let first = net.sent_by(a, flag::MESSAGE)[0].at;
    assert!(first > t0, "held back");
    assert!(
        first <= t0 + Duration::from_secs(1),
        "at most until the WHOAREYOU expires"
    );
}
