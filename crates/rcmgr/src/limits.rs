//! Memory limits per scope, and defaults scaled to the machine.

use std::path::Path;

const MIB: usize = 1024 * 1024;

/// Share of the machine's memory the system scope may hold by default: one eighth, as
/// go-libp2p's scaled default limits start from. What the muxers reserve is receive window
/// credit (an upper bound on what remotes can make us buffer), so this is a cap on the
/// worst case, not an expected usage; it leaves the rest of the machine to the application.
pub const DEFAULT_SYSTEM_MEMORY_FRACTION: usize = 8;

/// Smallest default system limit: 128 MiB, so a node on a tiny machine (or one whose memory
/// cannot be read) can still hold 512 streams at yamux's 256 KiB initial window.
pub const MIN_SYSTEM_MEMORY: usize = 128 * MIB;

/// Machine memory assumed when it cannot be read (not Linux, no `/proc`): 1 GiB, so the
/// default system limit is the minimum.
pub const FALLBACK_MACHINE_MEMORY: usize = 1024 * MIB;

/// Default limit of one peer (all its connections together): 128 MiB. That is yamux's
/// default of 512 streams per connection at the spec's 256 KiB initial window, or eight
/// streams grown to the 16 MiB maximum window, enough for a heavy honest peer; and it keeps
/// one peer to at most a small share of the system scope on any machine with 2 GiB or more.
pub const DEFAULT_PEER_MEMORY: usize = 128 * MIB;

/// Default limit of one connection: the same 128 MiB as a peer, since a peer usually has one
/// connection; lower it to spread a peer's share over several connections.
pub const DEFAULT_CONNECTION_MEMORY: usize = 128 * MIB;

/// Share of the system scope one service (pubsub, identify, Kademlia, ...) may hold for its
/// queues and message buffers by default: a quarter. What a service holds is messages
/// waiting for slow peers or being read; a quarter keeps any one service from taking the
/// budget the muxers need for the receive windows that carry all traffic, and still leaves a
/// pubsub node room for its 32 MiB per-peer queue cap on several slow peers at once (on a
/// 24 GiB machine a service may hold 768 MiB, on the smallest default 32 MiB).
pub const DEFAULT_SERVICE_MEMORY_SHARE: usize = 4;

/// Memory limits, in bytes, of the scopes a reservation passes through: the connection (or,
/// for a service's buffers, the service), its peer, and the system (or, for allowlisted peers
/// and addresses, the allowlisted system scope, which has no per-peer, per-connection or
/// per-service limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryLimits {
    /// The whole node (peers not on the allowlist).
    pub system: usize,
    /// Allowlisted peers and addresses together, apart from `system`, so an attack that
    /// fills the system scope does not lock them out.
    pub allowlisted_system: usize,
    /// One peer, all its connections together.
    pub peer: usize,
    /// One connection.
    pub connection: usize,
    /// One service (by name, e.g. `"pubsub"`), over all peers: its queues and message
    /// buffers.
    pub service: usize,
}

impl MemoryLimits {
    /// Limits for a machine with `machine_memory` bytes: the system scope gets
    /// 1/[`DEFAULT_SYSTEM_MEMORY_FRACTION`] of it (at least [`MIN_SYSTEM_MEMORY`]), the
    /// allowlisted system scope as much again, a peer and a connection their defaults (at most
    /// the system limit), a service 1/[`DEFAULT_SERVICE_MEMORY_SHARE`] of the system limit.
    pub fn scaled(machine_memory: usize) -> MemoryLimits {
        MemoryLimits::for_system(
            (machine_memory / DEFAULT_SYSTEM_MEMORY_FRACTION).max(MIN_SYSTEM_MEMORY),
        )
    }

    /// The other limits derived from a system limit: the allowlisted system scope as much,
    /// a peer and a connection their defaults (at most the system limit), a service
    /// 1/[`DEFAULT_SERVICE_MEMORY_SHARE`] of it (at least 1 byte).
    pub(crate) fn for_system(system: usize) -> MemoryLimits {
        MemoryLimits {
            system,
            allowlisted_system: system,
            peer: DEFAULT_PEER_MEMORY.min(system),
            connection: DEFAULT_CONNECTION_MEMORY.min(system),
            service: (system / DEFAULT_SERVICE_MEMORY_SHARE).max(1),
        }
    }

    /// Limits scaled to this machine's memory (see [`machine_memory`]).
    pub fn for_machine() -> MemoryLimits {
        MemoryLimits::scaled(machine_memory().unwrap_or(FALLBACK_MACHINE_MEMORY))
    }
}

impl Default for MemoryLimits {
    /// [`MemoryLimits::for_machine`].
    fn default() -> Self {
        MemoryLimits::for_machine()
    }
}

/// The memory this process may use, in bytes: the machine's (`MemTotal` in `/proc/meminfo`),
/// or the cgroup's limit when that is lower (a container). `None` where neither can be read.
pub fn machine_memory() -> Option<usize> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| parse_meminfo(&text));
    let cgroup = cgroup_limit(Path::new("/sys/fs/cgroup/memory.max"))
        .or_else(|| cgroup_limit(Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes")));
    match (total, cgroup) {
        (Some(total), Some(cgroup)) => Some(total.min(cgroup)),
        (total, cgroup) => total.or(cgroup),
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn parse_meminfo(text: &str) -> Option<usize> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut fields = line.split_whitespace().skip(1);
    let value: usize = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// A cgroup memory limit file: a number of bytes, or `max` (no limit).
fn cgroup_limit(path: &Path) -> Option<usize> {
    parse_cgroup_limit(&std::fs::read_to_string(path).ok()?)
}

fn parse_cgroup_limit(text: &str) -> Option<usize> {
    let value: u64 = text.trim().parse().ok()?;
    // cgroup v1 reports "no limit" as a huge page-aligned number (about 2^63); no machine
    // has 2^62 bytes.
    if value >= 1 << 62 {
        return None;
    }
    usize::try_from(value).ok()
}

/// File descriptors left for everything but connections when connection limits are fitted
/// to the descriptor limit (see [`connection_limits_for_fds`]): listeners, the runtime's
/// own, DNS and mDNS sockets, files the application opens. 128 covers a node with many
/// listeners and leaves room for the application.
pub const RESERVED_FDS: u64 = 128;

/// This process's soft limit on open file descriptors (`Max open files` in
/// `/proc/self/limits`); `None` where it cannot be read or is unlimited.
pub fn fd_limit() -> Option<u64> {
    parse_fd_limit(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

fn parse_fd_limit(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Inbound and outbound connection limits that fit in `fds` descriptors (one per TCP
/// connection, pending handshakes included), keeping [`RESERVED_FDS`] for the rest: the
/// given limits when they fit, otherwise both shrunk in proportion (at least 1 each).
/// Without this, a machine with the common soft limit of 1,024 fails accepts and dials with
/// "too many open files" long before the default 1,024 + 1,024 connections.
pub fn connection_limits_for_fds(fds: u64, inbound: usize, outbound: usize) -> (usize, usize) {
    let usable = usize::try_from(fds.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    let wanted = inbound.saturating_add(outbound);
    if wanted == 0 || usable >= wanted {
        return (inbound, outbound);
    }
    let share = |n: usize| {
        let scaled = u128::from(n as u64) * u128::from(usable as u64) / u128::from(wanted as u64);
        usize::try_from(scaled).unwrap_or(n).max(1)
    };
    (share(inbound), share(outbound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_scale_with_the_machine_and_never_drop_below_the_minimum() {
        let big = MemoryLimits::scaled(24 * 1024 * MIB);
        assert_eq!(big.system, 3 * 1024 * MIB);
        assert_eq!(big.allowlisted_system, big.system);
        assert_eq!(big.peer, DEFAULT_PEER_MEMORY);
        assert_eq!(big.connection, DEFAULT_CONNECTION_MEMORY);
        assert_eq!(big.service, 768 * MIB);

        let tiny = MemoryLimits::scaled(256 * MIB);
        assert_eq!(tiny.system, MIN_SYSTEM_MEMORY);
        assert!(tiny.peer <= tiny.system);
        assert!(tiny.connection <= tiny.system);
        assert_eq!(tiny.service, 32 * MIB);
    }

    #[test]
    fn meminfo_and_cgroup_files_parse_and_bad_ones_do_not() {
        let text = "MemTotal:       24522588 kB\nMemFree:         1000 kB\n";
        assert_eq!(parse_meminfo(text), Some(24_522_588 * 1024));
        assert_eq!(parse_meminfo("MemFree: 3 kB\n"), None);
        assert_eq!(parse_meminfo("MemTotal: lots kB\n"), None);
        assert_eq!(parse_meminfo("MemTotal: 3 MB\n"), None);
        assert_eq!(
            parse_meminfo("MemTotal: 99999999999999999999999 kB\n"),
            None
        );

        assert_eq!(parse_cgroup_limit("1073741824\n"), Some(1024 * MIB));
        assert_eq!(parse_cgroup_limit("max\n"), None);
        assert_eq!(parse_cgroup_limit("9223372036854771712\n"), None);
        assert_eq!(parse_cgroup_limit(""), None);
    }

    #[test]
    fn connection_limits_shrink_in_proportion_to_fit_the_descriptors() {
        assert_eq!(connection_limits_for_fds(20_000, 1024, 1024), (1024, 1024));
        assert_eq!(connection_limits_for_fds(1024, 1024, 1024), (448, 448));
        assert_eq!(connection_limits_for_fds(1024 + 128, 1024, 0), (1024, 0));
        assert_eq!(connection_limits_for_fds(64, 1024, 1024), (1, 1));
        assert_eq!(
            connection_limits_for_fds(u64::MAX, 1024, 1024),
            (1024, 1024)
        );
    }

    #[test]
    fn the_fd_limit_line_parses_and_unlimited_is_none() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max open files            1024                 524288               files\n";
        assert_eq!(parse_fd_limit(text), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_fd_limit(unlimited), None);
        assert_eq!(parse_fd_limit("Max processes 10 10 processes\n"), None);
        if cfg!(target_os = "linux") {
            assert!(fd_limit().is_some());
        }
    }

    #[test]
    fn this_machine_has_readable_memory_on_linux() {
        if cfg!(target_os = "linux") {
            let memory = machine_memory().expect("/proc/meminfo is readable on Linux");
            assert!(memory >= 64 * MIB, "{memory} bytes");
        }
        assert!(MemoryLimits::for_machine().system >= MIN_SYSTEM_MEMORY);
    }
}
