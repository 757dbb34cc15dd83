//! `--autonat`: the AutoNAT v2 client and server, printing
//! `{"event":"reachability","addr":"...","status":"public|private|unknown"}` per status
//! change of one of our addresses.
//!
//! A node whose listen addresses are all loopback is a test network on one machine: its
//! client tests loopback addresses, its server dials them, and one server's answer decides
//! (there are rarely three servers in such a test). Anywhere else the library defaults
//! hold: public addresses only, three servers must agree.

use futures::StreamExt;
use lp2p::Host;
use lp2p::autonat::{AutonatClient, AutonatEvent, AutonatServer, ClientConfig, ServerConfig};
use serde_json::json;

use crate::output::Output;

/// Starts the server and the client on `host` and prints the client's status changes until
/// the host closes. `loopback_only`: the node's addresses are all loopback (a test network).
pub(crate) fn start(
    host: &Host,
    out: &Output,
    loopback_only: bool,
) -> (AutonatServer, AutonatClient) {
    let (server, client) = if loopback_only {
        let server = AutonatServer::new(host, ServerConfig::default().allowing_private_addrs());
        let client = AutonatClient::new_allowing_private_addrs(
            host,
            ClientConfig {
                confidence: 1,
                ..ClientConfig::default()
            },
        );
        (server, client)
    } else {
        (
            AutonatServer::new(host, ServerConfig::default()),
            AutonatClient::new(host, ClientConfig::default()),
        )
    };
    let mut events = client.events();
    let out = out.clone();
    host.spawn(async move {
        while let Some(event) = events.next().await {
            if let AutonatEvent::StatusChanged { addr, status } = event {
                out.emit(&json!({
                    "event": "reachability",
                    "addr": addr.to_string(),
                    "status": status.as_str(),
                }));
            }
        }
    });
    (server, client)
}
