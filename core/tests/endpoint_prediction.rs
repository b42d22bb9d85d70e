//! Endpoint prediction against `vectors/endpoint_prediction.json` (geth's IPTracker tests),
//! plus the bounds and the deterministic tie-break we add.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use devp2p_core::endpoint::{IpTracker, MAX_TRACKED_HOSTS};
use devp2p_core::Instant;
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors/endpoint_prediction.json")).unwrap()
}

#[test]
fn every_iptracker_scenario_of_geths_tests() {
    let v = vectors();
    let cfg = &v["iptracker"]["config"];
    let ms = |x: &Value| Duration::from_millis(x.as_u64().unwrap());
    let scenarios = v["iptracker"]["scenarios"].as_object().unwrap();
    assert_eq!(scenarios.len(), 4);
    for (name, ops) in scenarios {
        let mut t = IpTracker::new(
            ms(&cfg["window_ms"]),
            ms(&cfg["contact_window_ms"]),
            cfg["min_statements"].as_u64().unwrap() as usize,
        );
        for (i, op) in ops.as_array().unwrap().iter().enumerate() {
            let now = Instant::from_millis(op["time_ms"].as_u64().unwrap());
            let host = |k: &str| op[k].as_str().unwrap().parse::<IpAddr>().unwrap();
            match op["op"].as_str().unwrap() {
                "statement" => t.add_statement(
                    now,
                    host("from_host"),
                    op["endpoint"].as_str().unwrap().parse().unwrap(),
                ),
                "contact" => t.add_contact(now, host("host")),
                "predict" => {
                    let want: Option<SocketAddr> =
                        op["expect"].as_str().map(|e| e.parse().unwrap());
                    assert_eq!(t.predict_endpoint(now), want, "{name} step {i}");
                }
                "check_full_cone" => assert_eq!(
                    t.predict_full_cone_nat(now),
                    op["expect"].as_bool().unwrap(),
                    "{name} step {i}"
                ),
                other => panic!("unknown op {other}"),
            }
        }
    }
}

#[test]
fn geths_production_settings_are_the_defaults() {
    let v = vectors();
    let p = &v["iptracker"]["production_config_geth_localnode"];
    assert_eq!(
        devp2p_core::endpoint::STATEMENT_WINDOW.as_millis() as u64,
        p["window_ms"].as_u64().unwrap()
    );
    assert_eq!(
        devp2p_core::endpoint::CONTACT_WINDOW.as_millis() as u64,
        p["contact_window_ms"].as_u64().unwrap()
    );
    assert_eq!(
        devp2p_core::endpoint::MIN_STATEMENTS as u64,
        p["min_statements"].as_u64().unwrap()
    );
    // Nine hosts are not enough, the tenth is (geth TestLocalNodeEndpoint).
    let mut t = IpTracker::default();
    let ep: SocketAddr = "127.0.1.2:81".parse().unwrap();
    for h in 1..=9u8 {
        t.add_statement(Instant::ZERO, [10, 0, 0, h].into(), ep);
        assert_eq!(t.predict_endpoint(Instant::ZERO), None);
    }
    t.add_statement(Instant::ZERO, [10, 0, 0, 10].into(), ep);
    assert_eq!(t.predict_endpoint(Instant::ZERO), Some(ep));
}

#[test]
fn ties_keep_the_last_prediction_and_otherwise_take_the_smallest() {
    let mut t = IpTracker::new(Duration::from_secs(60), Duration::from_secs(60), 2);
    let a: SocketAddr = "192.0.2.9:30303".parse().unwrap();
    let b: SocketAddr = "192.0.2.1:30303".parse().unwrap();
    t.add_statement(Instant::ZERO, [10, 0, 0, 1].into(), a);
    t.add_statement(Instant::ZERO, [10, 0, 0, 2].into(), a);
    assert_eq!(t.predict_endpoint(Instant::ZERO), Some(a));
    t.add_statement(Instant::ZERO, [10, 0, 0, 3].into(), b);
    t.add_statement(Instant::ZERO, [10, 0, 0, 4].into(), b);
    // 2 against 2: the prediction stays.
    assert_eq!(t.predict_endpoint(Instant::ZERO), Some(a));
    let mut fresh = IpTracker::new(Duration::from_secs(60), Duration::from_secs(60), 2);
    for (h, e) in [(1, a), (2, a), (3, b), (4, b)] {
        fresh.add_statement(Instant::ZERO, [10, 0, 0, h].into(), e);
    }
    assert_eq!(
        fresh.predict_endpoint(Instant::ZERO),
        Some(b),
        "the smaller endpoint"
    );
}

#[test]
fn a_flood_of_reporting_hosts_stays_bounded_and_keeps_the_newest() {
    let mut t = IpTracker::new(Duration::from_secs(600), Duration::from_secs(600), 3);
    let spoofed: SocketAddr = "198.51.100.1:1".parse().unwrap();
    for i in 0..(MAX_TRACKED_HOSTS as u32 + 500) {
        let host = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000u32 + i));
        t.add_statement(Instant::from_millis(u64::from(i)), host, spoofed);
    }
    assert_eq!(t.statement_count(), MAX_TRACKED_HOSTS);
    let honest: SocketAddr = "203.0.113.5:30303".parse().unwrap();
    for h in 1..=3u8 {
        t.add_statement(Instant::from_millis(10_000), [172, 16, 0, h].into(), honest);
    }
    assert_eq!(t.statement_count(), MAX_TRACKED_HOSTS);
    // Still the flood's endpoint (it has thousands), but bounded memory.
    assert_eq!(
        t.predict_endpoint(Instant::from_millis(10_000)),
        Some(spoofed)
    );
}
