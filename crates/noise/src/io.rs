//! The async shell of the transport: [`NoiseOutput`] moves bytes between the
//! [`FrameEncoder`]/[`FrameDecoder`] and the underlying connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::{Connection, Multiaddr};

use crate::codec::{FrameDecoder, FrameEncoder};
use crate::error::{NoiseError, Stage};

/// How many frames one `poll_read` decodes without handing out a byte (empty frames, which
/// a peer may send in a stream) before it yields to the executor: a peer streaming empty
/// frames must not keep a task busy forever. 64 is far above what any honest peer sends in a
/// row and still returns to the executor after a few microseconds of work.
pub const MAX_EMPTY_FRAMES_PER_READ: usize = 64;

/// An encrypted connection after the Noise handshake.
///
/// Reads decrypt frames, writes are staged into frames: small writes coalesce into one frame
/// until [`poll_flush`](AsyncWrite::poll_flush) (or until the frame is full), large writes
/// are split into full frames. `poll_close` flushes, then closes the inner write side.
pub struct NoiseOutput<T> {
    io: T,
    encoder: FrameEncoder,
    decoder: FrameDecoder,
    /// The inner connection reported EOF.
    read_eof: bool,
}

impl<T> std::fmt::Debug for NoiseOutput<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseOutput")
            .field("encoder", &self.encoder)
            .field("decoder", &self.decoder)
            .field("read_eof", &self.read_eof)
            .finish_non_exhaustive()
    }
}

impl<T> NoiseOutput<T> {
    /// Wraps `io` with the transport codec from a finished handshake.
    pub fn new(io: T, encoder: FrameEncoder, decoder: FrameDecoder) -> NoiseOutput<T> {
        NoiseOutput {
            io,
            encoder,
            decoder,
            read_eof: false,
        }
    }

    /// The underlying connection.
    pub fn get_ref(&self) -> &T {
        &self.io
    }
}

impl<T: AsyncWrite + Unpin> NoiseOutput<T> {
    /// Writes out the sealed frame, if any.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let out = self.encoder.pending_output();
            if out.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.encoder.advance(n);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for NoiseOutput<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut empty_frames = 0usize;
        loop {
            if empty_frames >= MAX_EMPTY_FRAMES_PER_READ {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let plain = this.decoder.plaintext();
            if !plain.is_empty() {
                let n = plain.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), plain.get(..n)) {
                    dst.copy_from_slice(src);
                }
                this.decoder.consume(n);
                return Poll::Ready(Ok(n));
            }
            match this.decoder.decode_into(buf).map_err(io::Error::from)? {
                Some(0) => {
                    // An empty frame: nothing to hand out, keep going.
                    empty_frames = empty_frames.saturating_add(1);
                    continue;
                }
                Some(n) => return Poll::Ready(Ok(n)),
                None => {}
            }
            if this.decoder.decode().map_err(io::Error::from)? {
                // Hands its plaintext out next time round, unless the frame was empty.
                empty_frames = empty_frames.saturating_add(1);
                continue;
            }
            if this.read_eof {
                if this.decoder.is_mid_frame() {
                    return Poll::Ready(Err(NoiseError::TruncatedFrame {
                        stage: Stage::Transport,
                    }
                    .into()));
                }
                return Poll::Ready(Ok(0));
            }
            let space = this.decoder.read_space();
            let n = ready!(Pin::new(&mut this.io).poll_read(cx, space))?;
            if n == 0 {
                this.read_eof = true;
            } else {
                this.decoder.filled(n);
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> NoiseOutput<T> {
    /// Stages as much of `buf` as it can, sending sealed frames on the way.
    fn poll_write_slice(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self;
        let mut taken = 0;
        loop {
            match this.poll_send(cx) {
                Poll::Ready(Ok(())) => {}
                // Report what was taken; an error comes back on the next call.
                _ if taken > 0 => return Poll::Ready(Ok(taken)),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            let rest = buf.get(taken..).unwrap_or_default();
            if rest.is_empty() {
                return Poll::Ready(Ok(taken));
            }
            let n = this.encoder.stage(rest).map_err(io::Error::from)?;
            taken = taken.saturating_add(n);
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for NoiseOutput<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_slice(cx, buf)
    }

    /// Stages the slices one after another into the same frame (a muxer's header and body
    /// travel together), stopping at the first one not taken whole.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut total: usize = 0;
        for buf in bufs.iter().filter(|b| !b.is_empty()) {
            match this.poll_write_slice(cx, buf) {
                Poll::Ready(Ok(n)) => {
                    total = total.saturating_add(n);
                    if n < buf.len() {
                        break;
                    }
                }
                _ if total > 0 => break,
                other => return other,
            }
        }
        Poll::Ready(Ok(total))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        this.encoder.seal().map_err(io::Error::from)?;
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().io).poll_close(cx)
    }
}

impl<T: Connection> Connection for NoiseOutput<T> {
    fn local_addr(&self) -> Multiaddr {
        self.io.local_addr()
    }
    fn remote_addr(&self) -> Multiaddr {
        self.io.remote_addr()
    }
}
