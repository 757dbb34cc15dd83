//! The timer queue of the virtual clock: plain data, no locking, no waking (the executor
//! wakes what [`Timers::take_due`] hands back once it has released its lock).

use std::collections::BTreeMap;
use std::task::Waker;
use std::time::Instant;

/// A registered timer: its deadline and a sequence number that orders timers with equal
/// deadlines by registration (so they fire in a deterministic order).
pub(crate) type TimerKey = (Instant, u64);

/// Timers ordered by deadline, then by registration.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    entries: BTreeMap<TimerKey, Waker>,
    next: u64,
}

impl Timers {
    /// Registers a timer for `deadline`, woken through `waker`.
    pub(crate) fn insert(&mut self, deadline: Instant, waker: Waker) -> TimerKey {
        let key = (deadline, self.next);
        self.next = self.next.wrapping_add(1);
        self.entries.insert(key, waker);
        key
    }

    /// Replaces the waker of a registered timer (a future polled from another task).
    pub(crate) fn update(&mut self, key: TimerKey, waker: &Waker) {
        if let Some(old) = self.entries.get_mut(&key)
            && !old.will_wake(waker)
        {
            old.clone_from(waker);
        }
    }

    /// Forgets a timer (its future completed or was dropped).
    pub(crate) fn remove(&mut self, key: TimerKey) {
        self.entries.remove(&key);
    }

    /// The earliest deadline, if any timer is registered.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.entries.keys().next().map(|(deadline, _)| *deadline)
    }

    /// Removes every timer due at `now` and returns their wakers, earliest first.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<Waker> {
        let mut due = Vec::new();
        while let Some(entry) = self.entries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        due
    }

    /// How many timers are registered.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Removes every timer (the simulation is shutting down).
    pub(crate) fn clear(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.entries).into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn due_timers_come_out_in_deadline_then_registration_order() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let late = timers.insert(t0 + Duration::from_secs(2), Waker::noop().clone());
        let a = timers.insert(t0 + Duration::from_secs(1), Waker::noop().clone());
        let _b = timers.insert(t0 + Duration::from_secs(1), Waker::noop().clone());
        assert!(a < late);
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert!(timers.take_due(t0).is_empty());
        assert_eq!(timers.take_due(t0 + Duration::from_secs(1)).len(), 2);
        assert_eq!(timers.len(), 1);
        timers.remove(late);
        assert_eq!(timers.next_deadline(), None);
    }
}
