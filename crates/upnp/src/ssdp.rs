//! SSDP discovery of an Internet Gateway Device: the M-SEARCH request and the parsing of
//! answers (the `LOCATION` of the device description).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use crate::UpnpError;
use crate::http::{HttpUrl, find, parse_head};

/// The SSDP multicast group and port.
pub const MULTICAST: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), 1900);
/// The largest SSDP answer we read (answers are 300-500 bytes).
pub const MAX_ANSWER: usize = 2048;
/// The search targets we send: IGDv2 and IGDv1 devices (an IGDv2 device answers both; an
/// IGDv1 one only the second).
pub const SEARCH_TARGETS: [&str; 2] = [
    "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
];

/// An M-SEARCH request for `target`, asking for answers within `mx` seconds, addressed to
/// `host` (the multicast group, or a gateway asked directly).
pub fn m_search(target: &str, mx: u8, host: SocketAddr) -> Vec<u8> {
    format!(
        "M-SEARCH * HTTP/1.1\r\nHOST: {host}\r\nMAN: \"ssdp:discover\"\r\nMX: {mx}\r\nST: {target}\r\n\r\n"
    )
    .into_bytes()
}

/// A gateway's answer to an M-SEARCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Where its device description is.
    pub location: HttpUrl,
    /// The search target it answered for, if given.
    pub search_target: Option<String>,
}

/// Parses an SSDP answer datagram: `HTTP/1.1 200 OK` and a `LOCATION` with an `http://`
/// URL (literal IP).
pub fn parse_answer(datagram: &[u8]) -> Result<Answer, UpnpError> {
    const W: &str = "SSDP answer";
    if datagram.len() > MAX_ANSWER {
        return Err(UpnpError::TooLarge {
            what: W,
            limit: MAX_ANSWER,
        });
    }
    let end = find(datagram, b"\r\n\r\n").unwrap_or(datagram.len());
    let head = parse_head(datagram.get(..end).unwrap_or(&[]), W)?;
    if head.status != 200 {
        return Err(UpnpError::malformed(W, format!("status {}", head.status)));
    }
    let location = head
        .header("location")
        .ok_or_else(|| UpnpError::malformed(W, "no LOCATION"))?;
    Ok(Answer {
        location: HttpUrl::parse(location)?,
        search_target: head.header("st").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m_search_is_well_formed() {
        let m = String::from_utf8(m_search(SEARCH_TARGETS[1], 2, MULTICAST.into())).unwrap();
        assert_eq!(
            m,
            "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 2\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n"
        );
    }

    #[test]
    fn parses_miniupnpd_answer() {
        let a = b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nUSN: uuid:3ee8b4a2::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nEXT:\r\nSERVER: Debian UPnP/1.1 MiniUPnPd/2.3.1\r\nLOCATION: http://192.168.77.1:5555/rootDesc.xml\r\nOPT: \"http://schemas.upnp.org/upnp/1/0/\"; ns=01\r\n01-NLS: 1\r\n\r\n";
        let ans = parse_answer(a).unwrap();
        assert_eq!(ans.location.addr, "192.168.77.1:5555".parse().unwrap());
        assert_eq!(ans.location.path, "/rootDesc.xml");
        assert_eq!(ans.search_target.as_deref(), Some(SEARCH_TARGETS[1]));
        // Lower-case header names, no trailing blank line.
        let b = b"HTTP/1.1 200 OK\r\nlocation: http://10.0.0.1/d.xml";
        assert_eq!(parse_answer(b).unwrap().location.path, "/d.xml");
    }

    #[test]
    fn malformed_answers() {
        for bad in [
            &b""[..],
            b"NOTIFY * HTTP/1.1\r\nLOCATION: http://1.2.3.4/\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nLOCATION: http://1.2.3.4/\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nST: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nLOCATION: https://1.2.3.4/\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nLOCATION: http://router.lan/\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\xff: x\r\n\r\n",
        ] {
            assert!(
                parse_answer(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(
            parse_answer(&[b'a'; MAX_ANSWER + 1]),
            Err(UpnpError::TooLarge { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = parse_answer(&bytes);
        }
    }
}
