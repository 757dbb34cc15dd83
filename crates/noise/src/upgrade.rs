//! The async shell of the handshake and the [`SecurityUpgrader`] implementation.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use lp2p_core::{
    Connection, Error, PeerId, ProtocolId, PublicKey, Role, SecureConnection, SecurityUpgrader,
    UpgradeContext,
};

use crate::PROTOCOL_ID;
use crate::codec::LEN_PREFIX;
use crate::config::NoiseConfig;
use crate::error::NoiseError;
use crate::handshake::{Handshake, HandshakeConfig, Step};
use crate::io::NoiseOutput;
use crate::remembered::RemoteStatics;
use crate::statics::LocalStatic;

/// The `/noise` security channel: `Noise_XX_25519_ChaChaPoly_SHA256` with the libp2p
/// handshake payload.
///
/// It needs no key of its own: the identity key, the muxers to offer inside the handshake
/// and the runtime for the timeout come from the [`UpgradeContext`] of each upgrade. The X25519
/// static key is generated and signed once per identity and kept for the upgrader's life (the
/// spec allows per-process static keys; each handshake's ephemeral key stays fresh), and the
/// remotes' signed static keys that verified are remembered ([`RemoteStatics`], 256), so a
/// reconnecting peer's signature is not checked twice. Clones share both.
#[derive(Debug, Clone, Default)]
pub struct Noise {
    config: NoiseConfig,
    local: Arc<Mutex<Option<LocalStatic>>>,
    remote_statics: Arc<RemoteStatics>,
}

/// What a finished handshake proved, besides the encrypted stream.
#[derive(Debug, Clone)]
pub struct NoiseSession {
    /// The remote's identity key.
    pub remote_key: PublicKey,
    /// The remote's peer id (derived from `remote_key`).
    pub remote_peer: PeerId,
    /// The muxer agreed inside the handshake, if any.
    pub early_muxer: Option<ProtocolId>,
    /// The handshake hash, identical on both sides.
    pub handshake_hash: [u8; 32],
}

impl Noise {
    /// The channel with the default [`NoiseConfig`].
    pub fn new() -> Noise {
        Noise::default()
    }

    /// The channel with the given settings.
    pub fn with_config(config: NoiseConfig) -> Noise {
        Noise {
            config,
            ..Noise::default()
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &NoiseConfig {
        &self.config
    }

    /// The remote signed static keys this upgrader verified and remembers.
    pub fn remote_statics(&self) -> &Arc<RemoteStatics> {
        &self.remote_statics
    }

    /// Our static key for the context's identity: made and signed on first use, then reused
    /// (a new one if the identity changes).
    fn local_static(&self, ctx: &UpgradeContext) -> Result<LocalStatic, NoiseError> {
        let peer = ctx.local_key.public().to_peer_id();
        let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(made) = local.as_ref().filter(|made| made.peer_id() == peer) {
            return Ok(made.clone());
        }
        let made = LocalStatic::generate(&ctx.local_key)?;
        *local = Some(made.clone());
        Ok(made)
    }

    /// Runs the handshake over any byte stream, within the configured timeout, and returns
    /// the encrypted stream with what the handshake proved.
    ///
    /// The [`SecurityUpgrader`] methods call this with the boxed connection; it is public so
    /// the channel can be used on any `futures::io` stream.
    pub async fn secure<T>(
        &self,
        io: T,
        role: Role,
        ctx: &UpgradeContext,
        expected: Option<PeerId>,
    ) -> Result<(NoiseOutput<T>, NoiseSession), NoiseError>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let local = self.local_static(ctx)?;
        let handshake = Handshake::with_local_static_and_ephemeral(
            role,
            ctx.local_key.clone(),
            HandshakeConfig {
                muxers: ctx.muxers.clone(),
                max_message_size: self.config.get_max_handshake_message_size(),
                max_stream_muxers: self.config.get_max_stream_muxers(),
                expected_peer: expected,
                remote_statics: Some(self.remote_statics.clone()),
            },
            &local,
            crate::ephemeral::fresh(),
        );
        let timeout = self.config.get_handshake_timeout();
        let result = ctx
            .runtime
            .timeout(timeout, run_handshake(io, handshake))
            .await;
        let (io, handshake) = match result {
            Ok(Ok(done)) => done,
            Ok(Err(err)) => {
                tracing::debug!(%role, error = %err, "noise handshake failed");
                return Err(err);
            }
            Err(_) => {
                tracing::debug!(%role, ?timeout, "noise handshake timed out");
                return Err(NoiseError::Timeout(timeout));
            }
        };
        let outcome = handshake.finish()?;
        let session = NoiseSession {
            remote_peer: outcome.remote_key.to_peer_id(),
            remote_key: outcome.remote_key,
            early_muxer: outcome.early_muxer,
            handshake_hash: outcome.handshake_hash,
        };
        tracing::debug!(
            %role,
            peer = %session.remote_peer,
            early_muxer = ?session.early_muxer,
            "noise handshake complete"
        );
        let mut encoder = outcome.encoder;
        encoder.set_max_plaintext(self.config.get_max_frame_plaintext());
        Ok((NoiseOutput::new(io, encoder, outcome.decoder), session))
    }

    async fn secure_boxed(
        &self,
        conn: Box<dyn Connection>,
        role: Role,
        ctx: &UpgradeContext,
        expected: Option<PeerId>,
    ) -> Result<SecureConnection, Error> {
        let (output, session) = self.secure(conn, role, ctx, expected).await?;
        Ok(
            SecureConnection::new(Box::new(output), session.remote_key, PROTOCOL_ID)
                .with_early_muxer(session.early_muxer),
        )
    }
}

/// Drives the sans-IO handshake over `io` until it is complete.
async fn run_handshake<T>(mut io: T, mut handshake: Handshake) -> Result<(T, Handshake), NoiseError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = Vec::new();
    loop {
        let stage = handshake.stage();
        let io_err = |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::UnexpectedEof {
                NoiseError::UnexpectedEof { stage }
            } else {
                NoiseError::Io { stage, source }
            }
        };
        match handshake.next_step() {
            Step::Send => {
                out.clear();
                handshake.write_message(&mut out)?;
                io.write_all(&out).await.map_err(io_err)?;
                io.flush().await.map_err(io_err)?;
            }
            Step::Receive => {
                let mut prefix = [0u8; LEN_PREFIX];
                io.read_exact(&mut prefix).await.map_err(io_err)?;
                let len = usize::from(u16::from_be_bytes(prefix));
                let max = handshake.max_message_size();
                if len > max {
                    return Err(NoiseError::MessageTooLarge { stage, len, max });
                }
                // `len` is checked against the cap before anything is allocated.
                let mut message = vec![0u8; len];
                io.read_exact(&mut message).await.map_err(io_err)?;
                handshake.read_message(&message)?;
            }
            Step::Done => return Ok((io, handshake)),
        }
    }
}

#[async_trait]
impl SecurityUpgrader for Noise {
    fn protocol_id(&self) -> &'static str {
        PROTOCOL_ID
    }

    async fn secure_inbound(
        &self,
        conn: Box<dyn Connection>,
        ctx: &UpgradeContext,
    ) -> Result<SecureConnection, Error> {
        self.secure_boxed(conn, Role::Responder, ctx, None).await
    }

    async fn secure_outbound(
        &self,
        conn: Box<dyn Connection>,
        ctx: &UpgradeContext,
        expected: Option<PeerId>,
    ) -> Result<SecureConnection, Error> {
        self.secure_boxed(conn, Role::Initiator, ctx, expected)
            .await
    }
}
