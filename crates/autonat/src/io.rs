//! Reading and writing one length-prefixed AutoNAT message on a stream, under a timeout.

use std::time::Duration;

use futures::AsyncWriteExt;
use lp2p_core::framing::{read_frame, write_frame};
use lp2p_core::{PeerId, RuntimeHandle};
use lp2p_host::{Host, HostStream};
use lp2p_swarm::Direction;

use crate::AutonatError;

/// Reads one message body of at most `max` bytes within `timeout`.
pub(crate) async fn read_message(
    runtime: &RuntimeHandle,
    stream: &mut HostStream,
    max: usize,
    timeout: Duration,
) -> Result<Vec<u8>, AutonatError> {
    let peer = stream.peer();
    match runtime.timeout(timeout, read_frame(stream, max)).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(source)) => Err(AutonatError::Stream {
            peer,
            source: Box::new(source),
        }),
        Err(_) => Err(AutonatError::Timeout {
            peer,
            after: timeout,
        }),
    }
}

/// Writes one message body and flushes.
pub(crate) async fn write_message(
    stream: &mut HostStream,
    body: &[u8],
) -> Result<(), AutonatError> {
    let peer = stream.peer();
    write_frame(stream, body)
        .await
        .map_err(|source| stream_error(peer, source))?;
    stream
        .flush()
        .await
        .map_err(|e| stream_error(peer, e.into()))
}

/// Closes our side of the stream; a failure only means the remote went first.
pub(crate) async fn close(stream: &mut HostStream) {
    if let Err(error) = stream.close().await {
        tracing::trace!(peer = %stream.peer(), %error, "closing an AutoNAT stream");
    }
}

fn stream_error(peer: PeerId, source: lp2p_core::Error) -> AutonatError {
    AutonatError::Stream {
        peer,
        source: Box::new(source),
    }
}

/// Opens a `protocol` stream to `server` for a request. Servers may serve AutoNAT only on
/// the connections we dialed (rust-libp2p does: its dial-back connections to us do not
/// serve v2), so our direct outbound connections are tried first, then the other direct
/// ones, then a dial. Never over a limited (relayed) connection: a server cannot test us
/// there.
pub(crate) async fn open_request_stream(
    host: &Host,
    server: PeerId,
    protocol: &'static str,
) -> Result<HostStream, AutonatError> {
    let host_error = |source| AutonatError::Host {
        server,
        source: Box::new(source),
    };
    let mut conns: Vec<_> = host
        .connections(&server)
        .into_iter()
        .filter(|c| !c.is_limited())
        .collect();
    conns.sort_by_key(|c| c.direction() != Direction::Outbound);
    let mut last = None;
    for conn in &conns {
        match host.new_stream_on(conn, [protocol]).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(host_error(e)),
        None => host
            .new_stream(&server, [protocol])
            .await
            .map_err(host_error),
    }
}

/// Connected peers that announced `protocol` (over identify) and have a direct connection
/// with us: the servers a client may ask.
pub(crate) fn servers(host: &Host, protocol: &str) -> Vec<PeerId> {
    host.connected_peers()
        .into_iter()
        .filter(|p| {
            !host
                .peerstore()
                .supports_protocols(p, &[protocol])
                .is_empty()
                && host.connections(p).iter().any(|c| !c.is_limited())
        })
        .collect()
}
