//! `demo`: several nodes in one process on 127.0.0.1, showing identify, ping, an echo and a
//! gossipsub round.

use std::time::Duration;

use lp2p::{Host, Multiaddr, PeerId};
use serde_json::{Value, json};

use crate::cli::Common;
use crate::commands::identify_event;
use crate::node::{self, Node};
use crate::output::Output;
use lp2p::core::addr::with_peer_id;

/// The most nodes a demo starts: each is a full host with tasks and sockets.
const MAX_DEMO_NODES: usize = 50;

/// The topic of the gossipsub round.
const TOPIC: &str = "lp2p-demo";

/// How long each step may take before the demo reports it failed.
const STEP: Duration = Duration::from_secs(15);

fn short(peer: &PeerId) -> String {
    let text = peer.to_string();
    let tail: String = text
        .chars()
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// A readable sentence in human mode, the JSON event otherwise.
fn report(out: &Output, event: &Value, sentence: &str) {
    if out.is_human() {
        out.say(sentence);
    } else {
        out.emit(event);
    }
}

/// Runs the demo.
pub(crate) async fn run(common: &Common, out: &Output, count: usize) -> Result<(), String> {
    if !(2..=MAX_DEMO_NODES).contains(&count) {
        return Err(format!(
            "demo needs between 2 and {MAX_DEMO_NODES} nodes, not {count}"
        ));
    }
    out.say(&format!(
        "Starting {count} lp2p nodes on 127.0.0.1 (TCP, noise, yamux)…"
    ));
    let listen: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().map_err(|e| format!("{e}"))?;
    let mut nodes: Vec<Node> = Vec::with_capacity(count);
    for i in 0..count {
        let mut node_common = common.clone();
        node_common.bare = false;
        let key = node::keypair_from_seed(u64::try_from(i).unwrap_or(0) + 1);
        let node = node::start(&node_common, key, std::slice::from_ref(&listen), &[]).await?;
        node.services.subscribe_quietly(TOPIC)?;
        let me = node.host.local_peer_id();
        let addrs: Vec<String> = node
            .host
            .listen_addrs()
            .iter()
            .map(|a| with_peer_id(a, me).to_string())
            .collect();
        report(
            out,
            &json!({ "event": "listening", "peer_id": me.to_string(), "addrs": addrs }),
            &format!("  node {i}: {me} listening on {}", addrs.join(", ")),
        );
        nodes.push(node);
    }
    let result = steps(out, &nodes).await;
    for node in &nodes {
        node.host.close().await;
    }
    result?;
    out.say("Demo finished: every step succeeded.");
    Ok(())
}

async fn steps(out: &Output, nodes: &[Node]) -> Result<(), String> {
    let hosts: Vec<&Host> = nodes.iter().map(|n| &n.host).collect();
    let ids: Vec<PeerId> = hosts.iter().map(|h| h.local_peer_id()).collect();

    out.say("\n1. Connecting: each node dials the one before it, and node 0.");
    for i in 1..hosts.len() {
        let mut targets = vec![i - 1];
        if i > 1 {
            targets.push(0);
        }
        for j in targets {
            let conn = hosts[i]
                .connect(ids[j], hosts[j].listen_addrs())
                .await
                .map_err(|e| format!("node {i} could not connect to node {j}: {e}"))?;
            report(
                out,
                &json!({ "event": "connected", "peer": ids[j].to_string(), "dir": "out", "addr": conn.remote_addr().to_string() }),
                &format!(
                    "  node {i} → node {j}: connected over {} with {} and {}",
                    conn.remote_addr(),
                    conn.security_protocol(),
                    conn.muxer_protocol()
                ),
            );
        }
    }

    out.say("\n2. Identify: what each node learned about the node before it.");
    for i in 1..hosts.len() {
        let info = nodes[i]
            .services
            .wait_identified(hosts[i], &ids[i - 1], STEP)
            .await
            .map_err(|e| format!("node {i}: {e}"))?;
        report(
            out,
            &identify_event(&ids[i - 1], &info),
            &format!(
                "  node {i} sees node {}: agent {}, {} protocols ({}), listening on {}",
                i - 1,
                info.agent_version,
                info.protocols.len(),
                info.protocols
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                info.listen_addrs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }

    out.say("\n3. Ping: node 0 pings every other node.");
    for (i, peer) in ids.iter().enumerate().skip(1) {
        // Every node dialed node 0, which finishes its side of each handshake a moment after
        // the dialer does (noise XX: the responder completes on the last message). Wait for
        // node 0 to have identified the peer, so the ping reuses that connection.
        nodes[0]
            .services
            .wait_identified(hosts[0], peer, STEP)
            .await
            .map_err(|e| format!("node 0: {e}"))?;
        let rtt = nodes[0].services.ping(hosts[0], peer).await?;
        let ms = rtt.as_secs_f64() * 1000.0;
        report(
            out,
            &json!({ "event": "ping", "peer": peer.to_string(), "rtt_ms": ms }),
            &format!("  node 0 → node {i} ({}): {ms:.3} ms", short(peer)),
        );
    }

    out.say("\n4. Echo: node 1 sends a line to node 0 on /echo/1.0.0.");
    let text = "hello from node 1";
    let bytes = node::echo(hosts[1], &ids[0], text, STEP).await?;
    report(
        out,
        &json!({ "event": "echo", "peer": ids[0].to_string(), "ok": true, "bytes": bytes }),
        &format!("  node 0 echoed {bytes} bytes back: \"{text}\""),
    );

    let last = hosts.len() - 1;
    out.say(&format!(
        "\n5. Gossipsub: node {last} publishes on \"{TOPIC}\"; every other node receives it."
    ));
    nodes[last]
        .services
        .wait_for_any_mesh_peer(hosts[last], TOPIC, STEP)
        .await?;
    let text = format!("hello from node {last}");
    nodes[last].services.publish(TOPIC, text.as_bytes()).await?;
    for (i, node) in nodes.iter().enumerate().take(last) {
        let message = node
            .services
            .next_message(TOPIC, STEP)
            .await
            .map_err(|e| format!("node {i} did not receive the gossipsub message: {e}"))?;
        report(
            out,
            &json!({ "event": "message", "topic": TOPIC, "from": message.from, "data": message.data }),
            &format!(
                "  node {i} received \"{}\" from {}",
                message.data, message.from
            ),
        );
    }
    Ok(())
}
