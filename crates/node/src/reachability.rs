//! `--autonat`: the AutoNAT v2 client (falling back to v1 servers when no peer serves v2)
//! and the v2 and v1 servers, printing
//! `{"event":"reachability","addr":"...","status":"public|private|unknown"}` per status
//! change of one of our addresses. With `--kad auto`, Kademlia's mode follows: a server
//! while at least one of our addresses is public, a client otherwise, each switch printed
//! as `{"event":"kad-mode","mode":"server|client"}`.
//!
//! A node whose listen addresses are all loopback is a test network on one machine: its
//! client tests loopback addresses, its server dials them, and one server's answer decides
//! (there are rarely three servers in such a test). Anywhere else the library defaults
//! hold: public addresses only, three servers must agree.

use std::collections::HashSet;

use futures::StreamExt;
use futures::channel::mpsc;
use lp2p::autonat::{
    AutonatClient, AutonatEvent, AutonatServer, AutonatV1Server, ClientConfig, Reachability,
    ServerConfig, V1ServerConfig,
};
use lp2p::kad::Kademlia;
use lp2p::{Host, Multiaddr};
use serde_json::{Value, json};

use crate::cli::Common;
use crate::output::Output;
use crate::services::Services;

/// The AutoNAT services the node runs; they stop with the host.
pub(crate) struct Autonat {
    /// The v2 server.
    pub(crate) _server: AutonatServer,
    /// The v1 server (for peers that only speak `/libp2p/autonat/1.0.0`).
    pub(crate) _v1_server: AutonatV1Server,
    /// The client (v2, falling back to v1 servers when no peer serves v2).
    pub(crate) client: AutonatClient,
}

/// With `--autonat`: [`start`], with Kademlia following the verdicts under `--kad auto`
/// and `relays` (`--relay-auto`) told each change of the node's public reachability.
pub(crate) fn start_if_asked(
    host: &Host,
    out: &Output,
    common: &Common,
    services: &Services,
    relays: Option<mpsc::UnboundedSender<bool>>,
) -> Option<Autonat> {
    let kad = services
        .kad
        .as_ref()
        .filter(|_| common.kad_follows_reachability);
    common
        .autonat
        .then(|| start(host, out, common.loopback_only, kad, relays))
}

/// Starts the servers (v2 and v1) and the client on `host` and prints the client's status
/// changes until the host closes. `loopback_only`: the node's addresses are all loopback
/// (a test network). `kad` (`--kad auto`): its mode follows the verdicts, a server while
/// one of our addresses is public. `relays`: told each change of that answer.
fn start(
    host: &Host,
    out: &Output,
    loopback_only: bool,
    kad: Option<&Kademlia>,
    relays: Option<mpsc::UnboundedSender<bool>>,
) -> Autonat {
    let (server, v1_server, client) = if loopback_only {
        let server = AutonatServer::new(host, ServerConfig::default().allowing_private_addrs());
        let v1_server =
            AutonatV1Server::new(host, V1ServerConfig::default().allowing_private_addrs());
        let client = AutonatClient::new_allowing_private_addrs(
            host,
            ClientConfig {
                confidence: 1,
                ..ClientConfig::default()
            },
        );
        (server, v1_server, client)
    } else {
        (
            AutonatServer::new(host, ServerConfig::default()),
            AutonatV1Server::new(host, V1ServerConfig::default()),
            AutonatClient::new(host, ClientConfig::default()),
        )
    };
    let mut events = client.events();
    let out = out.clone();
    let (public_tx, public_rx) = mpsc::unbounded();
    let kad_follows = kad.is_some();
    if let Some(kad) = kad {
        kad.follow_reachability(public_rx);
    }
    host.spawn(async move {
        let mut statuses = PublicAddrs::default();
        while let Some(event) = events.next().await {
            if let AutonatEvent::StatusChanged { addr, status } = event {
                out.emit(&json!({
                    "event": "reachability",
                    "addr": addr.to_string(),
                    "status": status.as_str(),
                }));
                let Some(public) = statuses.update(addr, status) else {
                    continue;
                };
                if let Some(relays) = &relays {
                    let _ = relays.unbounded_send(public);
                }
                if kad_follows {
                    let _ = public_tx.unbounded_send(public);
                    out.emit(&json!({
                        "event": "kad-mode",
                        "mode": if public { "server" } else { "client" },
                    }));
                }
            }
        }
    });
    Autonat {
        _server: server,
        _v1_server: v1_server,
        client,
    }
}

/// The `explain` event for a stdin line `explain ADDR`: why AutoNAT has, or has not,
/// confirmed that address (`lp2p_autonat::Explanation`).
pub(crate) fn explain_event(client: &AutonatClient, addr: &str) -> Value {
    let addr: Multiaddr = match addr.parse() {
        Ok(a) => a,
        Err(e) => {
            return json!({
                "event": "explain", "ok": false,
                "error": format!("explain: `{addr}` is not a multiaddr ({e})"),
            });
        }
    };
    let why = client.explain(&addr);
    let peers = |list: &[lp2p::PeerId]| list.iter().map(ToString::to_string).collect::<Vec<_>>();
    let (reachable_by, unreachable_by) = why.report.as_ref().map_or_else(
        || (Vec::new(), Vec::new()),
        |r| (peers(&r.reachable_by), peers(&r.unreachable_by)),
    );
    json!({
        "event": "explain",
        "ok": true,
        "addr": why.addr.to_string(),
        "status": why.status.as_str(),
        "tracked": why.report.is_some(),
        "external": why.external,
        "reachable_by": reachable_by,
        "unreachable_by": unreachable_by,
        "reason": why.reason,
    })
}

/// Which of our addresses AutoNAT found public, to tell when the node as a whole becomes
/// publicly reachable (one public address is enough) or stops being so.
#[derive(Debug, Default)]
struct PublicAddrs {
    public: HashSet<Multiaddr>,
}

impl PublicAddrs {
    /// Records `addr`'s new status; returns whether the node is publicly reachable when
    /// that answer changed.
    fn update(&mut self, addr: Multiaddr, status: Reachability) -> Option<bool> {
        let before = !self.public.is_empty();
        if status == Reachability::Public {
            self.public.insert(addr);
        } else {
            self.public.remove(&addr);
        }
        let after = !self.public.is_empty();
        (before != after).then_some(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_is_public_while_one_address_is() {
        let a: Multiaddr = "/ip4/8.8.8.8/tcp/1".parse().unwrap();
        let b: Multiaddr = "/ip4/8.8.8.8/udp/1/quic-v1".parse().unwrap();
        let mut p = PublicAddrs::default();
        assert_eq!(p.update(a.clone(), Reachability::Private), None);
        assert_eq!(p.update(a.clone(), Reachability::Public), Some(true));
        assert_eq!(p.update(b.clone(), Reachability::Public), None);
        assert_eq!(p.update(a.clone(), Reachability::Unknown), None);
        assert_eq!(p.update(b, Reachability::Private), Some(false));
        assert_eq!(p.update(a, Reachability::Private), None);
    }
}
