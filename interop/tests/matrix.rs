//! The multi-process interop matrix: `lp2p-node` against `rust-libp2p-node` (this package's
//! rust-libp2p 0.57 program with the same command-line contract), as separate processes on
//! 127.0.0.1, in both directions, across {TCP with noise, TLS or plaintext and yamux; QUIC}
//! x {ping, echo, identify, gossipsub both ways, perf 64 MiB both ways}. It prints a
//! pass/fail table and fails if any cell failed.
//!
//! The lp2p-node binary is taken from `$LP2P_NODE` when set (CI passes the one its test step
//! built); otherwise this test builds it with cargo from the parent workspace.
//!
//! Run it alone with `cargo test --test matrix -- --nocapture` to see the table.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// Each dial/perf run's own hard stop, generous for a slow, loaded machine.
const RUN_TIMEOUT: &str = "90";
/// How long the runner waits for a listener's line before giving up on it.
const LINE_WAIT: Duration = Duration::from_secs(90);
/// The perf transfer in each direction.
const PERF_BYTES: &str = "67108864";
const TOPIC: &str = "interop-matrix";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Implementation {
    Lp2p,
    Rust,
}

impl Implementation {
    fn name(self) -> &'static str {
        match self {
            Implementation::Lp2p => "lp2p",
            Implementation::Rust => "rust-libp2p",
        }
    }

    fn agent_prefix(self) -> &'static str {
        match self {
            Implementation::Lp2p => "lp2p/",
            Implementation::Rust => "rust-libp2p/",
        }
    }
}

struct Binaries {
    lp2p: PathBuf,
    rust: PathBuf,
}

impl Binaries {
    fn of(&self, which: Implementation) -> &Path {
        match which {
            Implementation::Lp2p => &self.lp2p,
            Implementation::Rust => &self.rust,
        }
    }
}

/// A running listener, killed when dropped.
struct Listener {
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::Receiver<Value>,
    addr: String,
}

/// The transports of the matrix's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Tcp,
    Quic,
}

impl Transport {
    fn listen_addr(self) -> &'static str {
        match self {
            Transport::Tcp => "/ip4/127.0.0.1/tcp/0",
            Transport::Quic => "/ip4/127.0.0.1/udp/0/quic-v1",
        }
    }

    /// The protocol before the port in a listen address.
    fn port_protocol(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Quic => "udp",
        }
    }
}

impl Listener {
    fn start(bin: &Path, transport: Transport, security: &str) -> Result<Listener, String> {
        let mut child = Command::new(bin)
            .args([
                "listen",
                "--addr",
                transport.listen_addr(),
                "--topic",
                TOPIC,
                "--security",
                security,
            ])
            .args(["--muxer", "yamux", "--timeout", "600"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(event) = serde_json::from_str::<Value>(&line)
                    && tx.send(event).is_err()
                {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut listener = Listener {
            child,
            stdin,
            events,
            addr: String::new(),
        };
        let listening = listener.wait_for(|e| e["event"] == "listening")?;
        listener.addr = listening["addrs"][0]
            .as_str()
            .ok_or("no address in the listening event")?
            .to_owned();
        Ok(listener)
    }

    fn wait_for(&mut self, mut matches: impl FnMut(&Value) -> bool) -> Result<Value, String> {
        loop {
            match self.events.recv_timeout(LINE_WAIT) {
                Ok(event) if event["event"] == "error" => {
                    return Err(format!("listener failed: {event}"));
                }
                Ok(event) if matches(&event) => return Ok(event),
                Ok(_) => {}
                Err(_) => {
                    return Err(format!(
                        "the listener printed nothing expected within {LINE_WAIT:?}"
                    ));
                }
            }
        }
    }

    fn send_line(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("writing to the listener: {e}"))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a dialing command to completion; its events, or an error with its last words.
fn run_client(bin: &Path, args: &[&str]) -> Result<Vec<Value>, String> {
    let output = Command::new(bin)
        .args(args)
        .args(["--timeout", RUN_TIMEOUT])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let events: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    if let Some(error) = events.iter().find(|e| e["event"] == "error") {
        return Err(error["what"].as_str().unwrap_or("error").to_owned());
    }
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "exit {:?}: {}",
            output.status.code(),
            stderr.lines().last().unwrap_or("")
        ));
    }
    Ok(events)
}

fn expect(condition: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(what()) }
}

fn cell_ping(dialer: &Path, listener: &Listener, security: &str) -> Result<(), String> {
    let events = run_client(
        dialer,
        &[
            "dial",
            "--addr",
            &listener.addr,
            "--security",
            security,
            "--ping",
            "3",
        ],
    )?;
    let pings = events
        .iter()
        .filter(|e| e["event"] == "ping" && e["rtt_ms"].as_f64().is_some())
        .count();
    expect(pings == 3, || format!("{pings} ping events instead of 3"))
}

fn cell_echo(dialer: &Path, listener: &Listener, security: &str) -> Result<(), String> {
    let text = "interop echo: héllo";
    let events = run_client(
        dialer,
        &[
            "dial",
            "--addr",
            &listener.addr,
            "--security",
            security,
            "--echo",
            text,
        ],
    )?;
    let ok = events
        .iter()
        .any(|e| e["event"] == "echo" && e["ok"] == true && e["bytes"] == text.len());
    expect(ok, || format!("no matching echo event in {events:?}"))
}

fn cell_identify(
    dialer: &Path,
    listener: &Listener,
    security: &str,
    transport: Transport,
    listener_impl: Implementation,
) -> Result<(), String> {
    let events = run_client(
        dialer,
        &[
            "dial",
            "--addr",
            &listener.addr,
            "--security",
            security,
            "--identify",
        ],
    )?;
    let info = events
        .iter()
        .find(|e| e["event"] == "identify")
        .ok_or("no identify event")?;
    let agent = info["agent_version"].as_str().unwrap_or("");
    expect(agent.starts_with(listener_impl.agent_prefix()), || {
        format!("agent version {agent:?}")
    })?;
    let protocols: Vec<&str> = info["protocols"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for expected in [
        "/ipfs/id/1.0.0",
        "/ipfs/ping/1.0.0",
        "/echo/1.0.0",
        "/perf/1.0.0",
    ] {
        expect(protocols.contains(&expected), || {
            format!("{expected} missing from {protocols:?}")
        })?;
    }
    let listen_port = listener.addr.split('/').nth(4).unwrap_or("");
    let addrs: Vec<&str> = info["listen_addrs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let wanted = format!("/{}/{listen_port}", transport.port_protocol());
    expect(addrs.iter().any(|a| a.contains(&wanted)), || {
        format!("listen addrs {addrs:?} miss {wanted}")
    })
}

/// The dialer publishes once the listener is in its mesh and waits for one message; the
/// runner sees the listener print the dialer's message and has the listener publish back.
fn cell_gossipsub(
    dialer: &Path,
    listener: &mut Listener,
    security: &str,
    row: usize,
) -> Result<(), String> {
    let outbound = format!("to the listener, row {row}");
    let inbound = format!("to the dialer, row {row}");
    let mut child = Command::new(dialer)
        .args([
            "dial",
            "--addr",
            &listener.addr,
            "--security",
            security,
            "--topic",
            TOPIC,
        ])
        .args([
            "--publish",
            &outbound,
            "--expect-messages",
            "1",
            "--timeout",
            RUN_TIMEOUT,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the dialer: {e}"))?;
    let received = listener.wait_for(|e| e["event"] == "message" && e["data"] == outbound.as_str());
    if let Err(e) = received {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!(
            "the listener never received the dialer's message: {e}"
        ));
    }
    listener.send_line(&format!("publish {TOPIC} {inbound}"))?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let events: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    expect(output.status.success(), || {
        format!("dialer failed: {events:?}")
    })?;
    let got = events
        .iter()
        .any(|e| e["event"] == "message" && e["data"] == inbound.as_str());
    expect(got, || {
        format!("the dialer never printed the listener's message: {events:?}")
    })
}

fn cell_perf(dialer: &Path, listener: &Listener, security: &str) -> Result<(), String> {
    let events = run_client(
        dialer,
        &[
            "perf",
            "--addr",
            &listener.addr,
            "--security",
            security,
            "--upload-bytes",
            PERF_BYTES,
            "--download-bytes",
            PERF_BYTES,
        ],
    )?;
    let perf = events
        .iter()
        .find(|e| e["event"] == "perf")
        .ok_or("no perf event")?;
    let bytes: u64 = PERF_BYTES.parse().unwrap_or(0);
    expect(
        perf["upload_bytes"] == bytes && perf["download_bytes"] == bytes,
        || format!("{perf}"),
    )
}

const CELLS: [&str; 5] = ["ping", "echo", "identify", "gossipsub", "perf 64 MiB"];

#[test]
fn interop_matrix() {
    let binaries = Binaries {
        lp2p: lp2p_interop::lp2p_node_binary(false),
        rust: PathBuf::from(env!("CARGO_BIN_EXE_rust-libp2p-node")),
    };
    let mut rows: Vec<(String, Vec<Result<(), String>>)> = Vec::new();
    let pairs = [
        (Implementation::Lp2p, Implementation::Rust),
        (Implementation::Rust, Implementation::Lp2p),
    ];
    // QUIC brings its own TLS 1.3 and streams: `--security` is passed but ignored.
    let stacks = [
        (Transport::Tcp, "noise", "TCP, noise, yamux"),
        (Transport::Tcp, "tls", "TCP, tls, yamux"),
        (Transport::Tcp, "plaintext", "TCP, plaintext, yamux"),
        (Transport::Quic, "noise", "QUIC"),
    ];
    for (transport, security, stack) in stacks {
        for (dialer_impl, listener_impl) in pairs {
            let label = format!(
                "{} dials {} ({stack})",
                dialer_impl.name(),
                listener_impl.name()
            );
            let dialer = binaries.of(dialer_impl);
            let results = match Listener::start(binaries.of(listener_impl), transport, security) {
                Err(e) => CELLS
                    .iter()
                    .map(|_| Err(format!("listener: {e}")))
                    .collect(),
                Ok(mut listener) => vec![
                    cell_ping(dialer, &listener, security),
                    cell_echo(dialer, &listener, security),
                    cell_identify(dialer, &listener, security, transport, listener_impl),
                    cell_gossipsub(dialer, &mut listener, security, rows.len()),
                    cell_perf(dialer, &listener, security),
                ],
            };
            rows.push((label, results));
        }
    }

    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    println!("\ninterop matrix: lp2p-node vs rust-libp2p-node (rust-libp2p 0.57), on 127.0.0.1");
    println!("{:width$} | {}", "", CELLS.join(" | "));
    let mut failures = Vec::new();
    for (label, results) in &rows {
        let marks: Vec<String> = results
            .iter()
            .zip(CELLS)
            .map(|(r, cell)| {
                format!(
                    "{:^w$}",
                    if r.is_ok() { "pass" } else { "FAIL" },
                    w = cell.len()
                )
            })
            .collect();
        println!("{label:width$} | {}", marks.join(" | "));
        for (result, cell) in results.iter().zip(CELLS) {
            if let Err(e) = result {
                failures.push(format!("{label}, {cell}: {e}"));
            }
        }
    }
    for failure in &failures {
        println!("  {failure}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} cells failed:\n{}",
        failures.len(),
        rows.len() * CELLS.len(),
        failures.join("\n")
    );
}
