//! The QUIC transport for lp2p: `/ip4|ip6/ADDR/udp/PORT/quic-v1`, one round trip to an
//! authenticated, multiplexed connection, on async-std or smol.
//!
//! - The QUIC state machine is quinn-proto (sans-IO, like every lp2p protocol core); this
//!   crate is its async shell on lp2p's runtime seam: UDP sockets and readiness from async-io
//!   (with quinn-udp for GSO/GRO and ECN), timers, spawning and the clock from the
//!   [`TransportContext`](lp2p_core::TransportContext)'s runtime. No tokio.
//! - The handshake is the libp2p TLS handshake (`tls/tls.md`) with ALPN `libp2p`, using
//!   lp2p-tls's certificate and verifier; no 0-RTT, path MTU discovery on.
//! - [`QuicTransport`] implements [`lp2p_core::Transport`] directly: `dial` and the
//!   listener's `Incoming::upgrade` yield an `Established` whose muxer is a
//!   [`QuicConnection`] (QUIC's own bidirectional streams as [`QuicStream`]s), security
//!   `/tls/1.0.0` and muxer `quic-v1`. The listener hands out each inbound attempt before
//!   any handshake work, so the swarm admits or refuses it by address first.
//! - One UDP socket per listen address, also used for dialing (see [`QuicTransport`]);
//!   IPv4 and IPv6. Limits, windows and timeouts are in [`QuicConfig`]; what was refused
//!   or lost is counted in [`QuicStats`].
//!
//! # Example
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use lp2p_core::{DialOpts, Keypair, RuntimeHandle, Transport, TransportContext};
//! use lp2p_quic::QuicTransport;
//!
//! # lp2p_core::runtime::block_on(async {
//! let server = TransportContext::new(Keypair::generate_ed25519(), RuntimeHandle::default());
//! let client = TransportContext::new(Keypair::generate_ed25519(), RuntimeHandle::default());
//! let (quic_a, quic_b) = (QuicTransport::default(), QuicTransport::default());
//!
//! let mut listener = quic_b.listen(&server, &"/ip4/127.0.0.1/udp/0/quic-v1".parse()?).await?;
//! let addr = listener.local_addrs()[0].clone();
//! let accept = async {
//!     let incoming = listener.accept().await?; // before any handshake work
//!     let established = incoming.upgrade.await?;
//!     let mut stream = established.muxer.accept_stream().await?;
//!     let mut buf = [0u8; 5];
//!     stream.read_exact(&mut buf).await?;
//!     stream.write_all(&buf).await?;
//!     stream.close().await?;
//!     Ok::<_, Box<dyn std::error::Error>>(established)
//! };
//! let dial = async {
//!     let established = quic_a.dial(&client, &addr, DialOpts::to_peer(Some(server.local_peer_id()))).await?;
//!     let mut stream = established.muxer.open_stream().await?;
//!     stream.write_all(b"hello").await?;
//!     stream.close().await?;
//!     let mut echo = Vec::new();
//!     stream.read_to_end(&mut echo).await?;
//!     assert_eq!(echo, b"hello");
//!     Ok::<_, Box<dyn std::error::Error>>(established)
//! };
//! let (inbound, outbound) = futures::try_join!(accept, dial)?;
//! assert_eq!(inbound.peer, client.local_peer_id());
//! assert_eq!(outbound.security, "/tls/1.0.0");
//! assert_eq!(outbound.muxer_protocol, "quic-v1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

#![cfg_attr(
    not(test),
    warn(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

mod addr;
mod config;
mod connection;
mod credit;
mod driver;
mod endpoint;
mod error;
mod punch;
mod socket;
mod stats;
mod stream;
mod transport;
mod window;

pub use config::{
    DEFAULT_CONNECTION_RECEIVE_WINDOW, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_INCOMING_BUFFER_SIZE,
    DEFAULT_KEEP_ALIVE_INTERVAL, DEFAULT_LOOPBACK_MTU, DEFAULT_MAX_CONCURRENT_STREAMS,
    DEFAULT_MAX_IDLE_TIMEOUT, DEFAULT_MAX_PENDING_INCOMING, DEFAULT_SEND_WINDOW,
    DEFAULT_SOCKET_BUFFER_SIZE, DEFAULT_STREAM_RECEIVE_WINDOW, QuicConfig,
};
pub use connection::QuicConnection;
pub use credit::INITIAL_CONCURRENT_STREAMS;
pub use driver::{CLOSE_NORMAL, CLOSE_REFUSED, STREAM_RESET};
pub use error::QuicError;
pub use stats::QuicStats;
pub use stream::QuicStream;
pub use transport::{HOLE_PUNCH_INITIAL_RTT, QuicListener, QuicTransport, SECURITY_PROTOCOL};
pub use window::{INITIAL_RECEIVE_WINDOW, MIN_EPOCH};

/// The protocol id reported as the muxer of QUIC connections (QUIC's native streams).
pub const MUXER_PROTOCOL: &str = error::MUXER_PROTOCOL;
