//! A DNS server on 127.0.0.1 for tests (feature `test-server`): UDP and TCP on one port,
//! answering from a zone the test fills, with the misbehaviours a resolver must survive.
//!
//! - A, AAAA, TXT and CNAME records (CNAME chains are followed in the answer, as a
//!   recursive server does, each name once, so a loop yields a chain that never ends in a
//!   record);
//! - NXDOMAIN for unknown names, an empty answer for known names without the type asked;
//! - slow names, answered after a delay (longer than the client's timeout to test it);
//! - truncation: a UDP answer longer than [`TestDnsServer::set_udp_limit`] (512 bytes by
//!   default) goes out empty with the TC bit, so the client must retry over TCP;
//! - huge answers: as many records as fit in one message (64 KiB over TCP).
//!
//! Blocking threads, no runtime: usable from async-std, smol and tokio tests alike. The
//! threads stop when the server is dropped.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// TTL of records added without one: 300 s.
pub const DEFAULT_TEST_TTL: u32 = 300;

/// How often the server threads check whether they should stop.
const POLL: Duration = Duration::from_millis(20);

/// A record in the test zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestRecord {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A TXT record, as its character-strings.
    Txt(Vec<Vec<u8>>),
    /// An alias.
    Cname(String),
}

impl TestRecord {
    fn record_type(&self) -> RecordType {
        match self {
            TestRecord::A(_) => RecordType::A,
            TestRecord::Aaaa(_) => RecordType::AAAA,
            TestRecord::Txt(_) => RecordType::TXT,
            TestRecord::Cname(_) => RecordType::CNAME,
        }
    }

    fn rdata(&self) -> Option<RData> {
        Some(match self {
            TestRecord::A(ip) => RData::A(A(*ip)),
            TestRecord::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
            TestRecord::Txt(strings) => {
                RData::TXT(TXT::from_bytes(strings.iter().map(Vec::as_slice).collect()))
            }
            TestRecord::Cname(target) => RData::CNAME(CNAME(Name::from_ascii(fqdn(target)).ok()?)),
        })
    }
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn fqdn(name: &str) -> String {
    format!("{}.", key(name))
}

#[derive(Debug)]
struct Zone {
    records: Vec<(String, TestRecord, u32)>,
    slow: HashMap<String, Duration>,
    udp_limit: usize,
    queries: HashMap<String, usize>,
}

/// The server. See the module documentation.
#[derive(Debug)]
pub struct TestDnsServer {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn lock(zone: &Mutex<Zone>) -> MutexGuard<'_, Zone> {
    zone.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl TestDnsServer {
    /// Binds UDP and TCP on one free port of 127.0.0.1 and starts answering.
    pub fn start() -> io::Result<TestDnsServer> {
        let (udp, tcp) = bind_pair()?;
        let addr = udp.local_addr()?;
        let zone = Arc::new(Mutex::new(Zone {
            records: Vec::new(),
            slow: HashMap::new(),
            udp_limit: 512,
            queries: HashMap::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        udp.set_read_timeout(Some(POLL))?;
        tcp.set_nonblocking(true)?;
        let threads = vec![
            {
                let (zone, stop) = (zone.clone(), stop.clone());
                std::thread::spawn(move || serve_udp(&udp, &zone, &stop))
            },
            {
                let (zone, stop) = (zone.clone(), stop.clone());
                std::thread::spawn(move || serve_tcp(&tcp, &zone, &stop))
            },
        ];
        Ok(TestDnsServer {
            addr,
            zone,
            stop,
            threads,
        })
    }

    /// The address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds a record with the default TTL.
    pub fn add(&self, name: &str, record: TestRecord) {
        self.add_with_ttl(name, record, DEFAULT_TEST_TTL);
    }

    /// Adds a record.
    pub fn add_with_ttl(&self, name: &str, record: TestRecord, ttl: u32) {
        lock(&self.zone).records.push((key(name), record, ttl));
    }

    /// Adds `dnsaddr=<addr>` as a TXT record at `_dnsaddr.<name>`.
    pub fn add_dnsaddr(&self, name: &str, addr: &str) {
        self.add(
            &format!("_dnsaddr.{name}"),
            TestRecord::Txt(vec![format!("dnsaddr={addr}").into_bytes()]),
        );
    }

    /// Answers queries for `name` only after `delay`.
    pub fn set_slow(&self, name: &str, delay: Duration) {
        lock(&self.zone).slow.insert(key(name), delay);
    }

    /// UDP answers longer than `limit` bytes are sent truncated (empty, TC bit set).
    pub fn set_udp_limit(&self, limit: usize) {
        lock(&self.zone).udp_limit = limit;
    }

    /// How many queries (UDP and TCP) asked about `name`.
    pub fn queries_for(&self, name: &str) -> usize {
        lock(&self.zone)
            .queries
            .get(&key(name))
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for TestDnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn bind_pair() -> io::Result<(UdpSocket, TcpListener)> {
    let mut last = io::Error::other("no port found");
    // The UDP port picked by the system may be taken for TCP; try a few.
    for _ in 0..32 {
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        match TcpListener::bind(udp.local_addr()?) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The answer to `request`, or `None` for something that is not a query.
fn answer(request: &[u8], zone: &Mutex<Zone>) -> Option<(Message, Duration)> {
    let request = Message::from_vec(request).ok()?;
    let query = request.queries.first()?.clone();
    let name = key(&query.name.to_ascii());
    let mut response = Message::response(request.metadata.id, OpCode::Query);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.authoritative = true;
    response.add_query(query.clone());
    let mut zone = lock(zone);
    *zone.queries.entry(name.clone()).or_default() += 1;
    let delay = zone.slow.get(&name).copied().unwrap_or_default();
    if !zone.records.iter().any(|(n, _, _)| *n == name) {
        response.metadata.response_code = ResponseCode::NXDomain;
        return Some((response, delay));
    }
    // Follow CNAMEs as a recursive server would, each name once.
    let mut current = name;
    let mut seen = Vec::new();
    loop {
        seen.push(current.clone());
        let owner = Name::from_ascii(fqdn(&current)).ok()?;
        let matching: Vec<&(String, TestRecord, u32)> = zone
            .records
            .iter()
            .filter(|(n, r, _)| *n == current && r.record_type() == query.query_type)
            .collect();
        if !matching.is_empty() {
            for (_, record, ttl) in matching {
                response.add_answer(Record::from_rdata(owner.clone(), *ttl, record.rdata()?));
            }
            break;
        }
        let alias = zone.records.iter().find_map(|(n, r, ttl)| match r {
            TestRecord::Cname(target) if *n == current => Some((target.clone(), *ttl)),
            _ => None,
        });
        let Some((target, ttl)) = alias else { break };
        response.add_answer(Record::from_rdata(
            owner,
            ttl,
            TestRecord::Cname(target.clone()).rdata()?,
        ));
        let next = key(&target);
        if seen.contains(&next) {
            break;
        }
        current = next;
    }
    zone.queries.shrink_to_fit();
    Some((response, delay))
}

/// Encodes `response` whole in at most `limit` bytes, dropping answers from the end until
/// it fits (hickory's encoder would otherwise cut it itself and set the TC bit, which over
/// TCP means "give up").
fn encode(mut response: Message, limit: usize) -> Option<Vec<u8>> {
    loop {
        let bytes = response.to_vec().ok()?;
        let truncated = bytes.get(2).is_some_and(|flags| flags & 0x02 != 0);
        if bytes.len() <= limit && !truncated {
            return Some(bytes);
        }
        if response.answers.is_empty() {
            return None;
        }
        let keep = response.answers.len() - response.answers.len().div_ceil(10);
        response.answers.truncate(keep);
    }
}

fn serve_udp(socket: &UdpSocket, zone: &Arc<Mutex<Zone>>, stop: &AtomicBool) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Acquire) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Some((response, delay)) = answer(buf.get(..n).unwrap_or_default(), zone) else {
            continue;
        };
        let limit = lock(zone).udp_limit;
        let bytes = match response.to_vec() {
            Ok(bytes) if bytes.len() <= limit => bytes,
            Ok(_) => {
                let mut truncated = response.truncate();
                truncated.metadata.truncation = true;
                match truncated.to_vec() {
                    Ok(bytes) => bytes,
                    Err(_) => continue,
                }
            }
            Err(_) => continue,
        };
        if delay.is_zero() {
            let _ = socket.send_to(&bytes, from);
        } else if let Ok(socket) = socket.try_clone() {
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let _ = socket.send_to(&bytes, from);
            });
        }
    }
}

fn serve_tcp(listener: &TcpListener, zone: &Arc<Mutex<Zone>>, stop: &Arc<AtomicBool>) {
    let mut connections = Vec::new();
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (zone, stop) = (zone.clone(), stop.clone());
                connections.push(std::thread::spawn(move || {
                    let _ = serve_tcp_connection(stream, &zone, &stop);
                }));
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
    for c in connections {
        let _ = c.join();
    }
}

fn serve_tcp_connection(
    mut stream: TcpStream,
    zone: &Mutex<Zone>,
    stop: &AtomicBool,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL))?;
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Acquire) {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => pending.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        }
        // Each message is prefixed by its length (RFC 1035 section 4.2.2).
        while let [hi, lo, rest @ ..] = pending.as_slice() {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            let Some(request) = rest.get(..len) else {
                break;
            };
            if let Some((response, delay)) = answer(request, zone) {
                std::thread::sleep(delay);
                if let Some(bytes) = encode(response, usize::from(u16::MAX)) {
                    let prefix = u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes();
                    stream.write_all(&prefix)?;
                    stream.write_all(&bytes)?;
                }
            }
            pending.drain(..len + 2);
        }
    }
    Ok(())
}
