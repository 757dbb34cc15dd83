//! Joins two streams into one byte pipe (the relay's side of a circuit), counting every byte
//! against a [`CircuitBudget`]: one future polls both directions, so no task or lock per
//! direction. A half-close on one side is passed on to the other; the pipe ends when both
//! directions have ended. Going over the data limit resets both streams.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::Stream;

use crate::hop::core::{CircuitBudget, Direction};

/// Buffer per direction. Why 16 KiB: one yamux frame's worth of payload per read keeps the
/// copy cheap; two per circuit bound a relay at 16 circuits to 512 KiB.
pub const SPLICE_BUFFER: usize = 16 * 1024;

/// How a splice ended.
#[derive(Debug, PartialEq, Eq)]
pub enum SpliceEnd {
    /// Both sides closed their write halves.
    Closed,
    /// A direction went over the data limit; both streams were reset.
    DataLimit,
}

struct Half {
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    read_done: bool,
    closed: bool,
}

impl Half {
    fn new() -> Half {
        Half {
            buf: vec![0; SPLICE_BUFFER].into_boxed_slice(),
            pos: 0,
            len: 0,
            read_done: false,
            closed: false,
        }
    }

    /// Moves bytes from `src` to `dst` until it would block; Ready(Ok(false)) on the data
    /// limit, Ready(Ok(true)) when this direction is finished.
    fn poll_copy<A, B>(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut A,
        dst: &mut B,
        budget: &mut CircuitBudget,
        dir: Direction,
    ) -> Poll<io::Result<bool>>
    where
        A: AsyncRead + Unpin,
        B: AsyncWrite + Unpin,
    {
        loop {
            if self.closed {
                return Poll::Ready(Ok(true));
            }
            if self.pos < self.len {
                let chunk = self.buf.get(self.pos..self.len).unwrap_or_default();
                match Pin::new(&mut *dst).poll_write(cx, chunk) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    Poll::Ready(Ok(n)) => self.pos = self.pos.saturating_add(n).min(self.len),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
                continue;
            }
            if self.read_done {
                match Pin::new(&mut *dst).poll_close(cx) {
                    Poll::Ready(_) => {
                        self.closed = true;
                        return Poll::Ready(Ok(true));
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            // Flush what we wrote before waiting for more input.
            if let Poll::Ready(Err(e)) = Pin::new(&mut *dst).poll_flush(cx) {
                return Poll::Ready(Err(e));
            }
            match Pin::new(&mut *src).poll_read(cx, &mut self.buf) {
                Poll::Ready(Ok(0)) => self.read_done = true,
                Poll::Ready(Ok(n)) => {
                    if !budget.spend(dir, n) {
                        return Poll::Ready(Ok(false));
                    }
                    self.pos = 0;
                    self.len = n.min(self.buf.len());
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// The pipe between a circuit's source stream and its target stream.
pub struct Splice<A, B> {
    src: A,
    dst: B,
    budget: CircuitBudget,
    forward: Half,
    backward: Half,
}

impl<A, B> Splice<A, B>
where
    A: Stream,
    B: Stream,
{
    /// Joins `src` (the peer that asked for the circuit) and `dst` (the target).
    pub fn new(src: A, dst: B, budget: CircuitBudget) -> Splice<A, B> {
        Splice {
            src,
            dst,
            budget,
            forward: Half::new(),
            backward: Half::new(),
        }
    }

    /// Resets both streams (a limit was hit, or the relay is shutting down).
    pub fn reset(&mut self) {
        self.src.reset();
        self.dst.reset();
    }

    /// The budget, with what was carried so far.
    pub fn budget(&self) -> &CircuitBudget {
        &self.budget
    }
}

impl<A, B> Future for Splice<A, B>
where
    A: Stream,
    B: Stream,
{
    type Output = io::Result<SpliceEnd>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let fwd = this.forward.poll_copy(
            cx,
            &mut this.src,
            &mut this.dst,
            &mut this.budget,
            Direction::SrcToDst,
        );
        let bwd = this.backward.poll_copy(
            cx,
            &mut this.dst,
            &mut this.src,
            &mut this.budget,
            Direction::DstToSrc,
        );
        match (fwd, bwd) {
            (Poll::Ready(Ok(false)), _) | (_, Poll::Ready(Ok(false))) => {
                this.reset();
                Poll::Ready(Ok(SpliceEnd::DataLimit))
            }
            (Poll::Ready(Err(e)), _) | (_, Poll::Ready(Err(e))) => {
                this.reset();
                Poll::Ready(Err(e))
            }
            (Poll::Ready(Ok(true)), Poll::Ready(Ok(true))) => Poll::Ready(Ok(SpliceEnd::Closed)),
            _ => Poll::Pending,
        }
    }
}
