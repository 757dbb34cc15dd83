//! X25519 key shares made ahead of the handshakes that use them.
//!
//! A TLS 1.3 handshake starts with an ephemeral key pair on each side: the client makes one
//! for its ClientHello, the server one for its answer. Making it (a base point
//! multiplication) sits on the connection's critical path on both sides. [`X25519_AHEAD`]
//! takes a key pair that a background thread made earlier, so the handshake only does the
//! Diffie-Hellman. Each key pair is still used once and dropped after its handshake, so
//! forward secrecy is unchanged; only its creation moves earlier.
//!
//! The thread runs at the lowest priority ([`KEY_SHARE_THREAD_NICE`]), so refilling the pool
//! only takes CPU time that handshakes leave unused.

use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard, Once, PoisonError};

use rustls::crypto::{ActiveKeyExchange, SupportedKxGroup};
use rustls::{Error, NamedGroup};

/// Key pairs kept ready. A burst of new connections larger than this makes the rest
/// inline, as without the pool. 8 covers the dials a node starts at once at bootstrap
/// (Kademlia's alpha plus identify and the like) and is 8 small heap objects of memory.
pub const KEY_SHARES_AHEAD: usize = 8;

/// The nice value of the thread that makes key pairs ahead (Linux, where it is per thread):
/// the lowest priority. At the default priority, the thread, woken when a handshake took a
/// key pair, preempted the thread running the next handshake whenever both shared a core,
/// which put the key pair's making back on the critical path (decision D64). With nothing
/// else to run, a nice thread still gets the whole core.
pub const KEY_SHARE_THREAD_NICE: i32 = 19;

/// ring's X25519 group with [`KEY_SHARES_AHEAD`] key pairs made ahead; see the module docs.
pub static X25519_AHEAD: &dyn SupportedKxGroup = &AHEAD;

static AHEAD: Ahead = Ahead {
    ready: Mutex::new(Vec::new()),
    wanted: Condvar::new(),
    started: Once::new(),
};

struct Ahead {
    ready: Mutex<Vec<Box<dyn ActiveKeyExchange>>>,
    /// Signalled when a key pair was taken.
    wanted: Condvar,
    started: Once,
}

impl Ahead {
    fn lock(&self) -> MutexGuard<'_, Vec<Box<dyn ActiveKeyExchange>>> {
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The thread that keeps the pool full. It waits on the condition variable while the
    /// pool is full, so an idle node spends nothing on it.
    fn refill(&self) {
        loop {
            {
                let mut ready = self.lock();
                while ready.len() >= KEY_SHARES_AHEAD {
                    ready = self
                        .wanted
                        .wait(ready)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
            match rustls::crypto::ring::kx_group::X25519.start() {
                Ok(made) => self.lock().push(made),
                Err(err) => {
                    // The system's random source failed; handshakes make their own (and
                    // fail the same way, visibly).
                    tracing::warn!(%err, "cannot make X25519 key shares ahead");
                    return;
                }
            }
        }
    }
}

impl SupportedKxGroup for Ahead {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        self.started.call_once(|| {
            let spawned = std::thread::Builder::new()
                .name("lp2p-tls-keyshares".to_owned())
                .spawn(|| {
                    lower_this_threads_priority();
                    AHEAD.refill();
                });
            if let Err(err) = spawned {
                tracing::warn!(%err, "cannot start the X25519 key share thread");
            }
        });
        let made = self.lock().pop();
        self.wanted.notify_one();
        match made {
            Some(made) => Ok(made),
            None => rustls::crypto::ring::kx_group::X25519.start(),
        }
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

/// Gives the calling thread [`KEY_SHARE_THREAD_NICE`]. On Linux, `setpriority` with
/// `PRIO_PROCESS` and no pid changes the calling thread only; elsewhere it would change the
/// whole process, so it is not called there.
fn lower_this_threads_priority() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(err) = rustix::process::setpriority_process(None, KEY_SHARE_THREAD_NICE) {
        // Still correct, only the handshakes may wait for a key pair's making again.
        tracing::debug!(%err, "cannot lower the X25519 key share thread's priority");
    }
}

impl fmt::Debug for Ahead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X25519Ahead")
            .field("ready", &self.lock().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shares_made_ahead_agree_and_are_never_reused() {
        let mut public_keys = std::collections::HashSet::new();
        for _ in 0..3 * KEY_SHARES_AHEAD {
            let ours = X25519_AHEAD.start().expect("key share");
            let theirs = rustls::crypto::ring::kx_group::X25519
                .start()
                .expect("key share");
            assert!(public_keys.insert(ours.pub_key().to_vec()), "a key reused");
            let their_public = theirs.pub_key().to_vec();
            let our_public = ours.pub_key().to_vec();
            let a = ours.complete(&their_public).expect("agree");
            let b = theirs.complete(&our_public).expect("agree");
            assert_eq!(a.secret_bytes(), b.secret_bytes());
        }
    }

    /// The nice value of this process's key share thread, from `/proc` (its name is cut to
    /// 15 bytes there); `None` until the thread exists.
    #[cfg(target_os = "linux")]
    fn key_share_thread_nice() -> Option<i32> {
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !"lp2p-tls-keyshares".starts_with(comm.trim_end()) || comm.trim_end().is_empty() {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            // Fields after the name: state is field 3, the nice value field 19.
            let (_, after_name) = stat.rsplit_once(')')?;
            return after_name.split_whitespace().nth(19 - 3)?.parse().ok();
        }
        None
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_key_share_thread_runs_at_the_lowest_priority() {
        // Taking a key share starts the thread; it lowers its own priority first thing.
        drop(X25519_AHEAD.start().expect("key share"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let nice = key_share_thread_nice();
            if nice == Some(KEY_SHARE_THREAD_NICE) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the key share thread's nice value is {nice:?}, not {KEY_SHARE_THREAD_NICE}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn the_group_is_x25519() {
        assert_eq!(X25519_AHEAD.name(), NamedGroup::X25519);
        let share = X25519_AHEAD.start().expect("key share");
        assert_eq!(share.group(), NamedGroup::X25519);
        assert_eq!(share.pub_key().len(), 32);
    }
}
