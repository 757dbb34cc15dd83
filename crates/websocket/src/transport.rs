//! The transport: TCP (lp2p-tcp), then TLS for `/tls/ws`, then the opening handshake, then
//! a [`WsConnection`].

use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::{BoxFuture, Either};
use futures::io::{AsyncRead, AsyncWrite};
use futures::stream::FuturesUnordered;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use futures_rustls::{TlsAcceptor, TlsConnector};
use lp2p_core::{Connection, DialOpts, Error, Multiaddr, RawListener, RawTransport, RuntimeHandle};
use lp2p_tcp::{TcpConnection, TcpListener, TcpTransport, socketaddr_to_multiaddr};
use rustls::pki_types::ServerName;

use crate::WsError;
use crate::addr::{DialTarget, ListenKind, TlsName, parse_dial, parse_listen};
use crate::config::WsConfig;
use crate::connection::WsConnection;
use crate::handshake::{ClientHandshake, parse_request, rejection_response};
use crate::session::Side;
use crate::tls::TlsConfig;

/// Bytes read at a time during the opening handshake.
const HANDSHAKE_READ: usize = 2048;

/// The socket under a WebSocket: TCP, or TLS over TCP.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum MaybeTls {
    /// `/ws`.
    Plain(TcpConnection),
    /// `/tls/ws`, our side dialed.
    Client(Box<futures_rustls::client::TlsStream<TcpConnection>>),
    /// `/tls/ws`, our side accepted.
    Server(Box<futures_rustls::server::TlsStream<TcpConnection>>),
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Client(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Server(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Client(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Server(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Client(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Server(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_close(cx),
            MaybeTls::Client(s) => Pin::new(s).poll_close(cx),
            MaybeTls::Server(s) => Pin::new(s).poll_close(cx),
        }
    }
}

/// A WebSocket connection over TCP or TLS: what the transport hands out.
pub type WsStream = WsConnection<MaybeTls>;

/// The WebSocket transport: `/ws`, `/tls/ws`, `/wss` and `/tls/sni/<name>/ws` over TCP.
///
/// Wrap it like any byte-stream transport (`HostBuilder::transport(WsTransport::new())`):
/// the security channel and the muxer are negotiated on top exactly as over TCP.
#[derive(Debug, Clone)]
pub struct WsTransport {
    tcp: TcpTransport,
    config: WsConfig,
    tls: TlsConfig,
    runtime: Option<RuntimeHandle>,
}

impl Default for WsTransport {
    fn default() -> Self {
        WsTransport::new()
    }
}

impl WsTransport {
    /// Default limits, dials trusting the Mozilla roots, no listener certificate, the
    /// runtime chosen by lp2p-core's features for timers.
    pub fn new() -> WsTransport {
        WsTransport {
            tcp: TcpTransport::default(),
            config: WsConfig::default(),
            tls: TlsConfig::default(),
            runtime: RuntimeHandle::try_default(),
        }
    }

    /// Uses these limits and timeouts.
    #[must_use]
    pub fn with_config(mut self, config: WsConfig) -> WsTransport {
        self.config = config;
        self
    }

    /// Uses these TLS settings (listener certificate, trusted roots).
    #[must_use]
    pub fn with_tls(mut self, tls: TlsConfig) -> WsTransport {
        self.tls = tls;
        self
    }

    /// Uses this TCP transport underneath (socket options).
    #[must_use]
    pub fn with_tcp(mut self, tcp: TcpTransport) -> WsTransport {
        self.tcp = tcp;
        self
    }

    /// Times handshakes on this runtime.
    #[must_use]
    pub fn with_runtime(mut self, runtime: RuntimeHandle) -> WsTransport {
        self.runtime = Some(runtime);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &WsConfig {
        &self.config
    }

    /// [`RawTransport::dial`] with the concrete connection type and error.
    pub async fn dial_ws(&self, addr: &Multiaddr) -> Result<WsStream, WsError> {
        let target = parse_dial(addr).ok_or_else(|| WsError::UnsupportedAddress(addr.clone()))?;
        let tcp_addr = socketaddr_to_multiaddr(target.socket);
        let tcp = self.tcp.dial_tcp(&tcp_addr).await.map_err(|e| match e {
            Error::Dial { source, .. } => WsError::Io(source),
            other => WsError::Io(other.into()),
        })?;
        let local = if target.tls.is_some() {
            ListenKind::TlsWs.on(tcp.local_addr())
        } else {
            ListenKind::Ws.on(tcp.local_addr())
        };
        let remote = target.remote.clone();
        let limit = self.config.handshake_timeout;
        let handshake = client_upgrade(tcp, target, self.tls.clone(), self.config.clone(), local);
        match timeout(self.runtime.as_ref(), limit, handshake).await {
            Some(result) => result,
            None => Err(WsError::HandshakeTimeout {
                remote,
                after: limit,
            }),
        }
    }

    /// [`RawTransport::listen`] with the concrete listener type and error.
    pub fn listen_ws(&self, addr: &Multiaddr) -> Result<WsListener, WsError> {
        let (socket, kind) =
            parse_listen(addr).ok_or_else(|| WsError::UnsupportedAddress(addr.clone()))?;
        let tls = if kind.tls() {
            let server = self
                .tls
                .server()
                .ok_or_else(|| WsError::NoServerCertificate(addr.clone()))?;
            Some(TlsAcceptor::from(server))
        } else {
            None
        };
        let tcp = self
            .tcp
            .listen_tcp(&socketaddr_to_multiaddr(socket))
            .map_err(|e| match e {
                Error::Listen { source, .. } => WsError::Io(source),
                other => WsError::Io(other.into()),
            })?;
        let local = kind.on(RawListener::local_addr(&tcp));
        tracing::debug!(%local, "WebSocket listener bound");
        Ok(WsListener {
            tcp,
            kind,
            local,
            tls,
            config: self.config.clone(),
            runtime: self.runtime.clone(),
            pending: FuturesUnordered::new(),
        })
    }
}

#[async_trait]
impl RawTransport for WsTransport {
    fn name(&self) -> &'static str {
        "websocket"
    }

    fn can_dial(&self, addr: &Multiaddr) -> bool {
        parse_dial(addr).is_some()
    }

    fn can_listen(&self, addr: &Multiaddr) -> bool {
        parse_listen(addr).is_some()
    }

    async fn dial(&self, addr: &Multiaddr, _opts: &DialOpts) -> Result<Box<dyn Connection>, Error> {
        match self.dial_ws(addr).await {
            Ok(conn) => Ok(Box::new(conn)),
            Err(WsError::UnsupportedAddress(a)) => Err(Error::UnsupportedAddress(a)),
            Err(err) => {
                tracing::debug!(%addr, %err, "WebSocket dial failed");
                Err(Error::Dial {
                    addr: addr.clone(),
                    source: err.into(),
                })
            }
        }
    }

    async fn listen(&self, addr: &Multiaddr) -> Result<Box<dyn RawListener>, Error> {
        match self.listen_ws(addr) {
            Ok(listener) => Ok(Box::new(listener)),
            Err(WsError::UnsupportedAddress(a)) => Err(Error::UnsupportedAddress(a)),
            Err(err) => Err(Error::Listen {
                addr: addr.clone(),
                source: err.into(),
            }),
        }
    }
}

/// Runs `future` for at most `limit` on `runtime`'s timers (async-io's when there is none).
async fn timeout<F: std::future::Future>(
    runtime: Option<&RuntimeHandle>,
    limit: Duration,
    future: F,
) -> Option<F::Output> {
    let sleep: BoxFuture<'static, ()> = match runtime {
        Some(rt) => rt.sleep(limit),
        None => Box::pin(async move {
            async_io::Timer::after(limit).await;
        }),
    };
    match futures::future::select(pin!(future), sleep).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(((), _)) => None,
    }
}

fn handshake_error(remote: &Multiaddr, reason: impl Into<String>) -> WsError {
    WsError::Handshake {
        remote: remote.clone(),
        reason: reason.into(),
    }
}

/// Reads more handshake bytes into `buf`; fails when the head grows past `max` or the
/// remote hangs up.
async fn read_more<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
    max: usize,
    remote: &Multiaddr,
) -> Result<(), WsError> {
    if buf.len() >= max {
        return Err(handshake_error(
            remote,
            format!("handshake head longer than {max} bytes"),
        ));
    }
    let start = buf.len();
    buf.resize(start + HANDSHAKE_READ, 0);
    let n = io.read(buf.get_mut(start..).unwrap_or_default()).await?;
    buf.truncate(start + n);
    if n == 0 {
        return Err(handshake_error(
            remote,
            "connection closed during the handshake",
        ));
    }
    Ok(())
}

async fn client_upgrade(
    tcp: TcpConnection,
    target: DialTarget,
    tls: TlsConfig,
    config: WsConfig,
    local: Multiaddr,
) -> Result<WsStream, WsError> {
    let remote = target.remote.clone();
    let mut io = match &target.tls {
        None => MaybeTls::Plain(tcp),
        Some(name) => {
            let server_name = match name {
                TlsName::Dns(name) => ServerName::try_from(name.clone()).map_err(|e| {
                    handshake_error(&remote, format!("bad TLS server name {name}: {e}"))
                })?,
                TlsName::Ip(ip) => ServerName::IpAddress((*ip).into()),
            };
            let stream = TlsConnector::from(tls.client()?)
                .connect(server_name, tcp)
                .await
                .map_err(|source| WsError::Tls {
                    remote: remote.clone(),
                    source,
                })?;
            MaybeTls::Client(Box::new(stream))
        }
    };
    let handshake = ClientHandshake::new(&target.host, &target.path, rand::random());
    io.write_all(handshake.request()).await?;
    io.flush().await?;
    let mut buf = Vec::new();
    loop {
        read_more(&mut io, &mut buf, config.max_handshake_len, &remote).await?;
        match handshake.parse_response(&buf) {
            Ok(None) => {}
            Ok(Some(len)) => {
                let leftover = buf.get(len..).unwrap_or_default();
                tracing::debug!(%remote, "WebSocket connection dialed");
                return Ok(WsConnection::new(
                    io,
                    Side::Client,
                    &config,
                    leftover,
                    local,
                    remote,
                ));
            }
            Err(rejection) if rejection.status != 0 && rejection.status != 101 => {
                return Err(WsError::Refused {
                    remote,
                    status: rejection.status,
                });
            }
            Err(rejection) => return Err(handshake_error(&remote, rejection.reason)),
        }
    }
}

async fn server_upgrade(
    tcp: TcpConnection,
    kind: ListenKind,
    tls: Option<TlsAcceptor>,
    config: WsConfig,
) -> Result<WsStream, WsError> {
    let local = kind.on(tcp.local_addr());
    let remote = kind.on(tcp.remote_addr());
    let mut io = match tls {
        None => MaybeTls::Plain(tcp),
        Some(acceptor) => {
            let stream = acceptor.accept(tcp).await.map_err(|source| WsError::Tls {
                remote: remote.clone(),
                source,
            })?;
            MaybeTls::Server(Box::new(stream))
        }
    };
    let mut buf = Vec::new();
    loop {
        read_more(&mut io, &mut buf, config.max_handshake_len, &remote).await?;
        match parse_request(&buf) {
            Ok(None) => {}
            Ok(Some((request, len))) => {
                io.write_all(&request.accept_response()).await?;
                io.flush().await?;
                let leftover = buf.get(len..).unwrap_or_default();
                tracing::debug!(%remote, path = %request.path, "WebSocket connection accepted");
                return Ok(WsConnection::new(
                    io,
                    Side::Server,
                    &config,
                    leftover,
                    local,
                    remote,
                ));
            }
            Err(rejection) => {
                // Tell the client why, then hang up.
                let _ = io.write_all(&rejection_response(&rejection)).await;
                let _ = io.close().await;
                return Err(handshake_error(&remote, rejection.reason));
            }
        }
    }
}

type PendingHandshake = BoxFuture<'static, Result<WsStream, WsError>>;

/// A bound WebSocket listener. Opening handshakes (TLS and HTTP) run concurrently inside
/// [`accept`](RawListener::accept), at most
/// [`max_pending_handshakes`](WsConfig::max_pending_handshakes) at a time and each within
/// the handshake timeout; one that fails is logged and dropped.
pub struct WsListener {
    tcp: TcpListener,
    kind: ListenKind,
    local: Multiaddr,
    tls: Option<TlsAcceptor>,
    config: WsConfig,
    runtime: Option<RuntimeHandle>,
    pending: FuturesUnordered<PendingHandshake>,
}

impl std::fmt::Debug for WsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsListener")
            .field("local", &self.local)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl WsListener {
    /// [`RawListener::accept`] with the concrete connection type. Never fails: handshakes
    /// that fail are skipped.
    pub async fn accept_ws(&mut self) -> WsStream {
        loop {
            let room = self.pending.len() < self.config.max_pending_handshakes.max(1);
            let tcp = &mut self.tcp;
            let pending = &mut self.pending;
            let accept = async move {
                if room {
                    tcp.accept_tcp().await
                } else {
                    futures::future::pending().await
                }
            };
            let finished = async move {
                if pending.is_empty() {
                    futures::future::pending().await
                } else {
                    pending.next().await
                }
            };
            match futures::future::select(pin!(accept), pin!(finished)).await {
                Either::Left((tcp, _)) => {
                    let remote = self.kind.on(tcp.remote_addr());
                    let limit = self.config.handshake_timeout;
                    let upgrade =
                        server_upgrade(tcp, self.kind, self.tls.clone(), self.config.clone());
                    let runtime = self.runtime.clone();
                    self.pending.push(Box::pin(async move {
                        match timeout(runtime.as_ref(), limit, upgrade).await {
                            Some(result) => result,
                            None => Err(WsError::HandshakeTimeout {
                                remote,
                                after: limit,
                            }),
                        }
                    }));
                }
                Either::Right((Some(Ok(conn)), _)) => return conn,
                Either::Right((Some(Err(err)), _)) => {
                    tracing::debug!(listener = %self.local, %err, "inbound WebSocket handshake failed");
                }
                Either::Right((None, _)) => {}
            }
        }
    }
}

#[async_trait]
impl RawListener for WsListener {
    async fn accept(&mut self) -> Result<Box<dyn Connection>, Error> {
        Ok(Box::new(self.accept_ws().await))
    }

    fn local_addr(&self) -> Multiaddr {
        self.local.clone()
    }
}
