//! The byte-counted outbound queue of one connection.

/// A queue of encrypted bytes waiting for the driver to write them. It counts bytes, not
/// messages, and refuses growth past its limit, so a peer that stops reading costs at most
/// the limit.
#[derive(Debug)]
pub(crate) struct OutboundQueue {
    buf: Vec<u8>,
    start: usize,
    limit: usize,
}

/// Capacity kept after the queue drains; a burst larger than this is given back.
const RETAINED_CAPACITY: usize = 64 * 1024;

impl OutboundQueue {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            limit,
        }
    }

    /// Bytes waiting.
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `extra` more bytes fit under the limit less `reserve`.
    pub(crate) fn has_room(&self, extra: usize, reserve: usize) -> bool {
        self.len().saturating_add(extra) <= self.limit.saturating_sub(reserve)
    }

    /// The bytes to write next.
    pub(crate) fn front(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The buffer to append frames to. Callers check [`has_room`](Self::has_room) first.
    pub(crate) fn tail(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Marks `n` bytes from the front as written; returns how many were actually pending.
    pub(crate) fn advance(&mut self, n: usize) -> usize {
        let n = n.min(self.len());
        self.start += n;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() > RETAINED_CAPACITY {
                self.buf = Vec::new();
            }
        } else if self.start >= RETAINED_CAPACITY && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        n
    }

    /// Drops everything pending.
    pub(crate) fn clear(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
    }
}
