//! The UDP socket of an endpoint: async-io for readiness (so it serves async-std and smol),
//! quinn-udp for the system calls (GSO and GRO batches, ECN, the destination address of
//! each datagram, no IP fragmentation).

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_io::Async;
use quinn_udp::{RecvMeta, Transmit, UdpSocketState};

/// One bound UDP socket, shared by the endpoint driver (receiving) and the connection
/// drivers (sending).
#[derive(Debug)]
pub(crate) struct UdpSocket {
    io: Arc<Async<std::net::UdpSocket>>,
    state: UdpSocketState,
    local: SocketAddr,
}

impl UdpSocket {
    /// Binds `addr`, asking the kernel for `buffer` bytes of send and receive buffer (best
    /// effort). An IPv6 socket is IPv6-only: each address family has its own endpoint.
    pub(crate) fn bind(addr: SocketAddr, buffer: usize) -> io::Result<UdpSocket> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        if let Err(err) = socket.set_recv_buffer_size(buffer) {
            tracing::debug!(%addr, %err, "could not set the UDP receive buffer size");
        }
        if let Err(err) = socket.set_send_buffer_size(buffer) {
            tracing::debug!(%addr, %err, "could not set the UDP send buffer size");
        }
        socket.bind(&addr.into())?;
        let socket: std::net::UdpSocket = socket.into();
        let state = UdpSocketState::new((&socket).into())?;
        let io = Async::new(socket)?;
        let local = io.get_ref().local_addr()?;
        Ok(UdpSocket {
            io: Arc::new(io),
            state,
            local,
        })
    }

    /// The address actually bound.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends one transmit (possibly a GSO batch). Only `WouldBlock` is returned as an error:
    /// other send errors (an unreachable host, a too-big MTU probe) are what UDP is allowed
    /// to do, and QUIC recovers from them like from a loss.
    pub(crate) fn send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.state.send((&*self.io).into(), transmit)
    }

    /// A future that completes when the socket may accept a send again.
    pub(crate) fn writable(&self) -> async_io::WritableOwned<std::net::UdpSocket> {
        self.io.clone().writable_owned()
    }

    /// Receives a batch of datagrams. Errors that concern one datagram (ICMP-triggered
    /// `ECONNREFUSED`/`ECONNRESET` from an earlier send, which an attacker can provoke) are
    /// skipped.
    pub(crate) fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.io.poll_readable(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Ready(Ok(())) => {}
            }
            match self.state.recv((&*self.io).into(), bufs, meta) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }

    /// Datagrams per send (GSO), 1 without GSO.
    pub(crate) fn max_transmit_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Datagrams per received buffer (GRO), 1 without GRO.
    pub(crate) fn max_receive_segments(&self) -> usize {
        self.state.gro_segments()
    }

    /// Whether sent datagrams may be fragmented (then path MTU discovery must stay off).
    pub(crate) fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }
}
