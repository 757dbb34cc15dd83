//! `--upnp`: port mappings on the gateway (lp2p-upnp: PCP, then NAT-PMP, then UPnP IGD),
//! printing
//! `{"event":"port-mapping","ok":true,"protocol":"tcp|udp","internal":PORT,"external":"MULTIADDR","method":"pcp|nat-pmp|upnp","lifetime":SECS}`
//! per mapping (again when the gateway moves it), and
//! `{"event":"port-mapping","ok":false,"protocol":...,"internal":PORT,"reason":"..."}` each
//! time every method failed (they are tried again with backoff). Mapped addresses go to
//! AutoNAT as candidates when `--autonat` runs too; the mappings are removed when the node
//! stops.

use futures::StreamExt;
use lp2p::Host;
use lp2p::upnp::{PortMapper, PortMapperConfig, PortMappingEvent};
use serde_json::json;

use crate::output::Output;

/// Starts mapping `host`'s listen ports and prints the outcomes until the host closes.
pub(crate) fn start(host: &Host, out: &Output) -> Result<PortMapper, String> {
    let mapper =
        PortMapper::new(host, PortMapperConfig::default()).map_err(|e| format!("--upnp: {e}"))?;
    let mut events = mapper.events();
    let out = out.clone();
    host.spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                PortMappingEvent::Mapped {
                    protocol,
                    internal_port,
                    method,
                    external,
                    lifetime,
                } => out.emit(&json!({
                    "event": "port-mapping",
                    "ok": true,
                    "protocol": protocol.to_string(),
                    "internal": internal_port,
                    "external": external.to_string(),
                    "method": method.to_string(),
                    "lifetime": lifetime.as_secs(),
                })),
                PortMappingEvent::Failed {
                    protocol,
                    internal_port,
                    reasons,
                    ..
                } => out.emit(&json!({
                    "event": "port-mapping",
                    "ok": false,
                    "protocol": protocol.to_string(),
                    "internal": internal_port,
                    "reason": reasons.join("; "),
                })),
                _ => {}
            }
        }
    });
    Ok(mapper)
}
