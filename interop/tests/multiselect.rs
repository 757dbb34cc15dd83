//! lp2p-multiselect against rust-libp2p's `multistream-select` 0.14, both roles, over an
//! in-memory pipe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_interop::{init_tracing, pipe, run};
use lp2p_multiselect::{self as ours, MultiselectError, Protocols};
use multistream_select as theirs;

/// Writes `request`, reads the same number of bytes back, and checks they are `response`.
async fn exchange<S: futures::AsyncRead + futures::AsyncWrite + Unpin>(
    io: &mut S,
    request: &[u8],
    response: &[u8],
) {
    io.write_all(request).await.unwrap();
    io.flush().await.unwrap();
    let mut buf = vec![0u8; response.len()];
    io.read_exact(&mut buf).await.unwrap();
    assert_eq!(buf, response);
}

/// Reads `request` and answers `response`.
async fn serve<S: futures::AsyncRead + futures::AsyncWrite + Unpin>(
    io: &mut S,
    request: &[u8],
    response: &[u8],
) {
    let mut buf = vec![0u8; request.len()];
    io.read_exact(&mut buf).await.unwrap();
    assert_eq!(buf, request);
    io.write_all(response).await.unwrap();
    io.flush().await.unwrap();
}

// ---- lp2p dialer, rust-libp2p listener -------------------------------------------------

#[test]
fn multiselect_lp2p_dialer_rust_listener_match() {
    init_tracing();
    run("match", async {
        let (a, b) = pipe();
        let dialer = async {
            let (p, mut io) = ours::dialer_select(a, ["/echo/1.0.0"], ours::Version::V1)
                .await
                .unwrap();
            assert_eq!(p, "/echo/1.0.0");
            exchange(&mut io, b"ping", b"pong").await;
        };
        let listener = async {
            let (p, mut io) = theirs::listener_select_proto(b, ["/echo/1.0.0"])
                .await
                .unwrap();
            assert_eq!(p, "/echo/1.0.0");
            serve(&mut io, b"ping", b"pong").await;
        };
        futures::join!(dialer, listener);
    });
}

#[test]
fn multiselect_lp2p_dialer_rust_listener_na_then_fallback() {
    init_tracing();
    run("fallback", async {
        let (a, b) = pipe();
        let dialer = async {
            let (p, mut io) = ours::dialer_select(
                a,
                ["/echo/3.0.0", "/echo/2.0.0", "/echo/1.0.0"],
                ours::Version::V1,
            )
            .await
            .unwrap();
            assert_eq!(p, "/echo/1.0.0");
            exchange(&mut io, b"hello", b"world").await;
        };
        let listener = async {
            let (p, mut io) = theirs::listener_select_proto(b, ["/other/1", "/echo/1.0.0"])
                .await
                .unwrap();
            assert_eq!(p, "/echo/1.0.0");
            serve(&mut io, b"hello", b"world").await;
        };
        futures::join!(dialer, listener);
    });
}

#[test]
fn multiselect_lp2p_dialer_rust_listener_no_common_protocol() {
    init_tracing();
    run("no common protocol", async {
        let (a, b) = pipe();
        let (dialed, listened) = futures::join!(
            ours::dialer_select(a, ["/a/1", "/b/1"], ours::Version::V1),
            theirs::listener_select_proto(b, ["/c/1"]),
        );
        match dialed {
            Err(MultiselectError::NoCommonProtocol { offered }) => {
                assert_eq!(offered, ["/a/1", "/b/1"]);
            }
            other => panic!("lp2p dialer: {other:?}"),
        }
        assert!(
            matches!(listened, Err(theirs::NegotiationError::Failed)),
            "rust listener: {listened:?}"
        );
    });
}

#[test]
fn multiselect_lp2p_lazy_dialer_rust_listener_data_follows() {
    init_tracing();
    run("lazy", async {
        let (a, b) = pipe();
        let dialer = async {
            let (p, mut io) = ours::dialer_select(a, ["/echo/1.0.0"], ours::Version::V1Lazy)
                .await
                .unwrap();
            assert_eq!(p, "/echo/1.0.0");
            assert!(!io.is_confirmed());
            exchange(&mut io, b"0-rtt request", b"response").await;
            assert!(io.is_confirmed());
            exchange(&mut io, b"second", b"again").await;
        };
        let listener = async {
            let (p, mut io) = theirs::listener_select_proto(b, ["/echo/1.0.0"])
                .await
                .unwrap();
            assert_eq!(p, "/echo/1.0.0");
            serve(&mut io, b"0-rtt request", b"response").await;
            serve(&mut io, b"second", b"again").await;
        };
        futures::join!(dialer, listener);
    });
}

#[test]
fn multiselect_lp2p_lazy_dialer_rust_listener_na() {
    init_tracing();
    run("lazy na", async {
        let (a, b) = pipe();
        let dialer = async {
            let (_, mut io) = ours::dialer_select(a, ["/missing/1"], ours::Version::V1Lazy)
                .await
                .unwrap();
            io.write_all(b"optimistic").await.unwrap();
            io.flush().await.unwrap();
            let mut buf = [0u8; 8];
            let err = io.read(&mut buf).await.unwrap_err();
            let inner = err
                .get_ref()
                .and_then(|e| e.downcast_ref::<MultiselectError>());
            assert!(
                matches!(inner, Some(MultiselectError::NoCommonProtocol { .. })),
                "{err:?}"
            );
        };
        let listener = async {
            let result = theirs::listener_select_proto(b, ["/present/1"]).await;
            assert!(result.is_err(), "rust listener agreed to something");
        };
        futures::join!(dialer, listener);
    });
}

#[test]
fn multiselect_lp2p_ls_rust_listener() {
    init_tracing();
    run("ls", async {
        let (a, b) = pipe();
        let (listed, _) = futures::join!(
            ours::list_protocols(a, ours::Config::default()),
            theirs::listener_select_proto(b, ["/a/1", "/b/2"]),
        );
        assert_eq!(listed.unwrap(), ["/a/1", "/b/2"]);
    });
}

// ---- rust-libp2p dialer, lp2p listener -------------------------------------------------

#[test]
fn multiselect_rust_dialer_lp2p_listener_match() {
    init_tracing();
    run("match", async {
        let (a, b) = pipe();
        let dialer = async {
            let (p, mut io) = theirs::dialer_select_proto(a, ["/echo/1.0.0"], theirs::Version::V1)
                .await
                .unwrap();
            assert_eq!(p, "/echo/1.0.0");
            exchange(&mut io, b"ping", b"pong").await;
        };
        let listener = async {
            let (p, mut io) = ours::listener_select(b, ["/echo/1.0.0"]).await.unwrap();
            assert_eq!(p, "/echo/1.0.0");
            serve(&mut io, b"ping", b"pong").await;
        };
        futures::join!(dialer, listener);
    });
}

#[test]
fn multiselect_rust_dialer_lp2p_listener_na_then_fallback() {
    init_tracing();
    run("fallback", async {
        let (a, b) = pipe();
        let dialer = async {
            let (p, mut io) = theirs::dialer_select_proto(
                a,
                ["/echo/3.0.0", "/echo/2.0.0", "/echo/1.0.0"],
                theirs::Version::V1,
            )
            .await
            .unwrap();
            assert_eq!(p, "/echo/2.0.0");
            exchange(&mut io, b"hello", b"world").await;
        };
        let listener = async {
            let supported = Protocols::new().with("/echo/1.0.0").with("/echo/2.0.0");
            let (p, mut io) = ours::listener_select(b, supported).await.unwrap();
            assert_eq!(p, "/echo/2.0.0");
            serve(&mut io, b"hello", b"world").await;
        };
        futures::join!(dialer, listener);
    });
}

#[test]
fn multiselect_rust_dialer_lp2p_listener_no_common_protocol() {
    init_tracing();
    run("no common protocol", async {
        let (a, b) = pipe();
        let (dialed, listened) = futures::join!(
            theirs::dialer_select_proto(a, ["/a/1", "/b/1"], theirs::Version::V1),
            ours::listener_select(b, ["/c/1"]),
        );
        assert!(
            matches!(dialed, Err(theirs::NegotiationError::Failed)),
            "rust dialer: {dialed:?}"
        );
        assert!(
            matches!(listened, Err(MultiselectError::UnexpectedEof { .. })),
            "lp2p listener: {listened:?}"
        );
    });
}

#[test]
fn multiselect_rust_lazy_dialer_lp2p_listener_data_follows() {
    init_tracing();
    run("lazy", async {
        let (a, b) = pipe();
        let dialer = async {
            let (p, mut io) =
                theirs::dialer_select_proto(a, ["/echo/1.0.0"], theirs::Version::V1Lazy)
                    .await
                    .unwrap();
            assert_eq!(p, "/echo/1.0.0");
            exchange(&mut io, b"0-rtt request", b"response").await;
            exchange(&mut io, b"second", b"again").await;
        };
        let listener = async {
            let (p, mut io) = ours::listener_select(b, ["/echo/1.0.0"]).await.unwrap();
            assert_eq!(p, "/echo/1.0.0");
            serve(&mut io, b"0-rtt request", b"response").await;
            serve(&mut io, b"second", b"again").await;
        };
        futures::join!(dialer, listener);
    });
}

#[test]
fn multiselect_rust_lazy_dialer_lp2p_listener_na() {
    init_tracing();
    run("lazy na", async {
        let (a, b) = pipe();
        let dialer = async {
            let (_, mut io) =
                theirs::dialer_select_proto(a, ["/missing/1"], theirs::Version::V1Lazy)
                    .await
                    .unwrap();
            // Data a multistream parser reads as a complete, newline-less message.
            io.write_all(b"\x04data").await.unwrap();
            io.flush().await.unwrap();
            let mut buf = [0u8; 8];
            assert!(
                io.read(&mut buf).await.is_err(),
                "rust dialer read data after na"
            );
        };
        let listener = async {
            let err = ours::listener_select(b, ["/present/1"]).await.unwrap_err();
            assert!(matches!(err, MultiselectError::MissingNewline), "{err:?}");
        };
        futures::join!(dialer, listener);
    });
}

#[test]
fn multiselect_rust_lazy_dialer_several_protocols_lp2p_listener() {
    init_tracing();
    run("lazy, several protocols", async {
        let (a, b) = pipe();
        // rust-libp2p proposes the first in V1 fashion and settles lazily on the last.
        let dialer = async {
            let (p, mut io) =
                theirs::dialer_select_proto(a, ["/first/1", "/last/1"], theirs::Version::V1Lazy)
                    .await
                    .unwrap();
            assert_eq!(p, "/last/1");
            exchange(&mut io, b"req", b"resp").await;
        };
        let listener = async {
            let (p, mut io) = ours::listener_select(b, ["/last/1"]).await.unwrap();
            assert_eq!(p, "/last/1");
            serve(&mut io, b"req", b"resp").await;
        };
        futures::join!(dialer, listener);
    });
}
