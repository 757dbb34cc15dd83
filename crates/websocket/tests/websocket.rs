//! The WebSocket transport over real sockets on 127.0.0.1: whole hosts (noise + yamux on
//! top, as over TCP) on `/ws` and `/tls/ws`, certificates checked or not, and remotes that
//! send bad handshakes, text frames, or nothing at all.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::runtime::block_on;
use lp2p_core::{DialOpts, Multiaddr, Protocol, RawListener, RawTransport, RuntimeHandle};
use lp2p_host::{Host, HostStream};
use lp2p_noise::Noise;
use lp2p_websocket::frame::{Header, MAX_HEADER_LEN, OpCode, apply_mask};
use lp2p_websocket::{TlsConfig, WsConfig, WsError, WsTransport};
use lp2p_yamux::Yamux;

/// Generous: CI machines are slow and loaded; this only stops a hang.
const LIMIT: Duration = Duration::from_secs(120);

fn run<F: std::future::Future>(f: F) -> F::Output {
    let rt = RuntimeHandle::default();
    block_on(async move { rt.timeout(LIMIT, f).await.expect("test timed out") })
}

fn ma(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

async fn host(transport: WsTransport, listen: Option<&str>) -> Host {
    let mut b = Host::builder()
        .transport(transport)
        .security(Noise::new())
        .muxer(Yamux::default());
    if let Some(addr) = listen {
        b = b.listen_on(ma(addr));
    }
    b.build().await.unwrap()
}

fn echo_server(h: &Host) {
    h.set_stream_handler("/echo/1.0.0", |mut s: HostStream| async move {
        let mut data = Vec::new();
        if s.read_to_end(&mut data).await.is_ok() {
            let _ = s.write_all(&data).await;
            let _ = s.close().await;
        }
    });
}

async fn echo(client: &Host, server: &Host, len: usize) {
    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut s = client
        .new_stream(&server.local_peer_id(), ["/echo/1.0.0"])
        .await
        .unwrap();
    s.write_all(&payload).await.unwrap();
    s.close().await.unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).await.unwrap();
    assert!(back == payload, "echo of {len} bytes came back different");
}

#[test]
fn hosts_over_ws_with_noise_and_yamux() {
    run(async {
        let server = host(WsTransport::new(), Some("/ip4/127.0.0.1/tcp/0/ws")).await;
        echo_server(&server);
        let addr = server.listen_addrs()[0].clone();
        assert!(addr.to_string().ends_with("/ws"), "{addr}");
        let client = host(WsTransport::new(), None).await;
        let conn = client
            .connect(server.local_peer_id(), vec![addr])
            .await
            .unwrap();
        assert!(conn.remote_addr().to_string().ends_with("/ws"));
        echo(&client, &server, 10).await;
        echo(&client, &server, 4 << 20).await;
        client.close().await;
        server.close().await;
    });
}

#[test]
fn hosts_over_tls_ws_with_a_trusted_self_signed_certificate() {
    run(async {
        let (tls, cert) = TlsConfig::new().with_self_signed(&["127.0.0.1"]).unwrap();
        let server = host(
            WsTransport::new().with_tls(tls),
            Some("/ip4/127.0.0.1/tcp/0/tls/ws"),
        )
        .await;
        echo_server(&server);
        let addr = server.listen_addrs()[0].clone();
        let client = host(
            WsTransport::new().with_tls(TlsConfig::new().with_roots([cert]).unwrap()),
            None,
        )
        .await;
        client
            .connect(server.local_peer_id(), vec![addr])
            .await
            .unwrap();
        echo(&client, &server, 3 << 20).await;
        client.close().await;
        server.close().await;
    });
}

#[test]
fn certificate_checks() {
    run(async {
        let (tls, _) = TlsConfig::new()
            .with_self_signed(&["localhost", "127.0.0.1"])
            .unwrap();
        let server = WsTransport::new().with_tls(tls);
        let mut listener = server
            .listen(&ma("/ip4/127.0.0.1/tcp/0/tls/ws"))
            .await
            .unwrap();
        let addr = listener.local_addr();
        let port = addr
            .iter()
            .find_map(|p| match p {
                Protocol::Tcp(p) => Some(p),
                _ => None,
            })
            .unwrap();
        // Keep the listener accepting while clients try.
        let rt = RuntimeHandle::default();
        let accepting = rt.spawn(async move {
            loop {
                let _ = listener.accept().await;
            }
        });

        // The Mozilla roots do not know a self-signed certificate.
        let err = WsTransport::new().dial_ws(&addr).await.unwrap_err();
        assert!(matches!(err, WsError::Tls { .. }), "{err}");
        assert!(err.to_string().contains("UnknownIssuer"), "{err}");

        let insecure =
            WsTransport::new().with_tls(TlsConfig::new().with_insecure_client().unwrap());
        // Insecure accepts any certificate, and the SNI form works.
        insecure.dial_ws(&addr).await.unwrap();
        let sni = ma(&format!("/ip4/127.0.0.1/tcp/{port}/tls/sni/localhost/ws"));
        insecure.dial_ws(&sni).await.unwrap();
        // Legacy /wss spelling.
        let wss = ma(&format!("/ip4/127.0.0.1/tcp/{port}/wss"));
        insecure.dial_ws(&wss).await.unwrap();
        accepting.abort();
    });
}

#[test]
fn listening_on_tls_ws_needs_a_certificate() {
    run(async {
        let err = WsTransport::new()
            .listen(&ma("/ip4/127.0.0.1/tcp/0/tls/ws"))
            .await
            .err()
            .expect("no certificate configured");
        assert!(err.to_string().contains("needs a TLS certificate"), "{err}");
        assert!(!WsTransport::new().can_dial(&ma("/dns4/localhost/tcp/1/ws")));
    });
}

/// A blocking raw client on a thread: connects, sends `request`, returns what came back
/// until the server closed.
fn raw_exchange(port: u16, request: Vec<u8>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        s.write_all(&request).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    })
}

fn port_of(addr: &Multiaddr) -> u16 {
    addr.iter()
        .find_map(|p| match p {
            Protocol::Tcp(p) => Some(p),
            _ => None,
        })
        .unwrap()
}

const UPGRADE: &str = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

fn client_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let key = [0x11, 0x22, 0x33, 0x44];
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = Header {
        fin: true,
        opcode,
        mask: Some(key),
        len: payload.len() as u64,
    }
    .emit(&mut head);
    let mut out = head[..n].to_vec();
    let mut body = payload.to_vec();
    apply_mask(key, 0, &mut body);
    out.extend(body);
    out
}

#[test]
fn bad_handshakes_get_an_http_error_and_the_listener_goes_on() {
    run(async {
        let transport = WsTransport::new();
        let mut listener = transport.listen_ws(&ma("/ip4/127.0.0.1/tcp/0/ws")).unwrap();
        let port = port_of(&RawListener::local_addr(&listener));

        let plain_http = raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec());
        let bad_version = raw_exchange(
            port,
            UPGRADE.replace("Version: 13", "Version: 8").into_bytes(),
        );
        let garbage = raw_exchange(
            port,
            vec![
                0x16, 0x03, 0x01, 0, 5, 1, 2, 3, 4, 5, b'\r', b'\n', b'\r', b'\n',
            ],
        );
        // A good client after them is served.
        let addr = RawListener::local_addr(&listener);
        let good = async {
            let mut conn = WsTransport::new().dial_ws(&addr).await.unwrap();
            conn.write_all(b"ok").await.unwrap();
            conn.flush().await.unwrap();
            conn
        };
        let (mut dialed, mut accepted) = futures::join!(good, listener.accept_ws());
        let mut buf = [0u8; 2];
        accepted.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ok");
        dialed.close().await.unwrap();

        // The listener works on handshakes only while it is polled, and on a loaded machine
        // the good client may be accepted before the bad ones were read: keep accepting
        // until every raw client has its answer.
        let rt = RuntimeHandle::default();
        let answered = async {
            while ![&plain_http, &bad_version, &garbage]
                .iter()
                .all(|h| h.is_finished())
            {
                rt.sleep(Duration::from_millis(10)).await;
            }
        };
        let keep_accepting = async {
            loop {
                drop(listener.accept_ws().await);
            }
        };
        futures::future::select(Box::pin(answered), Box::pin(keep_accepting)).await;

        let answer = |h: std::thread::JoinHandle<Vec<u8>>| {
            String::from_utf8_lossy(&h.join().unwrap()).into_owned()
        };
        assert!(answer(plain_http).starts_with("HTTP/1.1 426"));
        let v = answer(bad_version);
        assert!(
            v.starts_with("HTTP/1.1 426") && v.contains("Sec-WebSocket-Version: 13"),
            "{v}"
        );
        assert!(answer(garbage).starts_with("HTTP/1.1 400"));
    });
}

#[test]
fn a_text_frame_is_refused_with_1003() {
    run(async {
        let transport = WsTransport::new();
        let mut listener = transport.listen_ws(&ma("/ip4/127.0.0.1/tcp/0/ws")).unwrap();
        let port = port_of(&RawListener::local_addr(&listener));
        let mut request = UPGRADE.as_bytes().to_vec();
        request.extend(client_frame(OpCode::Binary, b"fine"));
        request.extend(client_frame(OpCode::Text, b"not fine"));
        let client = raw_exchange(port, request);
        let mut conn = listener.accept_ws().await;
        let mut got = [0u8; 4];
        conn.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"fine");
        let err = conn.read(&mut got).await.unwrap_err();
        assert!(err.to_string().contains("text frame"), "{err}");
        drop(conn);
        let answer = client.join().unwrap();
        let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(answer.starts_with(b"HTTP/1.1 101"));
        // The close frame: unmasked, status 1003.
        assert_eq!(&answer[head_end..], [0x88, 0x02, 0x03, 0xEB]);
    });
}

#[test]
fn stalled_handshakes_time_out_without_blocking_others() {
    run(async {
        let config = WsConfig {
            handshake_timeout: Duration::from_millis(300),
            max_pending_handshakes: 4,
            ..WsConfig::default()
        };
        let transport = WsTransport::new().with_config(config);
        let mut listener = transport.listen_ws(&ma("/ip4/127.0.0.1/tcp/0/ws")).unwrap();
        let addr = RawListener::local_addr(&listener);
        let port = port_of(&addr);
        // Eight clients that connect and say nothing: twice the pending limit.
        let stalled: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    s.set_read_timeout(Some(LIMIT)).unwrap();
                    let mut out = Vec::new();
                    // Returns once the listener gives up on us and closes.
                    let _ = s.read_to_end(&mut out);
                    out
                })
            })
            .collect();
        let good = async {
            let mut conn = WsTransport::new().dial_ws(&addr).await.unwrap();
            conn.write_all(b"x").await.unwrap();
            conn.flush().await.unwrap();
            conn
        };
        let (_dialed, mut accepted) = futures::join!(good, listener.accept_ws());
        let mut b = [0u8; 1];
        accepted.read_exact(&mut b).await.unwrap();
        // Every stalled client was dropped (the listener runs their timeouts while it
        // waits for the next connection).
        let waiting = async {
            let _ = listener.accept_ws().await;
        };
        let done = blocking_join(stalled);
        futures::pin_mut!(waiting, done);
        let outs = match futures::future::select(done, waiting).await {
            futures::future::Either::Left((outs, _)) => outs,
            futures::future::Either::Right(_) => unreachable!("nobody else connects"),
        };
        assert!(outs.iter().all(Vec::is_empty));
    });
}

/// Joins threads without blocking the executor.
async fn blocking_join<T: Send + 'static>(handles: Vec<std::thread::JoinHandle<T>>) -> Vec<T> {
    let (tx, rx) = futures::channel::oneshot::channel();
    std::thread::spawn(move || {
        let outs: Vec<T> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let _ = tx.send(outs);
    });
    rx.await.unwrap()
}

#[test]
fn raw_dial_through_the_trait_and_close() {
    run(async {
        let transport = WsTransport::new();
        let mut listener = transport
            .listen(&ma("/ip4/127.0.0.1/tcp/0/ws"))
            .await
            .unwrap();
        let addr = listener.local_addr();
        let peer = lp2p_core::Keypair::generate_ed25519().public().to_peer_id();
        let with_peer = addr.clone().with(Protocol::P2p(peer));
        assert!(transport.can_dial(&with_peer));
        let opts = DialOpts::default();
        let (dialed, accepted) =
            futures::join!(transport.dial(&with_peer, &opts), listener.accept());
        let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
        assert_eq!(dialed.remote_addr(), addr);
        assert!(accepted.remote_addr().to_string().ends_with("/ws"));
        dialed.write_all(b"bye").await.unwrap();
        dialed.close().await.unwrap();
        let mut all = Vec::new();
        accepted.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"bye");
        // The server answers our close and ends its side; we read EOF.
        accepted.close().await.unwrap();
        let mut rest = Vec::new();
        dialed.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    });
}
