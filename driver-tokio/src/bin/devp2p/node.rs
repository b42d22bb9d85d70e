//! `devp2p node`: runs a node until Ctrl-C (or SIGTERM), then shuts it down gracefully.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use devp2p_core::node::{NodeConfig, NodeEvent, DEFAULT_MAX_PEERS};
use devp2p_core::session::SessionConfig;
use devp2p_core::{Enode, Enr, NodeSecretKey};
use devp2p_mio::common::{DriverConfig, KeySource, ShutdownReport};
use serde_json::json;

use crate::args::{parse_caps, parse_enode_list, parse_secret_hex, Caps, Driver, EnodeList};
use crate::output::{event_json, log_event, ordered};
use crate::Failure;

#[derive(clap::Args)]
pub struct NodeArgs {
    /// TCP and UDP address to listen on (the IP is also the one advertised).
    #[arg(long, default_value = "127.0.0.1:30303")]
    listen: SocketAddr,
    /// Node key file; created with a fresh key when missing.
    #[arg(long, conflicts_with = "nodekey_hex")]
    nodekey: Option<PathBuf>,
    /// Node key as 64 hex characters.
    #[arg(long, value_parser = parse_secret_hex)]
    nodekey_hex: Option<NodeSecretKey>,
    /// Data directory: the node database (and the node key, unless given otherwise).
    #[arg(long)]
    datadir: Option<PathBuf>,
    /// Discovery bootnodes (comma-separated enode URLs).
    #[arg(long, value_parser = parse_enode_list)]
    bootnodes: Option<EnodeList>,
    /// Peers to keep connected (comma-separated enode URLs).
    #[arg(long = "static", value_parser = parse_enode_list)]
    static_nodes: Option<EnodeList>,
    /// Peers admitted past the peer limits (comma-separated enode URLs).
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
    /// Print JSON lines: first {"event":"listening",…}, then one per peer added or removed
    /// and per lookup.
    #[arg(long)]
    pub json: bool,
}

impl NodeArgs {
    fn config(&self) -> DriverConfig {
        DriverConfig {
            node: NodeConfig {
                session: SessionConfig {
                    protocols: self.caps.clone().unwrap_or_default().0,
                    ..SessionConfig::default()
                },
                listen: self.listen,
                max_peers: self.max_peers,
                bootnodes: self.bootnodes.clone().unwrap_or_default().0,
                static_nodes: self.static_nodes.clone().unwrap_or_default().0,
                trusted_nodes: self
                    .trusted
                    .iter()
                    .flat_map(|l| l.0.iter().map(Enode::id))
                    .collect(),
                ..NodeConfig::default()
            },
            key: match (&self.nodekey, &self.nodekey_hex) {
                (Some(f), _) => KeySource::File(f.clone()),
                (None, Some(k)) => KeySource::Secret(k.clone()),
                (None, None) => KeySource::Default,
            },
            data_dir: self.datadir.clone(),
            ..DriverConfig::default()
        }
    }
}

fn listening(enode: &Enode, enr: Option<&Enr>, json: bool) {
    if json {
        println!(
            "{}",
            ordered(&[
                ("event", json!("listening")),
                ("enode", json!(enode.to_string())),
                ("enr", json!(enr.map(|r| r.to_string()))),
            ])
        );
    } else {
        tracing::info!(%enode, "listening");
        if let Some(r) = enr {
            tracing::info!(enr = %r, "record");
        }
    }
}

fn show(e: &NodeEvent, json: bool) {
    if json {
        if let Some(v) = event_json(e) {
            println!("{v}");
        }
    } else {
        log_event(e);
    }
}

fn stopped(report: &ShutdownReport, json: bool) {
    if json {
        println!(
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
        );
    } else {
        tracing::info!(forced_closes = report.forced_closes, db = ?report.db_saved, "stopped");
    }
}

/// Resolves on Ctrl-C, or SIGTERM on unix.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn run(args: NodeArgs) -> Result<ExitCode, Failure> {
    let json = args.json;
    let config = args.config();
    match args.driver {
        Driver::Tokio => {
            let (node, mut events) = devp2p_tokio::spawn(config)?;
            listening(&node.local_enode(), node.local_enr().as_ref(), json);
            let stop = stop_signal();
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    e = events.recv() => match e {
                        Some(e) => show(&e, json),
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
            let (started_tx, started_rx) = tokio::sync::oneshot::channel();
            let thread = std::thread::Builder::new()
                .name("devp2p-mio".into())
                .spawn(move || {
                    devp2p_mio::run(
                        config,
                        |d, remote| {
                            listening(&d.local_enode(), d.local_enr().as_ref(), json);
                            let _ = started_tx.send(remote);
                        },
                        |_, e| show(&e, json),
                    )
                })?;
            // `started_tx` is dropped unsent when the node fails to start.
            if let Ok(remote) = started_rx.await {
                stop_signal().await;
                remote.stop();
            }
            let report = tokio::task::spawn_blocking(move || thread.join())
                .await?
                .map_err(|_| "the mio thread panicked")??;
            stopped(&report, json);
        }
    }
    Ok(ExitCode::SUCCESS)
}
