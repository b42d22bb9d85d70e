//! DNS discovery: entry, root and URL parsing, and the client walking and syncing a tree whose
//! entries are the input's lines.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use devp2p_core::dnsdisc::{Client, ClientConfig, Entry, Label, ResolveError, Root, TreeUrl};
use devp2p_core::{Instant, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The tree's signer (geth's dnsdisc test key), derived once per process.
fn signer() -> &'static NodeSecretKey {
    static K: OnceLock<NodeSecretKey> = OnceLock::new();
    K.get_or_init(|| {
        NodeSecretKey::from_hex("dc599867fc513f8f5e2c2c9c489cde5e71362d1d9ec6e693e0de063236ed1240")
            .expect("a key")
    })
}

/// Each line of the input is parsed as an entry, a root and a URL (what parses prints back
/// to something that parses to the same); then the lines are published as a tree at `n`
/// (each at its own label, the root pointing at the first two) and a client walks it and
/// syncs it, with every query answered from that zone, never panicking and keeping its
/// bounds.
pub fn dnsdisc(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.split('\n').take(64).collect();
    for line in &lines {
        if let Ok(e) = Entry::parse(line) {
            let printed = e.to_string();
            // Parsing is a pure function: a line that prints back as itself parses back to
            // the same (and reparsing an `enr:` line would verify its signature again).
            if printed != *line {
                assert_eq!(Entry::parse(&printed).as_ref(), Ok(&e), "{line:?}");
            }
        }
        if let Ok(r) = Root::parse(line) {
            let printed = r.to_string();
            if printed != *line {
                assert_eq!(Root::parse(&printed).as_ref(), Ok(&r), "{line:?}");
            }
        }
        if let Ok(u) = line.parse::<TreeUrl>() {
            assert_eq!(u.to_string().parse::<TreeUrl>().as_ref(), Ok(&u));
        }
    }

    let key = signer();
    let mut zone: BTreeMap<String, String> = lines
        .iter()
        .map(|l| (format!("{}.n", Label::of(l)), (*l).to_owned()))
        .collect();
    let e = Label::of(lines[0]);
    let l = Label::of(lines.get(1).copied().unwrap_or(lines[0]));
    let seq = data.first().copied().unwrap_or(0).into();
    zone.insert("n".into(), Root::signed(e, l, seq, key).to_string());
    let url = TreeUrl::new(*key.public(), "n").expect("a domain");

    let mut c = Client::new(ClientConfig::default(), ChaCha20Rng::seed_from_u64(seq));
    c.add_tree(url.clone());
    c.sync_tree(Instant::ZERO, url);
    c.want_nodes(Instant::ZERO, 4);
    let mut now = Instant::ZERO;
    for _ in 0..64 {
        while let Some(q) = c.poll_query() {
            let answer = zone
                .get(&q.name)
                .map(|t| vec![t.clone()])
                .ok_or(ResolveError::NotFound);
            c.handle_answer(now, q.id, answer);
        }
        while c.poll_event().is_some() {}
        assert!(c.trees().count() <= devp2p_core::dnsdisc::MAX_TREES);
        match c.poll_timeout() {
            Some(t) => {
                assert!(t >= now, "a deadline in the past");
                now = t;
                c.handle_timeout(now);
            }
            None => break,
        }
    }
}
