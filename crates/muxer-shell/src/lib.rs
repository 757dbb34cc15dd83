//! The async shell shared by lp2p's stream muxers.
//!
//! A muxer in lp2p is written as a sans-IO core (bytes and `now` in; frames, events and
//! deadlines out; no socket, task or clock) that implements [`MuxerCore`]. This crate is
//! everything around it, written once for every muxer (`lp2p-yamux`, `lp2p-mplex`, and any
//! muxer written outside the workspace):
//!
//! - [`ShellConnection::start`] spawns one task per connection that reads the socket into the
//!   core (straight into a stream's buffer when the core offers one), writes what the core
//!   queued (the frames of every stream coalesced into few large writes), follows the core's
//!   deadlines through the runtime's clock, stops reading while the core pauses input and
//!   resumes when a reader makes room, and on close flushes (for at most the close timeout)
//!   before it closes the socket.
//! - [`ShellConnection`] opens and accepts [`ShellStream`]s and implements
//!   [`lp2p_core::MuxedConnection`]; [`ShellStream`] implements `AsyncRead`, `AsyncWrite` and
//!   [`lp2p_core::Stream`]. Both call into the core under one mutex (each locked section is
//!   one core call) and sleep on wakers the core's [`Event`]s wake.
//!
//! Time is read only through [`RuntimeHandle::now`](lp2p_core::RuntimeHandle::now), so a
//! virtual-time runtime drives the shell as it drives everything else.
//!
//! # Example
//!
//! The smallest core there is: the connection carries one stream each way, with no framing
//! at all (the initiator opens it, the responder accepts it). Real cores (yamux, mplex) add
//! frames, many streams, flow control and limits; the shell does not change.
//!
//! ```
//! use std::io;
//! use std::time::Instant;
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use lp2p_core::{Role, RuntimeHandle};
//! use lp2p_memory::MemoryConnection;
//! use lp2p_muxer_shell::{Event, MuxerCore, ShellConfig, ShellConnection};
//!
//! /// One stream (id 0) over the whole connection.
//! #[derive(Default)]
//! struct Raw { initiator: bool, taken: bool, received: Vec<u8>, eof: bool, out: Vec<u8>,
//!              closed: bool, events: Vec<Event<u8>> }
//!
//! impl MuxerCore for Raw {
//!     type StreamId = u8;
//!     type Error = io::Error;
//!     const PROTOCOL_ID: &'static str = "/raw";
//!
//!     fn handle_input(&mut self, input: &[u8], _now: Instant) -> io::Result<usize> {
//!         self.received.extend_from_slice(input);
//!         self.events.push(Event::Readable(0));
//!         Ok(input.len())
//!     }
//!     fn wants_input(&self) -> bool { !self.eof && self.received.len() < 1 << 20 }
//!     fn handle_eof(&mut self) { self.eof = true; self.events.push(Event::Readable(0)); }
//!     fn handle_io_error(&mut self, _: io::Error) { self.handle_eof(); self.close() }
//!     fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
//!         if self.out.is_empty() { return false }
//!         out.append(&mut self.out);
//!         self.events.push(Event::Writable(0)); // room again for a blocked writer
//!         true
//!     }
//!     fn has_transmit(&self) -> bool { !self.out.is_empty() }
//!     fn poll_timeout(&self) -> Option<Instant> { None }
//!     fn handle_timeout(&mut self, _now: Instant) {}
//!     fn poll_event(&mut self) -> Option<Event<u8>> { self.events.pop() }
//!     fn close(&mut self) { self.closed = true; self.events.push(Event::Closed) }
//!     fn is_closed(&self) -> bool { self.closed }
//!     fn num_streams(&self) -> usize { usize::from(self.taken) }
//!     fn open_stream(&mut self) -> io::Result<Option<u8>> { self.accept_stream() }
//!     fn accept_stream(&mut self) -> io::Result<Option<u8>> {
//!         if self.taken || self.closed { return Err(io::ErrorKind::Unsupported.into()) }
//!         self.taken = true;
//!         Ok(Some(0))
//!     }
//!     fn read(&mut self, _: u8, buf: &mut [u8], _: Instant) -> io::Result<Option<usize>> {
//!         let n = buf.len().min(self.received.len());
//!         buf[..n].copy_from_slice(&self.received[..n]);
//!         self.received.drain(..n);
//!         Ok(if n > 0 || self.eof { Some(n) } else { None })
//!     }
//!     fn write(&mut self, _: u8, data: &[u8]) -> io::Result<Option<usize>> {
//!         if self.closed { return Err(io::ErrorKind::BrokenPipe.into()) }
//!         if self.out.len() >= 1 << 16 { return Ok(None) } // back-pressure
//!         self.out.extend_from_slice(data);
//!         Ok(Some(data.len()))
//!     }
//!     fn close_stream(&mut self, _: u8) -> io::Result<()> { Ok(()) }
//!     fn reset_stream(&mut self, _: u8) { self.close() }
//!     fn drop_stream(&mut self, _: u8) {}
//! }
//!
//! # lp2p_core::runtime::block_on(async {
//! let rt = RuntimeHandle::default();
//! let (a, b) = MemoryConnection::pair(64 * 1024, "/memory/1".parse()?, "/memory/2".parse()?);
//! let config = ShellConfig::default();
//! let client = ShellConnection::start(a, Raw::default(), &config, &rt, Role::Initiator, None);
//! let server = ShellConnection::start(b, Raw::default(), &config, &rt, Role::Responder, None);
//!
//! let mut out = client.open().await?;
//! out.write_all(b"hello").await?;
//! client.close().await; // flushed, then the socket is closed: the server reads EOF
//!
//! let mut inbound = server.accept().await?;
//! let mut msg = Vec::new();
//! inbound.read_to_end(&mut msg).await?;
//! assert_eq!(msg, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod config;
mod connection;
mod driver;
pub mod id_map;
mod muxer;
mod read_buffer;
mod shared;
mod stream;
#[cfg(test)]
mod tests;

pub use config::{
    DEFAULT_CLOSE_TIMEOUT, DEFAULT_READ_BUFFER_SIZE, MAX_READ_BUFFER_SIZE, MIN_READ_BUFFER_SIZE,
    POLL_BUDGET, ShellConfig,
};
pub use connection::ShellConnection;
pub use muxer::{Event, MuxerCore};
pub use stream::ShellStream;
