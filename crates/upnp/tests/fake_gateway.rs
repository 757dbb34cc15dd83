//! The UPnP path of [`GatewayClient`] and the [`Mapping`] state machine together, against a
//! small scripted IGD on 127.0.0.1 (an SSDP responder and an HTTP server): the paths a
//! real miniupnpd never takes (fault 725 OnlyPermanentLeasesSupported, fault 718
//! ConflictInMappingEntry, chunked descriptions) and gateways that misbehave (oversized or
//! garbled answers, silence) end in errors, never in a hang or a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use lp2p_core::RuntimeHandle;
use lp2p_upnp::{
    Failure, GatewayClient, Mapping, MappingConfig, MappingEvent, Method, PortMapperConfig,
    Protocol,
};

/// How the scripted gateway answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    /// Faults 725 to any timed lease; accepts lease 0.
    PermanentOnly,
    /// Faults 718 for external port 5000; accepts others.
    ConflictOn5000,
    /// Answers the description with 200 KiB of body.
    HugeDescription,
    /// Answers the description with bytes that are not HTTP.
    Garbage,
    /// Accepts connections and never answers.
    Silent,
}

const DESCRIPTION: &str = "<?xml version=\"1.0\"?><root xmlns=\"urn:schemas-upnp-org:device-1-0\"><device>\
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><serviceList><service>\
<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/ctl</controlURL>\
</service></serviceList></device></root>";

fn envelope(inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{inner}</s:Body></s:Envelope>"
    )
}

fn fault(code: u16, text: &str) -> String {
    envelope(&format!(
        "<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>\
         <UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\"><errorCode>{code}</errorCode>\
         <errorDescription>{text}</errorDescription></UPnPError></detail></s:Fault>"
    ))
}

/// The text between `<tag>` and `</tag>` in `body`.
fn arg<'a>(body: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = body.find(&open).map_or(0, |i| i + open.len());
    let end = body[start..].find('<').map_or(body.len(), |i| start + i);
    &body[start..end]
}

/// A scripted IGD: returns the SSDP address to search and the log of SOAP calls
/// (`Action lease=N port=P`).
fn gateway(script: Script) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    let http_port = http.local_addr().unwrap().port();
    let ssdp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let ssdp_addr = ssdp.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = ssdp.recv_from(&mut buf) {
            if String::from_utf8_lossy(&buf[..n]).starts_with("M-SEARCH") {
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\
                     LOCATION: http://127.0.0.1:{http_port}/desc.xml\r\n\r\n"
                );
                let _ = ssdp.send_to(answer.as_bytes(), from);
            }
        }
    });
    let calls = log.clone();
    thread::spawn(move || {
        for stream in http.incoming() {
            let Ok(mut stream) = stream else { break };
            let calls = calls.clone();
            thread::spawn(move || serve(&mut stream, script, &calls));
        }
    });
    (ssdp_addr, log)
}

fn serve(stream: &mut std::net::TcpStream, script: Script, calls: &Mutex<Vec<String>>) {
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let Ok(n) = stream.read(&mut buf) else { return };
        if n == 0 {
            return;
        }
        req.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&req);
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            if req.len() >= end + 4 + len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&req).into_owned();
    if script == Script::Silent {
        thread::sleep(Duration::from_secs(30));
        return;
    }
    let response = if text.starts_with("GET /desc.xml") {
        match script {
            Script::HugeDescription => format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}",
                200 * 1024,
                "x".repeat(200 * 1024)
            ),
            Script::Garbage => "\x00\x01garbage\r\n\r\n".to_owned(),
            _ => {
                // Chunked, in two chunks, as some routers send it.
                let (a, b) = DESCRIPTION.split_at(100);
                format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                    a.len(),
                    b.len()
                )
            }
        }
    } else {
        let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
        let (status, answer) = if text.contains("#GetExternalIPAddress") {
            (
                200,
                envelope(
                    "<u:GetExternalIPAddressResponse xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\"><NewExternalIPAddress>203.0.113.9</NewExternalIPAddress></u:GetExternalIPAddressResponse>",
                ),
            )
        } else if text.contains("#AddPortMapping") {
            let lease = arg(body, "NewLeaseDuration");
            let port = arg(body, "NewExternalPort");
            calls
                .lock()
                .unwrap()
                .push(format!("AddPortMapping lease={lease} port={port}"));
            match script {
                Script::PermanentOnly if lease != "0" => {
                    (500, fault(725, "OnlyPermanentLeasesSupported"))
                }
                Script::ConflictOn5000 if port == "5000" => {
                    (500, fault(718, "ConflictInMappingEntry"))
                }
                _ => (
                    200,
                    envelope(
                        "<u:AddPortMappingResponse xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\"/>",
                    ),
                ),
            }
        } else if text.contains("#DeletePortMapping") {
            calls.lock().unwrap().push(format!(
                "DeletePortMapping port={}",
                arg(body, "NewExternalPort")
            ));
            (
                200,
                envelope(
                    "<u:DeletePortMappingResponse xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\"/>",
                ),
            )
        } else {
            (500, fault(401, "Invalid Action"))
        };
        format!(
            "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        )
    };
    let _ = stream.write_all(response.as_bytes());
}

fn config(ssdp: SocketAddr) -> PortMapperConfig {
    PortMapperConfig {
        mapping: MappingConfig {
            methods: vec![Method::Upnp],
            ..MappingConfig::default()
        },
        gateway: Some(Ipv4Addr::LOCALHOST),
        ssdp_target: ssdp,
        // Generous: a success returns at the first answer; only failures wait it out.
        ssdp_wait: Duration::from_secs(20),
        http_timeout: Duration::from_secs(30),
        allow_private_external: true,
        ..PortMapperConfig::default()
    }
}

/// Runs the mapping's actions through the client until it has nothing due; returns its
/// events.
async fn drive(m: &mut Mapping, client: &mut GatewayClient) -> Vec<MappingEvent> {
    let rt = RuntimeHandle::default();
    let mut steps = 0;
    while let Some(action) = m.poll_action(rt.now()) {
        let result = client
            .execute(m.protocol(), m.internal_port(), action)
            .await;
        m.handle_result(rt.now(), result);
        steps += 1;
        assert!(steps < 20, "the state machine keeps asking");
    }
    std::iter::from_fn(|| m.poll_event()).collect()
}

#[test]
fn permanent_lease_fallback_then_removal() {
    let (ssdp, log) = gateway(Script::PermanentOnly);
    lp2p_core::runtime::block_on(async move {
        let mut client = GatewayClient::new(RuntimeHandle::default(), config(ssdp));
        let mut m = Mapping::new(Protocol::Tcp, 5000, config(ssdp).mapping, Instant::now(), 1);
        let events = drive(&mut m, &mut client).await;
        assert_eq!(
            events,
            [MappingEvent::Mapped {
                method: Method::Upnp,
                external: "203.0.113.9:5000".parse().unwrap(),
                lifetime: Duration::ZERO,
            }]
        );
        m.shutdown();
        let events = drive(&mut m, &mut client).await;
        assert!(
            matches!(&events[..], [MappingEvent::Removed { error: None, .. }]),
            "{events:?}"
        );
    });
    assert_eq!(
        *log.lock().unwrap(),
        [
            "AddPortMapping lease=7200 port=5000",
            "AddPortMapping lease=0 port=5000",
            "DeletePortMapping port=5000",
        ]
    );
}

#[test]
fn conflict_moves_to_another_external_port() {
    let (ssdp, log) = gateway(Script::ConflictOn5000);
    lp2p_core::runtime::block_on(async move {
        let mut client = GatewayClient::new(RuntimeHandle::default(), config(ssdp));
        let mut m = Mapping::new(Protocol::Udp, 5000, config(ssdp).mapping, Instant::now(), 7);
        let events = drive(&mut m, &mut client).await;
        let [MappingEvent::Mapped { external, .. }] = &events[..] else {
            panic!("{events:?}")
        };
        assert_ne!(external.port(), 5000);
        assert!(external.port() >= 1024);
    });
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0], "AddPortMapping lease=7200 port=5000");
}

fn failure_of(script: Script) -> String {
    let (ssdp, _log) = gateway(script);
    let mut cfg = config(ssdp);
    // The gateway's answers come in milliseconds; these bound what a failure waits out.
    cfg.ssdp_wait = Duration::from_secs(10);
    cfg.http_timeout = Duration::from_secs(2);
    lp2p_core::runtime::block_on(async move {
        let mut client = GatewayClient::new(RuntimeHandle::default(), cfg);
        let action = lp2p_upnp::Action::Map {
            method: Method::Upnp,
            lifetime: 60,
            external_port: 5000,
            renewal: false,
        };
        match client.execute(Protocol::Tcp, 5000, action).await {
            Err(Failure::Unavailable(why)) => why,
            other => panic!("{other:?}"),
        }
    })
}

#[test]
fn oversized_description_is_refused() {
    let why = failure_of(Script::HugeDescription);
    assert!(why.contains("larger than"), "{why}");
}

#[test]
fn garbage_description_is_refused() {
    let why = failure_of(Script::Garbage);
    assert!(why.contains("malformed"), "{why}");
}

#[test]
fn silent_gateway_times_out() {
    let why = failure_of(Script::Silent);
    assert!(why.contains("did not answer"), "{why}");
}

#[test]
fn nobody_answering_ssdp_is_no_gateway() {
    // A bound socket nobody reads: SSDP gets no answer.
    let quiet = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut cfg = config(quiet.local_addr().unwrap());
    cfg.ssdp_wait = Duration::from_millis(500);
    lp2p_core::runtime::block_on(async move {
        let mut client = GatewayClient::new(RuntimeHandle::default(), cfg);
        let action = lp2p_upnp::Action::Map {
            method: Method::Upnp,
            lifetime: 60,
            external_port: 5000,
            renewal: false,
        };
        match client.execute(Protocol::Tcp, 5000, action).await {
            Err(Failure::Unavailable(why)) => assert!(why.contains("no SSDP answer"), "{why}"),
            other => panic!("{other:?}"),
        }
    });
    drop(quiet);
}
