//! `devp2p discv4 …`. `ping`, `requestenr` and `resolve-json` (in its own module) speak the
//! wire format directly (a probe of one node needs no table); `resolve`, `crawl` and
//! `listen` run a whole node without dialling.

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

use crate::args::{show, NodeList};
use crate::Failure;

/// Lookups a crawl keeps running at once (geth's crawler runs several iterators too).
pub(crate) const CRAWL_PARALLEL_LOOKUPS: usize = 3;
/// Nodes a crawl checks (bond, ENRRequest; discv5: `FINDNODE [0]`) at once: geth's
/// crawler's `-parallel` default.
pub(crate) const CRAWL_PARALLEL_CHECKS: usize = 16;
/// Longest one check of a crawled node may take; checks still running when the lookups stop
/// get this long to finish.
pub(crate) const CRAWL_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the crawl's progress line is redrawn on a terminal.
pub(crate) const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// How often a progress line is printed when stderr is not a terminal.
pub(crate) const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// `discv4 listen`'s settings: geth's `--nodekey`, `--addr` and `--bootnodes`, and
/// `--nat` (none, extip:IP where geth has `--extaddr IP`, upnp, pmp, any) (geth's `--rpc` server is not offered).
#[derive(clap::Args)]
pub struct ListenArgs {
    #[command(flatten)]
    pub identity: crate::discv5::Identity,
    #[command(flatten)]
    pub nat: crate::node::NatArgs,
    /// Nodes to learn the network from (comma-separated enode URLs or enr: records).
    #[arg(long, value_parser = crate::args::parse_node_list)]
    pub bootnodes: Option<NodeList>,
    /// Print JSON lines: first {"event":"listening","enode","enr"}, then one per lookup.
    #[arg(long)]
    pub json: bool,
}

/// `discv4 listen`: a discv4 node that answers Ping, FindNode and ENRRequest and learns the
/// nodes that talk to it (a bootnode), until Ctrl-C or SIGTERM.
pub async fn listen(args: &ListenArgs) -> Result<ExitCode, Failure> {
    let bootnodes = args.bootnodes.clone().unwrap_or_default();
    let mut config = discovery_only(bootnodes.enodes);
    config.node.bootnode_records = bootnodes.records;
    config.key = args.identity.key_source();
    // geth's `discv4 listen` binds any address and a free port unless told otherwise.
    config.node.listen = args
        .identity
        .listen
        .unwrap_or((Ipv4Addr::UNSPECIFIED, 0).into());
    crate::node::serve_discovery(config, &args.nat, args.json).await
}

/// One node probed over UDP: our throwaway key, a socket connected to it.
pub(crate) struct Probe {
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
    /// A probe of `remote` under a fresh throwaway key.
    async fn new(remote: &Enode) -> Result<Self, Failure> {
        let mut rng = os_seeded_rng().map_err(|e| format!("reading OS entropy: {e}"))?;
        Self::with_key(remote, NodeSecretKey::generate(&mut rng)).await
    }

    /// A probe of `remote` signing with `key` (a crawl checks every node under one key, so
    /// that the nodes it checks learn one stranger, not one per check).
    pub(crate) async fn with_key(remote: &Enode, key: NodeSecretKey) -> Result<Self, Failure> {
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
        Ok(Probe {
            socket,
            key,
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
    let record = probe
        .fetch_record(Instant::now() + timeout, timeout)
        .await?;
    outln!("{record}");
    crate::enr::print_record(&record);
    Ok(ExitCode::SUCCESS)
}

impl Probe {
    /// Bonds (Ping until a Pong, answering the remote's Ping back) and fetches the remote's
    /// record with ENRRequest (EIP-868), asking again every response timeout until
    /// `deadline`.
    pub(crate) async fn fetch_record(
        &mut self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Enr, Failure> {
        self.ping_until_pong(deadline, timeout).await?;
        // The remote answers ENRRequest only once it holds our endpoint proof: it pings
        // back, we pong (inside `next`).
        let mut asked: Vec<[u8; 32]> = Vec::new();
        loop {
            let hash = self
                .send(&Packet::EnrRequest(EnrRequest {
                    expiration: self.expiration(),
                }))
                .await?;
            asked.push(hash);
            let retry = (Instant::now() + RESPONSE_TIMEOUT).min(deadline);
            while let Some(d) = self.next(retry).await? {
                if let Packet::EnrResponse(r) = d.packet {
                    if asked.contains(&r.request_hash) {
                        if r.record.node_id() != self.remote.id() {
                            // geth's RequestENR refuses this too ("invalid ID in response
                            // record").
                            return Err(format!(
                                "{} answered ENRRequest with the record of another node, {}",
                                self.remote_addr(),
                                r.record.node_id()
                            )
                            .into());
                        }
                        return Ok(r.record);
                    }
                }
            }
            if Instant::now() >= deadline {
                // The right key answered Ping: a key mismatch is not the story here.
                return Err(format!(
                    "no ENRResponse from {} within {} (it answered Ping)",
                    self.remote_addr(),
                    show(timeout)
                )
                .into());
            }
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
pub(crate) fn no_bootnode_answered(
    bootnodes: &[impl std::fmt::Display],
    timeout: Duration,
) -> Failure {
    let list: Vec<String> = bootnodes.iter().map(|b| format!("  {b}")).collect();
    format!(
        "no bootnode answered within {}; check that these are up, that their keys are \
         current, and that their UDP ports are reachable from here:\n{}",
        show(timeout),
        list.join("\n")
    )
    .into()
}

/// A node that runs discovery v4 only: it never dials and admits nobody.
fn discovery_only(bootnodes: Vec<Enode>) -> DriverConfig {
    let mut config = DriverConfig::default();
    config.node.listen = (Ipv4Addr::UNSPECIFIED, 0).into();
    config.node.bootnodes = bootnodes;
    config.node.discv5 = false;
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

/// A node a crawl found, and what its check gave.
pub(crate) struct Crawled {
    pub(crate) enode: Enode,
    /// The answer to our ENRRequest (discv5: `FINDNODE [0]`): the record and the unix time
    /// the check started; `None` while unchecked or when it did not answer.
    pub(crate) answer: Option<(Enr, u64)>,
}

/// What one check of a crawled node gave: its id, the record (or why none) and when it began.
pub(crate) type Checked = (NodeId, Result<Enr, String>, u64);

/// Checks `enode` under `key`: bonds and fetches its record, by `cap` at the latest and
/// within [`CRAWL_CHECK_TIMEOUT`] of starting, at most [`CRAWL_PARALLEL_CHECKS`] at a time.
async fn check(
    enode: Enode,
    key: NodeSecretKey,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    cap: Instant,
    clock: Clock,
) -> Checked {
    let id = enode.id();
    let Ok(_permit) = permits.acquire().await else {
        return (id, Err("the crawl ended".into()), 0);
    };
    let started = clock.unix_secs();
    let deadline = (Instant::now() + CRAWL_CHECK_TIMEOUT).min(cap);
    if Instant::now() >= deadline {
        return (
            id,
            Err("not checked before the crawl ended".into()),
            started,
        );
    }
    let result = match Probe::with_key(&enode, key).await {
        Ok(mut probe) => probe
            .fetch_record(deadline, CRAWL_CHECK_TIMEOUT)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    (id, result, started)
}

pub async fn crawl(
    bootnodes: Vec<Enode>,
    timeout: Duration,
    out: Option<&Path>,
) -> Result<ExitCode, Failure> {
    let (node, mut events) = devp2p_tokio::spawn(discovery_only(bootnodes.clone()))?;
    let started = Instant::now();
    let deadline = started + timeout;
    // Checks still running when the lookups stop get this long to finish.
    let checks_cap = deadline + CRAWL_CHECK_TIMEOUT;
    let clock = Clock::new();
    let mut rng = os_seeded_rng().map_err(|e| format!("reading OS entropy: {e}"))?;
    let check_key = NodeSecretKey::generate(&mut rng);
    // Neither the crawling node nor the checking key is a node found.
    let ours = [node.local_id(), check_key.id()];
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(CRAWL_PARALLEL_CHECKS));
    let mut checks: tokio::task::JoinSet<Checked> = tokio::task::JoinSet::new();
    let mut lookups = spawn_lookups(&node, deadline, |n| async move {
        n.lookup_random().await.is_ok()
    });
    let mut nodes: BTreeMap<NodeId, Crawled> = BTreeMap::new();
    let mut answered_count = 0usize;
    let mut progress = Progress::new(started);
    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
    let sleep = tokio::time::sleep_until(deadline.into());
    tokio::pin!(sleep);
    let mut record = |nodes: &mut BTreeMap<NodeId, Crawled>, (id, result, at): Checked| {
        if let (Some(c), Ok(r)) = (nodes.get_mut(&id), result) {
            c.answer = Some((r, at));
            answered_count += 1;
        }
    };
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
                        let id = n.id();
                        if ours.contains(&id) || nodes.contains_key(&id) {
                            continue;
                        }
                        let enode = Enode::new(*n.public_key(), n.ip(), n.tcp_port(), n.udp_port());
                        checks.spawn(check(
                            enode.clone(),
                            check_key.clone(),
                            permits.clone(),
                            checks_cap,
                            clock,
                        ));
                        nodes.insert(id, Crawled { enode, answer: None });
                    }
                }
                Some(_) => {}
                None => break,
            },
            Some(Ok(c)) = checks.join_next(), if !checks.is_empty() => record(&mut nodes, c),
            _ = ticker.tick() => progress.show(
                nodes.len(),
                nodes.values().filter(|c| c.answer.is_some()).count(),
            ),
            _ = &mut sleep => break,
        }
    }
    progress.finish();
    let answered = anyone_answered(&node).await?;
    let _ = node.shutdown().await;
    let lookups_done = lookups_done(&mut lookups).await;
    finish_checks(&mut checks, checks_cap, |c| record(&mut nodes, c)).await;
    eprintln!(
        "crawl: {} nodes found in {} lookups over {}; {} answered ENRRequest{}",
        nodes.len(),
        lookups_done,
        show(timeout),
        answered_count,
        if out.is_some() { " (written)" } else { "" }
    );
    if !answered {
        // Nothing was reached: an empty result file would look like a crawl of an empty
        // network.
        return Err(no_bootnode_answered(&bootnodes, timeout));
    }
    match out {
        Some(path) => {
            let bytes = nodes_json(&nodes);
            devp2p_mio::common::fsutil::write_atomic(path, bytes.as_bytes(), false)
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

/// The crawl's result in geth's `nodes.json` format (`cmd/devp2p/nodeset.go`), which geth's
/// `devp2p nodeset`, `dns` and `discv4 crawl` commands read: an object keyed by node id (hex),
/// each entry `seq`, `record` (`enr:…`), `score` (liveness checks passed: 1 after our one
/// check), `firstResponse`, `lastResponse` and `lastCheck` (RFC 3339, UTC, whole seconds).
/// Like geth's crawler we write only the nodes that answered ENRRequest; geth's encoder
/// sorts the ids and indents by four spaces, and so do we.
pub(crate) fn nodes_json(nodes: &BTreeMap<NodeId, Crawled>) -> String {
    let entries: Vec<String> = nodes
        .iter()
        .filter_map(|(id, c)| {
            let (record, at) = c.answer.as_ref()?;
            let time = json!(rfc3339(*at));
            Some(format!(
                "    {}: {{\n        \"seq\": {},\n        \"record\": {},\n        \
                 \"score\": 1,\n        \"firstResponse\": {time},\n        \
                 \"lastResponse\": {time},\n        \"lastCheck\": {time}\n    }}",
                json!(id.to_string()),
                record.seq(),
                json!(record.to_string()),
            ))
        })
        .collect();
    if entries.is_empty() {
        "{}\n".to_string()
    } else {
        format!("{{\n{}\n}}\n", entries.join(",\n"))
    }
}

/// `unix` seconds as RFC 3339 in UTC, as Go's `time.Time` writes them in JSON
/// (`2026-12-01T21:48:25Z`).
pub(crate) fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Days since 1970-01-01 to a civil date (H. Hinnant's `civil_from_days`).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A crawl's lookups: [`CRAWL_PARALLEL_LOOKUPS`] tasks each running `lookup` on `node` back
/// to back until `deadline` or until one fails (the node stopped); each task yields how
/// many it ran.
pub(crate) fn spawn_lookups<F, Fut>(
    node: &devp2p_tokio::NodeHandle,
    deadline: Instant,
    lookup: F,
) -> tokio::task::JoinSet<u64>
where
    F: Fn(devp2p_tokio::NodeHandle) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let mut lookups = tokio::task::JoinSet::new();
    for _ in 0..CRAWL_PARALLEL_LOOKUPS {
        let (node, lookup) = (node.clone(), lookup.clone());
        lookups.spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                if !lookup(node.clone()).await {
                    break;
                }
                done += 1;
            }
            done
        });
    }
    lookups
}

/// Waits for the lookups of [`spawn_lookups`] to end; returns how many ran in all.
pub(crate) async fn lookups_done(lookups: &mut tokio::task::JoinSet<u64>) -> u64 {
    let mut done = 0;
    while let Some(r) = lookups.join_next().await {
        done += r.unwrap_or(0);
    }
    done
}

/// A crawl's live progress line on stderr: rewritten in place on a terminal, elsewhere one
/// line every [`PROGRESS_LOG_INTERVAL`] (a log file gets no carriage returns).
pub(crate) struct Progress {
    tty: bool,
    started: Instant,
    last_log: Instant,
}

impl Progress {
    pub(crate) fn new(started: Instant) -> Self {
        Progress {
            tty: std::io::stderr().is_terminal(),
            started,
            last_log: Instant::now(),
        }
    }

    /// Shows how many nodes were found and how many answered their check.
    pub(crate) fn show(&mut self, found: usize, answered: usize) {
        let line = format!(
            "crawl: {:>5.1}s  {found} nodes found, {answered} answered",
            self.started.elapsed().as_secs_f64(),
        );
        if self.tty {
            eprint!("\r{line}   ");
            let _ = std::io::stderr().flush();
        } else if self.last_log.elapsed() >= PROGRESS_LOG_INTERVAL {
            eprintln!("{line}");
            self.last_log = Instant::now();
        }
    }

    /// Ends the line on a terminal.
    pub(crate) fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

/// Collects the checks still running when a crawl's lookups stop: they end by `cap` on their
/// own, and a margin covers a busy machine; any left then are aborted.
pub(crate) async fn finish_checks<T: 'static>(
    checks: &mut tokio::task::JoinSet<T>,
    cap: Instant,
    mut record: impl FnMut(T),
) {
    let _ = tokio::time::timeout_at((cap + Duration::from_millis(500)).into(), async {
        while let Some(c) = checks.join_next().await {
            if let Ok(c) = c {
                record(c);
            }
        }
    })
    .await;
    checks.abort_all();
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn unix_seconds_read_as_go_writes_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        // `date -u -d @1796161705`: Tue Dec  1 21:48:25 UTC 2026.
        assert_eq!(rfc3339(1_796_161_705), "2026-12-01T21:48:25Z");
        // A leap day, and the last second of a century year that is not a leap year.
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}
