//! go-ethereum's discovery v5 (`p2p/discover.ListenV5`) as a [`V5Peer`]: the harness program
//! of `tests/interop/geth/` in its `discv5` mode (see `tests/interop/geth/README.md`), a child
//! process driven by [`GethPeer`].

use std::time::Duration;

use devp2p_core::{Enr, NodeId};
use serde_json::{json, Value};

use super::geth_process::GethPeer;
use super::{
    hex, pong_of, record_of, records_of, rlp_string, unhex, Kind, Options, Pong, TalkSeen,
    Transform, V5Peer, LOCAL_WAIT, LOOKUP_WAIT, WAIT,
};

/// A geth discv5 node.
pub struct GethNode {
    peer: GethPeer,
}

impl GethNode {
    /// Starts `harness discv5` with `opts` (geth ignores `min_seq`: its first seq is the
    /// clock in milliseconds) and `extra` flags (`--v4`, `--ping-interval 500ms`, …).
    pub fn start_with(opts: Options, extra: &[&str]) -> Self {
        let key = hex(&opts.key.to_bytes());
        let listen = format!("127.0.0.1:{}", opts.port);
        let boot: Vec<String> = opts.bootnodes.iter().map(Enr::to_string).collect();
        let boot = boot.join(",");
        let mut args = vec!["discv5", "--key", &key, "--listen", &listen];
        if !boot.is_empty() {
            args.extend(["--bootnodes", &boot]);
        }
        args.extend(extra);
        GethNode {
            peer: GethPeer::start(&args),
        }
    }

    /// Starts `harness discv5` with `opts`.
    pub fn start(opts: Options) -> Self {
        Self::start_with(opts, &[])
    }

    /// The child process, for what the trait does not cover (its log, `v4_ping`).
    pub fn process(&mut self) -> &mut GethPeer {
        &mut self.peer
    }

    /// Sends `cmd` and waits for its answer; `Err` with geth's error text.
    pub fn call(&mut self, cmd: Value, timeout: Duration) -> Result<Value, String> {
        let answer = self.peer.request(cmd, timeout);
        if answer["event"] == "error" {
            return Err(answer["error"].as_str().unwrap_or_default().to_string());
        }
        Ok(answer)
    }
}

impl V5Peer for GethNode {
    fn kind(&self) -> Kind {
        Kind::Geth
    }

    fn record(&self) -> Enr {
        self.current_record()
    }

    fn ping(&mut self, to: &Enr) -> Result<Pong, String> {
        let v = self.call(json!({"cmd": "ping", "enr": to.to_string()}), WAIT)?;
        pong_of(&v)
    }

    fn find_node(&mut self, to: &Enr, distances: &[u64]) -> Result<Vec<Enr>, String> {
        let cmd = json!({"cmd": "findnode", "enr": to.to_string(), "distances": distances});
        let v = self.call(cmd, WAIT)?;
        records_of(&v, "nodes")
    }

    fn request_record(&mut self, to: &Enr) -> Result<Enr, String> {
        let v = self.call(json!({"cmd": "requestenr", "enr": to.to_string()}), WAIT)?;
        record_of(&v)
    }

    fn talk(&mut self, to: &Enr, protocol: &[u8], request: &[u8]) -> Result<Vec<u8>, String> {
        let protocol = String::from_utf8(protocol.to_vec()).map_err(|e| e.to_string())?;
        let cmd = json!({"cmd": "talk", "enr": to.to_string(), "protocol": protocol, "hex": hex(request)});
        let v = self.call(cmd, WAIT)?;
        unhex(v["hex"].as_str().unwrap_or_default())
    }

    fn register_talk(&mut self, protocol: &[u8], transform: Transform) {
        let mut cmd = transform.to_json();
        cmd["cmd"] = json!("register_talk");
        cmd["protocol"] = json!(String::from_utf8_lossy(protocol));
        self.call(cmd, LOCAL_WAIT)
            .expect("geth registers a talk handler");
    }

    fn talk_requests(&self) -> Vec<TalkSeen> {
        self.peer
            .matching(|e| e["event"] == "talk_request")
            .into_iter()
            .map(|e| TalkSeen {
                from: e["peer"]
                    .as_str()
                    .and_then(parse_id)
                    .unwrap_or(NodeId([0; 32])),
                protocol: e["protocol"]
                    .as_str()
                    .unwrap_or_default()
                    .as_bytes()
                    .to_vec(),
                request: unhex(e["hex"].as_str().unwrap_or_default()).unwrap_or_default(),
            })
            .collect()
    }

    fn lookup(&mut self, target: NodeId) -> Result<Vec<Enr>, String> {
        let v = self.call(
            json!({"cmd": "lookup", "target": target.to_string()}),
            LOOKUP_WAIT,
        )?;
        records_of(&v, "nodes")
    }

    fn table(&mut self) -> Vec<Enr> {
        let v = self
            .call(json!({"cmd": "table"}), LOCAL_WAIT)
            .expect("geth prints its table");
        records_of(&v, "nodes").expect("geth's table records")
    }

    fn set_enr_field(&mut self, key: &str, value: &[u8]) -> Enr {
        let cmd = json!({"cmd": "set_enr_field", "key": key, "value": hex(&rlp_string(value))});
        let v = self
            .call(cmd, LOCAL_WAIT)
            .expect("geth sets a record entry");
        record_of(&v).expect("geth's new record")
    }
}

impl GethNode {
    fn current_record(&self) -> Enr {
        // The last record geth printed: at `listening`, or answering `set_enr_field` or
        // `enr`. Its record changes only then here: its IP is static, and the UDP port it
        // would learn from PONG votes on loopback is the one it has.
        let last = self
            .peer
            .matching(|e| {
                (e["event"] == "listening" || e["event"] == "enr") && e["rlp"].is_string()
            })
            .pop()
            .expect("geth printed its record at start");
        record_of(&last).expect("geth's record")
    }
}

fn parse_id(s: &str) -> Option<NodeId> {
    let b = unhex(s).ok()?;
    Some(NodeId(b.try_into().ok()?))
}
