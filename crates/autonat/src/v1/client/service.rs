//! The v1 client exchange, async: one stream to a v1 server, our `Dial` with the addresses
//! to test, its `DialResponse`. Run by [`AutonatClient`](crate::AutonatClient), which
//! keeps the verdicts.

use std::time::Duration;

use lp2p_core::{Multiaddr, PeerId};
use lp2p_host::Host;

use crate::AutonatError;
use crate::io::{close, open_request_stream, read_message, servers, write_message};
use crate::v1::message::{DialRequest, DialResponse, MAX_MESSAGE_SIZE, PROTOCOL_V1};

/// Connected peers that announced `/libp2p/autonat/1.0.0` over identify, on a direct
/// connection: the v1 servers a client may ask.
pub fn v1_servers(host: &Host) -> Vec<PeerId> {
    servers(host, PROTOCOL_V1)
}

/// Asks `server` to dial us on `addrs`: opens a stream on a direct connection, sends the
/// request (our peer id and the addresses), half-closes, and reads the answer within
/// `timeout`.
pub async fn exchange(
    host: &Host,
    server: PeerId,
    addrs: &[Multiaddr],
    timeout: Duration,
) -> Result<DialResponse, AutonatError> {
    let mut s = open_request_stream(host, server, PROTOCOL_V1).await?;
    let request = DialRequest {
        peer: host.local_peer_id(),
        addrs: addrs.to_vec(),
    };
    write_message(&mut s, &request.encode()).await?;
    // rust-libp2p's request-response codec closes after its request too; the server
    // answers either way.
    close(&mut s).await;
    let body = read_message(host.runtime(), &mut s, MAX_MESSAGE_SIZE, timeout).await?;
    DialResponse::decode(&body).map_err(|e| e.with_peer(server))
}
