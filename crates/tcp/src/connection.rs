use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_io::Async;
use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::{Connection, Multiaddr};

/// An established TCP connection. `poll_close` shuts down the write side (the remote reads
/// EOF); dropping it closes the socket.
///
/// Reads track the socket's readiness: once a read finds it empty (`WouldBlock`), the next
/// ones wait for the reactor's readiness event instead of asking the socket again. A muxer
/// polls its connection for reading every time it runs, also when it was woken to write;
/// without the tracking each of those polls was a `recvfrom` that failed (measured in a
/// 10-node gossipsub network at 50 messages/s: 2.9 failed reads for every read that
/// returned data, 1.0 with it; decision D59).
#[derive(Debug)]
pub struct TcpConnection {
    stream: Async<TcpStream>,
    /// False once a read found the socket empty, until the reactor reports it readable.
    readable: bool,
    /// Reads tried on the socket, for the tests.
    #[cfg(test)]
    reads_tried: usize,
    local: Multiaddr,
    remote: Multiaddr,
}

impl TcpConnection {
    pub(crate) fn new(stream: Async<TcpStream>, local: Multiaddr, remote: Multiaddr) -> Self {
        TcpConnection {
            stream,
            readable: true,
            #[cfg(test)]
            reads_tried: 0,
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
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_read_with(cx, |mut socket| socket.read(buf))
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_read_with(cx, |mut socket| socket.read_vectored(bufs))
    }
}

impl TcpConnection {
    /// One read through `read` once the socket may have data: straight away while it is
    /// known readable, else after the reactor said so. A `WouldBlock` marks it empty and
    /// waits (async-io re-arms the readiness interest, which reports data that arrived in
    /// between, so no wake-up is lost).
    fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        mut read: impl FnMut(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            if !self.readable {
                futures::ready!(self.stream.poll_readable(cx))?;
                self.readable = true;
            }
            #[cfg(test)]
            {
                self.reads_tried += 1;
            }
            match read(self.stream.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                result => return Poll::Ready(result),
            }
        }
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::TcpListener;
    use std::time::Duration;

    use futures::{AsyncReadExt, FutureExt};

    use super::*;

    /// A connected pair on 127.0.0.1: ours (the one under test) and a plain blocking peer.
    fn pair() -> (TcpConnection, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        (
            TcpConnection::new(Async::new(ours).unwrap(), addr.clone(), addr),
            peer,
        )
    }

    fn poll_once(conn: &mut TcpConnection, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        Pin::new(conn).poll_read(&mut cx, buf)
    }

    /// Reads to the end of what `conn` gets within 10 s (a generous bound: the data is sent
    /// before the read starts, so only a lost wake-up makes it wait).
    fn read_some(conn: &mut TcpConnection, buf: &mut [u8]) -> usize {
        async_io::block_on(async {
            futures::select! {
                read = conn.read(buf).fuse() => read.unwrap(),
                _ = async_io::Timer::after(Duration::from_secs(10)).fuse() => {
                    panic!("the read was never woken")
                }
            }
        })
    }

    /// Waits (at most 10 s) until `n` bytes wait in the socket: loopback delivery may be
    /// deferred to a softirq thread on a loaded machine. `peek` does not count as a read.
    fn wait_until_arrived(conn: &TcpConnection, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut scratch = vec![0u8; n];
        while conn.socket().peek(&mut scratch).unwrap_or(0) < n {
            assert!(
                std::time::Instant::now() < deadline,
                "{n} bytes never arrived"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn an_empty_socket_is_asked_once_until_the_reactor_says_it_is_readable() {
        let (mut conn, mut peer) = pair();
        let mut buf = [0u8; 64];
        assert!(poll_once(&mut conn, &mut buf).is_pending());
        assert_eq!(conn.reads_tried, 1);
        // Polled again without news from the reactor (a muxer woken to write): no read.
        for _ in 0..5 {
            assert!(poll_once(&mut conn, &mut buf).is_pending());
        }
        assert_eq!(conn.reads_tried, 1);
        // Data that arrives afterwards wakes the reader and is read.
        peer.write_all(b"hello").unwrap();
        assert_eq!(read_some(&mut conn, &mut buf), 5);
        assert_eq!(&buf[..5], b"hello");
    }

    #[test]
    fn a_readable_socket_is_read_straight_away_until_it_is_empty() {
        let (mut conn, mut peer) = pair();
        peer.write_all(&[7u8; 100]).unwrap();
        wait_until_arrived(&conn, 100);
        let mut buf = [0u8; 40];
        // Nothing asked of the socket yet: it is tried first, whatever the reactor knows.
        let mut got = read_some(&mut conn, &mut buf);
        let tried = conn.reads_tried;
        // What is left is read without waiting on the reactor: one read each.
        while got < 100 {
            match poll_once(&mut conn, &mut buf) {
                Poll::Ready(Ok(n)) => got += n,
                other => panic!("expected data, got {other:?}"),
            }
        }
        assert_eq!(got, 100);
        assert_eq!(conn.reads_tried, tried + (100_usize.div_ceil(40) - 1));
        // Then the end of the stream, also after the socket was found empty.
        assert!(poll_once(&mut conn, &mut buf).is_pending());
        peer.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_some(&mut conn, &mut buf), 0);
    }
}
