//! The request side of the metrics endpoint: which answer a request head gets. Public for
//! the fuzz target; the server in this crate is its only user.

/// The largest request head read (request line and headers). A scraper sends a few hundred
/// bytes; anything past this is refused (431) rather than buffered.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// `GET` or `HEAD /metrics` (a query string is ignored).
    Metrics,
    /// Another path (404).
    NotFound,
    /// Another method (405).
    MethodNotAllowed,
    /// Not an HTTP/1.x request line, or the head ended early (400).
    Malformed,
    /// The head reached [`MAX_REQUEST_HEAD`] without ending (431).
    TooLarge,
}

/// Classifies a request head (`head`: the bytes read, `complete`: whether they end with
/// the blank line). Pure and total: any bytes give an answer, never a panic.
pub fn classify(head: &[u8], complete: bool) -> Request {
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
