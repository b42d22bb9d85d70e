//! `devp2p rlpx ping`: one core `Session` (a sans-IO machine itself) over a tokio TCP stream:
//! handshake, Hello, print the remote Hello, disconnect politely.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use devp2p_core::session::{
    Closed, DisconnectReason, Established, Protocol, Session, SessionConfig, SessionEvent, Side,
};
use devp2p_core::{Enode, NodeSecretKey};
use devp2p_mio::common::{os_seeded_rng, Clock};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Failure;

/// Bytes read from the socket per call.
const READ_CHUNK: usize = 64 * 1024;
/// How long our closing Disconnect may take to leave (the core's linger is 1 s).
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn ping(
    enode: &Enode,
    caps: Vec<Protocol>,
    timeout: Duration,
    json: bool,
) -> Result<ExitCode, Failure> {
    let addr = enode
        .tcp_addr()
        .ok_or_else(|| format!("{enode} has no IP address"))?;
    let outcome = tokio::time::timeout(timeout, exchange(enode, caps)).await;
    let (est, rtt) = match outcome {
        Ok(r) => r.map_err(|e| format!("{addr}: {e}"))?,
        Err(_) => {
            return Err(format!("{addr}: no Hello within {}", crate::args::show(timeout)).into())
        }
    };
    let h = &est.hello;
    let id = est.remote.id();
    let caps: Vec<String> = h.capabilities.iter().map(|c| c.to_string()).collect();
    let rtt_ms = (rtt.as_secs_f64() * 1e6).round() / 1e3;
    if json {
        outln!(
            "{}",
            crate::output::ordered(&[
                ("id", json!(id.to_string())),
                ("client", json!(h.client_id)),
                ("version", json!(h.protocol_version)),
                ("caps", json!(caps)),
                ("listen_port", json!(h.listen_port)),
                ("rtt_ms", json!(rtt_ms)),
            ])
        );
    } else {
        outln!("id:          {id}");
        outln!("client:      {}", h.client_id);
        outln!("version:     {}", h.protocol_version);
        outln!("caps:        {}", caps.join(", "));
        outln!("listen port: {}", h.listen_port);
        outln!("rtt:         {rtt_ms} ms (TCP connected to remote Hello)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Connects, runs the session until the remote Hello, says goodbye. Returns the Hello and the
/// time from the TCP connection being open to the Hello arriving.
async fn exchange(enode: &Enode, caps: Vec<Protocol>) -> Result<(Established, Duration), Failure> {
    let addr = enode.tcp_addr().ok_or("no IP address")?;
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let _ = stream.set_nodelay(true);
    let started = std::time::Instant::now();
    let mut rng = os_seeded_rng().map_err(|e| format!("reading OS entropy: {e}"))?;
    let key = NodeSecretKey::generate(&mut rng);
    let config = Arc::new(SessionConfig {
        protocols: caps,
        ..SessionConfig::default()
    });
    let clock = Clock::new();
    let mut s = Session::initiator(config, &key, &enode.public_key, clock.now(), &mut rng);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        flush(&mut s, &mut stream, &clock).await?;
        while let Some(ev) = s.poll_event() {
            match ev {
                SessionEvent::Established(est) => {
                    let rtt = started.elapsed();
                    s.disconnect(clock.now(), DisconnectReason::Requested);
                    let _ =
                        tokio::time::timeout(GOODBYE_TIMEOUT, flush(&mut s, &mut stream, &clock))
                            .await;
                    return Ok((*est, rtt));
                }
                SessionEvent::Closed(c) => return Err(describe(&c).into()),
                SessionEvent::Authenticated { .. } | SessionEvent::Message { .. } => {}
            }
        }
        if s.is_finished() {
            return Err("the session ended before the remote Hello".into());
        }
        if !pending.is_empty() {
            let n = s.handle_read(clock.now(), &pending);
            pending.drain(..n);
            if n > 0 {
                continue;
            }
        }
        let wait = s
            .poll_timeout()
            .map_or(Duration::from_secs(3600), |t| clock.until(t));
        tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(0) => s.handle_eof(clock.now()),
                Ok(n) => {
                    let used = s.handle_read(clock.now(), &buf[..n]);
                    pending.extend_from_slice(&buf[used..n]);
                }
                Err(e) => return Err(format!("reading: {e}").into()),
            },
            _ = tokio::time::sleep(wait) => s.handle_timeout(clock.now()),
        }
    }
}

async fn flush(s: &mut Session, stream: &mut TcpStream, clock: &Clock) -> Result<(), Failure> {
    loop {
        let out = s.outbound();
        if out.is_empty() {
            return Ok(());
        }
        let n = stream
            .write(out)
            .await
            .map_err(|e| format!("writing: {e}"))?;
        s.handle_written(clock.now(), n);
    }
}

/// Why the session ended, for a person.
fn describe(c: &Closed) -> String {
    match (c.initiator, c.reason, &c.error) {
        (Side::Remote, Some(r), _) => format!("the remote disconnected: {r}"),
        (_, _, Some(e)) => e.to_string(),
        (Side::Local, Some(r), None) => format!("we disconnected: {r}"),
        (_, None, None) => "the connection ended without a reason".to_string(),
    }
}
