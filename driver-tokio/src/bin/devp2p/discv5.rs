//! `devp2p discv5 …`, after geth's `cmd/devp2p discv5`. `ping` and `resolve` ask one node
//! through a session machine of their own (the core's `discv5::Sessions` on a UDP socket
//! of ours: one probe needs no table), `resolve` falling back to a lookup through the
//! bootnodes; `crawl` and `listen` run a node with discv5 alone.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use devp2p_core::discv4::Node as DiscNode;
use devp2p_core::discv5::discovery::Event as V5Event;
use devp2p_core::discv5::message::{Message, Pong};
use devp2p_core::discv5::packet::MAX_PACKET_SIZE;
use devp2p_core::discv5::{
    Contact, Event, Request, RequestFailure, RequestId, Response, Sessions, SessionsConfig,
};
use devp2p_core::node::NodeEvent;
use devp2p_core::{Enode, Enr, NodeId, NodeSecretKey};
use devp2p_mio::common::{keyfile, os_seeded_rng, Clock, DriverConfig, KeySource};
use rand_chacha::ChaCha20Rng;
use serde_json::json;
use tokio::net::UdpSocket;

use crate::args::{parse_secret_hex, show, NodeList, V5Node};
use crate::discv4::{
    finish_checks, lookups_done, no_bootnode_answered, nodes_json, spawn_lookups, Checked, Crawled,
    Progress, CRAWL_CHECK_TIMEOUT, CRAWL_PARALLEL_CHECKS, PROGRESS_INTERVAL,
};
use crate::node::NatArgs;
use crate::Failure;

/// Who we are and where we listen, for every `discv5` subcommand (geth's `--nodekey`,
/// `--addr`).
#[derive(clap::Args, Clone, Default)]
pub struct Identity {
    /// Node key file (64 hex characters); without it (and --nodekey-hex) a throwaway key.
    #[arg(long, conflicts_with = "nodekey_hex")]
    pub nodekey: Option<PathBuf>,
    /// Node key as 64 hex characters.
    #[arg(long, value_parser = parse_secret_hex)]
    pub nodekey_hex: Option<NodeSecretKey>,
    /// UDP address to listen on (geth's --addr); default: any address, a free port.
    #[arg(long, alias = "addr")]
    pub listen: Option<SocketAddr>,
}

impl Identity {
    /// Where a node run under this identity takes its key.
    pub fn key_source(&self) -> KeySource {
        match (&self.nodekey, &self.nodekey_hex) {
            (Some(f), _) => KeySource::File(f.clone()),
            (None, Some(k)) => KeySource::Secret(k.clone()),
            (None, None) => KeySource::Default,
        }
    }

    fn key(&self) -> Result<NodeSecretKey, Failure> {
        match (&self.nodekey, &self.nodekey_hex) {
            (Some(f), _) => keyfile::load(f).map_err(|e| format!("{}: {e}", f.display()).into()),
            (None, Some(k)) => Ok(k.clone()),
            (None, None) => {
                let mut rng = os_seeded_rng().map_err(|e| format!("reading OS entropy: {e}"))?;
                Ok(NodeSecretKey::generate(&mut rng))
            }
        }
    }
}

/// `discv5 listen`'s settings.
#[derive(clap::Args)]
pub struct ListenArgs {
    #[command(flatten)]
    pub identity: Identity,
    #[command(flatten)]
    pub nat: NatArgs,
    /// Nodes to learn the network from (comma-separated enode URLs or enr: records).
    #[arg(long, value_parser = crate::args::parse_node_list)]
    pub bootnodes: Option<NodeList>,
    /// Print JSON lines: first {"event":"listening","enode","enr"}, then one per lookup.
    #[arg(long)]
    pub json: bool,
}

/// One node asked over discv5 from a UDP socket of our own.
struct Probe {
    socket: UdpSocket,
    sessions: Sessions<ChaCha20Rng>,
    clock: Clock,
    buf: Vec<u8>,
    out: Box<[u8; MAX_PACKET_SIZE]>,
    /// Answers (or failures) of our requests, by id, until taken.
    results: BTreeMap<RequestId, Result<Response, RequestFailure>>,
}

impl Probe {
    /// A probe under `key` on a socket at `listen` (default: any address of `remote`'s family,
    /// a free port).
    async fn new(
        key: NodeSecretKey,
        listen: Option<SocketAddr>,
        remote: SocketAddr,
    ) -> Result<Self, Failure> {
        let any: IpAddr = if remote.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let bind = listen.unwrap_or((any, 0).into());
        let socket = UdpSocket::bind(bind)
            .await
            .map_err(|e| format!("binding a UDP socket on {bind}: {e}"))?;
        let local = socket.local_addr()?;
        // What the node learns of us in the handshake. Without a definite address the
        // record names none: the node answers the packets' source anyway.
        let mut builder = Enr::builder();
        if !local.ip().is_unspecified() {
            builder = match local.ip() {
                IpAddr::V4(_) => builder.ip(local.ip()).udp4(local.port()),
                IpAddr::V6(_) => builder.ip(local.ip()).udp6(local.port()),
            };
        }
        let record = builder
            .sign(&key)
            .map_err(|e| format!("signing our record: {e}"))?;
        let rng = os_seeded_rng().map_err(|e| format!("reading OS entropy: {e}"))?;
        let clock = Clock::new();
        let sessions = Sessions::new(key, record, SessionsConfig::default(), rng, clock.now());
        Ok(Probe {
            socket,
            sessions,
            clock,
            buf: vec![0; MAX_PACKET_SIZE + 1],
            out: Box::new([0; MAX_PACKET_SIZE]),
            results: BTreeMap::new(),
        })
    }

    /// Sends what the machine has, keeps our results, answers a PING (the node may check
    /// us once we handshook), and ignores other requests.
    async fn flush(&mut self) -> Result<(), Failure> {
        loop {
            while let Some(t) = self.sessions.poll_transmit(&mut self.out) {
                if let Err(e) = self.socket.send_to(&self.out[..t.len], t.destination).await {
                    return Err(format!("sending to {}: {e}", t.destination).into());
                }
            }
            let Some(e) = self.sessions.poll_event() else {
                return Ok(());
            };
            match e {
                Event::Response { id, response, .. } => {
                    self.results.insert(id, Ok(response));
                }
                Event::RequestFailed { id, reason, .. } => {
                    self.results.insert(id, Err(reason));
                }
                Event::Request {
                    from,
                    request: Message::Ping(p),
                } => {
                    let pong = Pong {
                        request_id: p.request_id,
                        enr_seq: self.sessions.local_record().seq(),
                        recipient_ip: Some(from.addr.ip()),
                        recipient_port: from.addr.port(),
                    };
                    let now = self.clock.now();
                    let _ = self.sessions.send_response(now, &from, Message::Pong(pong));
                }
                _ => {}
            }
        }
    }

    /// Sends `request` to `to` and runs the machine until it is answered or fails (its own
    /// timeout and one resend), or `deadline` passes (`None` then).
    async fn ask(
        &mut self,
        to: Contact,
        request: Request,
        deadline: Instant,
    ) -> Result<Option<(Result<Response, RequestFailure>, Duration)>, Failure> {
        let started = Instant::now();
        let id = self
            .sessions
            .send_request(self.clock.now(), to, request)
            .map_err(|e| format!("the request was not sent: {e}"))?;
        loop {
            self.flush().await?;
            if let Some(r) = self.results.remove(&id) {
                return Ok(Some((r, started.elapsed())));
            }
            let wake = self
                .sessions
                .poll_timeout()
                .map(|t| self.clock.to_std(t))
                .unwrap_or(deadline)
                .min(deadline);
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::select! {
                r = self.socket.recv_from(&mut self.buf) => {
                    // An ICMP error on this socket says nothing the timeout will not.
                    if let Ok((n, from)) = r {
                        let _ = self.sessions.handle_datagram(self.clock.now(), from, &self.buf[..n]);
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    self.sessions.handle_timeout(self.clock.now());
                }
            }
        }
    }

    /// Asks again (a fresh request each time the machine gives up) until an answer comes or
    /// `deadline` passes.
    async fn ask_until(
        &mut self,
        to: &Contact,
        request: &Request,
        deadline: Instant,
    ) -> Result<Option<(Response, Duration)>, Failure> {
        while Instant::now() < deadline {
            match self.ask(to.clone(), request.clone(), deadline).await? {
                Some((Ok(r), rtt)) => return Ok(Some((r, rtt))),
                Some((Err(RequestFailure::Timeout), _)) => continue,
                Some((Err(e), _)) => return Err(format!("{e}").into()),
                None => break,
            }
        }
        Ok(None)
    }
}

fn contact(node: &V5Node) -> Result<Contact, Failure> {
    let addr = node
        .enode
        .udp_addr()
        .ok_or_else(|| format!("{} has no IP address", node.enode))?;
    Ok(match &node.record {
        Some(r) => Contact::from_record_at(r.clone(), addr),
        None => Contact::from_key(node.enode.public_key, addr),
    })
}

fn no_answer(what: &str, node: &V5Node, timeout: Duration) -> Failure {
    let addr = node
        .enode
        .udp_addr()
        .map_or_else(|| node.enode.to_string(), |a| a.to_string());
    format!(
        "no {what} from {addr} within {} (is the node up and running discv5, is its UDP \
         port {} reachable, and is the record current? try a longer --timeout)",
        show(timeout),
        node.enode.udp_port
    )
    .into()
}

pub async fn ping(
    node: &V5Node,
    identity: &Identity,
    timeout: Duration,
    json: bool,
) -> Result<ExitCode, Failure> {
    let to = contact(node)?;
    let mut probe = Probe::new(identity.key()?, identity.listen, to.address().addr).await?;
    let deadline = Instant::now() + timeout;
    let Some((Response::Pong(pong), rtt)) = probe.ask_until(&to, &Request::Ping, deadline).await?
    else {
        return Err(no_answer("PONG", node, timeout));
    };
    let rtt_ms = (rtt.as_secs_f64() * 1e6).round() / 1e3;
    let seen = pong
        .recipient_ip
        .map(|ip| SocketAddr::new(ip, pong.recipient_port).to_string());
    if json {
        outln!(
            "{}",
            crate::output::ordered(&[
                ("id", json!(node.enode.id().to_string())),
                ("rtt_ms", json!(rtt_ms)),
                ("enr_seq", json!(pong.enr_seq)),
                ("seen_as", json!(seen)),
            ])
        );
    } else {
        outln!("id:      {}", node.enode.id());
        outln!("rtt:     {rtt_ms} ms");
        outln!("enr seq: {}", pong.enr_seq);
        outln!(
            "seen as: {}",
            seen.as_deref().unwrap_or("(no address sent)")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks `node` for its own record with `FINDNODE [0]` until `deadline`.
async fn request_record(
    probe: &mut Probe,
    node: &V5Node,
    deadline: Instant,
) -> Result<Option<Enr>, Failure> {
    let to = contact(node)?;
    let ask = Request::FindNode { distances: vec![0] };
    Ok(match probe.ask_until(&to, &ask, deadline).await? {
        Some((Response::Nodes(n), _)) => n
            .records
            .into_iter()
            .find(|r| r.node_id() == node.enode.id()),
        _ => None,
    })
}

pub async fn resolve(
    node: &V5Node,
    identity: &Identity,
    bootnodes: NodeList,
    timeout: Duration,
) -> Result<ExitCode, Failure> {
    let deadline = Instant::now() + timeout;
    let key = identity.key()?;
    let remote = contact(node)?.address().addr;
    // geth's Resolve: ask the node itself first; what it says of itself is newest.
    let direct_until = if bootnodes.is_empty() {
        deadline
    } else {
        (Instant::now() + timeout / 2).min(deadline)
    };
    let mut probe = Probe::new(key.clone(), identity.listen, remote).await?;
    if let Some(r) = request_record(&mut probe, node, direct_until).await? {
        return print_resolved(&r);
    }
    drop(probe);
    if bootnodes.is_empty() {
        return Err(no_answer("NODES", node, timeout));
    }
    // Then a lookup for its id, through the bootnodes.
    let mut config = v5_discovery_only(&bootnodes, KeySource::Secret(key));
    config.node.listen = identity.listen.unwrap_or((Ipv4Addr::UNSPECIFIED, 0).into());
    let (handle, _events) = devp2p_tokio::spawn(config)?;
    let wanted = node.enode.id();
    let mut found: Option<Enr> = None;
    while found.is_none() && Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(nodes) = tokio::time::timeout(left, handle.lookup_v5(&wanted)).await else {
            break;
        };
        found = nodes?
            .into_iter()
            .chain(handle.table_v5().await?)
            .filter(|n| n.id() == wanted)
            .filter_map(|n| n.record().cloned())
            .max_by_key(Enr::seq);
    }
    let answered = v5_answered(&handle).await?;
    let _ = handle.shutdown().await;
    match found {
        Some(r) => print_resolved(&r),
        None if !answered => Err(no_bootnode_answered(&bootnodes.as_given(), timeout)),
        None => Err(format!(
            "node {wanted} did not answer and was not found in the DHT within {} (the \
             bootnodes answered; the node may be offline, or a longer --timeout may find it)",
            show(timeout)
        )
        .into()),
    }
}

fn print_resolved(r: &Enr) -> Result<ExitCode, Failure> {
    outln!("{r}");
    crate::enr::print_record(r);
    Ok(ExitCode::SUCCESS)
}

/// A node that runs discv5 only: it never dials and admits nobody.
fn v5_discovery_only(bootnodes: &NodeList, key: KeySource) -> DriverConfig {
    let mut config = DriverConfig::default();
    config.node.listen = (Ipv4Addr::UNSPECIFIED, 0).into();
    config.node.bootnodes = bootnodes.enodes.clone();
    config.node.bootnode_records = bootnodes.records.clone();
    config.node.discv4 = false;
    config.node.discv5 = true;
    config.node.no_dial = true;
    config.node.max_peers = 0;
    config.key = key;
    config
}

/// Whether any node answered: a discv5 datagram that was not dropped arrived (only the
/// bootnodes know our address at first).
async fn v5_answered(node: &devp2p_tokio::NodeHandle) -> Result<bool, Failure> {
    let stats = node.stats().await?.node;
    let dropped: u64 = stats.discv5_packets_dropped.values().sum();
    Ok(stats.discv5_packets_in > dropped)
}

/// Checks one crawled node: asks for its record with `FINDNODE [0]` under `key`, by `cap`
/// at the latest and within [`CRAWL_CHECK_TIMEOUT`] of starting.
async fn check(
    node: V5Node,
    key: NodeSecretKey,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    cap: Instant,
    clock: Clock,
) -> Checked {
    let id = node.enode.id();
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
    let Some(addr) = node.enode.udp_addr() else {
        return (id, Err("no address".into()), started);
    };
    let result = match Probe::new(key, None, addr).await {
        Ok(mut probe) => match request_record(&mut probe, &node, deadline).await {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err("no answer".into()),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    (id, result, started)
}

pub async fn crawl(
    bootnodes: NodeList,
    identity: &Identity,
    timeout: Duration,
    out: Option<&Path>,
) -> Result<ExitCode, Failure> {
    let key = identity.key()?;
    let mut config = v5_discovery_only(&bootnodes, KeySource::Secret(key));
    if let Some(l) = identity.listen {
        config.node.listen = l;
    }
    let (node, mut events) = devp2p_tokio::spawn(config)?;
    let started = Instant::now();
    let deadline = started + timeout;
    let checks_cap = deadline + CRAWL_CHECK_TIMEOUT;
    let clock = Clock::new();
    let mut rng = os_seeded_rng().map_err(|e| format!("reading OS entropy: {e}"))?;
    let check_key = NodeSecretKey::generate(&mut rng);
    let ours = [node.local_id(), check_key.id()];
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(CRAWL_PARALLEL_CHECKS));
    let mut checks: tokio::task::JoinSet<Checked> = tokio::task::JoinSet::new();
    let mut lookups = spawn_lookups(&node, deadline, |n| async move {
        n.lookup_random_v5().await.is_ok()
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
                Some(NodeEvent::Discv5(d)) => {
                    let seen: Vec<DiscNode> = match *d {
                        V5Event::NodeAdded(n) | V5Event::NodeSeen(n) => vec![n],
                        V5Event::LookupFinished { nodes, .. } => nodes,
                        _ => vec![],
                    };
                    for n in seen {
                        let id = n.id();
                        if ours.contains(&id) || nodes.contains_key(&id) {
                            continue;
                        }
                        let enode = Enode::new(*n.public_key(), n.ip(), n.tcp_port(), n.udp_port());
                        let v5 = V5Node { enode: enode.clone(), record: n.record().cloned() };
                        checks.spawn(check(v5, check_key.clone(), permits.clone(), checks_cap, clock));
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
    let answered = v5_answered(&node).await?;
    let _ = node.shutdown().await;
    let lookups_done = lookups_done(&mut lookups).await;
    finish_checks(&mut checks, checks_cap, |c| record(&mut nodes, c)).await;
    eprintln!(
        "crawl: {} nodes found in {} lookups over {}; {} answered FINDNODE [0]{}",
        nodes.len(),
        lookups_done,
        show(timeout),
        answered_count,
        if out.is_some() { " (written)" } else { "" }
    );
    if !answered {
        return Err(no_bootnode_answered(&bootnodes.as_given(), timeout));
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
                match &c.answer {
                    Some((r, _)) => outln!("{r}"),
                    None => outln!("{}", c.enode),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn listen(args: &ListenArgs) -> Result<ExitCode, Failure> {
    let bootnodes = args.bootnodes.clone().unwrap_or_default();
    let mut config = v5_discovery_only(&bootnodes, args.identity.key_source());
    // geth's `discv5 listen` binds any address and a free port unless told otherwise.
    config.node.listen = args
        .identity
        .listen
        .unwrap_or((Ipv4Addr::UNSPECIFIED, 0).into());
    crate::node::serve_discovery(config, &args.nat, args.json).await
}
