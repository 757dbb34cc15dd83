//! A stream handle: `AsyncRead + AsyncWrite` calls into the shared core.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};

use super::Shared;
use crate::frame::StreamId;

/// One yamux stream. Reads and writes go straight into the connection's core: no channel and
/// no allocation per call.
///
/// `poll_close` half-closes (FIN). [`reset`](lp2p_core::Stream::reset) aborts both ways
/// (RST). Dropping the stream half-closes it if it was not closed, drops data not yet read,
/// and resets it if the remote keeps sending.
pub struct YamuxStream {
    id: StreamId,
    shared: Arc<Shared>,
}

impl YamuxStream {
    pub(crate) fn new(id: StreamId, shared: Arc<Shared>) -> YamuxStream {
        YamuxStream { id, shared }
    }

    /// The stream id (odd if the dialer opened it).
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// A snapshot of the stream's flow-control state.
    pub fn status(&self) -> Option<crate::StreamStatus> {
        self.shared.lock().core.stream_status(self.id)
    }
}

impl std::fmt::Debug for YamuxStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YamuxStream")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for YamuxStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.shared
            .poll_read(self.id, cx, buf)
            .map_err(crate::YamuxError::into_io)
    }
}

impl AsyncWrite for YamuxStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.shared
            .poll_write(self.id, cx, buf)
            .map_err(crate::YamuxError::into_io)
    }

    /// Data written is already queued in the connection, which sends it without being asked.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.id;
        Poll::Ready(
            self.shared
                .with(|inner| inner.core.close_stream(id))
                .map_err(crate::YamuxError::into_io),
        )
    }
}

impl lp2p_core::Stream for YamuxStream {
    fn reset(&mut self) {
        let id = self.id;
        self.shared.with(|inner| inner.core.reset_stream(id));
    }
}

impl Drop for YamuxStream {
    fn drop(&mut self) {
        let id = self.id;
        self.shared.with(|inner| {
            inner.core.drop_stream(id);
            inner.read_wakers.remove(&id);
            inner.write_wakers.remove(&id);
        });
    }
}
