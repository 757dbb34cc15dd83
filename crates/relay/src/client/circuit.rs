//! A relayed circuit as a raw byte stream (`lp2p_core::Connection`): the hop stream (on the
//! dialing side) or the stop stream (on the listening side) after the relay said OK. The
//! usual upgrade (security, muxer) then runs over it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::{Connection, Multiaddr};
use lp2p_host::HostStream;

/// One end of a relayed circuit.
pub struct Circuit {
    stream: HostStream,
    local_addr: Multiaddr,
    remote_addr: Multiaddr,
}

impl Circuit {
    /// Wraps the stream that carries the circuit.
    pub fn new(stream: HostStream, local_addr: Multiaddr, remote_addr: Multiaddr) -> Circuit {
        Circuit {
            stream,
            local_addr,
            remote_addr,
        }
    }
}

impl std::fmt::Debug for Circuit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Circuit")
            .field("local_addr", &self.local_addr)
            .field("remote_addr", &self.remote_addr)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for Circuit {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Circuit {
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
        Pin::new(&mut self.stream).poll_close(cx)
    }
}

impl Connection for Circuit {
    fn local_addr(&self) -> Multiaddr {
        self.local_addr.clone()
    }

    fn remote_addr(&self) -> Multiaddr {
        self.remote_addr.clone()
    }
}
