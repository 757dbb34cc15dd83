//! `--autonat`: the AutoNAT v2 client and server, printing
//! `{"event":"reachability","addr":"...","status":"public|private|unknown"}` per status
//! change of one of our addresses.
//!
//! A node whose listen addresses are all loopback is a test network on one machine: its
//! client tests loopback addresses, its server dials them, and one server's answer decides
//! (there are rarely three servers in such a test). Anywhere else the library defaults
//! hold: public addresses only, three servers must agree.

use futures::StreamExt;
use lp2p::autonat::{AutonatClient, AutonatEvent, AutonatServer, ClientConfig, ServerConfig};
use lp2p::core::addr::first_ip;
use lp2p::{Host, Multiaddr};
use serde_json::json;

use crate::output::Output;

/// Whether every address in `listen` (at least one) is a loopback address.
fn loopback_only(listen: &[Multiaddr]) -> bool {
    !listen.is_empty()
        && listen
            .iter()
            .all(|a| first_ip(a).is_some_and(|ip| ip.is_loopback()))
}

/// Starts the server and the client on `host` and prints the client's status changes until
/// the host closes. Call after the node listens: its listen addresses decide the mode.
pub(crate) fn start(host: &Host, out: &Output) -> (AutonatServer, AutonatClient) {
    let test_network = loopback_only(&host.listen_addrs());
    let (server, client) = if test_network {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_all_loopback_listeners_make_a_test_network() {
        let a = |s: &str| s.parse::<Multiaddr>().unwrap();
        assert!(loopback_only(&[
            a("/ip4/127.0.0.1/tcp/1"),
            a("/ip6/::1/udp/2/quic-v1")
        ]));
        assert!(!loopback_only(&[]));
        assert!(!loopback_only(&[
            a("/ip4/127.0.0.1/tcp/1"),
            a("/ip4/0.0.0.0/tcp/2")
        ]));
        assert!(!loopback_only(&[a("/ip4/192.168.1.2/tcp/1")]));
    }
}
