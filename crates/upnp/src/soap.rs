//! SOAP for the WAN connection service (UPnP IGD): request bodies for
//! GetExternalIPAddress, AddPortMapping, AddAnyPortMapping (IGDv2) and DeletePortMapping,
//! and response parsing with faults (`UPnPError` code and description).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::xml::{XmlEvent, escape, scan};
use crate::{Protocol, UpnpError};

/// Fault 402: invalid arguments.
pub const ERR_INVALID_ARGS: u16 = 402;
/// Fault 606: action not authorized.
pub const ERR_NOT_AUTHORIZED: u16 = 606;
/// Fault 714: no such entry (deleting a mapping that is gone).
pub const ERR_NO_SUCH_ENTRY: u16 = 714;
/// Fault 718: the external port is mapped to another client.
pub const ERR_CONFLICT: u16 = 718;
/// Fault 724: the gateway wants the external port equal to the internal one.
pub const ERR_SAME_PORT_VALUES_REQUIRED: u16 = 724;
/// Fault 725: the gateway only takes permanent leases (lease duration 0).
pub const ERR_ONLY_PERMANENT_LEASES: u16 = 725;
/// Fault 728: no port maps available.
pub const ERR_NO_PORT_MAPS_AVAILABLE: u16 = 728;

/// Most output arguments read from one response.
const MAX_ARGS: usize = 32;

/// The arguments of AddPortMapping / AddAnyPortMapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// The external port wanted.
    pub external_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Our port.
    pub internal_port: u16,
    /// Our LAN address.
    pub internal_client: Ipv4Addr,
    /// A label routers show.
    pub description: String,
    /// Seconds; 0 is a permanent lease.
    pub lease_duration: u32,
}

/// A SOAP action on the WAN connection service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Asks for the external IP address.
    GetExternalIpAddress,
    /// Adds (or refreshes) a mapping on exactly the external port given.
    AddPortMapping(PortMapping),
    /// IGDv2: adds a mapping on the port given or, if that is taken, one the gateway picks
    /// (returned as `NewReservedPort`).
    AddAnyPortMapping(PortMapping),
    /// Removes a mapping.
    DeletePortMapping {
        /// Its external port.
        external_port: u16,
        /// TCP or UDP.
        protocol: Protocol,
    },
}

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    }
}

impl Action {
    /// The action's name.
    pub fn name(&self) -> &'static str {
        match self {
            Action::GetExternalIpAddress => "GetExternalIPAddress",
            Action::AddPortMapping(_) => "AddPortMapping",
            Action::AddAnyPortMapping(_) => "AddAnyPortMapping",
            Action::DeletePortMapping { .. } => "DeletePortMapping",
        }
    }

    /// The `SOAPAction` header value (without quotes) for `service_type`.
    pub fn soap_action(&self, service_type: &str) -> String {
        format!("{service_type}#{}", self.name())
    }

    /// The SOAP envelope.
    pub fn body(&self, service_type: &str) -> String {
        let args: Vec<(&str, String)> = match self {
            Action::GetExternalIpAddress => Vec::new(),
            Action::AddPortMapping(m) | Action::AddAnyPortMapping(m) => vec![
                ("NewRemoteHost", String::new()),
                ("NewExternalPort", m.external_port.to_string()),
                ("NewProtocol", proto_name(m.protocol).to_owned()),
                ("NewInternalPort", m.internal_port.to_string()),
                ("NewInternalClient", m.internal_client.to_string()),
                ("NewEnabled", "1".to_owned()),
                ("NewPortMappingDescription", m.description.clone()),
                ("NewLeaseDuration", m.lease_duration.to_string()),
            ],
            Action::DeletePortMapping {
                external_port,
                protocol,
            } => vec![
                ("NewRemoteHost", String::new()),
                ("NewExternalPort", external_port.to_string()),
                ("NewProtocol", proto_name(*protocol).to_owned()),
            ],
        };
        let mut body = String::from(
            "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
             s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>",
        );
        let _ = write!(
            body,
            "<u:{} xmlns:u=\"{}\">",
            self.name(),
            escape(service_type)
        );
        for (name, value) in args {
            let _ = write!(body, "<{name}>{}</{name}>", escape(&value));
        }
        let _ = write!(body, "</u:{}></s:Body></s:Envelope>\r\n", self.name());
        body
    }
}

/// What a SOAP call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `<ActionResponse>`'s output arguments (name, value).
    Ok(Vec<(String, String)>),
    /// A `UPnPError` fault.
    Fault {
        /// The UPnP error code (e.g. 725).
        code: u16,
        /// Its description.
        description: String,
    },
}

impl Outcome {
    /// The output argument `name`.
    pub fn arg(&self, name: &str) -> Option<&str> {
        match self {
            Outcome::Ok(args) => args
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str()),
            Outcome::Fault { .. } => None,
        }
    }
}

/// Parses the response to `action_name` (`status` is the HTTP status: 200 for success,
/// 500 for a fault).
pub fn parse_response(status: u16, body: &[u8], action_name: &str) -> Result<Outcome, UpnpError> {
    const W: &str = "SOAP response";
    let doc = std::str::from_utf8(body).map_err(|_| UpnpError::malformed(W, "not UTF-8"))?;
    let wanted = format!("{action_name}Response");
    let mut in_response = false;
    let mut saw_response = false;
    let mut saw_fault = false;
    let mut args: Vec<(String, String)> = Vec::new();
    let mut code: Option<String> = None;
    let mut description = String::new();
    scan(doc, W, |stack, ev| match ev {
        XmlEvent::Open(name) if name == wanted => {
            in_response = true;
            saw_response = true;
        }
        XmlEvent::Close(name) if name == wanted => in_response = false,
        // An argument, possibly empty: recorded now, its text filled in if any comes.
        XmlEvent::Open(n)
            if in_response
                && stack.len() >= 2
                && stack.get(stack.len().saturating_sub(2)) == Some(&wanted.as_str())
                && args.len() < MAX_ARGS =>
        {
            args.push((n.to_owned(), String::new()));
        }
        XmlEvent::Open("Fault") => saw_fault = true,
        XmlEvent::Text(t) => {
            if in_response {
                if let [.., parent, name] = stack
                    && *parent == wanted
                    && let Some(last) = args.last_mut().filter(|(n, _)| n == name)
                {
                    last.1 = t;
                }
            } else if let [.., "UPnPError", field] = stack {
                match *field {
                    "errorCode" => code = Some(t),
                    "errorDescription" => description = t,
                    _ => {}
                }
            }
        }
        _ => {}
    })?;
    if let Some(code) = code {
        let code = code
            .trim()
            .parse::<u16>()
            .map_err(|_| UpnpError::malformed(W, format!("errorCode {code:.20}")))?;
        return Ok(Outcome::Fault { code, description });
    }
    if saw_fault {
        return Err(UpnpError::malformed(W, "fault without a UPnPError code"));
    }
    if !saw_response {
        return Err(UpnpError::malformed(
            W,
            format!("HTTP {status} without <{wanted}>"),
        ));
    }
    if status != 200 {
        return Err(UpnpError::malformed(
            W,
            format!("HTTP {status} with a response body"),
        ));
    }
    Ok(Outcome::Ok(args))
}

/// The meaning of a UPnP fault code, in words (for logs and events).
pub fn fault_name(code: u16) -> &'static str {
    match code {
        401 => "InvalidAction",
        ERR_INVALID_ARGS => "InvalidArgs",
        501 => "ActionFailed",
        ERR_NOT_AUTHORIZED => "ActionNotAuthorized",
        ERR_NO_SUCH_ENTRY => "NoSuchEntryInArray",
        715 => "WildCardNotPermittedInSrcIP",
        716 => "WildCardNotPermittedInExtPort",
        ERR_CONFLICT => "ConflictInMappingEntry",
        ERR_SAME_PORT_VALUES_REQUIRED => "SamePortValuesRequired",
        ERR_ONLY_PERMANENT_LEASES => "OnlyPermanentLeasesSupported",
        726 => "RemoteHostOnlySupportsWildcard",
        727 => "ExternalPortOnlySupportsWildcard",
        ERR_NO_PORT_MAPS_AVAILABLE => "NoPortMapsAvailable",
        729 => "ConflictWithOtherMechanisms",
        732 => "WildCardNotPermittedInIntPort",
        _ => "unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ST: &str = "urn:schemas-upnp-org:service:WANIPConnection:1";

    #[test]
    fn request_bodies() {
        let m = PortMapping {
            external_port: 4001,
            protocol: Protocol::Udp,
            internal_port: 4002,
            internal_client: Ipv4Addr::new(192, 168, 77, 2),
            description: "lp2p <udp>".to_owned(),
            lease_duration: 3600,
        };
        let b = Action::AddPortMapping(m.clone()).body(ST);
        assert!(b.contains(
            "<u:AddPortMapping xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\">"
        ));
        assert!(b.contains("<NewExternalPort>4001</NewExternalPort><NewProtocol>UDP</NewProtocol><NewInternalPort>4002</NewInternalPort><NewInternalClient>192.168.77.2</NewInternalClient>"));
        assert!(b.contains("<NewPortMappingDescription>lp2p &lt;udp&gt;</NewPortMappingDescription><NewLeaseDuration>3600</NewLeaseDuration>"));
        // The body is well-formed XML our own scanner accepts.
        scan(&b, "t", |_, _| {}).unwrap();
        assert_eq!(
            Action::AddAnyPortMapping(m).soap_action(ST),
            format!("{ST}#AddAnyPortMapping")
        );
        let d = Action::DeletePortMapping {
            external_port: 1,
            protocol: Protocol::Tcp,
        }
        .body(ST);
        assert!(d.contains("<NewRemoteHost></NewRemoteHost><NewExternalPort>1</NewExternalPort><NewProtocol>TCP</NewProtocol></u:DeletePortMapping>"));
    }

    #[test]
    fn success_responses() {
        let r = r#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:GetExternalIPAddressResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewExternalIPAddress>11.77.0.1</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>"#;
        let o = parse_response(200, r.as_bytes(), "GetExternalIPAddress").unwrap();
        assert_eq!(o.arg("NewExternalIPAddress"), Some("11.77.0.1"));
        let add = r#"<s:Envelope xmlns:s="x"><s:Body><u:AddPortMappingResponse xmlns:u="y"/></s:Body></s:Envelope>"#;
        assert_eq!(
            parse_response(200, add.as_bytes(), "AddPortMapping").unwrap(),
            Outcome::Ok(vec![])
        );
        let any = "<s:Envelope><s:Body><u:AddAnyPortMappingResponse><NewReservedPort>40001</NewReservedPort><Empty/></u:AddAnyPortMappingResponse></s:Body></s:Envelope>";
        let o = parse_response(200, any.as_bytes(), "AddAnyPortMapping").unwrap();
        assert_eq!(o.arg("NewReservedPort"), Some("40001"));
        assert_eq!(o.arg("Empty"), Some(""));
    }

    #[test]
    fn faults() {
        let f = r#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>725</errorCode><errorDescription>OnlyPermanentLeasesSupported</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>"#;
        assert_eq!(
            parse_response(500, f.as_bytes(), "AddPortMapping").unwrap(),
            Outcome::Fault {
                code: 725,
                description: "OnlyPermanentLeasesSupported".into()
            }
        );
        assert_eq!(fault_name(ERR_CONFLICT), "ConflictInMappingEntry");
    }

    #[test]
    fn malformed_responses() {
        for (status, bad) in [
            (200, "<a/>"),
            (
                200,
                "<s:Envelope><s:Body><u:OtherResponse/></s:Body></s:Envelope>",
            ),
            (500, "<s:Fault><detail/></s:Fault>"),
            (
                500,
                "<s:Fault><UPnPError><errorCode>x</errorCode></UPnPError></s:Fault>",
            ),
            (
                500,
                "<s:Fault><UPnPError><errorCode>99999</errorCode></UPnPError></s:Fault>",
            ),
            (500, "<u:AddPortMappingResponse/>"),
            (200, "<u:AddPortMappingResponse>"),
            (200, ""),
        ] {
            assert!(
                parse_response(status, bad.as_bytes(), "AddPortMapping").is_err(),
                "{bad}"
            );
        }
        assert!(parse_response(200, &[0xc3, 0x28], "X").is_err());
    }

    #[test]
    fn arguments_are_bounded() {
        let many = "<A>1</A>".repeat(100);
        let doc = format!("<XResponse>{many}</XResponse>");
        match parse_response(200, doc.as_bytes(), "X").unwrap() {
            Outcome::Ok(args) => assert_eq!(args.len(), MAX_ARGS),
            Outcome::Fault { .. } => panic!("fault"),
        }
    }
}
