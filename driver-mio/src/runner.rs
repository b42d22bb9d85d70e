//! [`Runner`]: the convenience loop, for when the node (or several) need not share a `Poll`
//! with anything else.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::common::{DriverConfig, ShutdownReport, StartError};
use devp2p_core::node::NodeEvent;
use mio::{Events, Poll, Token, Waker};

use crate::Driver;

/// The token of the runner's waker; drivers get tokens after it.
pub const WAKER_TOKEN: Token = Token(0);
/// Tokens given to each driver a runner starts, so at most this many minus two connections
/// per node (far above any peer limit).
pub const TOKENS_PER_DRIVER: usize = 1 << 20;
/// Readiness events taken from the OS per `poll`.
pub const EVENTS_PER_POLL: usize = 1024;

type Job = Box<dyn FnOnce(&mut Runner) + Send>;

/// The runner's thread has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerGone;

impl fmt::Display for RunnerGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the mio runner has stopped")
    }
}

impl std::error::Error for RunnerGone {}

/// A handle for other threads: run a closure on the runner's thread, or ask it to stop.
#[derive(Clone)]
pub struct Remote {
    jobs: mpsc::Sender<Job>,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
}

impl Remote {
    /// Runs `f` on the runner's thread at its next turn.
    pub fn run(&self, f: impl FnOnce(&mut Runner) + Send + 'static) -> Result<(), RunnerGone> {
        self.jobs.send(Box::new(f)).map_err(|_| RunnerGone)?;
        self.waker.wake().map_err(|_| RunnerGone)
    }

    /// Runs `f` on the runner's thread and waits for its result.
    pub fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Runner) -> T + Send + 'static,
    ) -> Result<T, RunnerGone> {
        let (tx, rx) = mpsc::channel();
        self.run(move |r| {
            let _ = tx.send(f(r));
        })?;
        rx.recv().map_err(|_| RunnerGone)
    }

    /// Asks [`Runner::run`] to shut every node down gracefully and return.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

/// A `mio::Poll` with any number of [`Driver`]s, each under its own token range.
///
/// Its thread runs [`run`](Self::run), which hands out every node's events; other threads
/// reach the nodes through a [`Remote`]. Two nodes, the second dialling the first:
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use devp2p_core::node::NodeEvent;
/// use devp2p_core::session::DisconnectReason;
/// use devp2p_mio::{DriverConfig, Runner};
///
/// let mut runner = Runner::new()?;
/// let mut config = DriverConfig::default();
/// config.node.listen = "127.0.0.1:0".parse()?;
/// config.node.no_discovery = true;
/// let a = runner.add(config.clone())?;
/// let b = runner.add(config)?;
/// let a_enode = runner.driver(a).unwrap().local_enode();
/// runner.driver_mut(b).unwrap().add_static(&a_enode)?;
///
/// let remote = runner.remote();
/// let (tx, rx) = mpsc::channel();
/// let thread = std::thread::spawn(move || {
///     runner.run(move |node, _driver, event| {
///         let _ = tx.send((node, event));
///     })
/// });
/// let next = || rx.recv_timeout(Duration::from_secs(5));
///
/// let b_id = loop {
///     if let (node, NodeEvent::PeerAdded(peer)) = next()? {
///         if node == a {
///             break peer.id;
///         }
///     }
/// };
/// // Commands run on the runner's thread, through the remote. One side ends the session
/// // before the stop: two nodes that shut down at once would each wait out its Disconnect
/// // linger (1 s) for the other to close the connection.
/// remote.call(move |r| {
///     r.driver_mut(a).unwrap().disconnect(&b_id, DisconnectReason::ClientQuitting)
/// })?;
/// while !matches!(next()?, (node, NodeEvent::PeerRemoved { .. }) if node == b) {}
///
/// remote.stop(); // shuts every node down gracefully; `run` returns their reports
/// let reports = thread.join().expect("no panic")?;
/// assert_eq!(reports.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Runner {
    poll: Poll,
    events: Events,
    drivers: Vec<Driver>,
    waker: Arc<Waker>,
    jobs: mpsc::Receiver<Job>,
    jobs_tx: mpsc::Sender<Job>,
    stop: Arc<AtomicBool>,
}

impl Runner {
    /// An empty runner.
    pub fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN)?);
        let (jobs_tx, jobs) = mpsc::channel();
        Ok(Runner {
            poll,
            events: Events::with_capacity(EVENTS_PER_POLL),
            drivers: Vec::new(),
            waker,
            jobs,
            jobs_tx,
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Starts a node; returns its index.
    pub fn add(&mut self, config: DriverConfig) -> Result<usize, StartError> {
        let i = self.drivers.len();
        let first = 1 + i * TOKENS_PER_DRIVER;
        let driver = Driver::new(
            self.poll.registry(),
            first..first + TOKENS_PER_DRIVER,
            config,
        )?;
        self.drivers.push(driver);
        Ok(i)
    }

    /// Node `i`.
    pub fn driver(&self, i: usize) -> Option<&Driver> {
        self.drivers.get(i)
    }

    /// Node `i`, for commands.
    pub fn driver_mut(&mut self, i: usize) -> Option<&mut Driver> {
        self.drivers.get_mut(i)
    }

    /// Every node, by index.
    pub fn drivers(&self) -> &[Driver] {
        &self.drivers
    }

    /// A handle for other threads.
    pub fn remote(&self) -> Remote {
        Remote {
            jobs: self.jobs_tx.clone(),
            waker: self.waker.clone(),
            stop: self.stop.clone(),
        }
    }

    /// Waits for readiness (at most `max_wait`, and no longer than the nodes' next deadline),
    /// handles it, runs what is due and hands every event to `on_event` with its node's index.
    pub fn turn(
        &mut self,
        max_wait: Option<Duration>,
        on_event: &mut impl FnMut(usize, &mut Driver, NodeEvent),
    ) -> io::Result<()> {
        let wait = self
            .drivers
            .iter()
            .filter_map(Driver::timeout)
            .chain(max_wait)
            .min();
        match self.poll.poll(&mut self.events, wait) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for event in &self.events {
            if event.token() == WAKER_TOKEN {
                continue;
            }
            let i = (event.token().0 - 1) / TOKENS_PER_DRIVER;
            if let Some(d) = self.drivers.get_mut(i) {
                d.handle_event(event);
            }
        }
        self.drain(on_event);
        // What a job causes is handed out before the next job runs, so a job that looks at
        // the outcome of an earlier one sees its events delivered.
        while let Ok(job) = self.jobs.try_recv() {
            job(self);
            self.drain(on_event);
        }
        if self.stop.load(Ordering::SeqCst) {
            for d in &mut self.drivers {
                d.shutdown();
            }
            self.drain(on_event);
        }
        Ok(())
    }

    /// Runs what is due in every node and hands out their events.
    fn drain(&mut self, on_event: &mut impl FnMut(usize, &mut Driver, NodeEvent)) {
        for (i, d) in self.drivers.iter_mut().enumerate() {
            d.handle_timeout();
            while let Some(e) = d.poll_event() {
                on_event(i, d, e);
            }
        }
    }

    /// Runs until every node has shut down: after [`Remote::stop`], or after each node's own
    /// [`Driver::shutdown`] (from `on_event`, say). Returns each node's report.
    pub fn run(
        &mut self,
        mut on_event: impl FnMut(usize, &mut Driver, NodeEvent),
    ) -> io::Result<Vec<ShutdownReport>> {
        while !self.drivers.iter().all(Driver::is_finished) {
            self.turn(None, &mut on_event)?;
        }
        Ok(self
            .drivers
            .iter()
            .filter_map(|d| d.shutdown_report().cloned())
            .collect())
    }
}

/// Runs one node on its own `Poll` until it shuts down (after `remote.stop()` from another
/// thread, or [`Driver::shutdown`] from `on_event`); `started` is called once with the
/// driver (to print its enode, say) and a [`Remote`].
pub fn run(
    config: DriverConfig,
    started: impl FnOnce(&Driver, Remote),
    on_event: impl FnMut(&mut Driver, NodeEvent),
) -> Result<ShutdownReport, RunError> {
    let mut runner = Runner::new().map_err(|e| RunError::Start(StartError::Io(e)))?;
    runner.add(config).map_err(RunError::Start)?;
    started(&runner.drivers[0], runner.remote());
    let mut on_event = on_event;
    let mut reports = runner
        .run(|_, d, e| on_event(d, e))
        .map_err(RunError::Poll)?;
    reports.pop().ok_or(RunError::Poll(io::Error::other(
        "the node ended without a shutdown report",
    )))
}

/// Why [`run`] ended early.
#[derive(Debug)]
pub enum RunError {
    /// The node did not start.
    Start(StartError),
    /// Polling failed.
    Poll(io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Start(e) => write!(f, "{e}"),
            RunError::Poll(e) => write!(f, "polling: {e}"),
        }
    }
}

impl std::error::Error for RunError {}
