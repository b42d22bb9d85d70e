//! sigp/discv5 (crates.io `discv5`, the discv5 of Lighthouse and reth) as a [`V5Peer`]: a
//! `discv5::Discv5` in the test process, on a tokio runtime of its own, over a UDP socket on
//! 127.0.0.1. Records cross between its `enr` crate and ours as `enr:` text.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use ::discv5::{ConfigBuilder, Discv5, Event, ListenConfig, NodeContact};
use ::enr::{CombinedKey, NodeId as SigpNodeId};
use devp2p_core::{Enr, NodeId};

use super::{Kind, Options, Pong, TalkSeen, Transform, V5Peer, LOOKUP_WAIT, WAIT};

type SigpEnr = ::discv5::Enr;

/// A sigp/discv5 node and the runtime it runs on.
pub struct SigpNode {
    disc: Discv5,
    talk: Arc<Mutex<BTreeMap<Vec<u8>, Transform>>>,
    seen: Arc<Mutex<Vec<TalkSeen>>>,
    // Dropped last: the service's tasks run on it.
    rt: tokio::runtime::Runtime,
}

impl SigpNode {
    /// Starts a node with `opts` (its first record has seq `min_seq`).
    pub fn start(opts: Options) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sigp-discv5")
            .enable_all()
            .build()
            .expect("a tokio runtime for sigp/discv5");
        let mut secret = opts.key.to_bytes();
        let key = CombinedKey::secp256k1_from_bytes(&mut secret).expect("a secp256k1 key");
        // Our socket, so that the record can name the port before the service starts.
        let socket = rt
            .block_on(tokio::net::UdpSocket::bind(SocketAddr::from((
                Ipv4Addr::LOCALHOST,
                opts.port,
            ))))
            .unwrap_or_else(|e| panic!("binding 127.0.0.1:{}: {e}", opts.port));
        let port = socket.local_addr().expect("bound").port();
        let record = SigpEnr::builder()
            .seq(opts.min_seq.max(1))
            .ip4(Ipv4Addr::LOCALHOST)
            .udp4(port)
            .build(&key)
            .expect("sigp signs its record");
        let listen = ListenConfig::FromSockets {
            ipv4: Some(Arc::new(socket)),
            ipv6: None,
        };
        let config = ConfigBuilder::new(listen).build();
        let talk: Arc<Mutex<BTreeMap<Vec<u8>, Transform>>> = Arc::default();
        let seen: Arc<Mutex<Vec<TalkSeen>>> = Arc::default();
        let mut disc = Discv5::new(record, key, config).expect("sigp/discv5 starts");
        // On its runtime: the service spawns its tasks with tokio::spawn.
        rt.block_on(disc.start()).expect("sigp/discv5 listens");
        for b in &opts.bootnodes {
            disc.add_enr(to_sigp(b))
                .unwrap_or_else(|e| panic!("sigp refuses bootnode {b}: {e}"));
        }
        let mut events = rt
            .block_on(disc.event_stream())
            .expect("sigp's event stream");
        let (t, s) = (talk.clone(), seen.clone());
        rt.spawn(async move {
            while let Some(event) = events.recv().await {
                if let Event::TalkRequest(req) = event {
                    let transform = t.lock().unwrap().get(req.protocol()).cloned();
                    // An unregistered protocol: the request is dropped, and sigp's drop
                    // answers with an empty TALKRESP.
                    if let Some(transform) = transform {
                        s.lock().unwrap().push(TalkSeen {
                            from: NodeId(req.node_id().raw()),
                            protocol: req.protocol().to_vec(),
                            request: req.body().to_vec(),
                        });
                        let answer = transform.apply(req.body());
                        let _ = req.respond(answer);
                    }
                }
            }
        });
        SigpNode {
            disc,
            talk,
            seen,
            rt,
        }
    }

    /// Runs `f` on the node's runtime for at most `limit`.
    fn run<T>(
        &self,
        what: &str,
        limit: std::time::Duration,
        f: impl Future<Output = T>,
    ) -> Result<T, String> {
        self.rt
            .block_on(async { tokio::time::timeout(limit, f).await })
            .map_err(|_| format!("sigp: {what} did not end within {limit:?}"))
    }
}

impl Drop for SigpNode {
    fn drop(&mut self) {
        self.disc.shutdown();
    }
}

/// Our record in sigp's types.
pub fn to_sigp(r: &Enr) -> SigpEnr {
    r.to_string()
        .parse()
        .unwrap_or_else(|e| panic!("sigp cannot read our record {r}: {e}"))
}

/// sigp's record in ours (decoded, and so verified, by us).
pub fn from_sigp(r: &SigpEnr) -> Enr {
    let text = r.to_base64();
    text.parse()
        .unwrap_or_else(|e| panic!("we cannot read sigp's record {text}: {e:?}"))
}

impl V5Peer for SigpNode {
    fn kind(&self) -> Kind {
        Kind::Sigp
    }

    fn record(&self) -> Enr {
        from_sigp(&self.disc.local_enr())
    }

    fn ping(&mut self, to: &Enr) -> Result<Pong, String> {
        let pong = self
            .run("PING", WAIT, self.disc.send_ping(to_sigp(to)))?
            .map_err(|e| format!("{e:?}"))?;
        Ok(Pong {
            enr_seq: pong.enr_seq,
            addr: SocketAddr::new(pong.ip, pong.port),
        })
    }

    fn find_node(&mut self, to: &Enr, distances: &[u64]) -> Result<Vec<Enr>, String> {
        let ask = self
            .disc
            .find_node_designated_peer(to_sigp(to), distances.to_vec());
        let found = self
            .run("FINDNODE", WAIT, ask)?
            .map_err(|e| format!("{e:?}"))?;
        Ok(found.iter().map(from_sigp).collect())
    }

    fn talk(&mut self, to: &Enr, protocol: &[u8], request: &[u8]) -> Result<Vec<u8>, String> {
        let contact = NodeContact::try_from_enr(to_sigp(to), self.disc.ip_mode())
            .map_err(|e| format!("{e:?}"))?;
        let ask = self
            .disc
            .talk_req(contact, protocol.to_vec(), request.to_vec());
        self.run("TALKREQ", WAIT, ask)?
            .map_err(|e| format!("{e:?}"))
    }

    fn register_talk(&mut self, protocol: &[u8], transform: Transform) {
        self.talk
            .lock()
            .unwrap()
            .insert(protocol.to_vec(), transform);
    }

    fn talk_requests(&self) -> Vec<TalkSeen> {
        self.seen.lock().unwrap().clone()
    }

    fn lookup(&mut self, target: NodeId) -> Result<Vec<Enr>, String> {
        let ask = self.disc.find_node(SigpNodeId::new(&target.0));
        let found = self
            .run("a lookup", LOOKUP_WAIT, ask)?
            .map_err(|e| format!("{e:?}"))?;
        Ok(found.iter().map(from_sigp).collect())
    }

    fn table(&mut self) -> Vec<Enr> {
        self.disc
            .table_entries_enr()
            .iter()
            .map(from_sigp)
            .collect()
    }

    fn set_enr_field(&mut self, key: &str, value: &[u8]) -> Enr {
        self.disc
            .enr_insert(key, &value)
            .unwrap_or_else(|e| panic!("sigp sets {key}: {e:?}"));
        self.record()
    }
}
