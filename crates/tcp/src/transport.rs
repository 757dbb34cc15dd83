use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, TcpStream};
use std::time::Duration;

use async_io::{Async, Timer};
use async_trait::async_trait;
use lp2p_core::{Connection, DialOpts, Error, Multiaddr, RawListener, RawTransport, addr};

use crate::{TcpConnection, multiaddr_to_socketaddr, socketaddr_to_multiaddr};

/// How long a listener pauses after an accept failed for lack of resources (`EMFILE`,
/// `ENFILE`, `ENOBUFS`, `ENOMEM`): long enough not to spin on a full descriptor table, short
/// enough that service resumes promptly once descriptors are freed.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// The TCP transport.
#[derive(Debug, Clone)]
pub struct TcpTransport {
    nodelay: bool,
}

impl Default for TcpTransport {
    fn default() -> Self {
        TcpTransport { nodelay: true }
    }
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

    /// [`RawTransport::dial`] with the concrete connection type.
    pub async fn dial_tcp(&self, addr: &Multiaddr) -> Result<TcpConnection, Error> {
        let Some(socket_addr) = Self::socket_addr(addr).filter(|_| self.can_dial(addr)) else {
            return Err(Error::UnsupportedAddress(addr.clone()));
        };
        let fail = |source: io::Error| Error::Dial {
            addr: addr.clone(),
            source,
        };
        let stream = Async::<TcpStream>::connect(socket_addr)
            .await
            .map_err(fail)?;
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
        let listener = Async::<StdTcpListener>::bind(socket_addr).map_err(fail)?;
        let bound = listener.get_ref().local_addr().map_err(fail)?;
        let local = socketaddr_to_multiaddr(bound);
        tracing::debug!(%local, "tcp listener bound");
        Ok(TcpListener {
            listener,
            local,
            nodelay: self.nodelay,
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

    async fn dial(&self, addr: &Multiaddr, _opts: &DialOpts) -> Result<Box<dyn Connection>, Error> {
        Ok(Box::new(self.dial_tcp(addr).await?))
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
    nodelay: bool,
}

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
