//! Arbitrary TXT records (lines of the input) as every answer of a `/dnsaddr` resolution,
//! with every A/AAAA lookup answered: the dnsaddr parser never panics and the resolution
//! always ends within its lookup and result bounds, however the records nest or loop.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lp2p_dns::dnsaddr::parse_txt;
use lp2p_dns::{Answer, Limits, QueryKind, Resolution, Step};

fuzz_target!(|data: &[u8]| {
    // Each line a record; a 0x1F byte splits a record into character-strings.
    let records: Vec<Vec<Vec<u8>>> = data
        .split(|b| *b == b'\n')
        .map(|line| line.split(|b| *b == 0x1F).map(<[u8]>::to_vec).collect())
        .collect();
    for record in &records {
        let _ = parse_txt(record);
    }
    let limits = Limits {
        max_lookups: 8,
        max_txt_records: 4,
        max_results: 16,
    };
    let start = "/dnsaddr/fuzz.test".parse().expect("valid multiaddr");
    let mut resolution = Resolution::new(start, limits);
    let mut lookups = 0;
    loop {
        match resolution.poll() {
            Step::Lookup(query) => {
                lookups += 1;
                assert!(lookups <= limits.max_lookups, "lookup bound");
                let answer = match query.kind {
                    QueryKind::Txt => Answer::Txt(records.clone()),
                    _ => Answer::Ips(vec![
                        "192.0.2.1".parse().expect("ip"),
                        "::1".parse().expect("ip"),
                    ]),
                };
                resolution.on_answer(Ok(answer));
            }
            Step::Done(Ok(addrs)) => {
                assert!(addrs.len() <= limits.max_results);
                break;
            }
            Step::Done(Err(_)) => break,
        }
    }
});
