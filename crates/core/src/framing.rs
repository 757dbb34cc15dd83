//! Unsigned-varint length-prefixed frames: `uvarint(len) || body`.
//!
//! Most libp2p request/response protocols (identify, pubsub, the plaintext handshake, ...)
//! frame each protobuf message this way. Every reader takes a maximum body length, checks the
//! announced length against it before reading the body, and never allocates more than the
//! bytes that actually arrived.
//!
//! [`FrameDecoder`] is the sans-IO decoder (bytes in, frames out); [`read_frame`],
//! [`read_frame_or_eof`] and [`write_frame`] are the async helpers over `futures::io`.
//! [`read_frame_reserved`] also reserves the body from a [`MemoryAccount`] before reading it,
//! for services whose message buffers a resource manager bounds.
//!
//! ```
//! use bytes::BytesMut;
//! use lp2p_core::framing::{encode_frame, FrameDecoder};
//!
//! let mut wire = Vec::new();
//! encode_frame(b"one", &mut wire);
//! encode_frame(b"two", &mut wire);
//!
//! let mut decoder = FrameDecoder::new(1024);
//! let mut buf = BytesMut::from(&wire[..4]); // a frame and a half... of the first
//! assert_eq!(decoder.decode(&mut buf).unwrap().as_deref(), Some(&b"one"[..]));
//! assert_eq!(decoder.decode(&mut buf).unwrap(), None); // waits for the rest
//! buf.extend_from_slice(&wire[4..]);
//! assert_eq!(decoder.decode(&mut buf).unwrap().as_deref(), Some(&b"two"[..]));
//! ```

use bytes::{Buf, Bytes, BytesMut};
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Error, MemoryAccount, varint};

/// Bodies up to this size are written together with their prefix in one write call.
const COALESCE_LIMIT: usize = 8 * 1024;

/// A frame body is read into a buffer of at most this many bytes until they have arrived;
/// only then is the buffer grown to the announced length. 8 KiB: what a peer can make us
/// allocate per stream without sending.
const FIRST_BODY_READ: usize = 8 * 1024;

/// A sans-IO decoder of length-prefixed frames with a maximum body length.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_len: usize,
    /// The body length of the frame being read, once its prefix has been consumed.
    pending: Option<usize>,
}

impl FrameDecoder {
    /// A decoder that rejects bodies longer than `max_len` bytes.
    pub fn new(max_len: usize) -> FrameDecoder {
        FrameDecoder {
            max_len,
            pending: None,
        }
    }

    /// The maximum body length.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Takes the next complete frame off the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not hold a whole frame yet (append more bytes and
    /// call again; a consumed prefix is remembered). Fails on an invalid varint or a length
    /// over the maximum; after an error the stream is unusable.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, Error> {
        let len = if let Some(len) = self.pending {
            len
        } else {
            let Some((len, used)) = varint::decode(buf)? else {
                return Ok(None);
            };
            let len = check_len(len, self.max_len)?;
            buf.advance(used);
            self.pending = Some(len);
            len
        };
        if buf.len() < len {
            buf.reserve(len - buf.len());
            return Ok(None);
        }
        self.pending = None;
        Ok(Some(buf.split_to(len).freeze()))
    }

    /// Like [`decode`](FrameDecoder::decode), for when the stream has ended: a partial frame
    /// left in `buf` is an [`Error::UnexpectedEof`]; an empty buffer is a clean end.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, Error> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        if self.pending.is_some() {
            Err(Error::UnexpectedEof { what: "frame body" })
        } else if !buf.is_empty() {
            Err(Error::UnexpectedEof {
                what: "frame length",
            })
        } else {
            Ok(None)
        }
    }
}

fn check_len(len: u64, max: usize) -> Result<usize, Error> {
    match usize::try_from(len) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(Error::FrameTooLarge { len, max }),
    }
}

/// Appends `uvarint(body.len()) || body` to `out`.
pub fn encode_frame(body: &[u8], out: &mut Vec<u8>) {
    out.reserve(varint::MAX_LEN + body.len());
    varint::encode_into(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// Reads one varint from `io`, a byte at a time. `Ok(None)` means the stream ended cleanly
/// before the first byte.
pub async fn read_varint<R: AsyncRead + Unpin>(io: &mut R) -> Result<Option<u64>, Error> {
    let mut bytes = [0u8; varint::MAX_LEN];
    for i in 0..varint::MAX_LEN {
        let mut byte = [0u8; 1];
        if io.read(&mut byte).await? == 0 {
            if i == 0 {
                return Ok(None);
            }
            return Err(Error::UnexpectedEof { what: "varint" });
        }
        if let Some(slot) = bytes.get_mut(i) {
            *slot = byte[0];
        }
        if let Some((value, _)) = varint::decode(bytes.get(..=i).unwrap_or(&[]))? {
            return Ok(Some(value));
        }
    }
    Err(Error::VarintOverflow)
}

/// Reads one frame whose body is at most `max_len` bytes. The stream ending before or inside
/// the frame is an [`Error::UnexpectedEof`].
pub async fn read_frame<R: AsyncRead + Unpin>(
    io: &mut R,
    max_len: usize,
) -> Result<Vec<u8>, Error> {
    read_frame_or_eof(io, max_len)
        .await?
        .ok_or(Error::UnexpectedEof {
            what: "frame length",
        })
}

/// Reads one frame whose body is at most `max_len` bytes, or `Ok(None)` when the stream ends
/// cleanly where a frame would start.
///
/// The body buffer grows with the bytes that arrive, so a peer that announces a large frame
/// and sends nothing costs nothing.
pub async fn read_frame_or_eof<R: AsyncRead + Unpin>(
    io: &mut R,
    max_len: usize,
) -> Result<Option<Vec<u8>>, Error> {
    let Some(len) = read_varint(io).await? else {
        return Ok(None);
    };
    let len = check_len(len, max_len)?;
    read_body(io, len).await.map(Some)
}

/// Like [`read_frame_or_eof`], but first reserves the announced body length from `account`
/// (after checking it against `max_len`), so the buffer never holds memory the budget did
/// not grant. A refusal is [`Error::OutOfMemory`], before any body byte is read.
///
/// The reservation stays in `account` after the call: shrink it by the body's length once
/// the body is dropped (or drop the account). A failed read returns what it reserved.
///
/// ```
/// # futures::executor::block_on(async {
/// use lp2p_core::framing::{encode_frame, read_frame_reserved};
/// use lp2p_core::{Error, MemoryAccount, SharedLimit};
///
/// let mut wire = Vec::new();
/// encode_frame(&[7; 100], &mut wire);
/// encode_frame(&[7; 100], &mut wire);
/// let budget = SharedLimit::new(150);
/// let mut account = budget.account();
/// let mut io = &wire[..];
/// let body = read_frame_reserved(&mut io, 1024, &mut account).await?.unwrap();
/// assert_eq!(account.reserved(), 100);
/// // The second frame would take the account to 200 B of 150: refused before it is read.
/// let refused = read_frame_reserved(&mut io, 1024, &mut account).await;
/// assert!(matches!(refused, Err(Error::OutOfMemory(_))));
/// account.shrink(body.len()); // done with the first body
/// assert_eq!(budget.used(), 0);
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
pub async fn read_frame_reserved<R: AsyncRead + Unpin>(
    io: &mut R,
    max_len: usize,
    account: &mut dyn MemoryAccount,
) -> Result<Option<Vec<u8>>, Error> {
    let Some(len) = read_varint(io).await? else {
        return Ok(None);
    };
    let len = check_len(len, max_len)?;
    account.try_grow(len)?;
    match read_body(io, len).await {
        Ok(body) => Ok(Some(body)),
        Err(err) => {
            account.shrink(len);
            Err(err)
        }
    }
}

/// Reads a frame body of exactly `len` bytes into a buffer of exactly that capacity.
///
/// The buffer starts at [`FIRST_BODY_READ`] bytes and takes the rest once those arrived, so a
/// peer that announces a large frame and sends nothing costs at most that much. Not
/// `read_to_end`: it doubles its buffer as bytes arrive and grows it again to probe for the
/// end, leaving up to twice the body allocated, and callers keep bodies (pubsub shares a
/// message's bytes with its caches and send queues): heaptrack on a gossipsub node relaying
/// 50 messages/s of 63 KiB had these spare halves as most of its peak heap.
async fn read_body<R: AsyncRead + Unpin>(io: &mut R, len: usize) -> Result<Vec<u8>, Error> {
    let first = len.min(FIRST_BODY_READ);
    let mut body = vec![0u8; first];
    read_exact_body(io, &mut body).await?;
    if len > first {
        body.reserve_exact(len.saturating_sub(first));
        body.resize(len, 0);
        read_exact_body(io, body.get_mut(first..).unwrap_or_default()).await?;
    }
    Ok(body)
}

async fn read_exact_body<R: AsyncRead + Unpin>(io: &mut R, buf: &mut [u8]) -> Result<(), Error> {
    io.read_exact(buf).await.map_err(|err| {
        if err.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::UnexpectedEof { what: "frame body" }
        } else {
            err.into()
        }
    })
}

/// Writes `uvarint(body.len()) || body` to `io` (one write for small bodies). Does not flush.
pub async fn write_frame<W: AsyncWrite + Unpin>(io: &mut W, body: &[u8]) -> Result<(), Error> {
    if body.len() <= COALESCE_LIMIT {
        let mut frame = Vec::with_capacity(varint::MAX_LEN + body.len());
        encode_frame(body, &mut frame);
        io.write_all(&frame).await?;
    } else {
        let mut prefix = varint::Buffer::default();
        io.write_all(varint::encode(body.len() as u64, &mut prefix))
            .await?;
        io.write_all(body).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use proptest::prelude::*;

    #[test]
    fn decoder_rejects_oversized_length_before_body() {
        let mut dec = FrameDecoder::new(10);
        let mut buf = BytesMut::from(&[11u8][..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(Error::FrameTooLarge { len: 11, max: 10 })
        ));
        // A huge announced length is refused without allocating.
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 0x0f][..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(Error::FrameTooLarge { .. })
        ));
        assert!(buf.capacity() < 64);
    }

    #[test]
    fn read_bodies_have_exactly_their_length_allocated() {
        for len in [
            0usize,
            1,
            100,
            FIRST_BODY_READ,
            FIRST_BODY_READ + 1,
            64_512,
            200_000,
        ] {
            let body: Vec<u8> = (0..len).map(|i| i.to_le_bytes()[0]).collect();
            let mut wire = Vec::new();
            encode_frame(&body, &mut wire);
            encode_frame(&body, &mut wire);
            let mut io = &wire[..];
            let read = block_on(read_frame(&mut io, 1 << 20)).unwrap();
            assert_eq!(read, body);
            assert_eq!(read.capacity(), len, "a {len}-byte body");
            let limit = crate::SharedLimit::new(1 << 20);
            let mut account = limit.account();
            let read = block_on(read_frame_reserved(&mut io, 1 << 20, &mut account)).unwrap();
            assert_eq!(read.as_ref().map(Vec::capacity), Some(len));
            assert!(io.is_empty());
        }
    }

    #[test]
    fn a_truncated_body_is_an_unexpected_eof_and_returns_its_reservation() {
        for (len, sent) in [
            (100usize, 50usize),
            (64_512, FIRST_BODY_READ - 1),
            (64_512, 20_000),
        ] {
            let mut wire = Vec::new();
            encode_frame(&vec![7u8; len], &mut wire);
            wire.truncate(wire.len() - (len - sent));
            let mut io = &wire[..];
            assert!(matches!(
                block_on(read_frame(&mut io, 1 << 20)),
                Err(Error::UnexpectedEof { what: "frame body" })
            ));
            let limit = crate::SharedLimit::new(1 << 20);
            let mut account = limit.account();
            let mut io = &wire[..];
            assert!(matches!(
                block_on(read_frame_reserved(&mut io, 1 << 20, &mut account)),
                Err(Error::UnexpectedEof { what: "frame body" })
            ));
            assert_eq!(limit.used(), 0);
        }
    }

    #[test]
    fn decoder_rejects_bad_varints() {
        let mut dec = FrameDecoder::new(10);
        let mut buf = BytesMut::from(&[0x80, 0x00][..]);
        assert!(matches!(dec.decode(&mut buf), Err(Error::VarintNotMinimal)));
        let mut buf = BytesMut::from(&[0xff; 10][..]);
        assert!(matches!(dec.decode(&mut buf), Err(Error::VarintOverflow)));
    }

    #[test]
    fn decoder_eof_mid_frame() {
        let mut dec = FrameDecoder::new(10);
        let mut buf = BytesMut::from(&[3u8, b'a'][..]);
        assert!(matches!(
            dec.decode_eof(&mut buf),
            Err(Error::UnexpectedEof { what: "frame body" })
        ));
        let mut dec = FrameDecoder::new(10);
        let mut buf = BytesMut::from(&[0x80u8][..]);
        assert!(matches!(
            dec.decode_eof(&mut buf),
            Err(Error::UnexpectedEof {
                what: "frame length"
            })
        ));
        let mut dec = FrameDecoder::new(10);
        let mut buf = BytesMut::new();
        assert_eq!(dec.decode_eof(&mut buf).unwrap(), None);
    }

    #[test]
    fn empty_frames() {
        let mut dec = FrameDecoder::new(0);
        let mut buf = BytesMut::from(&[0u8, 0u8][..]);
        assert_eq!(dec.decode(&mut buf).unwrap().unwrap().len(), 0);
        assert_eq!(dec.decode(&mut buf).unwrap().unwrap().len(), 0);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn async_read_errors() {
        block_on(async {
            // Over the limit.
            let mut r: &[u8] = &[5, 1, 2, 3, 4, 5];
            assert!(matches!(
                read_frame(&mut r, 4).await,
                Err(Error::FrameTooLarge { len: 5, max: 4 })
            ));
            // EOF inside the body.
            let mut r: &[u8] = &[5, 1, 2];
            assert!(matches!(
                read_frame(&mut r, 10).await,
                Err(Error::UnexpectedEof { what: "frame body" })
            ));
            // EOF inside the varint.
            let mut r: &[u8] = &[0x80];
            assert!(matches!(
                read_frame(&mut r, 10).await,
                Err(Error::UnexpectedEof { what: "varint" })
            ));
            // Clean EOF.
            let mut r: &[u8] = &[];
            assert!(read_frame_or_eof(&mut r, 10).await.unwrap().is_none());
            assert!(matches!(
                read_frame(&mut r, 10).await,
                Err(Error::UnexpectedEof { .. })
            ));
            // Over-long varint.
            let mut r: &[u8] = &[0xff; 12];
            assert!(matches!(
                read_frame(&mut r, 10).await,
                Err(Error::VarintOverflow)
            ));
        });
    }

    #[test]
    fn large_frames_roundtrip() {
        block_on(async {
            let body = vec![7u8; 100_000];
            let mut wire = Vec::new();
            write_frame(&mut wire, &body).await.unwrap();
            let mut r = &wire[..];
            assert_eq!(read_frame(&mut r, body.len()).await.unwrap(), body);
        });
    }

    #[test]
    fn a_reserved_read_returns_its_reservation_when_the_body_is_cut_short() {
        block_on(async {
            let budget = crate::SharedLimit::new(1000);
            let mut account = budget.account();
            // Announces 500 bytes, sends 3.
            let mut r = &[0xf4, 0x03, 1, 2, 3][..];
            let err = read_frame_reserved(&mut r, 1000, &mut account).await;
            assert!(matches!(err, Err(Error::UnexpectedEof { .. })), "{err:?}");
            assert_eq!((account.reserved(), budget.used()), (0, 0));
        });
    }

    #[test]
    fn a_reserved_read_checks_the_maximum_before_it_reserves() {
        block_on(async {
            let budget = crate::SharedLimit::new(10);
            let mut account = budget.account();
            let mut r = &[0xff, 0xff, 0xff, 0xff, 0x0f][..];
            let err = read_frame_reserved(&mut r, 1 << 20, &mut account).await;
            assert!(matches!(err, Err(Error::FrameTooLarge { .. })), "{err:?}");
            let mut r = &[11u8, 0][..];
            let err = read_frame_reserved(&mut r, 100, &mut account).await;
            match err {
                Err(Error::OutOfMemory(denied)) => {
                    assert_eq!((denied.requested, denied.used, denied.limit), (11, 0, 10));
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
            assert_eq!(account.reserved(), 0);
            let mut r = &[][..];
            assert!(matches!(
                read_frame_reserved(&mut r, 100, &mut account).await,
                Ok(None)
            ));
        });
    }

    proptest! {
        #[test]
        fn decoder_matches_encoder(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            chunk in 1usize..64,
        ) {
            let mut wire = Vec::new();
            for b in &bodies {
                encode_frame(b, &mut wire);
            }
            let mut dec = FrameDecoder::new(300);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(frame) = dec.decode(&mut buf).unwrap() {
                    out.push(frame.to_vec());
                }
            }
            prop_assert_eq!(dec.decode_eof(&mut buf).unwrap(), None);
            prop_assert_eq!(out, bodies);
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), max in 0usize..32) {
            let mut dec = FrameDecoder::new(max);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = dec.decode(&mut buf) {}
        }
    }
}
