//! The shell layer: the sans-IO [`Connection`] run by the async shell every lp2p muxer shares
//! (`lp2p-muxer-shell`), and the [`MuxerUpgrader`] that starts it.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::{
    MemoryAccount, MuxedConnection, MuxerUpgrader, PeerId, Role, RuntimeHandle, SecureConnection,
    UnlimitedMemory,
};
use lp2p_muxer_shell::{MuxerCore, ShellConnection, ShellStream};

use crate::config::{PROTOCOL_ID, YamuxConfig};
use crate::core::{Connection, Event};
use crate::error::YamuxError;
use crate::id::StreamId;

/// A live yamux connection: [`open`](ShellConnection::open) and
/// [`accept`](ShellConnection::accept) streams, [`close`](ShellConnection::close) (GoAway,
/// flush, close the socket); the core's state (RTT, stats, why it closed, the remote's
/// GoAway) through [`core`](ShellConnection::core).
///
/// Dropping it closes the connection as `close` would (without waiting): GoAway is sent and
/// every stream fails from then on.
pub type YamuxConnection = ShellConnection<Connection>;

/// One yamux stream: `AsyncRead + AsyncWrite`, straight into the connection's core.
/// `poll_close` half-closes (FIN); [`reset`](lp2p_core::Stream::reset) aborts both ways
/// (RST). Dropping it half-closes it if it was not closed, drops data not yet read, and
/// resets it if the remote keeps sending.
pub type YamuxStream = ShellStream<Connection>;

/// The `/yamux/1.0.0` muxer: turns a secured connection into many streams.
///
/// `Yamux::default()` uses [`YamuxConfig::default()`]; [`Yamux::new`] takes a configuration.
#[derive(Clone, Debug, Default)]
pub struct Yamux {
    config: YamuxConfig,
}

impl Yamux {
    /// A muxer with this configuration.
    pub fn new(config: YamuxConfig) -> Yamux {
        Yamux { config }
    }

    /// The configuration.
    pub fn config(&self) -> &YamuxConfig {
        &self.config
    }

    /// Starts yamux on any byte stream: spawns the connection task on `runtime` and returns
    /// the handle. [`Role::Initiator`] (the side that dialed) is the yamux client.
    ///
    /// [`MuxerUpgrader::upgrade`] calls this with the secured connection; it is public for
    /// byte streams that are not a [`SecureConnection`] (tests, benchmarks, tunnels).
    pub fn start<C>(&self, io: C, role: Role, runtime: &RuntimeHandle) -> Arc<YamuxConnection>
    where
        C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        Arc::new(self.run(io, role, runtime, None, UnlimitedMemory::boxed()))
    }

    fn run<C>(
        &self,
        io: C,
        role: Role,
        runtime: &RuntimeHandle,
        peer: Option<PeerId>,
        memory: Box<dyn MemoryAccount>,
    ) -> YamuxConnection
    where
        C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let core = Connection::with_memory(role, self.config.clone(), runtime.now(), memory);
        let shell = self.config.shell_config();
        ShellConnection::start(io, core, &shell, runtime, role, peer)
    }
}

impl MuxerUpgrader for Yamux {
    fn protocol_id(&self) -> &'static str {
        PROTOCOL_ID
    }

    fn upgrade(
        &self,
        conn: SecureConnection,
        role: Role,
        runtime: &RuntimeHandle,
        memory: Box<dyn MemoryAccount>,
    ) -> Arc<dyn MuxedConnection> {
        let peer = conn.remote_peer();
        Arc::new(self.run(conn, role, runtime, Some(peer), memory))
    }
}

impl MuxerCore for Connection {
    type StreamId = StreamId;
    type Error = YamuxError;
    const PROTOCOL_ID: &'static str = PROTOCOL_ID;

    fn handle_input(&mut self, input: &[u8], now: Instant) -> Result<usize, YamuxError> {
        // Takes everything: a protocol violation closes the core, which queues GoAway.
        Connection::handle_input(self, input, now).map(|()| input.len())
    }

    fn wants_input(&self) -> bool {
        Connection::wants_input(self)
    }

    fn input_limit(&self) -> Option<usize> {
        self.input_hint()
    }

    fn direct_input(&mut self) -> Option<&mut [u8]> {
        self.body_input_buffer()
    }

    fn commit_direct_input(&mut self, n: usize, now: Instant) {
        self.commit_body_input(n, now);
    }

    fn handle_eof(&mut self) {
        Connection::handle_eof(self);
    }

    fn handle_io_error(&mut self, err: io::Error) {
        Connection::handle_io_error(self, err);
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        Connection::poll_transmit(self, out)
    }

    fn has_transmit(&self) -> bool {
        Connection::has_transmit(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Connection::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        Connection::handle_timeout(self, now);
    }

    fn poll_event(&mut self) -> Option<Event> {
        Connection::poll_event(self)
    }

    fn close(&mut self) {
        Connection::close(self);
    }

    fn is_closed(&self) -> bool {
        Connection::is_closed(self)
    }

    fn num_streams(&self) -> usize {
        Connection::num_streams(self)
    }

    fn open_stream(&mut self) -> Result<Option<StreamId>, YamuxError> {
        Connection::open_stream(self)
    }

    fn accept_stream(&mut self) -> Result<Option<StreamId>, YamuxError> {
        Connection::accept_stream(self)
    }

    fn read(
        &mut self,
        id: StreamId,
        buf: &mut [u8],
        now: Instant,
    ) -> Result<Option<usize>, YamuxError> {
        Connection::read(self, id, buf, now)
    }

    fn write(&mut self, id: StreamId, data: &[u8]) -> Result<Option<usize>, YamuxError> {
        Connection::write(self, id, data)
    }

    fn close_stream(&mut self, id: StreamId) -> Result<(), YamuxError> {
        Connection::close_stream(self, id)
    }

    fn reset_stream(&mut self, id: StreamId) {
        Connection::reset_stream(self, id);
    }

    fn drop_stream(&mut self, id: StreamId) {
        Connection::drop_stream(self, id);
    }
}
