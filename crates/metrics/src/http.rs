//! A minimal HTTP/1.1 endpoint for scrapes: `GET /metrics` answers the text format, anything
//! else a short error; one request per connection. Bounded: the request head, the time a
//! client gets to send it, and the requests served at once.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_io::Async;
use futures::future::AbortHandle;
use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::RuntimeHandle;
use lp2p_host::Host;

use crate::MetricsError;
use crate::request::{MAX_REQUEST_HEAD, Request, classify};

/// How long a client gets to send its request head. Scrapers send it at once; a client that
/// trickles bytes is cut off after this instead of holding a slot.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests handled at once; more connections are closed unanswered. A Prometheus server
/// scrapes one at a time, so this only stops a flood from piling up tasks.
const MAX_CONCURRENT_REQUESTS: usize = 16;

/// The content type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A running metrics endpoint; dropping it stops it (so does closing the host).
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    abort: AbortHandle,
}

impl MetricsServer {
    /// The address it listens on (the port chosen when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

/// Serves what `encode` returns (the Prometheus text) at `http://ADDR/metrics`.
pub(crate) fn serve(
    encode: impl Fn() -> String + Send + Sync + 'static,
    host: &Host,
    addr: SocketAddr,
) -> Result<MetricsServer, MetricsError> {
    let listener =
        Async::<TcpListener>::bind(addr).map_err(|source| MetricsError::Bind { addr, source })?;
    let local_addr = listener
        .get_ref()
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let runtime = host.runtime().clone();
    let (task, abort) =
        futures::future::abortable(accept_loop(listener, Arc::new(encode), runtime));
    // Registered with the host, so its close stops the endpoint too.
    host.spawn(async move {
        let _ = task.await;
    });
    tracing::info!(%local_addr, "serving metrics at http://{local_addr}/metrics");
    Ok(MetricsServer { local_addr, abort })
}

async fn accept_loop(
    listener: Async<TcpListener>,
    encode: Arc<dyn Fn() -> String + Send + Sync>,
    runtime: RuntimeHandle,
) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(%err, "metrics endpoint: accept failed");
                runtime.sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_CONCURRENT_REQUESTS {
            in_flight.fetch_sub(1, Ordering::AcqRel);
            tracing::debug!(%remote, "metrics endpoint busy; connection closed");
            continue;
        }
        let (encode, runtime_for_task, in_flight) =
            (encode.clone(), runtime.clone(), in_flight.clone());
        runtime.spawn_detached(async move {
            let served = runtime_for_task
                .timeout(REQUEST_TIMEOUT, answer(stream, &*encode))
                .await;
            match served {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::debug!(%remote, %err, "metrics request failed"),
                Err(_) => tracing::debug!(%remote, "metrics request timed out"),
            }
            in_flight.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

async fn answer(
    mut stream: Async<TcpStream>,
    encode: &(dyn Fn() -> String + Send + Sync),
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break false;
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break true;
        }
        if head.len() >= MAX_REQUEST_HEAD {
            break false;
        }
    };
    let head_only = head.starts_with(b"HEAD ");
    let (status, content_type, body) = match classify(&head, complete) {
        Request::Metrics => ("200 OK", CONTENT_TYPE, encode()),
        Request::NotFound => (
            "404 Not Found",
            "text/plain",
            "metrics are at /metrics\n".to_owned(),
        ),
        Request::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET and HEAD\n".to_owned(),
        ),
        Request::TooLarge => (
            "431 Request Header Fields Too Large",
            "text/plain",
            format!("the request head exceeds {MAX_REQUEST_HEAD} bytes\n"),
        ),
        Request::Malformed => ("400 Bad Request", "text/plain", "bad request\n".to_owned()),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.flush().await?;
    // Best effort: the client may already be gone.
    let _ = stream.get_ref().shutdown(std::net::Shutdown::Write);
    Ok(())
}
