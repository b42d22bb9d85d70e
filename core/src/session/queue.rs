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

/// Written bytes kept at the front before they are moved out (the queue then compacts once
/// they are at least half of it).
const COMPACT_AFTER: usize = 64 * 1024;

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
            // Drained: an idle connection holds no buffer; the next burst allocates again
            // (one allocation per burst, not per message).
            self.clear();
        } else if self.start >= COMPACT_AFTER && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        n
    }

    /// Bytes of buffer held.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Drops everything pending.
    pub(crate) fn clear(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
    }
}
