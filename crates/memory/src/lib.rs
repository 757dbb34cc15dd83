//! In-process transport for lp2p on `/memory/N` addresses.
//!
//! Connections never leave the process: a dial to `/memory/N` reaches the listener bound to
//! `N` in the same process through a bounded in-memory pipe. It is meant for tests,
//! simulations of many nodes, and benchmarks that should measure protocol code rather than
//! the kernel. Listening on `/memory/0` picks a free number.
//!
//! [`MemoryConnection::pair`] gives two connected ends directly, without a listener, for
//! unit tests of anything that runs over a [`Connection`](lp2p_core::Connection).
//!
//! # Example
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use lp2p_core::{DialOpts, Multiaddr, RawTransport};
//! use lp2p_memory::MemoryTransport;
//!
//! # lp2p_core::runtime::block_on(async {
//! let transport = MemoryTransport::default();
//! let mut listener = transport.listen(&"/memory/0".parse()?).await?;
//! let addr = listener.local_addr(); // e.g. /memory/4294967296
//!
//! let mut client = transport.dial(&addr, &DialOpts::default()).await?;
//! let mut server = listener.accept().await?;
//! client.write_all(b"ping").await?;
//! let mut buf = [0u8; 4];
//! server.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"ping");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod connection;
mod pipe;
mod transport;

pub use connection::MemoryConnection;
pub use transport::{DEFAULT_BACKLOG, DEFAULT_PIPE_CAPACITY, MemoryListener, MemoryTransport};
