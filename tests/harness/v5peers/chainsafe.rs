//! @chainsafe/discv5 as a [`V5Peer`]: `tests/interop/discv5.mjs` under Node.js, a child
//! process driven through [`EjsPeer`] (the pinned packages installed by
//! [`ready`](super::node_process::ready)).

use std::time::Duration;

use devp2p_core::{Enr, NodeId};
use serde_json::{json, Value};

use super::node_process::EjsPeer;
use super::{
    hex, pong_of, record_of, records_of, unhex, Kind, Options, Pong, TalkSeen, Transform, V5Peer,
    LOCAL_WAIT, LOOKUP_WAIT, WAIT,
};

/// A ChainSafe discv5 node.
pub struct ChainSafeNode {
    peer: EjsPeer,
    next_tag: u64,
}

impl ChainSafeNode {
    /// Starts `discv5.mjs` with `opts`.
    pub fn start(opts: Options) -> Self {
        let key = hex(&opts.key.to_bytes());
        let port = opts.port.to_string();
        let seq = opts.min_seq.max(1).to_string();
        let boot: Vec<String> = opts.bootnodes.iter().map(Enr::to_string).collect();
        let mut args = vec!["--key", &key, "--port", &port, "--seq", &seq];
        for b in &boot {
            args.extend(["--bootnode", b]);
        }
        ChainSafeNode {
            peer: EjsPeer::start_script("discv5.mjs", &args),
            next_tag: 0,
        }
    }

    /// The child process, for its log.
    pub fn process(&self) -> &EjsPeer {
        &self.peer
    }

    /// Sends `cmd` and waits for its answer; `Err` with the library's error text.
    pub fn call(&mut self, mut cmd: Value, timeout: Duration) -> Result<Value, String> {
        self.next_tag += 1;
        let tag = self.next_tag;
        cmd["tag"] = json!(tag);
        self.peer.send(cmd);
        let answer = self.peer.wait_for(
            &format!("chainsafe's answer to request {tag}"),
            timeout,
            |e| e["tag"] == tag,
        );
        if answer["event"] == "error" {
            return Err(answer["error"].as_str().unwrap_or_default().to_string());
        }
        Ok(answer)
    }
}

impl V5Peer for ChainSafeNode {
    fn kind(&self) -> Kind {
        Kind::ChainSafe
    }

    fn record(&self) -> Enr {
        // The last record it printed: at `listening`, or answering `enr` or `set_enr_field`
        // (its record changes only then: the script turns endpoint votes off).
        let last = self
            .peer
            .matching(|e| {
                (e["event"] == "listening" || e["event"] == "enr") && e["rlp"].is_string()
            })
            .pop()
            .expect("the script printed its record at start");
        record_of(&last).expect("chainsafe's record")
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
            .expect("the script registers a protocol");
    }

    fn talk_requests(&self) -> Vec<TalkSeen> {
        self.peer
            .matching(|e| e["event"] == "talk_request" && e["registered"] == true)
            .into_iter()
            .map(|e| TalkSeen {
                from: e["peer"]
                    .as_str()
                    .and_then(|s| unhex(s).ok())
                    .and_then(|b| b.try_into().ok())
                    .map(NodeId)
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
        let cmd = json!({"cmd": "lookup", "target": hex(&target.0)});
        let v = self.call(cmd, LOOKUP_WAIT)?;
        records_of(&v, "nodes")
    }

    fn table(&mut self) -> Vec<Enr> {
        let v = self
            .call(json!({"cmd": "table"}), LOCAL_WAIT)
            .expect("the script prints its table");
        records_of(&v, "nodes").expect("chainsafe's table records")
    }

    fn set_enr_field(&mut self, key: &str, value: &[u8]) -> Enr {
        let cmd = json!({"cmd": "set_enr_field", "key": key, "hex": hex(value)});
        let v = self
            .call(cmd, LOCAL_WAIT)
            .expect("the script sets a record entry");
        record_of(&v).expect("chainsafe's new record")
    }
}
