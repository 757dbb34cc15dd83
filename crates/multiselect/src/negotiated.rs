//! The stream a negotiation hands back.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite, IoSlice, IoSliceMut};
use lp2p_core::{Connection, Multiaddr, Stream};

use crate::buffer::{ReadBuffer, SendBuffer};
use crate::engine::poll_negotiate;
use crate::{Dialer, MultiselectError};

/// What the read side does next.
enum ReadState {
    /// A lazy dialer's negotiation is still open: the remote's header and echo must be read
    /// and checked before any application byte is returned.
    Expecting(Box<Expecting>),
    /// Negotiation done; these bytes arrived behind the last negotiation message and are the
    /// start of the application data.
    Buffered(ReadBuffer),
    /// Every read goes straight to the inner stream.
    Passthrough,
    /// The lazy negotiation failed; every read and write fails the same way.
    Failed {
        kind: io::ErrorKind,
        message: String,
    },
}

/// A lazy dialer's open negotiation.
struct Expecting {
    dialer: Dialer,
    recv: ReadBuffer,
}

/// A stream on which a protocol was negotiated.
///
/// It reads first the bytes that arrived behind the negotiation (a lazy dialer's data right
/// behind its proposal, say) and then straight from the inner stream, without copies. For a
/// lazy dialer ([`Version::V1Lazy`](crate::Version::V1Lazy)) it also sends the header and
/// proposal with the first write, and checks the listener's answer on the first read: a
/// refusal fails that read (and every later one) with an [`io::Error`] wrapping
/// [`MultiselectError::NoCommonProtocol`]. From
/// [`listener_select_deferred`](crate::listener_select_deferred) it sends the listener's
/// final answer with the first write (or before a read that has to wait for the dialer).
///
/// It is a [`Connection`] when the inner stream is one and a [`Stream`] (with
/// [`reset`](Stream::reset) forwarded) when the inner stream is one.
pub struct Negotiated<S> {
    io: S,
    read: ReadState,
    send: SendBuffer,
    /// Whether the next write may be coalesced behind pending negotiation bytes.
    coalesce: bool,
    /// How many bytes of that write may be.
    max_coalesced_len: usize,
    /// Our write side is closed (`poll_close` got that far).
    write_closed: bool,
}

impl<S> Negotiated<S> {
    /// A completed negotiation; `leftover` holds bytes read past it.
    pub(crate) fn completed(io: S, leftover: ReadBuffer) -> Negotiated<S> {
        Negotiated {
            io,
            read: if leftover.is_empty() {
                ReadState::Passthrough
            } else {
                ReadState::Buffered(leftover)
            },
            send: SendBuffer::default(),
            coalesce: false,
            max_coalesced_len: 0,
            write_closed: false,
        }
    }

    /// A listener's stream whose final answer (in `send`) is held back: it leaves with the
    /// first write, or before the first read that has to wait for the dialer, or on a flush
    /// or close.
    pub(crate) fn answer_held(
        io: S,
        leftover: ReadBuffer,
        send: SendBuffer,
        max_coalesced_len: usize,
    ) -> Negotiated<S> {
        Negotiated {
            coalesce: send.is_pending(),
            max_coalesced_len,
            send,
            ..Negotiated::completed(io, leftover)
        }
    }

    /// A lazy dialer's stream: `send` holds the header and proposal, not yet written.
    pub(crate) fn expecting(io: S, dialer: Dialer, send: SendBuffer) -> Negotiated<S> {
        let recv = ReadBuffer::new(
            dialer
                .max_message_len()
                .saturating_add(lp2p_core::varint::MAX_LEN),
        );
        Negotiated {
            io,
            max_coalesced_len: dialer.config().max_coalesced_len,
            read: ReadState::Expecting(Box::new(Expecting { dialer, recv })),
            send,
            coalesce: true,
            write_closed: false,
        }
    }

    /// Whether the remote's acceptance has been seen. Always true on a listener and a
    /// [`Version::V1`](crate::Version::V1) dialer; a lazy dialer learns it on its first read.
    pub fn is_confirmed(&self) -> bool {
        matches!(self.read, ReadState::Buffered(_) | ReadState::Passthrough)
    }

    /// The inner stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The inner stream, mutably. Reading from or writing to it directly skips buffered
    /// bytes and, for a lazy dialer, the pending negotiation.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Negotiated<S> {
    /// Ends a failed lazy negotiation: every later read and write fails like this one.
    fn fail(&mut self, err: MultiselectError) -> io::Error {
        let err = io::Error::from(err);
        self.read = ReadState::Failed {
            kind: err.kind(),
            message: err.to_string(),
        };
        self.send.clear();
        err
    }

    /// Writes pending negotiation bytes before application data; fails after a failed lazy
    /// negotiation.
    fn poll_pending_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let ReadState::Failed { kind, message } = &self.read {
            return Poll::Ready(Err(io::Error::new(*kind, message.clone())));
        }
        if self.send.is_pending() {
            self.coalesce = false;
            return self.send.poll_drain(&mut self.io, cx);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Negotiated<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            match &mut this.read {
                ReadState::Passthrough => {
                    if this.send.is_pending() {
                        // A listener's held-back answer: it must be out before we wait for
                        // the dialer (a dialer that is not lazy waits for it).
                        this.coalesce = false;
                        std::task::ready!(this.send.poll_send(&mut this.io, cx))?;
                    }
                    return Pin::new(&mut this.io).poll_read(cx, buf);
                }
                ReadState::Buffered(leftover) => {
                    let n = leftover.copy_to(buf);
                    if leftover.is_empty() {
                        this.read = ReadState::Passthrough;
                    }
                    return Poll::Ready(Ok(n));
                }
                ReadState::Failed { kind, message } => {
                    return Poll::Ready(Err(io::Error::new(*kind, message.clone())));
                }
                ReadState::Expecting(expecting) => {
                    this.coalesce = false;
                    let Expecting { dialer, recv } = &mut **expecting;
                    match poll_negotiate(&mut this.io, dialer, recv, &mut this.send, false, cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(_protocol)) => {
                            let recv = std::mem::replace(recv, ReadBuffer::new(0));
                            this.read = if recv.is_empty() {
                                ReadState::Passthrough
                            } else {
                                ReadState::Buffered(recv)
                            };
                        }
                        Poll::Ready(Err(err)) => {
                            tracing::debug!(error = %err, "multistream-select: lazy negotiation failed");
                            return Poll::Ready(Err(this.fail(err)));
                        }
                    }
                }
            }
        }
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if matches!(this.read, ReadState::Passthrough) && !this.send.is_pending() {
            return Pin::new(&mut this.io).poll_read_vectored(cx, bufs);
        }
        let buf = bufs
            .iter_mut()
            .find(|b| !b.is_empty())
            .map_or(&mut [][..], |b| &mut **b);
        Pin::new(this).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Negotiated<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.coalesce && this.send.is_pending() {
            // A lazy dialer's first write (or the first write behind a listener's held-back
            // answer): copy it behind the negotiation bytes so that they leave together. The bytes are ours now; push them out as far as the
            // stream takes them, and report them written either way.
            this.coalesce = false;
            let n = buf.len().min(this.max_coalesced_len);
            this.send
                .buf_mut()
                .extend_from_slice(buf.get(..n).unwrap_or_default());
            if let Poll::Ready(Err(err)) = this.send.poll_drain(&mut this.io, cx) {
                return Poll::Ready(Err(err));
            }
            return Poll::Ready(Ok(n));
        }
        std::task::ready!(this.poll_pending_send(cx))?;
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.coalesce && this.send.is_pending() {
            let buf = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &**b);
            return Pin::new(this).poll_write(cx, buf);
        }
        std::task::ready!(this.poll_pending_send(cx))?;
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_pending_send(cx))?;
        std::task::ready!(Pin::new(&mut this.io).poll_flush(cx))?;
        this.send.flushed();
        Poll::Ready(Ok(()))
    }

    /// Half-closes. A lazy dialer whose negotiation is still open then reads the listener's
    /// answer before it reports the close done (as go-multistream does): the answer is on
    /// its way, and a stream dropped before it arrives would be reset by the muxer when it
    /// does, which can cost the listener data it has not read yet (a push, a request). The
    /// write side closes first, so the remote sees the end of our data without delay; bytes
    /// that follow the answer stay buffered for later reads. A refusal fails the close.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.write_closed {
            if !matches!(this.read, ReadState::Failed { .. }) {
                std::task::ready!(this.poll_pending_send(cx))?;
            }
            std::task::ready!(Pin::new(&mut this.io).poll_close(cx))?;
            this.write_closed = true;
            // Nothing may be written or flushed after the close.
            this.send.clear();
        }
        let ReadState::Expecting(expecting) = &mut this.read else {
            return Poll::Ready(Ok(()));
        };
        let Expecting { dialer, recv } = &mut **expecting;
        match std::task::ready!(poll_negotiate(
            &mut this.io,
            dialer,
            recv,
            &mut this.send,
            false,
            cx
        )) {
            Ok(_protocol) => {
                let recv = std::mem::replace(recv, ReadBuffer::new(0));
                this.read = if recv.is_empty() {
                    ReadState::Passthrough
                } else {
                    ReadState::Buffered(recv)
                };
                Poll::Ready(Ok(()))
            }
            Err(err) => {
                tracing::debug!(error = %err, "multistream-select: lazy negotiation failed");
                Poll::Ready(Err(this.fail(err)))
            }
        }
    }
}

impl<S: Connection> Connection for Negotiated<S> {
    fn local_addr(&self) -> Multiaddr {
        self.io.local_addr()
    }
    fn remote_addr(&self) -> Multiaddr {
        self.io.remote_addr()
    }
}

impl<S: Stream> Stream for Negotiated<S> {
    fn reset(&mut self) {
        self.send.clear();
        if !matches!(self.read, ReadState::Failed { .. }) {
            self.read = ReadState::Passthrough;
        }
        self.io.reset();
    }
}

impl<S: fmt::Debug> fmt::Debug for Negotiated<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.read {
            ReadState::Expecting(_) => "expecting the listener's answer",
            ReadState::Buffered(_) => "buffered",
            ReadState::Passthrough => "passthrough",
            ReadState::Failed { .. } => "failed",
        };
        f.debug_struct("Negotiated")
            .field("io", &self.io)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
