//! `devp2p discv4 listen` and `devp2p discv4 resolve-json`, against live nodes of ours on
//! 127.0.0.1: a bootnode that our own probes ping, ask for its record and look nodes up
//! through, and a node set refreshed with geth's scoring.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use devp2p_core::{Enr, NodeSecretKey};
use serde_json::{json, Value};

fn devp2p(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_devp2p"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running devp2p")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A running `devp2p discv4 listen`, with the record it printed first.
struct Listener {
    child: Child,
    _lines: std::io::Lines<BufReader<ChildStdout>>,
    record: String,
}

impl Listener {
    fn start(key_hex: &str, extra: &[&str]) -> Listener {
        let mut child = Command::new(env!("CARGO_BIN_EXE_devp2p"))
            .args([
                "discv4",
                "listen",
                "--listen",
                "127.0.0.1:0",
                "--nodekey-hex",
                key_hex,
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting devp2p discv4 listen");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let record = lines.next().expect("a record line").unwrap();
        assert!(record.starts_with("enr:"), "{record}");
        Listener {
            child,
            _lines: lines,
            record,
        }
    }

    fn enr(&self) -> Enr {
        self.record.parse().unwrap()
    }

    /// SIGTERM; it must exit 0.
    fn stop(mut self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        assert!(self.child.wait().unwrap().success());
    }
}

fn key(byte: u8) -> (String, NodeSecretKey) {
    let hex = format!("{byte:02x}").repeat(32);
    let k = NodeSecretKey::from_hex(&hex).unwrap();
    (hex, k)
}

#[test]
fn discv4_listen_answers_ping_enrrequest_and_findnode_and_stops_on_sigterm() {
    let (ka, a_key) = key(0x11);
    let a = Listener::start(&ka, &[]);
    assert_eq!(a.enr().node_id(), a_key.id());
    assert_eq!(a.enr().ip(), Some([127, 0, 0, 1].into()));

    let pong = ok(&devp2p(&["discv4", "ping", &a.record, "--json"]));
    let pong: Value = serde_json::from_str(pong.trim()).unwrap();
    assert_eq!(pong["id"], a_key.id().to_string());
    assert_eq!(pong["enr_seq"], a.enr().seq());

    let record = ok(&devp2p(&["discv4", "requestenr", &a.record]));
    assert_eq!(record.lines().next(), Some(a.record.as_str()));

    // FindNode: a second bootnode that knows the first is found through it.
    let (kb, b_key) = key(0x22);
    let b = Listener::start(&kb, &["--bootnodes", &a.record]);
    let found = ok(&devp2p(&[
        "discv4",
        "resolve",
        &b.record,
        "--bootnodes",
        &a.record,
    ]));
    let enode: devp2p_core::Enode = found.lines().next().unwrap().parse().unwrap();
    assert_eq!(enode.id(), b_key.id());
    assert_eq!(enode.udp_port, b.enr().udp4().unwrap());

    b.stop();
    a.stop();
}

/// A record of `key` at `port` of 127.0.0.1 with sequence number `seq`.
fn record(key: &NodeSecretKey, port: u16, seq: u64) -> Enr {
    Enr::builder()
        .seq(seq)
        .ip([127, 0, 0, 1].into())
        .tcp4(port)
        .udp4(port)
        .sign(key)
        .unwrap()
}

/// An entry as geth writes it (`score` left out when 0).
fn entry(r: &Enr, score: i64, time: &str) -> Value {
    let mut e = json!({
        "seq": r.seq(), "record": r.to_string(),
        "firstResponse": time, "lastResponse": time, "lastCheck": time,
    });
    if score != 0 {
        e["score"] = json!(score);
    }
    e
}

/// A UDP port nobody listens on any more.
fn closed_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn resolve_json_takes_new_records_and_scores_silent_nodes_as_geth_does() {
    let dir = std::env::temp_dir().join(format!("devp2p-resolve-json-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("nodes.json");

    // Two live nodes: one in the file under an old record, one given after the file.
    let (k_old, old_key) = key(0x31);
    let live_old = Listener::start(&k_old, &[]);
    let (k_new, new_key) = key(0x32);
    let live_new = Listener::start(&k_new, &[]);
    let port = live_old.enr().udp4().unwrap();
    let stale = record(&old_key, port, 1);
    // Three silent nodes: never answered, answered once, answered five times.
    let never = record(&key(0x41).1, closed_port(), 3);
    let once = record(&key(0x42).1, closed_port(), 3);
    let often = record(&key(0x43).1, closed_port(), 3);
    let then = "2020-01-02T03:04:05Z";
    let zero = "0001-01-01T00:00:00Z";
    let mut set = serde_json::Map::new();
    set.insert(old_key.id().to_string(), entry(&stale, 3, then));
    set.insert(never.node_id().to_string(), entry(&never, 0, zero));
    set.insert(once.node_id().to_string(), entry(&once, 1, then));
    set.insert(often.node_id().to_string(), entry(&often, 5, then));
    std::fs::write(&file, serde_json::to_string_pretty(&set).unwrap()).unwrap();

    let out = devp2p(&[
        "discv4",
        "resolve-json",
        file.to_str().unwrap(),
        &live_new.record,
    ]);
    ok(&out);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("5 nodes checked"), "{summary}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let got = v.as_object().unwrap();

    // The old record gave way to the live one; the score grew; the first answer stays.
    let e = &got[&old_key.id().to_string()];
    assert_eq!(e["record"], live_old.record.as_str());
    assert_eq!(e["seq"], live_old.enr().seq());
    assert_eq!(e["score"], 4);
    assert_eq!(e["firstResponse"], then);
    assert_eq!(e["lastResponse"], e["lastCheck"]);
    assert!(e["lastCheck"].as_str().unwrap() > "2026", "{e}");
    // The node given after the file joined, with its first answer now.
    let e = &got[&new_key.id().to_string()];
    assert_eq!(e["record"], live_new.record.as_str());
    assert_eq!(e["score"], 1);
    assert_eq!(e["firstResponse"], e["lastCheck"]);
    // Never answered: left exactly as it was (geth's "incompatible").
    assert_eq!(got[&never.node_id().to_string()], entry(&never, 0, zero));
    // Answered once: the score halves to 0 and the entry is gone, as in geth.
    assert!(!got.contains_key(&once.node_id().to_string()));
    // Answered five times: the score halves to 2, only lastCheck moves.
    let e = &got[&often.node_id().to_string()];
    assert_eq!(e["score"], 2);
    assert_eq!(
        (&e["firstResponse"], &e["lastResponse"]),
        (&json!(then), &json!(then))
    );
    assert!(e["lastCheck"].as_str().unwrap() > "2026", "{e}");
    assert_eq!(got.len(), 4);

    live_old.stop();
    live_new.stop();

    // Nothing to check: said, and nothing written.
    let empty = dir.join("empty.json");
    let out = devp2p(&["discv4", "resolve-json", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--bootnodes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!empty.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
