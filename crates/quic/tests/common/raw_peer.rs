//! A scripted QUIC client for bad-input tests: quinn-proto driven by hand over a blocking
//! std UDP socket, with whatever TLS configuration (certificate, key) the test wants.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use lp2p_core::Keypair;
use lp2p_tls::rustls;
use lp2p_tls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use lp2p_tls::{ALPN_LIBP2P, Libp2pCertVerifier, certificate, crypto_provider};
use quinn_proto::crypto::rustls::QuicClientConfig;
use quinn_proto::{
    ClientConfig, Connection, ConnectionError, ConnectionHandle, DatagramEvent, Endpoint,
    EndpointConfig, Event,
};

/// A TLS client configuration presenting `cert` signed by `key` as they are.
pub fn tls_config(cert: Vec<u8>, key: Vec<u8>) -> rustls::ClientConfig {
    let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key));
    let signing = rustls::crypto::ring::sign::any_ecdsa_type(&key).unwrap();
    let resolver = rustls::sign::SingleCertAndKey::from(rustls::sign::CertifiedKey::new(
        vec![CertificateDer::from(cert)],
        signing,
    ));
    let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Libp2pCertVerifier::new()))
        .with_client_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![ALPN_LIBP2P.to_vec()];
    config.enable_sni = false;
    config
}

/// A valid libp2p client configuration for a fresh identity.
pub fn good_tls_config() -> rustls::ClientConfig {
    let generated = certificate::generate(&Keypair::generate_ed25519()).unwrap();
    tls_config(
        generated.certificate.to_vec(),
        generated.private_key.secret_der().to_vec(),
    )
}

/// A certificate with no libp2p extension, and its key.
pub fn cert_without_extension() -> (Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::default()
        .self_signed(&key)
        .unwrap();
    (cert.der().to_vec(), key.serialize_der())
}

/// A valid libp2p certificate, and a key that is not its key.
pub fn cert_with_foreign_key() -> (Vec<u8>, Vec<u8>) {
    let generated = certificate::generate(&Keypair::generate_ed25519()).unwrap();
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    (generated.certificate.to_vec(), other.serialize_der())
}

/// A connection of the raw client and how it ended up (connected, lost, pending).
type RawConn = (
    ConnectionHandle,
    Connection,
    Option<Result<(), ConnectionError>>,
);

pub struct RawClient {
    pub socket: UdpSocket,
    endpoint: Endpoint,
    conns: Vec<RawConn>,
    buf: Vec<u8>,
    /// Bytes of every datagram received so far.
    pub received: usize,
    /// The largest datagram received so far.
    pub largest_datagram: usize,
}

impl Default for RawClient {
    fn default() -> Self {
        RawClient::new()
    }
}

impl RawClient {
    pub fn new() -> RawClient {
        RawClient::with_endpoint_config(EndpointConfig::default())
    }

    /// A client that advertises `max_udp_payload_size` (quinn-proto's default is 1472).
    pub fn with_max_udp_payload(max_udp_payload_size: u16) -> RawClient {
        let mut config = EndpointConfig::default();
        config.max_udp_payload_size(max_udp_payload_size).unwrap();
        RawClient::with_endpoint_config(config)
    }

    fn with_endpoint_config(config: EndpointConfig) -> RawClient {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        RawClient {
            socket,
            endpoint: Endpoint::new(Arc::new(config), None, false, None),
            conns: Vec::new(),
            buf: Vec::new(),
            received: 0,
            largest_datagram: 0,
        }
    }

    /// Starts a connection; returns its index.
    pub fn connect(&mut self, server: SocketAddr, tls: rustls::ClientConfig) -> usize {
        let crypto = QuicClientConfig::try_from(Arc::new(tls)).unwrap();
        let config = ClientConfig::new(Arc::new(crypto));
        let (handle, conn) = self
            .endpoint
            .connect(Instant::now(), config, server, "l")
            .unwrap();
        self.conns.push((handle, conn, None));
        self.conns.len() - 1
    }

    /// The connection at `index`, for opening streams and the like.
    pub fn conn(&mut self, index: usize) -> &mut Connection {
        &mut self.conns[index].1
    }

    /// How connection `index` ended up: connected, failed, or still in progress.
    pub fn outcome(&self, index: usize) -> Option<&Result<(), ConnectionError>> {
        self.conns[index].2.as_ref()
    }

    /// Runs every connection for `duration`, or until `done` says stop.
    pub fn drive(&mut self, duration: Duration, mut done: impl FnMut(&mut RawClient) -> bool) {
        let deadline = Instant::now() + duration;
        let mut recv = vec![0u8; 65536];
        while Instant::now() < deadline && !done(self) {
            let now = Instant::now();
            for (_, conn, outcome) in &mut self.conns {
                if conn.poll_timeout().is_some_and(|t| t <= now) {
                    conn.handle_timeout(now);
                }
                loop {
                    self.buf.clear();
                    let Some(t) = conn.poll_transmit(now, 1, &mut self.buf) else {
                        break;
                    };
                    let _ = self.socket.send_to(&self.buf[..t.size], t.destination);
                }
                while let Some(event) = conn.poll() {
                    match event {
                        Event::Connected => *outcome = Some(Ok(())),
                        Event::ConnectionLost { reason } => *outcome = Some(Err(reason)),
                        _ => {}
                    }
                }
            }
            for i in 0..self.conns.len() {
                while let Some(event) = self.conns[i].1.poll_endpoint_events() {
                    let handle = self.conns[i].0;
                    if let Some(back) = self.endpoint.handle_event(handle, event) {
                        self.conns[i].1.handle_event(back);
                    }
                }
            }
            if let Ok((len, from)) = self.socket.recv_from(&mut recv) {
                self.received += len;
                self.largest_datagram = self.largest_datagram.max(len);
                self.buf.clear();
                let data = BytesMut::from(&recv[..len]);
                if let Some(DatagramEvent::ConnectionEvent(handle, event)) =
                    self.endpoint
                        .handle(Instant::now(), from, None, None, data, &mut self.buf)
                    && let Some((_, conn, _)) = self.conns.iter_mut().find(|c| c.0 == handle)
                {
                    conn.handle_event(event);
                }
            }
        }
    }
}
