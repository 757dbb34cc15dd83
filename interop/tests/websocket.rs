//! WebSocket interop, process against process: `lp2p-node` and `rust-libp2p-node` (rust-libp2p
//! 0.57, `libp2p-websocket` 0.46) over `/ws` and `/tls/ws` on 127.0.0.1, both directions,
//! noise + yamux on top; each cell runs ping, echo and a perf exchange (8 MiB each way).
//! Prints a pass/fail table and fails if any cell failed.
//!
//! `/tls/ws` uses one self-signed certificate (for 127.0.0.1) made by the test: both
//! listeners present it (`--cert`/`--cert-key`); the rust-libp2p dialer trusts it
//! (`--ws-trust`), the lp2p dialer takes `--insecure-ws-cert`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// Each dial/perf run's own hard stop, generous for a slow, loaded machine.
const RUN_TIMEOUT: &str = "90";
/// How long the runner waits for a listener's line.
const LINE_WAIT: Duration = Duration::from_secs(90);
/// The perf transfer in each direction.
const PERF_BYTES: &str = "8388608";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    Lp2p,
    Rust,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Lp2p => "lp2p",
            Impl::Rust => "rust-libp2p",
        }
    }
}

struct Setup {
    lp2p: PathBuf,
    rust: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    _dir: TempDir,
}

impl Setup {
    fn bin(&self, which: Impl) -> &Path {
        match which {
            Impl::Lp2p => &self.lp2p,
            Impl::Rust => &self.rust,
        }
    }

    /// Options a listener of `which` needs for `/tls/ws`.
    fn listen_tls(&self) -> Vec<String> {
        vec![
            "--cert".into(),
            self.cert.display().to_string(),
            "--cert-key".into(),
            self.key.display().to_string(),
        ]
    }

    /// Options a dialer of `which` needs to accept the listener's certificate.
    fn dial_tls(&self, which: Impl) -> Vec<String> {
        match which {
            Impl::Lp2p => vec!["--insecure-ws-cert".into()],
            Impl::Rust => vec!["--ws-trust".into(), self.cert.display().to_string()],
        }
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<String> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn setup() -> Setup {
    let dir = std::env::temp_dir().join(format!("lp2p-ws-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert, key) =
        lp2p_websocket::self_signed(&["127.0.0.1", "localhost"]).expect("certificate");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, pem("CERTIFICATE", cert.as_ref())).expect("write cert");
    std::fs::write(&key_path, pem("PRIVATE KEY", key.secret_der())).expect("write key");
    Setup {
        lp2p: lp2p_interop::lp2p_node_binary(false),
        rust: PathBuf::from(env!("CARGO_BIN_EXE_rust-libp2p-node")),
        cert: cert_path,
        key: key_path,
        _dir: TempDir(dir),
    }
}

/// A running listener, killed when dropped.
struct Listener {
    child: Child,
    addr: String,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_listener(bin: &Path, listen: &str, extra: &[String]) -> Result<Listener, String> {
    let mut child = Command::new(bin)
        .args(["listen", "--addr", listen, "--timeout", "600"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
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
    let mut listener = Listener {
        child,
        addr: String::new(),
    };
    loop {
        match rx.recv_timeout(LINE_WAIT) {
            Ok(e) if e["event"] == "listening" => {
                listener.addr = e["addrs"][0].as_str().ok_or("no address")?.to_owned();
                return Ok(listener);
            }
            Ok(e) if e["event"] == "error" => return Err(format!("listener failed: {e}")),
            Ok(_) => {}
            Err(_) => return Err("the listener did not report its address".into()),
        }
    }
}

fn run_client(bin: &Path, args: &[String]) -> Result<Vec<Value>, String> {
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

fn cell(setup: &Setup, listener_impl: Impl, dialer: Impl, tls: bool) -> Result<(), String> {
    let (listen, extra) = if tls {
        ("/ip4/127.0.0.1/tcp/0/tls/ws", setup.listen_tls())
    } else {
        ("/ip4/127.0.0.1/tcp/0/ws", Vec::new())
    };
    let listener = start_listener(setup.bin(listener_impl), listen, &extra)?;
    let suffix = if tls { "/tls/ws/p2p/" } else { "/ws/p2p/" };
    if !listener.addr.contains(suffix) {
        return Err(format!(
            "listening address {} lacks {suffix}",
            listener.addr
        ));
    }
    let mut dial_extra = if tls {
        setup.dial_tls(dialer)
    } else {
        Vec::new()
    };
    let mut args: Vec<String> = [
        "dial",
        "--addr",
        &listener.addr,
        "--ping",
        "3",
        "--echo",
        "hello over websocket",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.append(&mut dial_extra.clone());
    let events = run_client(setup.bin(dialer), &args)?;
    let pings = events.iter().filter(|e| e["event"] == "ping").count();
    if pings != 3 {
        return Err(format!("{pings} ping events instead of 3"));
    }
    if !events
        .iter()
        .any(|e| e["event"] == "echo" && e["ok"] == true)
    {
        return Err("no successful echo".into());
    }
    let mut perf: Vec<String> = [
        "perf",
        "--addr",
        &listener.addr,
        "--upload-bytes",
        PERF_BYTES,
        "--download-bytes",
        PERF_BYTES,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    perf.append(&mut dial_extra);
    let events = run_client(setup.bin(dialer), &perf)?;
    let done = events
        .iter()
        .find(|e| e["event"] == "perf")
        .ok_or("no perf event")?;
    if done["download_bytes"].as_u64() != PERF_BYTES.parse().ok() {
        return Err(format!("perf downloaded {}", done["download_bytes"]));
    }
    Ok(())
}

#[test]
fn websocket_matrix() {
    lp2p_interop::init_tracing();
    let setup = setup();
    let mut failures = Vec::new();
    println!(
        "\n{:<14} {:<14} {:<8} result",
        "listener", "dialer", "transport"
    );
    for tls in [false, true] {
        for (listener, dialer) in [(Impl::Lp2p, Impl::Rust), (Impl::Rust, Impl::Lp2p)] {
            let transport = if tls { "/tls/ws" } else { "/ws" };
            let result = cell(&setup, listener, dialer, tls);
            let shown = match &result {
                Ok(()) => "pass".to_owned(),
                Err(e) => format!("FAIL: {e}"),
            };
            println!(
                "{:<14} {:<14} {:<8} {shown}",
                listener.name(),
                dialer.name(),
                transport
            );
            if let Err(e) = result {
                failures.push(format!(
                    "{} <- {} over {transport}: {e}",
                    listener.name(),
                    dialer.name()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "failed cells:\n{}",
        failures.join("\n")
    );
}
