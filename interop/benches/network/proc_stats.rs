//! What the benches read about a node process from `/proc` (Linux): its CPU time and its
//! memory. Shared by `whole_stack` and `gossip`.

use std::process::Command;
use std::sync::OnceLock;

/// CPU time (`utime + stime`) a process has used so far, in seconds; 0 if unreadable. A
/// child that has exited but is not reaped yet still reports its times.
pub fn cpu_seconds(pid: u32) -> f64 {
    static TICKS_PER_SECOND: OnceLock<f64> = OnceLock::new();
    let ticks = *TICKS_PER_SECOND.get_or_init(|| {
        let out = Command::new("getconf").arg("CLK_TCK").output();
        out.ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    });
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name (which may hold spaces and parentheses) come the fields from
    // the state (3rd) on; utime and stime are the 14th and 15th.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let used: f64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<f64>().ok())
        .sum();
    used / ticks
}

/// A `/proc/PID/status` memory field (`VmRSS`, `VmHWM`), in KiB; NaN if unreadable.
pub fn status_kib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}
