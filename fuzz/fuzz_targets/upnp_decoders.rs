//! The lp2p-upnp decoders never panic on any input: NAT-PMP and PCP datagrams (a decoded
//! response re-encodes to an equal one), SSDP answers, device descriptions, SOAP responses
//! and the HTTP response parser (which must give the same answer however the bytes are
//! split between reads). The first byte picks the decoder and, for HTTP, the split point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lp2p_upnp::http::{HttpUrl, ResponseParser};
use lp2p_upnp::xml::Description;
use lp2p_upnp::{natpmp, pcp, soap, ssdp};

fn http(data: &[u8], split: usize) -> Result<Option<lp2p_upnp::http::Response>, String> {
    let mut p = ResponseParser::new(1024, 4096);
    let (a, b) = data.split_at(split.min(data.len()));
    for part in [a, b] {
        if let Some(r) = p.push(part).map_err(|e| e.to_string())? {
            return Ok(Some(r));
        }
    }
    p.finish().map(Some).map_err(|e| e.to_string())
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    match selector % 7 {
        0 => {
            if let Ok(r) = natpmp::Response::decode(data) {
                assert_eq!(
                    natpmp::Response::decode(&r.encode()).expect("re-decodes"),
                    r
                );
            }
        }
        1 => match pcp::Response::decode(data) {
            Ok(pcp::Response::Map(m)) => {
                let again = pcp::Response::decode(&m.encode()).expect("re-decodes");
                assert_eq!(again, pcp::Response::Map(m));
            }
            _ => {
                let _ = pcp::MapRequest::decode(data);
            }
        },
        2 => {
            if let Ok(a) = ssdp::parse_answer(data) {
                // A LOCATION that parsed joins relative references without panicking.
                let _ = a.location.join("ctl/IPConn");
            }
        }
        3 => {
            if let Ok(d) = Description::parse(data) {
                assert!(d.services.len() <= lp2p_upnp::xml::MAX_SERVICES);
                let _ = d.wan_service();
            }
        }
        4 => {
            let _ = soap::parse_response(500, data, "AddPortMapping");
            let _ = soap::parse_response(200, data, "GetExternalIPAddress");
        }
        5 => {
            if let Ok(s) = std::str::from_utf8(data) {
                if let Ok(u) = HttpUrl::parse(s) {
                    let _ = u.join(s);
                }
            }
        }
        _ => {
            let whole = http(data, data.len());
            let split = http(data, usize::from(selector) * 7 % (data.len() + 1));
            // However the bytes arrive, the outcome is the same.
            match (&whole, &split) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                _ => panic!("split changed the outcome: {whole:?} vs {split:?}"),
            }
            if let Ok(Some(r)) = whole {
                assert!(r.body.len() <= 4096);
            }
        }
    }
});
