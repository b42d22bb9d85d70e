//! The NAT worker: a helper thread that carries out the node's port-mapping requests with
//! blocking gateway I/O ([`crate::common::gateway`]), so that the event loop never waits for
//! a router. Both drivers use it the same way: the engine hands it each request the node
//! gives ([`Node::poll_nat_request`](devp2p_core::node::Node::poll_nat_request)) and feeds
//! each outcome back; the tokio driver is woken by the worker, the mio driver looks for
//! outcomes every [`NAT_POLL_INTERVAL`] while one is outstanding (a `Poll` has room for one
//! `Waker`, and it is the application's).
//!
//! The router is found on the first request, and searched for again on the next request
//! after a failure to find it, or after it failed to tell its external IP (geth searches once
//! and never again, so a router that was off at start is never used).

use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use devp2p_core::nat::{GatewayError, Nat, Outcome, Request, RequestId};

use crate::common::clock::Clock;
use crate::common::engine::{log, LogTarget};
use crate::common::gateway::Gateway;

/// How often the mio driver looks for the worker's outcomes while a request is outstanding
/// (our choice: gateway requests take tens of milliseconds to seconds; 20 ms adds little).
pub const NAT_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// At shutdown, how long the deletion of the mappings may take before the node stops
/// without waiting for the gateway (our choice: two UPnP deletions at geth's 3 s SOAP
/// timeout; the leases lapse by themselves after their lifetime anyway).
pub const NAT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(6);

/// Called by the worker after each outcome, from its thread.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// The handle on the worker thread. Dropping it ends the thread once its current request is
/// done.
pub struct NatWorker {
    requests: Sender<(RequestId, Request)>,
    /// In a mutex only so that the worker (and the engine holding it) is `Sync`, which the
    /// tokio driver's task needs; it is only ever reached through `&mut self`.
    outcomes: Mutex<Receiver<(RequestId, Outcome)>>,
    outstanding: usize,
}

impl NatWorker {
    /// Starts the worker for `nat`; `wake` is called after each outcome.
    pub fn spawn(nat: Nat, log: LogTarget, wake: Wake) -> std::io::Result<NatWorker> {
        let (req_tx, req_rx) = mpsc::channel::<(RequestId, Request)>();
        let (out_tx, out_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("devp2p-nat".into())
            .spawn(move || run(nat, log, &req_rx, &out_tx, &*wake))?;
        Ok(NatWorker {
            requests: req_tx,
            outcomes: Mutex::new(out_rx),
            outstanding: 0,
        })
    }

    /// Queues `request`.
    pub fn submit(&mut self, id: RequestId, request: Request) -> Result<(), GatewayError> {
        self.requests
            .send((id, request))
            .map_err(|_| GatewayError("the NAT worker thread has stopped".into()))?;
        self.outstanding += 1;
        Ok(())
    }

    /// The next outcome, if one is ready.
    pub fn try_recv(&mut self) -> Option<(RequestId, Outcome)> {
        let outcomes = match self.outcomes.get_mut() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        match outcomes.try_recv() {
            Ok(o) => {
                self.outstanding = self.outstanding.saturating_sub(1);
                Some(o)
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                // A panic in the worker: the outstanding requests will never be answered.
                self.outstanding = 0;
                None
            }
        }
    }

    /// Whether a request waits for its outcome.
    pub fn is_busy(&self) -> bool {
        self.outstanding > 0
    }
}

fn run(
    nat: Nat,
    log: LogTarget,
    requests: &Receiver<(RequestId, Request)>,
    outcomes: &Sender<(RequestId, Outcome)>,
    wake: &(dyn Fn() + Send + Sync),
) {
    let clock = Clock::new();
    let mut gateway: Option<Gateway> = None;
    while let Ok((id, request)) = requests.recv() {
        if gateway.is_none() {
            match Gateway::discover(nat, &clock) {
                Ok(g) => {
                    log!(log, info, gateway = %g, "found the NAT gateway");
                    gateway = Some(g);
                }
                Err(e) => {
                    log!(log, debug, nat = %nat, error = %e, "no NAT gateway found");
                    let _ = outcomes.send((id, failure(&request, e)));
                    wake();
                    continue;
                }
            }
        }
        let Some(g) = gateway.as_mut() else { continue };
        log!(log, debug, %id, ?request, "asking the NAT gateway");
        let outcome = g.execute(&request, &clock);
        log!(log, debug, %id, ?outcome, "the NAT gateway answered");
        if matches!(outcome, Outcome::ExternalIp(Err(_))) {
            // It may be gone, or replaced: search again next time.
            gateway = None;
        }
        if outcomes.send((id, outcome)).is_err() {
            return;
        }
        wake();
    }
}

/// The outcome of `request` failing with `error`.
fn failure(request: &Request, error: GatewayError) -> Outcome {
    match request {
        Request::ExternalIp => Outcome::ExternalIp(Err(error)),
        Request::Map { .. } => Outcome::Mapped(Err(error)),
        Request::Unmap { .. } => Outcome::Unmapped(Err(error)),
    }
}
