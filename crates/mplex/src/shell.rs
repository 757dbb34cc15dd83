//! The shell layer: the sans-IO [`Session`] run by the async shell every lp2p muxer shares
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

use crate::config::{MplexConfig, PROTOCOL_ID};
use crate::core::{Event, Session};
use crate::error::MplexError;
use crate::id::StreamId;

/// A live mplex connection: [`open`](ShellConnection::open) and
/// [`accept`](ShellConnection::accept) streams, [`close`](ShellConnection::close) (flush,
/// close the socket); the session's counters through [`core`](ShellConnection::core).
///
/// Dropping it closes the connection as `close` would, without waiting: streams still held
/// then fail, except for reading what already arrived.
pub type MplexConnection = ShellConnection<Session>;

/// One mplex stream: `AsyncRead + AsyncWrite`, straight into the connection's session.
/// `poll_close` half-closes (Close); [`reset`](lp2p_core::Stream::reset) aborts both ways
/// (Reset); dropping it half-closes it and discards whatever the remote sends afterwards.
pub type MplexStream = ShellStream<Session>;

/// The mplex stream muxer (`/mplex/6.7.0`): turns a secured connection into many streams.
///
/// `Mplex::default()` uses [`MplexConfig::default()`]; [`Mplex::new`] takes a configuration.
#[derive(Debug, Clone, Default)]
pub struct Mplex {
    config: MplexConfig,
}

impl Mplex {
    /// An upgrader with the given configuration.
    pub fn new(config: MplexConfig) -> Mplex {
        Mplex { config }
    }

    /// The configuration.
    pub fn config(&self) -> &MplexConfig {
        &self.config
    }

    /// Starts mplex on any byte stream: spawns the connection task on `runtime` and returns
    /// the handle. `role` decides how streams are numbered (use [`Role::Initiator`] on the
    /// dialing side).
    ///
    /// [`MuxerUpgrader::upgrade`] calls this with the secured connection; it is public for
    /// byte streams that are not a [`SecureConnection`] (tests, benchmarks, tunnels).
    pub fn start<C>(&self, io: C, role: Role, runtime: &RuntimeHandle) -> Arc<MplexConnection>
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
    ) -> MplexConnection
    where
        C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let session = Session::with_memory(role, self.config.clone(), memory);
        let shell = self.config.shell_config();
        ShellConnection::start(io, session, &shell, runtime, role, peer)
    }
}

impl MuxerUpgrader for Mplex {
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

impl MuxerCore for Session {
    type StreamId = StreamId;
    type Error = MplexError;
    const PROTOCOL_ID: &'static str = PROTOCOL_ID;

    fn handle_input(&mut self, input: &[u8], now: Instant) -> Result<usize, MplexError> {
        Session::handle_input(self, input, now)
    }

    fn wants_input(&self) -> bool {
        Session::wants_input(self)
    }

    fn handle_eof(&mut self) {
        match Session::handle_eof(self) {
            Ok(()) => tracing::debug!("the remote closed the connection"),
            Err(err) => tracing::debug!(error = %err, "the connection ended mid-frame"),
        }
    }

    fn handle_io_error(&mut self, err: io::Error) {
        Session::handle_io_error(self, &err);
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        Session::poll_transmit(self, out)
    }

    fn has_transmit(&self) -> bool {
        Session::has_transmit(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Session::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        Session::handle_timeout(self, now);
    }

    fn poll_event(&mut self) -> Option<Event> {
        Session::poll_event(self)
    }

    fn close(&mut self) {
        Session::close(self);
    }

    fn is_closed(&self) -> bool {
        Session::is_closed(self)
    }

    fn num_streams(&self) -> usize {
        Session::num_streams(self)
    }

    fn open_stream(&mut self) -> Result<Option<StreamId>, MplexError> {
        Session::open_stream(self).map(Some)
    }

    fn accept_stream(&mut self) -> Result<Option<StreamId>, MplexError> {
        Session::accept_stream(self)
    }

    fn read(
        &mut self,
        id: StreamId,
        buf: &mut [u8],
        now: Instant,
    ) -> Result<Option<usize>, MplexError> {
        Session::read(self, id, buf, now)
    }

    fn write(&mut self, id: StreamId, data: &[u8]) -> Result<Option<usize>, MplexError> {
        Session::write(self, id, data)
    }

    fn flush_stream(&mut self, id: StreamId) -> Result<(), MplexError> {
        Session::flush_stream(self, id)
    }

    fn close_stream(&mut self, id: StreamId) -> Result<(), MplexError> {
        Session::close_stream(self, id)
    }

    fn reset_stream(&mut self, id: StreamId) {
        // Resetting an unknown stream has nothing to do.
        let _ = Session::reset_stream(self, id);
    }

    fn drop_stream(&mut self, id: StreamId) {
        Session::release_stream(self, id);
    }
}
