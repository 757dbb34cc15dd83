//! What a v1 server's answer means, sans-IO. v1 has no nonce: the server's word is all
//! there is, so only an `OK` naming an address we sent counts as reachable, an
//! `E_DIAL_ERROR` to a one-address request as unreachable, and everything else (refusals,
//! bad requests, internal errors, failed exchanges, timeouts) is inconclusive and never
//! changes a status. The verdicts go into the shared
//! [`ClientCore`](crate::client::core::ClientCore), whose confidence rule (distinct
//! servers) makes up for the missing proof.

use lp2p_core::Multiaddr;
use lp2p_core::addr::split_peer_id;

use crate::client::core::ProbeResult;
use crate::v1::message::{DialResponse, V1Status};

/// The verdict of a v1 probe of `sent` that ended with `response`, or `Err(reason)` when
/// the exchange failed.
pub fn judge(sent: &[Multiaddr], response: Result<DialResponse, String>) -> ProbeResult {
    let inconclusive = |reason: String| ProbeResult::Inconclusive { reason };
    let response = match response {
        Ok(r) => r,
        Err(reason) => return inconclusive(reason),
    };
    let text = response.text.as_deref().unwrap_or("");
    match response.status {
        V1Status::Ok => match response.addr {
            // rust-libp2p and go-libp2p name the address with our `/p2p` appended.
            Some(addr) => {
                let addr = split_peer_id(&addr).0;
                match sent.iter().find(|s| split_peer_id(s).0 == addr) {
                    Some(s) => ProbeResult::Reachable {
                        addr: split_peer_id(s).0,
                    },
                    None => inconclusive(format!(
                        "the v1 server reported dialing {addr}, which we did not ask for"
                    )),
                }
            }
            None => match sent {
                [only] => ProbeResult::Reachable {
                    addr: split_peer_id(only).0,
                },
                _ => inconclusive("the v1 server answered OK without naming an address".into()),
            },
        },
        V1Status::DialError => match sent {
            [only] => ProbeResult::Unreachable {
                addr: split_peer_id(only).0,
            },
            _ => inconclusive(format!(
                "the v1 server dialed none of {} addresses ({text})",
                sent.len()
            )),
        },
        status => inconclusive(format!("the v1 server answered {status:?} ({text})")),
    }
}

#[cfg(test)]
#[allow(clippy::unnecessary_wraps, clippy::cloned_ref_to_slice_refs)]
mod tests {
    use std::time::{Duration, Instant};

    use lp2p_core::PeerId;

    use super::*;
    use crate::client::core::{ClientConfig, ClientCore, Reachability, StatusChange};

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn ok(a: &str) -> Result<DialResponse, String> {
        Ok(DialResponse {
            status: V1Status::Ok,
            text: None,
            addr: Some(addr(a)),
        })
    }

    fn status(s: V1Status) -> Result<DialResponse, String> {
        Ok(DialResponse::error(s, "x"))
    }

    #[test]
    fn an_ok_must_name_an_address_we_sent() {
        let a = addr("/ip4/8.8.8.8/tcp/4001");
        let peer = PeerId::random();
        assert_eq!(
            judge(&[a.clone()], ok(&format!("{a}/p2p/{peer}"))),
            ProbeResult::Reachable { addr: a.clone() }
        );
        assert!(matches!(
            judge(&[a.clone()], ok("/ip4/9.9.9.9/tcp/4001")),
            ProbeResult::Inconclusive { .. }
        ));
        let bare = Ok(DialResponse {
            status: V1Status::Ok,
            text: None,
            addr: None,
        });
        assert_eq!(
            judge(&[a.clone()], bare.clone()),
            ProbeResult::Reachable { addr: a.clone() }
        );
        assert!(matches!(
            judge(&[a.clone(), addr("/ip4/8.8.8.8/tcp/4002")], bare),
            ProbeResult::Inconclusive { .. }
        ));
    }

    #[test]
    fn only_a_dial_error_on_one_address_is_unreachable() {
        let a = addr("/ip4/8.8.8.8/tcp/4001");
        assert_eq!(
            judge(&[a.clone()], status(V1Status::DialError)),
            ProbeResult::Unreachable { addr: a.clone() }
        );
        for s in [
            V1Status::DialRefused,
            V1Status::BadRequest,
            V1Status::InternalError,
        ] {
            assert!(matches!(
                judge(&[a.clone()], status(s)),
                ProbeResult::Inconclusive { .. }
            ));
        }
        assert!(matches!(
            judge(&[a.clone()], Err("timeout".into())),
            ProbeResult::Inconclusive { .. }
        ));
    }

    /// The fallback's whole rule on the shared core, in virtual time: three distinct v1
    /// servers make an address public; refusals, timeouts and errors in between never
    /// flip it, and a later private verdict needs a majority again.
    #[test]
    fn distinct_v1_servers_decide_and_failures_never_flip() {
        let mut core = ClientCore::new(ClientConfig::default());
        let a = addr("/ip4/8.8.8.8/tcp/4001");
        assert!(core.add_candidate(&a));
        core.add_candidate(&addr("/ip4/8.8.8.8/tcp/4002"));
        let servers: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
        let mut now = Instant::now();
        let mut nonce = 0;
        let mut probe = |core: &mut ClientCore,
                         now: Instant,
                         response: Result<DialResponse, String>|
         -> Option<(Vec<Multiaddr>, Option<StatusChange>)> {
            nonce += 1;
            let req = core.next_probe_with(&servers, now, nonce, 1)?;
            let (_, change) = core.finish_judged(nonce, |sent| judge(sent, response));
            Some((req.addrs, change))
        };
        // One address per v1 request.
        let (sent, _) = probe(&mut core, now, ok("/ip4/8.8.8.8/tcp/4001")).unwrap();
        assert_eq!(sent, vec![a.clone()]);
        // The other candidate is due now too; a refusal says nothing about it.
        let (sent, change) = probe(&mut core, now, status(V1Status::DialRefused)).unwrap();
        assert_eq!((sent.len(), change), (1, None));
        let mut changes = Vec::new();
        for _ in 0..8 {
            now += Duration::from_secs(16);
            let Some((sent, change)) = probe(&mut core, now, ok("/ip4/8.8.8.8/tcp/4001")) else {
                continue;
            };
            if sent == vec![a.clone()] {
                changes.extend(change);
            }
        }
        assert_eq!(core.status(&a), Reachability::Public);
        assert_eq!(
            changes,
            vec![StatusChange {
                addr: a.clone(),
                status: Reachability::Public
            }]
        );
        // Timeouts and errors, however many, leave the verdict alone.
        for _ in 0..10 {
            now += Duration::from_secs(31 * 60);
            if let Some((_, change)) = probe(&mut core, now, Err("timed out".into())) {
                assert_eq!(change, None);
            }
            if let Some((_, change)) = probe(&mut core, now, status(V1Status::InternalError)) {
                assert_eq!(change, None);
            }
        }
        assert_eq!(core.status(&a), Reachability::Public);
    }
}
