//! The simulation's event queue: a calendar of one slot per virtual millisecond for the
//! next [`WINDOW_MS`], and a heap for anything later.
//!
//! It yields entries in exactly the order a binary heap over (time, insertion number) would,
//! but a push or pop near the present is O(1) and touches one small slot instead of
//! sifting through a heap of millions of entries (with 10,000 nodes the heap's pops were
//! the largest single cost of a run). Order within a millisecond is insertion order:
//! entries reach a slot either directly, in insertion order, or from the heap when the
//! window slides over their time, which happens before any direct push to that time can.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};

use devp2p_core::Instant;

/// Milliseconds covered by the calendar; later entries wait in the heap. Link latencies,
/// transmission delays and request timeouts all fall inside it.
pub const WINDOW_MS: u64 = 4096;

/// A queue of `T` ordered by (time, insertion).
pub struct EventQueue<T> {
    /// Slot `t % WINDOW_MS` holds the entries due at `t`, for `t` in `[cursor, cursor + WINDOW_MS)`.
    slots: Vec<VecDeque<(u64, T)>>,
    /// The earliest millisecond that may still hold entries.
    cursor: u64,
    /// Entries in the calendar.
    in_calendar: usize,
    /// Entries due at `cursor + WINDOW_MS` or later.
    later: BinaryHeap<Reverse<Later<T>>>,
    seq: u64,
}

struct Later<T> {
    at: u64,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Later<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<T> Eq for Later<T> {}
impl<T> PartialOrd for Later<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Later<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl<T> EventQueue<T> {
    /// An empty queue whose earliest possible time is `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            slots: (0..WINDOW_MS).map(|_| VecDeque::new()).collect(),
            cursor: start.as_millis(),
            in_calendar: 0,
            later: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Entries queued.
    pub fn len(&self) -> usize {
        self.in_calendar + self.later.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `item` for `at`; a time already passed counts as the earliest one pending.
    pub fn push(&mut self, at: Instant, item: T) {
        let at = at.as_millis().max(self.cursor);
        self.seq += 1;
        if at < self.cursor + WINDOW_MS {
            self.slots[(at % WINDOW_MS) as usize].push_back((at, item));
            self.in_calendar += 1;
        } else {
            self.later.push(Reverse(Later {
                at,
                seq: self.seq,
                item,
            }));
        }
    }

    /// Takes the first entry due at or before `until`, with its time.
    pub fn pop_until(&mut self, until: Instant) -> Option<(Instant, T)> {
        // `next_due` leaves the cursor on the slot of the entry it found.
        self.next_due(until)?;
        let (at, item) = self.slots[(self.cursor % WINDOW_MS) as usize].pop_front()?;
        debug_assert_eq!(at, self.cursor);
        self.in_calendar -= 1;
        Some((Instant::from_millis(at), item))
    }

    /// The time of the first entry due at or before `until`, if any, without taking it.
    pub fn next_due(&mut self, until: Instant) -> Option<Instant> {
        let until = until.as_millis();
        loop {
            if self.in_calendar == 0 {
                let next = self.later.peek()?.0.at;
                if next > until {
                    return None;
                }
                self.advance_to(next);
                continue;
            }
            if self.cursor > until {
                return None;
            }
            if !self.slots[(self.cursor % WINDOW_MS) as usize].is_empty() {
                return Some(Instant::from_millis(self.cursor));
            }
            if self.cursor >= until {
                // Stay at `until`: the caller's clock stops there and may still push for it.
                return None;
            }
            let next = self.cursor + 1;
            self.advance_to(next);
        }
    }

    /// Moves the calendar's start to `to` (no entries remain before it) and pulls in from
    /// the heap everything that now falls inside the window, in (time, insertion) order.
    fn advance_to(&mut self, to: u64) {
        debug_assert!(to >= self.cursor);
        self.cursor = to;
        let end = self.cursor + WINDOW_MS;
        while let Some(Reverse(first)) = self.later.peek() {
            if first.at >= end {
                break;
            }
            let Reverse(l) = self.later.pop().expect("peeked");
            self.slots[(l.at % WINDOW_MS) as usize].push_back((l.at, l.item));
            self.in_calendar += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    quickcheck! {
        /// Interleaved pushes and pops come out exactly as from a heap over (time, insertion).
        fn same_order_as_a_heap(ops: Vec<(u16, u8, bool)>) -> bool {
            let mut q = EventQueue::new(Instant::from_millis(10));
            let mut reference = BinaryHeap::new();
            let mut seq = 0u64;
            let mut now = 10u64;
            for (i, (delay, spread, pop)) in ops.into_iter().enumerate() {
                // Mostly near, sometimes far beyond the window.
                let at = now + u64::from(delay) * if spread % 7 == 0 { 300 } else { 1 };
                q.push(Instant::from_millis(at), i);
                seq += 1;
                reference.push(Reverse((at.max(now), seq, i)));
                if pop {
                    let until = now + u64::from(spread) * 40;
                    loop {
                        let want = match reference.peek() {
                            Some(Reverse((at, _, _))) if *at <= until => reference.pop().map(|Reverse((at, _, i))| (at, i)),
                            _ => None,
                        };
                        let got = q.pop_until(Instant::from_millis(until)).map(|(at, i)| (at.as_millis(), i));
                        if want != got {
                            return false;
                        }
                        if got.is_none() {
                            break;
                        }
                    }
                    now = until;
                }
            }
            let rest: Vec<_> = std::iter::from_fn(|| q.pop_until(Instant::MAX)).map(|(at, i)| (at.as_millis(), i)).collect();
            let want: Vec<_> = std::iter::from_fn(|| reference.pop()).map(|Reverse((at, _, i))| (at, i)).collect();
            rest == want && q.is_empty()
        }
    }
}
