//! Reading and writing one length-prefixed relay message on a stream, under a timeout.

use std::time::Duration;

use futures::AsyncWriteExt;
use lp2p_core::framing::{read_frame, write_frame};
use lp2p_core::{PeerId, RuntimeHandle};
use lp2p_host::HostStream;

use crate::RelayError;
use crate::message::MAX_MESSAGE_SIZE;

/// How long a relay protocol exchange may take. Why 30 s: the relay's answer to CONNECT
/// waits for the target's STOP answer across two connections; go and rust allow a minute,
/// half of that is plenty on any working path and frees slots from stalled peers sooner.
pub const DEFAULT_STREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads one message body (at most [`MAX_MESSAGE_SIZE`] bytes) within `timeout`.
pub(crate) async fn read_message(
    runtime: &RuntimeHandle,
    stream: &mut HostStream,
    timeout: Duration,
) -> Result<Vec<u8>, RelayError> {
    let peer = stream.peer();
    match runtime
        .timeout(timeout, read_frame(stream, MAX_MESSAGE_SIZE))
        .await
    {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(source)) => Err(RelayError::Stream {
            peer,
            source: Box::new(source),
        }),
        Err(_) => Err(RelayError::Timeout {
            peer,
            after: timeout,
        }),
    }
}

/// Writes one message body and flushes.
pub(crate) async fn write_message(
    stream: &mut HostStream,
    body: &[u8],
    peer: PeerId,
) -> Result<(), RelayError> {
    write_frame(stream, body)
        .await
        .map_err(|source| RelayError::Stream {
            peer,
            source: Box::new(source),
        })?;
    stream.flush().await.map_err(|e| RelayError::Stream {
        peer,
        source: Box::new(e.into()),
    })
}

/// Seconds since the Unix epoch (reservation expiries are written in them); 0 if the clock
/// is before 1970.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
