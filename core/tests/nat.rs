//! Port mapping as geth's server does it (DNSDISC_NAT.md §B.4), scenario by scenario under
//! virtual time: a scripted gateway answers the machine's requests, and the tests check the
//! schedule, the ports asked for, the reports, and what the node advertises.

use std::net::IpAddr;
use std::time::Duration;

use devp2p_core::nat::{
    GatewayError, Granted, Nat, NatEvent, Outcome, PortMapper, PortMappingConfig, Protocol,
    Request, RequestId, EXTERNAL_IP_INTERVAL, MAX_REFRESH_FAILURES, REFRESH_INTERVAL,
    RETRY_INTERVAL, TCP_DESCRIPTION, UDP_DESCRIPTION,
};
use devp2p_core::node::{Node, NodeConfig, NodeEvent};
use devp2p_core::{Instant, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const EXT: [u8; 4] = [45, 45, 45, 45];

fn at(d: Duration) -> Instant {
    Instant::ZERO + d
}

fn mapper(ports: &[(Protocol, u16)]) -> PortMapper {
    PortMapper::new(PortMappingConfig::default(), Instant::ZERO, ports)
}

fn fail(s: &str) -> GatewayError {
    GatewayError(s.into())
}

fn granted(port: u16) -> Outcome {
    Outcome::Mapped(Ok(Granted {
        port,
        lifetime: None,
    }))
}

fn events(m: &mut PortMapper) -> Vec<NatEvent> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

/// The next request at `now`, which must exist.
fn next(m: &mut PortMapper, now: Instant) -> (RequestId, Request) {
    m.poll_request(now)
        .unwrap_or_else(|| panic!("a request due at {now:?}; next at {:?}", m.poll_timeout()))
}

fn map_of(r: &Request) -> (Protocol, u16, u16) {
    match r {
        Request::Map {
            protocol,
            internal_port,
            external_port,
            ..
        } => (*protocol, *internal_port, *external_port),
        other => panic!("expected a mapping request, got {other:?}"),
    }
}

/// Answers the start-up round: the IP, then TCP and UDP (those configured) granted as `tcp`
/// and `udp`.
fn start(m: &mut PortMapper, tcp: u16, udp: u16) {
    let (id, r) = next(m, Instant::ZERO);
    assert_eq!(r, Request::ExternalIp);
    m.handle_outcome(Instant::ZERO, id, Outcome::ExternalIp(Ok(EXT.into())));
    while let Some((id, r)) = m.poll_request(Instant::ZERO) {
        let port = match map_of(&r).0 {
            Protocol::Tcp => tcp,
            Protocol::Udp => udp,
        };
        m.handle_outcome(Instant::ZERO, id, granted(port));
    }
}

#[test]
fn a_fresh_mapper_asks_the_ip_then_maps_tcp_and_udp_on_their_own_ports_with_geths_lease() {
    let mut m = mapper(&[(Protocol::Tcp, 30303), (Protocol::Udp, 30303)]);
    let (id, r) = next(&mut m, Instant::ZERO);
    assert_eq!(r, Request::ExternalIp);
    assert_eq!(m.poll_request(Instant::ZERO), None, "one request at a time");
    assert_eq!(m.poll_timeout(), None, "waiting for the outcome");
    m.handle_outcome(Instant::ZERO, id, Outcome::ExternalIp(Ok(EXT.into())));
    let (id, r) = next(&mut m, Instant::ZERO);
    assert_eq!(
        r,
        Request::Map {
            protocol: Protocol::Tcp,
            internal_port: 30303,
            external_port: 30303,
            lifetime: Duration::from_secs(600),
            description: TCP_DESCRIPTION,
        }
    );
    m.handle_outcome(Instant::ZERO, id, granted(30303));
    let (id, r) = next(&mut m, Instant::ZERO);
    assert!(
        matches!(r, Request::Map { protocol: Protocol::Udp, description, .. } if description == UDP_DESCRIPTION)
    );
    m.handle_outcome(Instant::ZERO, id, granted(30303));
    assert_eq!(
        events(&mut m),
        [
            NatEvent::ExternalIp { ip: EXT.into() },
            NatEvent::Mapped {
                protocol: Protocol::Tcp,
                internal_port: 30303,
                external_port: 30303
            },
            NatEvent::Mapped {
                protocol: Protocol::Udp,
                internal_port: 30303,
                external_port: 30303
            },
        ]
    );
    assert_eq!(m.poll_request(Instant::ZERO), None);
    assert_eq!(m.poll_timeout(), Some(at(EXTERNAL_IP_INTERVAL)));
}

#[test]
fn the_ip_is_asked_every_two_minutes_and_an_unchanged_one_renews_nothing() {
    let mut m = mapper(&[(Protocol::Tcp, 30303)]);
    let (id, _) = next(&mut m, Instant::ZERO);
    m.handle_outcome(Instant::ZERO, id, Outcome::ExternalIp(Ok(EXT.into())));
    let (id, _) = next(&mut m, Instant::ZERO);
    m.handle_outcome(Instant::ZERO, id, granted(30303));
    events(&mut m);
    for k in 1..=3u32 {
        let now = at(EXTERNAL_IP_INTERVAL * k);
        assert_eq!(
            m.poll_request(now.checked_sub(Duration::from_millis(1)).unwrap()),
            None
        );
        let (id, r) = next(&mut m, now);
        assert_eq!(r, Request::ExternalIp);
        m.handle_outcome(now, id, Outcome::ExternalIp(Ok(EXT.into())));
        assert_eq!(
            m.poll_request(now),
            None,
            "same IP: no renewal at {k}×2 min"
        );
    }
    assert!(events(&mut m).is_empty(), "nothing changed");
}

#[test]
fn a_granted_mapping_is_renewed_after_eight_minutes_asking_for_the_port_it_holds() {
    let mut m = mapper(&[(Protocol::Tcp, 30303)]);
    let (id, _) = next(&mut m, Instant::ZERO);
    m.handle_outcome(Instant::ZERO, id, Outcome::ExternalIp(Ok(EXT.into())));
    let (id, _) = next(&mut m, Instant::ZERO);
    // The router forwards another port (geth #26359 accepts it).
    m.handle_outcome(Instant::ZERO, id, granted(41000));
    let mut now;
    let renewal = loop {
        now = m.poll_timeout().unwrap();
        let (id, r) = next(&mut m, now);
        match r {
            Request::ExternalIp => m.handle_outcome(now, id, Outcome::ExternalIp(Ok(EXT.into()))),
            r => break (id, map_of(&r)),
        }
    };
    assert_eq!(
        now,
        at(REFRESH_INTERVAL),
        "renewed at 8 of the lease's 10 minutes"
    );
    assert_eq!(
        renewal.1,
        (Protocol::Tcp, 30303, 41000),
        "it sticks to the granted port"
    );
    m.handle_outcome(now, renewal.0, granted(41000));
    assert_eq!(
        events(&mut m),
        [
            NatEvent::ExternalIp { ip: EXT.into() },
            NatEvent::Mapped {
                protocol: Protocol::Tcp,
                internal_port: 30303,
                external_port: 41000
            }
        ],
        "a renewal on the same port reports nothing"
    );
}

#[test]
fn a_shorter_lease_from_the_gateway_is_renewed_at_the_same_share_of_it_and_never_in_a_loop() {
    let config = PortMappingConfig::default();
    for (lease, renew_after) in [
        (Duration::from_secs(300), Duration::from_secs(240)),
        (Duration::from_secs(1200), REFRESH_INTERVAL),
        (Duration::ZERO, Duration::from_secs(1)),
    ] {
        let mut m = PortMapper::new(config, Instant::ZERO, &[(Protocol::Udp, 9)]);
        let (id, _) = next(&mut m, Instant::ZERO);
        m.handle_outcome(Instant::ZERO, id, Outcome::ExternalIp(Ok(EXT.into())));
        let (id, _) = next(&mut m, Instant::ZERO);
        let g = Granted {
            port: 9,
            lifetime: Some(lease),
        };
        m.handle_outcome(Instant::ZERO, id, Outcome::Mapped(Ok(g)));
        let due = m.poll_timeout().unwrap();
        assert_eq!(
            due,
            at(renew_after.min(EXTERNAL_IP_INTERVAL)),
            "lease {lease:?}"
        );
        if renew_after < EXTERNAL_IP_INTERVAL {
            assert!(matches!(next(&mut m, due).1, Request::Map { .. }));
        }
    }
}

#[test]
fn a_mapping_never_granted_is_retried_every_five_minutes_and_each_failure_is_counted() {
    let mut m = mapper(&[(Protocol::Tcp, 30303)]);
    let (id, _) = next(&mut m, Instant::ZERO);
    m.handle_outcome(Instant::ZERO, id, Outcome::ExternalIp(Ok(EXT.into())));
    events(&mut m);
    let mut now = Instant::ZERO;
    for failures in 1..=3 {
        // An IP check due at the same time goes first.
        let (id, r) = loop {
            let (id, r) = next(&mut m, now);
            if r != Request::ExternalIp {
                break (id, r);
            }
            m.handle_outcome(now, id, Outcome::ExternalIp(Ok(EXT.into())));
        };
        assert_eq!(map_of(&r), (Protocol::Tcp, 30303, 30303));
        m.handle_outcome(
            now,
            id,
            Outcome::Mapped(Err(fail("ConflictInMappingEntry"))),
        );
        assert_eq!(
            events(&mut m),
            [NatEvent::MappingFailed {
                protocol: Protocol::Tcp,
                internal_port: 30303,
                error: fail("ConflictInMappingEntry"),
                failures
            }]
        );
        let retry = now + RETRY_INTERVAL;
        // The IP checks in between renew the mapping only when the IP changes.
        loop {
            now = m.poll_timeout().unwrap();
            if now >= retry {
                break;
            }
            let (id, r) = next(&mut m, now);
            assert_eq!(r, Request::ExternalIp);
            m.handle_outcome(now, id, Outcome::ExternalIp(Ok(EXT.into())));
        }
        assert_eq!(now, retry);
    }
    assert_eq!(m.external_port(Protocol::Tcp), None);
}

#[test]
fn failed_renewals_keep_the_port_until_more_than_five_then_it_is_deleted_and_forgotten() {
    let mut m = mapper(&[(Protocol::Tcp, 30303), (Protocol::Udp, 30303)]);
    start(&mut m, 41000, 30303);
    events(&mut m);
    let mut now;
    let mut tcp_failures = 0;
    loop {
        now = m.poll_timeout().unwrap();
        let (id, r) = next(&mut m, now);
        match r {
            Request::ExternalIp => m.handle_outcome(now, id, Outcome::ExternalIp(Ok(EXT.into()))),
            Request::Map {
                protocol: Protocol::Udp,
                ..
            } => m.handle_outcome(now, id, granted(30303)),
            Request::Map {
                protocol: Protocol::Tcp,
                external_port,
                ..
            } => {
                tcp_failures += 1;
                assert_eq!(external_port, 41000, "still asking for the port held");
                m.handle_outcome(now, id, Outcome::Mapped(Err(fail("timeout"))));
                if tcp_failures <= MAX_REFRESH_FAILURES {
                    assert_eq!(m.external_port(Protocol::Tcp), Some(41000));
                } else {
                    break;
                }
            }
            Request::Unmap { .. } => panic!("nothing to delete yet"),
        }
    }
    assert_eq!(tcp_failures, MAX_REFRESH_FAILURES + 1);
    assert_eq!(m.external_port(Protocol::Tcp), None);
    let reported = events(&mut m);
    assert!(reported.contains(&NatEvent::MappingAbandoned {
        protocol: Protocol::Tcp,
        internal_port: 30303,
        external_port: 41000
    }));
    // The deletion goes first, at once; the next request asks for the internal port again.
    let (id, r) = next(&mut m, now);
    assert_eq!(
        r,
        Request::Unmap {
            protocol: Protocol::Tcp,
            internal_port: 30303,
            external_port: 41000
        }
    );
    m.handle_outcome(now, id, Outcome::Unmapped(Err(fail("no such entry"))));
    let now = now + RETRY_INTERVAL;
    let r = loop {
        let (id, r) = next(&mut m, now);
        match r {
            Request::ExternalIp => m.handle_outcome(now, id, Outcome::ExternalIp(Ok(EXT.into()))),
            r => break r,
        }
    };
    assert_eq!(map_of(&r), (Protocol::Tcp, 30303, 30303));
}

#[test]
fn a_new_external_ip_or_a_failed_check_renews_every_mapping_at_once() {
    let mut m = mapper(&[(Protocol::Tcp, 30303), (Protocol::Udp, 30303)]);
    start(&mut m, 30303, 30303);
    events(&mut m);
    let now = at(EXTERNAL_IP_INTERVAL);
    let (id, _) = next(&mut m, now);
    m.handle_outcome(now, id, Outcome::ExternalIp(Ok([46, 46, 46, 46].into())));
    assert_eq!(map_of(&next(&mut m, now).1).0, Protocol::Tcp);
    assert_eq!(m.external_ip(), Some([46, 46, 46, 46].into()));
    let mut m = mapper(&[(Protocol::Tcp, 30303)]);
    start(&mut m, 30303, 30303);
    events(&mut m);
    let (id, _) = next(&mut m, now);
    m.handle_outcome(now, id, Outcome::ExternalIp(Err(fail("SOAP timeout"))));
    assert_eq!(
        map_of(&next(&mut m, now).1).0,
        Protocol::Tcp,
        "geth renews on failure too"
    );
    assert_eq!(m.external_ip(), Some(EXT.into()), "the last IP stays");
    assert_eq!(
        events(&mut m),
        [NatEvent::ExternalIpFailed {
            error: fail("SOAP timeout"),
            failures: 1
        }]
    );
}

#[test]
fn a_gateway_reporting_an_unreachable_ip_or_port_zero_is_a_failure_not_an_address() {
    for bad in [
        "0.0.0.0",
        "127.0.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "::",
        "::ffff:127.0.0.1",
    ] {
        let mut m = mapper(&[(Protocol::Tcp, 30303)]);
        let (id, _) = next(&mut m, Instant::ZERO);
        let ip: IpAddr = bad.parse().unwrap();
        m.handle_outcome(Instant::ZERO, id, Outcome::ExternalIp(Ok(ip)));
        assert_eq!(m.external_ip(), None, "{bad}");
        assert!(
            matches!(events(&mut m)[..], [NatEvent::ExternalIpFailed { .. }]),
            "{bad}"
        );
    }
    // Behind a second NAT the first router's view is all there is: taken, as geth does.
    let mut m = mapper(&[(Protocol::Tcp, 30303)]);
    let (id, _) = next(&mut m, Instant::ZERO);
    m.handle_outcome(
        Instant::ZERO,
        id,
        Outcome::ExternalIp(Ok([100, 64, 0, 9].into())),
    );
    assert_eq!(m.external_ip(), Some([100, 64, 0, 9].into()));
    let (id, _) = next(&mut m, Instant::ZERO);
    m.handle_outcome(Instant::ZERO, id, granted(0));
    assert_eq!(m.external_port(Protocol::Tcp), None);
    assert!(matches!(
        events(&mut m)[..],
        [NatEvent::ExternalIp { .. }, NatEvent::MappingFailed { .. }]
    ));
}

#[test]
fn outcomes_for_other_requests_or_of_the_wrong_kind_are_ignored() {
    let mut m = mapper(&[(Protocol::Tcp, 30303)]);
    let (id, _) = next(&mut m, Instant::ZERO);
    m.handle_outcome(
        Instant::ZERO,
        RequestId(id.0 + 7),
        Outcome::ExternalIp(Ok(EXT.into())),
    );
    m.handle_outcome(Instant::ZERO, id, granted(30303));
    assert!(m.is_waiting(), "still waiting for the IP");
    assert_eq!(m.external_ip(), None);
    m.handle_outcome(Instant::ZERO, id, Outcome::ExternalIp(Ok(EXT.into())));
    assert!(!m.is_waiting());
    m.handle_outcome(
        Instant::ZERO,
        id,
        Outcome::ExternalIp(Ok([9, 9, 9, 9].into())),
    );
    assert_eq!(m.external_ip(), Some(EXT.into()), "answered already");
}

#[test]
fn stopping_deletes_every_granted_mapping_including_one_granted_while_stopping() {
    let mut m = mapper(&[(Protocol::Tcp, 30303), (Protocol::Udp, 30303)]);
    let (id, _) = next(&mut m, Instant::ZERO);
    m.handle_outcome(Instant::ZERO, id, Outcome::ExternalIp(Ok(EXT.into())));
    let (id, _) = next(&mut m, Instant::ZERO);
    m.handle_outcome(Instant::ZERO, id, granted(41000));
    // The UDP request is out when the node stops.
    let (udp, _) = next(&mut m, Instant::ZERO);
    m.stop();
    assert!(!m.is_stopped());
    m.handle_outcome(Instant::ZERO, udp, granted(30303));
    let mut deleted = Vec::new();
    while let Some((id, r)) = m.poll_request(Instant::ZERO) {
        match r {
            Request::Unmap {
                protocol,
                external_port,
                ..
            } => deleted.push((protocol, external_port)),
            other => panic!("only deletions while stopping, got {other:?}"),
        }
        m.handle_outcome(Instant::ZERO, id, Outcome::Unmapped(Ok(())));
    }
    assert_eq!(deleted, [(Protocol::Tcp, 41000), (Protocol::Udp, 30303)]);
    assert!(m.is_stopped());
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(m.poll_request(at(Duration::from_secs(3600))), None);
}

// ---- the node ---------------------------------------------------------------------------

fn node(listen: &str, nat: Nat, discovery: bool) -> Node<ChaCha20Rng> {
    let mut config = NodeConfig::default();
    config.listen = listen.parse().unwrap();
    config.nat = nat;
    config.no_discovery = !discovery;
    config.enr_seq = Some(100);
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let key = NodeSecretKey::generate(&mut rng);
    Node::new(key, config, rng, Instant::ZERO, 1_800_000_000)
}

fn nat_events(n: &mut Node<ChaCha20Rng>) -> Vec<NatEvent> {
    std::iter::from_fn(|| n.poll_event())
        .filter_map(|e| match e {
            NodeEvent::Nat(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn a_node_on_a_lan_or_loopback_address_maps_nothing_and_says_why() {
    for listen in [
        "192.168.1.10:30303",
        "127.0.0.1:30303",
        "10.0.0.2:30303",
        "[fd00::1]:30303",
    ] {
        let mut n = node(listen, Nat::Any, true);
        assert!(n.port_mapper().is_none(), "{listen}");
        assert!(n.poll_nat_request().is_none());
        assert!(n.is_port_mapping_stopped());
        let ip = listen.parse::<std::net::SocketAddr>().unwrap().ip();
        assert_eq!(
            nat_events(&mut n),
            [NatEvent::MappingDisabled { listen: ip }]
        );
    }
    let mut n = node("0.0.0.0:30303", Nat::None, true);
    assert!(n.port_mapper().is_none() && nat_events(&mut n).is_empty());
}

#[test]
fn extip_is_advertised_at_once_and_asks_no_gateway() {
    let mut n = node("0.0.0.0:30303", Nat::ExtIp([203, 0, 113, 7].into()), true);
    assert!(n.poll_nat_request().is_none());
    assert_eq!(n.local_enr().unwrap().ip4(), Some([203, 0, 113, 7].into()));
    assert_eq!(n.local_enode().ip(), Some([203, 0, 113, 7].into()));
}

#[test]
fn a_node_advertises_the_gateways_ip_and_granted_ports_in_a_record_signed_anew_for_each() {
    let mut n = node("0.0.0.0:30303", Nat::Upnp, true);
    assert_eq!(n.local_enr().unwrap().ip4(), Some([127, 0, 0, 1].into()));
    assert_eq!(n.local_enr().unwrap().seq(), 100);
    let mut now = Instant::ZERO;
    let mut asked = Vec::new();
    while let Some((id, r)) = n.poll_nat_request() {
        let outcome = match &r {
            Request::ExternalIp => Outcome::ExternalIp(Ok(EXT.into())),
            Request::Map {
                protocol: Protocol::Tcp,
                ..
            } => granted(41000),
            Request::Map { .. } => granted(41001),
            Request::Unmap { .. } => unreachable!(),
        };
        asked.push(r);
        now += Duration::from_millis(5);
        n.handle_nat_response(now, id, outcome);
    }
    assert_eq!(asked.len(), 3, "IP, TCP, UDP: {asked:?}");
    let r = n.local_enr().unwrap();
    assert_eq!(r.ip4(), Some(EXT.into()));
    assert_eq!((r.tcp4(), r.udp4()), (Some(41000), Some(41001)));
    assert_eq!(r.seq(), 103, "one re-signing per change");
    assert_eq!(
        devp2p_core::Enr::decode(r.as_bytes()).as_ref(),
        Ok(r),
        "signed with our key"
    );
    assert_eq!(
        n.local_enode().to_string().rsplit('@').next(),
        Some("45.45.45.45:41000?discport=41001")
    );
    assert_eq!(nat_events(&mut n).len(), 3);
    // Shutdown deletes both mappings.
    n.stop_port_mapping();
    let mut deleted = 0;
    while let Some((id, r)) = n.poll_nat_request() {
        assert!(matches!(r, Request::Unmap { .. }));
        deleted += 1;
        n.handle_nat_response(now, id, Outcome::Unmapped(Ok(())));
    }
    assert_eq!(deleted, 2);
    assert!(n.is_port_mapping_stopped());
    assert_eq!(
        n.local_enr().unwrap().seq(),
        103,
        "stopping changes no record"
    );
}

#[test]
fn without_discovery_only_the_tcp_port_is_mapped_and_the_enode_carries_it() {
    let mut n = node("0.0.0.0:30303", Nat::Pmp(None), false);
    let mut protocols = Vec::new();
    while let Some((id, r)) = n.poll_nat_request() {
        let outcome = match &r {
            Request::ExternalIp => Outcome::ExternalIp(Ok(EXT.into())),
            Request::Map { protocol, .. } => {
                protocols.push(*protocol);
                granted(30309)
            }
            Request::Unmap { .. } => unreachable!(),
        };
        n.handle_nat_response(Instant::ZERO, id, outcome);
    }
    assert_eq!(protocols, [Protocol::Tcp]);
    assert!(n.local_enr().is_none());
    assert_eq!(n.local_enode().tcp_port, 30309);
    assert_eq!(n.local_enode().udp_port, 30303);
}

#[test]
fn the_nodes_timer_wakes_it_for_the_next_mapping_request() {
    let mut n = node("0.0.0.0:30303", Nat::Any, false);
    while let Some((id, r)) = n.poll_nat_request() {
        let outcome = match r {
            Request::ExternalIp => Outcome::ExternalIp(Ok(EXT.into())),
            _ => granted(30303),
        };
        n.handle_nat_response(Instant::ZERO, id, outcome);
    }
    assert_eq!(n.poll_timeout(), Some(at(EXTERNAL_IP_INTERVAL)));
    n.handle_timeout(at(EXTERNAL_IP_INTERVAL), 1_800_000_120);
    assert!(matches!(
        n.poll_nat_request(),
        Some((_, Request::ExternalIp))
    ));
}
