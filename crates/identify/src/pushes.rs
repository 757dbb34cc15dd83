//! Which push requests have been served, so closing the host can wait for the last push.

use std::sync::{Mutex, MutexGuard, PoisonError};

use futures::channel::oneshot;

/// Counts push requests and the pushes that covered them. A push covers every request made
/// before it read our information; the close hook waits until the last request is covered
/// and tells the pusher to skip its debounce.
#[derive(Default)]
pub(crate) struct PushTracker {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    requested: u64,
    covered: u64,
    /// Set once the host closes: push at once, without the debounce.
    hurry: bool,
    /// Wakes a pusher sleeping through its debounce.
    wake: Option<oneshot::Sender<()>>,
    waiters: Vec<(u64, oneshot::Sender<()>)>,
}

impl PushTracker {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A change needs pushing.
    pub(crate) fn request(&self) {
        let mut state = self.lock();
        state.requested = state.requested.saturating_add(1);
    }

    /// The pusher is about to debounce: `None` when it should push at once, otherwise a
    /// receiver that fires if the host starts closing meanwhile.
    pub(crate) fn debounce(&self) -> Option<oneshot::Receiver<()>> {
        let mut state = self.lock();
        if state.hurry {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        state.wake = Some(tx);
        Some(rx)
    }

    /// The pusher is about to read our information: what it pushes covers every request so
    /// far. Returns the mark to pass to [`covered`](PushTracker::covered).
    pub(crate) fn starting(&self) -> u64 {
        self.lock().requested
    }

    /// A push that started at `mark` finished (sent or failed: either way, nothing is left
    /// to do for those requests).
    pub(crate) fn covered(&self, mark: u64) {
        let mut state = self.lock();
        state.covered = state.covered.max(mark);
        let covered = state.covered;
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.waiters)
            .into_iter()
            .partition(|(target, _)| *target <= covered);
        state.waiters = waiting;
        drop(state);
        for (_, waiter) in done {
            let _ = waiter.send(());
        }
    }

    /// The close hook: from now on push without debouncing; resolves once every request
    /// made so far is covered (at once when none is outstanding). The receiver fails if the
    /// pusher is gone.
    pub(crate) fn flush(&self) -> Option<oneshot::Receiver<()>> {
        let mut state = self.lock();
        state.hurry = true;
        if let Some(wake) = state.wake.take() {
            let _ = wake.send(());
        }
        if state.covered >= state.requested {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        let target = state.requested;
        state.waiters.push((target, tx));
        Some(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_waits_for_the_push_covering_the_last_request() {
        let tracker = PushTracker::default();
        assert!(
            tracker.flush().is_none(),
            "nothing requested: nothing to wait for"
        );

        let tracker = PushTracker::default();
        tracker.request();
        let mut sleeping = tracker.debounce().unwrap();
        let mut waiting = tracker.flush().unwrap();
        // The flush woke the debouncing pusher, and later debounces are skipped.
        assert_eq!(sleeping.try_recv(), Ok(Some(())));
        assert!(tracker.debounce().is_none());
        let mark = tracker.starting();
        tracker.request(); // a change after the push read our information
        tracker.covered(mark);
        assert_eq!(waiting.try_recv(), Ok(Some(())));
        // The later request is still outstanding.
        let mut again = tracker.flush().unwrap();
        assert_eq!(again.try_recv(), Ok(None));
        tracker.covered(tracker.starting());
        assert_eq!(again.try_recv(), Ok(Some(())));
    }
}
