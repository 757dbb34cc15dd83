//! Shared helpers for the interop tests.
//!
//! lp2p and rust-libp2p share `libp2p-identity` 0.3 and `multiaddr` 0.19, so keys, peer ids
//! and addresses pass between them unchanged. rust-libp2p's protocol crates
//! (`multistream-select`, `libp2p-plaintext`, `libp2p-noise`, `yamux`, `libp2p-mplex`) are
//! written against `futures::io`, like lp2p, so the in-process tests run both sides over one
//! [`pipe`] on any executor. Whole rust-libp2p swarms need tokio; those tests start one with
//! [`tokio_runtime`] on its own threads.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use lp2p_memory::MemoryConnection;

pub mod hostile;
pub mod peers;
pub mod secure;
pub mod stream_peer;

/// How long any single interop exchange may take before a test fails instead of hanging.
/// Generous: CI machines are slow and loaded; a healthy exchange takes milliseconds.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Two connected in-memory ends (`/memory/1` and `/memory/2`), each direction buffering
/// 256 KiB.
pub fn pipe() -> (MemoryConnection, MemoryConnection) {
    MemoryConnection::pair(
        lp2p_memory::DEFAULT_PIPE_CAPACITY,
        "/memory/1".parse().expect("valid multiaddr"),
        "/memory/2".parse().expect("valid multiaddr"),
    )
}

/// The identity every node program here (lp2p-node, rust-libp2p-node, js-libp2p-node) derives
/// from `--key-seed SEED`: the seed as 8 little-endian bytes, then 24 zero bytes, as the
/// Ed25519 secret key.
pub fn seed_keypair(seed: u64) -> libp2p::identity::Keypair {
    let mut secret = [0u8; 32];
    secret[..8].copy_from_slice(&seed.to_le_bytes());
    libp2p::identity::Keypair::ed25519_from_bytes(secret).expect("32 bytes are an ed25519 key")
}

/// The peer id of [`seed_keypair`]`(seed)`, as text.
pub fn peer_of_seed(seed: u64) -> String {
    seed_keypair(seed).public().to_peer_id().to_string()
}

/// A multi-threaded tokio runtime for rust-libp2p swarms.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Logs to stderr when `RUST_LOG` is set (e.g. `RUST_LOG=debug cargo test`); quiet
/// otherwise. Safe to call from every test.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Runs `future` on async-std with [`EXCHANGE_TIMEOUT`], panicking with `what` on timeout.
pub fn run<F: std::future::Future>(what: &str, future: F) -> F::Output {
    async_std::task::block_on(async {
        match async_std::future::timeout(EXCHANGE_TIMEOUT, future).await {
            Ok(out) => out,
            Err(_) => panic!("{what}: timed out after {EXCHANGE_TIMEOUT:?}"),
        }
    })
}

/// The `lp2p-node` binary: `$LP2P_NODE` when set (CI passes the one its test step built),
/// otherwise the one cargo builds from the parent workspace (`--release` when `release`).
pub fn lp2p_node_binary(release: bool) -> PathBuf {
    if let Some(path) = std::env::var_os("LP2P_NODE") {
        return PathBuf::from(path);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.args([
        "build",
        "-p",
        "lp2p-node",
        "--message-format=json-render-diagnostics",
    ]);
    if release {
        command.arg("--release");
    }
    let output = command
        .current_dir(&root)
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build -p lp2p-node");
    assert!(output.status.success(), "building lp2p-node failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "lp2p-node")
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported the lp2p-node executable")
}

/// Waits on `rt` (at most [`EXCHANGE_TIMEOUT`]) for the first item of `reports` that `pick`
/// maps to `Some`, skipping the others: how the tests read what a rust-libp2p swarm task
/// reports. Panics if the task ends or the time runs out.
pub fn recv_matching<R, T>(
    rt: &tokio::runtime::Runtime,
    reports: &mut tokio::sync::mpsc::UnboundedReceiver<R>,
    mut pick: impl FnMut(R) -> Option<T>,
) -> T {
    rt.block_on(async {
        tokio::time::timeout(EXCHANGE_TIMEOUT, async {
            loop {
                let report = reports.recv().await.expect("swarm task alive");
                if let Some(found) = pick(report) {
                    return found;
                }
            }
        })
        .await
        .expect("swarm report in time")
    })
}
