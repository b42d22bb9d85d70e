#![allow(dead_code)] // each test crate that includes this uses a different part of it
//! Hand-made peers for the fault tests, every byte under the test's control: an RLPx client
//! over a blocking socket built from the core's [`Handshake`] and [`FrameCodec`], discv4
//! packets from the core's wire module, abortive closes (RST), and the process's memory.
//!
//! Nothing here trusts the node under test: every read has a deadline, and every failure is
//! an `Err` naming what was expected.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use devp2p_core::discv4::wire::{
    self, EnrRequest, EnrResponse, FindNode, Neighbor, Neighbors, Packet, Ping, Pong,
};
use devp2p_core::discv4::wire::{Endpoint, HEAD_SIZE, MAX_PACKET_SIZE};
use devp2p_core::keccak::{keccak256, keccak256_concat};
use devp2p_core::rlpx::{FrameCodec, Handshake};
use devp2p_core::session::{Capability, Hello, P2P_VERSION};
use devp2p_core::{Enode, Enr, NodePublicKey, NodeSecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// Base protocol message ids (devp2p): Hello, Disconnect, Ping, Pong.
pub const HELLO: u64 = 0x00;
/// Disconnect.
pub const DISCONNECT: u64 = 0x01;
/// Ping.
pub const PING: u64 = 0x02;
/// Pong.
pub const PONG: u64 = 0x03;
/// The first sub-protocol message id.
pub const SUBPROTOCOL_OFFSET: u64 = 0x10;

/// A random generator whose seed differs per call (a counter and the clock), so that every
/// raw peer of a run has its own key.
pub fn rng() -> ChaCha20Rng {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    ChaCha20Rng::seed_from_u64(t ^ n.rotate_left(32) ^ u64::from(std::process::id()))
}

/// A fresh node key.
pub fn fresh_key() -> NodeSecretKey {
    NodeSecretKey::generate(&mut rng())
}

/// A TCP connection to `addr` with read and write timeouts of `timeout`.
pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Closes `stream` abortively: the peer sees a reset (RST), not an orderly end of stream.
pub fn reset(stream: TcpStream) {
    let s = socket2::Socket::from(stream);
    let _ = s.set_linger(Some(Duration::ZERO));
    drop(s);
}

/// The auth message a fresh key sends to open a session with `remote` (EIP-8 format).
pub fn auth_message(remote: &NodePublicKey) -> Vec<u8> {
    let key = fresh_key();
    Handshake::initiator(&key, remote, &mut rng()).take_output()
}

/// An RLPx session opened by the test: handshake and Hello done, snappy as negotiated.
pub struct RawSession {
    /// The socket (blocking, with timeouts).
    pub stream: TcpStream,
    /// Our key.
    pub key: NodeSecretKey,
    /// The node's Hello.
    pub remote_hello: Hello,
    codec: FrameCodec,
    /// Bytes read and not yet decoded.
    input: Vec<u8>,
}

impl RawSession {
    /// Dials `target`, runs the RLPx handshake as the initiator and exchanges Hello offering
    /// `caps`; everything within `timeout`.
    pub fn open(target: &Enode, caps: &[Capability], timeout: Duration) -> Result<Self, String> {
        let addr = target
            .tcp_addr()
            .ok_or_else(|| format!("{target} has no TCP address"))?;
        let deadline = Instant::now() + timeout;
        let mut stream = connect(addr, timeout).map_err(|e| format!("connecting {addr}: {e}"))?;
        let key = fresh_key();
        let mut hs = Handshake::initiator(&key, &target.public_key, &mut rng());
        stream
            .write_all(&hs.take_output())
            .map_err(|e| format!("writing auth to {addr}: {e}"))?;
        let mut input = Vec::new();
        let mut buf = [0u8; 4096];
        while !hs.is_done() {
            let n = read_some(&mut stream, &mut buf, deadline)
                .map_err(|e| format!("reading ack from {addr}: {e}"))?;
            input.extend_from_slice(&buf[..n]);
            let used = hs
                .read(&input)
                .map_err(|e| format!("ack from {addr}: {e}"))?;
            input.drain(..used);
        }
        let outcome = hs
            .into_outcome()
            .ok_or("handshake done without an outcome")?;
        let mut codec = FrameCodec::new(outcome.secrets);
        let hello = Hello {
            protocol_version: P2P_VERSION,
            client_id: "devp2p-tests raw peer".into(),
            capabilities: caps.to_vec(),
            listen_port: 0,
            id: key.public().raw().to_vec(),
        };
        let mut out = Vec::new();
        codec
            .encode(HELLO, &hello.encode(), &mut out)
            .map_err(|e| format!("encoding Hello: {e}"))?;
        stream
            .write_all(&out)
            .map_err(|e| format!("writing Hello to {addr}: {e}"))?;
        let mut session = RawSession {
            stream,
            key,
            remote_hello: hello,
            codec,
            input,
        };
        let (id, payload) = session.read_message_until(deadline)?;
        match id {
            HELLO => {
                session.remote_hello =
                    Hello::decode(&payload).map_err(|e| format!("Hello from {addr}: {e}"))?;
            }
            DISCONNECT => {
                return Err(format!(
                    "{addr} disconnected instead of Hello: {payload:02x?}"
                ))
            }
            other => return Err(format!("{addr} sent message {other:#x} before Hello")),
        }
        session
            .codec
            .set_snappy(session.remote_hello.protocol_version >= P2P_VERSION);
        Ok(session)
    }

    /// The bytes of one framed message with wire id `id`, sealed but not sent (the codec's
    /// state moves on as if it had been).
    pub fn frame(&mut self, id: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.codec
            .encode(id, payload, &mut out)
            .expect("test messages fit a frame");
        out
    }

    /// Sends one message with wire id `id`.
    pub fn send(&mut self, id: u64, payload: &[u8]) -> io::Result<()> {
        let f = self.frame(id, payload);
        self.stream.write_all(&f)
    }

    /// Reads the next message (wire id, payload), waiting at most the socket's timeout.
    pub fn read_message(&mut self, timeout: Duration) -> Result<(u64, Vec<u8>), String> {
        self.read_message_until(Instant::now() + timeout)
    }

    fn read_message_until(&mut self, deadline: Instant) -> Result<(u64, Vec<u8>), String> {
        let peer = self
            .stream
            .peer_addr()
            .map_or_else(|_| "the node".to_string(), |a| a.to_string());
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.codec.decode(&self.input) {
                Ok((used, Some(frame))) => {
                    let msg = (frame.id, frame.payload.to_vec());
                    self.input.drain(..used);
                    return Ok(msg);
                }
                Ok((used, None)) => {
                    self.input.drain(..used);
                }
                Err(e) => return Err(format!("bad frame from {peer}: {e}")),
            }
            let n = read_some(&mut self.stream, &mut buf, deadline)
                .map_err(|e| format!("reading from {peer}: {e}"))?;
            self.input.extend_from_slice(&buf[..n]);
        }
    }
}

/// Reads at least one byte before `deadline`; end of stream is an error.
fn read_some(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(io::ErrorKind::TimedOut.into())
            }
            Err(e) => return Err(e),
        }
    }
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A signed discv4 Ping from `key` at `from` to `to`, valid for 20 s; with its hash.
pub fn ping_packet(key: &NodeSecretKey, from: SocketAddr, to: SocketAddr) -> (Vec<u8>, [u8; 32]) {
    let ep = |a: SocketAddr| Endpoint {
        ip: Some(a.ip()),
        udp: a.port(),
        tcp: a.port(),
    };
    wire::encode(
        &Packet::Ping(Ping {
            version: wire::PING_VERSION,
            from: ep(from),
            to: ep(to),
            expiration: unix_now() + 20,
            enr_seq: None,
        }),
        key,
    )
}

/// Pings `target` from `socket` with a fresh key and waits up to `timeout` for the Pong
/// answering it; checks that the Pong is signed by `target`'s key and echoes the Ping's hash.
/// Other datagrams (the node pinging back to bond, say) are skipped.
pub fn discv4_ping(socket: &UdpSocket, target: &Enode, timeout: Duration) -> Result<(), String> {
    let to = target
        .udp_addr()
        .ok_or_else(|| format!("{target} has no UDP address"))?;
    let from = socket.local_addr().map_err(|e| e.to_string())?;
    let (packet, hash) = ping_packet(&fresh_key(), from, to);
    socket
        .send_to(&packet, to)
        .map_err(|e| format!("sending a Ping to {to}: {e}"))?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no Pong from {to} within {timeout:?}"));
        }
        socket
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let (n, src) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(format!("receiving from {to}: {e}")),
        };
        if src != to {
            continue;
        }
        let Ok(d) = wire::decode(&buf[..n]) else {
            return Err(format!("{to} sent an invalid datagram"));
        };
        if let Packet::Pong(p) = &d.packet {
            if d.sender != target.public_key {
                return Err(format!("the Pong from {to} is signed by another key"));
            }
            if p.ping_hash != hash {
                return Err(format!("the Pong from {to} answers another Ping"));
            }
            return Ok(());
        }
    }
}

/// Malformed and unsolicited discv4 datagrams, none of which a node may answer or learn
/// from, mostly cheap to reject as a real flood would be:
///
/// * 6 in 10: random bytes of random length, 0 to 1,400 (too small, too large, bad hash);
/// * 2 in 10: a correct hash over random bytes (the signature does not recover, or the type
///   is unknown, or the body is not RLP);
/// * 1 in 10: a validly signed packet with one byte flipped (bad hash);
/// * 1 in 10: a validly signed packet replayed: Pong, Neighbors and ENRResponse nobody asked
///   for, FindNode and ENRRequest from nodes that never proved their endpoint, expired Pings,
///   an unknown packet type, a known type with a body that is not RLP.
///
/// Random bytes are cut from a pool filled once (a cipher-grade generator is too slow for
/// megabytes of them in a debug build); each datagram still differs from the others.
pub struct Flood {
    /// xorshift64* state for lengths, offsets and picks.
    state: u64,
    pool: Vec<u8>,
    signed: Vec<Vec<u8>>,
    n: u64,
}

impl Flood {
    /// A generator; the signed packets claim to come from `from` and address `to`.
    pub fn new(from: SocketAddr, to: SocketAddr) -> Self {
        let mut rng = rng();
        let ep = |a: SocketAddr| Endpoint {
            ip: Some(a.ip()),
            udp: a.port(),
            tcp: a.port(),
        };
        let now = unix_now();
        let mut signed = Vec::new();
        for i in 0..8u64 {
            let key = NodeSecretKey::generate(&mut rng);
            let mut hash = [0u8; 32];
            rng.fill_bytes(&mut hash);
            let mut target = [0u8; 64];
            rng.fill_bytes(&mut target);
            let nodes = (0..12)
                .map(|j| {
                    let mut key = [0u8; 64];
                    rng.fill_bytes(&mut key);
                    Neighbor {
                        endpoint: Endpoint {
                            ip: Some(std::net::Ipv4Addr::new(127, 0, 1, j).into()),
                            udp: 30303,
                            tcp: 30303,
                        },
                        key,
                    }
                })
                .collect();
            let record = Enr::builder()
                .seq(i + 1)
                .ip(from.ip())
                .udp4(from.port())
                .sign(&key)
                .expect("a small record");
            let packets = [
                Packet::Pong(Pong {
                    to: ep(to),
                    ping_hash: hash,
                    expiration: now + 60,
                    enr_seq: Some(1),
                }),
                Packet::Neighbors(Neighbors {
                    nodes,
                    expiration: now + 60,
                }),
                Packet::EnrResponse(EnrResponse {
                    request_hash: hash,
                    record,
                }),
                Packet::FindNode(FindNode {
                    target,
                    expiration: now + 60,
                }),
                Packet::EnrRequest(EnrRequest {
                    expiration: now + 60,
                }),
                Packet::Ping(Ping {
                    version: wire::PING_VERSION,
                    from: ep(from),
                    to: ep(to),
                    // Long past, and (read as signed, as geth does) far past.
                    expiration: if i % 2 == 0 { now - 3600 } else { 1 << 63 },
                    enr_seq: None,
                }),
            ];
            for p in &packets {
                signed.push(wire::encode(p, &key).0);
            }
            // Signed, but of an unknown type, and of a known type with a body that is not RLP.
            signed.push(sign_raw(&key, 0x07 + i as u8, b"\xc2\x01\x02"));
            signed.push(sign_raw(&key, 0x01, b"\xff\xff\xff"));
        }
        let mut pool = vec![0u8; POOL_SIZE + 2 * MAX_PACKET_SIZE];
        rng.fill_bytes(&mut pool);
        Flood {
            state: rng.next_u64() | 1,
            pool,
            signed,
            n: 0,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `len` random bytes, stamped with the datagram's number so no two are alike.
    fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        let at = (self.next_u64() % POOL_SIZE as u64) as usize;
        let mut d = self.pool[at..at + len].to_vec();
        for (b, s) in d.iter_mut().zip(self.n.to_le_bytes()) {
            *b ^= s;
        }
        d
    }

    /// The next datagram.
    pub fn next_datagram(&mut self) -> Vec<u8> {
        let n = self.n;
        self.n += 1;
        match n % 10 {
            0..=5 => {
                let len = (self.next_u64() % 1401) as usize;
                self.random_bytes(len)
            }
            6 | 7 => {
                let len = HEAD_SIZE + 1 + (self.next_u64() % 1100) as usize;
                let mut d = self.random_bytes(len);
                let h = keccak256(&d[32..]);
                d[..32].copy_from_slice(&h);
                d
            }
            8 => {
                let i = (self.next_u64() % self.signed.len() as u64) as usize;
                let mut d = self.signed[i].clone();
                let at = (self.next_u64() % d.len() as u64) as usize;
                d[at] ^= 0x5a;
                d
            }
            _ => self.signed[(n / 10) as usize % self.signed.len()].clone(),
        }
    }
}

/// Random bytes the flood cuts its datagrams from.
const POOL_SIZE: usize = 64 * 1024;

/// A datagram with a correct hash and signature over any type byte and body.
fn sign_raw(key: &NodeSecretKey, ty: u8, body: &[u8]) -> Vec<u8> {
    let sig = key.sign_recoverable(&keccak256_concat(&[&[ty], body]));
    let hash = keccak256_concat(&[&sig, &[ty], body]);
    let mut out = Vec::with_capacity(HEAD_SIZE + 1 + body.len());
    out.extend_from_slice(&hash);
    out.extend_from_slice(&sig);
    out.push(ty);
    out.extend_from_slice(body);
    assert!(out.len() <= MAX_PACKET_SIZE);
    out
}

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`); `None` where there is no procfs.
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    })
}
