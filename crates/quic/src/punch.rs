//! The passive side of a QUIC hole punch (a dial with `Role::Responder`): send a few random
//! UDP packets from the listening socket to the remote, so our NAT lets its packets in, and
//! wait for the connection it dials to us from that address.

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::Either;
use ring::rand::{SecureRandom, SystemRandom};

use crate::endpoint::EndpointHandle;
use crate::error::QuicError;

/// Size of each punching packet: small, and random so no QUIC stack mistakes it for a
/// packet of a connection (it is dropped as garbage on arrival).
pub(crate) const PUNCH_PACKET_LEN: usize = 64;

/// The longest pause between punching packets. Each pause is random between 10 ms and this,
/// as rust-libp2p does, so the remote's first packets meet an open mapping soon.
pub(crate) const MAX_PUNCH_INTERVAL: Duration = Duration::from_millis(200);

/// Sends punching packets to `remote` from `endpoint` and waits (at most `timeout`) for an
/// inbound attempt from exactly that address.
pub(crate) async fn wait_for_incoming(
    endpoint: &EndpointHandle,
    remote: SocketAddr,
    timeout: Duration,
) -> Result<quinn_proto::Incoming, QuicError> {
    let runtime = endpoint.runtime().clone();
    let waiter = endpoint.register_punch(remote);
    let rng = SystemRandom::new();
    let punching = async {
        let mut packet = [0u8; PUNCH_PACKET_LEN];
        loop {
            let _ = rng.fill(&mut packet);
            endpoint.send_raw(remote, &packet);
            let mut pause = [0u8; 1];
            let _ = rng.fill(&mut pause);
            let max_ms = u64::try_from(MAX_PUNCH_INTERVAL.as_millis()).unwrap_or(200);
            let spread = max_ms.saturating_sub(9).max(1);
            let ms = 10u64.saturating_add(u64::from(pause[0]).checked_rem(spread).unwrap_or(0));
            runtime.sleep(Duration::from_millis(ms)).await;
        }
    };
    let outcome = runtime
        .timeout(timeout, futures::future::select(waiter, Box::pin(punching)))
        .await;
    endpoint.unregister_punch(remote);
    match outcome {
        Ok(Either::Left((Ok(incoming), _))) => Ok(incoming),
        // The endpoint dropped the waiter (it closed); the punching loop never ends.
        Ok(Either::Left((Err(_), _)) | Either::Right(_)) => Err(QuicError::EndpointClosed {
            addr: endpoint.local_addr(),
        }),
        Err(_) => Err(QuicError::HandshakeTimeout {
            addr: remote,
            timeout,
        }),
    }
}
