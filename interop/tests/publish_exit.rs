//! No message lost when a node publishes and exits at once: `lp2p-node dial --topic T
//! --publish TEXT` against a `rust-libp2p-node listen --topic T` (rust-libp2p 0.57 gossipsub),
//! as separate processes over TCP on 127.0.0.1, 100 times (a few dialers at a time). Each
//! dialer connects, waits for the listener in its mesh, publishes, and exits as soon as
//! `dial` is done; the listener must print every one of the 100 messages.
//!
//! Before `Host::close` flushed what services queued, most runs lost the message: the host
//! closed the connection before the pubsub stream was written.
//!
//! The lp2p-node binary is taken from `$LP2P_NODE` when set (CI passes the one its test step
//! built); otherwise this test builds it with cargo from the parent workspace.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Publish-and-exit runs.
const RUNS: usize = 100;
/// Dialer processes running at once.
const AT_ONCE: usize = 4;
/// Each dial's own hard stop (`--timeout`), generous for a slow, loaded machine.
const DIAL_TIMEOUT: &str = "90";
/// How long to wait for the listener's lines before giving up.
const LINE_WAIT: Duration = Duration::from_secs(120);
const TOPIC: &str = "publish-and-exit";

/// The listener process, killed when dropped.
struct Listener {
    child: Child,
    events: mpsc::Receiver<Value>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_listener(bin: &Path) -> (Listener, String) {
    let mut child = Command::new(bin)
        .args(["listen", "--addr", "/ip4/127.0.0.1/tcp/0", "--topic", TOPIC])
        .args(["--timeout", "900"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rust-libp2p-node");
    let stdout = child.stdout.take().expect("piped stdout");
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
    let listener = Listener { child, events };
    let listening = listener
        .events
        .recv_timeout(LINE_WAIT)
        .expect("the listener reports its address");
    assert_eq!(listening["event"], "listening", "{listening}");
    let addr = listening["addrs"][0]
        .as_str()
        .expect("an address in the listening event")
        .to_owned();
    (listener, addr)
}

fn text_of(run: usize) -> String {
    format!("last words {run}")
}

/// Starts one `lp2p-node dial ... --publish` run.
fn dial(lp2p: &Path, addr: &str, run: usize) -> Child {
    Command::new(lp2p)
        .args(["dial", "--addr", addr, "--topic", TOPIC])
        .args(["--publish", &text_of(run), "--timeout", DIAL_TIMEOUT])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lp2p-node")
}

#[test]
fn every_message_published_right_before_exit_arrives() {
    lp2p_interop::init_tracing();
    let lp2p: PathBuf = lp2p_interop::lp2p_node_binary(false);
    let rust = PathBuf::from(env!("CARGO_BIN_EXE_rust-libp2p-node"));
    let (listener, addr) = start_listener(&rust);

    let started = Instant::now();
    let mut failures = Vec::new();
    let runs: Vec<usize> = (0..RUNS).collect();
    for wave in runs.chunks(AT_ONCE) {
        let children: Vec<(usize, Child)> =
            wave.iter().map(|&run| (run, dial(&lp2p, &addr, run))).collect();
        for (run, child) in children {
            let output = child.wait_with_output().expect("wait for lp2p-node");
            if !output.status.success() {
                failures.push(format!(
                    "run {run}: lp2p-node exited with {}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
        }
    }
    let dialing = started.elapsed();
    assert!(failures.is_empty(), "dial runs failed:\n{}", failures.join("\n"));

    // Every process has exited; every message must now arrive at the listener.
    let mut missing: BTreeSet<String> = (0..RUNS).map(text_of).collect();
    let deadline = Instant::now() + LINE_WAIT;
    while !missing.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        match listener.events.recv_timeout(left) {
            Ok(event) if event["event"] == "message" && event["topic"] == TOPIC => {
                if let Some(data) = event["data"].as_str() {
                    missing.remove(data);
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {RUNS} messages never reached rust-libp2p: {missing:?}",
        missing.len()
    );
    println!(
        "publish-and-exit: {RUNS} of {RUNS} messages arrived ({AT_ONCE} dialers at a time, {:.1} s)",
        dialing.as_secs_f64()
    );
}
