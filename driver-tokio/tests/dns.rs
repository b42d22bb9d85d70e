//! DNS discovery against a real DNS server: dnsmasq (Debian's `dnsmasq-base`, which `.ci/run`
//! installs) on 127.0.0.1 serving trees as TXT records, every entry longer than 255 bytes
//! split into several character-strings as real zones publish them. `devp2p dns sign` and
//! `dns to-txt` publish a tree, dnsmasq serves it, and `devp2p dns sync` reads it back
//! through the resolver. Nodes walk trees too: a node on each driver, and `devp2p node`,
//! given only a tree's URL (no bootnodes), find the live nodes it lists through dnsmasq and
//! hold RLPx sessions with them (from a tree geth signed: `geth_tools.rs`, which runs geth's
//! tool). Without dnsmasq the test fails and says what to install;
//! `DEVP2P_SKIP_DNSMASQ=1` skips it, saying so.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "support/dns_walk.rs"]
mod dns_walk;
#[path = "support/dnsmasq.rs"]
mod dnsmasq;
use dns_walk::{
    devp2p_node_reaches_every_node_of_the_tree, nodes_json, terminate, LiveNodes, CONNECT_WITHIN,
};
use dnsmasq::{dnsmasq_path, serve};

use devp2p_core::dnsdisc::{Tree, TreeUrl};
use devp2p_core::node::NodeEvent;
use devp2p_core::session::Protocol;
use devp2p_core::{Enr, NodeId, NodeSecretKey};
use devp2p_tokio::{DnsResolverConfig, DriverConfig};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn devp2p(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_devp2p"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running devp2p")
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("devp2p-dns-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn records(n: usize, seed: u64) -> Vec<Enr> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let key = NodeSecretKey::generate(&mut rng);
            Enr::builder()
                .ip([127, 0, 0, 1].into())
                .tcp4(30303 + i as u16)
                .udp4(30303 + i as u16)
                .sign(&key)
                .unwrap()
        })
        .collect()
}

fn synced_ids(dir: &Path) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("nodes.json")).unwrap()).unwrap();
    let mut ids: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    ids.sort();
    ids
}

#[test]
fn a_tree_signed_by_our_tool_is_served_by_dnsmasq_and_synced_back_whole() {
    let Some(bin) = dnsmasq_path() else { return };
    let dir = tempdir("ours");
    let def = dir.join("nodes.example.org");
    std::fs::create_dir_all(&def).unwrap();
    // 40 nodes: branches of 13 (365 bytes, two character-strings each) under a top branch.
    let recs = records(40, 1);
    std::fs::write(def.join("nodes.json"), nodes_json(&recs)).unwrap();
    let key = dir.join("signer.key");
    std::fs::write(
        &key,
        "dc599867fc513f8f5e2c2c9c489cde5e71362d1d9ec6e693e0de063236ed1240\n",
    )
    .unwrap();

    let out = devp2p(&[
        "dns",
        "sign",
        def.to_str().unwrap(),
        key.to_str().unwrap(),
        "--seq",
        "3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(
        url,
        "enrtree://AKPYQIUQIL7PSIACI32J7FGZW56E5FKHEFCCOFHILBIMW3M6LWXS2@nodes.example.org"
    );
    let txt_path = dir.join("txt.json");
    let out = devp2p(&[
        "dns",
        "to-txt",
        def.to_str().unwrap(),
        txt_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let txt: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(&txt_path).unwrap()).unwrap();
    assert!(
        txt.values().any(|t| t.len() > 255),
        "some entries need several strings"
    );

    let server = serve(&bin, &dir, &txt);
    let out_dir = dir.join("synced");
    let addr = format!("127.0.0.1:{}", server.port);
    let out = devp2p(&[
        "dns",
        "sync",
        &url,
        out_dir.to_str().unwrap(),
        "--server",
        &addr,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut want: Vec<String> = recs.iter().map(|r| r.node_id().to_string()).collect();
    want.sort();
    assert_eq!(synced_ids(&out_dir), want);
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("enrtree-info.json")).unwrap())
            .unwrap();
    assert_eq!(info["seq"], 3);
    assert_eq!(info["url"], url.as_str());

    // What was synced can be published again unchanged: the signature still matches.
    let again = devp2p(&["dns", "to-txt", out_dir.to_str().unwrap()]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let again: BTreeMap<String, String> = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again, txt);

    // Changing a node after signing is caught before publishing.
    std::fs::write(def.join("nodes.json"), nodes_json(&recs[1..])).unwrap();
    let stale = devp2p(&["dns", "to-txt", def.to_str().unwrap()]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&stale.stderr).contains("sign it again"));
}

#[test]
fn a_tree_with_a_bad_entry_fails_the_sync_naming_the_entry() {
    let Some(bin) = dnsmasq_path() else { return };
    let dir = tempdir("bad");
    let recs = records(3, 2);
    let key =
        NodeSecretKey::from_hex("dc599867fc513f8f5e2c2c9c489cde5e71362d1d9ec6e693e0de063236ed1240")
            .unwrap();
    let (tree, url) = Tree::build(1, &recs, &[])
        .sign(&key, "bad.example.org")
        .unwrap();
    let mut txt = tree.to_txt("bad.example.org");
    // One leaf removed from the zone.
    let gone = txt
        .iter()
        .find(|(_, t)| t.starts_with("enr:"))
        .map(|(n, _)| n.clone())
        .unwrap();
    txt.remove(&gone);
    let server = serve(&bin, &dir, &txt);
    let addr = format!("127.0.0.1:{}", server.port);
    let out = devp2p(&[
        "dns",
        "sync",
        &url.to_string(),
        dir.join("o").to_str().unwrap(),
        "--server",
        &addr,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&gone) && err.contains("no such name"), "{err}");
    // A key that did not sign the tree: the root is refused.
    let other =
        NodeSecretKey::from_hex("0101010101010101010101010101010101010101010101010101010101010101")
            .unwrap();
    let wrong = format!(
        "enrtree://{}@bad.example.org",
        devp2p_core::dnsdisc::base32_encode(&other.public().compressed())
    );
    let out = devp2p(&[
        "dns",
        "sync",
        &wrong,
        dir.join("o2").to_str().unwrap(),
        "--server",
        &addr,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("signature does not verify"), "{err}");
}

/// A signed tree of `records` at `domain`, served by a dnsmasq of its own; its URL.
fn serve_tree(
    bin: &Path,
    dir: &Path,
    records: &[Enr],
    domain: &str,
) -> (dnsmasq::Dnsmasq, TreeUrl) {
    let signer =
        NodeSecretKey::from_hex("dc599867fc513f8f5e2c2c9c489cde5e71362d1d9ec6e693e0de063236ed1240")
            .unwrap();
    let (tree, url) = Tree::build(7, records, &[]).sign(&signer, domain).unwrap();
    (serve(bin, dir, &tree.to_txt(domain)), url)
}

/// A node that knows only `url`, asking the name server at `port`.
fn seeker(url: &TreeUrl, port: u16) -> DriverConfig {
    let mut config = DriverConfig::default();
    config.node.listen = "127.0.0.1:0".parse().unwrap();
    config.node.session.protocols = vec![Protocol::new("eth", 68, 17)];
    config.node.dns = vec![url.clone()];
    config.dns_resolver = DnsResolverConfig::Servers(vec![([127, 0, 0, 1], port).into()]);
    config
}

#[test]
fn a_node_on_each_driver_given_only_a_tree_connects_to_every_live_node_it_lists() {
    let Some(bin) = dnsmasq_path() else { return };
    let dir = tempdir("walk");
    let targets = LiveNodes::start(3, 2);
    let runtime = &targets.runtime;
    let _guard = runtime.enter();
    let want: BTreeSet<NodeId> = targets.records.iter().map(Enr::node_id).collect();
    let (server, url) = serve_tree(&bin, &dir, &targets.records, "nodes.example.org");

    // mio, on a runner thread of its own.
    let mut runner = devp2p_mio::Runner::new().unwrap();
    runner.add(seeker(&url, server.port)).unwrap();
    let remote = runner.remote();
    let (tx, rx) = mpsc::channel();
    let mio_thread = std::thread::spawn(move || {
        runner.run(move |_, _, event| {
            let _ = tx.send(event);
        })
    });

    // tokio.
    let (tokio_node, mut tokio_events) = devp2p_tokio::spawn(seeker(&url, server.port)).unwrap();
    let tokio_peers = runtime.block_on(async {
        let mut peers = BTreeSet::new();
        let mut roots = 0;
        let _ = tokio::time::timeout(CONNECT_WITHIN, async {
            while let Some(e) = tokio_events.recv().await {
                match e {
                    NodeEvent::PeerAdded(p) => {
                        peers.insert(p.id);
                    }
                    NodeEvent::Dns(d) => {
                        if let devp2p_core::dnsdisc::Event::RootUpdated { seq, .. } = *d {
                            assert_eq!(seq, 7);
                            roots += 1;
                        }
                    }
                    _ => {}
                }
                if peers.len() == 3 {
                    break;
                }
            }
        })
        .await;
        assert_eq!(roots, 1, "one root accepted");
        peers
    });
    let stats = runtime.block_on(tokio_node.stats()).unwrap().node;
    assert_eq!(tokio_peers, want, "tokio: {stats:?}");
    assert_eq!(stats.dns_errors, 0, "{stats:?}");
    assert!(stats.dns_nodes >= 3 && stats.dns_lookups >= 5, "{stats:?}");

    let mut mio_peers = BTreeSet::new();
    let give_up = Instant::now() + CONNECT_WITHIN;
    while mio_peers.len() < 3 && Instant::now() < give_up {
        if let Ok(NodeEvent::PeerAdded(p)) = rx.recv_timeout(Duration::from_millis(100)) {
            mio_peers.insert(p.id);
        }
    }
    let mio_stats = remote
        .call(|r| r.drivers().first().map(|d| d.stats().node))
        .unwrap();
    assert_eq!(mio_peers, want, "mio: {mio_stats:?}");

    remote.stop();
    mio_thread.join().unwrap().unwrap();
    let _ = runtime.block_on(tokio_node.shutdown());
    drop(server);
}

#[test]
fn devp2p_node_with_dns_and_no_bootnodes_holds_sessions_with_the_trees_nodes() {
    let Some(bin) = dnsmasq_path() else { return };
    let dir = tempdir("cli-walk");
    let targets = LiveNodes::start(2, 1);
    let (server, url) = serve_tree(&bin, &dir, &targets.records, "cli.example.org");
    devp2p_node_reaches_every_node_of_the_tree(&url.to_string(), server.port, &targets.ids());
    drop(server);
}

#[test]
fn devp2p_node_refuses_a_bad_tree_url_and_warns_once_about_a_tree_it_cannot_resolve() {
    let bad = devp2p(&["node", "--listen", "127.0.0.1:0", "--dns", "enrtree://nope"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("enrtree://nope") && err.contains("enrtree://<key>@<domain>"),
        "{err}"
    );

    // A name server that does not know the tree's domain: the root lookup fails at once,
    // again and again; the log says so once, naming the tree, and the node keeps running.
    let Some(bin) = dnsmasq_path() else { return };
    let dir = tempdir("nowhere");
    let (server, _) = serve_tree(&bin, &dir, &[], "elsewhere.example.org");
    let port = server.port;
    let url = "enrtree://AKPYQIUQIL7PSIACI32J7FGZW56E5FKHEFCCOFHILBIMW3M6LWXS2@nowhere.example.org";
    let child = Command::new(env!("CARGO_BIN_EXE_devp2p"))
        .args(["node", "--listen", "127.0.0.1:0", "--nodekey-hex"])
        .arg("0101010101010101010101010101010101010101010101010101010101010101")
        .args(["--dns", url, "--dns-server", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn,devp2p_tokio=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Five failures in a row, then one every 5 s (geth's slowdown).
    std::thread::sleep(Duration::from_secs(3));
    let out = terminate(child);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let failures: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("DNS discovery failed"))
        .collect();
    let warnings = failures.iter().filter(|l| l.contains("WARN")).count();
    assert_eq!(warnings, 1, "one warning per outage: {err}");
    assert!(failures.len() >= 5, "the later failures at debug: {err}");
    assert!(failures[0].contains("nowhere.example.org"), "{err}");
    drop(server);
}
