use async_trait::async_trait;
use futures::io::{AsyncRead, AsyncWrite};
use multiaddr::Multiaddr;

use libp2p_identity::PeerId;

use crate::{Error, Role};

/// How to dial one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialOpts {
    /// The peer we mean to reach: a remote that proves another identity fails the dial with
    /// [`Error::PeerIdMismatch`]. `None` accepts whoever answers.
    pub expected_peer: Option<PeerId>,
    /// Dial from the port we listen on (TCP with `SO_REUSEPORT`, QUIC from the listening
    /// socket), so the remote and NATs on the way see our listen address (hole punching).
    pub port_reuse: bool,
    /// The role we take in the upgrade. [`Role::Initiator`] for an ordinary dial; in a TCP
    /// simultaneous open (hole punching) both sides dial and one of them takes
    /// [`Role::Responder`] so the security handshake has one initiator.
    pub role: Role,
}

impl Default for DialOpts {
    fn default() -> Self {
        DialOpts {
            expected_peer: None,
            port_reuse: false,
            role: Role::Initiator,
        }
    }
}

impl DialOpts {
    /// An ordinary dial to `peer` (or to whoever answers, with `None`).
    pub fn to_peer(peer: Option<PeerId>) -> DialOpts {
        DialOpts {
            expected_peer: peer,
            ..DialOpts::default()
        }
    }
}

/// A byte-stream transport: dials and listens on the addresses it supports and hands out
/// raw, unauthenticated byte streams.
///
/// Implementations: `lp2p-tcp` (`/ip4|ip6/.../tcp/...`) and `lp2p-memory` (`/memory/N`).
/// A raw transport becomes a [`Transport`](crate::Transport) (one that hands the swarm
/// established, authenticated, multiplexed connections) through `lp2p_swarm::Upgraded`,
/// which runs security and muxer negotiation on every connection; `HostBuilder::transport`
/// does that wrapping for you.
#[async_trait]
pub trait RawTransport: Send + Sync + 'static {
    /// A short name for logs and errors, e.g. `"tcp"`.
    fn name(&self) -> &'static str;

    /// Whether [`dial`](RawTransport::dial) can handle this address. Must be cheap and must
    /// not do I/O. A trailing `/p2p/<peer id>` is part of a dialable address.
    fn can_dial(&self, addr: &Multiaddr) -> bool;

    /// Whether [`listen`](RawTransport::listen) can handle this address; by default the same
    /// as [`can_dial`](RawTransport::can_dial).
    fn can_listen(&self, addr: &Multiaddr) -> bool {
        self.can_dial(addr)
    }

    /// Whether each connection holds a file descriptor of its own (a TCP socket: the
    /// default), so the resource manager counts it against the descriptor limit.
    fn uses_fd_per_connection(&self) -> bool {
        true
    }

    /// Opens a raw connection to `addr`.
    ///
    /// `opts.port_reuse` asks to dial from the port we listen on (for hole punching); a
    /// transport that cannot do that dials from an ephemeral port. `opts.role` and
    /// `opts.expected_peer` are for the upgrade above and are ignored here.
    ///
    /// Fails with [`Error::UnsupportedAddress`] when `can_dial(addr)` is false and with
    /// [`Error::Dial`] when the remote cannot be reached.
    async fn dial(&self, addr: &Multiaddr, opts: &DialOpts) -> Result<Box<dyn Connection>, Error>;

    /// Starts listening on `addr`. A port of 0 asks for a free one; the listener's
    /// [`local_addr`](RawListener::local_addr) reports what was bound.
    async fn listen(&self, addr: &Multiaddr) -> Result<Box<dyn RawListener>, Error>;
}

/// A bound listener of a [`RawTransport`] that yields inbound raw connections.
#[async_trait]
pub trait RawListener: Send + 'static {
    /// Waits for the next inbound connection.
    ///
    /// Transient failures (a connection reset before it was accepted, running out of file
    /// descriptors) are logged and retried inside; an error returned here means the listener
    /// is finished.
    async fn accept(&mut self) -> Result<Box<dyn Connection>, Error>;

    /// The address actually bound (with the real port when port 0 was asked for).
    fn local_addr(&self) -> Multiaddr;
}

/// A raw, reliable, ordered byte stream between two endpoints, with its addresses.
///
/// `poll_close` closes the write side (the remote reads EOF); dropping it closes both.
pub trait Connection: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// Our address on this connection.
    fn local_addr(&self) -> Multiaddr;
    /// The remote's address on this connection.
    fn remote_addr(&self) -> Multiaddr;
}

impl Connection for Box<dyn Connection> {
    fn local_addr(&self) -> Multiaddr {
        (**self).local_addr()
    }
    fn remote_addr(&self) -> Multiaddr {
        (**self).remote_addr()
    }
}

/// Forwards `AsyncRead` and `AsyncWrite` of a wrapper type to a field.
macro_rules! forward_io {
    ($ty:ty, $field:ident) => {
        impl ::futures::io::AsyncRead for $ty {
            fn poll_read(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &mut [u8],
            ) -> ::std::task::Poll<std::io::Result<usize>> {
                ::std::pin::Pin::new(&mut self.$field).poll_read(cx, buf)
            }
            fn poll_read_vectored(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> ::std::task::Poll<std::io::Result<usize>> {
                ::std::pin::Pin::new(&mut self.$field).poll_read_vectored(cx, bufs)
            }
        }
        impl ::futures::io::AsyncWrite for $ty {
            fn poll_write(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &[u8],
            ) -> ::std::task::Poll<std::io::Result<usize>> {
                ::std::pin::Pin::new(&mut self.$field).poll_write(cx, buf)
            }
            fn poll_write_vectored(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> ::std::task::Poll<std::io::Result<usize>> {
                ::std::pin::Pin::new(&mut self.$field).poll_write_vectored(cx, bufs)
            }
            fn poll_flush(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<std::io::Result<()>> {
                ::std::pin::Pin::new(&mut self.$field).poll_flush(cx)
            }
            fn poll_close(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<std::io::Result<()>> {
                ::std::pin::Pin::new(&mut self.$field).poll_close(cx)
            }
        }
    };
}
pub(crate) use forward_io;
