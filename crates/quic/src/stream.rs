//! One bidirectional QUIC stream as an lp2p [`Stream`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::Stream;
use quinn_proto::{FinishError, ReadError, ReadableError, StreamId, VarInt, WriteError};

use crate::driver::{ConnRef, STREAM_RESET, connection_io_error};

/// A bidirectional stream of a [`QuicConnection`](crate::QuicConnection).
///
/// `poll_close` finishes our side (the remote reads EOF, we may keep reading); `reset`
/// aborts both directions (`RESET_STREAM` and `STOP_SENDING`); dropping it finishes our side
/// if it is still open and stops reading (the remote's further writes fail), like dropping a
/// yamux stream. Writes go into quinn-proto's send buffer (bounded by the connection's send
/// window; a write waits for room) and `poll_flush` has nothing to do.
pub struct QuicStream {
    conn: ConnRef,
    id: StreamId,
    read_done: bool,
    /// The remote reset its side (the code); reads keep failing with it.
    remote_reset: Option<VarInt>,
    write_done: bool,
    reset: bool,
}

impl QuicStream {
    pub(crate) fn new(conn: ConnRef, id: StreamId) -> QuicStream {
        QuicStream {
            conn,
            id,
            read_done: false,
            remote_reset: None,
            write_done: false,
            reset: false,
        }
    }

    /// The stream's QUIC id.
    pub fn id(&self) -> u64 {
        self.id.into()
    }
}

impl std::fmt::Debug for QuicStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicStream")
            .field("id", &self.id)
            .field("read_done", &self.read_done)
            .field("write_done", &self.write_done)
            .field("reset", &self.reset)
            .finish_non_exhaustive()
    }
}

fn reset_error(code: VarInt, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        format!("stream {what} by the remote (code {code})"),
    )
}

impl AsyncRead for QuicStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(code) = self.remote_reset {
            return Poll::Ready(Err(reset_error(code, "reset")));
        }
        if self.read_done || buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.reset {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "stream was reset",
            )));
        }
        let id = self.id;
        let shared = self.conn.shared().clone();
        let mut state = shared.lock();
        if let Some(err) = &state.error {
            return Poll::Ready(Err(connection_io_error(err)));
        }
        let mut recv = state.conn.recv_stream(id);
        let mut chunks = match recv.read(true) {
            Ok(chunks) => chunks,
            Err(ReadableError::ClosedStream) => {
                // Finished and already reported, or stopped: nothing more to read.
                self.read_done = true;
                return Poll::Ready(Ok(0));
            }
            Err(ReadableError::IllegalOrderedRead) => {
                return Poll::Ready(Err(io::Error::other("unordered read on an ordered stream")));
            }
        };
        let mut filled = 0usize;
        let mut finished = false;
        let mut reset = None;
        while let Some(room) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
            match chunks.next(room.len()) {
                Ok(Some(chunk)) => {
                    let len = chunk.bytes.len().min(room.len());
                    if let (Some(dst), Some(src)) = (room.get_mut(..len), chunk.bytes.get(..len)) {
                        dst.copy_from_slice(src);
                    }
                    filled = filled.saturating_add(len);
                }
                Ok(None) => {
                    finished = true;
                    break;
                }
                Err(ReadError::Blocked) => break,
                Err(ReadError::Reset(code)) => {
                    reset = Some(code);
                    break;
                }
            }
        }
        if chunks.finalize().should_transmit() {
            state.wake_driver();
        }
        if filled == 0 && !finished && reset.is_none() {
            state.blocked_readers.insert(id, cx.waker().clone());
            return Poll::Pending;
        }
        drop(state);
        if finished {
            self.read_done = true;
        }
        if let Some(code) = reset {
            self.read_done = true;
            self.remote_reset = Some(code);
            if filled == 0 {
                return Poll::Ready(Err(reset_error(code, "reset")));
            }
        }
        Poll::Ready(Ok(filled))
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.write_done || self.reset {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "stream is closed for writing",
            )));
        }
        let mut state = self.conn.shared().lock();
        if let Some(err) = &state.error {
            return Poll::Ready(Err(connection_io_error(err)));
        }
        match state.conn.send_stream(self.id).write(buf) {
            Ok(written) => {
                state.wake_driver();
                Poll::Ready(Ok(written))
            }
            Err(WriteError::Blocked) => {
                state.blocked_writers.insert(self.id, cx.waker().clone());
                Poll::Pending
            }
            Err(WriteError::Stopped(code)) => Poll::Ready(Err(reset_error(code, "stopped"))),
            Err(WriteError::ClosedStream) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "stream is closed for writing",
            ))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.write_done || self.reset {
            return Poll::Ready(Ok(()));
        }
        let id = self.id;
        let shared = self.conn.shared().clone();
        let mut state = shared.lock();
        if let Some(err) = &state.error {
            return Poll::Ready(Err(connection_io_error(err)));
        }
        let result = state.conn.send_stream(id).finish();
        state.wake_driver();
        drop(state);
        self.write_done = true;
        match result {
            Ok(()) | Err(FinishError::ClosedStream) => Poll::Ready(Ok(())),
            Err(FinishError::Stopped(code)) => Poll::Ready(Err(reset_error(code, "stopped"))),
        }
    }
}

impl Stream for QuicStream {
    fn reset(&mut self) {
        if self.reset {
            return;
        }
        self.reset = true;
        let mut state = self.conn.shared().lock();
        if state.error.is_some() {
            return;
        }
        let code = VarInt::from_u32(STREAM_RESET);
        if !self.write_done {
            let _ = state.conn.send_stream(self.id).reset(code);
        }
        if !self.read_done {
            let _ = state.conn.recv_stream(self.id).stop(code);
        }
        state.wake_driver();
    }
}

impl Drop for QuicStream {
    fn drop(&mut self) {
        let mut state = self.conn.shared().lock();
        state.streams = state.streams.saturating_sub(1);
        state.blocked_readers.remove(&self.id);
        state.blocked_writers.remove(&self.id);
        if self.reset || state.error.is_some() {
            return;
        }
        // Graceful: what we wrote is delivered, then FIN; whatever the remote still sends is
        // refused (STOP_SENDING) rather than buffered for nobody.
        if !self.write_done {
            let _ = state.conn.send_stream(self.id).finish();
        }
        if !self.read_done {
            let _ = state
                .conn
                .recv_stream(self.id)
                .stop(VarInt::from_u32(STREAM_RESET));
        }
        state.wake_driver();
    }
}
