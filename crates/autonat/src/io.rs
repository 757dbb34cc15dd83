//! Reading and writing one length-prefixed AutoNAT message on a stream, under a timeout.

use std::time::Duration;

use futures::AsyncWriteExt;
use lp2p_core::framing::{read_frame, write_frame};
use lp2p_core::{PeerId, RuntimeHandle};
use lp2p_host::HostStream;

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
