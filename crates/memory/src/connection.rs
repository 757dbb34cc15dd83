use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::{Connection, Multiaddr};

use crate::pipe::Pipe;

/// One end of an in-memory connection: a reliable, ordered byte stream with the same
/// half-close semantics as TCP (`close` makes the remote read EOF; dropping closes both
/// directions).
#[derive(Debug)]
pub struct MemoryConnection {
    inbound: Pipe,
    outbound: Pipe,
    local: Multiaddr,
    remote: Multiaddr,
}

impl MemoryConnection {
    /// Two connected ends, each direction buffering up to `capacity` bytes before a writer
    /// waits for the reader.
    pub fn pair(
        capacity: usize,
        a: Multiaddr,
        b: Multiaddr,
    ) -> (MemoryConnection, MemoryConnection) {
        let a_to_b = Pipe::new(capacity);
        let b_to_a = Pipe::new(capacity);
        let a_end = MemoryConnection {
            inbound: b_to_a.clone(),
            outbound: a_to_b.clone(),
            local: a.clone(),
            remote: b.clone(),
        };
        let b_end = MemoryConnection {
            inbound: a_to_b,
            outbound: b_to_a,
            local: b,
            remote: a,
        };
        (a_end, b_end)
    }
}

impl AsyncRead for MemoryConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.inbound.poll_read(cx, buf)
    }
}

impl AsyncWrite for MemoryConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.outbound.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.outbound.close_write();
        Poll::Ready(Ok(()))
    }
}

impl Drop for MemoryConnection {
    fn drop(&mut self) {
        self.outbound.close_write();
        self.inbound.close_read();
    }
}

impl Connection for MemoryConnection {
    fn local_addr(&self) -> Multiaddr {
        self.local.clone()
    }
    fn remote_addr(&self) -> Multiaddr {
        self.remote.clone()
    }
}
