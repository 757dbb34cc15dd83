//! hickory's runtime seam implemented on async-io (the engine under async-std and smol):
//! UDP and TCP sockets and timers from async-io, background tasks on lp2p's
//! [`RuntimeHandle`]. No tokio anywhere.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::{Async, Timer};
use futures::future::Either;
use futures::io::{AsyncRead, AsyncWrite};
use hickory_net::runtime::{DnsTcpStream, DnsUdpSocket, RuntimeProvider, Spawn, Time};
use lp2p_core::RuntimeHandle;

/// How long hickory may take to connect to a server over TCP when it gives no limit: 5 s,
/// hickory's own default.
pub const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A hickory [`RuntimeProvider`] on async-io, spawning on an lp2p [`RuntimeHandle`].
#[derive(Clone)]
pub struct AsyncIoProvider {
    handle: AsyncIoHandle,
}

impl AsyncIoProvider {
    /// A provider spawning hickory's background tasks on `runtime`.
    pub fn new(runtime: RuntimeHandle) -> AsyncIoProvider {
        AsyncIoProvider {
            handle: AsyncIoHandle { runtime },
        }
    }
}

impl std::fmt::Debug for AsyncIoProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncIoProvider").finish_non_exhaustive()
    }
}

/// Spawns hickory's background tasks (one per connection to a server) on lp2p's runtime.
#[derive(Clone)]
pub struct AsyncIoHandle {
    runtime: RuntimeHandle,
}

impl Spawn for AsyncIoHandle {
    fn spawn_bg(&mut self, future: impl Future<Output = ()> + Send + 'static) {
        self.runtime.spawn_detached(future);
    }
}

/// Timers from async-io.
///
/// hickory's `Time` trait has no receiver, so these timers cannot come from a
/// [`RuntimeHandle`]; async-io's timers are the ones both of lp2p's runtimes use.
#[derive(Clone, Copy, Debug)]
pub struct AsyncIoTime;

#[async_trait::async_trait]
impl Time for AsyncIoTime {
    async fn delay_for(duration: Duration) {
        Timer::after(duration).await;
    }

    async fn timeout<F: 'static + Future + Send>(
        duration: Duration,
        future: F,
    ) -> Result<F::Output, io::Error> {
        let timer = Timer::after(duration);
        match futures::future::select(pin!(future), timer).await {
            Either::Left((out, _)) => Ok(out),
            Either::Right(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
        }
    }
}

/// A UDP socket for hickory.
#[derive(Debug)]
pub struct AsyncIoUdp(Async<UdpSocket>);

impl DnsUdpSocket for AsyncIoUdp {
    type Time = AsyncIoTime;

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        loop {
            match self.0.get_ref().recv_from(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    futures::ready!(self.0.poll_readable(cx))?;
                }
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.0.get_ref().send_to(buf, target) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    futures::ready!(self.0.poll_writable(cx))?;
                }
                other => return Poll::Ready(other),
            }
        }
    }
}

/// A TCP stream for hickory.
#[derive(Debug)]
pub struct AsyncIoTcp(Async<TcpStream>);

impl DnsTcpStream for AsyncIoTcp {
    type Time = AsyncIoTime;
}

impl AsyncRead for AsyncIoTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for AsyncIoTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

impl RuntimeProvider for AsyncIoProvider {
    type Handle = AsyncIoHandle;
    type Timer = AsyncIoTime;
    type Udp = AsyncIoUdp;
    type Tcp = AsyncIoTcp;

    fn create_handle(&self) -> Self::Handle {
        self.handle.clone()
    }

    fn connect_tcp(
        &self,
        server_addr: SocketAddr,
        bind_addr: Option<SocketAddr>,
        timeout: Option<Duration>,
    ) -> Pin<Box<dyn Send + Future<Output = Result<Self::Tcp, io::Error>>>> {
        Box::pin(async move {
            if bind_addr.is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "binding DNS-over-TCP sockets to a local address is not supported",
                ));
            }
            let limit = timeout.unwrap_or(TCP_CONNECT_TIMEOUT);
            let stream =
                AsyncIoTime::timeout(limit, Async::<TcpStream>::connect(server_addr)).await??;
            stream.get_ref().set_nodelay(true)?;
            Ok(AsyncIoTcp(stream))
        })
    }

    fn bind_udp(
        &self,
        local_addr: SocketAddr,
        _server_addr: SocketAddr,
    ) -> Pin<Box<dyn Send + Future<Output = Result<Self::Udp, io::Error>>>> {
        Box::pin(async move { Ok(AsyncIoUdp(Async::<UdpSocket>::bind(local_addr)?)) })
    }
}
