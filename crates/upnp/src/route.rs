//! The default IPv4 gateway from Linux's `/proc/net/route` (where NAT-PMP and PCP
//! requests go unless a gateway is configured).

use std::net::Ipv4Addr;

/// The largest route table we read (a host has a handful of routes; this is 500+).
pub const MAX_ROUTE_FILE: usize = 64 * 1024;

/// The gateway of the default route (destination 0.0.0.0/0, flags UP and GATEWAY) with the
/// lowest metric, from the text of `/proc/net/route`. Lines that do not parse are skipped.
pub fn default_gateway(table: &str) -> Option<Ipv4Addr> {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    let mut best: Option<(u32, Ipv4Addr)> = None;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(dest), Some(gw), Some(flags), Some(metric), Some(mask)) = (
            fields.get(1),
            fields.get(2),
            fields.get(3),
            fields.get(6),
            fields.get(7),
        ) else {
            continue;
        };
        let (Ok(dest), Ok(gw), Ok(flags), Ok(metric), Ok(mask)) = (
            u32::from_str_radix(dest, 16),
            u32::from_str_radix(gw, 16),
            u32::from_str_radix(flags, 16),
            metric.parse::<u32>(),
            u32::from_str_radix(mask, 16),
        ) else {
            continue;
        };
        if dest != 0 || mask != 0 || flags & (RTF_UP | RTF_GATEWAY) != RTF_UP | RTF_GATEWAY {
            continue;
        }
        // The kernel prints the address in host byte order of a little-endian read.
        let gw = Ipv4Addr::from(gw.to_le_bytes());
        if best.is_none_or(|(m, _)| metric < m) {
            best = Some((metric, gw));
        }
    }
    best.map(|(_, gw)| gw)
}

/// Reads `/proc/net/route` and returns the default gateway (None off Linux or without a
/// default route).
pub fn system_default_gateway() -> Option<Ipv4Addr> {
    let text = std::fs::read_to_string("/proc/net/route").ok()?;
    if text.len() > MAX_ROUTE_FILE {
        return None;
    }
    default_gateway(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_default_route() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t014DA8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
eth0\t004DA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
wlan0\t00000000\t0100000A\t0003\t0\t0\t50\t00000000\t0\t0\t0\n";
        assert_eq!(default_gateway(table), Some(Ipv4Addr::new(10, 0, 0, 1)));
        let no_default = "Iface\tDestination\tGateway\n\
eth0\t004DA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(default_gateway(no_default), None);
        assert_eq!(default_gateway(""), None);
        assert_eq!(default_gateway("h\nx y z\n\t\t\t\n"), None);
        // Down routes are not used.
        let down = "h\neth0\t00000000\t014DA8C0\t0002\t0\t0\t100\t00000000\t0\t0\t0\n";
        assert_eq!(default_gateway(down), None);
    }
}
