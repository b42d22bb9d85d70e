//! The barrier the simulator's threads meet at after every window.
//!
//! A window of a quiet network holds well under a millisecond of work per thread, and there
//! are 100 windows per virtual second. `std::sync::Barrier` puts every thread but the last
//! to sleep, and waking one costs a system call on each side plus the scheduler's latency,
//! paid 360,000 times in a virtual hour while the other thread waits. This barrier spins
//! for a while first, so two threads on two cores meet without sleeping, and sleeps only
//! when the wait grows long (a window much fuller on one side), and at once when there are
//! more threads than cores. Which thread arrives when never affects what the simulation computes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// How many times a waiting thread checks for the others before it sleeps: at the
/// `pause` instruction's 40–150 cycles, about 0.2–0.8 ms on a 2.8 GHz core, about a
/// window's work in a quiet network.
const SPINS: u32 = 1 << 14;

/// A reusable barrier for `n` threads that spins before it sleeps.
pub(crate) struct WindowBarrier {
    n: usize,
    /// Checks before sleeping: [`SPINS`], or none when there are more threads than cores
    /// (a spinning thread would then hold a core that a thread still working needs).
    spins: u32,
    /// Threads arrived in this round.
    arrived: AtomicUsize,
    /// Rounds completed: a waiter leaves when it changes.
    round: AtomicUsize,
    /// Threads asleep on `wake`, so that the last arrival only makes a system call when
    /// someone needs it.
    sleeping: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

impl WindowBarrier {
    pub(crate) fn new(n: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        WindowBarrier {
            n,
            spins: if n <= cores { SPINS } else { 0 },
            arrived: AtomicUsize::new(0),
            round: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// Returns once all `n` threads have called it in this round. Everything a thread did
    /// before its call happens before everything any thread does after its return.
    pub(crate) fn wait(&self) {
        let round = self.round.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            // Last in. Nobody else can arrive for the next round before seeing `round`
            // move, so the count is reset first.
            self.arrived.store(0, Ordering::Relaxed);
            let _held = self.lock.lock().expect("not poisoned");
            self.round.store(round.wrapping_add(1), Ordering::Release);
            if self.sleeping.load(Ordering::Relaxed) > 0 {
                self.wake.notify_all();
            }
            return;
        }
        for _ in 0..self.spins {
            if self.round.load(Ordering::Acquire) != round {
                return;
            }
            std::hint::spin_loop();
        }
        let mut held = self.lock.lock().expect("not poisoned");
        // Counted under the lock: the last arrival reads it under the lock after moving
        // `round`, so either it sees this sleeper or this thread sees the new round.
        self.sleeping.fetch_add(1, Ordering::Relaxed);
        while self.round.load(Ordering::Acquire) == round {
            held = self.wake.wait(held).expect("not poisoned");
        }
        self.sleeping.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// Every thread sees every other thread's work of a round after the barrier, round
    /// after round, whether the waits spin or sleep.
    #[test]
    fn each_round_sees_all_of_the_previous_one() {
        for (threads, rounds) in [(1, 100), (2, 20_000), (4, 2_000), (8, 500)] {
            let barrier = WindowBarrier::new(threads);
            let done = AtomicU64::new(0);
            std::thread::scope(|s| {
                for t in 0..threads {
                    let (barrier, done) = (&barrier, &done);
                    s.spawn(move || {
                        for r in 0..rounds as u64 {
                            if t == 0 && r % 97 == 0 {
                                // Long enough that the others go to sleep.
                                std::thread::sleep(std::time::Duration::from_millis(2));
                            }
                            done.fetch_add(1, Ordering::Relaxed);
                            barrier.wait();
                            assert_eq!(
                                done.load(Ordering::Relaxed),
                                (r + 1) * threads as u64,
                                "round {r}"
                            );
                            barrier.wait();
                        }
                    });
                }
            });
        }
    }
}
