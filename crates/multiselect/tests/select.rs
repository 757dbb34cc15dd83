//! The async shell over real byte streams: in-memory pipes and scripted streams.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use lp2p_core::{Connection, Multiaddr, ProtocolId, Stream};
use lp2p_memory::MemoryConnection;
use lp2p_multiselect::{
    Config, MultiselectError, Protocols, Version, dialer_select, dialer_select_with_config,
    list_protocols, listener_select, listener_select_deferred, listener_select_with_config,
};
use lp2p_testkit::io::{Recorder, ScriptedStream, pipe};
use proptest::prelude::*;

const HDR: &[u8] = b"\x13/multistream/1.0.0\n";

/// Runs a test body in virtual time (lp2p-testkit): a bug that hangs fails as a stall.
fn run<F: std::future::Future>(f: F) -> F::Output {
    lp2p_testkit::run(|_sim| f)
}

#[test]
fn match_at_once_and_data_flows_both_ways() {
    run(async {
        let (a, b) = pipe();
        let (a, dialer_writes) = Recorder::new(a);
        let (b, listener_writes) = Recorder::new(b);
        let dialer = async {
            let (p, mut io) = dialer_select(a, ["/echo/1"], Version::V1).await.unwrap();
            assert!(io.is_confirmed());
            io.write_all(b"ping").await.unwrap();
            let mut buf = [0u8; 4];
            io.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"pong");
            p
        };
        let listener = async {
            let (p, mut io) = listener_select(b, ["/echo/1"]).await.unwrap();
            let mut buf = [0u8; 4];
            io.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
            io.write_all(b"pong").await.unwrap();
            p
        };
        let (d, l) = futures::join!(dialer, listener);
        assert_eq!(d, "/echo/1");
        assert_eq!(l, "/echo/1");
        // Header and proposal in one write; header and answer in one write.
        let dw = dialer_writes.lock().unwrap();
        assert_eq!(dw[0], [HDR, b"\x08/echo/1\n"].concat());
        let lw = listener_writes.lock().unwrap();
        assert_eq!(lw[0], [HDR, b"\x08/echo/1\n"].concat());
    });
}

#[test]
fn na_then_fallback() {
    run(async {
        let (a, b) = pipe();
        let dialer = dialer_select(a, ["/x/2", "/x/1"], Version::V1);
        let listener = listener_select(b, Protocols::new().with("/x/1"));
        let (d, l) = futures::join!(dialer, listener);
        let (dp, mut dio) = d.unwrap();
        let (lp, mut lio) = l.unwrap();
        assert_eq!((dp.as_str(), lp.as_str()), ("/x/1", "/x/1"));
        dio.write_all(b"after").await.unwrap();
        dio.close().await.unwrap();
        let mut got = Vec::new();
        lio.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"after");
    });
}

#[test]
fn no_common_protocol_fails_both_sides_cleanly() {
    run(async {
        let (a, b) = pipe();
        let dialer = dialer_select(a, ["/a", "/b"], Version::V1);
        let listener = listener_select(b, ["/c"]);
        let (d, l) = futures::join!(dialer, listener);
        match d {
            Err(MultiselectError::NoCommonProtocol { offered }) => {
                assert_eq!(offered, ["/a", "/b"]);
            }
            other => panic!("dialer: {other:?}"),
        }
        // The dialer dropped the stream: the listener sees the end of it.
        assert!(
            matches!(l, Err(MultiselectError::UnexpectedEof { .. })),
            "{l:?}"
        );
    });
}

#[test]
fn ls_lists_the_exact_protocols() {
    run(async {
        let (a, b) = pipe();
        let supported = Protocols::new()
            .with("/a/1")
            .with("/b/1")
            .with_predicate(|id| id.starts_with("/c/"));
        let (listed, listened) = futures::join!(
            list_protocols(a, Config::default()),
            listener_select(b, &supported)
        );
        assert_eq!(listed.unwrap(), ["/a/1", "/b/1"]);
        // The prober closed the stream afterwards.
        assert!(matches!(
            listened,
            Err(MultiselectError::UnexpectedEof { .. })
        ));
    });
}

#[test]
fn predicate_matcher_through_the_shell() {
    run(async {
        let (a, b) = pipe();
        let supported = Protocols::new().with_predicate(|id| id.starts_with("/app/1."));
        let (d, l) = futures::join!(
            dialer_select(a, ["/app/2.0", "/app/1.4"], Version::V1),
            listener_select(b, supported)
        );
        assert_eq!(d.unwrap().0, "/app/1.4");
        assert_eq!(l.unwrap().0, "/app/1.4");
    });
}

#[test]
fn lazy_data_right_behind_the_proposal_reaches_the_handler() {
    run(async {
        let (a, b) = pipe();
        let (a, dialer_writes) = Recorder::new(a);
        let dialer = async {
            let (p, mut io) = dialer_select(a, ["/echo/1"], Version::V1Lazy)
                .await
                .unwrap();
            assert_eq!(p, "/echo/1");
            assert!(!io.is_confirmed());
            io.write_all(b"hello").await.unwrap();
            io.flush().await.unwrap();
            let mut buf = [0u8; 5];
            io.read_exact(&mut buf).await.unwrap();
            assert!(io.is_confirmed());
            assert_eq!(&buf, b"HELLO");
        };
        let listener = async {
            let (p, mut io) = listener_select(b, ["/echo/1"]).await.unwrap();
            assert_eq!(p, "/echo/1");
            let mut buf = [0u8; 5];
            io.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"hello");
            io.write_all(b"HELLO").await.unwrap();
        };
        futures::join!(dialer, listener);
        // Header, proposal and the first data left in one write.
        let writes = dialer_writes.lock().unwrap();
        assert_eq!(writes[0], [HDR, b"\x08/echo/1\n", b"hello"].concat());
    });
}

#[test]
fn deferred_listener_answers_with_its_first_write() {
    run(async {
        let (a, b) = pipe();
        let (b, listener_writes) = Recorder::new(b);
        let dialer = async {
            let (_, mut io) = dialer_select(a, ["/echo/1"], Version::V1Lazy)
                .await
                .unwrap();
            io.write_all(b"hello").await.unwrap();
            io.flush().await.unwrap();
            let mut buf = [0u8; 5];
            io.read_exact(&mut buf).await.unwrap();
            assert!(io.is_confirmed());
            assert_eq!(&buf, b"HELLO");
        };
        let listener = async {
            let (p, mut io) = listener_select_deferred(b, ["/echo/1"]).await.unwrap();
            assert_eq!(p, "/echo/1");
            // The dialer's data arrived with its proposal: reading it sends nothing.
            let mut buf = [0u8; 5];
            io.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"hello");
            io.write_all(b"HELLO").await.unwrap();
            io.flush().await.unwrap();
        };
        futures::join!(dialer, listener);
        // Header, answer and the reply left in one write.
        let writes = listener_writes.lock().unwrap();
        assert_eq!(writes[0], [HDR, b"\x08/echo/1\n", b"HELLO"].concat());
    });
}

#[test]
fn deferred_listener_that_reads_first_answers_a_waiting_dialer() {
    run(async {
        let (a, b) = pipe();
        let (b, listener_writes) = Recorder::new(b);
        let dialer = async {
            // Not lazy: waits for the answer before it writes.
            let (_, mut io) = dialer_select(a, ["/echo/1"], Version::V1).await.unwrap();
            io.write_all(b"hello").await.unwrap();
            io.close().await.unwrap();
            let mut got = Vec::new();
            io.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"HELLO");
        };
        let listener = async {
            let (_, mut io) = listener_select_deferred(b, ["/echo/1"]).await.unwrap();
            let mut got = Vec::new();
            io.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"hello");
            io.write_all(b"HELLO").await.unwrap();
            io.close().await.unwrap();
        };
        futures::join!(dialer, listener);
        let writes = listener_writes.lock().unwrap();
        assert_eq!(writes[0], [HDR, b"\x08/echo/1\n"].concat());
        assert_eq!(writes[1], b"HELLO");
    });
}

#[test]
fn deferred_listener_sends_its_answer_on_close() {
    run(async {
        let (a, b) = pipe();
        let dialer = async {
            let (_, mut io) = dialer_select(a, ["/echo/1"], Version::V1).await.unwrap();
            assert!(io.is_confirmed());
            let mut got = Vec::new();
            io.read_to_end(&mut got).await.unwrap();
            assert!(got.is_empty());
        };
        let listener = async {
            let (_, mut io) = listener_select_deferred(b, ["/echo/1"]).await.unwrap();
            io.close().await.unwrap();
        };
        futures::join!(dialer, listener);
    });
}

#[test]
fn lazy_coalescing_is_bounded_by_the_config() {
    run(async {
        let (a, b) = pipe();
        let (a, dialer_writes) = Recorder::new(a);
        let config = Config::default().with_max_coalesced_len(3);
        let dialer = async {
            let (_, mut io) = dialer_select_with_config(a, ["/e/1"], Version::V1Lazy, config)
                .await
                .unwrap();
            assert_eq!(io.write(b"hello").await.unwrap(), 3);
            io.write_all(b"lo").await.unwrap();
            io.close().await.unwrap();
            let mut rest = Vec::new();
            io.read_to_end(&mut rest).await.unwrap();
        };
        let listener = async {
            let (_, mut io) = listener_select(b, ["/e/1"]).await.unwrap();
            let mut got = Vec::new();
            io.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"hello");
        };
        futures::join!(dialer, listener);
        let writes = dialer_writes.lock().unwrap();
        assert_eq!(writes[0], [HDR, b"\x05/e/1\n", b"hel"].concat());
        assert_eq!(writes[1], b"lo");
    });
}

#[test]
fn lazy_dialer_that_reads_first_does_not_hang() {
    run(async {
        let (a, b) = pipe();
        let dialer = async {
            let (_, mut io) = dialer_select(a, ["/greet/1"], Version::V1Lazy)
                .await
                .unwrap();
            // The listener speaks first: reading must send our header and proposal.
            let mut buf = [0u8; 7];
            io.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"welcome");
        };
        let listener = async {
            let (_, mut io) = listener_select(b, ["/greet/1"]).await.unwrap();
            io.write_all(b"welcome").await.unwrap();
        };
        futures::join!(dialer, listener);
    });
}

#[test]
fn lazy_with_na_fails_the_first_read() {
    run(async {
        let (a, b) = pipe();
        let dialer = async {
            let (_, mut io) = dialer_select(a, ["/nope/1"], Version::V1Lazy)
                .await
                .unwrap();
            io.write_all(b"\x04data").await.unwrap();
            io.flush().await.unwrap();
            let mut buf = [0u8; 1];
            let err = io.read(&mut buf).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            let inner = err.get_ref().unwrap().downcast_ref::<MultiselectError>();
            assert!(
                matches!(inner, Some(MultiselectError::NoCommonProtocol { offered }) if offered == &["/nope/1"]),
                "{err:?}"
            );
            // Later reads and writes fail too, never retried.
            assert!(io.read(&mut buf).await.is_err());
            assert!(io.write(b"more").await.is_err());
        };
        let listener = async {
            // The optimistic data is parsed as the next message and fails the negotiation.
            let err = listener_select(b, ["/other/1"]).await.unwrap_err();
            assert!(matches!(err, MultiselectError::MissingNewline), "{err:?}");
        };
        futures::join!(dialer, listener);
    });
}

#[test]
fn lazy_with_several_protocols_is_v1() {
    run(async {
        let (a, b) = pipe();
        let (dialed, listened) = futures::join!(
            dialer_select(a, ["/a", "/b"], Version::V1Lazy),
            listener_select(b, ["/b"])
        );
        let (protocol, io) = dialed.unwrap();
        assert_eq!(protocol, "/b");
        assert!(io.is_confirmed());
        assert_eq!(listened.unwrap().0, "/b");
    });
}

#[test]
fn lazy_close_sends_the_pending_negotiation() {
    run(async {
        let (a, b) = pipe();
        let dialer = async {
            let (_, mut io) = dialer_select(a, ["/sink/1"], Version::V1Lazy)
                .await
                .unwrap();
            io.close().await.unwrap();
            // Still reading: the listener's answer is checked, then its end of the stream.
            let mut rest = Vec::new();
            io.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
        };
        let listener = async {
            let (p, mut io) = listener_select(b, ["/sink/1"]).await.unwrap();
            let mut rest = Vec::new();
            io.read_to_end(&mut rest).await.unwrap();
            (p, rest)
        };
        let ((), (p, rest)) = futures::join!(dialer, listener);
        assert_eq!(p, "/sink/1");
        assert!(rest.is_empty());
    });
}

/// A lazy dialer's close sends its end of the stream at once, then waits for the listener's
/// answer: a stream dropped right after `close` no longer meets the answer as unread data (a
/// muxer resets such a stream, which could cost the listener what it had not read yet).
#[test]
fn lazy_close_waits_for_the_answer_and_keeps_what_follows() {
    run(async {
        let (a, b) = pipe();
        let dialer = async {
            let (_, mut io) = dialer_select(a, ["/rr/1"], Version::V1Lazy).await.unwrap();
            io.write_all(b"request").await.unwrap();
            assert!(!io.is_confirmed());
            io.close().await.unwrap();
            assert!(io.is_confirmed(), "close returned before the answer");
            let mut reply = Vec::new();
            io.read_to_end(&mut reply).await.unwrap();
            assert_eq!(reply, b"reply");
        };
        let listener = async {
            let (_, mut io) = listener_select(b, ["/rr/1"]).await.unwrap();
            // The request ends with the dialer's close, before the dialer saw our answer.
            let mut request = Vec::new();
            io.read_to_end(&mut request).await.unwrap();
            assert_eq!(request, b"request");
            io.write_all(b"reply").await.unwrap();
            io.close().await.unwrap();
        };
        futures::join!(dialer, listener);
    });
}

/// A refusal that arrives while a lazy dialer closes fails the close.
#[test]
fn lazy_close_reports_a_refusal() {
    run(async {
        let (a, b) = pipe();
        let dialer = async {
            let (_, mut io) = dialer_select(a, ["/nope/1"], Version::V1Lazy)
                .await
                .unwrap();
            let err = io.close().await.unwrap_err();
            let inner = err.get_ref().unwrap().downcast_ref::<MultiselectError>();
            assert!(
                matches!(inner, Some(MultiselectError::NoCommonProtocol { .. })),
                "{err:?}"
            );
            // Closing again does not change the verdict for reads.
            let mut buf = [0u8; 1];
            assert!(io.read(&mut buf).await.is_err());
        };
        let listener = async {
            // `na`, then the dialer's end of the stream.
            assert!(listener_select(b, ["/other/1"]).await.is_err());
        };
        futures::join!(dialer, listener);
    });
}

#[test]
fn lazy_large_first_write_is_coalesced_in_part() {
    run(async {
        let (a, b) = pipe();
        let payload: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let dialer = async {
            let (_, mut io) = dialer_select(a, ["/bulk/1"], Version::V1Lazy)
                .await
                .unwrap();
            io.write_all(&payload).await.unwrap();
            io.close().await.unwrap();
            let mut rest = Vec::new();
            io.read_to_end(&mut rest).await.unwrap();
        };
        let listener = async {
            let (_, mut io) = listener_select(b, ["/bulk/1"]).await.unwrap();
            let mut got = Vec::new();
            io.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = futures::join!(dialer, listener);
        assert_eq!(got, payload);
    });
}

/// Feeds `remote` bytes to a listener and returns its error.
fn listener_error(remote: &[u8]) -> MultiselectError {
    run(async {
        let (mut a, b) = pipe();
        a.write_all(remote).await.unwrap();
        a.close().await.unwrap();
        let err = listener_select(b, ["/a"]).await.unwrap_err();
        drop(a);
        err
    })
}

/// Feeds `remote` bytes to a dialer and returns its error.
fn dialer_error(remote: &[u8]) -> MultiselectError {
    run(async {
        let (a, mut b) = pipe();
        b.write_all(remote).await.unwrap();
        b.close().await.unwrap();
        dialer_select(a, ["/a"], Version::V1).await.unwrap_err()
    })
}

#[test]
fn bad_input_through_the_shell() {
    let over_long_varint = [HDR, &[0xff; 10]].concat();
    let length_over_limit = [HDR, &[0x81, 0x08], &[b'/'; 1025]].concat();
    let truncated = [HDR, b"\x09/a"].concat();
    let not_utf8 = [HDR, b"\x04/\xc3\x28\n"].concat();
    let no_newline = [HDR, b"\x03/ab"].concat();
    let mut id_over_limit = HDR.to_vec();
    id_over_limit.extend_from_slice(&[0x82, 0x08]); // 1026 bytes: "/" + 1024 x + "\n"
    id_over_limit.push(b'/');
    id_over_limit.extend(std::iter::repeat_n(b'x', 1024));
    id_over_limit.push(b'\n');
    let wrong_header = b"\x13/multistream/2.0.0\n".to_vec();

    for remote in [
        &over_long_varint,
        &length_over_limit,
        &truncated,
        &not_utf8,
        &no_newline,
        &id_over_limit,
        &wrong_header,
    ] {
        let l = listener_error(remote);
        let d = dialer_error(remote);
        for err in [&l, &d] {
            let ok = match remote {
                r if r == &over_long_varint => matches!(err, MultiselectError::InvalidLength(_)),
                r if r == &length_over_limit => matches!(
                    err,
                    MultiselectError::MessageTooLong {
                        len: 1025,
                        max: 1024
                    }
                ),
                r if r == &truncated => matches!(err, MultiselectError::UnexpectedEof { .. }),
                r if r == &not_utf8 => matches!(err, MultiselectError::NotUtf8),
                r if r == &no_newline => matches!(err, MultiselectError::MissingNewline),
                r if r == &id_over_limit => {
                    matches!(err, MultiselectError::MessageTooLong { len: 1026, .. })
                }
                _ => matches!(err, MultiselectError::BadHeader { .. }),
            };
            assert!(ok, "{remote:?}: {err:?}");
        }
    }
}

#[test]
fn remote_closing_mid_negotiation() {
    assert!(matches!(
        listener_error(b""),
        MultiselectError::UnexpectedEof { .. }
    ));
    assert!(matches!(
        listener_error(HDR),
        MultiselectError::UnexpectedEof { .. }
    ));
    assert!(matches!(
        dialer_error(HDR),
        MultiselectError::UnexpectedEof { .. }
    ));
    let err = dialer_error(b"");
    assert!(matches!(err, MultiselectError::UnexpectedEof { .. }));
    assert!(err.to_string().contains("header"), "{err}");
}

#[test]
fn listener_round_limit_through_the_shell() {
    run(async {
        let (mut a, b) = pipe();
        let mut remote = HDR.to_vec();
        for _ in 0..10 {
            remote.extend_from_slice(b"\x03/x\n");
        }
        a.write_all(&remote).await.unwrap();
        let err = listener_select_with_config(b, ["/a"], Config::default().with_max_rounds(4))
            .await
            .unwrap_err();
        assert!(matches!(err, MultiselectError::TooManyRounds { max: 4 }));
    });
}

#[test]
fn invalid_proposals_are_refused_before_any_io() {
    run(async {
        let (a, mut b) = pipe();
        let err = dialer_select(a, ["no-slash"], Version::V1)
            .await
            .unwrap_err();
        assert!(matches!(err, MultiselectError::InvalidProtocolId { .. }));
        // Nothing was sent.
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    });
}

/// A stream that records a reset.
struct ResetProbe {
    reset: Arc<Mutex<bool>>,
    inner: MemoryConnection,
}

impl AsyncRead for ResetProbe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResetProbe {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl Stream for ResetProbe {
    fn reset(&mut self) {
        *self.reset.lock().unwrap() = true;
    }
}

#[test]
fn negotiated_is_a_connection_and_a_stream() {
    run(async {
        let (a, b) = pipe();
        let reset = Arc::new(Mutex::new(false));
        let probe = ResetProbe {
            reset: reset.clone(),
            inner: a,
        };
        let (d, l) = futures::join!(
            dialer_select(probe, ["/s"], Version::V1),
            listener_select(b, ["/s"])
        );
        let (_, mut stream) = d.unwrap();
        let (_, conn) = l.unwrap();

        assert_eq!(as_connection(&conn), "/memory/1".parse().unwrap());
        assert_eq!(conn.local_addr(), "/memory/2".parse::<Multiaddr>().unwrap());

        let boxed: &mut dyn Stream = &mut stream;
        boxed.reset();
        assert!(*reset.lock().unwrap());
        assert!(format!("{conn:?}").contains("Negotiated"));
    });
}

/// Uses `c` as a trait object, proving it is a `Connection`.
fn as_connection(c: &dyn Connection) -> Multiaddr {
    c.remote_addr()
}

/// Reads everything a `Negotiated` yields until EOF.
async fn read_all<S: AsyncRead + Unpin>(mut io: S) -> Vec<u8> {
    let mut out = Vec::new();
    io.read_to_end(&mut out).await.unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// However the listener's input is split into reads, the outcome, the bytes handed to
    /// the protocol and the bytes sent are the same.
    #[test]
    fn listener_result_is_independent_of_read_splits(pieces in proptest::collection::vec(1usize..40, 1..8)) {
        let input = [HDR, b"\x03/x\n", b"\x03ls\n", b"\x03/b\n", b"application bytes"].concat();
        let (protocol, leftover, output) = futures::executor::block_on(async {
            let (p, mut io) = listener_select(ScriptedStream::new(input, pieces), ["/a", "/b"]).await.unwrap();
            let leftover = read_all(&mut io).await;
            (p, leftover, io.get_ref().written().to_vec())
        });
        prop_assert_eq!(protocol, ProtocolId::from("/b"));
        prop_assert_eq!(leftover, b"application bytes".to_vec());
        prop_assert_eq!(output, [HDR, b"\x03na\n", b"\x09\x03/a\n\x03/b\n\n", b"\x03/b\n"].concat());
    }

    /// The same for the dialer, in both versions.
    #[test]
    fn dialer_result_is_independent_of_read_splits(
        pieces in proptest::collection::vec(1usize..40, 1..8),
        lazy in any::<bool>(),
    ) {
        let version = if lazy { Version::V1Lazy } else { Version::V1 };
        let input = [HDR, b"\x03na\n", b"\x03/b\n", b"application bytes"].concat();
        let (protocol, leftover, output) = futures::executor::block_on(async {
            let (p, mut io) = dialer_select(ScriptedStream::new(input, pieces), ["/a", "/b"], version).await.unwrap();
            let leftover = read_all(&mut io).await;
            (p, leftover, io.get_ref().written().to_vec())
        });
        prop_assert_eq!(protocol, ProtocolId::from("/b"));
        prop_assert_eq!(leftover, b"application bytes".to_vec());
        prop_assert_eq!(output, [HDR, b"\x03/a\n", b"\x03/b\n"].concat());
    }

    /// A lazy dialer over any split: the data behind the echo is read back whole.
    #[test]
    fn lazy_dialer_result_is_independent_of_read_splits(pieces in proptest::collection::vec(1usize..40, 1..8)) {
        let input = [HDR, b"\x03/a\n", b"response"].concat();
        let (leftover, output) = futures::executor::block_on(async {
            let (_, mut io) = dialer_select(ScriptedStream::new(input, pieces), ["/a"], Version::V1Lazy).await.unwrap();
            io.write_all(b"request").await.unwrap();
            let leftover = read_all(&mut io).await;
            (leftover, io.get_ref().written().to_vec())
        });
        prop_assert_eq!(leftover, b"response".to_vec());
        prop_assert_eq!(output, [HDR, b"\x03/a\n", b"request"].concat());
    }

    /// Garbage never panics or hangs the listener: it either agrees or fails.
    #[test]
    fn listener_survives_garbage(garbage in proptest::collection::vec(any::<u8>(), 0..300), pieces in proptest::collection::vec(1usize..40, 1..4)) {
        let input = [HDR, &garbage].concat();
        let _ = futures::executor::block_on(listener_select(ScriptedStream::new(input, pieces), ["/a"]));
    }
}
