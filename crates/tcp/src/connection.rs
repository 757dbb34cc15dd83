use std::io;
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_io::Async;
use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::{Connection, Multiaddr};

/// An established TCP connection. `poll_close` shuts down the write side (the remote reads
/// EOF); dropping it closes the socket.
#[derive(Debug)]
pub struct TcpConnection {
    stream: Async<TcpStream>,
    local: Multiaddr,
    remote: Multiaddr,
}

impl TcpConnection {
    pub(crate) fn new(stream: Async<TcpStream>, local: Multiaddr, remote: Multiaddr) -> Self {
        TcpConnection {
            stream,
            local,
            remote,
        }
    }

    /// The underlying socket, for socket options not covered by the transport.
    pub fn socket(&self) -> &TcpStream {
        self.stream.get_ref()
    }
}

impl AsyncRead for TcpConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }

    fn poll_read_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_read_vectored(cx, bufs)
    }
}

impl AsyncWrite for TcpConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // async-io's close only flushes; a half-close needs shutdown(Write) so the remote
        // reads EOF while we can still read.
        futures::ready!(Pin::new(&mut self.stream).poll_flush(cx))?;
        match self.stream.get_ref().shutdown(Shutdown::Write) {
            // Already reset or closed by the remote: nothing left to close.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
            other => Poll::Ready(other),
        }
    }
}

impl Connection for TcpConnection {
    fn local_addr(&self) -> Multiaddr {
        self.local.clone()
    }
    fn remote_addr(&self) -> Multiaddr {
        self.remote.clone()
    }
}
