//! The connection task's read buffer: small while the connection is quiet, grown while it is
//! busy. An idle connection (the common case on a node holding hundreds) then keeps a few KiB
//! instead of the whole configured size; bulk payloads mostly bypass this buffer anyway (the
//! core's direct input reads them into their stream's buffer).

use lp2p_core::shrink::ShrinkRule;

/// Size a buffer starts at and returns to: 4 KiB, one page, more than the frame headers,
/// pings, window updates and small messages (identify, kad, pubsub control) of an idle
/// connection take in one read.
pub(crate) const INITIAL_SIZE: usize = 4 * 1024;

/// A read buffer between [`INITIAL_SIZE`] (or the configured maximum, if smaller) and the
/// configured maximum. Resizing happens only when the buffer holds nothing unread
/// ([`ReadBuffer::prepare`]), so no bytes are ever moved.
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    buf: Box<[u8]>,
    max: usize,
    /// The last read filled the buffer: the socket may well have more.
    grow: bool,
    /// When a grown buffer returns to [`INITIAL_SIZE`]: after a run of small reads, the
    /// rule noise's buffers follow too ([`ShrinkRule`]).
    shrink: ShrinkRule,
}

impl ReadBuffer {
    /// A buffer that may grow to `max` bytes.
    pub(crate) fn new(max: usize) -> ReadBuffer {
        ReadBuffer {
            buf: vec![0u8; INITIAL_SIZE.min(max)].into_boxed_slice(),
            max,
            grow: false,
            shrink: ShrinkRule::new(INITIAL_SIZE),
        }
    }

    /// Applies a pending resize; call only when no unread bytes are in the buffer.
    pub(crate) fn prepare(&mut self) {
        let len = self.buf.len();
        let target = if self.grow {
            len.saturating_mul(2).min(self.max)
        } else if self.shrink.shrink_now(len) {
            INITIAL_SIZE.min(self.max)
        } else {
            len
        };
        self.grow = false;
        if target != len {
            self.shrink.reset();
            self.buf = vec![0u8; target].into_boxed_slice();
        }
    }

    /// Records that a read put `n` bytes into [`bytes_mut`](Self::bytes_mut)`[..n]`.
    pub(crate) fn filled(&mut self, n: usize) {
        let len = self.buf.len();
        self.grow = n >= len && len < self.max;
        self.shrink.record(n);
    }

    /// The whole buffer, to read into.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The whole buffer, to feed the core from.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The current size.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lp2p_core::shrink::SMALL_USES_BEFORE_SHRINK;

    #[test]
    fn starts_small_and_doubles_after_full_reads_up_to_the_maximum() {
        let mut b = ReadBuffer::new(64 * 1024);
        assert_eq!(b.len(), INITIAL_SIZE);
        let mut sizes = Vec::new();
        for _ in 0..6 {
            let n = b.len();
            b.filled(n);
            b.prepare();
            sizes.push(b.len());
        }
        assert_eq!(sizes, [8192, 16384, 32768, 65536, 65536, 65536]);
    }

    #[test]
    fn a_partial_read_does_not_grow_it() {
        let mut b = ReadBuffer::new(64 * 1024);
        b.filled(INITIAL_SIZE - 1);
        b.prepare();
        assert_eq!(b.len(), INITIAL_SIZE);
    }

    #[test]
    fn returns_to_the_initial_size_only_after_many_small_reads() {
        let mut b = ReadBuffer::new(64 * 1024);
        for _ in 0..4 {
            let n = b.len();
            b.filled(n);
            b.prepare();
        }
        assert_eq!(b.len(), 65536);
        // Small reads with a large one among them: the count starts over.
        for _ in 0..SMALL_USES_BEFORE_SHRINK - 1 {
            b.filled(100);
            b.prepare();
        }
        b.filled(INITIAL_SIZE / 2 + 1);
        b.prepare();
        assert_eq!(b.len(), 65536);
        for _ in 0..SMALL_USES_BEFORE_SHRINK - 1 {
            b.filled(100);
            b.prepare();
        }
        assert_eq!(b.len(), 65536);
        b.filled(100);
        b.prepare();
        assert_eq!(b.len(), INITIAL_SIZE);
    }

    #[test]
    fn a_maximum_below_the_initial_size_is_kept() {
        let mut b = ReadBuffer::new(64);
        assert_eq!(b.len(), 64);
        b.filled(64);
        b.prepare();
        assert_eq!(b.len(), 64);
        for _ in 0..2 * SMALL_USES_BEFORE_SHRINK {
            b.filled(1);
            b.prepare();
        }
        assert_eq!(b.len(), 64);
    }
}
