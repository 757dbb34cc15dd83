//! `lp2p-node` over WebSocket (`/ws`, `/tls/ws` with a self-signed or given certificate)
//! and with names (`/dns4`, `/dnsaddr`) resolved by a local DNS server (`--dns-server`).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use lp2p_dns::testing::{TestDnsServer, TestRecord};
use serde_json::Value;

const NODE: &str = env!("CARGO_BIN_EXE_lp2p-node");

/// A generous upper bound for one command on a slow, loaded machine.
const COMMAND_TIMEOUT: &str = "60";

/// A listening node, killed when dropped.
struct Listening {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    addrs: Vec<String>,
    peer: String,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listen(args: &[&str]) -> Listening {
    let mut child = Command::new(NODE)
        .arg("listen")
        .args(args)
        .args(["--timeout", "120"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn lp2p-node");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read stdout");
    let event: Value = serde_json::from_str(&line).expect("JSON line");
    assert_eq!(event["event"], "listening", "{event}");
    let addrs = event["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    Listening {
        child,
        _stdout: stdout,
        addrs,
        peer: event["peer_id"].as_str().unwrap().to_owned(),
    }
}

fn dial(addr: &str, extra: &[&str]) -> Output {
    Command::new(NODE)
        .args(["dial", "--addr", addr])
        .args(extra)
        .args(["--timeout", COMMAND_TIMEOUT])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run lp2p-node")
}

fn events(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn assert_ping_and_echo(output: &Output) {
    let events = events(output);
    assert!(
        output.status.success(),
        "{events:?} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(events.iter().any(|e| e["event"] == "ping"), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "echo" && e["ok"] == true),
        "{events:?}"
    );
}

fn error_of(output: &Output) -> String {
    assert!(!output.status.success());
    let events = events(output);
    let last = events.last().expect("an error event");
    assert_eq!(last["event"], "error", "{events:?}");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
    last["what"].as_str().unwrap().to_owned()
}

fn port_of(addr: &str) -> &str {
    addr.split('/').nth(4).unwrap()
}

#[test]
fn ws_and_tls_ws_listeners_in_one_node() {
    let node = listen(&[
        "--addr",
        "/ip4/127.0.0.1/tcp/0",
        "--addr",
        "/ip4/127.0.0.1/tcp/0/ws",
        "--addr",
        "/ip4/127.0.0.1/tcp/0/tls/ws",
    ]);
    assert_eq!(node.addrs.len(), 3, "{:?}", node.addrs);
    let ws = node
        .addrs
        .iter()
        .find(|a| a.contains("/ws/p2p/") && !a.contains("/tls/"))
        .unwrap();
    let tls = node
        .addrs
        .iter()
        .find(|a| a.contains("/tls/ws/p2p/"))
        .unwrap();

    assert_ping_and_echo(&dial(ws, &["--ping", "2", "--echo", "over ws"]));
    assert_ping_and_echo(&dial(
        tls,
        &["--insecure-ws-cert", "--ping", "1", "--echo", "over tls/ws"],
    ));
    // The self-signed certificate is refused without --insecure-ws-cert.
    let what = error_of(&dial(tls, &["--ping", "1"]));
    assert!(
        what.contains("TLS") && what.contains("UnknownIssuer"),
        "{what}"
    );
    // Mplex over WebSocket too.
    assert_ping_and_echo(&dial(
        ws,
        &["--muxer", "mplex", "--only", "--ping", "1", "--echo", "m"],
    ));
}

#[test]
fn a_given_certificate_is_presented() {
    let dir = std::env::temp_dir().join(format!("lp2p-node-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = lp2p_websocket::self_signed(&["127.0.0.1"]).unwrap();
    let pem = |label: &str, der: &[u8]| {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    };
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, pem("CERTIFICATE", cert.as_ref())).unwrap();
    std::fs::write(&key_path, pem("PRIVATE KEY", key.secret_der())).unwrap();
    let node = listen(&[
        "--addr",
        "/ip4/127.0.0.1/tcp/0/tls/ws",
        "--cert",
        cert_path.to_str().unwrap(),
        "--cert-key",
        key_path.to_str().unwrap(),
    ]);
    assert_ping_and_echo(&dial(
        &node.addrs[0],
        &["--insecure-ws-cert", "--ping", "1", "--echo", "x"],
    ));

    // A key file that is not PEM: one error event naming the options.
    std::fs::write(&key_path, "not a key").unwrap();
    let output = Command::new(NODE)
        .args(["listen", "--addr", "/ip4/127.0.0.1/tcp/0/tls/ws", "--cert"])
        .arg(&cert_path)
        .arg("--cert-key")
        .arg(&key_path)
        .args(["--timeout", "5"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let what = error_of(&output);
    assert!(what.contains("--cert"), "{what}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn names_resolved_by_a_given_dns_server() {
    let node = listen(&[
        "--addr",
        "/ip4/127.0.0.1/tcp/0",
        "--addr",
        "/ip4/127.0.0.1/tcp/0/ws",
    ]);
    let tcp_port = port_of(&node.addrs[0]).to_owned();
    let ws_port = port_of(&node.addrs[1]).to_owned();
    let peer = node.peer.clone();
    let dns = TestDnsServer::start().unwrap();
    dns.add("node.test", TestRecord::A("127.0.0.1".parse().unwrap()));
    dns.add_dnsaddr(
        "boot.test",
        &format!("/dns4/node.test/tcp/{tcp_port}/p2p/{peer}"),
    );
    dns.add_dnsaddr(
        "wsboot.test",
        &format!("/dns4/node.test/tcp/{ws_port}/ws/p2p/{peer}"),
    );
    let server = dns.addr().to_string();

    for addr in [
        format!("/dns4/node.test/tcp/{tcp_port}/p2p/{peer}"),
        format!("/dnsaddr/boot.test/p2p/{peer}"),
        // Without a peer id, the records name it.
        "/dnsaddr/boot.test".to_owned(),
        format!("/dnsaddr/wsboot.test/p2p/{peer}"),
    ] {
        let output = dial(
            &addr,
            &["--dns-server", &server, "--ping", "1", "--echo", "named"],
        );
        assert_ping_and_echo(&output);
        let connected = events(&output)
            .into_iter()
            .find(|e| e["event"] == "connected")
            .unwrap();
        assert_eq!(connected["peer"], peer.as_str(), "{addr}");
    }
    let what = error_of(&dial(
        &format!("/dnsaddr/missing.test/p2p/{peer}"),
        &["--dns-server", &server, "--ping", "1"],
    ));
    assert!(
        what.contains("no TXT record for _dnsaddr.missing.test"),
        "{what}"
    );
}
