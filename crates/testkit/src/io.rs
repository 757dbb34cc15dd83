//! Byte-level fixtures: in-memory pipes, scripted peers that send and expect exact bytes,
//! scripted streams that cut their input into chosen pieces, and a write recorder.

use std::fmt::Write as _;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use lp2p_core::Multiaddr;
use lp2p_memory::MemoryConnection;

/// Bytes buffered per direction by [`pipe`]: 64 KiB, like a loopback socket buffer, enough
/// for any handshake message in one write while a stalled reader still stalls its writer.
pub const PIPE_CAPACITY: usize = 64 * 1024;

/// Two connected in-memory ends (`/memory/1` and `/memory/2`) with [`PIPE_CAPACITY`] bytes of
/// buffering each way; dropping one makes the other read EOF.
pub fn pipe() -> (MemoryConnection, MemoryConnection) {
    pipe_with_capacity(PIPE_CAPACITY)
}

/// [`pipe`] with `capacity` bytes of buffering each way.
pub fn pipe_with_capacity(capacity: usize) -> (MemoryConnection, MemoryConnection) {
    let a = Multiaddr::empty().with(lp2p_core::Protocol::Memory(1));
    let b = Multiaddr::empty().with(lp2p_core::Protocol::Memory(2));
    MemoryConnection::pair(capacity, a, b)
}

/// A pipe whose second end is scripted: the first end goes to the code under test, the
/// test plays the remote with exact bytes (h2's test style).
pub fn scripted_pipe() -> (MemoryConnection, ScriptedPeer<MemoryConnection>) {
    let (ours, theirs) = pipe();
    (ours, ScriptedPeer::new(theirs))
}

/// The remote side of a byte stream, played by the test: send exact bytes, expect exact
/// bytes back.
///
/// `send` and `recv*` return I/O errors (a reset may be what the test expects); `expect*`
/// are assertions and panic with both byte strings shown when they fail.
#[derive(Debug)]
pub struct ScriptedPeer<S> {
    io: S,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ScriptedPeer<S> {
    /// Plays the remote over `io`.
    pub fn new(io: S) -> ScriptedPeer<S> {
        ScriptedPeer { io }
    }

    /// Writes `bytes` and flushes.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    /// Reads exactly `len` bytes.
    pub async fn recv(&mut self, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.io.read_exact(&mut buf).await?;
        Ok(buf)
    }

    /// Reads until EOF.
    pub async fn recv_to_end(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.io.read_to_end(&mut buf).await?;
        Ok(buf)
    }

    /// Reads `expected.len()` bytes and asserts they are `expected`.
    ///
    /// # Panics
    ///
    /// When the bytes differ or the stream fails or ends first.
    pub async fn expect(&mut self, expected: &[u8]) {
        match self.recv(expected.len()).await {
            Ok(got) if got == expected => {}
            Ok(got) => panic!(
                "scripted peer expected {}\n                 but got {}",
                hex(expected),
                hex(&got)
            ),
            Err(err) => panic!(
                "scripted peer expected {} but reading failed: {err}",
                hex(expected)
            ),
        }
    }

    /// Asserts the remote closed its writing side: the next read is EOF.
    ///
    /// # Panics
    ///
    /// When bytes arrive instead, or the read fails.
    pub async fn expect_eof(&mut self) {
        let mut byte = [0u8; 1];
        match self.io.read(&mut byte).await {
            Ok(0) => {}
            Ok(_) => panic!("scripted peer expected EOF but got {}", hex(&byte)),
            Err(err) => panic!("scripted peer expected EOF but reading failed: {err}"),
        }
    }

    /// Half-closes the writing side (the code under test reads EOF).
    pub async fn close(&mut self) -> io::Result<()> {
        self.io.close().await
    }

    /// The underlying stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// Gives the stream back.
    pub fn into_inner(self) -> S {
        self.io
    }
}

/// Bytes as hex, for assertion messages.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().saturating_mul(2).saturating_add(2));
    out.push('[');
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out.push(']');
    out
}

/// A stream with a scripted remote that never blocks: reads hand out `input` in pieces of
/// the given sizes (cycling through them; a size of 0 counts as 1), then EOF; writes are
/// collected (see [`written`](ScriptedStream::written)). For feeding a parser its input
/// split at every possible place.
#[derive(Debug, Clone)]
pub struct ScriptedStream {
    input: Vec<u8>,
    pos: usize,
    pieces: Vec<usize>,
    next_piece: usize,
    written: Vec<u8>,
}

impl ScriptedStream {
    /// Reads give `input` cut into `pieces` (an empty list means one piece per read of
    /// whatever the reader asks).
    pub fn new(input: Vec<u8>, pieces: Vec<usize>) -> ScriptedStream {
        ScriptedStream {
            input,
            pos: 0,
            pieces,
            next_piece: 0,
            written: Vec::new(),
        }
    }

    /// Everything written to the stream so far.
    pub fn written(&self) -> &[u8] {
        &self.written
    }

    fn next_piece(&mut self) -> usize {
        if self.pieces.is_empty() {
            return usize::MAX;
        }
        let piece = self
            .pieces
            .get(self.next_piece % self.pieces.len())
            .copied()
            .unwrap_or(1);
        self.next_piece = self.next_piece.wrapping_add(1);
        piece.max(1)
    }
}

impl AsyncRead for ScriptedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let piece = self.next_piece();
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let n = piece.min(buf.len()).min(rest.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos = self.pos.saturating_add(n);
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for ScriptedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.written.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The writes a [`Recorder`] saw, one entry per successful `poll_write` call.
pub type Writes = Arc<Mutex<Vec<Vec<u8>>>>;

/// A stream wrapper that records the bytes of every write call (to check how writes were
/// coalesced, e.g. multistream-select's lazy negotiation).
#[derive(Debug)]
pub struct Recorder<S> {
    inner: S,
    writes: Writes,
}

impl<S> Recorder<S> {
    /// Wraps `inner`; the returned list fills as writes succeed.
    pub fn new(inner: S) -> (Recorder<S>, Writes) {
        let writes = Writes::default();
        (
            Recorder {
                inner,
                writes: writes.clone(),
            },
            writes,
        )
    }

    /// A copy of the writes so far.
    pub fn snapshot(writes: &Writes) -> Vec<Vec<u8>> {
        writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Recorder<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recorder<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            self.writes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(buf.get(..n).unwrap_or(buf).to_vec());
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl<S: lp2p_core::Connection> lp2p_core::Connection for Recorder<S> {
    fn local_addr(&self) -> Multiaddr {
        self.inner.local_addr()
    }

    fn remote_addr(&self) -> Multiaddr {
        self.inner.remote_addr()
    }
}
