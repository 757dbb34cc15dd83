//! The `/yamux/1.0.0` stream muxer for lp2p: many independent byte streams over one secured
//! connection, spec-exact (hashicorp `spec.md` and the libp2p `yamux` spec) and tested against
//! rust-libp2p's `yamux` crate.
//!
//! [`Yamux`] implements [`lp2p_core::MuxerUpgrader`]: `upgrade` spawns one task per
//! connection and returns the [`YamuxConnection`] handle, from which streams are opened and
//! accepted. The side that dialed ([`Role::Initiator`](lp2p_core::Role)) is the yamux client
//! and opens odd stream ids.
//!
//! The crate has three layers:
//! - [`wire`]: the 12-byte frame header, parsed checked and emitted byte for byte;
//! - [`core`]: the sans-IO [`Connection`] (bytes and `now` in, frames and events out) that
//!   holds every rule of the protocol: flow control with 256 KiB initial windows, window
//!   updates as the reader consumes, window auto-tuning up to 16 MiB per stream when the
//!   reader keeps up within an RTT, a memory cap across all streams, the ACK and accept
//!   backlogs, stream limits, Ping (answered, plus keep-alive with RTT measurement) and GoAway;
//! - the shell: the async shell every lp2p muxer shares (`lp2p-muxer-shell`) runs the core:
//!   stream writes land in one shared send buffer that the connection task writes out in few
//!   large writes, and large Data bodies are read from the socket straight into the receiving
//!   stream's buffer. [`YamuxConnection`] and [`YamuxStream`] are its handles.
//!
//! See [`YamuxConfig`] for every limit and its default.
//!
//! # Example
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use lp2p_core::{Role, RuntimeHandle};
//! use lp2p_memory::MemoryConnection;
//! use lp2p_yamux::Yamux;
//!
//! # lp2p_core::runtime::block_on(async {
//! let (a, b) = MemoryConnection::pair(64 * 1024, "/memory/1".parse()?, "/memory/2".parse()?);
//! let rt = RuntimeHandle::default();
//! let yamux = Yamux::default();
//! let client = yamux.start(a, Role::Initiator, &rt); // `upgrade` does this for a host
//! let server = yamux.start(b, Role::Responder, &rt);
//!
//! let mut outbound = client.open().await?;
//! outbound.write_all(b"hello").await?;
//! outbound.close().await?; // half-close: the server reads EOF after "hello"
//!
//! let mut inbound = server.accept().await?;
//! let mut msg = Vec::new();
//! inbound.read_to_end(&mut msg).await?;
//! assert_eq!(msg, b"hello");
//!
//! client.close().await; // GoAway, flush, close
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! The sans-IO core on its own, two connections wired by hand:
//!
//! ```
//! use std::time::Instant;
//! use lp2p_core::Role;
//! use lp2p_yamux::{Connection, YamuxConfig};
//!
//! let now = Instant::now();
//! let mut client = Connection::new(Role::Initiator, YamuxConfig::default(), now);
//! let mut server = Connection::new(Role::Responder, YamuxConfig::default(), now);
//!
//! let id = client.open_stream()?.expect("the ACK backlog has room");
//! client.write(id, b"hi")?;
//! let mut wire = Vec::new();
//! client.poll_transmit(&mut wire); // a ping (RTT), then Data+SYN "hi"
//! server.handle_input(&wire, now)?;
//!
//! let inbound = server.accept_stream()?.expect("the client opened a stream");
//! let mut buf = [0u8; 8];
//! assert_eq!(server.read(inbound, &mut buf, now)?, Some(2));
//! assert_eq!(&buf[..2], b"hi");
//! # Ok::<(), lp2p_yamux::YamuxError>(())
//! ```

mod config;
pub mod core;
mod error;
mod id;
mod shell;
pub mod wire;

pub use config::*;
pub use core::{Connection, ConnectionStats, Event, StreamStatus};
pub use error::YamuxError;
pub use id::StreamId;
pub use shell::{Yamux, YamuxConnection, YamuxStream};
pub use wire::{Flags, FrameKind, GoAwayCode, HEADER_LEN, Header};
