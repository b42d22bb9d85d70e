//! DNS discovery (EIP-1459) against `vectors/dnsdisc.json`: every root and entry parse case
//! with geth's error, the EIP example tree synced and rebuilt byte for byte, the bad-node
//! tree failing as geth fails, the derived 30-node tree and the empty tree built exactly, and
//! the client's walk, links, rate limit, failures and stale roots.

use std::collections::BTreeMap;
use std::time::Duration;

use devp2p_core::dnsdisc::{
    client, Client, ClientConfig, DnsError, Entry, EntryError, Event, Label, ResolveError, Root,
    SyncedTree, Tree, TreeUrl,
};
use devp2p_core::keccak::keccak256;
use devp2p_core::{Enr, Instant, NodePublicKey, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors/dnsdisc.json")).unwrap()
}

fn test_key() -> NodeSecretKey {
    let v = vectors();
    NodeSecretKey::from_hex(
        v["signing_key_for_testing"]["private_key"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

fn zone(records: &Value) -> BTreeMap<String, Vec<String>> {
    records
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), vec![v.as_str().unwrap().to_owned()]))
        .collect()
}

/// Answers every query of `client` from `zone` until nothing moves; returns the events.
fn serve(
    client: &mut Client<ChaCha20Rng>,
    zone: &BTreeMap<String, Vec<String>>,
    now: Instant,
) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let mut moved = false;
        while let Some(q) = client.poll_query() {
            moved = true;
            let answer = zone.get(&q.name).cloned().ok_or(ResolveError::NotFound);
            client.handle_answer(now, q.id, answer);
        }
        while let Some(e) = client.poll_event() {
            moved = true;
            events.push(e);
        }
        if !moved {
            return events;
        }
    }
}

fn new_client(seed: u64) -> Client<ChaCha20Rng> {
    Client::new(ClientConfig::default(), ChaCha20Rng::seed_from_u64(seed))
}

fn sync(zone: &BTreeMap<String, Vec<String>>, url: &str) -> Result<SyncedTree, String> {
    let mut c = new_client(1);
    let id = c.sync_tree(Instant::ZERO, url.parse().unwrap());
    for e in serve(&mut c, zone, Instant::ZERO) {
        if let Event::Synced { id: i, result } = e {
            assert_eq!(i, id);
            return result.map_err(|e| e.to_string());
        }
    }
    panic!("the sync did not end");
}

#[test]
fn root_parse_cases_match_geth() {
    for case in vectors()["parse_root"].as_array().unwrap() {
        let input = case["input"].as_str().unwrap();
        let got = Root::parse(input);
        match case["expect"].as_str().unwrap() {
            "error" => {
                let e = got.expect_err(input);
                let geth = case["geth_error"].as_str().unwrap();
                assert_eq!(format!("invalid root entry: {e}"), geth, "{input}");
            }
            _ => {
                let root = got.unwrap();
                assert_eq!(root.e.as_str(), case["e"].as_str().unwrap());
                assert_eq!(root.l.as_str(), case["l"].as_str().unwrap());
                assert_eq!(root.seq, case["seq"].as_u64().unwrap());
                assert_eq!(hex::encode(root.sig), case["sig_hex"].as_str().unwrap());
                assert_eq!(root.signed_text(), case["signed_text"].as_str().unwrap());
                assert_eq!(
                    hex::encode(keccak256(root.signed_text().as_bytes())),
                    case["sig_hash"].as_str().unwrap()
                );
                assert_eq!(
                    root.to_string(),
                    input,
                    "a canonical root prints as it was read"
                );
                // Signed by the key recovered from it, not by the test key.
                let recovered =
                    NodePublicKey::from_hex(case["recovered_pubkey64"].as_str().unwrap()).unwrap();
                assert!(root.verify(&recovered));
                assert!(!root.verify(test_key().public()));
            }
        }
    }
}

#[test]
fn entry_parse_cases_match_geth() {
    for case in vectors()["parse_entry"].as_array().unwrap() {
        let input = case["input"].as_str().unwrap();
        let got = Entry::parse(input);
        if case["expect"] == "error" {
            let e = got.expect_err(input);
            let ok = match case["geth_error"].as_str().unwrap() {
                "errInvalidChild" => matches!(e, EntryError::InvalidChild(_)),
                "errNoPubkey" => e == EntryError::NoPublicKey,
                "errBadPubkey" => e == EntryError::BadPublicKey,
                "errInvalidENR" => matches!(e, EntryError::InvalidEnr(_)),
                "errUnknownEntry" => e == EntryError::UnknownEntry,
                other => panic!("unknown geth error {other}"),
            };
            assert!(ok, "{input}: {e:?} is not {}", case["geth_error"]);
            continue;
        }
        let entry = got.unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(entry.to_string(), input, "entries print as they were read");
        match (case["kind"].as_str().unwrap(), entry) {
            ("branch", Entry::Branch(children)) => {
                let want: Vec<&str> = case["children"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap())
                    .collect();
                let got: Vec<&str> = children.iter().map(Label::as_str).collect();
                assert_eq!(got, want);
            }
            ("link", Entry::Link(url)) => {
                assert_eq!(url.domain(), case["domain"].as_str().unwrap());
                assert_eq!(
                    hex::encode(url.public_key().compressed()),
                    case["pubkey_compressed"].as_str().unwrap()
                );
            }
            ("enr", Entry::Enr(r)) => {
                assert_eq!(
                    hex::encode(r.node_id().0),
                    case["node_id"].as_str().unwrap()
                );
                assert_eq!(r.seq(), case["seq"].as_u64().unwrap());
            }
            (kind, e) => panic!("{input}: expected a {kind}, got {e:?}"),
        }
    }
}

#[test]
fn the_default_urls_parse_to_the_ethdisco_signer() {
    let v = vectors();
    let want = v["default_urls"]["signer_pubkey_compressed"]
        .as_str()
        .unwrap();
    for (net, url) in v["default_urls"]["urls"].as_object().unwrap() {
        let parsed: TreeUrl = url.as_str().unwrap().parse().unwrap();
        assert_eq!(hex::encode(parsed.public_key().compressed()), want, "{net}");
        assert_eq!(parsed.to_string(), url.as_str().unwrap());
        assert!(parsed.domain().starts_with("all."));
    }
}

#[test]
fn the_eip_example_tree_verifies_syncs_and_rebuilds_byte_for_byte() {
    let v = vectors();
    let t = &v["eip1459_example_tree"];
    // Every entry sits at its own hash.
    for (name, e) in t["entries"].as_object().unwrap() {
        let text = e["text"].as_str().unwrap();
        assert_eq!(
            hex::encode(keccak256(text.as_bytes())),
            e["keccak256"].as_str().unwrap()
        );
        assert_eq!(
            Label::of(text).as_str(),
            e["subdomain"].as_str().unwrap(),
            "{name}"
        );
        assert!(Label::parse(e["subdomain"].as_str().unwrap())
            .unwrap()
            .matches(text));
    }
    // The root is the test key's, not the key the EIP text prints beside the URL.
    let root = Root::parse(t["records"]["n"].as_str().unwrap()).unwrap();
    assert!(root.verify(test_key().public()));
    let eip_url: TreeUrl = t["eip_text_url"].as_str().unwrap().parse().unwrap();
    assert!(!root.verify(eip_url.public_key()));

    // A full sync returns the expected links and records.
    let synced = sync(&zone(&t["records"]), t["url"].as_str().unwrap()).unwrap();
    assert_eq!(
        synced.tree.root().seq,
        t["expected"]["seq"].as_u64().unwrap()
    );
    let links: Vec<String> = synced.tree.links().iter().map(|u| u.to_string()).collect();
    let want_links: Vec<String> = t["expected"]["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(links, want_links);
    let mut ids: Vec<String> = synced
        .tree
        .records()
        .iter()
        .map(|r| hex::encode(r.node_id().0))
        .collect();
    ids.sort();
    let want_ids: Vec<&str> = t["expected"]["node_ids_sorted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert_eq!(ids, want_ids);

    // Rebuilt from its records and link and re-signed (RFC 6979): the same TXT records.
    let records: Vec<Enr> = t["expected"]["enrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().parse().unwrap())
        .collect();
    let links: Vec<TreeUrl> = want_links.iter().map(|l| l.parse().unwrap()).collect();
    let (tree, url) = Tree::build(1, &records, &links)
        .sign(&test_key(), "n")
        .unwrap();
    assert_eq!(url.to_string(), t["url"].as_str().unwrap());
    let built: BTreeMap<String, String> = tree.to_txt("n");
    let want: BTreeMap<String, String> = t["records"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(built, want);
}

#[test]
fn a_bad_node_fails_the_sync_with_geths_error() {
    let v = vectors();
    let t = &v["bad_node_tree"];
    let err = sync(&zone(&t["records"]), t["url"].as_str().unwrap()).unwrap_err();
    // geth's message, then what exactly was wrong with the record.
    let geth = t["expected_error"]["geth_error"].as_str().unwrap();
    assert!(err.starts_with(geth), "{err}");
    assert_eq!(err, format!("{geth} (invalid base64url after 'enr:')"));
}

fn derived() -> (Vec<Enr>, Vec<TreeUrl>, BTreeMap<String, String>) {
    let v = vectors();
    let t = &v["derived_tree"];
    let records = t["input_enrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().parse().unwrap())
        .collect();
    let links = t["input_links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().parse().unwrap())
        .collect();
    let txt = t["txt_records"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    (records, links, txt)
}

#[test]
fn the_derived_and_the_empty_trees_are_built_exactly() {
    let v = vectors();
    let t = &v["derived_tree"];
    let (mut records, links, txt) = derived();
    records.reverse(); // the order given does not matter: records are sorted by node id
    let key = NodeSecretKey::from_hex(t["signing_private_key"].as_str().unwrap()).unwrap();
    let domain = t["domain"].as_str().unwrap();
    let (tree, url) = Tree::build(t["seq"].as_u64().unwrap(), &records, &links)
        .sign(&key, domain)
        .unwrap();
    assert_eq!(url.to_string(), t["url"].as_str().unwrap());
    assert_eq!(tree.root().to_string(), t["root_text"].as_str().unwrap());
    assert_eq!(tree.to_txt(domain), txt);

    let e = &v["empty_tree"];
    let url: TreeUrl = e["url"].as_str().unwrap().parse().unwrap();
    let (tree, _) = Tree::build(1, &[], &[])
        .sign(&test_key(), url.domain())
        .unwrap();
    assert_eq!(tree.root().to_string(), e["root_text"].as_str().unwrap());
    let want: BTreeMap<String, String> = e["txt_records"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(tree.to_txt(url.domain()), want);
    assert_eq!(
        tree.root().e.as_str(),
        e["empty_branch_label"].as_str().unwrap()
    );
}

/// The derived tree served as TXT answers, the walk asked for every node.
#[test]
fn the_walk_yields_every_record_once_per_pass_within_the_rate_limit() {
    let (records, _, txt) = derived();
    let zone: BTreeMap<String, Vec<String>> = txt.into_iter().map(|(k, v)| (k, vec![v])).collect();
    let url: TreeUrl = vectors()["derived_tree"]["url"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut c = new_client(7);
    assert!(c.add_tree(url.clone()));
    let mut now = Instant::ZERO;
    c.want_nodes(now, records.len());
    let mut found = Vec::new();
    let mut linked = Vec::new();
    let mut errors = Vec::new();
    for _ in 0..10_000 {
        for e in serve(&mut c, &zone, now) {
            match e {
                Event::Node { record, tree } => {
                    assert_eq!(tree, url);
                    found.push(record)
                }
                Event::TreeLinked { tree, added: true } => linked.push(tree),
                Event::Error(e) => errors.push(e),
                _ => {}
            }
        }
        if c.wanted() == 0 {
            break;
        }
        let next = c
            .poll_timeout()
            .expect("a walk that owes nodes has a deadline");
        assert!(next >= now);
        now = next;
        c.handle_timeout(now);
    }
    let mut ids: Vec<_> = found.iter().map(|r| r.node_id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        records.len(),
        "every record once, none twice in one pass"
    );
    // The two linked trees were added; their domains are not served, so their root lookups
    // fail, visibly.
    assert_eq!(linked.len(), 2);
    assert!(errors
        .iter()
        .all(|e| e.error == DnsError::Resolve(ResolveError::NotFound)));
    assert!(errors.iter().any(|e| e.name == "morenodes.example.org"));
    // 4 branches + 2 links + 30 leaves = 36 entry lookups (plus one for the link branch and
    // the top branch); a burst of 10, then 3 a second.
    let secs = now.as_millis() as f64 / 1000.0;
    assert!(
        (7.0..=12.0).contains(&secs),
        "walk took {secs} s of virtual time"
    );
}

#[test]
fn lookups_that_never_answer_time_out_and_say_so() {
    let url: TreeUrl = vectors()["eip1459_example_tree"]["url"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut c = new_client(3);
    c.add_tree(url.clone());
    c.want_nodes(Instant::ZERO, 1);
    let q = c.poll_query().unwrap();
    assert_eq!(q.name, "n");
    assert_eq!(
        c.poll_timeout(),
        Some(Instant::ZERO + client::LOOKUP_TIMEOUT)
    );
    c.handle_timeout(Instant::ZERO + client::LOOKUP_TIMEOUT);
    match c.poll_event() {
        Some(Event::Error(e)) => {
            assert_eq!(e.error, DnsError::Resolve(ResolveError::Timeout));
            assert_eq!(e.tree, url);
            assert_eq!(e.to_string(), "n: lookup timed out");
        }
        other => panic!("{other:?}"),
    }
    // A late answer is ignored.
    c.handle_answer(Instant::ZERO + Duration::from_secs(6), q.id, Ok(vec![]));
    assert!(c.poll_event().is_none());
}

#[test]
fn roots_other_records_bad_signatures_and_stale_seqs() {
    let v = vectors();
    let t = &v["eip1459_example_tree"];
    let url: TreeUrl = t["url"].as_str().unwrap().parse().unwrap();
    let mut zone = zone(&t["records"]);
    // The root shares its name with an SPF record, listed first.
    zone.get_mut("n").unwrap().insert(0, "v=spf1 -all".into());
    let mut c = new_client(5);
    c.add_tree(url.clone());
    c.want_nodes(Instant::ZERO, 3);
    let events = serve(&mut c, &zone, Instant::ZERO);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::RootUpdated { seq: 1, .. })));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Node { .. }))
            .count(),
        3
    );

    // Thirty minutes on, the root is re-checked: a root signed by another key is refused and
    // the old one kept.
    let other =
        NodeSecretKey::from_hex("0101010101010101010101010101010101010101010101010101010101010101")
            .unwrap();
    let old = Root::parse(t["records"]["n"].as_str().unwrap()).unwrap();
    let forged = Root::signed(old.e.clone(), old.l.clone(), 2, &other);
    zone.insert("n".into(), vec![forged.to_string()]);
    let later = Instant::ZERO + client::RECHECK_INTERVAL;
    c.want_nodes(later, 1);
    let events = serve(&mut c, &zone, later);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Error(n) if n.error == DnsError::BadSignature)),
        "{events:?}"
    );
    assert_eq!(c.root(&url).unwrap().seq, 1);

    // A validly signed root with a lower seq than one held is ignored, not a failure.
    let newer = Root::signed(old.e.clone(), old.l.clone(), 5, &test_key());
    zone.insert("n".into(), vec![newer.to_string()]);
    let t2 = later + client::RECHECK_INTERVAL;
    c.want_nodes(t2, 1);
    serve(&mut c, &zone, t2);
    assert_eq!(c.root(&url).unwrap().seq, 5);
    zone.insert("n".into(), vec![old.to_string()]);
    let t3 = t2 + client::RECHECK_INTERVAL;
    c.want_nodes(t3, 1);
    let events = serve(&mut c, &zone, t3);
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::StaleRoot {
                held: 5,
                served: 1,
                ..
            }
        )),
        "{events:?}"
    );
    assert_eq!(c.root(&url).unwrap().seq, 5);
}

#[test]
fn a_rechecked_root_skips_its_signature_check_only_when_byte_identical() {
    // The client remembers the last root it verified: a recheck finding the same text takes
    // it as verified, and one with a changed signature is checked and refused.
    let v = vectors();
    let t = &v["eip1459_example_tree"];
    let url: TreeUrl = t["url"].as_str().unwrap().parse().unwrap();
    let mut zone = zone(&t["records"]);
    let mut c = new_client(5);
    c.add_tree(url.clone());
    c.want_nodes(Instant::ZERO, 3);
    serve(&mut c, &zone, Instant::ZERO);
    assert_eq!(c.root(&url).unwrap().seq, 1);

    let later = Instant::ZERO + client::RECHECK_INTERVAL;
    c.want_nodes(later, 1);
    let events = serve(&mut c, &zone, later);
    // (The tree links to one this zone does not serve: only its own errors count.)
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Error(n) if n.tree == url)),
        "{events:?}"
    );

    let text = t["records"]["n"].as_str().unwrap();
    let at = text.find("sig=").unwrap() + 10;
    let swapped = if text.as_bytes()[at] == b'A' {
        "B"
    } else {
        "A"
    };
    let tampered = format!("{}{swapped}{}", &text[..at], &text[at + 1..]);
    assert!(Root::parse(&tampered).is_ok(), "still a well-formed root");
    zone.insert("n".into(), vec![tampered]);
    let t2 = later + client::RECHECK_INTERVAL;
    c.want_nodes(t2, 1);
    let events = serve(&mut c, &zone, t2);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Error(n) if n.error == DnsError::BadSignature)),
        "{events:?}"
    );
}

#[test]
fn an_entry_that_does_not_match_its_label_is_a_hash_mismatch() {
    let v = vectors();
    let t = &v["eip1459_example_tree"];
    let mut zone = zone(&t["records"]);
    // Swap two leaves: each is a valid record, at the other's name.
    let a = zone["2XS2367YHAXJFGLZHVAWLQD4ZY.n"].clone();
    let b = zone["H4FHT4B454P6UXFD7JCYQ5PWDY.n"].clone();
    zone.insert("2XS2367YHAXJFGLZHVAWLQD4ZY.n".into(), b);
    zone.insert("H4FHT4B454P6UXFD7JCYQ5PWDY.n".into(), a);
    let err = sync(&zone, t["url"].as_str().unwrap()).unwrap_err();
    assert!(err.ends_with(": hash mismatch"), "{err}");
}

#[test]
fn an_empty_tree_does_not_spin() {
    let e = &vectors()["empty_tree"];
    let url: TreeUrl = e["url"].as_str().unwrap().parse().unwrap();
    let zone: BTreeMap<String, Vec<String>> = e["txt_records"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), vec![v.as_str().unwrap().to_owned()]))
        .collect();
    let mut c = new_client(9);
    c.add_tree(url);
    c.want_nodes(Instant::ZERO, 5);
    let events = serve(&mut c, &zone, Instant::ZERO);
    assert!(!events.iter().any(|e| matches!(e, Event::Node { .. })));
    // Nothing to do until the root is due again.
    assert_eq!(
        c.poll_timeout(),
        Some(Instant::ZERO + client::RECHECK_INTERVAL)
    );
}
