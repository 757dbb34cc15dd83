//! A minimal, bounded HTTP/1.1 client side for UPnP: `http://` URLs with a literal IP,
//! request bytes for GET and SOAP POST, and an incremental response parser (status line,
//! headers, `Content-Length`, `chunked` or read-to-close bodies) with caps on the head, the
//! number of headers, chunk lines and the body. Sans-IO: the shell feeds it what it reads.

use std::net::{IpAddr, SocketAddr};

use crate::UpnpError;

/// Default cap on the status line and headers together: a gateway's headers are a few
/// hundred bytes; 8 KiB leaves room for chatty servers and stops a header flood early.
pub const DEFAULT_MAX_HEAD: usize = 8 * 1024;
/// Default cap on a body: IGD descriptions are 2-6 KiB and SOAP answers under 1 KiB; 64
/// KiB fits the largest vendor descriptions we know of with room to spare.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;
/// Most headers a response may have.
pub const MAX_HEADERS: usize = 64;
/// Longest chunk-size line (size plus extensions) we accept in a chunked body.
pub const MAX_CHUNK_LINE: usize = 1024;
/// Interim (1xx) responses we skip before giving up.
const MAX_INTERIM: usize = 4;

const WHAT: &str = "HTTP response";

/// An `http://` URL whose host is a literal IP address (gateways are addressed by IP in
/// SSDP answers; we do not resolve names on the LAN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The authority as written (for the `Host` header).
    pub authority: String,
    /// The path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses `http://IP[:PORT][/PATH]` (IPv6 in brackets). Anything else is an error.
    pub fn parse(s: &str) -> Result<HttpUrl, UpnpError> {
        const W: &str = "URL";
        let s = s.trim();
        let rest = s
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("http://"))
            .and_then(|_| s.get(7..))
            .ok_or_else(|| UpnpError::malformed(W, format!("not an http:// URL: {s:.100}")))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| UpnpError::malformed(W, "unclosed ["))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(UpnpError::malformed(W, "junk after ]")),
            };
            (host, port)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let ip: IpAddr = host.parse().map_err(|_| {
            UpnpError::malformed(W, format!("host is not an IP address: {host:.100}"))
        })?;
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| UpnpError::malformed(W, format!("port {p:.20}")))?,
            None => 80,
        };
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(UpnpError::malformed(
                W,
                "control character or space in path",
            ));
        }
        Ok(HttpUrl {
            addr: SocketAddr::new(ip, port),
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    /// Resolves `reference` (absolute `http://`, absolute path, or relative path) against
    /// this URL.
    pub fn join(&self, reference: &str) -> Result<HttpUrl, UpnpError> {
        let reference = reference.trim();
        if reference
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("http://"))
        {
            return HttpUrl::parse(reference);
        }
        let path = if reference.starts_with('/') {
            reference.to_owned()
        } else {
            let dir = self
                .path
                .rfind('/')
                .map_or("/", |i| self.path.get(..=i).unwrap_or("/"));
            format!("{dir}{reference}")
        };
        HttpUrl::parse(&format!("http://{}{}", self.authority, path))
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path)
    }
}

/// The bytes of a `GET` request for `url` (the connection closes after the answer).
pub fn get_request(url: &HttpUrl) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: lp2p-upnp\r\n\r\n",
        url.path, url.authority
    )
    .into_bytes()
}

/// The bytes of a SOAP `POST` to `url` for `soap_action` (`"urn:...#Action"`, quoted
/// here) with `body`.
pub fn soap_request(url: &HttpUrl, soap_action: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: lp2p-upnp\r\n\
         Content-Type: text/xml; charset=\"utf-8\"\r\nSOAPAction: \"{}\"\r\n\
         Content-Length: {}\r\n\r\n{}",
        url.path,
        url.authority,
        soap_action,
        body.len(),
        body
    )
    .into_bytes()
}

/// A status line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// Header names and values (names as sent; compare without case).
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a status line and header lines (`head` without the blank line that ends it).
/// Used for HTTP responses and SSDP answers.
pub fn parse_head(head: &[u8], what: &'static str) -> Result<Head, UpnpError> {
    let text = std::str::from_utf8(head).map_err(|_| UpnpError::malformed(what, "not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(UpnpError::malformed(
            what,
            format!("status line {status_line:.60}"),
        ));
    }
    let code = parts.next().unwrap_or("");
    if code.len() != 3 {
        return Err(UpnpError::malformed(what, format!("status {code:.20}")));
    }
    let status = code
        .parse::<u16>()
        .map_err(|_| UpnpError::malformed(what, format!("status {code:.20}")))?;
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            return Err(UpnpError::malformed(what, "folded header line"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| UpnpError::malformed(what, format!("header line {line:.60}")))?;
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b >= 0x7f) {
            return Err(UpnpError::malformed(
                what,
                format!("header name {name:.60}"),
            ));
        }
        if headers.len() >= MAX_HEADERS {
            return Err(UpnpError::TooLarge {
                what,
                limit: MAX_HEADERS,
            });
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(Head { status, headers })
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status and headers.
    pub head: Head,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

#[derive(Debug)]
enum Body {
    Length(usize),
    Chunked(Chunk),
    UntilClose,
}

#[derive(Debug, Clone, Copy)]
enum Chunk {
    Size,
    Data(usize),
    DataEnd,
    Trailers,
}

#[derive(Debug)]
enum State {
    Head,
    Body(Head, Body),
    Done,
}

/// Incremental response parser with bounded memory: [`push`](ResponseParser::push) what
/// the socket gave, and [`finish`](ResponseParser::finish) at end of stream.
#[derive(Debug)]
pub struct ResponseParser {
    buf: Vec<u8>,
    body: Vec<u8>,
    state: State,
    max_head: usize,
    max_body: usize,
    trailer_bytes: usize,
    interim: usize,
}

impl ResponseParser {
    /// A parser with these caps on the head and the (de-chunked) body.
    pub fn new(max_head: usize, max_body: usize) -> ResponseParser {
        ResponseParser {
            buf: Vec::new(),
            body: Vec::new(),
            state: State::Head,
            max_head,
            max_body,
            trailer_bytes: 0,
            interim: 0,
        }
    }

    /// Adds bytes read from the connection; returns the response once it is complete.
    pub fn push(&mut self, data: &[u8]) -> Result<Option<Response>, UpnpError> {
        if matches!(self.state, State::Done) {
            return Ok(None);
        }
        self.buf.extend_from_slice(data);
        self.advance()
    }

    /// The connection ended: the response, if a read-to-close body (or a complete one)
    /// ends here; an error if the response was cut short.
    pub fn finish(&mut self) -> Result<Response, UpnpError> {
        if let Some(r) = self.advance()? {
            return Ok(r);
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::Body(head, Body::UntilClose) => Ok(Response {
                head,
                body: std::mem::take(&mut self.body),
            }),
            _ => Err(UpnpError::malformed(WHAT, "connection closed mid-response")),
        }
    }

    fn advance(&mut self) -> Result<Option<Response>, UpnpError> {
        loop {
            match &mut self.state {
                State::Done => return Ok(None),
                State::Head => {
                    let Some(end) = find(&self.buf, b"\r\n\r\n") else {
                        if self.buf.len() > self.max_head {
                            return Err(UpnpError::TooLarge {
                                what: "HTTP response head",
                                limit: self.max_head,
                            });
                        }
                        return Ok(None);
                    };
                    if end > self.max_head {
                        return Err(UpnpError::TooLarge {
                            what: "HTTP response head",
                            limit: self.max_head,
                        });
                    }
                    let head = parse_head(self.buf.get(..end).unwrap_or(&[]), WHAT)?;
                    self.buf.drain(..end.saturating_add(4).min(self.buf.len()));
                    if (100..200).contains(&head.status) {
                        self.interim = self.interim.saturating_add(1);
                        if self.interim > MAX_INTERIM {
                            return Err(UpnpError::malformed(WHAT, "too many 1xx responses"));
                        }
                        continue;
                    }
                    let body = body_kind(&head, self.max_body)?;
                    self.state = State::Body(head, body);
                }
                State::Body(_, Body::Length(n)) => {
                    let n = *n;
                    if self.buf.len() < n {
                        return Ok(None);
                    }
                    self.body = self.buf.drain(..n).collect();
                    return Ok(Some(self.take()));
                }
                State::Body(_, Body::UntilClose) => {
                    if self.buf.len() > self.max_body {
                        return Err(UpnpError::TooLarge {
                            what: "HTTP body",
                            limit: self.max_body,
                        });
                    }
                    self.body.append(&mut self.buf);
                    if self.body.len() > self.max_body {
                        return Err(UpnpError::TooLarge {
                            what: "HTTP body",
                            limit: self.max_body,
                        });
                    }
                    return Ok(None);
                }
                State::Body(_, Body::Chunked(chunk)) => match *chunk {
                    Chunk::Size => {
                        let Some(eol) = find(&self.buf, b"\r\n") else {
                            if self.buf.len() > MAX_CHUNK_LINE {
                                return Err(UpnpError::TooLarge {
                                    what: "HTTP chunk-size line",
                                    limit: MAX_CHUNK_LINE,
                                });
                            }
                            return Ok(None);
                        };
                        let line = self.buf.get(..eol).unwrap_or(&[]);
                        if line.len() > MAX_CHUNK_LINE {
                            return Err(UpnpError::TooLarge {
                                what: "HTTP chunk-size line",
                                limit: MAX_CHUNK_LINE,
                            });
                        }
                        let size = parse_chunk_size(line)?;
                        self.buf.drain(..eol.saturating_add(2).min(self.buf.len()));
                        if size == 0 {
                            *chunk = Chunk::Trailers;
                        } else {
                            if size > self.max_body.saturating_sub(self.body.len()) {
                                return Err(UpnpError::TooLarge {
                                    what: "HTTP body",
                                    limit: self.max_body,
                                });
                            }
                            *chunk = Chunk::Data(size);
                        }
                    }
                    Chunk::Data(size) => {
                        if self.buf.len() < size {
                            return Ok(None);
                        }
                        self.body.extend(self.buf.drain(..size));
                        *chunk = Chunk::DataEnd;
                    }
                    Chunk::DataEnd => {
                        if self.buf.len() < 2 {
                            return Ok(None);
                        }
                        if self.buf.get(..2) != Some(b"\r\n") {
                            return Err(UpnpError::malformed(WHAT, "chunk not ended by CRLF"));
                        }
                        self.buf.drain(..2);
                        *chunk = Chunk::Size;
                    }
                    Chunk::Trailers => {
                        let Some(eol) = find(&self.buf, b"\r\n") else {
                            if self.buf.len() > self.max_head {
                                return Err(UpnpError::TooLarge {
                                    what: "HTTP trailers",
                                    limit: self.max_head,
                                });
                            }
                            return Ok(None);
                        };
                        self.trailer_bytes = self.trailer_bytes.saturating_add(eol);
                        if self.trailer_bytes > self.max_head {
                            return Err(UpnpError::TooLarge {
                                what: "HTTP trailers",
                                limit: self.max_head,
                            });
                        }
                        self.buf.drain(..eol.saturating_add(2).min(self.buf.len()));
                        if eol == 0 {
                            return Ok(Some(self.take()));
                        }
                    }
                },
            }
        }
    }

    fn take(&mut self) -> Response {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Body(head, _) => Response {
                head,
                body: std::mem::take(&mut self.body),
            },
            // Only called in a body state.
            State::Head | State::Done => Response {
                head: Head {
                    status: 0,
                    headers: Vec::new(),
                },
                body: Vec::new(),
            },
        }
    }
}

fn body_kind(head: &Head, max_body: usize) -> Result<Body, UpnpError> {
    if head.status == 204 || head.status == 304 {
        return Ok(Body::Length(0));
    }
    if let Some(te) = head.header("transfer-encoding") {
        if te
            .rsplit(',')
            .next()
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        {
            return Ok(Body::Chunked(Chunk::Size));
        }
        return Err(UpnpError::malformed(
            WHAT,
            format!("transfer-encoding {te:.40}"),
        ));
    }
    let lengths: Vec<&str> = head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.as_str())
        .collect();
    match lengths.as_slice() {
        [] => Ok(Body::UntilClose),
        [first, rest @ ..] => {
            if rest.iter().any(|v| v != first) {
                return Err(UpnpError::malformed(WHAT, "conflicting content-length"));
            }
            if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
                return Err(UpnpError::malformed(
                    WHAT,
                    format!("content-length {first:.20}"),
                ));
            }
            let n: usize = first.parse().map_err(|_| UpnpError::TooLarge {
                what: "HTTP body",
                limit: max_body,
            })?;
            if n > max_body {
                return Err(UpnpError::TooLarge {
                    what: "HTTP body",
                    limit: max_body,
                });
            }
            Ok(Body::Length(n))
        }
    }
}

fn parse_chunk_size(line: &[u8]) -> Result<usize, UpnpError> {
    let text = std::str::from_utf8(line).map_err(|_| UpnpError::malformed(WHAT, "chunk size"))?;
    let size = text.split(';').next().unwrap_or("").trim();
    if size.is_empty() || size.len() > 8 {
        return Err(UpnpError::malformed(WHAT, format!("chunk size {size:.20}")));
    }
    usize::from_str_radix(size, 16)
        .map_err(|_| UpnpError::malformed(WHAT, format!("chunk size {size:.20}")))
}

/// Where `needle` starts in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(bytes: &[u8]) -> Result<Response, UpnpError> {
        let mut p = ResponseParser::new(DEFAULT_MAX_HEAD, DEFAULT_MAX_BODY);
        if let Some(r) = p.push(bytes)? {
            return Ok(r);
        }
        p.finish()
    }

    fn parse_bytewise(bytes: &[u8]) -> Result<Response, UpnpError> {
        let mut p = ResponseParser::new(DEFAULT_MAX_HEAD, DEFAULT_MAX_BODY);
        for b in bytes {
            if let Some(r) = p.push(&[*b])? {
                return Ok(r);
            }
        }
        p.finish()
    }

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://192.168.77.1:5555/rootDesc.xml").unwrap();
        assert_eq!(u.addr, "192.168.77.1:5555".parse().unwrap());
        assert_eq!(u.path, "/rootDesc.xml");
        assert_eq!(u.to_string(), "http://192.168.77.1:5555/rootDesc.xml");
        let v6 = HttpUrl::parse("HTTP://[fe80::1]/x").unwrap();
        assert_eq!(v6.addr.port(), 80);
        assert_eq!(u.join("/ctl/IPConn").unwrap().path, "/ctl/IPConn");
        assert_eq!(u.join("ctl").unwrap().path, "/ctl");
        let deep = HttpUrl::parse("http://10.0.0.1/a/b.xml").unwrap();
        assert_eq!(deep.join("c").unwrap().path, "/a/c");
        assert_eq!(
            deep.join("http://10.0.0.2:1/z").unwrap().addr,
            "10.0.0.2:1".parse().unwrap()
        );
        for bad in [
            "",
            "https://1.2.3.4/",
            "http://gateway.local/",
            "http://1.2.3.4:99999/",
            "http://[::1/",
            "http://1.2.3.4/a b",
            "http://[::1]x/",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_length_body() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello";
        for parse in [parse_all, parse_bytewise] {
            let resp = parse(r).unwrap();
            assert_eq!(resp.head.status, 200);
            assert_eq!(resp.head.header("x"), Some("y"));
            assert_eq!(resp.body, b"hello");
        }
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n1\r\n!\r\n0\r\nT: 1\r\n\r\n";
        for parse in [parse_all, parse_bytewise] {
            assert_eq!(parse(r).unwrap().body, b"hello!");
        }
    }

    #[test]
    fn read_to_close_and_interim() {
        let r = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nall of it";
        assert_eq!(parse_all(r).unwrap().body, b"all of it");
    }

    #[test]
    fn malformed_and_truncated() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab",
            b"SIP/2.0 200 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n folded\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200",
            b"",
        ] {
            assert!(
                parse_all(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn oversized_is_refused_early() {
        let mut p = ResponseParser::new(64, 16);
        assert!(matches!(
            p.push(&[b'a'; 65]),
            Err(UpnpError::TooLarge { .. })
        ));
        let mut p = ResponseParser::new(64, 16);
        assert!(matches!(
            p.push(b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n"),
            Err(UpnpError::TooLarge { .. })
        ));
        let mut p = ResponseParser::new(64, 16);
        assert!(p.push(b"HTTP/1.1 200 OK\r\n\r\n").unwrap().is_none());
        assert!(matches!(p.push(&[0; 17]), Err(UpnpError::TooLarge { .. })));
        let mut p = ResponseParser::new(64, 16);
        let r = p.push(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n");
        assert!(r.unwrap().is_none());
        let mut p = ResponseParser::new(64, 16);
        assert!(
            p.push(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n")
                .is_err()
        );
        let mut p = ResponseParser::new(64, 16);
        p.push(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        assert!(p.push(&[b'1'; 2000]).is_err());
        let many = "H: v\r\n".repeat(100);
        let r = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert!(parse_all(r.as_bytes()).is_err());
    }

    #[test]
    fn requests() {
        let u = HttpUrl::parse("http://10.0.0.1:80/ctl").unwrap();
        let get = String::from_utf8(get_request(&u)).unwrap();
        assert!(get.starts_with("GET /ctl HTTP/1.1\r\nHost: 10.0.0.1:80\r\n"));
        assert!(get.ends_with("\r\n\r\n"));
        let post = String::from_utf8(soap_request(&u, "urn:x#Y", "<b/>")).unwrap();
        assert!(post.contains("SOAPAction: \"urn:x#Y\"\r\n"));
        assert!(post.contains("Content-Length: 4\r\n"));
        assert!(post.ends_with("\r\n\r\n<b/>"));
    }

    proptest! {
        #[test]
        fn any_bytes_any_split_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), split in 0usize..300) {
            let mut p = ResponseParser::new(128, 128);
            let split = split.min(bytes.len());
            let (a, b) = bytes.split_at(split);
            if p.push(a).is_ok() && p.push(b).is_ok() {
                let _ = p.finish();
            }
        }

        #[test]
        fn chunked_round_trip(body in proptest::collection::vec(any::<u8>(), 0..500), size in 1usize..64) {
            let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for c in body.chunks(size) {
                wire.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                wire.extend_from_slice(c);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            prop_assert_eq!(parse_all(&wire).unwrap().body, body.clone());
            prop_assert_eq!(parse_bytewise(&wire).unwrap().body, body);
        }
    }
}
