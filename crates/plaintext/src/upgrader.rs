//! The async shell: [`Plaintext`], the `SecurityUpgrader`.

use std::time::Duration;

use async_trait::async_trait;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use lp2p_core::{
    Connection, Error, PeerId, PublicKey, SecureConnection, SecurityUpgrader, UpgradeContext,
};

use crate::{Handshake, MAX_EXCHANGE_LEN, PROTOCOL_ID, PlaintextError};

/// How long a handshake may take by default. Two small messages cross; 10 s is far above
/// any sane round trip and still frees the connection slot of a peer that never answers.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The size of the stack buffer the remote's exchange is read through.
const READ_CHUNK: usize = 1024;

/// Settings of the plaintext channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The longest a handshake may take. Default [`HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: Duration,
    /// The largest remote exchange message accepted. Default [`MAX_EXCHANGE_LEN`].
    pub max_exchange_len: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            handshake_timeout: HANDSHAKE_TIMEOUT,
            max_exchange_len: MAX_EXCHANGE_LEN,
        }
    }
}

impl Config {
    /// Sets [`handshake_timeout`](Config::handshake_timeout).
    #[must_use]
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`max_exchange_len`](Config::max_exchange_len).
    #[must_use]
    pub fn with_max_exchange_len(mut self, len: usize) -> Self {
        self.max_exchange_len = len;
        self
    }
}

/// The `/plaintext/2.0.0` security channel: each side shows its public key, and the remote's
/// peer id is checked against it. Nothing is encrypted or signed, so a man in the middle can
/// claim any key: for tests and trusted networks only.
#[derive(Clone, Debug, Default)]
pub struct Plaintext {
    config: Config,
}

impl Plaintext {
    /// The channel with the default [`Config`].
    pub fn new() -> Plaintext {
        Plaintext::default()
    }

    /// The channel with the given settings.
    pub fn with_config(config: Config) -> Plaintext {
        Plaintext { config }
    }

    /// The settings in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs the handshake on `conn` within the timeout and wraps the result.
    async fn secure(
        &self,
        mut conn: Box<dyn Connection>,
        ctx: &UpgradeContext,
        expected: Option<PeerId>,
    ) -> Result<SecureConnection, Error> {
        let local = ctx.local_key.public();
        let remote_addr = conn.remote_addr();
        let exchange = handshake(&mut conn, &local, expected, self.config.max_exchange_len);
        let outcome = ctx
            .runtime
            .timeout(self.config.handshake_timeout, exchange)
            .await
            .map_err(|_| PlaintextError::Timeout(self.config.handshake_timeout))
            .and_then(|result| result);
        match outcome {
            Ok(remote_key) => {
                tracing::debug!(peer = %remote_key.to_peer_id(), %remote_addr, "plaintext handshake done");
                Ok(SecureConnection::new(conn, remote_key, PROTOCOL_ID))
            }
            Err(err) => {
                tracing::debug!(%remote_addr, error = %err, "plaintext handshake failed");
                Err(err.into())
            }
        }
    }
}

#[async_trait]
impl SecurityUpgrader for Plaintext {
    fn protocol_id(&self) -> &'static str {
        PROTOCOL_ID
    }

    async fn secure_inbound(
        &self,
        conn: Box<dyn Connection>,
        ctx: &UpgradeContext,
    ) -> Result<SecureConnection, Error> {
        self.secure(conn, ctx, None).await
    }

    async fn secure_outbound(
        &self,
        conn: Box<dyn Connection>,
        ctx: &UpgradeContext,
        expected: Option<PeerId>,
    ) -> Result<SecureConnection, Error> {
        self.secure(conn, ctx, expected).await
    }
}

/// Runs the handshake over any byte stream: sends our exchange, reads and verifies the
/// remote's, and returns its key. Reads never go past the remote's message, so the stream
/// continues exactly where the handshake ended (no bytes are held back anywhere).
///
/// No timeout is applied here; [`Plaintext`] adds one.
pub async fn handshake<S>(
    io: &mut S,
    local_key: &PublicKey,
    expected: Option<PeerId>,
    max_exchange_len: usize,
) -> Result<PublicKey, PlaintextError>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut handshake = Handshake::new(local_key, expected, max_exchange_len);
    let mut out = Vec::new();
    handshake.poll_transmit(&mut out);
    io.write_all(&out).await?;
    io.flush().await?;

    let mut chunk = [0u8; READ_CHUNK];
    loop {
        if let Some(key) = handshake.remote_key() {
            return Ok(key.clone());
        }
        let want = handshake.wanted().clamp(1, READ_CHUNK);
        let buf = chunk.get_mut(..want).unwrap_or_default();
        let n = io.read(buf).await?;
        if n == 0 {
            return Err(PlaintextError::ConnectionClosed {
                received: handshake.received(),
            });
        }
        handshake.handle_input(buf.get(..n).unwrap_or_default())?;
    }
}
