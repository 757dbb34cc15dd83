//! [`QuicTransport`]: dialing and listening on `/udp/PORT/quic-v1`, the handshake, and the
//! [`Established`] connections it yields.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use lp2p_core::{
    DialOpts, Error, Established, Incoming, Listener, Multiaddr, PeerId, ProtocolId, Role,
    Transport, TransportContext, addr as core_addr,
};
use lp2p_tls::{ALPN_LIBP2P, Libp2pCertVerifier, LocalCertificate, TlsError, certificate};
use quinn_proto::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn_proto::{ConnectionError, ServerConfig, TransportConfig, TransportErrorCode};

use crate::addr::{QuicAddr, parse, to_multiaddr};
use crate::config::QuicConfig;
use crate::connection::QuicConnection;
use crate::driver::{CLOSE_REFUSED, ConnRef, ConnShared};
use crate::endpoint::{Endpoint, EndpointHandle};
use crate::error::{MUXER_PROTOCOL, QuicError};
use crate::punch;
use crate::socket::UdpSocket;
use crate::stats::{Counters, QuicStats};
use crate::window::{INITIAL_RECEIVE_WINDOW, WindowGrowth};

/// The protocol id reported as the security of QUIC connections: the handshake is the
/// libp2p TLS handshake (`tls/tls.md`: the same certificate, extension and checks as
/// `/tls/1.0.0` over TCP), carried in QUIC's CRYPTO frames instead of a byte stream.
pub const SECURITY_PROTOCOL: &str = lp2p_tls::PROTOCOL_ID;

/// The QUIC transport: `/ip4|ip6/ADDR/udp/PORT/quic-v1`, TLS 1.3 with the libp2p certificate,
/// QUIC's own streams. Runs on the runtime of the [`TransportContext`] (async-std or smol:
/// the socket and timers are async-io's), no tokio.
///
/// Each listen address is one UDP socket (an endpoint) that also dials: a dial goes out
/// from a listening socket of the same address family when there is one (so the remote and
/// the NATs on the way see our listen port, which hole punching relies on), otherwise from
/// one client socket per address family, bound on first use. `/quic` (draft-29) addresses
/// are accepted by [`can_dial`](Transport::can_dial) only to fail with a clear error.
///
/// A dial with [`DialOpts::role`] `Responder` is the passive side of a hole punch: instead of
/// dialing, it sends a few random UDP packets to the address from the listening socket (to
/// open our NAT) and waits for the remote's connection from that address.
#[derive(Clone)]
pub struct QuicTransport {
    config: QuicConfig,
    transport: Arc<TransportConfig>,
    /// For connections over loopback, when they have their own MTU.
    loopback_transport: Option<Arc<TransportConfig>>,
    /// For the dialing side of a hole punch: a shorter initial RTT (see
    /// [`HOLE_PUNCH_INITIAL_RTT`]).
    punch_transport: Arc<TransportConfig>,
    shared: Arc<Shared>,
}

/// The initial RTT estimate of a hole-punching dial (a dial with `DialOpts::port_reuse` and
/// `Role::Initiator`, made when DCUtR's `SYNC` arrives). Why 100 ms, not quinn's 333 ms: the
/// first Initial often reaches the other NAT just before that side's punching packets have
/// opened it and is dropped; quinn resends after its probe timeout, about three initial
/// RTTs, so the punch took about 1 s instead of a few ms (seen in the NAT testbed, D50).
/// With 100 ms the resend comes after about 0.33 s; on a path slower than that a spurious
/// resend costs one more 1,200-byte packet.
pub const HOLE_PUNCH_INITIAL_RTT: Duration = Duration::from_millis(100);

struct Shared {
    registry: Mutex<Registry>,
    counters: Arc<Counters>,
    certificate: Mutex<Option<LocalCertificate>>,
}

#[derive(Default)]
struct Registry {
    listeners: Vec<Weak<Endpoint>>,
    /// Client-only endpoints run while their connections do, so these are weak.
    client_v4: Option<Weak<Endpoint>>,
    client_v6: Option<Weak<Endpoint>>,
}

impl Default for QuicTransport {
    fn default() -> Self {
        QuicTransport::new(QuicConfig::default())
    }
}

impl std::fmt::Debug for QuicTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicTransport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether a socket bound to `local` should dial `remote`: same family, and either bound to
/// every interface or on the same side of the loopback boundary.
fn suits(local: SocketAddr, remote: SocketAddr) -> bool {
    local.is_ipv4() == remote.is_ipv4()
        && (local.ip().is_unspecified() || local.ip().is_loopback() == remote.ip().is_loopback())
}

impl QuicTransport {
    /// A transport with these settings.
    pub fn new(config: QuicConfig) -> QuicTransport {
        QuicTransport {
            transport: config.transport_arc(),
            loopback_transport: config.loopback_transport_arc(),
            punch_transport: {
                let mut transport = config.transport();
                transport.initial_rtt(HOLE_PUNCH_INITIAL_RTT);
                Arc::new(transport)
            },
            config,
            shared: Arc::new(Shared {
                registry: Mutex::new(Registry::default()),
                counters: Arc::new(Counters::default()),
                certificate: Mutex::new(None),
            }),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &QuicConfig {
        &self.config
    }

    /// What the transport refused, lost or established so far (all its endpoints).
    pub fn stats(&self) -> QuicStats {
        self.shared.counters.snapshot()
    }

    /// Our certificate for the context's key, generated on first use.
    fn local_certificate(&self, ctx: &TransportContext) -> Result<LocalCertificate, TlsError> {
        let peer = ctx.local_peer_id();
        let mut cached = lock(&self.shared.certificate);
        if let Some(cert) = cached.as_ref().filter(|c| c.peer_id() == peer) {
            return Ok(cert.clone());
        }
        let cert = LocalCertificate::generate(&ctx.local_key)?;
        *cached = Some(cert.clone());
        Ok(cert)
    }

    /// The transport configuration for a connection with `remote`.
    fn transport_for(&self, remote: SocketAddr) -> Arc<TransportConfig> {
        match &self.loopback_transport {
            Some(loopback) if remote.ip().is_loopback() => loopback.clone(),
            _ => self.transport.clone(),
        }
    }

    /// The server configuration for any remote, and the one for loopback remotes if they
    /// have their own transport configuration.
    #[allow(clippy::type_complexity)]
    fn server_config(
        &self,
        ctx: &TransportContext,
    ) -> Result<(Arc<ServerConfig>, Option<Arc<ServerConfig>>), TlsError> {
        let local = self.local_certificate(ctx)?;
        let counters = self.shared.counters.clone();
        let verifier = Libp2pCertVerifier::new().on_failure(Arc::new(move |_: &Arc<TlsError>| {
            Counters::bump(&counters.bad_certificates);
        }));
        let tls = lp2p_tls::server_config(&local, verifier, vec![ALPN_LIBP2P.to_vec()])?;
        let crypto = QuicServerConfig::try_from(Arc::new(tls))
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let mut server = ServerConfig::with_crypto(Arc::new(crypto));
        let pending = self.config.get_max_pending_incoming();
        // quinn-proto silently drops Initials past `max_incoming` (attempts not yet accepted
        // or refused, queued or handed out); our own queue refuses (and counts) past
        // `pending`. Twice that leaves room for the attempts the swarm is admitting.
        server
            .transport_config(self.transport.clone())
            .max_incoming(pending.saturating_mul(2))
            .incoming_buffer_size(self.config.incoming_buffer())
            .incoming_buffer_size_total(
                self.config
                    .incoming_buffer()
                    .saturating_mul(u64::try_from(pending.saturating_mul(2)).unwrap_or(u64::MAX)),
            );
        let loopback = self.loopback_transport.as_ref().map(|transport| {
            let mut loopback = server.clone();
            loopback.transport_config(transport.clone());
            Arc::new(loopback)
        });
        Ok((Arc::new(server), loopback))
    }

    /// A client configuration for one dial; the verifier's precise failure lands in `slot`.
    fn client_config(
        &self,
        ctx: &TransportContext,
        remote: SocketAddr,
        expected: Option<PeerId>,
        slot: &Arc<Mutex<Option<Arc<TlsError>>>>,
        punching: bool,
    ) -> Result<quinn_proto::ClientConfig, TlsError> {
        let local = self.local_certificate(ctx)?;
        let counters = self.shared.counters.clone();
        let slot = slot.clone();
        let verifier = Libp2pCertVerifier::expecting(expected).on_failure(Arc::new(
            move |err: &Arc<TlsError>| {
                if err.is_bad_certificate() {
                    Counters::bump(&counters.bad_certificates);
                }
                *lock(&slot) = Some(err.clone());
            },
        ));
        let tls = lp2p_tls::client_config(&local, verifier, vec![ALPN_LIBP2P.to_vec()])?;
        let crypto = QuicClientConfig::try_from(Arc::new(tls))
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let mut client = quinn_proto::ClientConfig::new(Arc::new(crypto));
        client.transport_config(if punching {
            self.punch_transport.clone()
        } else {
            self.transport_for(remote)
        });
        Ok(client)
    }

    /// Binds an endpoint on `addr`.
    fn bind(
        &self,
        ctx: &TransportContext,
        addr: SocketAddr,
        server: Option<(Arc<ServerConfig>, Option<Arc<ServerConfig>>)>,
    ) -> Result<EndpointHandle, QuicError> {
        let socket = UdpSocket::bind(addr, self.config.get_socket_buffer_size())
            .map_err(|source| QuicError::Bind { addr, source })?;
        Ok(Endpoint::start(
            socket,
            server,
            &self.config,
            &ctx.runtime,
            self.shared.counters.clone(),
        ))
    }

    /// A listening endpoint that suits `remote`, if there is one.
    fn listening_endpoint(&self, remote: SocketAddr) -> Option<EndpointHandle> {
        let mut registry = lock(&self.shared.registry);
        registry.listeners.retain(|weak| weak.strong_count() > 0);
        let mut candidates: Vec<EndpointHandle> = registry
            .listeners
            .iter()
            .filter_map(EndpointHandle::upgrade)
            .filter(|ep| ep.is_listening() && suits(ep.local_addr(), remote))
            .collect();
        // Prefer a socket bound to every interface: it can reach any route.
        candidates.sort_by_key(|ep| !ep.local_addr().ip().is_unspecified());
        candidates.into_iter().next()
    }

    /// The endpoint to dial `remote` from (see the type's docs).
    fn dial_endpoint(
        &self,
        ctx: &TransportContext,
        remote: SocketAddr,
    ) -> Result<EndpointHandle, QuicError> {
        if let Some(endpoint) = self.listening_endpoint(remote) {
            return Ok(endpoint);
        }
        let mut registry = lock(&self.shared.registry);
        let slot = if remote.is_ipv4() {
            &mut registry.client_v4
        } else {
            &mut registry.client_v6
        };
        if let Some(endpoint) = slot.as_ref().and_then(EndpointHandle::upgrade) {
            return Ok(endpoint);
        }
        let any = if remote.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        let endpoint = self.bind(ctx, SocketAddr::new(any, 0), None)?;
        *slot = Some(endpoint.downgrade());
        Ok(endpoint)
    }

    /// Dials `remote`; `punching`: the dialing side of a hole punch (a shorter initial RTT).
    async fn dial_inner(
        &self,
        ctx: &TransportContext,
        remote: SocketAddr,
        expected: Option<PeerId>,
        punching: bool,
    ) -> Result<Established, Error> {
        let quic_err = |err: QuicError| err.into_dial_error(&to_multiaddr(remote));
        let endpoint = self.dial_endpoint(ctx, remote).map_err(quic_err)?;
        let slot = Arc::new(Mutex::new(None));
        let config = self
            .client_config(ctx, remote, expected, &slot, punching)
            .map_err(|source| QuicError::Tls {
                addr: remote,
                source: Arc::new(source),
            })
            .map_err(quic_err)?;
        let now = ctx.runtime.now();
        let shared = endpoint
            .connect(now, config, remote, |h, conn| {
                ConnShared::new(&endpoint, h, conn)
            })
            .map_err(|e| QuicError::Connect {
                addr: remote,
                reason: e.to_string(),
            })
            .map_err(quic_err)?;
        // Started before our handle goes: the connection's task holds its own.
        let conn = shared.start();
        drop(endpoint);
        tracing::debug!(%remote, local = %shared.local(), "dialing over QUIC");
        self.establish(conn, Role::Initiator, ctx, expected, Some(&slot))
            .await
    }

    /// Waits for the handshake, then authenticates the remote, asks the swarm's check and
    /// builds the established connection.
    pub(crate) async fn establish(
        &self,
        conn: ConnRef,
        role: Role,
        ctx: &TransportContext,
        expected: Option<PeerId>,
        slot: Option<&Arc<Mutex<Option<Arc<TlsError>>>>>,
    ) -> Result<Established, Error> {
        establish(
            conn,
            role,
            ctx,
            expected,
            slot,
            &self.config,
            &self.shared.counters,
        )
        .await
    }
}

/// A crypto-range transport error code (0x0100 to 0x01ff) as the TLS alert it carries.
fn alert(code: TransportErrorCode) -> Option<rustls::AlertDescription> {
    let code = u64::from(code);
    (0x100..=0x1ff).contains(&code).then(|| {
        rustls::AlertDescription::from(u8::try_from(code.saturating_sub(0x100)).unwrap_or(0))
    })
}

/// The most precise error for a failed handshake: the verifier's own verdict when it refused
/// the remote's certificate, the TLS alert when the remote refused ours, else the reason.
fn handshake_error(
    remote: SocketAddr,
    reason: ConnectionError,
    slot: Option<&Arc<Mutex<Option<Arc<TlsError>>>>>,
) -> QuicError {
    if let Some(ours) = slot.and_then(|slot| lock(slot).take()) {
        return QuicError::Tls {
            addr: remote,
            source: ours,
        };
    }
    let tls = match &reason {
        ConnectionError::ConnectionClosed(close) => {
            alert(close.error_code).map(|a| TlsError::Tls(rustls::Error::AlertReceived(a)))
        }
        ConnectionError::TransportError(err) => {
            alert(err.code).map(|_| TlsError::Tls(rustls::Error::General(err.reason.clone())))
        }
        _ => None,
    };
    match tls {
        Some(source) => QuicError::Tls {
            addr: remote,
            source: Arc::new(source),
        },
        None => QuicError::ConnectionLost {
            addr: remote,
            reason,
        },
    }
}

async fn establish(
    conn: ConnRef,
    role: Role,
    ctx: &TransportContext,
    expected: Option<PeerId>,
    slot: Option<&Arc<Mutex<Option<Arc<TlsError>>>>>,
    config: &QuicConfig,
    counters: &Counters,
) -> Result<Established, Error> {
    let timeout = config.get_handshake_timeout();
    let shared = conn.shared().clone();
    let remote = shared.remote();
    let remote_addr = to_multiaddr(remote);
    let fail = |err: QuicError| {
        Counters::bump(&counters.handshakes_failed);
        tracing::debug!(%remote, %role, error = %err, "QUIC handshake failed");
        match role {
            Role::Initiator => err.into_dial_error(&remote_addr),
            Role::Responder => err.into(),
        }
    };
    let handshake = futures::future::poll_fn(|cx| conn.poll_handshake(cx));
    match ctx.runtime.timeout(timeout, handshake).await {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => return Err(fail(handshake_error(remote, reason, slot))),
        Err(_) => {
            conn.close(CLOSE_REFUSED, b"handshake timeout");
            return Err(fail(QuicError::HandshakeTimeout {
                addr: remote,
                timeout,
            }));
        }
    }
    let tls_fail = |source: TlsError| QuicError::Tls {
        addr: remote,
        source: Arc::new(source),
    };
    let remote_key = match shared.peer_certificates().as_deref() {
        // The verifier accepted exactly this certificate during the handshake.
        Some([cert]) => certificate::host_key(cert.as_ref()).map_err(tls_fail),
        Some([]) | None => Err(tls_fail(TlsError::NoCertificate)),
        Some(certs) => Err(tls_fail(TlsError::TooManyCertificates {
            count: certs.len(),
        })),
    };
    let remote_key = match remote_key {
        Ok(key) => key,
        Err(err) => {
            conn.close(CLOSE_REFUSED, b"");
            return Err(fail(err));
        }
    };
    let peer = remote_key.to_peer_id();
    if let Some(expected) = expected.filter(|e| *e != peer) {
        conn.close(CLOSE_REFUSED, b"");
        return Err(fail(tls_fail(TlsError::peer_id_mismatch(expected, peer))));
    }
    if let Err(err) = ctx.check_secured(&peer, &remote_addr, role) {
        tracing::debug!(%remote, %peer, %role, error = %err, "QUIC connection refused locally");
        Counters::bump(&counters.connections_denied);
        conn.close(CLOSE_REFUSED, b"refused");
        return Err(err);
    }
    // The window so far is the handshake's; from now on it grows, reserved, with the
    // traffic (window.rs).
    let memory = ctx.memory_account(&peer, &remote_addr, role);
    {
        let mut state = shared.lock();
        let received = state.conn.stats().udp_rx.bytes;
        let max = config.connection_window();
        state.start_window_growth(WindowGrowth::new(
            memory,
            max.min(INITIAL_RECEIVE_WINDOW),
            max,
            ctx.runtime.now(),
            received,
        ));
        state.start_stream_credit(config.get_max_concurrent_streams());
    }
    Counters::bump(match role {
        Role::Initiator => &counters.connections_outbound,
        Role::Responder => &counters.connections_inbound,
    });
    tracing::debug!(%remote, %peer, %role, "QUIC connection established");
    Ok(Established {
        peer,
        muxer: Arc::new(QuicConnection::new(conn, remote_key.clone())),
        remote_key,
        local_addr: to_multiaddr(shared.local()),
        remote_addr,
        security: ProtocolId::from_static(SECURITY_PROTOCOL),
        muxer_protocol: ProtocolId::from_static(MUXER_PROTOCOL),
        limited: false,
    })
}

#[async_trait]
impl Transport for QuicTransport {
    fn name(&self) -> &'static str {
        "quic"
    }

    /// Every connection of an endpoint shares its UDP socket.
    fn uses_fd_per_connection(&self) -> bool {
        false
    }

    fn can_dial(&self, addr: &Multiaddr) -> bool {
        match parse(addr) {
            QuicAddr::V1(sa) => sa.port() != 0 && !sa.ip().is_unspecified(),
            // Taken so that the dial fails with a message that says why.
            QuicAddr::Draft29 => true,
            QuicAddr::Other => false,
        }
    }

    fn can_listen(&self, addr: &Multiaddr) -> bool {
        matches!(parse(addr), QuicAddr::V1(_))
    }

    async fn dial(
        &self,
        ctx: &TransportContext,
        addr: &Multiaddr,
        opts: DialOpts,
    ) -> Result<Established, Error> {
        let remote = match parse(addr) {
            QuicAddr::V1(sa) if self.can_dial(addr) => sa,
            QuicAddr::Draft29 => {
                return Err(QuicError::Draft29(addr.clone()).into_dial_error(addr));
            }
            _ => return Err(Error::UnsupportedAddress(addr.clone())),
        };
        let expected = opts.expected_peer.or_else(|| core_addr::peer_id(addr));
        match opts.role {
            Role::Initiator => {
                self.dial_inner(ctx, remote, expected, opts.port_reuse)
                    .await
            }
            Role::Responder => self.hole_punch(ctx, remote, expected).await,
        }
    }

    async fn listen(
        &self,
        ctx: &TransportContext,
        addr: &Multiaddr,
    ) -> Result<Box<dyn Listener>, Error> {
        let QuicAddr::V1(socket_addr) = parse(addr) else {
            return Err(Error::UnsupportedAddress(addr.clone()));
        };
        let server = self.server_config(ctx).map_err(|e| Error::Listen {
            addr: addr.clone(),
            source: std::io::Error::other(e),
        })?;
        let endpoint = self
            .bind(ctx, socket_addr, Some(server))
            .map_err(|err| match err {
                QuicError::Bind { source, .. } => Error::Listen {
                    addr: addr.clone(),
                    source,
                },
                other => other.into(),
            })?;
        lock(&self.shared.registry)
            .listeners
            .push(endpoint.downgrade());
        let local = to_multiaddr(endpoint.local_addr());
        tracing::debug!(%local, "QUIC listener bound");
        Ok(Box::new(QuicListener {
            endpoint,
            local,
            ctx: ctx.clone(),
            transport: self.clone(),
        }))
    }
}

impl QuicTransport {
    /// The passive side of a hole punch (see the type's docs): the remote dials our listen
    /// port while we open our NAT towards it.
    async fn hole_punch(
        &self,
        ctx: &TransportContext,
        remote: SocketAddr,
        expected: Option<PeerId>,
    ) -> Result<Established, Error> {
        let addr = to_multiaddr(remote);
        let Some(endpoint) = self.listening_endpoint(remote) else {
            return Err(Error::Dial {
                addr,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "a QUIC hole punch needs a QUIC listener of the same address family",
                ),
            });
        };
        tracing::debug!(%remote, local = %endpoint.local_addr(), "QUIC hole punch: waiting for the remote's dial");
        let incoming =
            punch::wait_for_incoming(&endpoint, remote, self.config.get_handshake_timeout())
                .await
                .map_err(|err| err.into_dial_error(&addr))?;
        let guard = IncomingGuard {
            endpoint,
            incoming: Some(incoming),
        };
        accept_incoming(self.clone(), ctx.clone(), guard, expected).await
    }
}

/// A QUIC listener: one UDP socket. Dropping it stops accepting (queued attempts are
/// refused); the socket stays open while connections on it (or dials from it) live.
pub struct QuicListener {
    endpoint: EndpointHandle,
    local: Multiaddr,
    ctx: TransportContext,
    transport: QuicTransport,
}

impl std::fmt::Debug for QuicListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicListener")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl Drop for QuicListener {
    fn drop(&mut self) {
        self.endpoint.stop_listening();
    }
}

/// An inbound attempt handed out but not accepted yet: refused if dropped.
pub(crate) struct IncomingGuard {
    pub(crate) endpoint: EndpointHandle,
    pub(crate) incoming: Option<quinn_proto::Incoming>,
}

impl Drop for IncomingGuard {
    fn drop(&mut self) {
        if let Some(incoming) = self.incoming.take() {
            tracing::debug!(remote = %incoming.remote_address(), "inbound QUIC attempt dropped; refusing it");
            self.endpoint.refuse(incoming);
            Counters::bump(&self.endpoint.counters().incoming_dropped);
        }
    }
}

/// Accepts an inbound attempt and runs the handshake as the responder.
pub(crate) async fn accept_incoming(
    transport: QuicTransport,
    ctx: TransportContext,
    mut guard: IncomingGuard,
    expected: Option<PeerId>,
) -> Result<Established, Error> {
    let Some(incoming) = guard.incoming.take() else {
        return Err(Error::ConnectionClosed);
    };
    let remote = incoming.remote_address();
    let endpoint = guard.endpoint.clone();
    let now = ctx.runtime.now();
    let shared = endpoint
        .accept(incoming, now, |h, conn| ConnShared::new(&endpoint, h, conn))
        .map_err(|reason| {
            Counters::bump(&transport.shared.counters.handshakes_failed);
            lp2p_core::Error::from(QuicError::ConnectionLost {
                addr: remote,
                reason,
            })
        })?;
    let conn = shared.start();
    drop(endpoint);
    drop(guard);
    transport
        .establish(conn, Role::Responder, &ctx, expected, None)
        .await
}

#[async_trait]
impl Listener for QuicListener {
    async fn accept(&mut self) -> Result<Incoming, Error> {
        let endpoint = &self.endpoint;
        let Some(incoming) = futures::future::poll_fn(|cx| endpoint.poll_incoming(cx)).await else {
            return Err(Error::Listen {
                addr: self.local.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    QuicError::EndpointClosed {
                        addr: endpoint.local_addr(),
                    },
                ),
            });
        };
        let remote_addr = to_multiaddr(incoming.remote_address());
        let local_addr = match incoming.local_ip() {
            Some(ip) if endpoint.local_addr().ip().is_unspecified() => {
                to_multiaddr(SocketAddr::new(ip, endpoint.local_addr().port()))
            }
            _ => self.local.clone(),
        };
        let guard = IncomingGuard {
            endpoint: self.endpoint.clone(),
            incoming: Some(incoming),
        };
        let upgrade = accept_incoming(self.transport.clone(), self.ctx.clone(), guard, None);
        Ok(Incoming {
            local_addr,
            remote_addr,
            upgrade: Box::pin(upgrade),
        })
    }

    fn local_addrs(&self) -> Vec<Multiaddr> {
        vec![self.local.clone()]
    }
}
