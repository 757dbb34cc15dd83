//! Scenarios shared by the memory and TCP integration tests: each takes two connected
//! mplex connections (dialer, listener) and checks one behaviour end to end.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::{MuxedConnection, RuntimeHandle, Stream};
use lp2p_mplex::{MplexConnection, MplexStream, Stats};

/// How long any scenario may take before the test fails instead of hanging. Generous: CI
/// machines are slow and loaded; a healthy run takes a fraction of this.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(240);

/// Runs `future` on the default runtime with [`TIMEOUT`].
pub(crate) fn run<F: std::future::Future>(future: F) -> F::Output {
    let rt = RuntimeHandle::default();
    lp2p_core::runtime::block_on(async move {
        rt.timeout(TIMEOUT, future)
            .await
            .expect("scenario timed out")
    })
}

/// The bytes stream `number` carries from side `side` (`b'd'` dialer, `b'l'` listener): a
/// pattern that differs per stream, per side and per position. Built by copying slices so
/// it stays cheap in unoptimised test builds.
pub(crate) fn pattern(number: u64, side: u8, len: usize) -> Vec<u8> {
    // A prime-length table, rotated by a per-stream offset: neighbouring streams and both
    // sides get different bytes at every position.
    const PERIOD: usize = 251;
    let table: Vec<u8> = (0..PERIOD * 2).map(|i| (i % PERIOD) as u8).collect();
    let offset =
        (number.wrapping_mul(31).wrapping_add(u64::from(side) * 7) % PERIOD as u64) as usize;
    let block = &table[offset..offset + PERIOD];
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let n = (len - out.len()).min(PERIOD);
        out.extend_from_slice(&block[..n]);
    }
    // Make the length visible in the content too: the last bytes encode the stream number.
    let tag = number.to_le_bytes();
    let tail = len.min(tag.len());
    out[len - tail..].copy_from_slice(&tag[..tail]);
    out
}

/// The connection's counters.
pub(crate) fn stats(conn: &MplexConnection) -> Stats {
    conn.core(|session| session.stats().clone())
}

/// Reads exactly `len` bytes and then expects EOF.
pub(crate) async fn read_then_eof(
    reader: &mut (impl futures::AsyncRead + Unpin),
    len: usize,
) -> Vec<u8> {
    let mut got = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        let n = reader.read(&mut got[filled..]).await.unwrap();
        assert!(n > 0, "EOF after {filled} of {len} bytes");
        filled += n;
    }
    assert_eq!(reader.read(&mut [0u8; 1]).await.unwrap(), 0, "expected EOF");
    got
}

/// Both sides write `len` bytes on the stream and read the other side's `len` bytes, at the
/// same time; the contents are checked.
async fn exchange(mut stream: MplexStream, mine: u8, theirs: u8, len: usize) {
    let number = stream.id().number();
    let (mut reader, mut writer) = futures::AsyncReadExt::split(&mut stream);
    let send = async {
        writer.write_all(&pattern(number, mine, len)).await.unwrap();
        writer.close().await.unwrap();
    };
    let receive = async {
        let got = read_then_eof(&mut reader, len).await;
        assert!(
            got == pattern(number, theirs, len),
            "stream {number}: wrong contents"
        );
    };
    futures::join!(send, receive);
}

/// `streams` concurrent streams opened by the dialer, each carrying `len` bytes each way at
/// the same time, contents verified on both sides.
pub(crate) async fn many_streams_both_ways(
    dialer: Arc<MplexConnection>,
    listener: Arc<MplexConnection>,
    streams: usize,
    len: usize,
) {
    let rt = RuntimeHandle::default();
    let acceptor = {
        let listener = listener.clone();
        let rt = rt.clone();
        rt.clone().spawn(async move {
            let mut tasks = Vec::with_capacity(streams);
            for _ in 0..streams {
                let stream = listener.accept().await.unwrap();
                tasks.push(rt.spawn(exchange(stream, b'l', b'd', len)));
            }
            for task in tasks {
                task.await.unwrap();
            }
        })
    };
    let mut tasks = Vec::with_capacity(streams);
    for _ in 0..streams {
        let stream = dialer.open().await.unwrap();
        tasks.push(rt.spawn(exchange(stream, b'd', b'l', len)));
    }
    for task in tasks {
        task.await.unwrap();
    }
    acceptor.await.unwrap();
    assert_eq!(stats(&dialer).streams_overflowed, 0);
    assert_eq!(stats(&listener).streams_overflowed, 0);
    dialer.close().await;
}

/// Half-close: the dialer sends a request and closes; the listener reads to EOF, answers on
/// the same stream and closes; the dialer reads the answer to EOF. Writing after close fails.
pub(crate) async fn half_close(dialer: Arc<MplexConnection>, listener: Arc<MplexConnection>) {
    let mut out = dialer.open().await.unwrap();
    out.write_all(b"request").await.unwrap();
    out.close().await.unwrap();
    let err = out.write_all(b"more").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);

    let mut inbound = listener.accept().await.unwrap();
    let mut request = Vec::new();
    inbound.read_to_end(&mut request).await.unwrap();
    assert_eq!(request, b"request");
    // A read after EOF is EOF again.
    assert_eq!(inbound.read(&mut [0u8; 8]).await.unwrap(), 0);
    inbound.write_all(b"response").await.unwrap();
    inbound.close().await.unwrap();

    let mut response = Vec::new();
    out.read_to_end(&mut response).await.unwrap();
    assert_eq!(response, b"response");
    drop((out, inbound));
    wait_until(|| dialer.num_streams() == 0 && listener.num_streams() == 0).await;
}

/// Reset: the listener resets a stream; the dialer's reads and writes then fail with
/// `ConnectionReset` (not EOF), and so do the listener's own.
pub(crate) async fn reset(dialer: Arc<MplexConnection>, listener: Arc<MplexConnection>) {
    let mut out = dialer.open().await.unwrap();
    out.write_all(b"hello").await.unwrap();
    let mut inbound = listener.accept().await.unwrap();
    let mut buf = [0u8; 5];
    inbound.read_exact(&mut buf).await.unwrap();
    Stream::reset(&mut inbound);
    assert_eq!(
        inbound.read(&mut buf).await.unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    assert_eq!(
        inbound.write(b"x").await.unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );

    assert_eq!(
        out.read(&mut buf).await.unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    assert_eq!(
        out.write(b"x").await.unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    // Other streams are unaffected.
    let mut second = dialer.open().await.unwrap();
    second.write_all(b"still fine").await.unwrap();
    second.close().await.unwrap();
    let mut inbound2 = listener.accept().await.unwrap();
    let mut got = Vec::new();
    inbound2.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"still fine");
}

/// Closing a connection wakes every stream blocked on it with an error, on both sides, and
/// opening or accepting fails afterwards.
pub(crate) async fn close_wakes_every_stream(
    dialer: Arc<MplexConnection>,
    listener: Arc<MplexConnection>,
) {
    const STREAMS: usize = 50;
    let rt = RuntimeHandle::default();
    let mut readers = Vec::new();
    let mut remote_readers = Vec::new();
    for _ in 0..STREAMS {
        let mut out = dialer.open().await.unwrap();
        out.write_all(b"x").await.unwrap();
        readers.push(rt.spawn(async move {
            let mut buf = [0u8; 16];
            out.read(&mut buf).await
        }));
        let mut inbound = listener.accept().await.unwrap();
        remote_readers.push(rt.spawn(async move {
            let mut buf = Vec::new();
            inbound.read_to_end(&mut buf).await
        }));
    }
    // Let the readers block.
    rt.sleep(Duration::from_millis(50)).await;
    MuxedConnection::close(&*dialer).await;
    assert!(MuxedConnection::is_closed(&*dialer));
    for reader in readers {
        let err = reader.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionAborted);
    }
    // The listener sees the connection end: its streams fail (the dialer never closed them).
    for reader in remote_readers {
        let err = reader.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionAborted);
    }
    assert!(dialer.open().await.is_err());
    assert!(
        MuxedConnection::accept_stream(&*listener).await.is_err(),
        "accepting on a closed connection fails"
    );
    wait_until(|| listener.is_closed()).await;
    assert!(listener.open().await.is_err());
}

/// Dropping a stream half-closes it: the remote reads what was written, then EOF; what the
/// remote writes afterwards is discarded without error.
pub(crate) async fn drop_half_closes(dialer: Arc<MplexConnection>, listener: Arc<MplexConnection>) {
    let mut out = dialer.open().await.unwrap();
    out.write_all(b"last words").await.unwrap();
    drop(out);
    let mut inbound = listener.accept().await.unwrap();
    let mut got = Vec::new();
    inbound.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"last words");
    inbound.write_all(&vec![0u8; 100_000]).await.unwrap();
    inbound.close().await.unwrap();
    drop(inbound);
    wait_until(|| dialer.num_streams() == 0 && listener.num_streams() == 0).await;
    assert!(stats(&dialer).bytes_discarded >= 100_000);
}

/// A stream whose reader does not read is reset once its buffer cap is passed; the writer
/// sees `ConnectionReset`, and other streams keep working.
pub(crate) async fn overflow_resets_only_that_stream(
    dialer: Arc<MplexConnection>,
    listener: Arc<MplexConnection>,
) {
    let mut stuck = dialer.open().await.unwrap();
    let _held = listener.accept().await.unwrap(); // never read
    let chunk = vec![7u8; 64 * 1024];
    let err = loop {
        match stuck.write_all(&chunk).await {
            Ok(()) => {}
            Err(err) => break err,
        }
    };
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert_eq!(stats(&listener).streams_overflowed, 1);

    let mut fine = dialer.open().await.unwrap();
    fine.write_all(b"unaffected").await.unwrap();
    fine.close().await.unwrap();
    let mut inbound = listener.accept().await.unwrap();
    let mut got = Vec::new();
    inbound.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"unaffected");
}

/// A reader that starts late (within the stall timeout) gets every byte of a transfer far
/// bigger than its stream's share: its stream borrows connection memory instead of being
/// reset. The reader starts only once the sender has taken the stream past its share (no
/// sleep that a loaded machine could make too short); the caller sets a stall timeout far
/// longer than any scheduling delay, so only a wrong reset fails this scenario.
pub(crate) async fn late_reader_is_not_reset(
    dialer: Arc<MplexConnection>,
    listener: Arc<MplexConnection>,
) {
    const LEN: usize = 16 * 1024 * 1024;
    let rt = RuntimeHandle::default();
    let mut out = dialer.open().await.unwrap();
    let writer = rt.spawn(async move {
        out.write_all(&pattern(1, b'd', LEN)).await.unwrap();
        out.close().await.unwrap();
        out
    });
    let mut inbound = listener.accept().await.unwrap();
    // The sender outruns the reader that has not started: the stream goes past its share.
    wait_until(|| stats(&listener).streams_over_share > 0).await;
    let got = read_then_eof(&mut inbound, LEN).await;
    assert!(got == pattern(1, b'd', LEN));
    drop(writer.await.unwrap());
    let stats = stats(&listener);
    assert_eq!(stats.streams_overflowed, 0, "{stats:?}");
    assert_eq!(stats.streams_reset_for_memory, 0, "{stats:?}");
}

/// A reader slower than its sender but reading all along gets every byte of a transfer many
/// times the connection's receive memory: input waits for it at its stream's share (the
/// caller makes the reader grace long, so the reader counts as alive however loaded the
/// machine), and nothing is reset.
pub(crate) async fn slow_reader_is_waited_for(
    dialer: Arc<MplexConnection>,
    listener: Arc<MplexConnection>,
) {
    const LEN: usize = 8 * 1024 * 1024;
    let rt = RuntimeHandle::default();
    let mut out = dialer.open().await.unwrap();
    let writer = rt.spawn(async move {
        out.write_all(&pattern(3, b'd', LEN)).await.unwrap();
        out.close().await.unwrap();
        out
    });
    let mut inbound = listener.accept().await.unwrap();
    let mut got = Vec::with_capacity(LEN);
    let mut buf = [0u8; 1000];
    for round in 0.. {
        let n = inbound.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if round % 64 == 0 {
            rt.sleep(Duration::from_millis(1)).await;
        }
    }
    assert!(got == pattern(3, b'd', LEN), "wrong contents");
    drop(writer.await.unwrap());
    let stats = stats(&listener);
    assert_eq!(stats.streams_overflowed, 0, "{stats:?}");
    assert_eq!(stats.streams_reset_for_memory, 0, "{stats:?}");
    assert!(stats.input_pauses > 0, "the sender outran the reader");
}

/// Dropping the connection handle closes the connection, as `close` would without waiting:
/// a stream still held fails from then on (its writes at once), and the remote notices.
pub(crate) async fn dropping_the_connection_closes_it(
    dialer: Arc<MplexConnection>,
    listener: Arc<MplexConnection>,
) {
    let mut out = dialer.open().await.unwrap();
    out.write_all(b"x").await.unwrap();
    let mut inbound = listener.accept().await.unwrap();
    drop(dialer);
    let mut got = Vec::new();
    // The data sent before arrives, then the read fails (the stream was never closed).
    assert_eq!(
        inbound.read_to_end(&mut got).await.unwrap_err().kind(),
        ErrorKind::ConnectionAborted
    );
    assert_eq!(got, b"x");
    wait_until(|| listener.is_closed()).await;
    assert!(out.write_all(b"y").await.is_err());
}

/// Polls `condition` until it holds (the scenario timeout bounds the wait).
pub(crate) async fn wait_until(mut condition: impl FnMut() -> bool) {
    let rt = RuntimeHandle::default();
    while !condition() {
        rt.sleep(Duration::from_millis(5)).await;
    }
}

/// One stream nobody reads must not stall the others (issue 16): while the dialer keeps
/// writing to a stream the listener never reads, a second stream carries 8 MiB to a reader
/// that keeps up. The unread stream is reset once it has taken what the connection can lend
/// it; the stall timeout is set far beyond the test's own timeout by the caller, so a
/// connection that pauses for the unread stream instead fails this scenario.
pub(crate) async fn unread_stream_does_not_stall_the_others(
    dialer: Arc<MplexConnection>,
    listener: Arc<MplexConnection>,
) {
    const LEN: usize = 8 * 1024 * 1024;
    let rt = RuntimeHandle::default();
    let mut stuck = dialer.open().await.unwrap();
    let held = listener.accept().await.unwrap(); // never read
    let flooder = rt.spawn(async move {
        let chunk = vec![7u8; 64 * 1024];
        loop {
            if let Err(err) = stuck.write_all(&chunk).await {
                return err;
            }
        }
    });
    let mut fine = dialer.open().await.unwrap();
    let writer = rt.spawn(async move {
        fine.write_all(&pattern(2, b'd', LEN)).await.unwrap();
        fine.close().await.unwrap();
        fine
    });
    let mut inbound = listener.accept().await.unwrap();
    let got = read_then_eof(&mut inbound, LEN).await;
    assert!(got == pattern(2, b'd', LEN), "wrong contents");
    drop(writer.await.unwrap());
    let err = flooder.await.unwrap();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert_eq!(stats(&listener).streams_overflowed, 1);
    drop(held);
}

/// The `#[test]` functions every transport runs, one per scenario above. `$pair_with` is the
/// test file's `fn(dialer: MplexConfig, listener: MplexConfig) -> (Arc<MplexConnection>,
/// Arc<MplexConnection>)` that connects two mplex connections over its transport; the test
/// names are the same in every file.
macro_rules! transport_tests {
    ($pair_with:ident) => {
        fn pair() -> (
            ::std::sync::Arc<::lp2p_mplex::MplexConnection>,
            ::std::sync::Arc<::lp2p_mplex::MplexConnection>,
        ) {
            $pair_with(
                ::lp2p_mplex::MplexConfig::default(),
                ::lp2p_mplex::MplexConfig::default(),
            )
        }

        #[test]
        fn thousand_streams_of_64_kib_both_ways() {
            let (d, l) = pair();
            $crate::common::run($crate::common::many_streams_both_ways(
                d,
                l,
                1000,
                64 * 1024,
            ));
        }

        #[test]
        fn half_close() {
            let (d, l) = pair();
            $crate::common::run($crate::common::half_close(d, l));
        }

        #[test]
        fn reset() {
            let (d, l) = pair();
            $crate::common::run($crate::common::reset(d, l));
        }

        #[test]
        fn close_wakes_every_stream() {
            let (d, l) = pair();
            $crate::common::run($crate::common::close_wakes_every_stream(d, l));
        }

        #[test]
        fn drop_half_closes() {
            let (d, l) = pair();
            $crate::common::run($crate::common::drop_half_closes(d, l));
        }

        #[test]
        fn overflow_resets_only_that_stream() {
            let (d, l) = $pair_with(
                ::lp2p_mplex::MplexConfig::default(),
                ::lp2p_mplex::MplexConfig::default()
                    .with_max_stream_buffer(256 * 1024)
                    .with_stall_timeout(::std::time::Duration::from_millis(100)),
            );
            $crate::common::run($crate::common::overflow_resets_only_that_stream(d, l));
        }

        #[test]
        fn late_reader_is_not_reset() {
            // A stall timeout beyond any scheduling delay of a loaded machine (the default is
            // 5 s).
            let config = ::lp2p_mplex::MplexConfig::default()
                .with_stall_timeout(::std::time::Duration::from_secs(120));
            let (d, l) = $pair_with(::lp2p_mplex::MplexConfig::default(), config);
            $crate::common::run($crate::common::late_reader_is_not_reset(d, l));
        }

        #[test]
        fn dropping_the_connection_closes_it() {
            let (d, l) = pair();
            $crate::common::run($crate::common::dropping_the_connection_closes_it(d, l));
        }

        #[test]
        fn unread_stream_does_not_stall_the_others() {
            // A stall timeout far beyond the scenario's timeout: only a connection that keeps
            // reading for the other streams passes.
            let config = ::lp2p_mplex::MplexConfig::default()
                .with_max_stream_buffer(256 * 1024)
                .with_stall_timeout(::std::time::Duration::from_secs(3600));
            let (d, l) = $pair_with(::lp2p_mplex::MplexConfig::default(), config);
            $crate::common::run($crate::common::unread_stream_does_not_stall_the_others(
                d, l,
            ));
        }

        #[test]
        fn slow_reader_is_waited_for() {
            let config = ::lp2p_mplex::MplexConfig::default()
                .with_max_connection_buffer(1024 * 1024)
                .with_max_stream_buffer(256 * 1024)
                .with_reader_grace(::std::time::Duration::from_secs(60));
            let (d, l) = $pair_with(::lp2p_mplex::MplexConfig::default(), config);
            $crate::common::run($crate::common::slow_reader_is_waited_for(d, l));
        }
    };
}
pub(crate) use transport_tests;
