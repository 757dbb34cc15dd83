use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::{PeerId, ProtocolId, Stream};
use lp2p_multiselect::Negotiated;
use lp2p_rcmgr::CountedStream;
use lp2p_swarm::Connection;

use crate::traffic::Traffic;

/// A stream with its protocol agreed: read and write bytes; it knows its protocol, the
/// remote peer and the connection it runs on.
///
/// `close()` (from `futures::AsyncWriteExt`) half-closes; dropping it closes it gracefully;
/// [`reset`](Stream::reset) aborts it.
pub struct HostStream {
    io: Negotiated<Box<dyn Stream>>,
    protocol: ProtocolId,
    connection: Connection,
    traffic: Arc<Traffic>,
    /// The stream's place in the resource manager's counts, returned when it drops.
    _counted: CountedStream,
}

impl HostStream {
    pub(crate) fn new(
        io: Negotiated<Box<dyn Stream>>,
        protocol: ProtocolId,
        connection: Connection,
        traffic: Arc<Traffic>,
        counted: CountedStream,
    ) -> Self {
        HostStream {
            io,
            protocol,
            connection,
            traffic,
            _counted: counted,
        }
    }

    /// The protocol agreed for this stream.
    pub fn protocol(&self) -> &ProtocolId {
        &self.protocol
    }

    /// The remote peer.
    pub fn peer(&self) -> PeerId {
        self.connection.peer()
    }

    /// The connection the stream runs on.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }
}

impl fmt::Debug for HostStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostStream")
            .field("protocol", &self.protocol)
            .field("peer", &self.peer())
            .field("connection", &self.connection.id())
            .finish_non_exhaustive()
    }
}

impl AsyncRead for HostStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            this.traffic.read(*n);
        }
        polled
    }
}

impl AsyncWrite for HostStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            this.traffic.written(*n);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &polled {
            this.traffic.written(*n);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}

impl Stream for HostStream {
    fn reset(&mut self) {
        self.io.reset();
    }
}
