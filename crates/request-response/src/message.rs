//! Reading one whole message: everything until the remote closes its write side, within a
//! size limit. [`MessageBuffer`] is the sans-IO part (bytes in, a verdict out);
//! [`read_message`] drives it from a `futures::io` stream.

use futures::{AsyncRead, AsyncReadExt};

/// Bytes read per call; also the most a buffer grows ahead of the bytes that arrived.
const READ_CHUNK: usize = 16 * 1024;

/// Why a message could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// More than the limit arrived (at least `size` bytes).
    TooLarge { size: usize },
    /// The stream failed.
    Io(std::io::Error),
}

/// Collects a message's bytes and refuses more than `max`. Memory grows with the bytes that
/// actually arrive, never with what a peer announces.
#[derive(Debug)]
pub(crate) struct MessageBuffer {
    bytes: Vec<u8>,
    max: usize,
}

impl MessageBuffer {
    /// An empty buffer for a message of at most `max` bytes.
    pub(crate) fn new(max: usize) -> MessageBuffer {
        MessageBuffer {
            bytes: Vec::new(),
            max,
        }
    }

    /// Appends bytes that arrived; fails once the message is over the limit.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<(), ReadError> {
        let size = self.bytes.len().saturating_add(chunk.len());
        if size > self.max {
            return Err(ReadError::TooLarge { size });
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// The whole message.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads `io` to its end: at most `max` bytes, or [`ReadError::TooLarge`] as soon as more
/// arrive.
pub(crate) async fn read_message<R: AsyncRead + Unpin>(
    io: &mut R,
    max: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut message = MessageBuffer::new(max);
    let mut chunk = vec![0u8; READ_CHUNK.min(max.saturating_add(1))];
    loop {
        let n = io.read(&mut chunk).await.map_err(ReadError::Io)?;
        if n == 0 {
            return Ok(message.finish());
        }
        message.push(chunk.get(..n).unwrap_or_default())?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_inclusive_and_checked_per_chunk() {
        let mut m = MessageBuffer::new(4);
        m.push(b"ab").unwrap();
        m.push(b"cd").unwrap();
        assert!(matches!(m.push(b"e"), Err(ReadError::TooLarge { size: 5 })));
        assert_eq!(MessageBuffer::new(0).finish(), b"");
    }

    #[test]
    fn reads_to_end_or_refuses() {
        futures::executor::block_on(async {
            let mut r: &[u8] = b"hello";
            assert_eq!(read_message(&mut r, 5).await.unwrap(), b"hello");
            let mut r: &[u8] = b"hello!";
            assert!(matches!(
                read_message(&mut r, 5).await,
                Err(ReadError::TooLarge { size: 6 })
            ));
            let mut r: &[u8] = b"";
            assert!(read_message(&mut r, 0).await.unwrap().is_empty());
            let big = vec![7u8; 100_000];
            let mut r = &big[..];
            assert_eq!(read_message(&mut r, 100_000).await.unwrap().len(), 100_000);
        });
    }
}
