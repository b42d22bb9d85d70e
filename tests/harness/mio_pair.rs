//! One session between two mio nodes, each in its own `Runner` on its own thread: the
//! "thread per node" round of the driver benchmarks (`drivers`, `versus_geth`). Included with
//! `#[path]` by the benches that use it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use devp2p_core::node::NodeEvent;
use devp2p_core::session::{ProtocolId, SendError};
use devp2p_core::Enode;
use devp2p_mio::{DriverConfig, Runner, SendFailure};

/// Mio, each node in its own `Runner` on its own thread: B sends whenever its queue has room; the time runs from B's first send
/// until A's application has every byte.
pub fn mio_pair(
    config: fn() -> DriverConfig,
    protocol: ProtocolId,
    msgs: Vec<Vec<u8>>,
    count: usize,
    limit: Duration,
    verbose: bool,
) -> f64 {
    let total: usize = (0..count).map(|i| msgs[i % msgs.len()].len()).sum();
    let (enode_tx, enode_rx) = mpsc::channel::<Enode>();
    let a_up = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let (a_up2, done2) = (a_up.clone(), done.clone());
    let receiver = std::thread::spawn(move || {
        let mut r = Runner::new().expect("poll");
        let a = r.add(config()).expect("node a");
        enode_tx
            .send(r.driver(a).expect("a").local_enode())
            .expect("sender thread");
        let mut got = 0;
        let limit = Instant::now() + limit;
        while got < total {
            assert!(Instant::now() < limit, "mio round over the limit");
            r.turn(Some(Duration::from_millis(10)), &mut |_, _, e| match e {
                NodeEvent::PeerAdded(_) => a_up2.store(true, Ordering::SeqCst),
                NodeEvent::Message { payload, .. } => got += payload.len(),
                _ => {}
            })
            .expect("poll");
        }
        let end = Instant::now();
        if verbose {
            eprintln!("mio receiver thread CPU {:.3} s", thread_cpu());
        }
        done2.store(true, Ordering::SeqCst);
        r.remote().stop();
        let _ = r.run(|_, _, _| {});
        end
    });
    let sender = std::thread::spawn(move || {
        let mut r = Runner::new().expect("poll");
        let b = r.add(config()).expect("node b");
        let a_enode = enode_rx.recv().expect("a's enode");
        let to = a_enode.id();
        r.driver_mut(b)
            .expect("b")
            .add_static(&a_enode)
            .expect("dialable");
        let mut up = false;
        while !up || !a_up.load(Ordering::SeqCst) {
            r.turn(Some(Duration::from_millis(1)), &mut |_, _, e| {
                up |= matches!(e, NodeEvent::PeerAdded(_))
            })
            .expect("poll");
        }
        let start = Instant::now();
        let mut sent = 0;
        while !done.load(Ordering::SeqCst) {
            let d = r.driver_mut(b).expect("b");
            while sent < count {
                match d.send(&to, protocol, 0, &msgs[sent % msgs.len()]) {
                    Ok(()) => sent += 1,
                    Err(SendFailure::Refused(SendError::QueueFull { .. })) => break,
                    Err(e) => panic!("send: {e}"),
                }
            }
            r.turn(Some(Duration::from_millis(1)), &mut |_, _, _| {})
                .expect("poll");
        }
        if verbose {
            eprintln!(
                "mio sender thread CPU {:.3} s, {:.3} s since start",
                thread_cpu(),
                start.elapsed().as_secs_f64()
            );
        }
        r.remote().stop();
        let _ = r.run(|_, _, _| {});
        start
    });
    let start = sender.join().expect("sender thread");
    let end = receiver.join().expect("receiver thread");
    (end - start).as_secs_f64()
}

/// CPU seconds (user + system) the calling thread has used.
fn thread_cpu() -> f64 {
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one `rusage` into the struct we pass and reads nothing else.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    assert_eq!(rc, 0, "getrusage");
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
