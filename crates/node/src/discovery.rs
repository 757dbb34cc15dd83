//! `--mdns`: mDNS discovery, printing `{"event":"discovered","peer":"...","addrs":[...]}`
//! once per new peer (again after it expired and came back). The addresses end in
//! `/p2p/<peer>`, ready for `dial --addr`.

use std::collections::HashSet;

use futures::StreamExt;
use lp2p::mdns::{Mdns, MdnsConfig, MdnsEvent};
use lp2p::{Host, Multiaddr, PeerId};
use serde_json::{Value, json};

use crate::output::Output;
use lp2p::core::addr::with_peer_id;

fn discovered_event(peer: PeerId, addrs: &[Multiaddr]) -> Value {
    json!({
        "event": "discovered",
        "peer": peer.to_string(),
        "addrs": addrs.iter().map(|a| with_peer_id(a, peer).to_string()).collect::<Vec<_>>(),
    })
}

/// Starts mDNS on `host` and prints its discoveries until the host closes.
pub(crate) fn start(host: &Host, out: &Output) -> Result<Mdns, String> {
    let mdns =
        Mdns::new(host, MdnsConfig::default()).map_err(|e| format!("starting mDNS failed: {e}"))?;
    // Subscribe first, then report what is known already; a peer in both is printed once.
    let mut events = mdns.events();
    let mut printed: HashSet<PeerId> = HashSet::new();
    for (peer, addrs) in mdns.peers() {
        printed.insert(peer);
        out.emit(&discovered_event(peer, &addrs));
    }
    let out = out.clone();
    host.spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                MdnsEvent::Discovered { peer, addrs } if printed.insert(peer) => {
                    out.emit(&discovered_event(peer, &addrs));
                }
                MdnsEvent::Expired { peer } => {
                    printed.remove(&peer);
                }
                _ => {}
            }
        }
    });
    Ok(mdns)
}
