//! `/ipns/` records (ipfs/specs `ipns/ipns-record.md`): verification, selection and creation.
//!
//! A record is an `IpnsEntry` protobuf whose `data` field is a DAG-CBOR map (`Value`,
//! `Validity`, `ValidityType`, `Sequence`, `TTL`) signed in `signatureV2` over
//! `"ipns-signature:" ‖ data`. The key is `/ipns/<binary peer id>`; the public key is the
//! `pubKey` field or, for inlined keys (Ed25519), the peer id itself.
//!
//! Only the subset of CBOR that IPNS uses is decoded (unsigned integers, byte and text
//! strings, maps, and skipping anything else), with a depth limit; the record size is
//! checked first (10 KiB, the spec's limit).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lp2p_core::{Keypair, PeerId, PublicKey};
use prost::Message as _;

use super::{InvalidRecord, Validator};

/// The largest record accepted, as the spec requires implementations to support (and
/// allows them to refuse beyond).
pub const MAX_RECORD_SIZE: usize = 10 * 1024;

/// Nesting accepted when skipping unknown CBOR fields.
const MAX_CBOR_DEPTH: usize = 16;

/// What is signed: this prefix, then the CBOR `data`.
const SIGNATURE_PREFIX: &[u8] = b"ipns-signature:";

/// The `IpnsEntry` protobuf.
#[derive(Clone, PartialEq, prost::Message)]
struct IpnsEntry {
    #[prost(bytes = "vec", optional, tag = "1")]
    value: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    signature_v1: Option<Vec<u8>>,
    #[prost(int32, optional, tag = "3")]
    validity_type: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "4")]
    validity: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "5")]
    sequence: Option<u64>,
    #[prost(uint64, optional, tag = "6")]
    ttl: Option<u64>,
    #[prost(bytes = "vec", optional, tag = "7")]
    pub_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "8")]
    signature_v2: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "9")]
    data: Option<Vec<u8>>,
}

/// A verified record's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpnsRecord {
    /// The path the name points at (e.g. `/ipfs/bafy...`).
    pub value: Vec<u8>,
    /// The version (higher wins).
    pub sequence: u64,
    /// The cache hint, in nanoseconds.
    pub ttl_nanos: u64,
    /// The end of validity (RFC 3339 text as signed).
    pub validity: Vec<u8>,
    /// The end of validity as time since the Unix epoch.
    pub eol: Duration,
}

impl IpnsRecord {
    /// Parses and verifies `bytes` as the record of `name` (valid at `now`).
    pub fn verify(name: &PeerId, bytes: &[u8], now: SystemTime) -> Result<Self, InvalidRecord> {
        if bytes.len() > MAX_RECORD_SIZE {
            return Err(InvalidRecord::new(format!(
                "IPNS record of {} bytes is over the {MAX_RECORD_SIZE}-byte limit",
                bytes.len()
            )));
        }
        let entry = IpnsEntry::decode(bytes)
            .map_err(|e| InvalidRecord::new(format!("not an IpnsEntry protobuf: {e}")))?;
        let (Some(signature), Some(data)) = (
            entry.signature_v2.as_deref().filter(|s| !s.is_empty()),
            entry.data.as_deref().filter(|d| !d.is_empty()),
        ) else {
            return Err(InvalidRecord::new(
                "IPNS record without signatureV2 or data",
            ));
        };
        let public = match entry.pub_key.as_deref() {
            Some(raw) => {
                let key = PublicKey::try_decode_protobuf(raw)
                    .map_err(|e| InvalidRecord::new(format!("bad IPNS pubKey: {e}")))?;
                if key.to_peer_id() != *name {
                    return Err(InvalidRecord::new(
                        "the IPNS pubKey does not match the name",
                    ));
                }
                key
            }
            None => lp2p_peerstore::public_key_from_peer_id(name).ok_or_else(|| {
                InvalidRecord::new("no pubKey and the name does not inline its key")
            })?,
        };
        let mut signed = Vec::with_capacity(SIGNATURE_PREFIX.len() + data.len());
        signed.extend_from_slice(SIGNATURE_PREFIX);
        signed.extend_from_slice(data);
        if !public.verify(&signed, signature) {
            return Err(InvalidRecord::new("bad IPNS signatureV2"));
        }
        let fields = Fields::parse(data)?;
        let record = IpnsRecord {
            value: fields.value.ok_or_else(|| missing("Value"))?,
            sequence: fields.sequence.ok_or_else(|| missing("Sequence"))?,
            ttl_nanos: fields.ttl.ok_or_else(|| missing("TTL"))?,
            validity: fields.validity.clone().ok_or_else(|| missing("Validity"))?,
            eol: Duration::ZERO,
        };
        let validity_type = fields
            .validity_type
            .ok_or_else(|| missing("ValidityType"))?;
        if entry.signature_v1.is_some() || entry.value.is_some() {
            let same = entry.value.as_deref() == Some(&record.value[..])
                && entry.validity.as_deref() == Some(&record.validity[..])
                && entry.validity_type.and_then(|t| u64::try_from(t).ok()) == Some(validity_type)
                && entry.sequence == Some(record.sequence)
                && entry.ttl == Some(record.ttl_nanos);
            if !same {
                return Err(InvalidRecord::new(
                    "the IPNS V1 fields differ from the signed data",
                ));
            }
        }
        if validity_type != 0 {
            return Err(InvalidRecord::new(format!(
                "unsupported IPNS ValidityType {validity_type}"
            )));
        }
        let eol = parse_rfc3339(&record.validity)
            .ok_or_else(|| InvalidRecord::new("IPNS Validity is not an RFC 3339 time"))?;
        let now = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        if eol <= now {
            return Err(InvalidRecord::new("the IPNS record has expired"));
        }
        Ok(IpnsRecord { eol, ..record })
    }

    /// Creates a V2 record (no V1 fields; no `pubKey` when the key is inlined in the name)
    /// pointing at `value`, valid until `eol`.
    pub fn create(
        keypair: &Keypair,
        value: &[u8],
        sequence: u64,
        eol: SystemTime,
        ttl: Duration,
    ) -> Result<Vec<u8>, InvalidRecord> {
        let since = eol
            .duration_since(UNIX_EPOCH)
            .map_err(|_| InvalidRecord::new("an IPNS EOL before 1970"))?;
        let validity = format_rfc3339(since).into_bytes();
        let ttl = u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX);
        // DAG-CBOR map order: shorter keys first, then bytewise.
        let mut data = vec![0xa5];
        cbor_text(&mut data, "TTL");
        cbor_head(&mut data, 0, ttl);
        cbor_text(&mut data, "Value");
        cbor_head(&mut data, 2, value.len() as u64);
        data.extend_from_slice(value);
        cbor_text(&mut data, "Sequence");
        cbor_head(&mut data, 0, sequence);
        cbor_text(&mut data, "Validity");
        cbor_head(&mut data, 2, validity.len() as u64);
        data.extend_from_slice(&validity);
        cbor_text(&mut data, "ValidityType");
        cbor_head(&mut data, 0, 0);
        let mut signed = SIGNATURE_PREFIX.to_vec();
        signed.extend_from_slice(&data);
        let signature = keypair
            .sign(&signed)
            .map_err(|e| InvalidRecord::new(format!("signing failed: {e}")))?;
        let public = keypair.public();
        let inlined = lp2p_peerstore::public_key_from_peer_id(&public.to_peer_id()).is_some();
        let entry = IpnsEntry {
            pub_key: (!inlined).then(|| public.encode_protobuf()),
            signature_v2: Some(signature),
            data: Some(data),
            ..IpnsEntry::default()
        };
        Ok(entry.encode_to_vec())
    }
}

/// The record key of an IPNS name: `/ipns/` ‖ the binary peer id.
pub fn ipns_key(name: &PeerId) -> Vec<u8> {
    let mut key = b"/ipns/".to_vec();
    key.extend(name.to_bytes());
    key
}

fn missing(field: &str) -> InvalidRecord {
    InvalidRecord::new(format!("IPNS data without {field}"))
}

/// Validates `/ipns/` records; selects the highest sequence, then the latest EOL.
#[derive(Clone)]
pub struct IpnsValidator {
    clock: Arc<dyn Fn() -> SystemTime + Send + Sync>,
}

impl fmt::Debug for IpnsValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpnsValidator").finish_non_exhaustive()
    }
}

impl Default for IpnsValidator {
    /// Checks expiry against the system's wall clock.
    fn default() -> Self {
        IpnsValidator::with_clock(SystemTime::now)
    }
}

impl IpnsValidator {
    /// Checks expiry against `clock` (wall time: IPNS validity is an absolute date).
    pub fn with_clock(clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        IpnsValidator {
            clock: Arc::new(clock),
        }
    }

    fn parse(&self, key: &[u8], value: &[u8]) -> Result<IpnsRecord, InvalidRecord> {
        let id = key
            .strip_prefix(b"/ipns/")
            .ok_or_else(|| InvalidRecord::new("an /ipns/ key must start with /ipns/"))?;
        let name = PeerId::from_bytes(id)
            .map_err(|_| InvalidRecord::new("an /ipns/ key must end in a binary peer id"))?;
        IpnsRecord::verify(&name, value, (self.clock)())
    }
}

impl Validator for IpnsValidator {
    fn validate(&self, key: &[u8], value: &[u8]) -> Result<(), InvalidRecord> {
        self.parse(key, value).map(|_| ())
    }

    fn select(&self, key: &[u8], values: &[&[u8]]) -> usize {
        let mut best: Option<(usize, u64, Duration)> = None;
        for (i, value) in values.iter().enumerate() {
            let Ok(r) = self.parse(key, value) else {
                continue;
            };
            if best.is_none_or(|(_, seq, eol)| (r.sequence, r.eol) > (seq, eol)) {
                best = Some((i, r.sequence, r.eol));
            }
        }
        best.map_or(0, |(i, _, _)| i)
    }
}

/// The fields of the `data` map IPNS defines.
#[derive(Default)]
struct Fields {
    value: Option<Vec<u8>>,
    validity: Option<Vec<u8>>,
    validity_type: Option<u64>,
    sequence: Option<u64>,
    ttl: Option<u64>,
}

impl Fields {
    fn parse(data: &[u8]) -> Result<Fields, InvalidRecord> {
        let bad = |what: &str| InvalidRecord::new(format!("IPNS data: {what}"));
        let mut r = Cbor {
            bytes: data,
            pos: 0,
        };
        let (major, entries) = r.head().ok_or_else(|| bad("truncated"))?;
        if major != 5 {
            return Err(bad("not a map"));
        }
        let mut f = Fields::default();
        for _ in 0..entries {
            let (major, len) = r.head().ok_or_else(|| bad("truncated key"))?;
            if major != 3 {
                return Err(bad("a map key is not text"));
            }
            let key = r.take(len).ok_or_else(|| bad("truncated key"))?.to_vec();
            match &key[..] {
                b"Value" => {
                    f.value = Some(r.bytes_value().ok_or_else(|| bad("Value"))?);
                }
                b"Validity" => {
                    f.validity = Some(r.bytes_value().ok_or_else(|| bad("Validity"))?);
                }
                b"ValidityType" => {
                    f.validity_type = Some(r.uint().ok_or_else(|| bad("ValidityType"))?);
                }
                b"Sequence" => f.sequence = Some(r.uint().ok_or_else(|| bad("Sequence"))?),
                b"TTL" => f.ttl = Some(r.uint().ok_or_else(|| bad("TTL"))?),
                _ => r.skip(0).ok_or_else(|| bad("malformed extra field"))?,
            }
        }
        if r.pos != data.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(f)
    }
}

/// A cursor over CBOR bytes; every read is checked.
struct Cbor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cbor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos = self.pos.checked_add(1)?;
        Some(b)
    }

    fn take(&mut self, len: u64) -> Option<&[u8]> {
        let end = self.pos.checked_add(usize::try_from(len).ok()?)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// A major type and its argument (definite lengths only).
    fn head(&mut self) -> Option<(u8, u64)> {
        let first = self.byte()?;
        let (major, info) = (first >> 5, first & 0x1f);
        let arg = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.byte()?),
            25 => u64::from(u16::from_be_bytes(self.take(2)?.try_into().ok()?)),
            26 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().ok()?)),
            27 => u64::from_be_bytes(self.take(8)?.try_into().ok()?),
            _ => return None,
        };
        Some((major, arg))
    }

    fn uint(&mut self) -> Option<u64> {
        match self.head()? {
            (0, v) => Some(v),
            _ => None,
        }
    }

    fn bytes_value(&mut self) -> Option<Vec<u8>> {
        match self.head()? {
            (2, len) => self.take(len).map(<[u8]>::to_vec),
            _ => None,
        }
    }

    /// Skips one data item.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_CBOR_DEPTH {
            return None;
        }
        let (major, arg) = self.head()?;
        match major {
            0 | 1 | 7 => Some(()),
            2 | 3 => self.take(arg).map(|_| ()),
            4 => (0..arg).try_for_each(|_| self.skip(depth + 1)),
            5 => (0..arg).try_for_each(|_| {
                self.skip(depth + 1)?;
                self.skip(depth + 1)
            }),
            6 => self.skip(depth + 1),
            _ => None,
        }
    }
}

fn cbor_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    // Truncations below are guarded by the ranges.
    #[allow(clippy::cast_possible_truncation)]
    match arg {
        0..=23 => out.push(m | arg as u8),
        24..=0xff => out.extend([m | 0x18, arg as u8]),
        0x100..=0xffff => {
            out.push(m | 0x19);
            out.extend((arg as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 0x1a);
            out.extend((arg as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 0x1b);
            out.extend(arg.to_be_bytes());
        }
    }
}

fn cbor_text(out: &mut Vec<u8>, text: &str) {
    cbor_head(out, 3, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// Days from 1970-01-01 to the given civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to time since the Unix epoch (`None`
/// before 1970 or when malformed).
fn parse_rfc3339(text: &[u8]) -> Option<Duration> {
    let s = std::str::from_utf8(text).ok()?;
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let b = s.as_bytes();
    if b.len() < 20
        || b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't'))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = s.get(19..)?;
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        for (i, d) in frac.bytes().take(digits).enumerate() {
            if i < 9 {
                nanos = nanos * 10 + u32::from(d - b'0');
            }
        }
        for _ in digits..9 {
            nanos *= 10;
        }
        rest = frac.get(digits..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        tz => {
            let sign = match tz.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if tz.len() != 6 || tz.as_bytes().get(3) != Some(&b':') {
                return None;
            }
            let h: i64 = tz.get(1..3)?.parse().ok()?;
            let m: i64 = tz.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(Duration::new(u64::try_from(secs).ok()?, nanos))
}

/// Formats time since the Unix epoch as RFC 3339 with nanoseconds, as go-ipns does.
fn format_rfc3339(since: Duration) -> String {
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX / 2);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00Z"), Some(Duration::ZERO));
        assert_eq!(
            parse_rfc3339(b"1970-01-01T00:00:00.000000001Z"),
            Some(Duration::new(0, 1))
        );
        assert_eq!(
            parse_rfc3339(b"2023-03-01T12:30:15.5+01:00"),
            Some(Duration::new(1_677_670_215, 500_000_000))
        );
        for bad in [
            &b"2023-13-01T00:00:00Z"[..],
            b"2023-03-01 00:00:00Z",
            b"2023-03-01T00:00:00",
            b"2023-03-01T00:00:00.Z",
            b"1969-12-31T23:59:59Z",
            b"\xff",
            b"",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
        let t = Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(format_rfc3339(t), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(parse_rfc3339(format_rfc3339(t).as_bytes()), Some(t));
    }

    #[test]
    fn created_records_verify_and_select_by_sequence() {
        let key = Keypair::generate_ed25519();
        let name = key.public().to_peer_id();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let v1 =
            IpnsRecord::create(&key, b"/ipfs/a", 1, now + DAY, Duration::from_secs(300)).unwrap();
        let v2 =
            IpnsRecord::create(&key, b"/ipfs/b", 2, now + DAY, Duration::from_secs(300)).unwrap();
        let r = IpnsRecord::verify(&name, &v2, now).unwrap();
        assert_eq!(r.value, b"/ipfs/b");
        assert_eq!(r.sequence, 2);
        assert_eq!(r.ttl_nanos, 300_000_000_000);
        let v = IpnsValidator::with_clock(move || now);
        let k = ipns_key(&name);
        v.validate(&k, &v1).unwrap();
        assert_eq!(v.select(&k, &[&v1, &v2]), 1);
        assert_eq!(v.select(&k, &[&v2, &v1]), 0);
        // Expired.
        assert!(IpnsRecord::verify(&name, &v1, now + 2 * DAY).is_err());
        // Another name.
        let other = Keypair::generate_ed25519().public().to_peer_id();
        assert!(IpnsRecord::verify(&other, &v1, now).is_err());
    }

    #[test]
    fn tampered_records_fail() {
        let key = Keypair::generate_ed25519();
        let name = key.public().to_peer_id();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let good = IpnsRecord::create(&key, b"/ipfs/a", 1, now + DAY, Duration::ZERO).unwrap();
        let mut entry = IpnsEntry::decode(&good[..]).unwrap();
        // Data changed after signing.
        let mut bad = entry.clone();
        if let Some(d) = bad.data.as_mut() {
            let last = d.len() - 1;
            d[last] ^= 1;
        }
        assert!(IpnsRecord::verify(&name, &bad.encode_to_vec(), now).is_err());
        // V1 fields that disagree with the signed data.
        entry.value = Some(b"/ipfs/other".to_vec());
        entry.signature_v1 = Some(vec![1]);
        assert!(IpnsRecord::verify(&name, &entry.encode_to_vec(), now).is_err());
        // No signature.
        let bare = IpnsEntry {
            data: entry.data.clone(),
            ..IpnsEntry::default()
        };
        assert!(IpnsRecord::verify(&name, &bare.encode_to_vec(), now).is_err());
        // Oversized, junk.
        assert!(IpnsRecord::verify(&name, &vec![0; MAX_RECORD_SIZE + 1], now).is_err());
        assert!(IpnsRecord::verify(&name, b"\x0a\xff", now).is_err());
    }

    #[test]
    fn cbor_reader_refuses_malformed_data() {
        for bad in [
            &[0x80][..],                           // an array, not a map
            &[0xa1, 0x01, 0x02],                   // non-text key
            &[0xa1, 0x63, b'T', b'T'],             // truncated key
            &[0xa1, 0x63, b'T', b'T', b'L', 0x41], // TTL of the wrong type
            &[0xbf],                               // indefinite length
            &[0xa0, 0x00],                         // trailing bytes
        ] {
            assert!(Fields::parse(bad).is_err(), "{bad:?}");
        }
        // Unknown fields are skipped, however nested (within the depth limit).
        let mut data = vec![0xa1];
        cbor_text(&mut data, "_x");
        data.extend([0x81, 0xa1, 0x61, b'a', 0xc2, 0x41, 0x00]);
        assert!(Fields::parse(&data).is_ok());
        let mut deep = vec![0xa1];
        cbor_text(&mut deep, "_x");
        deep.extend(std::iter::repeat_n(0x81, 40));
        deep.push(0x00);
        assert!(Fields::parse(&deep).is_err());
    }
}
