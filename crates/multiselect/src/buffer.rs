//! The two small buffers of the async shell.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::io::AsyncWrite;

/// A fixed-size receive buffer: bytes read from the stream that the negotiation has not
/// consumed yet. Sized to hold one whole message, so a message never has to be reassembled.
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuffer {
    /// A buffer of `capacity` bytes (allocated once, up front).
    pub(crate) fn new(capacity: usize) -> ReadBuffer {
        ReadBuffer {
            data: vec![0; capacity],
            start: 0,
            end: 0,
        }
    }

    /// The bytes received and not yet consumed.
    pub(crate) fn filled(&self) -> &[u8] {
        self.data.get(self.start..self.end).unwrap_or_default()
    }

    /// Whether every received byte has been consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    /// Drops `n` bytes from the front of [`filled`](ReadBuffer::filled).
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room to read into, after moving the unconsumed bytes to the front when the end of
    /// the buffer is reached. Empty only when the buffer is full of unconsumed bytes.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        if self.end == self.data.len() && self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end = self.end.saturating_sub(self.start);
            self.start = 0;
        }
        self.data.get_mut(self.end..).unwrap_or_default()
    }

    /// Records that `n` bytes were read into [`spare`](ReadBuffer::spare).
    pub(crate) fn advance(&mut self, n: usize) {
        self.end = self.end.saturating_add(n).min(self.data.len());
    }

    /// Copies as many unconsumed bytes as fit into `out`; returns how many.
    pub(crate) fn copy_to(&mut self, out: &mut [u8]) -> usize {
        let n = self.filled().len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), self.filled().get(..n)) {
            dst.copy_from_slice(src);
        }
        self.consume(n);
        n
    }
}

/// Bytes waiting to be written: negotiation messages, and for a lazy dialer the first
/// application data coalesced behind them.
#[derive(Debug, Default)]
pub(crate) struct SendBuffer {
    data: Vec<u8>,
    written: usize,
    needs_flush: bool,
}

impl SendBuffer {
    /// The buffer to append outgoing bytes to.
    pub(crate) fn buf_mut(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Whether bytes are waiting to be written.
    pub(crate) fn is_pending(&self) -> bool {
        self.written < self.data.len()
    }

    /// Drops every pending byte.
    pub(crate) fn clear(&mut self) {
        self.data = Vec::new();
        self.written = 0;
        self.needs_flush = false;
    }

    /// Writes every pending byte to `io` (without flushing).
    pub(crate) fn poll_drain<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while let Some(rest) = self
            .data
            .get(self.written..)
            .filter(|rest| !rest.is_empty())
        {
            let n = ready!(Pin::new(&mut *io).poll_write(cx, rest))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written = self.written.saturating_add(n);
            self.needs_flush = true;
        }
        self.data.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// Writes every pending byte and flushes `io` if anything was written since the last
    /// flush.
    pub(crate) fn poll_send<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(io, cx))?;
        if self.needs_flush {
            ready!(Pin::new(&mut *io).poll_flush(cx))?;
            self.needs_flush = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Records that the caller flushed `io` itself.
    pub(crate) fn flushed(&mut self) {
        self.needs_flush = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_buffer_compacts_and_copies() {
        let mut b = ReadBuffer::new(8);
        assert!(b.is_empty());
        b.spare()[..6].copy_from_slice(b"abcdef");
        b.advance(6);
        assert_eq!(b.filled(), b"abcdef");
        b.consume(4);
        assert_eq!(b.filled(), b"ef");
        assert_eq!(b.spare().len(), 2);
        b.spare().copy_from_slice(b"gh");
        b.advance(2);
        // At the end: the unconsumed bytes move to the front.
        assert_eq!(b.spare().len(), 4);
        assert_eq!(b.filled(), b"efgh");
        let mut out = [0u8; 3];
        assert_eq!(b.copy_to(&mut out), 3);
        assert_eq!(&out, b"efg");
        assert_eq!(b.copy_to(&mut out), 1);
        assert!(b.is_empty());
        assert_eq!(b.spare().len(), 8);
        b.consume(100);
        b.advance(100);
        assert_eq!(b.filled().len(), 8);
    }

    #[test]
    fn send_buffer_drains_and_flushes() {
        futures::executor::block_on(async {
            let mut sink = Vec::new();
            let mut b = SendBuffer::default();
            b.buf_mut().extend_from_slice(b"hello");
            assert!(b.is_pending());
            futures::future::poll_fn(|cx| b.poll_send(&mut sink, cx))
                .await
                .unwrap();
            assert!(!b.is_pending());
            assert_eq!(sink, b"hello");
            b.buf_mut().extend_from_slice(b"x");
            b.clear();
            assert!(!b.is_pending());
            b.flushed();
        });
    }
}
