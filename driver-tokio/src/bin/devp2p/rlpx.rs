//! `devp2p rlpx ping`: one core `Session` (a sans-IO machine itself) over a tokio TCP stream:
//! handshake, Hello, print the remote Hello, disconnect politely.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use devp2p_core::session::{
    Closed, DisconnectReason, Established, Protocol, Session, SessionConfig, SessionError,
    SessionEvent, Side, TimeoutKind,
};
use devp2p_core::{Enode, NodeSecretKey};
use devp2p_mio::common::{os_seeded_rng, Clock};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::args::show;
use crate::Failure;

/// Bytes read from the socket per call.
const READ_CHUNK: usize = 64 * 1024;
/// How long our closing Disconnect may take to leave (the core's linger is 1 s).
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

/// How far an exchange got, kept outside it so that a timeout can say which step never came.
#[derive(Debug, Default)]
struct Progress {
    /// The TCP connection is open.
    connected: bool,
    /// Bytes the remote sent.
    bytes_in: usize,
    /// The remote's auth-ack arrived and checked out: the RLPx handshake is done.
    authenticated: bool,
}

/// How an exchange failed short of the remote Hello.
enum Failed {
    /// Said as it is.
    Other(Failure),
    /// The session closed; `Progress` tells when.
    Closed(Closed),
}

impl From<Failure> for Failed {
    fn from(e: Failure) -> Self {
        Failed::Other(e)
    }
}

impl From<String> for Failed {
    fn from(e: String) -> Self {
        Failed::Other(e.into())
    }
}

pub async fn ping(
    enode: &Enode,
    caps: Vec<Protocol>,
    timeout: Duration,
    json: bool,
) -> Result<ExitCode, Failure> {
    let addr = enode
        .tcp_addr()
        .ok_or_else(|| format!("{enode} has no IP address"))?;
    if enode.tcp_port == 0 {
        // A record without `tcp`: a discovery-only node (geth's `devp2p discv4 listen`).
        return Err(format!("{enode} has no TCP port: the node does not serve RLPx").into());
    }
    let started = std::time::Instant::now();
    let mut progress = Progress::default();
    let outcome = tokio::time::timeout(
        timeout,
        exchange(enode, caps.clone(), timeout, &mut progress),
    )
    .await;
    let (est, rtt) = match outcome {
        Ok(Ok(r)) => r,
        Ok(Err(Failed::Other(e))) => return Err(format!("{addr}: {e}").into()),
        // The session's own deadlines are the same --timeout: the same message.
        Ok(Err(Failed::Closed(Closed {
            error: Some(SessionError::Timeout(TimeoutKind::Handshake | TimeoutKind::Hello)),
            ..
        }))) => return Err(timeout_message(addr, &progress, timeout).into()),
        Ok(Err(Failed::Closed(c))) => {
            let left = timeout.saturating_sub(started.elapsed());
            return Err(closed_message(enode, &caps, &c, &progress, left)
                .await
                .into());
        }
        Err(_) => return Err(timeout_message(addr, &progress, timeout).into()),
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

/// Which step did not come in time.
fn timeout_message(addr: std::net::SocketAddr, p: &Progress, timeout: Duration) -> String {
    let t = show(timeout);
    if !p.connected {
        format!("{addr}: no TCP connection within {t} (is the host up and the port open?)")
    } else if !p.authenticated && p.bytes_in > 0 {
        format!(
            "the server at {addr} does not speak RLPx (its reply is not an RLPx auth-ack: {} \
             bytes within {t} that do not complete one)",
            p.bytes_in
        )
    } else if !p.authenticated {
        format!(
            "{addr}: no RLPx auth-ack within {t} (the TCP connection is open, but the remote \
             sent nothing: not an RLPx node, or too busy; try a longer --timeout)"
        )
    } else {
        format!(
            "{addr}: the RLPx handshake completed, but no Hello came within {t} (try a longer \
             --timeout)"
        )
    }
}

/// Why the session closed before the remote Hello, for a person: in the handshake, which is
/// most often a wrong key or a server that is not an RLPx node; after it, the remote's
/// reason; with no capability in common, both sides' capabilities.
async fn closed_message(
    enode: &Enode,
    caps: &[Protocol],
    c: &Closed,
    p: &Progress,
    time_left: Duration,
) -> String {
    let addr = enode
        .tcp_addr()
        .map_or_else(|| enode.to_string(), |a| a.to_string());
    if !p.authenticated {
        if p.bytes_in > 0 {
            return format!(
                "the server at {addr} does not speak RLPx (its reply is not an RLPx auth-ack{})",
                match &c.error {
                    Some(SessionError::Handshake(e)) => format!(": {e}"),
                    _ => String::new(),
                }
            );
        }
        if matches!(c.error, Some(SessionError::ConnectionClosed)) {
            return format!(
                "the node at {addr} closed the connection during the RLPx handshake, before its \
                 auth-ack: that is what a node does when it does not hold the enode's key (the \
                 key in the enode is stale or wrong: check it, e.g. with `devp2p discv4 ping`), \
                 or when it is not an RLPx node"
            );
        }
    }
    let useless = matches!(c.error, Some(SessionError::NoSharedCapability { .. }))
        || (c.initiator == Side::Remote && c.reason == Some(DisconnectReason::UselessPeer));
    if useless {
        let ours = if caps.is_empty() {
            "none".to_string()
        } else {
            caps.iter()
                .map(|c| format!("{}/{}", c.name, c.version))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // The session read the remote Hello when it found the mismatch itself; when the
        // remote's Disconnect came first, a second connection reads it.
        let offered = match &c.error {
            Some(SessionError::NoSharedCapability { remote }) => {
                Ok(remote.iter().map(|c| c.to_string()).collect())
            }
            _ => remote_caps(enode, time_left).await,
        };
        let theirs = match offered {
            Ok(list) if list.is_empty() => "none".to_string(),
            Ok(list) => list.join(", "),
            Err(e) => format!("unknown (a second connection to read its Hello failed: {e})"),
        };
        let who = if c.initiator == Side::Remote {
            "the remote disconnected: useless peer"
        } else {
            "we disconnected: useless peer"
        };
        return format!(
            "{addr}: no capability in common ({who}): the remote offers {theirs}; we offered \
             {ours} (choose --caps from the remote's list)"
        );
    }
    format!("{addr}: {}", describe(c, p))
}

/// The remote's capabilities, from a second connection that offers none, when the first one
/// ended on the remote's Disconnect before its Hello was read. (geth lets an
/// internet IP open one inbound connection per 30 s, so against a public geth node this
/// second try is usually refused; the message then says so.)
async fn remote_caps(enode: &Enode, time_left: Duration) -> Result<Vec<String>, String> {
    let mut progress = Progress::default();
    let probe = exchange(enode, Vec::new(), time_left, &mut progress);
    match tokio::time::timeout(time_left, probe).await {
        Ok(Ok((est, _))) => Ok(est
            .hello
            .capabilities
            .iter()
            .map(|c| c.to_string())
            .collect()),
        Ok(Err(Failed::Other(e))) => Err(e.to_string()),
        Ok(Err(Failed::Closed(c))) => Err(describe(&c, &progress)),
        Err(_) => Err("no Hello in time".to_string()),
    }
}

/// Connects, runs the session until the remote Hello, says goodbye. Returns the Hello and the
/// time from the TCP connection being open to the Hello arriving; `progress` tracks how far
/// it got.
async fn exchange(
    enode: &Enode,
    caps: Vec<Protocol>,
    timeout: Duration,
    progress: &mut Progress,
) -> Result<(Established, Duration), Failed> {
    let addr = enode.tcp_addr().ok_or("no IP address".to_string())?;
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    progress.connected = true;
    let _ = stream.set_nodelay(true);
    let started = std::time::Instant::now();
    let mut rng = os_seeded_rng().map_err(|e| format!("reading OS entropy: {e}"))?;
    let key = NodeSecretKey::generate(&mut rng);
    let config = Arc::new({
        let mut session_ = SessionConfig::default();
        session_.protocols = caps; // Held after the handshake so that we learn when the auth-ack came (then admitted).
        session_.manual_admission = true; // The user's --timeout rules each step, not the session's defaults (5 s, 30 s).
        session_.handshake_timeout = timeout;
        session_.read_timeout = timeout;
        session_
    });
    let clock = Clock::new();
    let mut s = Session::initiator(config, &key, &enode.public_key, clock.now(), &mut rng);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        flush(&mut s, &mut stream, &clock).await?;
        while let Some(ev) = s.poll_event() {
            match ev {
                SessionEvent::Authenticated { .. } => {
                    progress.authenticated = true;
                    s.admit(clock.now());
                }
                SessionEvent::Established(est) => {
                    let rtt = started.elapsed();
                    s.disconnect(clock.now(), DisconnectReason::Requested);
                    let _ =
                        tokio::time::timeout(GOODBYE_TIMEOUT, flush(&mut s, &mut stream, &clock))
                            .await;
                    return Ok((*est, rtt));
                }
                SessionEvent::Closed(c) => return Err(Failed::Closed(c)),
                _ => {}
            }
        }
        if s.is_finished() {
            return Err("the session ended before the remote Hello"
                .to_string()
                .into());
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
                    progress.bytes_in += n;
                    let used = s.handle_read(clock.now(), &buf[..n]);
                    pending.extend_from_slice(&buf[used..n]);
                }
                // A reset is the remote closing too (often how a node drops a bad auth).
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    s.handle_eof(clock.now())
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
fn describe(c: &Closed, p: &Progress) -> String {
    match (c.initiator, c.reason, &c.error) {
        (Side::Remote, Some(r), _) => format!("the remote disconnected: {r}"),
        (_, _, Some(SessionError::ConnectionClosed)) if p.authenticated => {
            "the remote closed the connection after the RLPx handshake, before its Hello"
                .to_string()
        }
        (_, _, Some(e)) => e.to_string(),
        (Side::Local, Some(r), None) => format!("we disconnected: {r}"),
        (_, None, None) => "the connection ended without a reason".to_string(),
    }
}
