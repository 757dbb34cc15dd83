//! A small, bounded XML scanner for the two kinds of documents UPnP needs: the device
//! description (to find the WAN connection service's control URL) and SOAP responses. It
//! reads elements, text, CDATA and the five predefined entities plus character references;
//! it skips comments, processing instructions and the DOCTYPE (never expanding custom
//! entities); it checks that tags nest and stops at [`MAX_DEPTH`]. Namespace prefixes are
//! dropped from element names (`s:Envelope` is `Envelope`).

use crate::UpnpError;

/// Deepest element nesting accepted (descriptions nest about 8 deep).
pub const MAX_DEPTH: usize = 32;
/// Most services read from one description (real ones list 1-10).
pub const MAX_SERVICES: usize = 64;

/// What the scanner reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlEvent<'a> {
    /// An element opens (local name).
    Open(&'a str),
    /// An element closes (local name).
    Close(&'a str),
    /// Text inside the innermost open element (entities decoded, whitespace trimmed; not
    /// reported when empty).
    Text(String),
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// Scans `doc`, calling `on` for each event with the stack of open elements (local names,
/// outermost first). Errors on malformed or too deeply nested XML; never panics.
pub fn scan<'a>(
    doc: &'a str,
    what: &'static str,
    mut on: impl FnMut(&[&'a str], XmlEvent<'a>),
) -> Result<(), UpnpError> {
    let mut stack: Vec<&'a str> = Vec::new();
    let mut rest = doc;
    let mut seen_root = false;
    loop {
        let lt = rest.find('<').unwrap_or(rest.len());
        let (text, after) = rest.split_at(lt);
        let text = text.trim();
        if !text.is_empty() {
            if stack.is_empty() {
                return Err(UpnpError::malformed(what, "text outside the root element"));
            }
            on(&stack, XmlEvent::Text(decode_entities(text, what)?));
        }
        if after.is_empty() {
            break;
        }
        rest = after;
        if let Some(r) = rest.strip_prefix("<?") {
            rest = skip_past(r, "?>", what)?;
        } else if let Some(r) = rest.strip_prefix("<!--") {
            rest = skip_past(r, "-->", what)?;
        } else if let Some(r) = rest.strip_prefix("<![CDATA[") {
            let end = r
                .find("]]>")
                .ok_or_else(|| UpnpError::malformed(what, "unterminated CDATA"))?;
            if stack.is_empty() {
                return Err(UpnpError::malformed(what, "CDATA outside the root element"));
            }
            let (data, r) = r.split_at(end);
            let data = data.trim();
            if !data.is_empty() {
                on(&stack, XmlEvent::Text(data.to_owned()));
            }
            rest = r.get(3..).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix("<!") {
            if r.get(..7)
                .is_some_and(|d| d.eq_ignore_ascii_case("DOCTYPE"))
            {
                // No internal subset: we never expand declared entities.
                let end = r
                    .find('>')
                    .ok_or_else(|| UpnpError::malformed(what, "unterminated DOCTYPE"))?;
                if r.get(..end).is_some_and(|d| d.contains('[')) {
                    return Err(UpnpError::malformed(
                        what,
                        "DOCTYPE with an internal subset",
                    ));
                }
                rest = r.get(end.saturating_add(1)..).unwrap_or("");
            } else {
                return Err(UpnpError::malformed(what, "unknown <! construct"));
            }
        } else if let Some(r) = rest.strip_prefix("</") {
            let end = r
                .find('>')
                .ok_or_else(|| UpnpError::malformed(what, "unterminated end tag"))?;
            let name = local(r.get(..end).unwrap_or("").trim());
            match stack.pop() {
                Some(open) if open == name => {}
                _ => {
                    return Err(UpnpError::malformed(
                        what,
                        format!("mismatched </{name:.40}>"),
                    ));
                }
            }
            on(&stack, XmlEvent::Close(name));
            rest = r.get(end.saturating_add(1)..).unwrap_or("");
        } else {
            let r = rest.get(1..).unwrap_or("");
            let name_end = r
                .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
                .ok_or_else(|| UpnpError::malformed(what, "unterminated start tag"))?;
            let raw_name = r.get(..name_end).unwrap_or("");
            if raw_name.is_empty() || raw_name.contains(['<', '"', '\'', '=']) {
                return Err(UpnpError::malformed(what, "bad element name"));
            }
            let name = local(raw_name);
            let (self_closing, after_tag) = end_of_tag(r.get(name_end..).unwrap_or(""), what)?;
            if stack.is_empty() && seen_root {
                return Err(UpnpError::malformed(what, "second root element"));
            }
            seen_root = true;
            if stack.len() >= MAX_DEPTH {
                return Err(UpnpError::TooLarge {
                    what: "XML nesting",
                    limit: MAX_DEPTH,
                });
            }
            stack.push(name);
            on(&stack, XmlEvent::Open(name));
            if self_closing {
                stack.pop();
                on(&stack, XmlEvent::Close(name));
            }
            rest = after_tag;
        }
    }
    if !stack.is_empty() {
        return Err(UpnpError::malformed(what, "unclosed elements at the end"));
    }
    if !seen_root {
        return Err(UpnpError::malformed(what, "no root element"));
    }
    Ok(())
}

fn skip_past<'a>(s: &'a str, end: &str, what: &'static str) -> Result<&'a str, UpnpError> {
    let i = s
        .find(end)
        .ok_or_else(|| UpnpError::malformed(what, format!("missing {end}")))?;
    Ok(s.get(i.saturating_add(end.len())..).unwrap_or(""))
}

/// After an element name: attributes up to `>` (quotes respected). Returns whether the
/// tag closed itself and the text after it.
fn end_of_tag<'a>(s: &'a str, what: &'static str) -> Result<(bool, &'a str), UpnpError> {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '<' => return Err(UpnpError::malformed(what, "< inside a tag")),
            None if c == '>' => {
                return Ok((prev == '/', s.get(i.saturating_add(1)..).unwrap_or("")));
            }
            Some(_) | None => {}
        }
        prev = c;
    }
    Err(UpnpError::malformed(what, "unterminated tag"))
}

/// Decodes `&lt;` `&gt;` `&amp;` `&quot;` `&apos;` and `&#N;` / `&#xH;`.
pub fn decode_entities(s: &str, what: &'static str) -> Result<String, UpnpError> {
    if !s.contains('&') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(rest.get(..i).unwrap_or(""));
        let r = rest.get(i.saturating_add(1)..).unwrap_or("");
        let semi = r
            .find(';')
            .filter(|&n| n <= 10)
            .ok_or_else(|| UpnpError::malformed(what, "unterminated entity"))?;
        let name = r.get(..semi).unwrap_or("");
        let c = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x").or(name.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = name.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| UpnpError::malformed(what, format!("entity &{name:.12};")))?
            }
        };
        out.push(c);
        rest = r.get(semi.saturating_add(1)..).unwrap_or("");
    }
    out.push_str(rest);
    Ok(out)
}

/// Escapes text for an XML element.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A service listed in a device description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// E.g. `urn:schemas-upnp-org:service:WANIPConnection:1`.
    pub service_type: String,
    /// Where SOAP requests go (as written: absolute or relative).
    pub control_url: String,
}

/// What we read from a device description.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Description {
    /// `<URLBase>`, if present (UPnP 1.0 devices).
    pub url_base: Option<String>,
    /// Every `<service>` with a type and a control URL, in document order.
    pub services: Vec<Service>,
}

/// WAN connection service types, most preferred first: IGDv2's WANIPConnection:2 (it has
/// AddAnyPortMapping), then WANIPConnection:1, then WANPPPConnection:1 (DSL routers).
pub const WAN_SERVICES: [&str; 3] = [
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
];

impl Description {
    /// Parses a device description document.
    pub fn parse(doc: &[u8]) -> Result<Description, UpnpError> {
        const W: &str = "device description";
        let doc = std::str::from_utf8(doc).map_err(|_| UpnpError::malformed(W, "not UTF-8"))?;
        let mut d = Description::default();
        let mut current: Option<(Option<String>, Option<String>)> = None;
        let mut too_many = false;
        scan(doc, W, |stack, ev| match ev {
            XmlEvent::Open("service") => current = Some((None, None)),
            XmlEvent::Close("service") => {
                if let Some((Some(service_type), Some(control_url))) = current.take() {
                    if d.services.len() < MAX_SERVICES {
                        d.services.push(Service {
                            service_type,
                            control_url,
                        });
                    } else {
                        too_many = true;
                    }
                }
            }
            XmlEvent::Text(t) => match stack {
                [.., "service", "serviceType"] => {
                    if let Some(c) = current.as_mut() {
                        c.0 = Some(t);
                    }
                }
                [.., "service", "controlURL"] => {
                    if let Some(c) = current.as_mut() {
                        c.1 = Some(t);
                    }
                }
                [_, "URLBase"] => d.url_base = Some(t),
                _ => {}
            },
            _ => {}
        })?;
        if too_many {
            tracing::debug!(
                limit = MAX_SERVICES,
                "device description lists too many services; kept the first"
            );
        }
        Ok(d)
    }

    /// The WAN connection service to use (see [`WAN_SERVICES`]).
    pub fn wan_service(&self) -> Option<&Service> {
        WAN_SERVICES.iter().find_map(|wanted| {
            self.services
                .iter()
                .find(|s| s.service_type.trim() == *wanted)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// miniupnpd 2.3.1's rootDesc.xml, shortened (the structure kept).
    pub(crate) const MINIUPNPD_DESC: &str = r#"<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<friendlyName>Debian router</friendlyName>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType><serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId><controlURL>/ctl/L3F</controlURL><eventSubURL>/evt/L3F</eventSubURL><SCPDURL>/L3F.xml</SCPDURL></service></serviceList>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType><controlURL>/ctl/CmnIfCfg</controlURL></service></serviceList>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList>
</device></deviceList></device></deviceList><presentationURL>http://192.168.77.1/</presentationURL></device></root>"#;

    #[test]
    fn finds_the_wan_ip_connection() {
        let d = Description::parse(MINIUPNPD_DESC.as_bytes()).unwrap();
        assert_eq!(d.services.len(), 3);
        let s = d.wan_service().unwrap();
        assert_eq!(s.service_type, WAN_SERVICES[1]);
        assert_eq!(s.control_url, "/ctl/IPConn");
        assert_eq!(d.url_base, None);
    }

    #[test]
    fn prefers_v2_then_v1_then_ppp_and_reads_url_base() {
        let doc = r#"<?xml version="1.0"?><!-- a comment --><!DOCTYPE root>
<r:root xmlns:r="x"><URLBase>http://10.0.0.1:1900</URLBase>
<service><serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType><controlURL>/ppp</controlURL></service>
<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><controlURL><![CDATA[/ip2?a=1&b=2]]></controlURL></service>
<service><serviceType> urn:schemas-upnp-org:service:WANIPConnection:1 </serviceType><controlURL>/ip1?a=1&amp;b=&#50;</controlURL><empty/><x a="1>2" b='/'/></service>
</r:root>"#;
        let d = Description::parse(doc.as_bytes()).unwrap();
        assert_eq!(d.url_base.as_deref(), Some("http://10.0.0.1:1900"));
        assert_eq!(d.wan_service().unwrap().control_url, "/ip2?a=1&b=2");
        assert_eq!(d.services[2].control_url, "/ip1?a=1&b=2");
        let only_ppp = "<root><service><serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType><controlURL>/ppp</controlURL></service></root>";
        let d = Description::parse(only_ppp.as_bytes()).unwrap();
        assert_eq!(d.wan_service().unwrap().control_url, "/ppp");
        let none = "<root><service><serviceType>urn:x</serviceType><controlURL>/x</controlURL></service></root>";
        assert!(
            Description::parse(none.as_bytes())
                .unwrap()
                .wan_service()
                .is_none()
        );
    }

    #[test]
    fn malformed_documents_are_errors() {
        for bad in [
            "",
            "text",
            "<a>",
            "<a></b>",
            "<a><b></a></b>",
            "<a></a><b></b>",
            "<a>&unknown;</a>",
            "<a>&#xFFFFFFFF;</a>",
            "<a>&amp</a>",
            "<a><!-- x </a>",
            "<a><![CDATA[x</a>",
            "<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
            "<a b=\"1></a>",
            "<a <b>></a>",
            "<?xml",
            "<!x><a/>",
            "</a>",
        ] {
            assert!(Description::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(Description::parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(matches!(
            Description::parse(deep.as_bytes()),
            Err(UpnpError::TooLarge { .. })
        ));
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(Description::parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn services_are_bounded() {
        let one = "<service><serviceType>t</serviceType><controlURL>/c</controlURL></service>";
        let doc = format!("<root>{}</root>", one.repeat(MAX_SERVICES + 10));
        assert_eq!(
            Description::parse(doc.as_bytes()).unwrap().services.len(),
            MAX_SERVICES
        );
    }

    #[test]
    fn escape_round_trips() {
        let s = "a<b>&\"c'";
        assert_eq!(decode_entities(&escape(s), "t").unwrap(), s);
    }

    proptest::proptest! {
        #[test]
        fn any_text_scans_without_panic(s in "[<>/!?a-z:&;#x0-9\\[\\]\"' =-]{0,200}") {
            let _ = Description::parse(s.as_bytes());
        }
    }
}
