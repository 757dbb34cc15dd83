//! End-to-end tests over an in-memory connection (lp2p-memory).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::{Keypair, MuxerUpgrader, Role, RuntimeHandle, SecureConnection, UnlimitedMemory};
use lp2p_memory::MemoryConnection;
use lp2p_mplex::{Mplex, MplexConfig, MplexConnection, PROTOCOL_ID};

use common::run;

fn memory_pair() -> (MemoryConnection, MemoryConnection) {
    MemoryConnection::pair(
        256 * 1024,
        "/memory/1".parse().unwrap(),
        "/memory/2".parse().unwrap(),
    )
}

fn pair_with(
    dialer: MplexConfig,
    listener: MplexConfig,
) -> (Arc<MplexConnection>, Arc<MplexConnection>) {
    let rt = RuntimeHandle::default();
    let (a, b) = memory_pair();
    (
        Mplex::new(dialer).start(a, Role::Initiator, &rt),
        Mplex::new(listener).start(b, Role::Responder, &rt),
    )
}

// The scenarios every transport runs (tests/common), over this file's `pair_with`.
common::transport_tests!(pair_with);

#[test]
fn many_streams_with_small_frames_and_a_tight_connection_cap() {
    // Small frames and a connection cap far below what is in flight: input pauses and
    // resumes many times, and every byte still arrives.
    let config = MplexConfig::default()
        .with_split_size(1000)
        .with_max_connection_buffer(256 * 1024)
        .with_max_send_buffer(8 * 1024);
    let (d, l) = pair_with(config.clone(), config);
    run(common::many_streams_both_ways(d, l, 100, 100_000));
}

#[test]
fn remote_protocol_error_fails_the_streams() {
    // A raw peer that opens a stream, sends data, then a frame with flag 7.
    let rt = RuntimeHandle::default();
    let (a, mut raw) = memory_pair();
    let conn = Mplex::default().start(a, Role::Responder, &rt);
    run(async move {
        raw.write_all(&[0x08, 0x00, 0x0a, 0x02, b'h', b'i'])
            .await
            .unwrap();
        let mut stream = conn.accept().await.unwrap();
        let mut buf = [0u8; 2];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hi");
        raw.write_all(&[0x0f, 0x00]).await.unwrap();
        let err = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
        assert!(conn.is_closed());
        // The connection was dropped: the raw peer reads EOF.
        let mut rest = Vec::new();
        raw.read_to_end(&mut rest).await.unwrap();
    });
}

#[test]
fn upgrade_through_the_muxer_trait() {
    let rt = RuntimeHandle::default();
    let (a, b) = memory_pair();
    let key_a = Keypair::generate_ed25519();
    let key_b = Keypair::generate_ed25519();
    let secure_a = SecureConnection::new(Box::new(a), key_b.public(), "/plaintext/2.0.0");
    let secure_b = SecureConnection::new(Box::new(b), key_a.public(), "/plaintext/2.0.0");
    let mplex = Mplex::default();
    assert_eq!(mplex.protocol_id(), PROTOCOL_ID);
    let dialer = mplex.upgrade(secure_a, Role::Initiator, &rt, UnlimitedMemory::boxed());
    let listener: Arc<dyn lp2p_core::MuxedConnection> =
        mplex.upgrade(secure_b, Role::Responder, &rt, UnlimitedMemory::boxed());
    run(async move {
        let mut out = dialer.open_stream().await.unwrap();
        out.write_all(b"through the trait").await.unwrap();
        out.close().await.unwrap();
        let mut inbound = listener.accept_stream().await.unwrap();
        let mut got = Vec::new();
        inbound.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"through the trait");
        assert_eq!(dialer.num_streams(), 1);
        dialer.close().await;
        assert!(dialer.is_closed());
        assert!(dialer.open_stream().await.is_err());
        common::wait_until(|| listener.is_closed()).await;
    });
}

#[test]
fn connection_task_ends_with_the_connection() {
    let rt = RuntimeHandle::default().scope();
    let (a, b) = memory_pair();
    let d = Mplex::default().start(a, Role::Initiator, &rt);
    let l = Mplex::default().start(b, Role::Responder, &rt);
    assert_eq!(rt.live_tasks(), 2);
    run(async move {
        d.close().await;
        common::wait_until(|| l.is_closed()).await;
        drop((d, l));
        common::wait_until(|| rt.live_tasks() == 0).await;
    });
}
