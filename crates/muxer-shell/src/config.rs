//! The shell's own limits: how it reads the socket and how long a close may take.

use std::time::Duration;

/// Default largest number of bytes the connection task reads from the socket at once: 64
/// KiB, a whole default frame of either muxer and what one TCP read typically returns on a
/// busy connection. The buffer starts at 4 KiB (or this size, if smaller), doubles after
/// each read that fills it, and returns to 4 KiB once the connection has been quiet for a
/// while (64 reads in a row using at most a quarter of it): an idle connection keeps 4 KiB,
/// not 64 (issue 18; frame payloads mostly skip this buffer, read straight into their
/// stream's).
pub const DEFAULT_READ_BUFFER_SIZE: usize = 64 * 1024;

/// Smallest read buffer accepted: 64 bytes, room for any muxer's frame header.
pub const MIN_READ_BUFFER_SIZE: usize = 64;

/// Largest read buffer accepted: 16 MiB. More buys nothing (a socket read rarely returns
/// more than its receive buffer) and costs memory per connection.
pub const MAX_READ_BUFFER_SIZE: usize = 16 * 1024 * 1024;

/// Default time a local close may spend flushing queued frames before the connection is
/// dropped anyway: 10 s (go-yamux's write timeout). A remote that stopped reading must not
/// make `close` hang.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Rounds of read / handle / write the connection task does in one poll before it yields to
/// the executor: 32, so one busy connection cannot hog an executor thread, while a round is
/// large enough (up to a read buffer in, a send buffer out) that yielding costs little.
pub const POLL_BUDGET: usize = 32;

/// How the shell runs a connection. `ShellConfig::default()` suits most uses; each muxer
/// crate builds one from its own configuration.
///
/// ```
/// use std::time::Duration;
/// use lp2p_muxer_shell::ShellConfig;
///
/// let config = ShellConfig::default()
///     .with_read_buffer_size(128 * 1024)
///     .with_close_timeout(Duration::from_secs(2));
/// assert_eq!(config.read_buffer_size(), 128 * 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShellConfig {
    read_buffer_size: usize,
    close_timeout: Duration,
}

impl Default for ShellConfig {
    fn default() -> Self {
        ShellConfig {
            read_buffer_size: DEFAULT_READ_BUFFER_SIZE,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
        }
    }
}

impl ShellConfig {
    /// Sets the most bytes the connection task reads from the socket at once, the size its
    /// read buffer may grow to (default
    /// [`DEFAULT_READ_BUFFER_SIZE`], clamped to [`MIN_READ_BUFFER_SIZE`] ..=
    /// [`MAX_READ_BUFFER_SIZE`]).
    #[must_use]
    pub fn with_read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.clamp(MIN_READ_BUFFER_SIZE, MAX_READ_BUFFER_SIZE);
        self
    }

    /// Sets how long closing may spend flushing to a remote that does not read (default
    /// [`DEFAULT_CLOSE_TIMEOUT`]).
    #[must_use]
    pub fn with_close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// The most bytes read from the socket at once: the size the read buffer may grow to.
    pub fn read_buffer_size(&self) -> usize {
        self.read_buffer_size
    }

    /// How long closing may spend flushing.
    pub fn close_timeout(&self) -> Duration {
        self.close_timeout
    }
}
