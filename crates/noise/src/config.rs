//! Limits and their defaults.

use std::time::Duration;

/// The largest Noise message: the 2-byte length prefix cannot say more (Noise spec §3).
pub const MAX_FRAME_LEN: usize = 65535;
/// The largest plaintext in one transport frame: 65535 bytes minus the 16-byte tag.
pub const MAX_FRAME_PLAINTEXT: usize = MAX_FRAME_LEN - crate::crypto::TAG_LEN;

/// Default handshake timeout. The spec sets none; 10 s is ample for three messages on a slow
/// link, and short enough that a peer that stalls mid-handshake does not hold a connection
/// slot (and its buffers) for long.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default cap on a handshake message (body, without its length prefix). It is the framing
/// maximum: a legitimate payload can carry an RSA key, its signature and extensions, and the
/// 2-byte length bounds what a peer can make us allocate anyway (one buffer per message).
/// Lower it to bound handshake memory more tightly.
pub const DEFAULT_MAX_HANDSHAKE_MESSAGE_SIZE: usize = MAX_FRAME_LEN;

/// Default cap on the remote's `stream_muxers` list: longer lists are ignored (then the muxer
/// is negotiated with multistream-select). 100 is go-libp2p's limit; real lists have 1 to 3.
pub const DEFAULT_MAX_STREAM_MUXERS: usize = 100;

/// Settings of the `/noise` security channel.
///
/// ```
/// use std::time::Duration;
/// use lp2p_noise::NoiseConfig;
///
/// let config = NoiseConfig::default()
///     .handshake_timeout(Duration::from_secs(5))
///     .max_handshake_message_size(4096);
/// assert_eq!(config.get_handshake_timeout(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct NoiseConfig {
    handshake_timeout: Duration,
    max_handshake_message_size: usize,
    max_stream_muxers: usize,
    max_frame_plaintext: usize,
}

impl Default for NoiseConfig {
    fn default() -> Self {
        NoiseConfig {
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_handshake_message_size: DEFAULT_MAX_HANDSHAKE_MESSAGE_SIZE,
            max_stream_muxers: DEFAULT_MAX_STREAM_MUXERS,
            max_frame_plaintext: MAX_FRAME_PLAINTEXT,
        }
    }
}

impl NoiseConfig {
    /// How long the whole handshake may take (default [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The largest handshake message accepted or sent, at most 65535 (default
    /// [`DEFAULT_MAX_HANDSHAKE_MESSAGE_SIZE`]).
    #[must_use]
    pub fn max_handshake_message_size(mut self, max: usize) -> Self {
        self.max_handshake_message_size = max.min(MAX_FRAME_LEN);
        self
    }

    /// The longest `stream_muxers` list taken from a remote (default
    /// [`DEFAULT_MAX_STREAM_MUXERS`]).
    #[must_use]
    pub fn max_stream_muxers(mut self, max: usize) -> Self {
        self.max_stream_muxers = max;
        self
    }

    /// The most plaintext put in one transport frame, 1 to 65519 (default 65519, the
    /// maximum, as go-libp2p does). Smaller frames only cost overhead; the knob exists for
    /// tests and for peers that want smaller frames.
    #[must_use]
    pub fn max_frame_plaintext(mut self, max: usize) -> Self {
        self.max_frame_plaintext = max.clamp(1, MAX_FRAME_PLAINTEXT);
        self
    }

    /// The handshake timeout.
    pub fn get_handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The handshake message size cap.
    pub fn get_max_handshake_message_size(&self) -> usize {
        self.max_handshake_message_size
    }

    /// The cap on the remote's muxer list.
    pub fn get_max_stream_muxers(&self) -> usize {
        self.max_stream_muxers
    }

    /// The plaintext cap per transport frame.
    pub fn get_max_frame_plaintext(&self) -> usize {
        self.max_frame_plaintext
    }
}
