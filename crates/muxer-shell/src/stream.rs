//! A stream handle: `AsyncRead + AsyncWrite` calls straight into the shared core.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};

use crate::muxer::MuxerCore;
use crate::shared::Shared;

/// One stream of a [`ShellConnection`](crate::ShellConnection). Reads and writes go straight
/// into the connection's core: no channel and no allocation per call. Writes are queued in
/// the core's send buffer, which the connection task writes out coalesced with every other
/// stream's frames; a full buffer (or an exhausted flow-control window) makes the writer
/// wait.
///
/// `poll_close` half-closes: the remote reads EOF after what was written, and reading goes
/// on. [`reset`](lp2p_core::Stream::reset) aborts both directions. Dropping the stream
/// half-closes it if it was not closed and discards what the remote sends afterwards (see
/// [`MuxerCore::drop_stream`]).
pub struct ShellStream<M: MuxerCore> {
    id: M::StreamId,
    shared: Arc<Shared<M>>,
}

impl<M: MuxerCore> ShellStream<M> {
    pub(crate) fn new(id: M::StreamId, shared: Arc<Shared<M>>) -> ShellStream<M> {
        ShellStream { id, shared }
    }

    /// The stream's id in its connection.
    pub fn id(&self) -> M::StreamId {
        self.id
    }

    /// Looks at the connection's core (under its lock; keep `f` short), e.g. to read this
    /// stream's flow-control state.
    pub fn core<R>(&self, f: impl FnOnce(&M) -> R) -> R {
        f(&self.shared.lock().core)
    }
}

impl<M: MuxerCore> std::fmt::Debug for ShellStream<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShellStream")
            .field("protocol", &M::PROTOCOL_ID)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<M: MuxerCore> AsyncRead for ShellStream<M> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.shared.poll_read(self.id, cx, buf).map_err(Into::into)
    }
}

impl<M: MuxerCore> AsyncWrite for ShellStream<M> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.shared.poll_write(self.id, cx, buf).map_err(Into::into)
    }

    /// Data written is already queued in the connection, which sends it without being
    /// asked; flushing only reports a stream that can no longer deliver it.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.id;
        Poll::Ready(
            self.shared
                .with(|inner| inner.core.flush_stream(id))
                .map_err(Into::into),
        )
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.id;
        Poll::Ready(
            self.shared
                .with(|inner| inner.core.close_stream(id))
                .map_err(Into::into),
        )
    }
}

impl<M: MuxerCore> lp2p_core::Stream for ShellStream<M> {
    fn reset(&mut self) {
        let id = self.id;
        // A task blocked on the other half of this stream (after a split) learns it too.
        let wake = self.shared.with(|inner| {
            inner.core.reset_stream(id);
            inner.take_stream_wakers(id)
        });
        for w in wake {
            w.wake();
        }
    }
}

impl<M: MuxerCore> Drop for ShellStream<M> {
    fn drop(&mut self) {
        let id = self.id;
        self.shared.with(|inner| {
            inner.core.drop_stream(id);
            inner.forget_stream(id);
        });
    }
}
