use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_io::{Async, Timer};
use async_trait::async_trait;
use lp2p_core::{Connection, DialOpts, Error, Multiaddr, RawListener, RawTransport, addr};

use crate::{TcpConnection, multiaddr_to_socketaddr, socketaddr_to_multiaddr};

/// How long a listener pauses after an accept failed for lack of resources (`EMFILE`,
/// `ENFILE`, `ENOBUFS`, `ENOMEM`): long enough not to spin on a full descriptor table, short
/// enough that service resumes promptly once descriptors are freed.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Connections a listener keeps waiting to be accepted (the `listen(2)` backlog): the
/// kernel's common default ceiling (`somaxconn` is 4096 on recent Linux, 128 on old ones and
/// it caps this value), so bursts of dials are queued rather than refused.
pub const LISTEN_BACKLOG: i32 = 1024;

/// The TCP transport.
///
/// Listening sockets set `SO_REUSEADDR` and, on Unix, `SO_REUSEPORT`, so a dial with
/// [`DialOpts::port_reuse`] can leave from the port we listen on: the remote (and every NAT
/// on the way) then sees our listen address, which hole punching relies on. Clones share the
/// set of listen addresses.
#[derive(Debug, Clone)]
pub struct TcpTransport {
    nodelay: bool,
    listening: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Default for TcpTransport {
    fn default() -> Self {
        TcpTransport {
            nodelay: true,
            listening: Arc::default(),
        }
    }
}

fn socket_for(addr: SocketAddr) -> io::Result<socket2::Socket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        // One family per socket, as the address says (an ip6 listener does not take ip4).
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

impl TcpTransport {
    /// A transport with `TCP_NODELAY` on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `TCP_NODELAY` on dialed and accepted sockets (on by default).
    #[must_use]
    pub fn with_nodelay(mut self, nodelay: bool) -> Self {
        self.nodelay = nodelay;
        self
    }

    fn socket_addr(addr: &Multiaddr) -> Option<SocketAddr> {
        multiaddr_to_socketaddr(&addr::split_peer_id(addr).0)
    }

    /// The listen address a port-reusing dial to `remote` leaves from: one of the same IP
    /// family, loopback only for a loopback remote.
    fn reuse_source(&self, remote: SocketAddr) -> Option<SocketAddr> {
        let listening = self
            .listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        listening
            .iter()
            .filter(|l| l.is_ipv4() == remote.is_ipv4())
            .find(|l| l.ip().is_unspecified() || l.ip().is_loopback() == remote.ip().is_loopback())
            .copied()
    }

    /// Connects from `local` (a port we listen on, shared with `SO_REUSEPORT`; an
    /// unspecified IP lets the kernel pick the source address).
    async fn connect_from(local: SocketAddr, remote: SocketAddr) -> io::Result<Async<TcpStream>> {
        let socket = socket_for(local)?;
        socket.bind(&local.into())?;
        match socket.connect(&remote.into()) {
            Ok(()) => {}
            Err(err)
                if err.raw_os_error() == Some(EINPROGRESS)
                    || err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
        let stream = Async::new(TcpStream::from(socket))?;
        stream.writable().await?;
        if let Some(err) = stream.get_ref().take_error()? {
            return Err(err);
        }
        // Connected (not merely writable because it failed): the peer address is known.
        stream.get_ref().peer_addr()?;
        Ok(stream)
    }

    /// [`RawTransport::dial`] with the concrete connection type (an ephemeral source port).
    pub async fn dial_tcp(&self, addr: &Multiaddr) -> Result<TcpConnection, Error> {
        self.dial_tcp_with(addr, &DialOpts::default()).await
    }

    /// [`RawTransport::dial`] with the concrete connection type: from the listening port
    /// when `opts.port_reuse` asks for it and we listen on the remote's IP family.
    pub async fn dial_tcp_with(
        &self,
        addr: &Multiaddr,
        opts: &DialOpts,
    ) -> Result<TcpConnection, Error> {
        let Some(socket_addr) = Self::socket_addr(addr).filter(|_| self.can_dial(addr)) else {
            return Err(Error::UnsupportedAddress(addr.clone()));
        };
        let fail = |source: io::Error| Error::Dial {
            addr: addr.clone(),
            source,
        };
        let source = opts
            .port_reuse
            .then(|| self.reuse_source(socket_addr))
            .flatten();
        let stream = match source {
            Some(local) => Self::connect_from(local, socket_addr).await.map_err(fail)?,
            None => Async::<TcpStream>::connect(socket_addr)
                .await
                .map_err(fail)?,
        };
        stream.get_ref().set_nodelay(self.nodelay).map_err(fail)?;
        let local = stream.get_ref().local_addr().map_err(fail)?;
        tracing::debug!(%addr, %local, "tcp connection dialed");
        Ok(TcpConnection::new(
            stream,
            socketaddr_to_multiaddr(local),
            socketaddr_to_multiaddr(socket_addr),
        ))
    }

    /// [`RawTransport::listen`] with the concrete listener type.
    pub fn listen_tcp(&self, addr: &Multiaddr) -> Result<TcpListener, Error> {
        let Some(socket_addr) = multiaddr_to_socketaddr(addr) else {
            return Err(Error::UnsupportedAddress(addr.clone()));
        };
        let fail = |source: io::Error| Error::Listen {
            addr: addr.clone(),
            source,
        };
        let socket = socket_for(socket_addr).map_err(fail)?;
        socket.bind(&socket_addr.into()).map_err(fail)?;
        socket.listen(LISTEN_BACKLOG).map_err(fail)?;
        let listener = Async::new(StdTcpListener::from(socket)).map_err(fail)?;
        let bound = listener.get_ref().local_addr().map_err(fail)?;
        let local = socketaddr_to_multiaddr(bound);
        tracing::debug!(%local, "tcp listener bound");
        self.listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(bound);
        Ok(TcpListener {
            listener,
            local,
            bound,
            nodelay: self.nodelay,
            registry: self.listening.clone(),
        })
    }
}

#[async_trait]
impl RawTransport for TcpTransport {
    fn name(&self) -> &'static str {
        "tcp"
    }

    fn can_dial(&self, addr: &Multiaddr) -> bool {
        Self::socket_addr(addr).is_some_and(|sa| sa.port() != 0 && !sa.ip().is_unspecified())
    }

    fn can_listen(&self, addr: &Multiaddr) -> bool {
        multiaddr_to_socketaddr(addr).is_some()
    }

    async fn dial(&self, addr: &Multiaddr, opts: &DialOpts) -> Result<Box<dyn Connection>, Error> {
        Ok(Box::new(self.dial_tcp_with(addr, opts).await?))
    }

    async fn listen(&self, addr: &Multiaddr) -> Result<Box<dyn RawListener>, Error> {
        Ok(Box::new(self.listen_tcp(addr)?))
    }
}

/// A bound TCP listener.
#[derive(Debug)]
pub struct TcpListener {
    listener: Async<StdTcpListener>,
    local: Multiaddr,
    bound: SocketAddr,
    nodelay: bool,
    /// The transport's listen addresses, which this one leaves when dropped.
    registry: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let mut listening = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = listening.iter().position(|a| *a == self.bound) {
            listening.swap_remove(i);
        }
    }
}

/// `EINPROGRESS` on Linux, the answer of a non-blocking `connect` that goes on in the
/// background (matched by number so no libc dependency is needed).
const EINPROGRESS: i32 = 115;

/// Errors about one connection that died before we accepted it: skip it at once.
fn concerns_one_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Errors that mean "out of resources for now": pause, then keep accepting.
fn is_resource_exhaustion(err: &io::Error) -> bool {
    // EMFILE 24, ENFILE 23, ENOBUFS 105, ENOMEM 12 on Linux; matched by raw code so no libc
    // dependency is needed. Other platforms fall back to the generic retry path.
    matches!(err.raw_os_error(), Some(12 | 23 | 24 | 105))
        || err.kind() == io::ErrorKind::OutOfMemory
}

impl TcpListener {
    /// [`RawListener::accept`] with the concrete connection type. Never fails: failed accepts
    /// are skipped or paused on (see [`ACCEPT_ERROR_BACKOFF`]).
    pub async fn accept_tcp(&mut self) -> TcpConnection {
        loop {
            match self.listener.accept().await {
                Ok((stream, remote)) => {
                    if let Err(err) = stream.get_ref().set_nodelay(self.nodelay) {
                        tracing::debug!(%remote, %err, "setting TCP_NODELAY failed; dropping the connection");
                        continue;
                    }
                    let local = match stream.get_ref().local_addr() {
                        Ok(local) => socketaddr_to_multiaddr(local),
                        Err(_) => self.local.clone(),
                    };
                    return TcpConnection::new(stream, local, socketaddr_to_multiaddr(remote));
                }
                Err(err) if concerns_one_connection(&err) => {
                    tracing::debug!(listener = %self.local, %err, "accept failed; continuing");
                }
                Err(err) => {
                    // Out of descriptors or memory, or something unexpected: pause rather
                    // than spin, then keep serving.
                    let level_warn = is_resource_exhaustion(&err);
                    if level_warn {
                        tracing::warn!(listener = %self.local, %err, "accept failed: out of resources; pausing");
                    } else {
                        tracing::warn!(listener = %self.local, %err, "accept failed; pausing");
                    }
                    Timer::after(ACCEPT_ERROR_BACKOFF).await;
                }
            }
        }
    }
}

#[async_trait]
impl RawListener for TcpListener {
    async fn accept(&mut self) -> Result<Box<dyn Connection>, Error> {
        Ok(Box::new(self.accept_tcp().await))
    }

    fn local_addr(&self) -> Multiaddr {
        self.local.clone()
    }
}
