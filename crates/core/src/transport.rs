use async_trait::async_trait;
use futures::io::{AsyncRead, AsyncWrite};
use multiaddr::Multiaddr;

use crate::Error;

/// A way to reach peers: dials and listens on the addresses it supports.
///
/// Implementations: `lp2p-tcp` (`/ip4|ip6/.../tcp/...`) and `lp2p-memory` (`/memory/N`).
/// A host holds several transports and gives each address to the first one whose
/// [`can_dial`](Transport::can_dial) accepts it.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// A short name for logs and errors, e.g. `"tcp"`.
    fn name(&self) -> &'static str;

    /// Whether [`dial`](Transport::dial) can handle this address. Must be cheap and must not
    /// do I/O. A trailing `/p2p/<peer id>` is part of a dialable address.
    fn can_dial(&self, addr: &Multiaddr) -> bool;

    /// Whether [`listen`](Transport::listen) can handle this address; by default the same as
    /// [`can_dial`](Transport::can_dial).
    fn can_listen(&self, addr: &Multiaddr) -> bool {
        self.can_dial(addr)
    }

    /// Opens a raw connection to `addr`.
    ///
    /// Fails with [`Error::UnsupportedAddress`] when `can_dial(addr)` is false and with
    /// [`Error::Dial`] when the remote cannot be reached.
    async fn dial(&self, addr: &Multiaddr) -> Result<Box<dyn Connection>, Error>;

    /// Starts listening on `addr`. A port of 0 asks for a free one; the listener's
    /// [`local_addr`](Listener::local_addr) reports what was bound.
    async fn listen(&self, addr: &Multiaddr) -> Result<Box<dyn Listener>, Error>;
}

/// A bound listener that yields inbound raw connections.
#[async_trait]
pub trait Listener: Send + 'static {
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
