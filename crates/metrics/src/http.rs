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

use crate::{Metrics, MetricsError};

/// The largest request head read (request line and headers). A scraper sends a few hundred
/// bytes; anything past this is refused (431) rather than buffered.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

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

pub(crate) fn serve(
    metrics: Metrics,
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
    let (task, abort) = futures::future::abortable(accept_loop(listener, metrics, runtime));
    // Registered with the host, so its close stops the endpoint too.
    host.spawn(async move {
        let _ = task.await;
    });
    tracing::info!(%local_addr, "serving metrics at http://{local_addr}/metrics");
    Ok(MetricsServer { local_addr, abort })
}

async fn accept_loop(listener: Async<TcpListener>, metrics: Metrics, runtime: RuntimeHandle) {
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
        let (metrics, runtime_for_task, in_flight) =
            (metrics.clone(), runtime.clone(), in_flight.clone());
        runtime.spawn_detached(async move {
            let served = runtime_for_task
                .timeout(REQUEST_TIMEOUT, answer(stream, &metrics))
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

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Request {
    Metrics,
    NotFound,
    MethodNotAllowed,
    Malformed,
    TooLarge,
}

/// Reads a request head (up to the blank line) and classifies it.
pub(crate) fn classify(head: &[u8], complete: bool) -> Request {
    if !complete {
        return if head.len() >= MAX_REQUEST_HEAD {
            Request::TooLarge
        } else {
            Request::Malformed
        };
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Request::Malformed;
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return Request::Malformed;
    }
    if method != "GET" && method != "HEAD" {
        return Request::MethodNotAllowed;
    }
    let path = target.split('?').next().unwrap_or_default();
    if path == "/metrics" {
        Request::Metrics
    } else {
        Request::NotFound
    }
}

async fn answer(mut stream: Async<TcpStream>, metrics: &Metrics) -> std::io::Result<()> {
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
        Request::Metrics => ("200 OK", CONTENT_TYPE, metrics.encode()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_classified() {
        let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(classify(get("/metrics").as_bytes(), true), Request::Metrics);
        assert_eq!(
            classify(get("/metrics?x=1").as_bytes(), true),
            Request::Metrics
        );
        assert_eq!(classify(get("/").as_bytes(), true), Request::NotFound);
        assert_eq!(
            classify(b"POST /metrics HTTP/1.1\r\n\r\n", true),
            Request::MethodNotAllowed
        );
        assert_eq!(
            classify(b"HEAD /metrics HTTP/1.0\r\n\r\n", true),
            Request::Metrics
        );
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET /metrics SPDY/3\r\n\r\n",
            b"\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"\xff\xfe\xfd\r\n\r\n",
        ] {
            assert_eq!(classify(bad, true), Request::Malformed, "{bad:?}");
        }
        assert_eq!(classify(b"GET /metr", false), Request::Malformed);
        assert_eq!(
            classify(&vec![b'a'; MAX_REQUEST_HEAD], false),
            Request::TooLarge
        );
    }
}
