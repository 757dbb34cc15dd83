use std::sync::Arc;

use async_trait::async_trait;
use futures::io::{AsyncRead, AsyncWrite};

use crate::{Error, MemoryAccount, Role, RuntimeHandle, SecureConnection};

/// A stream multiplexer: runs many independent streams over one secure connection.
///
/// Implementations: `lp2p-yamux` (`/yamux/1.0.0`) and `lp2p-mplex` (`/mplex/6.7.0`).
pub trait MuxerUpgrader: Send + Sync + 'static {
    /// The protocol id negotiated with multistream-select, e.g. `/yamux/1.0.0`.
    fn protocol_id(&self) -> &'static str;

    /// Starts the muxer on `conn`. `role` is [`Role::Initiator`] on the side that dialed.
    /// The muxer spawns its connection task on `runtime`; the task ends when the connection
    /// closes.
    ///
    /// `memory` is the connection's account (see [`crate::memory`]): the muxer grows it before
    /// it grants receive window or buffers more, refuses the stream or keeps the window
    /// small when it is refused, and drops it with the connection. Pass
    /// [`UnlimitedMemory::boxed()`](crate::UnlimitedMemory::boxed) when nothing is accounted.
    fn upgrade(
        &self,
        conn: SecureConnection,
        role: Role,
        runtime: &RuntimeHandle,
        memory: Box<dyn MemoryAccount>,
    ) -> Arc<dyn MuxedConnection>;
}

/// A live multiplexed connection.
///
/// Cloned as `Arc<dyn MuxedConnection>`; every method takes `&self`, so streams can be opened
/// from many tasks at once.
#[async_trait]
pub trait MuxedConnection: Send + Sync + 'static {
    /// Opens a new outbound stream. Fails with [`Error::ConnectionClosed`] once the
    /// connection is closed, or with a muxer error when a stream limit is reached.
    async fn open_stream(&self) -> Result<Box<dyn Stream>, Error>;

    /// Waits for the next stream the remote opened. Fails with [`Error::ConnectionClosed`]
    /// once the connection is closed.
    async fn accept_stream(&self) -> Result<Box<dyn Stream>, Error>;

    /// Closes the connection gracefully (yamux sends GoAway) and waits until it is closed.
    /// Every open stream then fails its reads and writes.
    async fn close(&self);

    /// Whether the connection is closed (locally, by the remote, or by an error).
    fn is_closed(&self) -> bool;

    /// The number of streams currently open (in either direction).
    fn num_streams(&self) -> usize;
}

/// One stream of a [`MuxedConnection`]: a reliable, ordered byte stream.
///
/// `poll_close` half-closes (the remote reads EOF, we may keep reading). Dropping the stream
/// closes our write side as `poll_close` would (bytes already written are still delivered)
/// and stops reading: whatever the remote sends afterwards is discarded, and a muxer may
/// reset the stream if the remote keeps sending. [`reset`](Stream::reset) aborts both
/// directions at once; the remote's reads and writes then fail instead of seeing EOF.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// Aborts the stream in both directions.
    fn reset(&mut self);
}

impl Stream for Box<dyn Stream> {
    fn reset(&mut self) {
        (**self).reset();
    }
}
