//! Turning a raw connection into an established one: multistream-select the security
//! protocol, run its handshake, then multistream-select the muxer (unless the handshake
//! already agreed on one) and start it.

use std::sync::Arc;

use lp2p_core::{
    Connection as RawConnection, MuxedConnection, MuxerUpgrader, PeerId, ProtocolId, PublicKey,
    Role, RuntimeHandle, SecureConnection, SecurityUpgrader, UpgradeContext,
};
use lp2p_multiselect::{Version, dialer_select, listener_select};

use crate::{Stage, SwarmError};

/// The security channels and muxers in preference order, and the context handshakes need.
pub(crate) struct Upgraders {
    pub(crate) security: Vec<Arc<dyn SecurityUpgrader>>,
    pub(crate) muxers: Vec<Arc<dyn MuxerUpgrader>>,
    pub(crate) ctx: UpgradeContext,
}

/// A connection after a successful upgrade.
pub(crate) struct Upgraded {
    pub(crate) peer: PeerId,
    pub(crate) remote_key: PublicKey,
    pub(crate) security: &'static str,
    pub(crate) muxer: &'static str,
    pub(crate) muxed: Arc<dyn MuxedConnection>,
}

/// A failed upgrade: where and why.
pub(crate) type UpgradeFailure = (Stage, SwarmError);

impl Upgraders {
    fn security_ids(&self) -> Vec<ProtocolId> {
        self.security
            .iter()
            .map(|s| ProtocolId::from_static(s.protocol_id()))
            .collect()
    }

    fn muxer_ids(&self) -> Vec<ProtocolId> {
        self.muxers
            .iter()
            .map(|m| ProtocolId::from_static(m.protocol_id()))
            .collect()
    }

    fn security_for(&self, id: &str) -> Option<&Arc<dyn SecurityUpgrader>> {
        self.security.iter().find(|s| s.protocol_id() == id)
    }

    fn muxer_for(&self, id: &str) -> Option<&Arc<dyn MuxerUpgrader>> {
        self.muxers.iter().find(|m| m.protocol_id() == id)
    }

    /// Upgrades a connection we dialed. With `expected`, a remote proving another identity
    /// fails with [`SwarmError::PeerIdMismatch`].
    pub(crate) async fn outbound(
        &self,
        raw: Box<dyn RawConnection>,
        expected: Option<PeerId>,
        runtime: &RuntimeHandle,
    ) -> Result<Upgraded, UpgradeFailure> {
        let (id, io) = dialer_select(raw, self.security_ids(), Version::V1)
            .await
            .map_err(|source| {
                (
                    Stage::SecurityNegotiation,
                    SwarmError::Negotiation {
                        what: "security protocol",
                        source,
                    },
                )
            })?;
        let security = self
            .security_for(id.as_str())
            .ok_or_else(|| unknown(Stage::SecurityNegotiation, &id))?;
        let secure = security
            .secure_outbound(Box::new(io), &self.ctx, expected)
            .await
            .map_err(security_failure)?;
        self.finish(secure, Role::Initiator, runtime).await
    }

    /// Upgrades a connection we accepted. `admit` runs once the remote's identity is known
    /// (before the muxer is negotiated), so a per-peer limit refuses early.
    pub(crate) async fn inbound(
        &self,
        raw: Box<dyn RawConnection>,
        admit: impl FnOnce(&PeerId) -> Result<(), SwarmError>,
        runtime: &RuntimeHandle,
    ) -> Result<Upgraded, UpgradeFailure> {
        let ids = self.security_ids();
        let (id, io) = listener_select(raw, ids.as_slice())
            .await
            .map_err(|source| {
                (
                    Stage::SecurityNegotiation,
                    SwarmError::Negotiation {
                        what: "security protocol",
                        source,
                    },
                )
            })?;
        let security = self
            .security_for(id.as_str())
            .ok_or_else(|| unknown(Stage::SecurityNegotiation, &id))?;
        let secure = security
            .secure_inbound(Box::new(io), &self.ctx)
            .await
            .map_err(security_failure)?;
        admit(&secure.remote_peer()).map_err(|e| (Stage::Limit, e))?;
        self.finish(secure, Role::Responder, runtime).await
    }

    /// Agrees on a muxer (in the handshake or with multistream-select) and starts it.
    async fn finish(
        &self,
        secure: SecureConnection,
        role: Role,
        runtime: &RuntimeHandle,
    ) -> Result<Upgraded, UpgradeFailure> {
        let peer = secure.remote_peer();
        let security = secure.protocol();
        let remote_key = secure.remote_key().clone();
        if let Some(muxer) = secure
            .early_muxer()
            .and_then(|id| self.muxer_for(id.as_str()))
        {
            tracing::debug!(%peer, muxer = muxer.protocol_id(), "muxer agreed inside the security handshake");
            let muxer = muxer.clone();
            let muxed = muxer.upgrade(secure, role, runtime);
            return Ok(Upgraded {
                peer,
                remote_key,
                security,
                muxer: muxer.protocol_id(),
                muxed,
            });
        }
        let ids = self.muxer_ids();
        let negotiated = match role {
            Role::Initiator => dialer_select(secure, ids, Version::V1).await,
            Role::Responder => listener_select(secure, ids.as_slice()).await,
        };
        let (id, io) = negotiated.map_err(|source| {
            (
                Stage::MuxerNegotiation,
                SwarmError::Negotiation {
                    what: "stream muxer",
                    source,
                },
            )
        })?;
        let muxer = self
            .muxer_for(id.as_str())
            .ok_or_else(|| unknown(Stage::MuxerNegotiation, &id))?;
        let secure = SecureConnection::new(Box::new(io), remote_key.clone(), security);
        let muxed = muxer.upgrade(secure, role, runtime);
        Ok(Upgraded {
            peer,
            remote_key,
            security,
            muxer: muxer.protocol_id(),
            muxed,
        })
    }
}

fn security_failure(err: lp2p_core::Error) -> UpgradeFailure {
    match err {
        lp2p_core::Error::PeerIdMismatch { expected, actual } => (
            Stage::Security,
            SwarmError::PeerIdMismatch { expected, actual },
        ),
        other => (Stage::Security, SwarmError::Core(other)),
    }
}

/// multistream-select agreed on an id we did not offer: impossible unless it is broken.
fn unknown(stage: Stage, id: &ProtocolId) -> UpgradeFailure {
    (
        stage,
        SwarmError::Core(lp2p_core::Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("negotiated a protocol we did not offer: {id}"),
        ))),
    )
}
