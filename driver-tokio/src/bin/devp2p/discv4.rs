//! `devp2p discv4 …`. `ping` and `requestenr` speak the wire format directly (a probe of
//! one node needs no table); `resolve` and `crawl` run a whole node without dialling.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use devp2p_core::discv4::wire::{
    self, Decoded, Endpoint, EnrRequest, Packet, Ping, Pong, MAX_PACKET_SIZE, PING_VERSION,
};
use devp2p_core::discv4::{
    Event as DiscoveryEvent, Node as DiscNode, PACKET_EXPIRATION_SECS, RESPONSE_TIMEOUT,
};
use devp2p_core::node::NodeEvent;
use devp2p_core::{Enode, Enr, NodeId, NodeSecretKey};
use devp2p_mio::common::{os_seeded_rng, Clock, DriverConfig};
use serde_json::json;
use tokio::net::UdpSocket;

use crate::args::show;
use crate::Failure;

/// Lookups a crawl keeps running at once (geth's crawler runs several iterators too).
const CRAWL_PARALLEL_LOOKUPS: usize = 3;
/// How often the crawl's progress line is redrawn on a terminal.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// How often a progress line is printed when stderr is not a terminal.
const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// One node probed over UDP: our throwaway key, a socket connected to it.
struct Probe {
    socket: UdpSocket,
    key: NodeSecretKey,
    remote: Enode,
    local: SocketAddr,
    clock: Clock,
    buf: Vec<u8>,
    /// The node id of valid packets from the remote's address signed by another key than the
    /// enode's: the key in the enode is wrong or stale (reported if the right key never
    /// answers).
    answered_as: Option<NodeId>,
}

impl Probe {
    async fn new(remote: &Enode) -> Result<Self, Failure> {
        let to = remote
            .udp_addr()
            .ok_or_else(|| format!("{remote} has no IP address"))?;
        if to.port() == 0 {
            return Err(
                format!("{remote} has no UDP port: the node does not run discovery").into(),
            );
        }
        let any: IpAddr = if to.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let socket = UdpSocket::bind((any, 0))
            .await
            .map_err(|e| format!("binding a UDP socket: {e}"))?;
        // Connected: the OS picks our source address (which we advertise in Ping) and reports
        // an unreachable port as an error instead of silence.
        socket.connect(to).await.map_err(|e| format!("{to}: {e}"))?;
        let local = socket.local_addr()?;
        let mut rng = os_seeded_rng().map_err(|e| format!("reading OS entropy: {e}"))?;
        Ok(Probe {
            socket,
            key: NodeSecretKey::generate(&mut rng),
            remote: remote.clone(),
            local,
            clock: Clock::new(),
            buf: vec![0; MAX_PACKET_SIZE + 1],
            answered_as: None,
        })
    }

    fn expiration(&self) -> u64 {
        self.clock.unix_secs() + PACKET_EXPIRATION_SECS
    }

    async fn send(&self, packet: &Packet) -> Result<[u8; 32], Failure> {
        let (bytes, hash) = wire::encode(packet, &self.key);
        self.socket
            .send(&bytes)
            .await
            .map_err(|e| format!("sending to {}: {e}", self.remote_addr()))?;
        Ok(hash)
    }

    fn remote_addr(&self) -> String {
        self.remote
            .udp_addr()
            .map_or_else(|| self.remote.to_string(), |a| a.to_string())
    }

    async fn ping(&self) -> Result<[u8; 32], Failure> {
        let to = self.remote.udp_addr().ok_or("no address")?;
        self.send(&Packet::Ping(Ping {
            version: PING_VERSION,
            from: Endpoint {
                ip: Some(self.local.ip()),
                udp: self.local.port(),
                tcp: 0,
            },
            to: Endpoint {
                ip: Some(to.ip()),
                udp: to.port(),
                tcp: self.remote.tcp_port,
            },
            expiration: self.expiration(),
            enr_seq: None,
        }))
        .await
    }

    /// The next valid packet from the remote, until `deadline`. Pings are answered with a
    /// Pong (that is the endpoint proof the remote wants before it answers requests) and
    /// returned too.
    async fn next(&mut self, deadline: Instant) -> Result<Option<Decoded>, Failure> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let n = match tokio::time::timeout(left, self.socket.recv(&mut self.buf)).await {
                Err(_) => return Ok(None),
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    return Err(format!("{}: {e}", self.remote_addr()).into());
                }
            };
            let Ok(d) = wire::decode(&self.buf[..n]) else {
                continue;
            };
            if d.sender != self.remote.public_key {
                // The socket is connected: this came from the node's address, signed by
                // another key. Keep waiting for the right key, in case both answer.
                self.answered_as = Some(d.sender.id());
                continue;
            }
            if let Some(exp) = d.packet.expiration() {
                if wire::is_expired(exp, self.clock.unix_secs()) {
                    continue;
                }
            }
            if matches!(d.packet, Packet::Ping(_)) {
                let to = self.remote.udp_addr().ok_or("no address")?;
                self.send(&Packet::Pong(Pong {
                    to: Endpoint {
                        ip: Some(to.ip()),
                        udp: to.port(),
                        tcp: 0,
                    },
                    ping_hash: d.hash,
                    expiration: self.expiration(),
                    enr_seq: None,
                }))
                .await?;
            }
            return Ok(Some(d));
        }
    }

    /// The failure to report when the remote did not answer in time: the key mismatch if
    /// another key answered from its address, else `otherwise`.
    fn no_answer(&self, otherwise: String) -> Failure {
        match self.answered_as {
            Some(other) => format!(
                "the node at {} answered, but as node {other}, not {}: the enode's key is \
                 wrong or stale (use the id it answered as, e.g. from its current enode URL)",
                self.remote_addr(),
                self.remote.id()
            )
            .into(),
            None => otherwise.into(),
        }
    }

    /// Pings until a Pong answers one of our Pings; returns it with the round-trip time.
    async fn ping_until_pong(
        &mut self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(Pong, Duration), Failure> {
        let mut sent: Vec<([u8; 32], Instant)> = Vec::new();
        loop {
            let hash = self.ping().await?;
            sent.push((hash, Instant::now()));
            let retry = (Instant::now() + RESPONSE_TIMEOUT).min(deadline);
            while let Some(d) = self.next(retry).await? {
                if let Packet::Pong(p) = d.packet {
                    if let Some((_, at)) = sent.iter().find(|(h, _)| *h == p.ping_hash) {
                        return Ok((p, at.elapsed()));
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(self.no_answer(format!(
                    "no Pong from {} within {} (is the node up, and is its UDP port {} \
                     reachable? try a longer --timeout)",
                    self.remote_addr(),
                    show(timeout),
                    self.remote.udp_port
                )));
            }
        }
    }
}

pub async fn ping(enode: &Enode, timeout: Duration, json: bool) -> Result<ExitCode, Failure> {
    let mut probe = Probe::new(enode).await?;
    let deadline = Instant::now() + timeout;
    let (pong, rtt) = probe.ping_until_pong(deadline, timeout).await?;
    let rtt_ms = (rtt.as_secs_f64() * 1e6).round() / 1e3;
    if json {
        outln!(
            "{}",
            crate::output::ordered(&[
                ("id", json!(enode.id().to_string())),
                ("rtt_ms", json!(rtt_ms)),
                ("enr_seq", json!(pong.enr_seq)),
            ])
        );
    } else {
        outln!("id:      {}", enode.id());
        outln!("rtt:     {rtt_ms} ms");
        match pong.enr_seq {
            Some(s) => outln!("enr seq: {s}"),
            None => outln!("enr seq: (not sent)"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn request_enr(enode: &Enode, timeout: Duration) -> Result<ExitCode, Failure> {
    let mut probe = Probe::new(enode).await?;
    let deadline = Instant::now() + timeout;
    probe.ping_until_pong(deadline, timeout).await?;
    // The remote answers ENRRequest only once it holds our endpoint proof: it pings back, we
    // pong (inside `next`). Ask, and ask again every response timeout.
    let mut asked: Vec<[u8; 32]> = Vec::new();
    loop {
        let hash = probe
            .send(&Packet::EnrRequest(EnrRequest {
                expiration: probe.expiration(),
            }))
            .await?;
        asked.push(hash);
        let retry = (Instant::now() + RESPONSE_TIMEOUT).min(deadline);
        while let Some(d) = probe.next(retry).await? {
            if let Packet::EnrResponse(r) = d.packet {
                if asked.contains(&r.request_hash) {
                    outln!("{}", r.record);
                    crate::enr::print_record(&r.record);
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
        if Instant::now() >= deadline {
            // The right key answered Ping: a key mismatch is not the story here.
            return Err(format!(
                "no ENRResponse from {} within {} (it answered Ping)",
                probe.remote_addr(),
                show(timeout)
            )
            .into());
        }
    }
}

/// Whether any node answered (a valid datagram arrived): only the bootnodes know our
/// address at first, so none at all means none of them answered.
async fn anyone_answered(node: &devp2p_tokio::NodeHandle) -> Result<bool, Failure> {
    let stats = node.stats().await?.node;
    Ok(stats.packets_in.values().sum::<u64>() > 0)
}

/// The failure when no bootnode answered, naming them.
fn no_bootnode_answered(bootnodes: &[Enode], timeout: Duration) -> Failure {
    let list: Vec<String> = bootnodes.iter().map(|b| format!("  {b}")).collect();
    format!(
        "no bootnode answered within {}; check that these are up, that their keys are \
         current, and that their UDP ports are reachable from here:\n{}",
        show(timeout),
        list.join("\n")
    )
    .into()
}

/// A node that runs discovery only: it never dials and admits nobody.
fn discovery_only(bootnodes: Vec<Enode>) -> DriverConfig {
    let mut config = DriverConfig::default();
    config.node.listen = (Ipv4Addr::UNSPECIFIED, 0).into();
    config.node.bootnodes = bootnodes;
    config.node.no_dial = true;
    config.node.max_peers = 0;
    config
}

pub async fn resolve(
    enode: &Enode,
    bootnodes: Vec<Enode>,
    timeout: Duration,
) -> Result<ExitCode, Failure> {
    let (node, _events) = devp2p_tokio::spawn(discovery_only(bootnodes.clone()))?;
    let deadline = Instant::now() + timeout;
    let wanted = enode.id();
    let mut found: Option<DiscNode> = None;
    while found.is_none() && Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(nodes) = tokio::time::timeout(left, node.lookup(&enode.public_key)).await else {
            break;
        };
        found = nodes?.into_iter().find(|n| n.id() == wanted);
        if found.is_none() {
            found = node.table().await?.into_iter().find(|n| n.id() == wanted);
        }
    }
    let answered = anyone_answered(&node).await?;
    let _ = node.shutdown().await;
    match found {
        Some(n) => {
            outln!(
                "{}",
                Enode::new(*n.public_key(), n.ip(), n.tcp_port(), n.udp_port())
            );
            if let Some(r) = n.record() {
                outln!("{r}");
            }
            Ok(ExitCode::SUCCESS)
        }
        None if !answered => Err(no_bootnode_answered(&bootnodes, timeout)),
        None => Err(format!(
            "node {wanted} not found in the DHT within {} (the bootnodes answered; the node \
             may be offline, or a longer --timeout may find it)",
            show(timeout)
        )
        .into()),
    }
}

struct Crawled {
    enode: String,
    record: Option<Enr>,
    first_seen_ms: u128,
}

pub async fn crawl(
    bootnodes: Vec<Enode>,
    timeout: Duration,
    out: Option<&Path>,
) -> Result<ExitCode, Failure> {
    let (node, mut events) = devp2p_tokio::spawn(discovery_only(bootnodes.clone()))?;
    let started = Instant::now();
    let deadline = started + timeout;
    let mut lookups = tokio::task::JoinSet::new();
    for _ in 0..CRAWL_PARALLEL_LOOKUPS {
        let node = node.clone();
        lookups.spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                if node.lookup_random().await.is_err() {
                    break;
                }
                done += 1;
            }
            done
        });
    }
    let mut nodes: BTreeMap<NodeId, Crawled> = BTreeMap::new();
    let tty = std::io::stderr().is_terminal();
    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
    let mut last_log = Instant::now();
    let sleep = tokio::time::sleep_until(deadline.into());
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            e = events.recv() => match e {
                Some(NodeEvent::Discovery(d)) => {
                    let seen: Vec<DiscNode> = match *d {
                        DiscoveryEvent::NodeAdded(n) | DiscoveryEvent::NodeSeen(n) => vec![n],
                        DiscoveryEvent::LookupFinished { nodes, .. } => nodes,
                        _ => vec![],
                    };
                    for n in seen {
                        let entry = nodes.entry(n.id()).or_insert_with(|| Crawled {
                            enode: Enode::new(*n.public_key(), n.ip(), n.tcp_port(), n.udp_port()).to_string(),
                            record: None,
                            first_seen_ms: started.elapsed().as_millis(),
                        });
                        if let Some(r) = n.record() {
                            if entry.record.as_ref().is_none_or(|old| old.seq() < r.seq()) {
                                entry.record = Some(r.clone());
                            }
                        }
                    }
                }
                Some(_) => {}
                None => break,
            },
            _ = ticker.tick() => {
                let line = format!(
                    "crawl: {:>5.1}s  {} nodes",
                    started.elapsed().as_secs_f64(),
                    nodes.len()
                );
                if tty {
                    eprint!("\r{line}   ");
                    let _ = std::io::stderr().flush();
                } else if last_log.elapsed() >= PROGRESS_LOG_INTERVAL {
                    eprintln!("{line}");
                    last_log = Instant::now();
                }
            }
            _ = &mut sleep => break,
        }
    }
    if tty {
        eprintln!();
    }
    let answered = anyone_answered(&node).await?;
    let _ = node.shutdown().await;
    let mut lookups_done = 0;
    while let Some(r) = lookups.join_next().await {
        lookups_done += r.unwrap_or(0);
    }
    let doc: serde_json::Map<String, serde_json::Value> = nodes
        .iter()
        .map(|(id, c)| {
            (
                id.to_string(),
                json!({
                    "enode": c.enode,
                    "record": c.record.as_ref().map(|r| r.to_string()),
                    "seq": c.record.as_ref().map(|r| r.seq()),
                    "first_seen_ms": c.first_seen_ms,
                }),
            )
        })
        .collect();
    eprintln!(
        "crawl: {} nodes ({} with records) in {} lookups over {}",
        nodes.len(),
        nodes.values().filter(|c| c.record.is_some()).count(),
        lookups_done,
        show(timeout)
    );
    if !answered {
        // Nothing was reached: an empty result file would look like a crawl of an empty
        // network.
        return Err(no_bootnode_answered(&bootnodes, timeout));
    }
    match out {
        Some(path) => {
            let mut bytes = serde_json::to_vec_pretty(&doc)?;
            bytes.push(b'\n');
            devp2p_mio::common::fsutil::write_atomic(path, &bytes, false)
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => {
            for c in nodes.values() {
                outln!("{}", c.enode);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
