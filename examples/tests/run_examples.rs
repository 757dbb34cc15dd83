//! Runs every example as a user would, to completion: echo, ping and perf in their
//! one-process mode (no argument), chat as two processes typing to each other. Each must
//! exit 0 and print what its documentation promises.
//!
//! `cargo test` builds the examples before it runs tests (that is what this relies on:
//! `cargo test -p lp2p-examples`, or the workspace's `cargo test`); the binaries are found
//! next to this test's own executable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long one example may run: generous, CI machines are slow and loaded.
const LIMIT: Duration = Duration::from_secs(180);

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/run_examples-HASH -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run `cargo test -p lp2p-examples` (cargo builds the examples first)",
        path.display()
    );
    path
}

/// Waits for `child` to exit within [`LIMIT`] (killing it otherwise) and returns its output.
fn finish(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + LIMIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn run_alone(name: &str) -> String {
    let child = Command::new(example(name))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = finish(child, name);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} exited with {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn echo_echoes_three_lines() {
    let out = run_alone("echo");
    for line in ["hello", "libp2p", "bye"] {
        assert!(out.contains(&format!("echoed: {line}")), "{out}");
    }
}

#[test]
fn ping_pings_five_times() {
    let out = run_alone("ping");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ping ")).count(),
        5,
        "{out}"
    );
}

#[test]
fn perf_moves_16_mib_each_way() {
    let out = run_alone("perf");
    assert!(
        out.contains("upload 16 MiB") && out.contains("download 16 MiB"),
        "{out}"
    );
}

/// Lines a process prints, read on a thread.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    what: &str,
    test: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if test(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line showing {what} within {LIMIT:?}: {e}"),
        }
    }
}

/// Two chat processes: the second joins through the first's address; a line typed into the
/// second is printed by the first; both leave on end of input and exit 0.
#[test]
fn chat_between_two_processes() {
    let spawn = |args: &[&str]| {
        Command::new(example("chat"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = spawn(&[]);
    let first_lines = lines_of(&mut first);
    let listening = wait_for_line(&first_lines, "the first peer's address", |l| {
        l.starts_with("# listening on ")
    });
    let addr = listening.trim_start_matches("# listening on ").to_owned();

    let mut second = spawn(&[&addr]);
    let second_lines = lines_of(&mut second);
    wait_for_line(&second_lines, "the second peer connected", |l| {
        l.starts_with("# connected to ")
    });
    // Until the two have exchanged subscriptions a line may find nobody to go to ("# not
    // sent"): type it again until the first peer prints it.
    let mut typing = second.stdin.take().unwrap();
    let deadline = Instant::now() + LIMIT;
    let heard = loop {
        assert!(
            Instant::now() < deadline,
            "the first peer never printed the line"
        );
        writeln!(typing, "hello from the second peer").unwrap();
        typing.flush().unwrap();
        match first_lines.recv_timeout(Duration::from_millis(500)) {
            Ok(line) if line.ends_with("> hello from the second peer") => break line,
            _ => {}
        }
    };
    assert!(heard.starts_with('<'), "{heard}");

    drop(typing);
    let second_out = finish(second, "the second chat");
    assert!(second_out.status.success(), "{:?}", second_out.status);
    drop(first.stdin.take());
    let first_out = finish(first, "the first chat");
    assert!(first_out.status.success(), "{:?}", first_out.status);
}
