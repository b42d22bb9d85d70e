//! go-ethereum's `dial_test.go` scheduler cases as table-driven rounds under virtual time:
//! each round applies peer changes, discoveries and dial outcomes, then checks which dials
//! (and resolves) the scheduler asks for. Time advances 16 s per round, as in geth.
//! Where geth's expected picks come from its seeded Go RNG (random static selection), the
//! round checks the count and the set they come from instead.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use devp2p_core::dial::{DialAction, DialConfig, DialKind, DialTarget, Dialer, SkipReason};
use devp2p_core::{Instant, NodeId, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Node "uintID(i)": a key derived from `i`, so each i is a distinct node.
fn node(i: u16, addr: &str) -> DialTarget {
    let mut secret = [0u8; 32];
    secret[30..].copy_from_slice(&i.to_be_bytes());
    secret[0] = 1;
    let key = NodeSecretKey::from_bytes(&secret).unwrap();
    DialTarget {
        public_key: *key.public(),
        addr: (!addr.is_empty()).then(|| addr.parse::<SocketAddr>().unwrap()),
    }
}

fn id(i: u16) -> NodeId {
    node(i, "").id()
}

#[derive(Default)]
struct Round {
    peers_added: Vec<(u16, bool)>,
    peers_removed: Vec<u16>,
    add_static: Vec<(u16, &'static str)>,
    remove_static: Vec<u16>,
    discovered: Vec<(u16, &'static str)>,
    succeeded: Vec<u16>,
    failed: Vec<u16>,
    /// Resolves asked for, with the address the "discovery" answers (empty: unknown).
    want_resolves: Vec<(u16, &'static str)>,
    /// Exactly these dials…
    want_dials: Vec<u16>,
    /// …or, when set, this many dials drawn from this set.
    want_some_of: Option<(usize, Vec<u16>)>,
}

fn run(config: DialConfig, rounds: Vec<Round>) -> (Dialer, Vec<Vec<NodeId>>) {
    let mut d = Dialer::new(NodeSecretKey::from_bytes(&[7u8; 32]).unwrap().id(), config);
    let mut rng = ChaCha20Rng::seed_from_u64(0x1111);
    let mut now = Instant::from_millis(0);
    let mut connected: BTreeSet<NodeId> = BTreeSet::new();
    let mut all_dials = Vec::new();
    for (i, r) in rounds.into_iter().enumerate() {
        for (p, dialed) in &r.peers_added {
            assert!(connected.insert(id(*p)), "round {i}: {p} already connected");
            d.peer_added(id(*p), *dialed);
        }
        for p in &r.peers_removed {
            assert!(connected.remove(&id(*p)), "round {i}: {p} not connected");
            d.peer_removed(&id(*p));
        }
        for (s, addr) in &r.add_static {
            d.add_static(node(*s, addr));
        }
        for s in &r.remove_static {
            d.remove_static(&id(*s));
        }
        for (n, addr) in &r.discovered {
            d.add_candidate(node(*n, addr));
        }
        for s in &r.succeeded {
            assert!(d.is_dialing(&id(*s)), "round {i}: {s} was not being dialed");
            connected.insert(id(*s));
            d.peer_added(id(*s), true);
        }
        for f in &r.failed {
            assert!(d.is_dialing(&id(*f)), "round {i}: {f} was not being dialed");
            d.dial_failed(&id(*f));
        }
        let mut dials = Vec::new();
        let mut resolves = Vec::new();
        while let Some(a) = d.poll_action(now, &mut rng) {
            match a {
                DialAction::Dial { target, kind } => {
                    assert!(target.addr.is_some(), "round {i}: dial without address");
                    let _ = kind;
                    dials.push(target.id());
                }
                DialAction::Resolve(rid) => {
                    resolves.push(rid);
                    let answer = r.want_resolves.iter().find(|(n, _)| id(*n) == rid);
                    if let Some((n, addr)) = answer {
                        if !addr.is_empty() {
                            d.update_static(&id(*n), node(*n, addr).addr.unwrap());
                        }
                    }
                }
            }
        }
        let want_resolves: BTreeSet<NodeId> = r.want_resolves.iter().map(|(n, _)| id(*n)).collect();
        assert_eq!(
            resolves.iter().copied().collect::<BTreeSet<_>>(),
            want_resolves,
            "round {i}: resolves"
        );
        match r.want_some_of {
            Some((count, from)) => {
                let from: BTreeSet<NodeId> = from.iter().map(|n| id(*n)).collect();
                assert_eq!(dials.len(), count, "round {i}: dial count");
                assert!(
                    dials.iter().all(|d| from.contains(d)),
                    "round {i}: dials outside the allowed set"
                );
                assert_eq!(
                    dials.iter().collect::<BTreeSet<_>>().len(),
                    count,
                    "round {i}: duplicate dials"
                );
            }
            None => {
                let want: Vec<NodeId> = r.want_dials.iter().map(|n| id(*n)).collect();
                assert_eq!(
                    dials.iter().collect::<BTreeSet<_>>(),
                    want.iter().collect::<BTreeSet<_>>(),
                    "round {i}: dials"
                );
                assert_eq!(dials.len(), want.len(), "round {i}: dial count");
            }
        }
        all_dials.push(dials);
        now += Duration::from_secs(16);
    }
    (d, all_dials)
}

fn cfg(max_active_dials: usize, max_dial_peers: usize) -> DialConfig {
    let mut dial = DialConfig::default();
    dial.max_active_dials = max_active_dials;
    dial.max_dial_peers = max_dial_peers;
    dial.net_restrict = None;
    dial
}

const L: &str = "127.0.0.1:30303";

#[test]
fn dynamic_dials_are_launched_from_discovery_results() {
    run(
        cfg(5, 4),
        vec![
            // 3 of 4 peers connected: 2 slots; of 8 discovered only 2 are dialed.
            Round {
                peers_added: vec![(0, true), (1, true), (2, true)],
                discovered: vec![
                    (0, L),
                    (2, L),
                    (3, L),
                    (4, L),
                    (5, L),
                    (6, L),
                    (7, L),
                    (8, L),
                ],
                want_dials: vec![3, 4],
                ..Round::default()
            },
            // One dial fails, freeing a slot.
            Round {
                failed: vec![4],
                want_dials: vec![5],
                ..Round::default()
            },
            // 0x03 connects, filling the last peer slot.
            Round {
                succeeded: vec![3],
                failed: vec![5],
                discovered: vec![(9, L)],
                ..Round::default()
            },
            // Three peers drop: 6 slots, capped at 5 active dials.
            Round {
                peers_removed: vec![0, 1, 2],
                discovered: vec![(0x0a, L), (0x0b, L), (0x0c, L), (0x0d, L), (0x0f, L)],
                want_dials: vec![6, 7, 8, 9, 0x0a],
                ..Round::default()
            },
        ],
    );
}

#[test]
fn candidates_outside_netrestrict_are_not_dialed() {
    let mut config = DialConfig::default();
    config.max_active_dials = 10;
    config.max_dial_peers = 10;
    config.net_restrict = Some("127.0.2.0/24".parse().unwrap());
    let (d, _) = run(
        config,
        vec![
            Round {
                discovered: vec![
                    (1, "127.0.0.1:30303"),
                    (2, "127.0.0.2:30303"),
                    (3, "127.0.0.3:30303"),
                    (4, "127.0.0.4:30303"),
                    (5, "127.0.2.5:30303"),
                    (6, "127.0.2.6:30303"),
                    (7, "127.0.2.7:30303"),
                    (8, "127.0.2.8:30303"),
                ],
                want_dials: vec![5, 6, 7, 8],
                ..Round::default()
            },
            Round {
                succeeded: vec![5, 6, 7, 8],
                ..Round::default()
            },
        ],
    );
    assert_eq!(d.skipped().get(&SkipReason::NetRestrict), Some(&4));
}

#[test]
fn static_dials_work_and_obey_the_limits() {
    run(
        cfg(5, 4),
        vec![Round {
            peers_added: vec![(1, true), (2, true)],
            add_static: vec![
                (1, "127.0.0.1:30303"),
                (2, "127.0.0.2:30303"),
                (3, "127.0.0.3:30303"),
                (4, "127.0.0.4:30303"),
                (5, "127.0.0.5:30303"),
                (6, "127.0.0.6:30303"),
                (7, "127.0.0.7:30303"),
                (8, "127.0.0.8:30303"),
                (9, "127.0.0.9:30303"),
            ],
            // 2 missing peers: 4 slots, drawn at random from the 7 unconnected statics.
            want_some_of: Some((4, vec![3, 4, 5, 6, 7, 8, 9])),
            ..Round::default()
        }],
    );
}

#[test]
fn static_dials_follow_geth_round_by_round() {
    // The same scenario with 4 statics only, so the random picks are forced.
    run(
        cfg(5, 4),
        vec![
            Round {
                peers_added: vec![(1, true), (2, true)],
                add_static: vec![
                    (1, "127.0.0.1:30303"),
                    (2, "127.0.0.2:30303"),
                    (3, "127.0.0.3:30303"),
                    (4, "127.0.0.4:30303"),
                ],
                want_dials: vec![3, 4],
                ..Round::default()
            },
            // 3 connects, 4 fails and is re-resolved (no new address); one slot, nobody left.
            Round {
                succeeded: vec![3],
                failed: vec![4],
                want_resolves: vec![(4, "")],
                ..Round::default()
            },
            // 1 drops and 7 connects inbound: 1 is dialed again.
            Round {
                peers_added: vec![(7, false)],
                peers_removed: vec![1],
                want_dials: vec![1],
                ..Round::default()
            },
            // 4's history entry (dialed at 0 s) expired at 35 s; round 3 runs at 48 s.
            Round {
                want_dials: vec![4],
                ..Round::default()
            },
        ],
    );
}

#[test]
fn removed_static_nodes_are_not_dialed_again() {
    run(
        cfg(1, 1),
        vec![Round {
            add_static: vec![
                (1, "127.0.0.1:30303"),
                (2, "127.0.0.2:30303"),
                (3, "127.0.0.3:30303"),
            ],
            want_some_of: Some((1, vec![1, 2, 3])),
            ..Round::default()
        }],
    );
    // Deterministic variant: one static at a time.
    run(
        cfg(1, 1),
        vec![
            Round {
                add_static: vec![(1, "127.0.0.1:30303")],
                want_dials: vec![1],
                ..Round::default()
            },
            Round {
                add_static: vec![(2, "127.0.0.2:30303")],
                failed: vec![1],
                want_resolves: vec![(1, "")],
                want_dials: vec![2],
                ..Round::default()
            },
            Round {
                remove_static: vec![1, 2],
                failed: vec![2],
                ..Round::default()
            },
            Round::default(),
            Round::default(),
            Round::default(),
        ],
    );
}

#[test]
fn many_static_nodes_are_picked_at_random_and_deterministically_per_seed() {
    let rounds = || {
        vec![
            Round {
                peers_added: vec![(0xfffe, true), (0xffff, true)],
                add_static: (0..2000).map(|i| (i, L)).collect(),
                ..Round::default()
            },
            Round {
                peers_removed: vec![0xfffe, 0xffff],
                want_some_of: Some((4, (0..2000).collect())),
                ..Round::default()
            },
        ]
    };
    let mut config = DialConfig::default();
    config.max_dial_peers = 2;
    config.max_active_dials = 50;
    config.net_restrict = None;
    let (_, a) = run(config.clone(), rounds());
    let (_, b) = run(config, rounds());
    assert_eq!(a, b, "the same seed picks the same static nodes");
}

#[test]
fn past_dials_are_not_retried_until_their_history_expires() {
    run(
        cfg(3, 3),
        vec![
            Round {
                add_static: vec![(1, "127.0.0.1:30303")],
                want_dials: vec![1],
                ..Round::default()
            },
            Round {
                add_static: vec![(2, "127.0.0.2:30303"), (3, "127.0.0.3:30303")],
                want_some_of: Some((2, vec![2, 3])),
                ..Round::default()
            },
            Round {
                succeeded: vec![1, 2],
                failed: vec![3],
                want_resolves: vec![(3, "")],
                ..Round::default()
            },
            // 3 was dialed at 16 s: still in history at 48 s...
            Round::default(),
            // ...and retried at 64 s.
            Round {
                want_dials: vec![3],
                ..Round::default()
            },
        ],
    );
}

#[test]
fn a_static_node_without_address_is_resolved_before_it_is_dialed() {
    run(
        cfg(1, 1),
        vec![
            Round {
                add_static: vec![(1, "")],
                want_resolves: vec![(1, "127.0.0.1:30303")],
                want_dials: vec![1],
                ..Round::default()
            },
            Round {
                failed: vec![1],
                want_resolves: vec![(1, "127.0.0.55:30303")],
                ..Round::default()
            },
            Round::default(),
            // History (dialed at 0 s) expired at 35 s: dialed again at the new address.
            Round {
                want_dials: vec![1],
                ..Round::default()
            },
        ],
    );
}

#[test]
fn a_node_with_a_pending_inbound_handshake_or_self_is_never_dialed() {
    let me = NodeSecretKey::from_bytes(&[7u8; 32]).unwrap();
    let mut d = Dialer::new(me.id(), cfg(5, 5));
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    d.set_inbound_pending(id(1), true);
    d.add_candidate(node(1, L));
    d.add_candidate(DialTarget {
        public_key: *me.public(),
        addr: Some(L.parse().unwrap()),
    });
    d.add_candidate(node(2, "127.0.0.1:0"));
    assert_eq!(d.poll_action(Instant::from_millis(0), &mut rng), None);
    assert_eq!(d.skipped().get(&SkipReason::PendingInbound), Some(&1));
    assert_eq!(d.skipped().get(&SkipReason::SelfDial), Some(&1));
    assert_eq!(d.skipped().get(&SkipReason::NoPort), Some(&1));
    d.set_inbound_pending(id(1), false);
    d.add_static(node(1, L));
    assert!(matches!(
        d.poll_action(Instant::from_millis(0), &mut rng),
        Some(DialAction::Dial {
            kind: DialKind::Static,
            ..
        })
    ));
}

/// A duplicate race the two ends resolved differently (found against geth, which keeps the
/// first connection it admits where we keep the one dialled by the lower id): we closed one
/// connection to a static node with AlreadyConnected, the node refused the other with
/// AlreadyConnected, and neither survived. The node is dialled again a second later, not
/// after the 35 s dial history. Without our own AlreadyConnected first, or long after it,
/// a refusal changes nothing.
#[test]
fn a_static_node_lost_to_a_duplicate_race_is_redialled_after_a_second() {
    use devp2p_core::dial::{
        DIAL_HISTORY_EXPIRATION, DUPLICATE_RACE_WINDOW, DUPLICATE_REDIAL_DELAY,
    };

    let me = NodeSecretKey::from_bytes(&[7u8; 32]).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let at = Instant::from_millis;
    let dials = |d: &mut Dialer, now: Instant, rng: &mut ChaCha20Rng| {
        let mut ids = Vec::new();
        while let Some(a) = d.poll_action(now, rng) {
            if let DialAction::Dial { target, .. } = a {
                ids.push(target.id());
            }
        }
        ids
    };
    // (our AlreadyConnected, the remote's, the redial expected at)
    let cases = [
        (Some(100), 200, Some(at(200) + DUPLICATE_REDIAL_DELAY)),
        (None, 200, None),
        (
            Some(100),
            100 + DUPLICATE_RACE_WINDOW.as_millis() as u64 + 1,
            None,
        ),
    ];
    for (ours, theirs, redial) in cases {
        let mut d = Dialer::new(me.id(), cfg(5, 5));
        d.add_static(node(1, L));
        assert_eq!(dials(&mut d, at(0), &mut rng), [id(1)]);
        if let Some(t) = ours {
            d.duplicate_closed(&id(1), at(t));
        }
        d.dial_failed(&id(1));
        d.refused_as_duplicate(&id(1), at(theirs));
        match redial {
            Some(when) => {
                let before = when.checked_sub(Duration::from_millis(1)).unwrap();
                assert!(dials(&mut d, before, &mut rng).is_empty(), "{ours:?}");
                assert_eq!(dials(&mut d, when, &mut rng), [id(1)], "{ours:?}");
            }
            None => {
                let before = at(DIAL_HISTORY_EXPIRATION.as_millis() as u64 - 1);
                assert!(dials(&mut d, before, &mut rng).is_empty(), "{ours:?}");
                let after = at(0) + DIAL_HISTORY_EXPIRATION;
                assert_eq!(dials(&mut d, after, &mut rng), [id(1)], "{ours:?}");
            }
        }
    }
}
