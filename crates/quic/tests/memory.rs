//! The connection receive window and the host's memory budget: a connection starts at
//! `INITIAL_RECEIVE_WINDOW` and reserves nothing while its traffic is light; bulk traffic
//! grows the window, reserving each growth first; a budget that refuses keeps the window
//! where it is (data still flows); and the reservation is returned when the connection ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{ctx, pair_in, within};
use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::memory::SharedLimit;
use lp2p_core::runtime::block_on;
use lp2p_core::{MuxedConnection, RuntimeHandle, TransportContext};
use lp2p_quic::{DEFAULT_CONNECTION_RECEIVE_WINDOW, INITIAL_RECEIVE_WINDOW, QuicConfig};

const MIB: usize = 1024 * 1024;
const INITIAL: usize = INITIAL_RECEIVE_WINDOW as usize;

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

/// Writes to a new stream of `from` that `to` does not read until writes stop going
/// through (three 500 ms waits in a row): how many bytes the receive window let out. Then
/// `to` reads that stream out, so the connection window is free again.
async fn unread_credit(
    rt: &RuntimeHandle,
    from: &Arc<dyn MuxedConnection>,
    to: &Arc<dyn MuxedConnection>,
) -> usize {
    let mut s = from.open_stream().await.unwrap();
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
    let drain = async {
        let mut r = to.accept_stream().await.unwrap();
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        got.len()
    };
    let (drained, ()) = futures::join!(drain, async { s.close().await.unwrap() });
    assert_eq!(drained, sent);
    sent
}

#[test]
fn light_traffic_reserves_nothing() {
    block_on(async {
        let rt = RuntimeHandle::default();
        let (a_limit, b_limit) = (SharedLimit::new(64 * MIB), SharedLimit::new(64 * MIB));
        let p = pair_in(
            QuicConfig::default(),
            ctx_with(&a_limit),
            ctx_with(&b_limit),
        )
        .await;
        for _ in 0..20 {
            within(&rt, upload(&p.dialer.muxer, &p.listener.muxer, 1024)).await;
            rt.sleep(Duration::from_millis(5)).await;
        }
        assert_eq!((a_limit.used(), b_limit.used()), (0, 0));
    });
}

#[test]
fn bulk_traffic_grows_the_window_reserved_and_returned_when_the_connection_ends() {
    block_on(async {
        let rt = RuntimeHandle::default();
        let b_limit = SharedLimit::new(64 * MIB);
        let p = pair_in(QuicConfig::default(), ctx(), ctx_with(&b_limit)).await;
        // Uploads until the listener's window grew (the first 8 MiB do on any machine that
        // moves 13 MB/s; a loaded one gets more tries).
        for _ in 0..16 {
            within(&rt, upload(&p.dialer.muxer, &p.listener.muxer, 8 * MIB)).await;
            if b_limit.used() > 0 {
                break;
            }
        }
        let reserved = b_limit.used();
        let most = DEFAULT_CONNECTION_RECEIVE_WINDOW as usize - INITIAL;
        assert!(
            reserved >= INITIAL && reserved <= most,
            "{reserved} bytes reserved"
        );
        // The window on the wire is the grown one: an unread stream takes more than the
        // initial window (at most the reserved growth plus it).
        let credit = within(&rt, unread_credit(&rt, &p.dialer.muxer, &p.listener.muxer)).await;
        let window = INITIAL + b_limit.used();
        assert!(
            credit > INITIAL && credit <= window,
            "{credit} bytes went out for a window of {window}"
        );
        p.dialer.muxer.close().await;
        drop(p);
        until_used(&rt, &b_limit, 0).await;
    });
}

#[test]
fn a_budget_that_refuses_keeps_the_initial_window_and_data_still_flows() {
    block_on(async {
        let rt = RuntimeHandle::default();
        let b_limit = SharedLimit::new(0);
        let p = pair_in(QuicConfig::default(), ctx(), ctx_with(&b_limit)).await;
        // 32 times the window: flow control holds the sender back and lets it go.
        within(&rt, upload(&p.dialer.muxer, &p.listener.muxer, 8 * MIB)).await;
        assert_eq!(p.b.stats().window_growth_refused, 1);
        assert_eq!(b_limit.used(), 0);
        let credit = within(&rt, unread_credit(&rt, &p.dialer.muxer, &p.listener.muxer)).await;
        assert!(credit <= INITIAL, "{credit} bytes went out");
    });
}
