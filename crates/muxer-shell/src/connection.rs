//! The connection handle: opens and accepts streams, closes, and starts the task.

use std::sync::Arc;
use std::task::Poll;

use async_trait::async_trait;
use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::{MuxedConnection, PeerId, Role, RuntimeHandle};
use tracing::Instrument;

use crate::config::ShellConfig;
use crate::driver::Driver;
use crate::muxer::MuxerCore;
use crate::shared::Shared;
use crate::stream::ShellStream;

/// A live multiplexed connection run by the shell: one task moves bytes between the socket
/// and the core `M`; this handle and the [`ShellStream`]s act on the core directly.
///
/// The handle owns the connection: dropping it closes the connection as
/// [`close`](ShellConnection::close) would, without waiting (streams still held then fail,
/// except for reading what already arrived). Share it behind an `Arc`.
pub struct ShellConnection<M: MuxerCore> {
    shared: Arc<Shared<M>>,
}

impl<M: MuxerCore> ShellConnection<M> {
    /// Runs `core` over the byte stream `io`: spawns the connection task on `runtime` and
    /// returns the handle. `role` and `peer` only label the task's logs (a `muxer` span with
    /// the protocol, the role and the remote peer when known).
    pub fn start<C>(
        io: C,
        core: M,
        config: &ShellConfig,
        runtime: &RuntimeHandle,
        role: Role,
        peer: Option<PeerId>,
    ) -> ShellConnection<M>
    where
        C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let span = tracing::debug_span!(
            "muxer",
            protocol = M::PROTOCOL_ID,
            %role,
            peer = tracing::field::Empty
        );
        if let Some(peer) = peer {
            span.record("peer", tracing::field::display(peer));
        }
        span.in_scope(|| tracing::debug!("muxed connection started"));
        let shared = Arc::new(Shared::new(core, runtime.clone()));
        let driver = Driver::new(io, shared.clone(), config);
        // Detached: the task ends by itself once the connection is closed and flushed.
        runtime.spawn_detached(driver.instrument(span));
        ShellConnection { shared }
    }

    /// Opens a stream, waiting while the core says "not now" (e.g. yamux's ACK backlog is
    /// full). Fails once the connection is closed or at a stream limit.
    pub async fn open(&self) -> Result<ShellStream<M>, M::Error> {
        let id = futures::future::poll_fn(|cx| {
            self.shared.with(|inner| match inner.core.open_stream() {
                Ok(Some(id)) => Poll::Ready(Ok(id)),
                Ok(None) => {
                    inner.wait_open(cx.waker());
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e)),
            })
        })
        .await?;
        Ok(ShellStream::new(id, self.shared.clone()))
    }

    /// Waits for the next stream the remote opened. Fails once the connection is closed.
    pub async fn accept(&self) -> Result<ShellStream<M>, M::Error> {
        let id = futures::future::poll_fn(|cx| {
            self.shared.with(|inner| match inner.core.accept_stream() {
                Ok(Some(id)) => Poll::Ready(Ok(id)),
                Ok(None) => {
                    inner.wait_accept(cx.waker());
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e)),
            })
        })
        .await?;
        Ok(ShellStream::new(id, self.shared.clone()))
    }

    /// Closes the connection (yamux sends GoAway) and waits until its task has flushed what
    /// was queued and closed the socket, or given up after the close timeout.
    pub async fn close(&self) {
        self.shared.with(|inner| inner.core.close());
        futures::future::poll_fn(|cx| {
            let mut inner = self.shared.lock();
            if inner.driver_done {
                Poll::Ready(())
            } else {
                inner.wait_close(cx.waker());
                Poll::Pending
            }
        })
        .await;
    }

    /// Whether the connection is closed (locally, by the remote, or by an error).
    pub fn is_closed(&self) -> bool {
        self.shared.lock().core.is_closed()
    }

    /// Streams open in either direction.
    pub fn num_streams(&self) -> usize {
        self.shared.lock().core.num_streams()
    }

    /// Looks at the core (under its lock; keep `f` short): statistics, the RTT, why the
    /// connection closed, and whatever else the core exposes.
    pub fn core<R>(&self, f: impl FnOnce(&M) -> R) -> R {
        f(&self.shared.lock().core)
    }
}

impl<M: MuxerCore> std::fmt::Debug for ShellConnection<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShellConnection")
            .field("protocol", &M::PROTOCOL_ID)
            .finish_non_exhaustive()
    }
}

impl<M: MuxerCore> Drop for ShellConnection<M> {
    fn drop(&mut self) {
        self.shared.with(|inner| inner.core.close());
    }
}

#[async_trait]
impl<M: MuxerCore> MuxedConnection for ShellConnection<M> {
    async fn open_stream(&self) -> Result<Box<dyn lp2p_core::Stream>, lp2p_core::Error> {
        match self.open().await {
            Ok(stream) => Ok(Box::new(stream)),
            Err(err) => Err(err.into()),
        }
    }

    async fn accept_stream(&self) -> Result<Box<dyn lp2p_core::Stream>, lp2p_core::Error> {
        match self.accept().await {
            Ok(stream) => Ok(Box::new(stream)),
            Err(err) => Err(err.into()),
        }
    }

    async fn close(&self) {
        ShellConnection::close(self).await;
    }

    fn is_closed(&self) -> bool {
        ShellConnection::is_closed(self)
    }

    fn num_streams(&self) -> usize {
        ShellConnection::num_streams(self)
    }
}
