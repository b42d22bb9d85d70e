//! DNS discovery's lookups for the mio driver, off its loop: a helper thread runs the
//! resolver (hickory-resolver on a small tokio runtime of its own) and hands each answer back
//! through a channel, then wakes the loop by a datagram on a loopback UDP socket registered
//! under one of the driver's tokens.
//!
//! Why a socket and not a `mio::Waker`: the `Poll` is the application's, mio allows one
//! `Waker` per `Poll`, and the application (or our `Runner`) may hold it already. A connected
//! pair of loopback sockets is an ordinary registration: the kernel delivers to the wake
//! socket only what the helper's socket sends, and a wake-up that finds nothing is harmless.
//!
//! Neither channel needs a bound of its own: the node walks its trees one name at a time
//! (one lookup in flight, each given up after `LOOKUP_TIMEOUT`), so at most a few requests
//! and answers are ever queued.

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::mpsc;

use devp2p_core::dnsdisc::client::LOOKUP_TIMEOUT;
use devp2p_core::dnsdisc::ResolveError;
use devp2p_core::node::DnsQueryId;
use mio::net::UdpSocket;

use crate::common::DnsResolver;

/// One answer, for the driver's loop.
pub(crate) type Answer = (DnsQueryId, Result<Vec<String>, ResolveError>);

/// The helper thread's two ends on the driver's side.
pub(crate) struct DnsWorker {
    /// Lookups to run. Dropping it ends the thread (its runtime drops what still runs).
    requests: tokio::sync::mpsc::UnboundedSender<(DnsQueryId, String)>,
    /// Answers waiting for the loop.
    answers: mpsc::Receiver<Answer>,
    /// Readable when answers wait; registered by the driver.
    pub(crate) wake: UdpSocket,
}

impl DnsWorker {
    /// Starts the helper thread for `resolver`.
    pub(crate) fn start(resolver: DnsResolver) -> io::Result<Self> {
        let loopback: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let wake = StdUdpSocket::bind(loopback)?;
        let poke = StdUdpSocket::bind(loopback)?;
        wake.connect(poke.local_addr()?)?;
        poke.connect(wake.local_addr()?)?;
        wake.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (requests, mut incoming) =
            tokio::sync::mpsc::unbounded_channel::<(DnsQueryId, String)>();
        let (answers_tx, answers) = mpsc::channel::<Answer>();
        std::thread::Builder::new()
            .name("devp2p-mio-dns".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some((query, name)) = incoming.recv().await {
                        let (resolver, answers, poke) =
                            (resolver.clone(), answers_tx.clone(), poke.try_clone());
                        tokio::spawn(async move {
                            // The node gives a lookup up after LOOKUP_TIMEOUT; so does this
                            // task, so that none outlives its use.
                            let answer =
                                tokio::time::timeout(LOOKUP_TIMEOUT, resolver.lookup_txt(&name))
                                    .await
                                    .unwrap_or(Err(ResolveError::Timeout));
                            if answers.send((query, answer)).is_ok() {
                                if let Ok(p) = poke {
                                    // Full means a wake-up is pending already.
                                    let _ = p.send(&[1]);
                                }
                            }
                        });
                    }
                });
            })?;
        Ok(DnsWorker {
            requests,
            answers,
            wake: UdpSocket::from_std(wake),
        })
    }

    /// Hands a lookup to the thread; `Err` with the answer to give at once when the thread
    /// has gone (it cannot, short of a panic in the resolver).
    pub(crate) fn resolve(&self, query: DnsQueryId, name: String) -> Result<(), Answer> {
        self.requests.send((query, name)).map_err(|_| {
            (
                query,
                Err(ResolveError::Failed(
                    "the DNS resolver thread has stopped".into(),
                )),
            )
        })
    }

    /// The answers that arrived, after emptying the wake socket (edge-triggered: it must be
    /// read until `WouldBlock` before the next wake-up can come).
    pub(crate) fn take_answers(&self) -> Vec<Answer> {
        let mut buf = [0u8; 16];
        loop {
            match self.wake.recv(&mut buf) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.answers.try_iter().collect()
    }
}
