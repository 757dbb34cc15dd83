//! TCP transport for lp2p.
//!
//! Dials and listens on `/ip4/ADDR/tcp/PORT` and `/ip6/ADDR/tcp/PORT` (a trailing
//! `/p2p/<peer id>` is accepted when dialing and ignored by the socket). Sockets are
//! `async-io` ones, so the transport runs under async-std and smol alike. `TCP_NODELAY` is on
//! by default: libp2p protocols write small frames (multistream-select, handshakes, muxer
//! headers) that Nagle's algorithm would hold back.
//!
//! Anything else (`/udp/...`, `/dns/...`, `/memory/...`) is refused by
//! [`can_dial`](lp2p_core::RawTransport::can_dial) and fails with
//! [`Error::UnsupportedAddress`](lp2p_core::Error::UnsupportedAddress).
//!
//! A listener survives failed accepts: a connection reset before it was accepted is skipped,
//! and running out of file descriptors (`EMFILE`) pauses accepting briefly instead of ending
//! the listener.
//!
//! # Example
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use lp2p_core::{DialOpts, RawTransport};
//! use lp2p_tcp::TcpTransport;
//!
//! # lp2p_core::runtime::block_on(async {
//! let tcp = TcpTransport::default();
//! let mut listener = tcp.listen(&"/ip4/127.0.0.1/tcp/0".parse()?).await?;
//! let addr = listener.local_addr(); // the port actually bound
//!
//! let mut client = tcp.dial(&addr, &DialOpts::default()).await?;
//! let mut server = listener.accept().await?;
//! client.write_all(b"hi").await?;
//! let mut buf = [0u8; 2];
//! server.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"hi");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod address;
mod connection;
mod transport;

pub use address::{multiaddr_to_socketaddr, socketaddr_to_multiaddr};
pub use connection::TcpConnection;
pub use transport::{ACCEPT_ERROR_BACKOFF, LISTEN_BACKLOG, TcpListener, TcpTransport};
