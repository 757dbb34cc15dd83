//! The connection receive window and the memory reserved for it.
//!
//! A QUIC remote may send as much as the connection's receive window before we read a byte,
//! so that window is memory the host commits to the connection. The handshake advertises
//! only [`HANDSHAKE_RECEIVE_WINDOW`] (the remote is not known yet, so nothing can be reserved
//! for it); once the remote is authenticated, [`reserve`] takes the configured window from
//! the host's memory budget, or as much of it as the budget grants, and the connection's
//! window is raised to that.

use lp2p_core::memory::{MemoryAccount, MemoryDenied};

/// The connection receive window advertised in the handshake, before the remote is known and
/// memory is reserved for it. What a remote may send before the reservation, so it stays
/// small; large enough for a first round trip at 80 Mbit/s over 100 ms, after which the
/// reserved window applies (it is announced with a `MAX_DATA` frame right after the
/// handshake). Also the least a connection is given: a budget that cannot grant even
/// this much refuses the connection.
pub const HANDSHAKE_RECEIVE_WINDOW: u32 = 1024 * 1024;

/// Reserves a connection receive window from `account`: `wanted` bytes if it grants them,
/// else the largest of `wanted / 2`, `wanted / 4`, ... it grants, never less than `floor`
/// (nor more than `wanted`). When even the floor is refused, the denial of that request.
pub(crate) fn reserve(
    account: &mut dyn MemoryAccount,
    wanted: u32,
    floor: u32,
) -> Result<u32, MemoryDenied> {
    let floor = floor.min(wanted);
    let mut size = wanted;
    loop {
        match account.try_grow(size as usize) {
            Ok(()) => return Ok(size),
            Err(denied) if size <= floor => return Err(denied),
            Err(_) => size = (size / 2).max(floor),
        }
    }
}

#[cfg(test)]
mod tests {
    use lp2p_core::memory::SharedLimit;

    use super::*;

    const MIB: u32 = 1024 * 1024;

    fn reserve_from(limit: usize, wanted: u32, floor: u32) -> (Result<u32, MemoryDenied>, usize) {
        let limit = SharedLimit::new(limit);
        let mut account = limit.account();
        let outcome = reserve(&mut account, wanted, floor);
        let used = limit.used();
        assert_eq!(
            account.reserved(),
            used,
            "the account holds what the limit counts"
        );
        (outcome, used)
    }

    #[test]
    fn the_whole_window_when_the_budget_has_room() {
        assert_eq!(
            reserve_from(64 * MIB as usize, 16 * MIB, MIB),
            (Ok(16 * MIB), 16 * MIB as usize)
        );
    }

    #[test]
    fn halves_until_the_budget_grants() {
        // 3 MiB of room: 16, 8 and 4 MiB are refused, 2 MiB is granted.
        assert_eq!(
            reserve_from(3 * MIB as usize, 16 * MIB, MIB),
            (Ok(2 * MIB), 2 * MIB as usize)
        );
        // An odd size halves down to the floor, not past it.
        assert_eq!(
            reserve_from(MIB as usize + 10, 3 * MIB + 1, MIB),
            (Ok(MIB), MIB as usize)
        );
    }

    #[test]
    fn below_the_floor_is_a_denial_that_says_why() {
        let (outcome, used) = reserve_from(512 * 1024, 16 * MIB, MIB);
        let denied = outcome.unwrap_err();
        assert_eq!(used, 0, "nothing is held after a refusal");
        assert_eq!(denied.requested, MIB as usize);
        assert_eq!(denied.limit, 512 * 1024);
    }

    #[test]
    fn a_window_below_the_floor_is_asked_for_as_it_is() {
        assert_eq!(
            reserve_from(MIB as usize, 256 * 1024, MIB),
            (Ok(256 * 1024), 256 * 1024)
        );
    }
}
