//! `Netns::delayed_link`: frames take the configured time each way, and bulk TCP (64 KiB
//! offloaded segments) crosses intact. Needs root, `ip` and `python3`; skipped without them
//! unless `LP2P_REQUIRE_NETNS` is set (CI).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Stdio};
use std::time::Duration;

use lp2p_testkit::netns::{self, Netns};

/// Bytes sent across in the bulk test: enough for offloaded segments of 64 KiB.
const SENT: usize = 8 << 20;

/// Two namespaces (names starting with `prefix`: tests run at once) joined by a link with `one_way` each way, or None when this machine cannot
/// make namespaces (and the test is not required to).
fn pair(prefix: &str, one_way: Duration) -> Option<(Netns, String, String)> {
    if let Err(why) = netns::check() {
        assert!(
            std::env::var_os("LP2P_REQUIRE_NETNS").is_none(),
            "cannot make namespaces: {why}"
        );
        println!("skipped: {why}");
        return None;
    }
    let mut bed = Netns::new(prefix).unwrap();
    let (a, b) = (bed.add("a").unwrap(), bed.add("b").unwrap());
    bed.delayed_link(&a, "ea", "10.9.0.1/24", &b, "eb", "10.9.0.2/24", one_way)
        .unwrap();
    Some((bed, a, b))
}

/// Starts `script` (Python) in namespace `ns`; it prints `listening` once ready.
fn server(bed: &Netns, ns: &str, script: &str) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = bed
        .command(ns, "python3")
        .args(["-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "listening");
    (child, lines)
}

#[test]
fn a_round_trip_takes_twice_the_one_way_delay() {
    let Some((bed, a, b)) = pair("dr", Duration::from_millis(20)) else {
        return;
    };
    // A UDP echo in B; A times 5 round trips and prints the fastest and the slowest.
    let (mut echo, _) = server(
        &bed,
        &b,
        "import socket\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind(('10.9.0.2', 7001))\n\
         print('listening', flush=True)\n\
         while True:\n\
         \x20   d, peer = s.recvfrom(100)\n\
         \x20   s.sendto(d, peer)",
    );
    let timed = bed.exec(
        &a,
        "python3",
        &[
            "-c",
            "import socket, time\n\
             s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             s.settimeout(10)\n\
             rtts = []\n\
             for i in range(5):\n\
             \x20   t = time.monotonic()\n\
             \x20   s.sendto(b'x', ('10.9.0.2', 7001))\n\
             \x20   s.recvfrom(100)\n\
             \x20   rtts.append((time.monotonic() - t) * 1000)\n\
             print(min(rtts), max(rtts))",
        ],
    );
    let _ = echo.kill();
    let _ = echo.wait();
    let timed = timed.unwrap();
    let figures: Vec<f64> = timed
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    let (min, max) = (figures[0], figures[1]);
    assert!(
        min >= 40.0,
        "a round trip took {min:.2} ms, under 2 x 20 ms"
    );
    // Generous: a loaded machine delays the program, but not by seconds.
    assert!(max < 2_000.0, "a round trip took {max:.2} ms");
    println!("round trips over 20 ms each way: {min:.2} to {max:.2} ms");
}

#[test]
fn bulk_tcp_crosses_the_delayed_link_intact() {
    let Some((bed, a, b)) = pair("dt", Duration::from_millis(2)) else {
        return;
    };
    // B counts what arrives on one connection and prints the count; A sends `SENT` bytes.
    let (mut server, mut lines) = server(
        &bed,
        &b,
        "import socket\n\
         s = socket.create_server(('10.9.0.2', 7000))\n\
         print('listening', flush=True)\n\
         c, _ = s.accept()\n\
         n = 0\n\
         while True:\n\
         \x20   d = c.recv(1 << 20)\n\
         \x20   if not d: break\n\
         \x20   n += len(d)\n\
         print(n, flush=True)",
    );
    let send = format!(
        "import socket\n\
         c = socket.create_connection(('10.9.0.2', 7000), timeout=60)\n\
         c.sendall(bytes({SENT}))\n\
         c.close()"
    );
    let sent = bed.exec(&a, "python3", &["-c", &send]);
    let received = lines.next().map(Result::unwrap);
    let _ = server.kill();
    let _ = server.wait();
    sent.unwrap();
    assert_eq!(received, Some(SENT.to_string()));
}
