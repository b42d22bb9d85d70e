//! DNS discovery against a real DNS server: dnsmasq (Debian's `dnsmasq-base`, which `.ci/run`
//! installs) on 127.0.0.1 serving trees as TXT records, every entry longer than 255 bytes
//! split into several character-strings as real zones publish them. `devp2p dns sign` and
//! `dns to-txt` publish a tree, dnsmasq serves it, and `devp2p dns sync` reads it back
//! through the resolver. Without dnsmasq the test fails and says what to install;
//! `DEVP2P_SKIP_DNSMASQ=1` skips it, saying so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "support/dnsmasq.rs"]
mod dnsmasq;
use dnsmasq::{dnsmasq_path, serve};

use devp2p_core::dnsdisc::Tree;
use devp2p_core::{Enr, NodeSecretKey};
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

fn nodes_json(records: &[Enr]) -> String {
    let mut m = serde_json::Map::new();
    for r in records {
        m.insert(
            r.node_id().to_string(),
            serde_json::json!({"seq": r.seq(), "record": r.to_string()}),
        );
    }
    serde_json::to_string_pretty(&serde_json::Value::Object(m)).unwrap()
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
