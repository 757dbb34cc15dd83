//! The `/perf/1.0.0` benchmarking protocol (libp2p/specs `perf/perf.md`).
//!
//! Client: open a stream, write the number of bytes wanted back as a big-endian `u64`,
//! upload any amount, close the write side, read to EOF. Server: read the `u64`, read and
//! discard until EOF, then write the requested bytes and close.
//!
//! ```
//! use lp2p_host::Host;
//! use lp2p_memory::MemoryTransport;
//! use lp2p_noise::Noise;
//! use lp2p_yamux::Yamux;
//!
//! # lp2p_core::runtime::block_on(async {
//! let build = || Host::builder().transport(MemoryTransport::default()).security(Noise::new()).muxer(Yamux::default());
//! let server = build().listen_on("/memory/0".parse()?).build().await?;
//! lp2p_perf::serve(&server, lp2p_perf::PerfConfig::default());
//! let client = build().build().await?;
//! client.connect(server.local_peer_id(), server.listen_addrs()).await?;
//!
//! let report = lp2p_perf::run(&client, &server.local_peer_id(), 1 << 20, 1 << 20).await?;
//! assert_eq!(report.uploaded, 1 << 20);
//! assert_eq!(report.downloaded, 1 << 20);
//! # client.close().await;
//! # server.close().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::{PeerId, RuntimeHandle};
use lp2p_host::{HandlerOptions, Host, HostError, HostStream};

/// The protocol id.
pub const PROTOCOL: &str = "/perf/1.0.0";

/// The most bytes the server sends for one request by default: enough for minutes of a
/// fast LAN benchmark, and a ceiling on what one stream can ask of us.
pub const DEFAULT_MAX_DOWNLOAD: u64 = 1 << 40;

/// Bytes written or read per call: large enough that per-call overhead vanishes, small
/// enough to stay in cache.
const CHUNK: usize = 64 * 1024;

/// Server settings.
#[derive(Debug, Clone, Copy)]
pub struct PerfConfig {
    /// Requests for more than this are refused (the stream is reset).
    pub max_download: u64,
}

impl Default for PerfConfig {
    fn default() -> Self {
        PerfConfig {
            max_download: DEFAULT_MAX_DOWNLOAD,
        }
    }
}

/// What went wrong in a perf run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PerfError {
    /// Opening the stream failed (dial or negotiation).
    #[error(transparent)]
    Host(#[from] HostError),
    /// The stream failed mid-run.
    #[error("perf stream with {peer} failed: {source}")]
    Io {
        /// The peer.
        peer: PeerId,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The server sent a different number of bytes than asked.
    #[error("asked {peer} for {expected} bytes, received {received}")]
    ShortDownload {
        /// The peer.
        peer: PeerId,
        /// Bytes asked for.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
}

/// The result of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfReport {
    /// Bytes uploaded.
    pub uploaded: u64,
    /// Bytes downloaded.
    pub downloaded: u64,
    /// From opening the stream to the end of the upload (write side closed).
    pub upload_time: Duration,
    /// From the end of the upload to EOF of the download.
    pub download_time: Duration,
    /// The whole run, stream negotiation included.
    pub total: Duration,
}

/// Serves `/perf/1.0.0` on `host`.
pub fn serve(host: &Host, config: PerfConfig) {
    serve_with(host, config, HandlerOptions::default());
}

/// [`serve`] with handler options (say, [`HandlerOptions::allow_limited`] to serve over
/// relayed connections too).
pub fn serve_with(host: &Host, config: PerfConfig, options: HandlerOptions) {
    host.set_stream_handler_with(PROTOCOL, options, move |stream: HostStream| {
        let max = config.max_download;
        async move {
            let peer = stream.peer();
            if let Err(err) = serve_stream(stream, max).await {
                tracing::debug!(%peer, %err, "perf stream failed");
            }
        }
    });
}

async fn serve_stream(mut stream: HostStream, max: u64) -> std::io::Result<()> {
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).await?;
    let wanted = u64::from_be_bytes(header);
    if wanted > max {
        tracing::debug!(peer = %stream.peer(), wanted, max, "perf request over the limit; resetting");
        lp2p_core::Stream::reset(&mut stream);
        return Ok(());
    }
    let mut sink = vec![0u8; CHUNK];
    while stream.read(&mut sink).await? != 0 {}
    write_zeros(&mut stream, wanted, &sink).await?;
    stream.close().await
}

async fn write_zeros(
    stream: &mut HostStream,
    mut remaining: u64,
    zeros: &[u8],
) -> std::io::Result<()> {
    while remaining > 0 {
        let n = usize::try_from(remaining).map_or(zeros.len(), |r| r.min(zeros.len()));
        let chunk = zeros.get(..n).unwrap_or(zeros);
        stream.write_all(chunk).await?;
        remaining -= chunk.len() as u64;
    }
    Ok(())
}

/// Runs one exchange with `peer`: uploads `upload` bytes and downloads `download` bytes.
pub async fn run(
    host: &Host,
    peer: &PeerId,
    upload: u64,
    download: u64,
) -> Result<PerfReport, PerfError> {
    let runtime = host.runtime();
    let start = runtime.now();
    let stream = host.new_stream(peer, [PROTOCOL]).await?;
    run_on(runtime, stream, upload, download, start).await
}

/// [`run`] on a stream already negotiated for `/perf/1.0.0`; `start` is when the caller
/// started timing, on `runtime`'s clock (the host's, [`Host::runtime`]), which times the
/// rest.
pub async fn run_on(
    runtime: &RuntimeHandle,
    mut stream: HostStream,
    upload: u64,
    download: u64,
    start: Instant,
) -> Result<PerfReport, PerfError> {
    let peer = stream.peer();
    let io = |source| PerfError::Io { peer, source };
    stream
        .write_all(&download.to_be_bytes())
        .await
        .map_err(io)?;
    let mut buf = vec![0u8; CHUNK];
    write_zeros(&mut stream, upload, &buf).await.map_err(io)?;
    stream.close().await.map_err(io)?;
    let uploaded_at = runtime.now();
    let mut received = 0u64;
    loop {
        let n = stream.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        received += n as u64;
    }
    let done = runtime.now();
    if received != download {
        return Err(PerfError::ShortDownload {
            peer,
            expected: download,
            received,
        });
    }
    Ok(PerfReport {
        uploaded: upload,
        downloaded: received,
        upload_time: uploaded_at.saturating_duration_since(start),
        download_time: done.saturating_duration_since(uploaded_at),
        total: done.saturating_duration_since(start),
    })
}
