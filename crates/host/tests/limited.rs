//! Limited (relayed) connections: only handlers registered with `allow_limited` run over
//! them, and an outbound stream uses one only when the caller opts in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::runtime::block_on;
use lp2p_core::{
    DialOpts, Error, Established, Incoming, Listener, Multiaddr, RuntimeHandle, Transport,
    TransportContext, async_trait,
};
use lp2p_host::{HandlerOptions, Host, HostError, HostStream};
use lp2p_memory::MemoryTransport;
use lp2p_plaintext::Plaintext;
use lp2p_swarm::{UpgradeStack, Upgraded};
use lp2p_yamux::Yamux;

/// Generous: CI machines are slow and loaded.
const LIMIT: Duration = Duration::from_secs(120);

/// The memory transport, with every connection marked limited (as a relay circuit is).
struct Relayed(Upgraded);

impl Relayed {
    fn new() -> Relayed {
        let stack = UpgradeStack::new()
            .security(Plaintext::new())
            .muxer(Yamux::default());
        Relayed(Upgraded::new(MemoryTransport::default(), stack))
    }
}

struct RelayedListener(Box<dyn Listener>);

#[async_trait]
impl Listener for RelayedListener {
    async fn accept(&mut self) -> Result<Incoming, Error> {
        let mut incoming = self.0.accept().await?;
        let upgrade = incoming.upgrade;
        incoming.upgrade = Box::pin(async move {
            let mut est = upgrade.await?;
            est.limited = true;
            Ok(est)
        });
        Ok(incoming)
    }
    fn local_addrs(&self) -> Vec<Multiaddr> {
        self.0.local_addrs()
    }
}

#[async_trait]
impl Transport for Relayed {
    fn name(&self) -> &'static str {
        "relayed-memory"
    }
    fn can_dial(&self, addr: &Multiaddr) -> bool {
        self.0.can_dial(addr)
    }
    fn can_listen(&self, addr: &Multiaddr) -> bool {
        self.0.can_listen(addr)
    }
    async fn dial(
        &self,
        ctx: &TransportContext,
        addr: &Multiaddr,
        opts: DialOpts,
    ) -> Result<Established, Error> {
        let mut est = self.0.dial(ctx, addr, opts).await?;
        est.limited = true;
        Ok(est)
    }
    async fn listen(
        &self,
        ctx: &TransportContext,
        addr: &Multiaddr,
    ) -> Result<Box<dyn Listener>, Error> {
        Ok(Box::new(RelayedListener(self.0.listen(ctx, addr).await?)))
    }
}

async fn echo(mut stream: HostStream) {
    let mut buf = Vec::new();
    if stream.read_to_end(&mut buf).await.is_ok() {
        let _ = stream.write_all(&buf).await;
    }
}

#[test]
fn only_opted_in_protocols_run_over_limited_connections() {
    let rt = RuntimeHandle::default();
    block_on(rt.timeout(LIMIT, async {
        let server = Host::builder()
            .transport(Relayed::new())
            .listen_on("/memory/0".parse().unwrap())
            .build()
            .await
            .unwrap();
        server.set_stream_handler("/plain/1.0.0", echo);
        server.set_stream_handler_with("/relay-ok/1.0.0", HandlerOptions::allow_limited(), echo);
        let client = Host::builder()
            .transport(Relayed::new())
            .build()
            .await
            .unwrap();
        let peer = server.local_peer_id();
        let conn = client.connect(peer, server.listen_addrs()).await.unwrap();
        assert!(conn.is_limited());

        // Not opted in on our side: refused before anything is sent.
        let err = client
            .new_stream(&peer, ["/relay-ok/1.0.0"])
            .await
            .unwrap_err();
        assert!(matches!(err, HostError::LimitedConnection { .. }), "{err}");
        assert!(err.to_string().contains("limited"), "{err}");

        // Opted in on our side, not on theirs: the remote answers `na`.
        let err = client
            .new_stream_allow_limited(&peer, ["/plain/1.0.0"])
            .await
            .unwrap_err();
        assert!(
            matches!(err, HostError::ProtocolNotSupported { .. }),
            "{err}"
        );

        // Both opted in: it runs.
        let mut s = client
            .new_stream_allow_limited(&peer, ["/plain/1.0.0", "/relay-ok/1.0.0"])
            .await
            .unwrap();
        assert_eq!(s.protocol(), "/relay-ok/1.0.0");
        s.write_all(b"over the relay").await.unwrap();
        s.close().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"over the relay");
        client.close().await;
        server.close().await;
    }))
    .expect("test timed out");
}
