//! `dnsaddr` TXT records (multiformats `protocols/DNSADDR.md`): `dnsaddr=<multiaddr>`.

use lp2p_core::Multiaddr;

use crate::DnsError;

/// The label prepended to a `/dnsaddr` name for its TXT lookup.
pub const DNSADDR_PREFIX: &str = "_dnsaddr.";

/// The text every `dnsaddr` record starts with.
pub const TXT_PREFIX: &str = "dnsaddr=";

/// Longest TXT record we look at: 4 KiB. A multiaddr with a peer id and two certificate
/// hashes is about 250 characters; the TXT record of one DNS message cannot exceed 64 KiB
/// anyway, this only keeps a hostile one from costing a multiaddr parse of that size.
pub const MAX_TXT_LEN: usize = 4096;

/// Parses one TXT record given as its character-strings.
///
/// The strings are joined first: DNS limits each to 255 bytes, so a long multiaddr is
/// published split across several (as go-libp2p reads them; rust-libp2p 0.57 reads only
/// the first string and so misses such records).
pub fn parse_txt<S: AsRef<[u8]>>(strings: &[S]) -> Result<Multiaddr, DnsError> {
    let len: usize = strings.iter().map(|s| s.as_ref().len()).sum();
    if len > MAX_TXT_LEN {
        return Err(DnsError::InvalidTxt(format!(
            "{len} bytes, more than the {MAX_TXT_LEN} allowed"
        )));
    }
    let mut joined = Vec::with_capacity(len);
    for s in strings {
        joined.extend_from_slice(s.as_ref());
    }
    let text =
        std::str::from_utf8(&joined).map_err(|_| DnsError::InvalidTxt("not UTF-8".to_owned()))?;
    let addr = text
        .strip_prefix(TXT_PREFIX)
        .ok_or_else(|| DnsError::InvalidTxt(format!("{text:?} does not start with dnsaddr=")))?;
    addr.parse()
        .map_err(|e| DnsError::InvalidTxt(format!("{addr:?} is not a multiaddr: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        let a = "/ip4/147.75.69.143/tcp/4001/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN";
        assert_eq!(
            parse_txt(&[format!("dnsaddr={a}")]).unwrap(),
            a.parse::<Multiaddr>().unwrap()
        );
        // Split across character-strings.
        let (x, y) = a.split_at(20);
        assert_eq!(
            parse_txt(&[format!("dnsaddr={x}"), y.to_owned()]).unwrap(),
            a.parse::<Multiaddr>().unwrap()
        );
        for (bad, why) in [
            (&["v=spf1 -all"][..], "does not start"),
            (&["dnsaddr=/ip4/1.2.3"], "not a multiaddr"),
            (&["dnsaddr=/nope/1"], "not a multiaddr"),
            (&[""], "does not start"),
        ] {
            let err = parse_txt(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(
            parse_txt(&[[0xFFu8, 0xFE]])
                .unwrap_err()
                .to_string()
                .contains("UTF-8")
        );
        let long = vec!["x".repeat(255); 20];
        assert!(
            parse_txt(&long)
                .unwrap_err()
                .to_string()
                .contains("more than")
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(strings in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80), 0..4)) {
            let _ = parse_txt(&strings);
        }
    }
}
