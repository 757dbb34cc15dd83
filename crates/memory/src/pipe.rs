//! A bounded in-memory byte pipe: one direction of a memory connection.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

#[derive(Debug)]
struct State {
    buf: VecDeque<u8>,
    capacity: usize,
    /// The writer closed or dropped its end: the reader sees EOF once `buf` is drained.
    write_closed: bool,
    /// The reader dropped its end: writes fail with `BrokenPipe`.
    read_closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// One direction of a pipe, shared by its reading and its writing end.
#[derive(Debug, Clone)]
pub(crate) struct Pipe(Arc<Mutex<State>>);

impl Pipe {
    pub(crate) fn new(capacity: usize) -> Pipe {
        Pipe(Arc::new(Mutex::new(State {
            buf: VecDeque::new(),
            capacity: capacity.max(1),
            write_closed: false,
            read_closed: false,
            reader: None,
            writer: None,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent (every update
        // is a single field write or a buffer copy), so poisoning is ignored.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut state = self.lock();
        if state.buf.is_empty() {
            if state.write_closed {
                return Poll::Ready(Ok(0));
            }
            state.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut copied = 0;
        while copied < out.len() {
            let (front, _) = state.buf.as_slices();
            let n = front.len().min(out.len() - copied);
            if n == 0 {
                break;
            }
            if let (Some(dst), Some(src)) = (out.get_mut(copied..copied + n), front.get(..n)) {
                dst.copy_from_slice(src);
            }
            state.buf.drain(..n);
            copied += n;
        }
        if let Some(w) = state.writer.take() {
            w.wake();
        }
        Poll::Ready(Ok(copied))
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut state = self.lock();
        if state.read_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if state.write_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after close on a memory connection",
            )));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = state.capacity.saturating_sub(state.buf.len());
        if room == 0 {
            state.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(data.len());
        state.buf.extend(data.iter().take(n));
        if let Some(r) = state.reader.take() {
            r.wake();
        }
        Poll::Ready(Ok(n))
    }

    /// The writing end is done: the reader drains what is left, then sees EOF.
    pub(crate) fn close_write(&self) {
        let mut state = self.lock();
        state.write_closed = true;
        if let Some(r) = state.reader.take() {
            r.wake();
        }
    }

    /// The reading end is gone: pending and future writes fail.
    pub(crate) fn close_read(&self) {
        let mut state = self.lock();
        state.read_closed = true;
        state.buf.clear();
        if let Some(w) = state.writer.take() {
            w.wake();
        }
    }
}
