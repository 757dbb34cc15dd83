//! perf over the memory transport: sizes, the server's cap, a short server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::runtime::block_on;
use lp2p_host::{Host, HostBuilder, HostStream};
use lp2p_memory::MemoryTransport;
use lp2p_noise::Noise;
use lp2p_perf::{PROTOCOL, PerfConfig, PerfError};
use lp2p_yamux::Yamux;

fn builder() -> HostBuilder {
    Host::builder()
        .transport(MemoryTransport::default())
        .security(Noise::new())
        .muxer(Yamux::default())
}

async fn pair() -> (Host, Host) {
    let server = builder()
        .listen_on("/memory/0".parse().unwrap())
        .build()
        .await
        .unwrap();
    let client = builder().build().await.unwrap();
    client
        .connect(server.local_peer_id(), server.listen_addrs())
        .await
        .unwrap();
    (server, client)
}

#[test]
fn sizes_both_ways() {
    block_on(async {
        let (server, client) = pair().await;
        lp2p_perf::serve(&server, PerfConfig::default());
        for (up, down) in [(0, 0), (1, 0), (0, 1), (100_000, 3), (5 << 20, 7 << 20)] {
            let r = lp2p_perf::run(&client, &server.local_peer_id(), up, down)
                .await
                .unwrap();
            assert_eq!((r.uploaded, r.downloaded), (up, down));
            assert!(r.total >= r.download_time);
        }
        client.close().await;
        server.close().await;
    });
}

#[test]
fn requests_over_the_cap_are_refused() {
    block_on(async {
        let (server, client) = pair().await;
        lp2p_perf::serve(&server, PerfConfig { max_download: 1000 });
        let err = lp2p_perf::run(&client, &server.local_peer_id(), 10, 1001)
            .await
            .unwrap_err();
        assert!(
            matches!(err, PerfError::Io { .. } | PerfError::ShortDownload { .. }),
            "{err}"
        );
        let ok = lp2p_perf::run(&client, &server.local_peer_id(), 10, 1000)
            .await
            .unwrap();
        assert_eq!(ok.downloaded, 1000);
        client.close().await;
        server.close().await;
    });
}

#[test]
fn a_short_server_is_detected() {
    block_on(async {
        let (server, client) = pair().await;
        // A broken server: sends half of what was asked.
        server.set_stream_handler(PROTOCOL, |mut s: HostStream| async move {
            let mut header = [0u8; 8];
            s.read_exact(&mut header).await.unwrap();
            let mut sink = Vec::new();
            s.read_to_end(&mut sink).await.unwrap();
            let half = u64::from_be_bytes(header) / 2;
            s.write_all(&vec![0u8; usize::try_from(half).unwrap()])
                .await
                .unwrap();
            s.close().await.unwrap();
        });
        let err = lp2p_perf::run(&client, &server.local_peer_id(), 0, 1000)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                PerfError::ShortDownload {
                    expected: 1000,
                    received: 500,
                    ..
                }
            ),
            "{err}"
        );
        client.close().await;
        server.close().await;
    });
}

#[test]
fn timings_come_from_the_runtime_clock() {
    // In virtual time the only time that passes is the server's deliberate pause before it
    // answers, so the report shows exactly that pause: the timings read the host's runtime.
    lp2p_testkit::run(|sim| async move {
        let (server, client) = lp2p_testkit::hosts::pair(&sim).await.unwrap();
        let pause = std::time::Duration::from_secs(3);
        let rt = sim.runtime().clone();
        server.set_stream_handler(PROTOCOL, move |mut s: HostStream| {
            let rt = rt.clone();
            async move {
                let mut header = [0u8; 8];
                s.read_exact(&mut header).await.unwrap();
                let mut sink = Vec::new();
                s.read_to_end(&mut sink).await.unwrap();
                rt.sleep(pause).await;
                let len = usize::try_from(u64::from_be_bytes(header)).unwrap();
                s.write_all(&vec![0u8; len]).await.unwrap();
                s.close().await.unwrap();
            }
        });
        let report = lp2p_perf::run(&client, &server.local_peer_id(), 1000, 2000)
            .await
            .unwrap();
        assert_eq!(report.downloaded, 2000);
        assert_eq!(report.upload_time, std::time::Duration::ZERO);
        assert_eq!(report.download_time, pause);
        assert_eq!(report.total, pause);
        client.close().await;
        server.close().await;
    });
}
