//! The `/mplex/6.7.0` stream muxer for lp2p: a sans-IO core and an async shell.
//!
//! mplex runs many byte streams over one connection with frames of
//! `uvarint(stream << 3 | flag) || uvarint(length) || data` ([`wire`]). It has no flow
//! control, so this implementation bounds what a remote can make it hold: a share of receive
//! memory per stream and a connection-wide cap (at its share a stream waits for a reader that
//! is reading; the stream of an idle reader borrows from the connection instead, so it stalls
//! no other stream, and is reset when its reader stays idle for the stall timeout or the
//! memory is needed), a cap on open streams per direction, and a cap on frames queued for
//! the socket. Every limit has a named default and a knob on
//! [`MplexConfig`].
//!
//! The crate has three layers:
//! - [`wire`]: bytes to frames and back, every header checked before use;
//! - [`core`]: [`Session`], the protocol state machine: bytes in, frames and [`Event`]s out,
//!   no I/O;
//! - the shell: the async shell every lp2p muxer shares (`lp2p-muxer-shell`) runs the
//!   session with one task per connection that reads frames, dispatches them, and writes the
//!   frames of every stream coalesced into few socket writes. [`Mplex`] implements
//!   [`lp2p_core::MuxerUpgrader`]; [`MplexConnection`] and [`MplexStream`] implement
//!   [`lp2p_core::MuxedConnection`] and [`lp2p_core::Stream`].
//!
//! # Example
//!
//! Two ends of an in-memory connection, one stream, a request and a response:
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use lp2p_core::{Role, RuntimeHandle};
//! use lp2p_memory::MemoryConnection;
//! use lp2p_mplex::Mplex;
//!
//! # lp2p_core::runtime::block_on(async {
//! let runtime = RuntimeHandle::default();
//! let (a, b) = MemoryConnection::pair(64 * 1024, "/memory/1".parse()?, "/memory/2".parse()?);
//! let mplex = Mplex::default();
//! let dialer = mplex.start(a, Role::Initiator, &runtime); // `upgrade` does this for a host
//! let listener = mplex.start(b, Role::Responder, &runtime);
//!
//! let mut out = dialer.open().await?;
//! out.write_all(b"ping").await?;
//! out.close().await?; // half-close: the listener reads EOF after "ping"
//!
//! let mut inbound = listener.accept().await?;
//! let mut request = Vec::new();
//! inbound.read_to_end(&mut request).await?;
//! assert_eq!(request, b"ping");
//! inbound.write_all(b"pong").await?;
//! inbound.close().await?;
//!
//! let mut response = Vec::new();
//! out.read_to_end(&mut response).await?;
//! assert_eq!(response, b"pong");
//! dialer.close().await; // flush, close the socket
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! With a host, pass `Mplex::default()` (or `Mplex::new(config)`) as a muxer: it negotiates
//! as `/mplex/6.7.0` and calls [`MuxerUpgrader::upgrade`](lp2p_core::MuxerUpgrader::upgrade)
//! on each secured connection.

mod config;
pub mod core;
mod error;
mod id;
mod shell;
pub mod wire;

pub use config::{
    DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_CONNECTION_BUFFER, DEFAULT_MAX_SEND_BUFFER,
    DEFAULT_MAX_STREAM_BUFFER, DEFAULT_MAX_STREAMS, DEFAULT_READ_BUFFER_SIZE, DEFAULT_READER_GRACE,
    DEFAULT_SPLIT_SIZE, DEFAULT_STALL_TIMEOUT, MAX_MESSAGE_SIZE, MplexConfig, PROTOCOL_ID,
};
pub use core::{Event, Session, Stats};
pub use error::MplexError;
pub use id::StreamId;
pub use shell::{Mplex, MplexConnection, MplexStream};
