//! The opening handshake of RFC 6455 section 4: an HTTP/1.1 `GET` with `Upgrade: websocket`
//! from the client, `101 Switching Protocols` from the server. Parse and emit only; the
//! shell moves the bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};

use crate::config::MAX_HANDSHAKE_HEADERS;

/// The GUID every server appends to the client's key (RFC 6455 section 1.3).
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why a handshake head was refused; the shell wraps it with the remote's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRejection {
    /// What was wrong, for the error and the logs.
    pub reason: String,
    /// The HTTP status a server answers with (400, or 426 for a wrong version).
    pub status: u16,
}

fn reject(status: u16, reason: impl Into<String>) -> HandshakeRejection {
    HandshakeRejection {
        reason: reason.into(),
        status,
    }
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID);
    BASE64.encode(sha.finalize())
}

/// Whether the comma-separated header value lists `token` (case-insensitive).
fn has_token(value: &[u8], token: &str) -> bool {
    std::str::from_utf8(value)
        .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

fn header<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// The client side: the request to send and the check of the server's answer.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    key: String,
    request: Vec<u8>,
}

impl ClientHandshake {
    /// A request for `path` on `host` (the `Host` header: `name:port` or `[v6]:port`), with
    /// `nonce` as the key (16 random bytes, RFC 6455 section 4.1).
    pub fn new(host: &str, path: &str, nonce: [u8; 16]) -> ClientHandshake {
        let key = BASE64.encode(nonce);
        let request = format!(
            "GET {path} HTTP/1.1\r\n\
             Host: {host}\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )
        .into_bytes();
        ClientHandshake { key, request }
    }

    /// The bytes of the request.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// Checks the server's answer at the start of `buf`: `Ok(None)` when more bytes are
    /// needed, `Ok(Some(len))` when the head (of `len` bytes) accepts the upgrade. Bytes
    /// after it are the server's first frames. A status other than 101 is
    /// `Err((status, ..))`.
    pub fn parse_response(&self, buf: &[u8]) -> Result<Option<usize>, HandshakeRejection> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HANDSHAKE_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let len = match response.parse(buf) {
            Ok(httparse::Status::Partial) => return Ok(None),
            Ok(httparse::Status::Complete(len)) => len,
            Err(e) => return Err(reject(0, format!("malformed HTTP response: {e}"))),
        };
        let status = response.code.unwrap_or(0);
        if status != 101 {
            return Err(reject(
                status,
                format!("HTTP status {status} instead of 101"),
            ));
        }
        let headers = response.headers;
        if !header(headers, "upgrade").is_some_and(|v| has_token(v, "websocket")) {
            return Err(reject(status, "response without `Upgrade: websocket`"));
        }
        if !header(headers, "connection").is_some_and(|v| has_token(v, "upgrade")) {
            return Err(reject(status, "response without `Connection: Upgrade`"));
        }
        let expected = accept_key(&self.key);
        match header(headers, "sec-websocket-accept") {
            Some(v) if v == expected.as_bytes() => {}
            Some(_) => return Err(reject(status, "wrong Sec-WebSocket-Accept")),
            None => return Err(reject(status, "response without Sec-WebSocket-Accept")),
        }
        // We asked for no extension and no subprotocol; a server that picks one anyway
        // would frame or interpret data in a way we do not (RFC 6455 section 4.1).
        if header(headers, "sec-websocket-extensions").is_some_and(|v| !v.is_empty()) {
            return Err(reject(status, "server chose an extension we did not offer"));
        }
        if header(headers, "sec-websocket-protocol").is_some_and(|v| !v.is_empty()) {
            return Err(reject(
                status,
                "server chose a subprotocol we did not offer",
            ));
        }
        Ok(Some(len))
    }
}

/// An acceptable upgrade request, as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// The request target (path).
    pub path: String,
    /// The `Host` header, when sent.
    pub host: Option<String>,
    /// The `Sec-WebSocket-Key` header.
    pub key: String,
}

impl UpgradeRequest {
    /// The `101 Switching Protocols` answer that accepts this request.
    pub fn accept_response(&self) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(&self.key)
        )
        .into_bytes()
    }
}

/// The answer a server sends when it refuses an upgrade request.
pub fn rejection_response(rejection: &HandshakeRejection) -> Vec<u8> {
    let (status, text, extra) = match rejection.status {
        426 => (426, "Upgrade Required", "Sec-WebSocket-Version: 13\r\n"),
        431 => (431, "Request Header Fields Too Large", ""),
        _ => (400, "Bad Request", ""),
    };
    format!("HTTP/1.1 {status} {text}\r\n{extra}Connection: close\r\nContent-Length: 0\r\n\r\n")
        .into_bytes()
}

/// Parses the client's request at the start of `buf` (RFC 6455 section 4.2.1): `Ok(None)`
/// when more bytes are needed, otherwise the request and its length in bytes.
///
/// Requires `GET`, HTTP/1.1, `Upgrade: websocket`, a `Connection` header listing `Upgrade`,
/// `Sec-WebSocket-Version: 13` (otherwise 426) and a `Sec-WebSocket-Key` of 16 bytes.
/// `Origin` is not checked: libp2p listeners accept browsers from any page.
pub fn parse_request(buf: &[u8]) -> Result<Option<(UpgradeRequest, usize)>, HandshakeRejection> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HANDSHAKE_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(len)) => len,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(reject(431, "more than 64 header lines"));
        }
        Err(e) => return Err(reject(400, format!("malformed HTTP request: {e}"))),
    };
    if request.method != Some("GET") {
        return Err(reject(
            400,
            format!("method {} instead of GET", request.method.unwrap_or("?")),
        ));
    }
    if request.version != Some(1) {
        return Err(reject(400, "not HTTP/1.1"));
    }
    let headers = request.headers;
    if !header(headers, "upgrade").is_some_and(|v| has_token(v, "websocket")) {
        return Err(reject(426, "request without `Upgrade: websocket`"));
    }
    if !header(headers, "connection").is_some_and(|v| has_token(v, "upgrade")) {
        return Err(reject(400, "request without `Connection: Upgrade`"));
    }
    if header(headers, "sec-websocket-version") != Some(b"13") {
        return Err(reject(426, "Sec-WebSocket-Version is not 13"));
    }
    let key = header(headers, "sec-websocket-key")
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::trim)
        .ok_or_else(|| reject(400, "request without Sec-WebSocket-Key"))?;
    if BASE64.decode(key).map(|k| k.len()) != Ok(16) {
        return Err(reject(400, "Sec-WebSocket-Key is not 16 bytes in base64"));
    }
    let host = header(headers, "host")
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_owned);
    Ok(Some((
        UpgradeRequest {
            path: request.path.unwrap_or("/").to_owned(),
            host,
            key: key.to_owned(),
        },
        len,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_accept_key() {
        // RFC 6455 section 1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn client_and_server_agree() {
        let client = ClientHandshake::new("127.0.0.1:4001", "/", [7; 16]);
        let request = client.request().to_vec();
        for short in 0..request.len() {
            assert_eq!(parse_request(&request[..short]), Ok(None));
        }
        let (req, len) = parse_request(&request).unwrap().unwrap();
        assert_eq!(len, request.len());
        assert_eq!(req.path, "/");
        assert_eq!(req.host.as_deref(), Some("127.0.0.1:4001"));
        let mut response = req.accept_response();
        let head = response.len();
        response.extend_from_slice(b"\x82\x01x");
        assert_eq!(client.parse_response(&response[..head - 1]), Ok(None));
        assert_eq!(client.parse_response(&response), Ok(Some(head)));
    }

    #[test]
    fn a_browser_request_is_accepted() {
        let request =
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nConnection: keep-alive, Upgrade\r\n\
            Pragma: no-cache\r\nUpgrade: WebSocket\r\nOrigin: http://127.0.0.1:8000\r\n\
            Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
        let (req, _) = parse_request(request).unwrap().unwrap();
        let response = String::from_utf8(req.accept_response()).unwrap();
        assert!(response.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        // No extension is accepted.
        assert!(!response.to_lowercase().contains("extensions"));
    }

    #[test]
    fn bad_requests_are_named() {
        let ok_key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        let cases = [
            ("POST / HTTP/1.1\r\n\r\n".to_owned(), 400, "method POST"),
            ("GET / HTTP/1.0\r\n\r\n".to_owned(), 400, "HTTP/1.1"),
            ("GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(), 426, "Upgrade"),
            (
                "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n".to_owned(),
                400,
                "Connection",
            ),
            (
                format!(
                    "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Version: 8\r\n{ok_key}\r\n"
                ),
                426,
                "not 13",
            ),
            (
                "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n".to_owned(),
                400,
                "without Sec-WebSocket-Key",
            ),
            (
                "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: abc\r\n\r\n".to_owned(),
                400,
                "16 bytes",
            ),
            (
                "\x16\x03\x01\x02\x00garbage\r\n\r\n".to_owned(),
                400,
                "malformed",
            ),
        ];
        for (request, status, expected) in cases {
            let err = parse_request(request.as_bytes()).unwrap_err();
            assert_eq!(err.status, status, "{request:?}");
            assert!(err.reason.contains(expected), "{}: {expected}", err.reason);
            let answer = String::from_utf8(rejection_response(&err)).unwrap();
            assert!(answer.starts_with(&format!("HTTP/1.1 {status}")));
        }
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X: y\r\n".repeat(65));
        assert_eq!(parse_request(many.as_bytes()).unwrap_err().status, 431);
    }

    #[test]
    fn bad_responses_are_named() {
        let client = ClientHandshake::new("h:1", "/", [1; 16]);
        let good = accept_key(&client.key);
        let cases = [
            ("HTTP/1.1 404 Not Found\r\n\r\n".to_owned(), "404"),
            ("HTTP/1.1 101 OK\r\nConnection: upgrade\r\n\r\n".to_owned(), "Upgrade: websocket"),
            ("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n\r\n".to_owned(), "Connection"),
            (
                "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n".to_owned(),
                "wrong Sec-WebSocket-Accept",
            ),
            (
                format!("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: {good}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
                "extension",
            ),
            ("SSH-2.0-OpenSSH\r\n\r\n".to_owned(), "malformed"),
        ];
        for (response, expected) in cases {
            let err = client.parse_response(response.as_bytes()).unwrap_err();
            assert!(err.reason.contains(expected), "{}: {expected}", err.reason);
        }
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = parse_request(&bytes);
            let _ = ClientHandshake::new("h:1", "/", [0; 16]).parse_response(&bytes);
        }
    }
}
