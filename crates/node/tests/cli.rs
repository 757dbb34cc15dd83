//! Drives the `lp2p-node` binary as scripts do: every success prints its events and exits 0,
//! every failure prints exactly one `error` event and exits non-zero, never a panic.
//!
//! Every child process is killed when its guard drops, so a failing test leaves nothing
//! behind. Listeners bind 127.0.0.1 port 0 and report their address on stdout.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};

use serde_json::Value;

const NODE: &str = env!("CARGO_BIN_EXE_lp2p-node");

/// A generous upper bound for one command on a slow, loaded machine.
const COMMAND_TIMEOUT: &str = "60";

/// A child process killed when dropped.
struct Running {
    child: Child,
    stdout: BufReader<ChildStdout>,
    stdin: Option<ChildStdin>,
}

impl Running {
    fn next_event(&mut self) -> Value {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).expect("read stdout");
        assert!(n > 0, "the node closed stdout without another event");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line: {line:?}: {e}"))
    }

    /// Closes stdin (a `listen` node then stops gracefully) and returns its exit status
    /// and remaining stdout.
    fn finish(mut self) -> (std::process::ExitStatus, Vec<Value>) {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        let mut line = String::new();
        while self.stdout.read_line(&mut line).expect("read stdout") > 0 {
            rest.push(serde_json::from_str(&line).expect("JSON line"));
            line.clear();
        }
        let status = self.child.wait().expect("wait");
        (status, rest)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `lp2p-node listen` on 127.0.0.1 port 0 with `extra` options; returns it and the
/// dialable address (ending in /p2p/ID) from its `listening` event.
fn listen(extra: &[&str]) -> (Running, String) {
    let (node, addrs) = listen_all(extra);
    (node, addrs[0].clone())
}

/// Like [`listen`], with every address of the `listening` event (the TCP one first, then
/// any that `extra` adds with `--addr`).
fn listen_all(extra: &[&str]) -> (Running, Vec<String>) {
    let (node, event) = listen_event(extra);
    let addrs = event["addrs"]
        .as_array()
        .expect("addresses")
        .iter()
        .map(|a| a.as_str().expect("an address").to_owned())
        .collect();
    (node, addrs)
}

/// Starts `lp2p-node listen` like [`listen`]; returns it and its whole `listening` event.
fn listen_event(extra: &[&str]) -> (Running, Value) {
    let mut child = Command::new(NODE)
        .args([
            "listen",
            "--addr",
            "/ip4/127.0.0.1/tcp/0",
            "--timeout",
            "120",
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn lp2p-node");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let stdin = child.stdin.take();
    let mut node = Running {
        child,
        stdout,
        stdin,
    };
    let event = node.next_event();
    assert_eq!(event["event"], "listening", "{event}");
    (node, event)
}

fn run(args: &[&str]) -> Output {
    Command::new(NODE)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run lp2p-node")
}

/// `lp2p-node dial --addr ADDR EXTRA... --timeout COMMAND_TIMEOUT`.
fn dial(addr: &str, extra: &[&str]) -> Output {
    let mut args = vec!["dial", "--addr", addr];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--timeout", COMMAND_TIMEOUT]);
    run(&args)
}

fn events_of(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line: {line:?}: {e}"))
        })
        .collect()
}

/// Asserts the run failed with exactly one `error` event, the last line, mentioning `needle`,
/// and no panic or backtrace on stderr. Returns the error text.
fn assert_fails_with(output: &Output, needle: &str) -> String {
    let events = events_of(output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "expected a failure, got {events:?}"
    );
    assert_ne!(output.status.code(), Some(70), "internal error: {events:?}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("stack backtrace"),
        "{stderr}"
    );
    let errors: Vec<&Value> = events.iter().filter(|e| e["event"] == "error").collect();
    assert_eq!(errors.len(), 1, "exactly one error event: {events:?}");
    assert_eq!(
        events.last().map(|e| &e["event"]),
        Some(&Value::from("error"))
    );
    let what = errors[0]["what"].as_str().expect("what").to_owned();
    assert!(
        what.to_lowercase().contains(&needle.to_lowercase()),
        "{what:?} should mention {needle:?}"
    );
    what
}

/// The peer id a node started with `--key-seed seed` has.
fn peer_id_of(seed: u64) -> String {
    let (node, addr) = listen(&["--key-seed", &seed.to_string(), "--bare"]);
    drop(node);
    addr.rsplit('/').next().expect("peer id").to_owned()
}

#[test]
fn unknown_option_is_a_usage_error() {
    let output = run(&["dial", "--frobnicate"]);
    assert_fails_with(&output, "--frobnicate");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn unknown_command_is_a_usage_error() {
    let output = run(&["teleport"]);
    assert_fails_with(&output, "teleport");
}

#[test]
fn bad_address_is_an_error() {
    let output = run(&["dial", "--addr", "/ip4/999.1.1.1/tcp/1"]);
    assert_fails_with(&output, "999.1.1.1");
}

#[test]
fn address_without_peer_id_is_an_error() {
    let output = dial("/ip4/127.0.0.1/tcp/1", &[]);
    assert_fails_with(&output, "/p2p/");
}

#[test]
fn unreachable_peer_is_an_error() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let peer = peer_id_of(7);
    let addr = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer}");
    let output = dial(&addr, &["--ping", "1"]);
    assert_fails_with(&output, &format!("127.0.0.1/tcp/{port}"));
}

#[test]
fn wrong_peer_id_is_an_error() {
    let (_listener, addr) = listen(&["--key-seed", "1"]);
    let other = peer_id_of(2);
    let base = addr.rsplit_once("/p2p/").expect("p2p").0;
    let wrong = format!("{base}/p2p/{other}");
    let output = dial(&wrong, &["--ping", "1"]);
    let what = assert_fails_with(&output, &other);
    assert!(what.to_lowercase().contains("peer id"), "{what}");
}

#[test]
fn security_the_remote_does_not_speak_is_an_error() {
    let (_listener, addr) = listen(&["--security", "noise"]);
    let output = dial(&addr, &["--security", "plaintext", "--ping", "1"]);
    assert_fails_with(&output, "/plaintext/2.0.0");
}

#[test]
fn muxer_the_remote_does_not_speak_is_an_error() {
    let (_listener, addr) = listen(&["--muxer", "yamux", "--only"]);
    let output = dial(&addr, &["--muxer", "mplex", "--only", "--ping", "1"]);
    assert_fails_with(&output, "/mplex/6.7.0");
}

#[test]
fn dial_pings_echoes_and_identifies() {
    let (listener, addr) = listen(&[]);
    let output = dial(
        &addr,
        &["--ping", "2", "--echo", "hello lp2p", "--identify"],
    );
    let events = events_of(&output);
    assert!(
        output.status.success(),
        "{events:?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(
        kinds,
        ["connected", "ping", "ping", "echo", "identify"],
        "{events:?}"
    );
    assert!(events[1]["rtt_ms"].as_f64().expect("rtt") >= 0.0);
    assert_eq!(events[3]["bytes"], 10);
    let identify = &events[4];
    assert!(
        identify["agent_version"]
            .as_str()
            .expect("agent")
            .starts_with("lp2p/"),
        "{identify}"
    );
    let protocols: Vec<&str> = identify["protocols"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for expected in [
        "/ipfs/id/1.0.0",
        "/ipfs/ping/1.0.0",
        "/echo/1.0.0",
        "/perf/1.0.0",
    ] {
        assert!(
            protocols.contains(&expected),
            "{expected} missing from {protocols:?}"
        );
    }

    let (status, rest) = listener.finish();
    assert!(status.success(), "listener exit {status:?}: {rest:?}");
    assert!(!rest.iter().any(|e| e["event"] == "error"), "{rest:?}");
}

/// Stdin fed through a pipe (which the node reads on its executor): a line longer than the
/// limit is skipped, in bounded memory, and the lines after it are still taken, including a
/// last one without a newline before the end of input.
#[test]
fn an_overlong_stdin_line_is_skipped_and_the_next_ones_answered() {
    let (mut listener, _) = listen(&[]);
    let stdin = listener.stdin.as_mut().expect("stdin");
    // Three times the limit (a little over 1 MiB), in one write.
    stdin
        .write_all(&vec![b'x'; 3 * 1024 * 1024])
        .expect("write stdin");
    stdin
        .write_all(b"\nexplain first\nexplain last")
        .expect("write stdin");
    drop(listener.stdin.take());
    let mut explained = Vec::new();
    while explained.len() < 2 {
        let event = listener.next_event();
        assert_ne!(event["event"], "error", "{event}");
        if event["event"] == "explain" {
            explained.push(event);
        }
    }
    // Without AutoNAT, `explain` answers that it is not running: the line was taken.
    for event in &explained {
        assert_eq!(event["ok"], false, "{event}");
    }
    let (status, rest) = listener.finish();
    assert!(status.success(), "listener exit {status:?}: {rest:?}");
}

/// A reader that stops reading stdout does not stall the node: with its stdout pipe full,
/// a listener still answers a dial and a ping, and every event it printed meanwhile arrives,
/// in order, once the reader reads again. (Before, the executor thread blocked in the
/// write and the dial timed out.)
#[test]
fn a_listener_whose_stdout_is_not_read_still_answers() {
    /// `explain` lines, each answered with an event of about 100 bytes that names the line
    /// (its address is not a multiaddr): well past a 64 KiB pipe.
    const LINES: usize = 3000;
    /// Unread bytes that mean the pipe is full for this test: a 64 KiB pipe less the slack
    /// the node keeps (two pages) and a line.
    const FULL: u64 = 48 * 1024;
    let (mut listener, addr) = listen(&["--autonat"]);
    let stdin = listener.stdin.as_mut().expect("stdin");
    for i in 0..LINES {
        writeln!(stdin, "explain line-{i}").expect("write stdin");
    }
    stdin.flush().expect("flush stdin");
    // Wait (without reading) until the node has filled the pipe.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let unread = rustix::io::ioctl_fionread(listener.stdout.get_ref()).expect("FIONREAD");
        if unread >= FULL {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the node wrote only {unread} bytes"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = dial(&addr, &["--ping", "1"]);
    let events = events_of(&output);
    assert!(
        output.status.success(),
        "a dial to a node whose stdout is full: {events:?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (status, rest) = listener.finish();
    assert!(status.success(), "listener exit {status:?}");
    let explained: Vec<usize> = rest
        .iter()
        .filter(|e| e["event"] == "explain")
        .filter_map(|e| {
            let error = e["error"].as_str()?;
            let (_, tail) = error.split_once("`line-")?;
            tail.split('`').next()?.parse().ok()
        })
        .collect();
    assert_eq!(
        explained,
        (0..LINES).collect::<Vec<_>>(),
        "every event arrives, in order"
    );
    assert!(
        rest.iter().any(|e| e["event"] == "connected"),
        "the dial's event arrives too: {:?}",
        rest.last()
    );
}

/// One blocking HTTP GET of `url` (`http://IP:PORT/PATH`); the whole response.
fn http_get(url: &str) -> String {
    use std::io::Read;
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the metrics port");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    response
}

/// The value of the first sample line of `text` that starts with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn listen_serves_metrics_that_a_scrape_reads() {
    let (node, listening) = listen_event(&["--metrics", "127.0.0.1:0"]);
    let url = listening["metrics"]
        .as_str()
        .expect("a metrics URL")
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/metrics"),
        "{url}"
    );
    let addr = listening["addrs"][0]
        .as_str()
        .expect("an address")
        .to_owned();
    let output = dial(&addr, &["--ping", "2", "--echo", "metrics"]);
    assert!(output.status.success(), "{:?}", events_of(&output));

    // The listener counts what the dialer did; its connection may still be closing.
    let mut body = String::new();
    for _ in 0..600 {
        let response = http_get(&url);
        let (head, rest) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        body = rest.to_owned();
        if sample(
            &body,
            "lp2p_connections_closed_total{direction=\"in\",transport=\"tcp\",reason=\"remote\"}",
        ) == Some(1.0)
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for (prefix, at_least) in [
        (
            "lp2p_connections_opened_total{direction=\"in\",transport=\"tcp\"}",
            1.0,
        ),
        (
            "lp2p_connections_closed_total{direction=\"in\",transport=\"tcp\",reason=\"remote\"}",
            1.0,
        ),
        (
            "lp2p_protocol_streams_total{protocol=\"/ipfs/ping/1.0.0\",direction=\"in\"}",
            1.0,
        ),
        (
            "lp2p_protocol_bytes_total{protocol=\"/echo/1.0.0\",direction=\"in\"}",
            7.0,
        ),
        (
            "lp2p_protocol_bytes_total{protocol=\"/echo/1.0.0\",direction=\"out\"}",
            7.0,
        ),
        ("lp2p_identify_applied_total", 1.0),
        ("lp2p_pubsub_rpcs_total{outcome=\"received\"}", 0.0),
    ] {
        let value = sample(&body, prefix).unwrap_or_else(|| panic!("no {prefix} in\n{body}"));
        assert!(value >= at_least, "{prefix} = {value}\n{body}");
    }
    let (status, rest) = node.finish();
    assert!(status.success(), "listener exit {status:?}: {rest:?}");
}

#[test]
fn a_listener_reserves_on_a_relay_and_is_dialed_through_it() {
    let (relay, relay_addr) = listen(&["--relay-service"]);
    let (mut behind, _) = listen(&["--relay", &relay_addr]);
    // `connected` (to the relay) may come first; then the reservation.
    let reservation = loop {
        let event = behind.next_event();
        if event["event"] == "reservation" {
            break event;
        }
        assert_ne!(event["event"], "error", "{event}");
    };
    let relay_id = relay_addr.rsplit('/').next().unwrap();
    assert_eq!(reservation["relay"], relay_id, "{reservation}");
    let circuit = reservation["addrs"][0]
        .as_str()
        .expect("an address through the relay")
        .to_owned();
    assert!(
        circuit.contains(&format!("/p2p/{relay_id}/p2p-circuit/p2p/")),
        "{circuit}"
    );
    // A dialer reaches the listener through the relay.
    let output = dial(&circuit, &[]);
    let events = events_of(&output);
    assert!(
        output.status.success(),
        "{events:?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(events[0]["event"], "connected", "{events:?}");
    // Echo runs over the relayed connection (the node's test protocol opts in).
    let output = dial(&circuit, &["--echo", "through the relay"]);
    let events = events_of(&output);
    assert!(output.status.success(), "{events:?}");
    assert!(events.iter().any(|e| e["event"] == "echo"), "{events:?}");
    // Ping has not opted in to limited connections: a ping through the relay is refused,
    // and the error says why.
    let output = dial(&circuit, &["--ping", "1"]);
    assert!(!output.status.success());
    assert_fails_with(&output, "is limited (relayed)");
    let (status, rest) = behind.finish();
    assert!(status.success(), "{rest:?}");
    let (status, rest) = relay.finish();
    assert!(status.success(), "{rest:?}");
}

#[test]
fn autonat_prints_the_reachability_of_a_listen_address() {
    let (server, server_addr) = listen(&["--autonat"]);
    let (mut node, addr) = listen(&["--autonat", "--connect", &server_addr]);
    let ours = addr.rsplit_once("/p2p/").expect("an address with /p2p").0;
    // `connected` (to the server) comes first; then the verdict on our TCP address.
    let reachability = loop {
        let event = node.next_event();
        if event["event"] == "reachability" {
            break event;
        }
        assert_ne!(event["event"], "error", "{event}");
    };
    assert_eq!(reachability["addr"], ours, "{reachability}");
    assert_eq!(reachability["status"], "public", "{reachability}");
    // `explain ADDR` says why: the server that dialed back, and that it is advertised.
    writeln!(node.stdin.as_mut().unwrap(), "explain {ours}").unwrap();
    let explain = loop {
        let event = node.next_event();
        if event["event"] == "explain" {
            break event;
        }
    };
    let server_id = server_addr.rsplit('/').next().unwrap();
    assert_eq!(explain["ok"], true, "{explain}");
    assert_eq!(explain["status"], "public", "{explain}");
    assert_eq!(explain["reachable_by"][0], server_id, "{explain}");
    assert_eq!(explain["external"], true, "{explain}");
    assert!(
        explain["reason"]
            .as_str()
            .unwrap()
            .starts_with("1 distinct server reached it"),
        "{explain}"
    );
    writeln!(node.stdin.as_mut().unwrap(), "explain not-an-address").unwrap();
    // Connection events (the dial backs) may come in between.
    let bad = loop {
        let event = node.next_event();
        if event["event"] == "explain" {
            break event;
        }
    };
    assert_eq!(bad["ok"], false, "{bad}");
    let (status, rest) = node.finish();
    assert!(status.success(), "{rest:?}");
    let (status, rest) = server.finish();
    assert!(status.success(), "{rest:?}");
}

#[test]
fn kad_auto_becomes_a_server_once_autonat_finds_an_address_public() {
    let (server, server_addr) = listen(&["--autonat", "--kad", "server"]);
    let (mut node, _) = listen(&["--autonat", "--kad", "auto", "--connect", &server_addr]);
    // The verdict comes first, then the switch it causes.
    let mut public = false;
    let mode = loop {
        let event = node.next_event();
        assert_ne!(event["event"], "error", "{event}");
        if event["event"] == "reachability" && event["status"] == "public" {
            public = true;
        }
        if event["event"] == "kad-mode" {
            break event;
        }
    };
    assert!(public, "kad-mode before any public verdict");
    assert_eq!(mode["mode"], "server", "{mode}");
    let (status, rest) = node.finish();
    assert!(status.success(), "{rest:?}");
    let (status, rest) = server.finish();
    assert!(status.success(), "{rest:?}");
}

#[test]
fn relay_auto_gives_up_the_reservation_once_an_address_is_public() {
    let (relay, relay_addr) = listen(&["--relay-service", "--autonat"]);
    let (mut node, _) = listen(&[
        "--relay",
        &relay_addr,
        "--relay-auto",
        "--autonat",
        "--connect",
        &relay_addr,
    ]);
    let relay_id = relay_addr.rsplit('/').next().unwrap();
    // Nothing is known at first: the reservation is made; the public verdict then ends it.
    let mut seen = Vec::new();
    loop {
        let event = node.next_event();
        assert_ne!(event["event"], "error", "{event}");
        let name = event["event"].as_str().unwrap_or_default().to_owned();
        if name == "reservation" {
            assert_eq!(event["relay"], relay_id, "{event}");
        }
        if name == "reachability" {
            assert_eq!(event["status"], "public", "{event}");
        }
        if name == "reservation-released" {
            assert_eq!(event["relay"], relay_id, "{event}");
            seen.push(name);
            break;
        }
        seen.push(name);
    }
    let at = |name: &str| seen.iter().position(|s| s == name);
    assert!(at("reservation").is_some(), "{seen:?}");
    assert!(at("reachability").is_some(), "{seen:?}");
    assert!(at("reservation") < at("reachability"), "{seen:?}");
    let (status, rest) = node.finish();
    assert!(status.success(), "{rest:?}");
    let (status, rest) = relay.finish();
    assert!(status.success(), "{rest:?}");
}

#[test]
fn autonat_applies_to_listen_and_dial_only() {
    let output = run(&["perf", "--autonat", "--addr", "/ip4/127.0.0.1/tcp/1"]);
    assert_fails_with(&output, "--autonat does not apply to `perf`");
}

#[test]
fn dial_over_plaintext_and_mplex() {
    let (_listener, addr) = listen(&["--security", "plaintext", "--muxer", "mplex", "--bare"]);
    let output = dial(
        &addr,
        &[
            "--security",
            "plaintext",
            "--muxer",
            "mplex",
            "--bare",
            "--ping",
            "1",
            "--echo",
            "x",
        ],
    );
    let events = events_of(&output);
    assert!(output.status.success(), "{events:?}");
    assert_eq!(
        events.iter().filter(|e| e["event"] == "echo").count(),
        1,
        "{events:?}"
    );
}

#[test]
fn perf_exchange_counts_bytes() {
    let (_listener, addr) = listen(&["--bare"]);
    let output = run(&[
        "perf",
        "--addr",
        &addr,
        "--upload-bytes",
        "1048576",
        "--download-bytes",
        "2097152",
        "--timeout",
        COMMAND_TIMEOUT,
    ]);
    let events = events_of(&output);
    assert!(output.status.success(), "{events:?}");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "perf");
    assert_eq!(events[0]["upload_bytes"], 1_048_576);
    assert_eq!(events[0]["download_bytes"], 2_097_152);
}

#[test]
fn conn_bench_and_hold() {
    let (_listener, addr) = listen(&["--bare"]);
    let output = run(&[
        "conn-bench",
        "--addr",
        &addr,
        "--count",
        "5",
        "--bare",
        "--timeout",
        COMMAND_TIMEOUT,
    ]);
    let events = events_of(&output);
    assert!(output.status.success(), "{events:?}");
    assert_eq!(events[0]["event"], "conn-bench");
    assert_eq!(events[0]["count"], 5);
    assert!(events[0]["first_ping_ms_min"].as_f64().expect("min") > 0.0);

    // `hold` keeps its connections until --timeout, then exits 0.
    let output = run(&[
        "hold",
        "--addr",
        &addr,
        "--count",
        "20",
        "--concurrency",
        "4",
        "--bare",
        "--timeout",
        "1",
    ]);
    let events = events_of(&output);
    assert!(output.status.success(), "{events:?}");
    assert_eq!(events[0]["event"], "hold");
    assert_eq!(events[0]["connections"], 20);
    assert_eq!(events[0]["failed"], 0);
}

#[test]
fn publish_reaches_a_listener_and_back() {
    let (mut listener, addr) = listen(&["--topic", "news"]);
    let mut stdin = listener.stdin.take().expect("stdin");
    // The dialer publishes once the listener is in its mesh, then waits for one message: the
    // listener publishes its own line when it sees the dialer's.
    let mut child = Command::new(NODE)
        .args([
            "dial",
            "--addr",
            &addr,
            "--topic",
            "news",
            "--publish",
            "from the dialer",
        ])
        .args(["--expect-messages", "1", "--timeout", COMMAND_TIMEOUT])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn dialer");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let dialer = Running {
        child,
        stdout,
        stdin: None,
    };
    loop {
        let event = listener.next_event();
        if event["event"] == "message" {
            assert_eq!(event["topic"], "news");
            assert_eq!(event["data"], "from the dialer");
            break;
        }
    }
    writeln!(stdin, "publish news from the listener").expect("write stdin");
    stdin.flush().expect("flush");
    let (status, events) = dialer.finish();
    assert!(status.success(), "{events:?}");
    let message = events
        .iter()
        .find(|e| e["event"] == "message")
        .expect("a message event");
    assert_eq!(message["data"], "from the listener");
    drop(stdin);
}

#[test]
fn keygen_writes_a_private_key_file() {
    let dir = std::env::temp_dir().join(format!("lp2p-node-keygen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("key");
    let _ = std::fs::remove_file(&path);
    let output = run(&["keygen", "--out", path.to_str().expect("utf-8 path")]);
    let events = events_of(&output);
    assert!(output.status.success(), "{events:?}");
    let peer = events[0]["peer_id"].as_str().expect("peer id").to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A listener started with the file has the same identity.
    let (node, addr) = listen(&["--key-file", path.to_str().expect("utf-8 path"), "--bare"]);
    drop(node);
    assert!(addr.ends_with(&peer), "{addr} vs {peer}");
    // Writing over an existing key is refused.
    let output = run(&["keygen", "--out", path.to_str().expect("utf-8 path")]);
    assert_fails_with(&output, "key file");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_runs_and_exits_zero() {
    let output = run(&["demo", "--nodes", "3"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "Identify",
        "Ping",
        "Echo",
        "Gossipsub",
        "every step succeeded",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected} missing from:\n{stdout}"
        );
    }
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_listener_gracefully() {
    let (mut listener, addr) = listen(&[]);
    // Give it a connection to close.
    let output = dial(&addr, &["--ping", "1"]);
    assert!(output.status.success(), "{:?}", events_of(&output));
    let pid = i32::try_from(listener.child.id()).expect("pid fits");
    let pid = rustix::process::Pid::from_raw(pid).expect("a real pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("send SIGINT");
    // stdin stays open: only the signal can have stopped it.
    let status = listener.child.wait().expect("wait");
    assert!(status.success(), "Ctrl-C must exit 0, got {status:?}");
}

#[test]
fn connect_peers_are_dialed_when_listening() {
    let (_first, first_addr) = listen(&["--key-seed", "11"]);
    let first_peer = first_addr.rsplit('/').next().expect("peer id").to_owned();
    let (mut second, _) = listen(&["--connect", &first_addr]);
    loop {
        let event = second.next_event();
        assert_ne!(event["event"], "error", "{event}");
        if event["event"] == "connected" {
            assert_eq!(event["peer"], first_peer.as_str());
            assert_eq!(event["dir"], "out");
            break;
        }
    }
    // Identify runs on that connection too.
    loop {
        let event = second.next_event();
        if event["event"] == "identify" {
            assert_eq!(event["peer"], first_peer.as_str());
            break;
        }
    }
}

#[test]
fn quic_and_tcp_at_once() {
    let (listener, addrs) = listen_all(&["--addr", "/ip4/127.0.0.1/udp/0/quic-v1"]);
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    let quic = addrs
        .iter()
        .find(|a| a.contains("/udp/") && a.contains("/quic-v1/p2p/"))
        .expect("a QUIC address");
    let output = dial(quic, &["--ping", "2", "--echo", "over quic", "--identify"]);
    let events = events_of(&output);
    assert!(output.status.success(), "{events:?}");
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(
        kinds,
        ["connected", "ping", "ping", "echo", "identify"],
        "{events:?}"
    );
    assert!(
        events[0]["addr"]
            .as_str()
            .expect("addr")
            .ends_with("/quic-v1"),
        "{events:?}"
    );
    // The listener announces both addresses.
    let listen_addrs = events[4]["listen_addrs"].as_array().expect("list");
    assert_eq!(listen_addrs.len(), 2, "{listen_addrs:?}");
    // TCP still works beside it.
    let output = dial(&addrs[0], &["--ping", "1"]);
    assert!(output.status.success(), "{:?}", events_of(&output));
    // And perf over QUIC.
    let output = run(&[
        "perf",
        "--addr",
        quic,
        "--upload-bytes",
        "1000000",
        "--download-bytes",
        "2000000",
        "--timeout",
        COMMAND_TIMEOUT,
    ]);
    let events = events_of(&output);
    assert!(output.status.success(), "{events:?}");
    let perf = events.iter().find(|e| e["event"] == "perf").expect("perf");
    assert_eq!(perf["upload_bytes"], 1_000_000);
    assert_eq!(perf["download_bytes"], 2_000_000);
    let (status, rest) = listener.finish();
    assert!(status.success(), "listener exit {status:?}: {rest:?}");
}

#[test]
fn tls_over_tcp() {
    let (_listener, addr) = listen(&["--security", "tls", "--bare"]);
    let output = dial(
        &addr,
        &["--security", "tls", "--bare", "--ping", "1", "--echo", "x"],
    );
    let events = events_of(&output);
    assert!(output.status.success(), "{events:?}");
    assert_eq!(
        events.iter().filter(|e| e["event"] == "echo").count(),
        1,
        "{events:?}"
    );
    // A noise-only dialer is told there is no security protocol in common.
    let output = dial(&addr, &["--security", "noise", "--ping", "1"]);
    assert_fails_with(&output, "/noise");
}

#[test]
fn quic_draft_29_is_a_clear_error() {
    let peer = peer_id_of(7);
    let output = dial(
        &format!("/ip4/127.0.0.1/udp/9/quic/p2p/{peer}"),
        &["--ping", "1"],
    );
    assert_fails_with(&output, "draft-29");
}

/// Reads events until one with `"event":"kad"` and the given op arrives.
fn next_kad(node: &mut Running, op: &str) -> Value {
    loop {
        let event = node.next_event();
        if event["event"] == "kad" && event["op"] == op {
            return event;
        }
    }
}

/// Asks `node` (through stdin) to find `peer` until the answer is `addr`: proof that the
/// DHT between them has formed. Gives up after a minute.
fn wait_until_found(node: &mut Running, peer: &str, addr: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        writeln!(node.stdin.as_mut().unwrap(), "kad-find-peer {peer}").unwrap();
        let answer = next_kad(node, "find-peer");
        if answer["ok"] == true && answer["peers"][0] == addr {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the DHT never formed: {answer}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn kad_operations_on_dial_and_stdin() {
    let (_hub, hub_addr) = listen(&["--kad", "server"]);
    let (_a, a_addr) = listen(&["--kad", "server", "--connect", &hub_addr]);
    let (mut b, _) = listen(&["--kad", "server", "--connect", &hub_addr]);
    let a_peer = a_addr.rsplit('/').next().unwrap().to_owned();
    // `listen` returns once a node listens; its bootstrap dial to the hub and the hub's
    // identify of it (which puts it in the hub's routing table) finish later. Until b finds
    // a through the hub, the hub may not know a, and the operations below would race that.
    wait_until_found(&mut b, &a_peer, &a_addr);
    // A client dials the hub and runs every operation in order.
    let output = dial(
        &hub_addr,
        &[
            "--kad-put",
            "greeting=hello world",
            "--kad-get",
            "greeting",
            "--kad-provide",
            "the-file",
            "--kad-find-providers",
            "the-file",
            "--kad-find-peer",
            &a_peer,
        ],
    );
    assert!(
        output.status.success(),
        "events: {:?}\nstderr: {}",
        events_of(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    let events: Vec<Value> = events_of(&output)
        .into_iter()
        .filter(|e| e["event"] == "kad")
        .collect();
    let ops: Vec<&str> = events.iter().map(|e| e["op"].as_str().unwrap()).collect();
    assert_eq!(
        ops,
        ["put", "get", "provide", "find-providers", "find-peer"]
    );
    assert!(events.iter().all(|e| e["ok"] == true), "{events:?}");
    assert_eq!(events[1]["value"], "hello world");
    assert_eq!(events[4]["peers"][0], a_addr.as_str());
    // A listening node reads the same operations from stdin.
    let stdin = b.stdin.as_mut().unwrap();
    writeln!(stdin, "kad-get greeting").unwrap();
    writeln!(stdin, "kad-find-providers the-file").unwrap();
    writeln!(stdin, "kad-find-peer {a_peer}").unwrap();
    stdin.flush().unwrap();
    // They run side by side: their events come in any order.
    let mut answers = std::collections::HashMap::new();
    while answers.len() < 3 {
        let event = b.next_event();
        if event["event"] == "kad" {
            answers.insert(event["op"].as_str().unwrap().to_owned(), event);
        }
    }
    assert_eq!(answers["get"]["value"], "hello world", "{answers:?}");
    assert_eq!(answers["find-providers"]["ok"], true, "{answers:?}");
    assert_eq!(
        answers["find-peer"]["peers"][0],
        a_addr.as_str(),
        "{answers:?}"
    );
    // A missing record is an event with ok false on stdin, an error exit on dial.
    writeln!(b.stdin.as_mut().unwrap(), "kad-get nothing-here").unwrap();
    let missing = next_kad(&mut b, "get");
    assert_eq!(missing["ok"], false);
    assert_eq!(missing["error"], "no record under the key", "{missing}");
    // The query ran and asked the hub and a: a failed event still says how many it queried.
    assert!(missing["queried"].as_u64() >= Some(1), "{missing}");
    let output = dial(&hub_addr, &["--kad-get", "nothing-here"]);
    assert_fails_with(&output, "kad get");
}
