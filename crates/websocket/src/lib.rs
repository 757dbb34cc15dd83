//! WebSocket transport for lp2p (specs `websockets/README.md`, RFC 6455).
//!
//! [`WsTransport`] is a byte-stream transport ([`lp2p_core::RawTransport`]): it dials and
//! listens on
//!
//! | address | what |
//! |---|---|
//! | `/ip4/IP/tcp/PORT/ws` | WebSocket over TCP |
//! | `/ip4/IP/tcp/PORT/tls/ws` (legacy `/wss`) | WebSocket over TLS (web PKI) over TCP |
//! | `/ip4/IP/tcp/PORT/tls/sni/NAME/ws` | the same, checking the certificate for `NAME` |
//!
//! (`/ip6` alike; a trailing `/p2p/ID` is accepted when dialing; without `/tcp/PORT` the
//! ports are 80 and 443.) Names (`/dns4/example.com/tcp/443/tls/ws`) are resolved before
//! the transport sees them, by `lp2p-dns`, which keeps the name as `/tls/sni/NAME` so the
//! certificate is checked against it.
//!
//! Every write goes out as one binary frame; reads yield the payload of the remote's binary
//! messages, so the swarm negotiates the security channel and the muxer on top exactly as
//! over TCP. Pings are answered, close frames answered and turned into end-of-stream, and
//! text frames, unmasked client frames, oversized frames or messages and every other
//! framing violation end the connection with the matching close code and an error that
//! names it. [`WsConfig`] holds the limits (with the reasons for the defaults).
//!
//! The protocol lives in a sans-IO core — [`frame`] (headers, masking), [`session`] (the
//! connection state machine) and [`handshake`] (the HTTP/1.1 upgrade) — driven by a thin
//! async shell ([`WsConnection`]). TLS is rustls with the ring provider ([`TlsConfig`]).
//!
//! # Example
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use lp2p_core::{DialOpts, RawListener, RawTransport};
//! use lp2p_websocket::{TlsConfig, WsTransport};
//!
//! # lp2p_core::runtime::block_on(async {
//! // A listener with a self-signed certificate, and a dialer that trusts it.
//! let (tls, cert) = TlsConfig::new().with_self_signed(&["127.0.0.1"])?;
//! let server = WsTransport::new().with_tls(tls);
//! let client = WsTransport::new().with_tls(TlsConfig::new().with_roots([cert])?);
//!
//! let mut listener = server.listen(&"/ip4/127.0.0.1/tcp/0/tls/ws".parse()?).await?;
//! let addr = listener.local_addr(); // /ip4/127.0.0.1/tcp/PORT/tls/ws
//! let dial = async { client.dial(&addr, &DialOpts::default()).await };
//! let (dialed, accepted) = futures::join!(dial, listener.accept());
//! let (mut dialed, mut accepted) = (dialed?, accepted?);
//!
//! dialed.write_all(b"hello").await?;
//! dialed.flush().await?;
//! let mut buf = [0u8; 5];
//! accepted.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

pub mod addr;
pub mod close_code;
mod config;
mod connection;
mod error;
pub mod frame;
pub mod handshake;
pub mod session;
mod tls;
mod transport;

pub use config::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_FRAME_LEN, DEFAULT_MAX_HANDSHAKE_LEN,
    DEFAULT_MAX_MESSAGE_LEN, DEFAULT_MAX_PENDING_HANDSHAKES, DEFAULT_MAX_WRITE_FRAME,
    DEFAULT_READ_BUFFER, DEFAULT_WRITE_BUFFER, Limits, MAX_HANDSHAKE_HEADERS, WsConfig,
};
pub use connection::WsConnection;
pub use error::WsError;
pub use tls::{TlsConfig, self_signed};
pub use transport::{MaybeTls, WsListener, WsStream, WsTransport};

/// Re-exported for [`TlsConfig`]'s certificate and key types.
pub use rustls::pki_types;
