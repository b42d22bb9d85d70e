//! A mio loop of our own that drives a devp2p node beside a socket it owns itself: a UDP
//! "status" socket that answers every datagram with the node's peer and table counts.
//!
//! ```sh
//! cargo run -p devp2p-mio --example custom_loop -- [--bootnode enode://…] [--seconds 30]
//! echo status | nc -u -w1 127.0.0.1 <the status port it prints>
//! ```
//!
//! The node gets tokens 100..1100; token 1 is ours. Each turn: poll no longer than the node
//! allows, route events by token, let the node run what is due, take its events.

use std::time::{Duration, Instant};

use devp2p_core::node::NodeEvent;
use devp2p_core::Enode;
use devp2p_mio::{Driver, DriverConfig};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

/// Our own socket's token; the node's range starts well after it.
const STATUS: Token = Token(1);
/// The node's tokens: UDP, listener, and up to 998 connections.
const NODE_TOKENS: std::ops::Range<usize> = 100..1100;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut bootnodes = Vec::new();
    let mut seconds = 30u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--bootnode", Some(v)) => bootnodes.push(v.parse::<Enode>()?),
            ("--seconds", Some(v)) => seconds = v.parse()?,
            _ => {
                return Err(format!(
                    "usage: custom_loop [--bootnode ENODE] [--seconds N] (got {a:?})"
                )
                .into())
            }
        }
    }

    let mut poll = Poll::new()?;
    let mut status = UdpSocket::bind("127.0.0.1:0".parse()?)?;
    poll.registry()
        .register(&mut status, STATUS, Interest::READABLE)?;
    let mut config = DriverConfig::default();
    config.node.listen = "127.0.0.1:0".parse()?;
    config.node.bootnodes = bootnodes;
    let mut node = Driver::new(poll.registry(), NODE_TOKENS, config)?;
    println!("node:   {}", node.local_enode());
    let at = status.local_addr()?;
    println!("status: echo status | nc -u -w1 {} {}", at.ip(), at.port());

    let stop_at = Instant::now() + Duration::from_secs(seconds);
    let mut events = Events::with_capacity(256);
    let mut buf = [0u8; 512];
    while !node.is_finished() {
        if Instant::now() >= stop_at {
            node.shutdown();
        }
        let until_stop = stop_at.saturating_duration_since(Instant::now());
        let wait = node.timeout().map_or(until_stop, |t| t.min(until_stop));
        poll.poll(&mut events, Some(wait))?;
        for event in &events {
            if event.token() == STATUS {
                // Our own socket: answer every datagram waiting.
                while let Ok((_, from)) = status.recv_from(&mut buf) {
                    let table = node.table().len();
                    let line = format!("peers={} table={}\n", node.peers().len(), table);
                    let _ = status.send_to(line.as_bytes(), from);
                }
            } else if node.owns(event.token()) {
                node.handle_event(event);
            }
        }
        node.handle_timeout();
        while let Some(event) = node.poll_event() {
            match event {
                NodeEvent::PeerAdded(p) => println!("peer added   {} {}", p.id, p.client_id),
                NodeEvent::PeerRemoved { id, reason, .. } => {
                    println!("peer removed {id} ({reason:?})")
                }
                _ => {}
            }
        }
    }
    println!("stopped: {:?}", node.shutdown_report());
    Ok(())
}
