//! Kademlia in the node: `--kad server|client`, the operations of docs/node-cli.md
//! ("Kademlia operations") as dial flags and listen stdin lines, and their `kad` events.
//!
//! KEY and VALUE are UTF-8 text: a record's key and value are their bytes; a provider key
//! is the sha2-256 multihash of KEY's bytes (provider keys are multihashes), which
//! rust-libp2p-node computes the same way.

use std::sync::Arc;

use lp2p::kad::validator::{NamespacedValidator, UnknownNamespaces};
use lp2p::kad::{
    KadConfig, KadError, Kademlia, Mode, Op, QueryResult, QueryStats, Record, sha256_multihash,
};
use lp2p::{Host, Multiaddr, PeerId};
use serde_json::{Value, json};

use crate::cli::KadOp;

/// The configuration the node runs: any key namespace accepted (the CLI's keys are free
/// text, as rust-libp2p accepts them), the given mode, the library's other defaults.
pub(crate) fn config(mode: Mode) -> KadConfig {
    KadConfig {
        validator: Arc::new(
            NamespacedValidator::default().unknown_namespaces(UnknownNamespaces::Accept),
        ),
        ..KadConfig::default().with_mode(mode)
    }
}

/// Starts the DHT on `host` with `bootstrap` peers (addresses ending in `/p2p/ID`).
pub(crate) fn start(host: &Host, mode: Mode, bootstrap: &[Multiaddr]) -> Result<Kademlia, String> {
    let kad = Kademlia::new(host, config(mode)).map_err(|e| format!("starting kad failed: {e}"))?;
    add_bootstrap(&kad, bootstrap);
    Ok(kad)
}

/// Adds peers known to be DHT servers (the routing table bootstraps once it has one).
pub(crate) fn add_bootstrap(kad: &Kademlia, peers: &[Multiaddr]) {
    for addr in peers {
        if let Some(peer) = lp2p::core::addr::peer_id(addr) {
            let mut plain = addr.clone();
            plain.pop();
            kad.add_address(peer, vec![plain]);
        }
    }
}

/// Parses a stdin line of a listening node (`kad-find-peer ID`, `kad-put KEY VALUE`,
/// `kad-get KEY`, `kad-provide KEY`, `kad-find-providers KEY`); `None` if it is not one.
pub(crate) fn parse_line(line: &str) -> Option<Result<KadOp, String>> {
    let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    let need = |what: &str| -> Result<String, String> {
        if rest.is_empty() {
            Err(format!("{command} needs {what}"))
        } else {
            Ok(rest.to_owned())
        }
    };
    Some(match command {
        "kad-find-peer" => need("a peer id").and_then(|id| {
            id.parse::<PeerId>()
                .map(KadOp::FindPeer)
                .map_err(|e| format!("kad-find-peer: `{id}` is not a peer id ({e})"))
        }),
        "kad-put" => match rest.split_once(' ') {
            Some((key, value)) => Ok(KadOp::Put {
                key: key.to_owned(),
                value: value.to_owned(),
            }),
            None => Err("kad-put needs KEY VALUE".to_owned()),
        },
        "kad-get" => need("a key").map(KadOp::Get),
        "kad-provide" => need("a key").map(KadOp::Provide),
        "kad-find-providers" => need("a key").map(KadOp::FindProviders),
        _ => return None,
    })
}

/// Runs one operation and returns its `kad` event, `ok` true or false (with `error`).
/// `clock` times an operation that failed before a query reported its own duration.
pub(crate) async fn run(clock: &lp2p::RuntimeHandle, kad: &Kademlia, op: &KadOp) -> (bool, Value) {
    let started = clock.now();
    let ms = |stats: Option<&QueryStats>| {
        stats.map_or_else(
            || clock.now().saturating_duration_since(started).as_secs_f64() * 1000.0,
            |s| s.duration().as_secs_f64() * 1000.0,
        )
    };
    // A failed query still reports how long it ran and how many peers it asked.
    let failed_query = |op: &str, key: &str, err: &dyn std::fmt::Display, stats: &QueryStats| {
        let mut event = failed(op, key, err, ms(Some(stats)));
        event["queried"] = json!(stats.requests);
        event
    };
    let why = |stats: &QueryStats, otherwise: String| {
        if stats.timed_out {
            "the query timed out".to_owned()
        } else {
            otherwise
        }
    };
    let mut event = match op {
        KadOp::FindPeer(peer) => match finish(kad, Op::FindPeer(*peer)).await {
            Ok((QueryResult::FindPeer(Some(found)), stats)) => json!({
                "op": "find-peer", "key": peer.to_string(), "ok": true,
                "peers": found.addrs.iter().map(|a| with_peer(a, *peer)).collect::<Vec<_>>(),
                "ms": ms(Some(&stats)), "queried": stats.requests,
            }),
            Ok((_, stats)) => failed_query(
                "find-peer",
                &peer.to_string(),
                &why(&stats, format!("no peer knows {peer}")),
                &stats,
            ),
            Err(e) => failed("find-peer", &peer.to_string(), &e, ms(None)),
        },
        KadOp::Put { key, value } => {
            let record = Record::new(key.as_bytes().to_vec(), value.as_bytes().to_vec());
            match kad.put_value(record).await {
                Ok((stored, stats)) if stored > 0 => json!({
                    "op": "put", "key": key, "ok": true, "value": value, "stored": stored,
                    "ms": ms(Some(&stats)), "queried": stats.requests,
                }),
                Ok((_, stats)) => failed_query(
                    "put",
                    key,
                    &why(&stats, "no peer stored the record".to_owned()),
                    &stats,
                ),
                Err(e) => failed("put", key, &e, ms(None)),
            }
        }
        KadOp::Get(key) => match finish(kad, Op::GetValue(key.as_bytes().to_vec())).await {
            Ok((QueryResult::GetValue(Some(record)), stats)) => json!({
                "op": "get", "key": key, "ok": true,
                "value": String::from_utf8_lossy(&record.value),
                "ms": ms(Some(&stats)), "queried": stats.requests,
            }),
            Ok((_, stats)) => failed_query(
                "get",
                key,
                &why(&stats, "no record under the key".to_owned()),
                &stats,
            ),
            Err(e) => failed("get", key, &e, ms(None)),
        },
        KadOp::Provide(key) => match kad.start_providing(sha256_multihash(key.as_bytes())).await {
            Ok((stored, stats)) if stored > 0 => json!({
                "op": "provide", "key": key, "ok": true, "stored": stored,
                "ms": ms(Some(&stats)), "queried": stats.requests,
            }),
            Ok((_, stats)) => failed_query(
                "provide",
                key,
                &why(&stats, "no peer took the provider record".to_owned()),
                &stats,
            ),
            Err(e) => failed("provide", key, &e, ms(None)),
        },
        KadOp::FindProviders(key) => {
            match kad.get_providers(sha256_multihash(key.as_bytes())).await {
                Ok((providers, stats)) if !providers.is_empty() => json!({
                    "op": "find-providers", "key": key, "ok": true,
                    "providers": providers.iter().map(|p| p.peer.to_string()).collect::<Vec<_>>(),
                    "ms": ms(Some(&stats)), "queried": stats.requests,
                }),
                Ok((_, stats)) => failed_query(
                    "find-providers",
                    key,
                    &why(&stats, "no provider found".to_owned()),
                    &stats,
                ),
                Err(e) => failed("find-providers", key, &e, ms(None)),
            }
        }
    };
    let ok = event["ok"] == Value::Bool(true);
    if let Some(object) = event.as_object_mut() {
        // "event" first, as every other event prints it.
        let mut ordered = serde_json::Map::new();
        ordered.insert("event".to_owned(), Value::String("kad".to_owned()));
        ordered.append(object);
        *object = ordered;
    }
    (ok, event)
}

/// Runs `op` to its end, keeping the statistics of a query that found nothing (the
/// `Kademlia::find_peer`-style helpers turn that into an error without them).
async fn finish(kad: &Kademlia, op: Op) -> Result<(QueryResult, QueryStats), KadError> {
    kad.query(op)?.finish().await
}

fn failed(op: &str, key: &str, err: &dyn std::fmt::Display, ms: f64) -> Value {
    json!({ "op": op, "key": key, "ok": false, "error": err.to_string(), "ms": ms })
}

fn with_peer(addr: &Multiaddr, peer: PeerId) -> String {
    lp2p::core::addr::with_peer_id(addr, peer).to_string()
}
