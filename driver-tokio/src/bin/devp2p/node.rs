//! `devp2p node`: runs a node until Ctrl-C (or SIGTERM), then shuts it down gracefully.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use devp2p_core::nat::{Nat, NatEvent, PortMappingConfig};
use devp2p_core::node::{NodeConfig, NodeEvent, DEFAULT_MAX_PEERS};
use devp2p_core::{Enode, Enr, NodeSecretKey};
use devp2p_mio::common::{DnsResolverConfig, DriverConfig, KeySource, ShutdownReport};
use serde_json::json;

use crate::args::{
    parse_caps, parse_enode_list, parse_node_list, parse_secret_hex, parse_tree_list, Caps, Driver,
    EnodeList, NodeList, TreeList,
};
use crate::output::{event_json, log_event, ordered};
use crate::Failure;

/// A `--nat` value: geth's forms (see [`Nat`]'s `FromStr`), or an error naming them.
pub fn parse_nat(s: &str) -> Result<Nat, String> {
    s.parse::<Nat>().map_err(|e| e.to_string())
}

/// A `--nat-lifetime` value: seconds, at least 2.
pub fn parse_lifetime(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n >= 2 => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "{s:?} is not a lease of 2 seconds or more (geth's is 600)"
        )),
    }
}

/// The settings of NAT traversal shared by `node` and `discv5 listen`.
#[derive(clap::Args, Clone)]
pub struct NatArgs {
    /// How the node learns the address it advertises, as geth's --nat: `none` (the listen
    /// IP), `extip:IP` (this IP; its ports forwarded by hand), `upnp` (a UPnP router forwards
    /// the TCP and UDP ports and tells its external IP), `pmp` or `pmp:GATEWAY` (the same over
    /// NAT-PMP, at the default gateway or this one), `any` (UPnP and NAT-PMP tried at once).
    /// Ports are mapped only when listening on 0.0.0.0 or a public address, and removed at
    /// shutdown.
    #[arg(long, value_parser = parse_nat, default_value = "none")]
    pub nat: Nat,
    /// Lease of each port mapping in seconds (geth: 600), with geth's schedule scaled to it:
    /// renewed at 8/10 of it, failures retried after 5/10, the external IP asked every 2/10.
    /// For tests against a real router.
    #[arg(long, value_parser = parse_lifetime, hide = true)]
    pub nat_lifetime: Option<Duration>,
}

impl NatArgs {
    /// Puts the settings into `config`.
    pub fn apply(&self, config: &mut NodeConfig) {
        config.nat = self.nat;
        if let Some(l) = self.nat_lifetime {
            config.port_mapping = PortMappingConfig::scaled_to(l);
        }
    }

    /// Warns when the advertised address is one only this machine can reach.
    pub fn warn_about_loopback(&self, listen: SocketAddr, what: &str) {
        if listen.ip().is_unspecified() && self.nat == Nat::None {
            tracing::warn!(
                "listening on {listen} but advertising 127.0.0.1 in the {what}, which only \
                 this machine can reach, until 10 peers agree on the address they see this \
                 node at (the record then takes it): give --nat extip:<public IP> to advertise \
                 the address others reach this node at from the start, or --nat upnp|pmp|any \
                 to have the router forward the ports and tell it"
            );
        }
    }
}

/// What the node advertised when it was last shown (the listening line or a "record" line),
/// so that a "record" line follows a port-mapping report only when the record changed.
pub struct Announced(String);

impl Announced {
    /// Starting from what the listening line showed.
    pub fn new(enode: &Enode, enr: Option<&Enr>) -> Self {
        Announced(Self::key(enode, enr))
    }

    fn key(enode: &Enode, enr: Option<&Enr>) -> String {
        format!("{enode} {}", enr.map(Enr::seq).unwrap_or(0))
    }

    /// After event `e`: the `{"event":"record"}` line (or a log line) with our enode URL and
    /// record, if a port-mapping report changed them. False when stdout is closed.
    pub fn after(&mut self, e: &NodeEvent, enode: &Enode, enr: Option<&Enr>, json: bool) -> bool {
        let nat = matches!(
            e,
            NodeEvent::Nat(NatEvent::ExternalIp { .. } | NatEvent::Mapped { .. })
        );
        let key = Self::key(enode, enr);
        if !nat || key == self.0 {
            return true;
        }
        self.0 = key;
        record_line(enode, enr, json)
    }
}

/// The `{"event":"record"}` line (or a log line) with our current enode URL and record.
fn record_line(enode: &Enode, enr: Option<&Enr>, json: bool) -> bool {
    if json {
        crate::output::try_line(format_args!(
            "{}",
            ordered(&[
                ("event", json!("record")),
                ("enode", json!(enode.to_string())),
                ("enr", json!(enr.map(|r| r.to_string()))),
                ("seq", json!(enr.map(Enr::seq))),
            ])
        ))
    } else {
        tracing::info!(%enode, enr = enr.map(|r| r.to_string()).unwrap_or_default(), "now advertising");
        true
    }
}

#[derive(clap::Args)]
pub struct NodeArgs {
    /// TCP and UDP address to listen on. Its IP is also the one advertised, unless --nat
    /// says otherwise (listening on 0.0.0.0 or :: advertises 127.0.0.1).
    #[arg(long, default_value = "127.0.0.1:30303")]
    listen: SocketAddr,
    #[command(flatten)]
    nat: NatArgs,
    /// Node key file; created with a fresh key when missing (its directory must exist).
    #[arg(long, conflicts_with = "nodekey_hex")]
    nodekey: Option<PathBuf>,
    /// Node key as 64 hex characters.
    #[arg(long, value_parser = parse_secret_hex)]
    nodekey_hex: Option<NodeSecretKey>,
    /// Data directory: the node database (and the node key, unless given otherwise).
    #[arg(long)]
    datadir: Option<PathBuf>,
    /// Discovery bootnodes, for both versions (comma-separated enode URLs or enr: records).
    #[arg(long, value_parser = parse_node_list)]
    bootnodes: Option<NodeList>,
    /// DNS node lists to take dial candidates from (comma-separated enrtree://KEY@DOMAIN
    /// URLs; geth's --discovery.dns). Their records are dialled beside what discovery finds,
    /// and seed discovery too (so a node with trees and no bootnodes enters the DHT).
    /// Default: none (geth defaults to its network's tree).
    #[arg(long, alias = "discovery.dns", value_parser = parse_tree_list)]
    dns: Option<TreeList>,
    /// Name servers for --dns (IP:PORT, comma-separated) instead of the system's resolver.
    #[arg(long, value_delimiter = ',', requires = "dns")]
    dns_server: Vec<SocketAddr>,
    /// Run discovery v5 beside v4 on the same UDP port (the default, as in geth).
    #[arg(long, overrides_with = "no_discv5")]
    discv5: bool,
    /// Do not run discovery v5.
    #[arg(long, overrides_with = "discv5")]
    no_discv5: bool,
    /// Run discovery v4 (the default).
    #[arg(long, overrides_with = "no_discv4")]
    discv4: bool,
    /// Do not run discovery v4 (with --discv5: a v5-only node).
    #[arg(long, overrides_with = "discv4")]
    no_discv4: bool,
    /// Peers to keep connected (comma-separated enode URLs or enr: records).
    #[arg(long = "static", value_parser = parse_enode_list)]
    static_nodes: Option<EnodeList>,
    /// Peers admitted past the peer limits (comma-separated enode URLs or enr: records).
    #[arg(long, value_parser = parse_enode_list)]
    trusted: Option<EnodeList>,
    /// Peers at most.
    #[arg(long, default_value_t = DEFAULT_MAX_PEERS)]
    max_peers: usize,
    /// Capabilities to offer, e.g. eth/68,snap/1.
    #[arg(long, value_parser = parse_caps)]
    caps: Option<Caps>,
    /// Which driver runs the node.
    #[arg(long, value_enum, default_value = "tokio")]
    driver: Driver,
    /// Print JSON lines: first {"event":"listening",…}, then one per peer added or removed,
    /// lookup, failed connection, and DNS record, root and failure (dns_node, dns_root,
    /// dns_error; while dial slots are free the walk goes round its trees again, as geth's
    /// does, so a record reappears each time it is passed, 3 a second at most).
    #[arg(long)]
    pub json: bool,
}

impl NodeArgs {
    fn config(&self) -> DriverConfig {
        let mut config = DriverConfig::default();
        config.node.session.protocols = self.caps.clone().unwrap_or_default().0;
        config.node.listen = self.listen;
        self.nat.apply(&mut config.node);
        config.node.max_peers = self.max_peers;
        let bootnodes = self.bootnodes.clone().unwrap_or_default();
        config.node.bootnodes = bootnodes.enodes;
        config.node.bootnode_records = bootnodes.records;
        config.node.discv4 = !self.no_discv4;
        config.node.discv5 = !self.no_discv5;
        config.node.dns = self.dns.clone().unwrap_or_default().0;
        if !self.dns_server.is_empty() {
            config.dns_resolver = DnsResolverConfig::Servers(self.dns_server.clone());
        }
        config.node.static_nodes = self.static_nodes.clone().unwrap_or_default().0;
        config.node.trusted_nodes = self
            .trusted
            .iter()
            .flat_map(|l| l.0.iter().map(Enode::id))
            .collect();
        config.key = match (&self.nodekey, &self.nodekey_hex) {
            (Some(f), _) => KeySource::File(f.clone()),
            (None, Some(k)) => KeySource::Secret(k.clone()),
            (None, None) => KeySource::Default,
        };
        config.data_dir = self.datadir.clone();
        config
    }

    /// Warnings about settings that work but are rarely what an operator wants.
    fn warn_about_defaults(&self) {
        let trees = self.dns.as_ref().is_some_and(|t| !t.0.is_empty());
        if self.no_discv4 && self.no_discv5 && !trees {
            tracing::warn!(
                "--no-discv4 with --no-discv5: this node runs no discovery and finds no peers \
                 by itself (only --static peers are dialled; --dns trees would add theirs)"
            );
        }
        self.nat
            .warn_about_loopback(self.listen, "enode and record");
        if self.datadir.is_none() && self.nodekey.is_none() && self.nodekey_hex.is_none() {
            tracing::warn!(
                "no --datadir, --nodekey or --nodekey-hex: running with a throwaway identity \
                 (a new node id at every start) and saving nothing (no node key, no node \
                 database); give --datadir DIR to keep both"
            );
        }
    }
}

/// Prints the listening line; false when stdout is closed.
fn listening(enode: &Enode, enr: Option<&Enr>, json: bool) -> bool {
    if json {
        crate::output::try_line(format_args!(
            "{}",
            ordered(&[
                ("event", json!("listening")),
                ("enode", json!(enode.to_string())),
                ("enr", json!(enr.map(|r| r.to_string()))),
            ])
        ))
    } else {
        tracing::info!(%enode, "listening");
        if let Some(r) = enr {
            tracing::info!(enr = %r, "record");
        }
        true
    }
}

/// Shows an event; false when stdout is closed (the node then shuts down).
fn show(e: &NodeEvent, json: bool) -> bool {
    if json {
        match event_json(e) {
            Some(v) => crate::output::try_line(format_args!("{v}")),
            None => true,
        }
    } else {
        log_event(e);
        true
    }
}

fn stopped(report: &ShutdownReport, json: bool) {
    if json {
        // Stdout may be closed by now (that may be why the node stopped): nothing to do then.
        crate::output::try_line(format_args!(
            "{}",
            ordered(&[
                ("event", json!("stopped")),
                ("forced_closes", json!(report.forced_closes)),
                (
                    "db_saved",
                    json!(report.db_saved.as_ref().map(|p| p.display().to_string())),
                ),
                ("db_error", json!(report.db_error)),
            ])
        ));
    } else {
        tracing::info!(forced_closes = report.forced_closes, db = ?report.db_saved, "stopped");
    }
}

/// Resolves on Ctrl-C, or SIGTERM on unix. The handlers are installed by this call, not at
/// the first poll, so that a signal sent right after the listening line (which is printed
/// after this call) stops the node gracefully instead of killing it.
pub fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            match (term, int) {
                (Some(mut term), Some(mut int)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

pub async fn run(args: NodeArgs) -> Result<ExitCode, Failure> {
    let json = args.json;
    args.warn_about_defaults();
    let config = args.config();
    match args.driver {
        Driver::Tokio => {
            let (node, mut events) = devp2p_tokio::spawn(config)?;
            let stop = stop_signal();
            tokio::pin!(stop);
            // One reading for both: the node task runs already, and a port mapping that
            // changed the record between two readings would never be shown.
            let (enode, enr) = (node.local_enode(), node.local_enr());
            let mut open = listening(&enode, enr.as_ref(), json);
            let mut announced = Announced::new(&enode, enr.as_ref());
            while open {
                tokio::select! {
                    e = events.recv() => match e {
                        Some(e) => {
                            open = show(&e, json);
                            if open {
                                open = announced.after(&e, &node.local_enode(), node.local_enr().as_ref(), json);
                            }
                        }
                        None => break,
                    },
                    _ = &mut stop => break,
                }
            }
            let report = node.shutdown().await?;
            // The shutdown's own events (peers removed with ClientQuitting).
            while let Some(e) = events.recv().await {
                show(&e, json);
            }
            stopped(&report, json);
        }
        Driver::Mio => {
            // Before the node thread prints the listening line.
            let stop = stop_signal();
            let (started_tx, started_rx) = tokio::sync::oneshot::channel();
            let thread = std::thread::Builder::new()
                .name("devp2p-mio".into())
                .spawn(move || {
                    let mut stopping = false;
                    // Both callbacks run on this thread, one after the other.
                    let announced = std::cell::RefCell::new(None::<Announced>);
                    devp2p_mio::run(
                        config,
                        |d, remote| {
                            *announced.borrow_mut() =
                                Some(Announced::new(&d.local_enode(), d.local_enr().as_ref()));
                            if !listening(&d.local_enode(), d.local_enr().as_ref(), json) {
                                remote.stop();
                            }
                            let _ = started_tx.send(remote);
                        },
                        |d, e| {
                            let mut open = show(&e, json);
                            if let (true, Some(a)) = (open, announced.borrow_mut().as_mut()) {
                                open = a.after(&e, &d.local_enode(), d.local_enr().as_ref(), json);
                            }
                            if !open && !stopping {
                                stopping = true;
                                d.shutdown();
                            }
                        },
                    )
                })?;
            let mut join = tokio::task::spawn_blocking(move || thread.join());
            // `started_tx` is dropped unsent when the node fails to start.
            if let Ok(remote) = started_rx.await {
                tokio::select! {
                    _ = stop => remote.stop(),
                    // The node stopped by itself (stdout closed).
                    r = &mut join => {
                        let report = r?.map_err(|_| "the mio thread panicked")??;
                        stopped(&report, json);
                        return Ok(ExitCode::SUCCESS);
                    }
                }
            }
            let report = join.await?.map_err(|_| "the mio thread panicked")??;
            stopped(&report, json);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a node that only serves discovery (a bootnode: `discv4 listen`, `discv5 listen`)
/// until Ctrl-C or SIGTERM, then shuts it down gracefully. Prints its record first (with
/// `json`, the listening line with enode and record), then its lookups, as JSON lines or
/// log lines.
pub async fn serve_discovery(
    mut config: DriverConfig,
    nat: &NatArgs,
    json: bool,
) -> Result<ExitCode, Failure> {
    nat.warn_about_loopback(config.node.listen, "record");
    nat.apply(&mut config.node);
    let (node, mut events) = devp2p_tokio::spawn(config)?;
    let stop = stop_signal();
    tokio::pin!(stop);
    // One reading for the listening line and what it announced: the node task runs already.
    let (enode, record) = (node.local_enode(), node.local_enr());
    let mut announced = Announced::new(&enode, record.as_ref());
    let mut open = if json {
        crate::output::try_line(format_args!(
            "{}",
            ordered(&[
                ("event", json!("listening")),
                ("enode", json!(enode.to_string())),
                ("enr", json!(record.as_ref().map(|r| r.to_string()))),
            ])
        ))
    } else {
        let r = record.as_ref().map(|r| r.to_string()).unwrap_or_default();
        tracing::info!(addr = %node.listen_addr(), %enode, "listening");
        crate::output::try_line(format_args!("{r}"))
    };
    while open {
        tokio::select! {
            e = events.recv() => match e {
                Some(e) => {
                    if json {
                        if let Some(v) = event_json(&e) {
                            open = crate::output::try_line(format_args!("{v}"));
                        }
                    } else {
                        log_event(&e);
                    }
                    if open {
                        open = announced.after(&e, &node.local_enode(), node.local_enr().as_ref(), json);
                    }
                }
                None => break,
            },
            _ = &mut stop => break,
        }
    }
    let _ = node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
