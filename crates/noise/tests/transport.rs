//! The transport over an in-memory connection: data integrity, coalescing, close, and bad
//! input from the wire (tampered, truncated and empty frames).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Context;

use futures::AsyncRead;
use futures::task::ArcWake;

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::runtime::block_on;
use lp2p_memory::MemoryConnection;
use lp2p_noise::{MAX_FRAME_PLAINTEXT, NoiseError, NoiseOutput, Stage};
use proptest::prelude::*;

use common::{handshake_outcomes, pipe};

/// Two encrypted ends over one pipe.
fn connected(capacity: usize) -> (NoiseOutput<MemoryConnection>, NoiseOutput<MemoryConnection>) {
    let (i, r) = handshake_outcomes();
    let (a, b) = pipe(capacity);
    (
        NoiseOutput::new(a, i.encoder, i.decoder),
        NoiseOutput::new(b, r.encoder, r.decoder),
    )
}

/// Our responder's decrypting end, and the raw end a scripted peer writes frames into
/// (with the initiator's encoder to make valid ones).
fn scripted() -> (
    NoiseOutput<MemoryConnection>,
    MemoryConnection,
    lp2p_noise::FrameEncoder,
) {
    let (i, r) = handshake_outcomes();
    let (a, b) = pipe(1 << 20);
    (NoiseOutput::new(b, r.encoder, r.decoder), a, i.encoder)
}

fn frame_of(encoder: &mut lp2p_noise::FrameEncoder, plaintext: &[u8]) -> Vec<u8> {
    assert_eq!(encoder.stage(plaintext).unwrap(), plaintext.len());
    encoder.seal().unwrap();
    let out = encoder.pending_output().to_vec();
    encoder.advance(out.len());
    out
}

fn noise_error(err: &std::io::Error) -> &NoiseError {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<NoiseError>())
        .unwrap_or_else(|| panic!("not a NoiseError: {err:?}"))
}

#[test]
fn data_flows_both_ways_including_multi_frame_writes() {
    let (mut a, mut b) = connected(64 * 1024);
    let big: Vec<u8> = (0..3 * MAX_FRAME_PLAINTEXT + 123)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect();
    block_on(async {
        let send = async {
            a.write_all(&big).await.unwrap();
            a.flush().await.unwrap();
            let mut back = vec![0u8; 5];
            a.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"reply");
        };
        let recv = async {
            let mut got = vec![0u8; big.len()];
            b.read_exact(&mut got).await.unwrap();
            assert_eq!(got, big);
            b.write_all(b"reply").await.unwrap();
            b.flush().await.unwrap();
        };
        futures::join!(send, recv);
    });
}

#[test]
fn small_writes_are_coalesced_into_one_frame_on_flush() {
    let (i, r) = handshake_outcomes();
    let (a, mut raw) = pipe(1 << 20);
    let mut out = NoiseOutput::new(a, i.encoder, i.decoder);
    drop(r);
    block_on(async {
        for _ in 0..100 {
            out.write_all(b"0123456789").await.unwrap();
        }
        out.flush().await.unwrap();
        out.close().await.unwrap();
        let mut wire = Vec::new();
        raw.read_to_end(&mut wire).await.unwrap();
        // One frame: 2-byte length, 1000 bytes of ciphertext, 16-byte tag.
        assert_eq!(wire.len(), 2 + 1000 + 16);
        assert_eq!(&wire[..2], &1016u16.to_be_bytes());
    });
}

#[test]
fn vectored_writes_share_a_frame() {
    let (i, _r) = handshake_outcomes();
    let (a, mut raw) = pipe(1 << 20);
    let mut out = NoiseOutput::new(a, i.encoder, i.decoder);
    block_on(async {
        let header = [1u8; 12];
        let body = [2u8; 300];
        let bufs = [
            std::io::IoSlice::new(&header),
            std::io::IoSlice::new(&[]),
            std::io::IoSlice::new(&body),
        ];
        assert_eq!(out.write_vectored(&bufs).await.unwrap(), 312);
        out.close().await.unwrap();
        let mut wire = Vec::new();
        raw.read_to_end(&mut wire).await.unwrap();
        assert_eq!(wire.len(), 2 + 312 + 16);
    });
}

#[test]
fn close_flushes_then_the_remote_reads_eof() {
    let (mut a, mut b) = connected(1 << 20);
    block_on(async {
        a.write_all(b"last words").await.unwrap();
        a.close().await.unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last words");
    });
}

#[test]
fn tampered_frame_is_invalid_data_naming_decryption() {
    let (mut ours, mut raw, mut enc) = scripted();
    block_on(async {
        let mut frame = frame_of(&mut enc, b"authentic");
        frame[4] ^= 0x01;
        raw.write_all(&frame).await.unwrap();
        let mut buf = [0u8; 64];
        let err = ours.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(matches!(
            noise_error(&err),
            NoiseError::Decrypt {
                stage: Stage::Transport
            }
        ));
        // The stream stays failed.
        assert!(ours.read(&mut buf).await.is_err());
    });
}

#[test]
fn tampered_frame_is_rejected_with_a_small_read_buffer_too() {
    let (mut ours, mut raw, mut enc) = scripted();
    block_on(async {
        let mut frame = frame_of(&mut enc, &[3u8; 500]);
        let last = frame.len() - 1;
        frame[last] ^= 0x80; // the tag
        raw.write_all(&frame).await.unwrap();
        let mut buf = [0u8; 7];
        let err = ours.read(&mut buf).await.unwrap_err();
        assert!(matches!(noise_error(&err), NoiseError::Decrypt { .. }));
    });
}

#[test]
fn frame_shorter_than_a_tag_is_rejected() {
    let (mut ours, mut raw, _) = scripted();
    block_on(async {
        raw.write_all(&[0, 0]).await.unwrap();
        let err = ours.read(&mut [0u8; 16]).await.unwrap_err();
        assert!(matches!(
            noise_error(&err),
            NoiseError::FrameTooShort { len: 0 }
        ));
    });
}

#[test]
fn eof_inside_a_frame_is_a_truncated_frame() {
    for cut in [1usize, 2, 10] {
        let (mut ours, mut raw, mut enc) = scripted();
        block_on(async {
            let frame = frame_of(&mut enc, b"cut short");
            raw.write_all(&frame[..frame.len() - cut]).await.unwrap();
            raw.close().await.unwrap();
            let err = ours.read(&mut [0u8; 64]).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "cut {cut}");
            assert!(matches!(
                noise_error(&err),
                NoiseError::TruncatedFrame {
                    stage: Stage::Transport
                }
            ));
        });
    }
}

#[test]
fn eof_between_frames_is_a_clean_end_and_empty_frames_are_skipped() {
    let (mut ours, mut raw, mut enc) = scripted();
    block_on(async {
        let mut wire = frame_of(&mut enc, b"one");
        // An empty frame: a lone tag (a peer may send one; it carries no data).
        enc.seal_empty().unwrap();
        let empty = enc.pending_output().to_vec();
        enc.advance(empty.len());
        assert_eq!(empty.len(), 2 + 16);
        wire.extend_from_slice(&empty);
        wire.extend_from_slice(&frame_of(&mut enc, b"two"));
        raw.write_all(&wire).await.unwrap();
        raw.close().await.unwrap();
        let mut got = Vec::new();
        ours.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"onetwo");
    });
}

struct CountWakes(AtomicUsize);

impl ArcWake for CountWakes {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_stream_of_empty_frames_yields_and_then_delivers_data() {
    let (mut ours, mut raw, mut enc) = scripted();
    block_on(async {
        let mut wire = Vec::new();
        for _ in 0..1000 {
            enc.seal_empty().unwrap();
            let frame = enc.pending_output().to_vec();
            enc.advance(frame.len());
            wire.extend_from_slice(&frame);
        }
        wire.extend_from_slice(&frame_of(&mut enc, b"finally"));
        raw.write_all(&wire).await.unwrap();
        raw.close().await.unwrap();

        // One poll decodes at most MAX_EMPTY_FRAMES_PER_READ frames, then wakes itself and
        // returns Pending.
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = futures::task::waker(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut buf = [0u8; 64];
        assert!(
            Pin::new(&mut ours)
                .poll_read(&mut cx, &mut buf)
                .is_pending()
        );
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);

        let mut got = Vec::new();
        ours.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"finally");
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Any sequence of writes of any sizes, with or without flushes in between, arrives
    /// intact and in order, whatever the reader's buffer size.
    #[test]
    fn any_writes_arrive_intact_and_in_order(
        writes in proptest::collection::vec((0usize..80_000, any::<bool>()), 1..10),
        read_size in 1usize..100_000,
        capacity in 1usize..300_000,
        seed in any::<u8>(),
    ) {
        let (mut a, mut b) = connected(capacity);
        let total: usize = writes.iter().map(|(n, _)| n).sum();
        let data: Vec<u8> = (0..total).map(|i| i.to_le_bytes()[0].wrapping_mul(31).wrapping_add(seed)).collect();
        let got = block_on(async {
            let send = async {
                let mut at = 0;
                for (n, flush) in &writes {
                    a.write_all(&data[at..at + n]).await.unwrap();
                    at += n;
                    if *flush {
                        a.flush().await.unwrap();
                    }
                }
                a.close().await.unwrap();
            };
            let recv = async {
                let mut got = Vec::with_capacity(total);
                let mut buf = vec![0u8; read_size];
                loop {
                    let n = b.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break got;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
            };
            futures::join!(send, recv).1
        });
        prop_assert_eq!(got.len(), data.len());
        prop_assert!(got == data);
    }
}
