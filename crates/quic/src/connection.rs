//! [`QuicConnection`]: the [`MuxedConnection`] handed to the swarm, a view on the connection
//! state of [`crate::driver`].

use std::net::SocketAddr;

use async_trait::async_trait;
use lp2p_core::{Error, MuxedConnection, PublicKey, Stream};
use quinn_proto::ConnectionError;

use crate::driver::{CLOSE_NORMAL, ConnRef, connection_io_error};
use crate::stream::QuicStream;

/// An established QUIC connection: QUIC's native streams as a [`MuxedConnection`].
///
/// Dropping it (and every stream) closes the connection with [`CLOSE_NORMAL`].
pub struct QuicConnection {
    conn: ConnRef,
    remote_key: PublicKey,
}

impl QuicConnection {
    pub(crate) fn new(conn: ConnRef, remote_key: PublicKey) -> QuicConnection {
        QuicConnection { conn, remote_key }
    }

    /// The remote's identity key.
    pub fn remote_key(&self) -> &PublicKey {
        &self.remote_key
    }

    /// The remote's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.conn.shared().remote()
    }

    /// The current round-trip time estimate.
    pub fn rtt(&self) -> std::time::Duration {
        self.conn.shared().lock().conn.rtt()
    }

    /// quinn-proto's statistics of this connection (packets, bytes, losses, path MTU, ...).
    pub fn stats(&self) -> quinn_proto::ConnectionStats {
        self.conn.shared().lock().conn.stats()
    }

    /// The memory reserved from the host's budget for this connection's receive window: what
    /// it grew beyond [`INITIAL_RECEIVE_WINDOW`](crate::INITIAL_RECEIVE_WINDOW).
    pub fn reserved_memory(&self) -> usize {
        self.conn.shared().lock().reserved_memory()
    }

    /// The connection receive window now: [`INITIAL_RECEIVE_WINDOW`](crate::INITIAL_RECEIVE_WINDOW)
    /// at first, grown (up to the configured connection window) while traffic needed more.
    pub fn receive_window(&self) -> u32 {
        self.conn
            .shared()
            .lock()
            .receive_window()
            .unwrap_or(crate::INITIAL_RECEIVE_WINDOW)
    }

    /// Why the connection ended, once it did.
    pub fn close_reason(&self) -> Option<ConnectionError> {
        self.conn.shared().lock().error.clone()
    }
}

/// `ConnectionClosed` for an orderly end, the reason otherwise.
fn closed_error(err: &ConnectionError) -> Error {
    match err {
        ConnectionError::LocallyClosed | ConnectionError::ApplicationClosed(_) => {
            Error::ConnectionClosed
        }
        other => Error::Io(connection_io_error(other)),
    }
}

impl std::fmt::Debug for QuicConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicConnection")
            .field("remote", &self.conn.shared().remote())
            .field("peer", &self.remote_key.to_peer_id())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl MuxedConnection for QuicConnection {
    async fn open_stream(&self) -> Result<Box<dyn Stream>, Error> {
        let id = futures::future::poll_fn(|cx| self.conn.poll_open(cx))
            .await
            .map_err(|err| closed_error(&err))?;
        Ok(Box::new(QuicStream::new(self.conn.clone(), id)))
    }

    async fn accept_stream(&self) -> Result<Box<dyn Stream>, Error> {
        let id = futures::future::poll_fn(|cx| self.conn.poll_accept(cx))
            .await
            .map_err(|err| closed_error(&err))?;
        Ok(Box::new(QuicStream::new(self.conn.clone(), id)))
    }

    async fn close(&self) {
        self.conn.close(CLOSE_NORMAL, b"");
        futures::future::poll_fn(|cx| self.conn.poll_closed(cx)).await;
    }

    fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    fn num_streams(&self) -> usize {
        self.conn.shared().lock().streams
    }
}
