//! The connection receive window is reserved from the host's memory budget once the remote
//! is known: the whole configured window when the budget has room, a smaller one when it is
//! tight, none (the connection refused) when it cannot grant even the handshake's window;
//! and the reservation is returned when the connection ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{ctx, listen, pair_in, within};
use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::memory::SharedLimit;
use lp2p_core::runtime::block_on;
use lp2p_core::{DialOpts, Error, MuxedConnection, RuntimeHandle, Transport, TransportContext};
use lp2p_quic::{
    DEFAULT_CONNECTION_RECEIVE_WINDOW, HANDSHAKE_RECEIVE_WINDOW, QuicConfig, QuicTransport,
};

const MIB: usize = 1024 * 1024;

fn ctx_with(limit: &SharedLimit) -> TransportContext {
    let mut ctx = ctx();
    ctx.memory = Some(Arc::new(limit.clone()));
    ctx
}

/// Waits until `limit` counts `bytes` in use (connection state is freed by its task, after
/// the handles are gone).
async fn until_used(rt: &RuntimeHandle, limit: &SharedLimit, bytes: usize) {
    within(rt, async {
        while limit.used() != bytes {
            rt.sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Sends `len` bytes from `from` to `to` on one stream and checks they all arrive.
async fn upload(from: &Arc<dyn MuxedConnection>, to: &Arc<dyn MuxedConnection>, len: usize) {
    let data: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
    let receive = async {
        let mut s = to.accept_stream().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        got
    };
    let send = async {
        let mut s = from.open_stream().await.unwrap();
        s.write_all(&data).await.unwrap();
        s.close().await.unwrap();
    };
    let (got, ()) = futures::join!(receive, send);
    assert!(got == data, "{} of {len} bytes arrived intact", got.len());
}

#[test]
fn the_whole_window_is_reserved_and_returned_when_the_connection_ends() {
    block_on(async {
        let rt = RuntimeHandle::default();
        let (a_limit, b_limit) = (SharedLimit::new(64 * MIB), SharedLimit::new(64 * MIB));
        let p = pair_in(
            QuicConfig::default(),
            ctx_with(&a_limit),
            ctx_with(&b_limit),
        )
        .await;
        let window = DEFAULT_CONNECTION_RECEIVE_WINDOW as usize;
        assert_eq!(a_limit.used(), window);
        assert_eq!(b_limit.used(), window);
        assert_eq!(p.b.stats().windows_reduced_for_memory, 0);
        within(&rt, upload(&p.dialer.muxer, &p.listener.muxer, 4 * MIB)).await;
        p.dialer.muxer.close().await;
        drop(p);
        until_used(&rt, &a_limit, 0).await;
        until_used(&rt, &b_limit, 0).await;
    });
}

#[test]
fn a_tight_budget_gets_a_smaller_window_that_still_carries_data() {
    block_on(async {
        let rt = RuntimeHandle::default();
        // 3 MiB of room: 16, 8 and 4 MiB are refused, 2 MiB is granted.
        let b_limit = SharedLimit::new(3 * MIB);
        let p = pair_in(QuicConfig::default(), ctx(), ctx_with(&b_limit)).await;
        assert_eq!(b_limit.used(), 2 * MIB);
        assert_eq!(p.b.stats().windows_reduced_for_memory, 1);
        // The window was raised from the handshake's 1 MiB to the 2 MiB reserved: that much,
        // and no more, can be sent to a stream nobody reads.
        let (credit, mut unread) = within(&rt, unread_credit(&rt, &p.dialer.muxer)).await;
        assert!(
            credit > HANDSHAKE_RECEIVE_WINDOW as usize + MIB / 2 && credit <= 2 * MIB,
            "{credit} bytes went out"
        );
        // That stream holds the whole connection window: read it out before going on.
        within(&rt, async {
            let drain = async {
                let mut s = p.listener.muxer.accept_stream().await.unwrap();
                let mut got = Vec::new();
                s.read_to_end(&mut got).await.unwrap();
                got.len()
            };
            let (drained, ()) = futures::join!(drain, async { unread.close().await.unwrap() });
            assert_eq!(drained, credit);
        })
        .await;
        // Four times the window, so flow control must hold the sender back and let it go.
        within(&rt, upload(&p.dialer.muxer, &p.listener.muxer, 8 * MIB)).await;
        assert_eq!(b_limit.used(), 2 * MIB);
    });
}

/// Writes to a new stream of `conn` that the remote never reads until writes stop going
/// through (three 500 ms waits in a row): how many bytes the remote's window let out, and the
/// stream.
async fn unread_credit(
    rt: &RuntimeHandle,
    conn: &Arc<dyn MuxedConnection>,
) -> (usize, Box<dyn lp2p_core::Stream>) {
    let mut s = conn.open_stream().await.unwrap();
    let chunk = vec![7u8; 16 * 1024];
    let (mut sent, mut stalls) = (0, 0);
    while stalls < 3 {
        match rt
            .timeout(Duration::from_millis(500), s.write(&chunk))
            .await
        {
            Ok(written) => {
                sent += written.unwrap();
                stalls = 0;
            }
            Err(_) => stalls += 1,
        }
    }
    (sent, s)
}

#[test]
fn a_budget_below_the_handshake_window_refuses_the_connection() {
    block_on(async {
        let rt = RuntimeHandle::default();
        let b_limit = SharedLimit::new(HANDSHAKE_RECEIVE_WINDOW as usize / 2);
        let (a, b) = (QuicTransport::default(), QuicTransport::default());
        let (a_ctx, b_ctx) = (ctx(), ctx_with(&b_limit));
        let (mut listener, addr) = listen(&b, &b_ctx, "/ip4/127.0.0.1/udp/0/quic-v1").await;
        let accepted = async {
            let incoming = listener.accept().await.unwrap();
            incoming.upgrade.await
        };
        let dialed = a.dial(
            &a_ctx,
            &addr,
            DialOpts::to_peer(Some(b_ctx.local_peer_id())),
        );
        let (accepted, dialed) = within(&rt, async { futures::join!(accepted, dialed) }).await;
        let Err(err) = accepted else {
            panic!("the listener accepted the connection")
        };
        assert!(matches!(err, Error::Denied(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&a_ctx.local_peer_id().to_string())
                && text.contains("receive window")
                && text.contains("memory limit"),
            "{text}"
        );
        assert_eq!(b.stats().refused_for_memory, 1);
        assert_eq!(b_limit.used(), 0);
        // The dialer's handshake may finish before the refusal arrives; the connection then
        // ends at once.
        if let Ok(established) = dialed {
            within(&rt, async {
                while !established.muxer.is_closed() {
                    rt.sleep(Duration::from_millis(10)).await;
                }
            })
            .await;
        }
    });
}
