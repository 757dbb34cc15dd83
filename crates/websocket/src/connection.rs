//! The async shell of one connection: moves bytes between a socket (TCP, or TLS over TCP)
//! and a [`Session`], and presents the payload of the binary messages as a byte stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::{Connection, Multiaddr};

use crate::WsError;
use crate::config::WsConfig;
use crate::session::{NORMAL_CLOSE, Session, Side};

/// A WebSocket connection as a byte stream: what is written goes out in binary frames, what
/// is read is the payload of the remote's binary messages.
///
/// `poll_close` sends a close frame (normal closure) and closes the socket's write side;
/// reading goes on until the remote's close frame or the end of the socket. A frame that
/// breaks the protocol or the limits fails the read with an `InvalidData` error whose
/// source is the [`WsError`], after a close frame with the matching status code was sent.
pub struct WsConnection<S> {
    io: S,
    session: Session,
    rx: Box<[u8]>,
    rx_start: usize,
    rx_end: usize,
    tx: Vec<u8>,
    tx_pos: usize,
    write_buffer: usize,
    local: Multiaddr,
    remote: Multiaddr,
    /// The socket reached its end.
    eof: bool,
    /// Our close frame went out and the socket's write side was closed.
    shut_down: bool,
}

impl<S> std::fmt::Debug for WsConnection<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsConnection")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("side", &self.session.side())
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsConnection<S> {
    /// Wraps `io`, whose handshake is done; `leftover` holds bytes read past the handshake
    /// (the remote's first frames).
    pub(crate) fn new(
        io: S,
        side: Side,
        config: &WsConfig,
        leftover: &[u8],
        local: Multiaddr,
        remote: Multiaddr,
    ) -> WsConnection<S> {
        let mut rx = vec![0u8; config.read_buffer.max(leftover.len()).max(64)].into_boxed_slice();
        if let Some(dst) = rx.get_mut(..leftover.len()) {
            dst.copy_from_slice(leftover);
        }
        WsConnection {
            io,
            session: Session::new(side, config.limits),
            rx,
            rx_start: 0,
            rx_end: leftover.len(),
            tx: Vec::new(),
            tx_pos: 0,
            write_buffer: config.write_buffer.max(1),
            local,
            remote,
            eof: false,
            shut_down: false,
        }
    }

    fn pending_tx(&self) -> usize {
        self.tx.len() - self.tx_pos
    }

    /// Writes buffered frames to the socket until done or the socket is full.
    fn poll_flush_tx(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.tx_pos < self.tx.len() {
            let chunk = self.tx.get(self.tx_pos..).unwrap_or_default();
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, chunk))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.tx_pos += n;
        }
        self.tx.clear();
        self.tx_pos = 0;
        Poll::Ready(Ok(()))
    }

    /// Queues control frames (pongs, close answers) and pushes them out if the socket
    /// takes them now; they stay buffered otherwise and go with the next write or read.
    fn send_control(&mut self, cx: &mut Context<'_>) {
        if self.session.poll_transmit(&mut self.tx)
            && let Poll::Ready(Err(err)) = self.poll_flush_tx(cx)
        {
            tracing::debug!(remote = %self.remote, %err, "sending a WebSocket control frame failed");
        }
        if self.pending_tx() > 0 {
            // Best effort: a socket that is full now wakes a later write or read.
            let _ = Pin::new(&mut self.io).poll_flush(cx);
        }
    }

    /// A protocol error from the session: its close frame is sent (best effort) and the
    /// read fails with the error.
    fn fail(&mut self, cx: &mut Context<'_>, err: WsError) -> io::Error {
        tracing::debug!(remote = %self.remote, %err, "closing the WebSocket connection");
        self.send_control(cx);
        err.into()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsConnection<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            if this.session.remote_close().is_some() {
                this.send_control(cx);
                return Poll::Ready(Ok(0));
            }
            // Frames already read.
            if this.rx_start < this.rx_end {
                let input = this.rx.get(this.rx_start..this.rx_end).unwrap_or_default();
                let decoded = match this.session.decode(input, buf) {
                    Ok(d) => d,
                    Err(err) => return Poll::Ready(Err(this.fail(cx, err))),
                };
                this.rx_start += decoded.consumed;
                if this.rx_start == this.rx_end {
                    this.rx_start = 0;
                    this.rx_end = 0;
                }
                this.send_control(cx);
                if decoded.produced > 0 {
                    return Poll::Ready(Ok(decoded.produced));
                }
                continue;
            }
            if this.eof {
                return Poll::Ready(if this.session.at_frame_boundary() {
                    Ok(0)
                } else {
                    Err(WsError::TruncatedFrame.into())
                });
            }
            // Inside a data frame with nothing buffered: read its payload straight into
            // the caller's buffer (no copy), then unmask it there.
            if let Some(remaining) = this.session.data_remaining() {
                let want = buf
                    .len()
                    .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                let Some(direct) = buf.get_mut(..want) else {
                    return Poll::Ready(Ok(0));
                };
                let n = ready!(Pin::new(&mut this.io).poll_read(cx, direct))?;
                if n == 0 {
                    this.eof = true;
                    continue;
                }
                let read = direct.get_mut(..n).unwrap_or_default();
                return Poll::Ready(Ok(this.session.unmask_in_place(read)));
            }
            let n = ready!(Pin::new(&mut this.io).poll_read(cx, &mut this.rx))?;
            if n == 0 {
                this.eof = true;
            } else {
                this.rx_start = 0;
                this.rx_end = n;
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsConnection<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.shut_down || this.session.close_sent() {
            return Poll::Ready(Err(WsError::Closed.into()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Past the buffer limit, wait for the socket; below it, coalesce.
        if this.pending_tx() >= this.write_buffer {
            ready!(this.poll_flush_tx(cx))?;
        }
        this.session.poll_transmit(&mut this.tx);
        let n = this.session.encode_data(buf, &mut this.tx)?;
        // Start sending now; what the socket does not take yet stays buffered.
        if let Poll::Ready(Err(err)) = this.poll_flush_tx(cx) {
            return Poll::Ready(Err(err));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.session.poll_transmit(&mut this.tx);
        ready!(this.poll_flush_tx(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shut_down {
            this.session.close(NORMAL_CLOSE);
            this.session.poll_transmit(&mut this.tx);
            ready!(this.poll_flush_tx(cx))?;
            ready!(Pin::new(&mut this.io).poll_close(cx))?;
            this.shut_down = true;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Connection for WsConnection<S> {
    fn local_addr(&self) -> Multiaddr {
        self.local.clone()
    }

    fn remote_addr(&self) -> Multiaddr {
        self.remote.clone()
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::frame::{Header, MAX_HEADER_LEN, OpCode, apply_mask};
    use futures::{AsyncReadExt, AsyncWriteExt};

    /// An in-memory socket: reads come from `input` in chunks of `chunk`, writes go to
    /// `output`.
    struct Mock {
        input: Vec<u8>,
        at: usize,
        chunk: usize,
        output: Vec<u8>,
        closed: bool,
    }

    impl AsyncRead for Mock {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.chunk).min(self.input.len() - self.at);
            buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
            self.at += n;
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for Mock {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.output.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.closed = true;
            Poll::Ready(Ok(()))
        }
    }

    fn masked(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let key = [1, 2, 3, 4];
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = Header {
            fin: true,
            opcode,
            mask: Some(key),
            len: payload.len() as u64,
        }
        .emit(&mut head);
        let mut out = head[..n].to_vec();
        let mut body = payload.to_vec();
        apply_mask(key, 0, &mut body);
        out.extend(body);
        out
    }

    fn server(input: Vec<u8>, chunk: usize) -> WsConnection<Mock> {
        let ma: Multiaddr = "/ip4/127.0.0.1/tcp/1/ws".parse().unwrap();
        WsConnection::new(
            Mock {
                input,
                at: 0,
                chunk,
                output: Vec::new(),
                closed: false,
            },
            Side::Server,
            &WsConfig::default(),
            &[],
            ma.clone(),
            ma,
        )
    }

    #[test]
    fn reads_payload_across_frames_and_chunk_sizes() {
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
        let mut wire = Vec::new();
        for part in payload.chunks(65_537) {
            wire.extend(masked(OpCode::Binary, part));
            wire.extend(masked(OpCode::Ping, b"hi"));
        }
        wire.extend(masked(OpCode::Close, &1000u16.to_be_bytes()));
        for chunk in [1, 5, 4096, 1 << 20] {
            let mut conn = server(wire.clone(), chunk);
            let mut got = Vec::new();
            futures::executor::block_on(conn.read_to_end(&mut got)).unwrap();
            assert_eq!(got.len(), payload.len());
            assert!(got == payload, "chunk {chunk}");
            // Pongs and the close answer went out.
            let out = &conn.io.output;
            assert!(out.windows(4).any(|w| w == [0x8A, 0x02, b'h', b'i']));
            assert!(out.ends_with(&[0x88, 0x02, 0x03, 0xE8]));
        }
    }

    #[test]
    fn text_frame_fails_the_read_and_sends_1003() {
        let mut conn = server(masked(OpCode::Text, b"hello"), 1024);
        let mut buf = [0u8; 16];
        let err = futures::executor::block_on(conn.read(&mut buf)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let ws = err.get_ref().and_then(|e| e.downcast_ref::<WsError>());
        assert!(matches!(ws, Some(WsError::TextFrame)), "{err}");
        assert_eq!(conn.io.output, [0x88, 0x02, 0x03, 0xEB]);
    }

    #[test]
    fn truncated_frame_is_an_error_and_clean_end_is_eof() {
        let mut wire = masked(OpCode::Binary, b"abcdef");
        wire.truncate(wire.len() - 2);
        let mut conn = server(wire, 1024);
        let mut got = Vec::new();
        let err = futures::executor::block_on(conn.read_to_end(&mut got)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

        let mut conn = server(masked(OpCode::Binary, b"abc"), 1024);
        let mut got = Vec::new();
        futures::executor::block_on(conn.read_to_end(&mut got)).unwrap();
        assert_eq!(got, b"abc");
    }

    #[test]
    fn writes_frame_and_close_sends_a_close_frame() {
        let mut conn = server(Vec::new(), 1);
        futures::executor::block_on(async {
            conn.write_all(b"xyz").await.unwrap();
            conn.close().await.unwrap();
        });
        assert_eq!(
            conn.io.output,
            [0x82, 0x03, b'x', b'y', b'z', 0x88, 0x02, 0x03, 0xE8]
        );
        assert!(conn.io.closed);
        let err = futures::executor::block_on(conn.write(b"more")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
