//! WebSocket multiaddrs (specs `websockets/README.md`, "Addressing").

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use lp2p_core::{Multiaddr, Protocol};

/// Port assumed by `/ws` without `/tcp/PORT` (HTTP's).
pub const DEFAULT_WS_PORT: u16 = 80;
/// Port assumed by `/tls/ws` and `/wss` without `/tcp/PORT` (HTTPS's).
pub const DEFAULT_WSS_PORT: u16 = 443;

/// Where and how to dial a WebSocket address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialTarget {
    /// The TCP endpoint.
    pub socket: SocketAddr,
    /// `Some(server name)` for TLS: the `/tls/sni/NAME` value, or the IP address.
    pub tls: Option<TlsName>,
    /// The `Host` header: `NAME:PORT` with an SNI name, else `IP:PORT` (`[IPv6]:PORT`).
    pub host: String,
    /// The request path (`/` unless the address carries `/http-path/...` or
    /// `/x-parity-ws/...`).
    pub path: String,
    /// The address without its `/p2p/...` suffix: the connection's remote address.
    pub remote: Multiaddr,
}

/// The name a TLS client checks the server's certificate against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsName {
    /// A DNS name (from `/tls/sni/NAME`), also sent as SNI.
    Dns(String),
    /// The IP address dialed (no SNI is sent for an address).
    Ip(IpAddr),
}

/// How a listener was asked for: the spelling it reports back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenKind {
    /// `/ws`.
    Ws,
    /// `/tls/ws`.
    TlsWs,
    /// `/wss` (the legacy spelling of `/tls/ws`).
    Wss,
}

impl ListenKind {
    /// Whether connections on this listener use TLS.
    pub fn tls(self) -> bool {
        !matches!(self, ListenKind::Ws)
    }

    /// `tcp` with this kind's suffix.
    pub fn on(self, tcp: Multiaddr) -> Multiaddr {
        match self {
            ListenKind::Ws => tcp.with(Protocol::Ws(Cow::Borrowed("/"))),
            ListenKind::TlsWs => tcp
                .with(Protocol::Tls)
                .with(Protocol::Ws(Cow::Borrowed("/"))),
            ListenKind::Wss => tcp.with(Protocol::Wss(Cow::Borrowed("/"))),
        }
    }
}

fn ip_of(p: &Protocol<'_>) -> Option<IpAddr> {
    match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(*ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

/// Parses a dialable WebSocket address:
/// `/ip4|ip6/IP[/tcp/PORT]` then `/ws`, `/tls/ws`, `/wss` or `/tls/sni/NAME/ws`, then an
/// optional `/http-path/PATH`, then an optional `/p2p/ID`. Names (`/dns*`) are resolved
/// by a resolver before the transport sees the address. Port 0 and unspecified addresses
/// are not dialable.
pub fn parse_dial(addr: &Multiaddr) -> Option<DialTarget> {
    let mut parts: Vec<Protocol<'_>> = addr.iter().collect();
    if matches!(parts.last(), Some(Protocol::P2p(_))) {
        parts.pop();
    }
    let remote: Multiaddr = parts.iter().cloned().collect();
    let mut it = parts.into_iter().peekable();
    let ip = ip_of(&it.next()?)?;
    let port = match it.peek() {
        Some(Protocol::Tcp(port)) => {
            let port = *port;
            it.next();
            Some(port)
        }
        _ => None,
    };
    let (tls, mut path) = match it.next()? {
        Protocol::Ws(path) => (None, path.into_owned()),
        Protocol::Wss(path) => (Some(TlsName::Ip(ip)), path.into_owned()),
        Protocol::Tls => match it.next()? {
            Protocol::Ws(path) => (Some(TlsName::Ip(ip)), path.into_owned()),
            Protocol::Sni(name) => match it.next()? {
                Protocol::Ws(path) => (Some(TlsName::Dns(name.into_owned())), path.into_owned()),
                _ => return None,
            },
            _ => return None,
        },
        _ => return None,
    };
    if let Some(Protocol::HttpPath(p)) = it.peek() {
        path = if p.starts_with('/') {
            p.to_string()
        } else {
            format!("/{p}")
        };
        it.next();
    }
    if it.next().is_some() || !valid_path(&path) {
        return None;
    }
    let port = port.unwrap_or(if tls.is_some() {
        DEFAULT_WSS_PORT
    } else {
        DEFAULT_WS_PORT
    });
    if port == 0 || ip.is_unspecified() {
        return None;
    }
    let socket = SocketAddr::new(ip, port);
    let host = match &tls {
        Some(TlsName::Dns(name)) => format!("{name}:{port}"),
        _ => socket.to_string(),
    };
    Some(DialTarget {
        socket,
        tls,
        host,
        path,
        remote,
    })
}

/// A request target must be printable ASCII without spaces (it goes on the request line).
fn valid_path(path: &str) -> bool {
    path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic())
}

/// Parses a listen address: `/ip4|ip6/IP/tcp/PORT` then `/ws`, `/tls/ws` or `/wss`.
pub fn parse_listen(addr: &Multiaddr) -> Option<(SocketAddr, ListenKind)> {
    let mut it = addr.iter();
    let ip = ip_of(&it.next()?)?;
    let Protocol::Tcp(port) = it.next()? else {
        return None;
    };
    let kind = match (it.next()?, it.next(), it.next()) {
        (Protocol::Ws(p), None, None) if p == "/" => ListenKind::Ws,
        (Protocol::Wss(p), None, None) if p == "/" => ListenKind::Wss,
        (Protocol::Tls, Some(Protocol::Ws(p)), None) if p == "/" => ListenKind::TlsWs,
        _ => return None,
    };
    Some((SocketAddr::new(ip, port), kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ma(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    const PEER: &str = "12D3KooWGBr8hRyWqhhTNAyfrR4j3BbKBbFm8b8JYRC7TBzmvPS6";

    #[test]
    fn dial_shapes() {
        let t = parse_dial(&ma("/ip4/127.0.0.1/tcp/4001/ws")).unwrap();
        assert_eq!(t.socket, "127.0.0.1:4001".parse().unwrap());
        assert_eq!(
            (t.tls, t.host.as_str(), t.path.as_str()),
            (None, "127.0.0.1:4001", "/")
        );

        let t = parse_dial(&ma(&format!("/ip6/::1/tcp/9/tls/ws/p2p/{PEER}"))).unwrap();
        assert_eq!(t.tls, Some(TlsName::Ip("::1".parse().unwrap())));
        assert_eq!(t.host, "[::1]:9");
        assert_eq!(t.remote, ma("/ip6/::1/tcp/9/tls/ws"));

        let t = parse_dial(&ma("/ip4/10.0.0.1/tcp/443/tls/sni/example.com/ws")).unwrap();
        assert_eq!(t.tls, Some(TlsName::Dns("example.com".into())));
        assert_eq!(t.host, "example.com:443");

        let t = parse_dial(&ma("/ip4/10.0.0.1/tcp/8443/wss")).unwrap();
        assert!(matches!(t.tls, Some(TlsName::Ip(_))));

        // Ports default to 80 and 443.
        assert_eq!(
            parse_dial(&ma("/ip4/10.0.0.1/ws")).unwrap().socket.port(),
            80
        );
        assert_eq!(
            parse_dial(&ma("/ip4/10.0.0.1/tls/ws"))
                .unwrap()
                .socket
                .port(),
            443
        );

        let t = parse_dial(&ma("/ip4/10.0.0.1/tcp/1/wss/http-path/a%2Fb")).unwrap();
        assert_eq!(t.path, "/a/b");
        let t = parse_dial(&ma("/ip4/10.0.0.1/tcp/1/x-parity-ws/%2Fchat")).unwrap();
        assert_eq!(t.path, "/chat");
    }

    #[test]
    fn not_dialable() {
        for bad in [
            "/ip4/127.0.0.1/tcp/4001",
            "/ip4/127.0.0.1/tcp/0/ws",
            "/ip4/0.0.0.0/tcp/1/ws",
            "/dns4/example.com/tcp/443/wss",
            "/ip4/1.2.3.4/tcp/1/tls",
            "/ip4/1.2.3.4/tcp/1/tls/sni/x.com",
            "/ip4/1.2.3.4/tcp/1/ws/tcp/2",
            "/ip4/1.2.3.4/udp/1/quic-v1",
            "/ip4/1.2.3.4/tcp/1/ws/http-path/a%20b",
        ] {
            assert_eq!(parse_dial(&ma(bad)), None, "{bad}");
        }
    }

    #[test]
    fn listen_shapes() {
        assert_eq!(
            parse_listen(&ma("/ip4/0.0.0.0/tcp/0/ws")),
            Some(("0.0.0.0:0".parse().unwrap(), ListenKind::Ws))
        );
        assert_eq!(
            parse_listen(&ma("/ip6/::/tcp/5/tls/ws")).unwrap().1,
            ListenKind::TlsWs
        );
        assert_eq!(
            parse_listen(&ma("/ip4/1.2.3.4/tcp/5/wss")).unwrap().1,
            ListenKind::Wss
        );
        for bad in [
            "/ip4/1.2.3.4/tcp/5",
            "/ip4/1.2.3.4/tcp/5/tls",
            "/ip4/1.2.3.4/ws",
            "/ip4/1.2.3.4/tcp/5/x-parity-ws/%2Fa",
        ] {
            assert_eq!(parse_listen(&ma(bad)), None, "{bad}");
        }
        let tcp = ma("/ip4/1.2.3.4/tcp/5");
        assert_eq!(
            ListenKind::TlsWs.on(tcp.clone()),
            ma("/ip4/1.2.3.4/tcp/5/tls/ws")
        );
        assert_eq!(ListenKind::Wss.on(tcp), ma("/ip4/1.2.3.4/tcp/5/wss"));
    }
}
