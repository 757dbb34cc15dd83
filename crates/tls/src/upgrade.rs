//! The async shell: the TLS handshake over a byte stream (futures-rustls), the
//! [`SecurityUpgrader`] implementation, and the secured stream.

use std::io::{IoSlice, IoSliceMut};
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::io::{AsyncRead, AsyncWrite};
use futures_rustls::{LazyConfigAcceptor, TlsConnector};
use lp2p_core::{
    Connection, Error, Keypair, Multiaddr, PeerId, ProtocolId, PublicKey, Role, SecureConnection,
    SecurityUpgrader, UpgradeContext,
};
use rustls::pki_types::ServerName;

use crate::config::{ALPN_LIBP2P, LocalCertificate, TlsConfig, client_config, server_config};
use crate::verifier::Libp2pCertVerifier;
use crate::{PROTOCOL_ID, TlsError, certificate};

/// The `/tls/1.0.0` security channel: TLS 1.3 with the libp2p certificate, for byte-stream
/// transports.
///
/// It needs no key of its own: the identity key, the muxers to offer over ALPN and the
/// runtime for the handshake timeout come from the [`UpgradeContext`] of each upgrade. The
/// certificate is generated on first use for a host key and reused after that.
#[derive(Debug, Default)]
pub struct Tls {
    config: TlsConfig,
    certificate: Mutex<Option<LocalCertificate>>,
}

/// What a finished handshake proved, besides the encrypted stream.
#[derive(Debug, Clone)]
pub struct TlsSession {
    /// The remote's identity key.
    pub remote_key: PublicKey,
    /// The remote's peer id (derived from `remote_key`).
    pub remote_peer: PeerId,
    /// The muxer agreed over ALPN, if the agreed protocol was a muxer rather than `libp2p`.
    pub early_muxer: Option<ProtocolId>,
}

impl Tls {
    /// The channel with the default [`TlsConfig`].
    pub fn new() -> Tls {
        Tls::default()
    }

    /// The channel with the given settings.
    pub fn with_config(config: TlsConfig) -> Tls {
        Tls {
            config,
            certificate: Mutex::new(None),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &TlsConfig {
        &self.config
    }

    /// Our certificate for `host_key`, generated the first time it is asked for.
    pub fn local_certificate(&self, host_key: &Keypair) -> Result<LocalCertificate, TlsError> {
        let peer = host_key.public().to_peer_id();
        let mut cached = self
            .certificate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(cert) = cached.as_ref().filter(|c| c.peer_id() == peer) {
            return Ok(cert.clone());
        }
        let cert = LocalCertificate::generate(host_key)?;
        *cached = Some(cert.clone());
        Ok(cert)
    }

    /// Runs the handshake over any byte stream, within the configured timeout, and returns
    /// the encrypted stream with what the handshake proved.
    ///
    /// As the initiator (TLS client) it offers `ctx.muxers` followed by `libp2p` over ALPN;
    /// as the responder it picks the first protocol of the client's list that it supports
    /// (the client's preference, as the inlined-muxer-negotiation spec asks) and aborts the
    /// handshake when there is none.
    pub async fn secure<T>(
        &self,
        io: T,
        role: Role,
        ctx: &UpgradeContext,
        expected: Option<PeerId>,
    ) -> Result<(TlsOutput<T>, TlsSession), TlsError>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let local = self.local_certificate(&ctx.local_key)?;
        let alpn = alpn_list(&ctx.muxers);
        let timeout = self.config.get_handshake_timeout();
        let handshake = async {
            match role {
                Role::Initiator => connect(io, &local, expected, alpn).await,
                Role::Responder => accept(io, &local, alpn).await,
            }
        };
        let stream = match ctx.runtime.timeout(timeout, handshake).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => {
                tracing::debug!(%role, error = %err, "TLS handshake failed");
                return Err(err);
            }
            Err(_) => {
                tracing::debug!(%role, ?timeout, "TLS handshake timed out");
                return Err(TlsError::Timeout(timeout));
            }
        };
        let (_, state) = stream.get_ref();
        let remote_key = match state.peer_certificates() {
            // The verifier accepted exactly this certificate in this handshake.
            Some([cert]) => certificate::host_key(cert.as_ref())?,
            Some([]) | None => return Err(TlsError::NoCertificate),
            Some(certs) => return Err(TlsError::TooManyCertificates { count: certs.len() }),
        };
        let early_muxer = state
            .alpn_protocol()
            .filter(|p| *p != ALPN_LIBP2P)
            .and_then(|p| {
                ctx.muxers
                    .iter()
                    .find(|m| m.as_str().as_bytes() == p)
                    .cloned()
            });
        let session = TlsSession {
            remote_peer: remote_key.to_peer_id(),
            remote_key,
            early_muxer,
        };
        tracing::debug!(
            %role,
            peer = %session.remote_peer,
            early_muxer = ?session.early_muxer,
            "TLS handshake complete"
        );
        Ok((TlsOutput { inner: stream }, session))
    }

    async fn secure_boxed(
        &self,
        conn: Box<dyn Connection>,
        role: Role,
        ctx: &UpgradeContext,
        expected: Option<PeerId>,
    ) -> Result<SecureConnection, Error> {
        let remote = conn.remote_addr();
        let (output, session) =
            self.secure(conn, role, ctx, expected)
                .await
                .inspect_err(|err| {
                    tracing::debug!(%remote, error = %err, "refusing a TLS connection");
                })?;
        Ok(
            SecureConnection::new(Box::new(output), session.remote_key, PROTOCOL_ID)
                .with_early_muxer(session.early_muxer),
        )
    }
}

/// The ALPN list we offer (as a client) or support (as a server): our muxers in preference
/// order, then `libp2p`.
fn alpn_list(muxers: &[ProtocolId]) -> Vec<Vec<u8>> {
    muxers
        .iter()
        .map(|m| m.as_str().as_bytes().to_vec())
        .chain(std::iter::once(ALPN_LIBP2P.to_vec()))
        .collect()
}

async fn connect<T>(
    io: T,
    local: &LocalCertificate,
    expected: Option<PeerId>,
    alpn: Vec<Vec<u8>>,
) -> Result<futures_rustls::TlsStream<T>, TlsError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let config = client_config(local, Libp2pCertVerifier::expecting(expected), alpn)?;
    // rustls needs a server name; with SNI off and an IP address nothing of it is sent.
    let name = ServerName::IpAddress(Ipv4Addr::UNSPECIFIED.into());
    let stream = TlsConnector::from(Arc::new(config))
        .connect(name, io)
        .await
        .map_err(TlsError::from_handshake_io)?;
    Ok(stream.into())
}

async fn accept<T>(
    io: T,
    local: &LocalCertificate,
    supported: Vec<Vec<u8>>,
) -> Result<futures_rustls::TlsStream<T>, TlsError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io)
        .await
        .map_err(TlsError::from_handshake_io)?;
    // rustls picks by the server's order; the spec wants the client's. So offer rustls only
    // the client's first choice that we support; with no overlap, offer our whole list and
    // rustls aborts with `no_application_protocol`.
    let chosen = start.client_hello().alpn().and_then(|mut offered| {
        offered.find_map(|p| supported.iter().find(|ours| ours.as_slice() == p).cloned())
    });
    let alpn = chosen.map_or(supported, |p| vec![p]);
    let config = server_config(local, Libp2pCertVerifier::new(), alpn)?;
    let stream = start
        .into_stream(Arc::new(config))
        .await
        .map_err(TlsError::from_handshake_io)?;
    Ok(stream.into())
}

/// An encrypted stream after the handshake: `AsyncRead` + `AsyncWrite` through TLS records,
/// and a [`Connection`] when the inner stream is one.
///
/// `poll_close` sends TLS `close_notify` and closes the inner stream's write side.
#[derive(Debug)]
pub struct TlsOutput<T> {
    inner: futures_rustls::TlsStream<T>,
}

impl<T> TlsOutput<T> {
    /// The inner stream.
    pub fn get_ref(&self) -> &T {
        self.inner.get_ref().0
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsOutput<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }

    fn poll_read_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read_vectored(cx, bufs)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsOutput<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl<T: Connection> Connection for TlsOutput<T> {
    fn local_addr(&self) -> Multiaddr {
        self.get_ref().local_addr()
    }

    fn remote_addr(&self) -> Multiaddr {
        self.get_ref().remote_addr()
    }
}

#[async_trait]
impl SecurityUpgrader for Tls {
    fn protocol_id(&self) -> &'static str {
        PROTOCOL_ID
    }

    async fn secure_inbound(
        &self,
        conn: Box<dyn Connection>,
        ctx: &UpgradeContext,
    ) -> Result<SecureConnection, Error> {
        self.secure_boxed(conn, Role::Responder, ctx, None).await
    }

    async fn secure_outbound(
        &self,
        conn: Box<dyn Connection>,
        ctx: &UpgradeContext,
        expected: Option<PeerId>,
    ) -> Result<SecureConnection, Error> {
        self.secure_boxed(conn, Role::Initiator, ctx, expected)
            .await
    }
}
