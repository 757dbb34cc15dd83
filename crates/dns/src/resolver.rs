//! The async shell: drives a [`Resolution`] with hickory lookups and the [`Cache`].

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hickory_net::NetError;
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use lp2p_core::{AddressResolver, Error, Multiaddr, RuntimeHandle};

use crate::DnsError;
use crate::cache::Cache;
use crate::config::{DnsConfig, Servers};
use crate::resolution::{Answer, Query, QueryKind, Resolution, Step, has_name};
use crate::runtime::AsyncIoProvider;

type Hickory = hickory_resolver::Resolver<AsyncIoProvider>;

/// CNAMEs followed when explaining a "no record" answer: 8, hickory's own chain limit.
const MAX_CNAME_CHAIN: usize = 8;

/// Resolves `/dns`, `/dns4`, `/dns6` and `/dnsaddr` addresses (an
/// [`AddressResolver`] for the swarm).
///
/// Cheap to clone; clones share the resolver, its connections and its cache.
#[derive(Clone)]
pub struct DnsResolver {
    inner: Arc<Inner>,
}

struct Inner {
    hickory: Hickory,
    cache: Mutex<Cache>,
    runtime: RuntimeHandle,
    config: DnsConfig,
    servers: Vec<SocketAddr>,
}

impl std::fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsResolver")
            .field("servers", &self.inner.servers)
            .finish_non_exhaustive()
    }
}

fn name_server(addr: SocketAddr) -> NameServerConfig {
    let connection = |protocol| {
        let mut c = ConnectionConfig::new(protocol);
        c.port = addr.port();
        c
    };
    NameServerConfig::new(
        addr.ip(),
        true,
        vec![
            connection(ProtocolConfig::Udp),
            connection(ProtocolConfig::Tcp),
        ],
    )
}

/// The hickory configuration for `config`: the system's (from `system`) or, when that
/// fails or names no server, the fallback servers.
fn setup(
    config: &DnsConfig,
    system: impl FnOnce() -> Result<(ResolverConfig, ResolverOpts), String>,
) -> (ResolverConfig, ResolverOpts) {
    let only = |servers: &[SocketAddr]| {
        let servers = servers.iter().copied().map(name_server).collect();
        ResolverConfig::from_parts(None, Vec::new(), servers)
    };
    match &config.servers {
        Servers::Only(servers) => {
            let mut opts = ResolverOpts::default();
            opts.use_hosts_file = ResolveHosts::Never;
            (only(servers), opts)
        }
        Servers::System => match system() {
            Ok(found) => found,
            Err(why) => {
                tracing::warn!(%why, fallback = ?config.fallback, "no system DNS configuration; asking the fallback servers");
                (only(&config.fallback), ResolverOpts::default())
            }
        },
    }
}

fn servers_of(config: &ResolverConfig) -> Vec<SocketAddr> {
    config
        .name_servers()
        .iter()
        .flat_map(|ns| {
            ns.connections
                .iter()
                .map(move |c| SocketAddr::new(ns.ip, c.port))
        })
        .fold(Vec::new(), |mut all, s| {
            if !all.contains(&s) {
                all.push(s);
            }
            all
        })
}

impl DnsResolver {
    /// A resolver with `config`, running hickory's tasks on `runtime`.
    ///
    /// With [`Servers::System`], a missing or empty system configuration is not an error:
    /// the fallback servers are asked instead (logged at `warn`).
    pub fn new(config: DnsConfig, runtime: RuntimeHandle) -> Result<DnsResolver, DnsError> {
        let (resolver_config, mut opts) = setup(&config, system_config);
        let servers = servers_of(&resolver_config);
        if servers.is_empty() {
            return Err(DnsError::NoServers(
                "the configuration names none and the fallback list is empty".to_owned(),
            ));
        }
        opts.timeout = config.query_timeout;
        opts.attempts = config.attempts.max(1);
        // We cache answers ourselves, by TTL and on lp2p's clock.
        opts.cache_size = 0;
        opts.preserve_intermediates = true;
        let hickory = hickory_resolver::Resolver::builder_with_config(
            resolver_config,
            AsyncIoProvider::new(runtime.clone()),
        )
        .with_options(opts)
        .build()
        .map_err(|e| DnsError::NoServers(e.to_string()))?;
        tracing::debug!(?servers, "DNS resolver ready");
        Ok(DnsResolver {
            inner: Arc::new(Inner {
                hickory,
                cache: Mutex::new(Cache::new(config.cache_entries, config.max_ttl)),
                runtime,
                config,
                servers,
            }),
        })
    }

    /// A resolver with the system's configuration (or the fallback servers), on the
    /// runtime chosen by lp2p-core's features.
    pub fn system() -> Result<DnsResolver, DnsError> {
        DnsResolver::new(DnsConfig::default(), default_runtime()?)
    }

    /// A resolver that asks only `server` (UDP, and TCP for truncated answers).
    pub fn with_server(server: SocketAddr) -> Result<DnsResolver, DnsError> {
        DnsResolver::new(DnsConfig::with_server(server), default_runtime()?)
    }

    /// The servers this resolver asks.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.inner.servers
    }

    /// The configuration.
    pub fn config(&self) -> &DnsConfig {
        &self.inner.config
    }

    /// Forgets every cached answer.
    pub fn clear_cache(&self) {
        if let Ok(mut cache) = self.inner.cache.lock() {
            cache.clear();
        }
    }

    /// Resolves every name in `addr` (see the crate documentation for the rules), within
    /// the resolve timeout.
    pub async fn resolve_addr(&self, addr: &Multiaddr) -> Result<Vec<Multiaddr>, DnsError> {
        let limit = self.inner.config.resolve_timeout;
        let work = async {
            let mut resolution = Resolution::new(addr.clone(), self.inner.config.limits);
            loop {
                match resolution.poll() {
                    Step::Lookup(query) => {
                        let answer = self.lookup(&query).await;
                        resolution.on_answer(answer);
                    }
                    Step::Done(outcome) => return outcome,
                }
            }
        };
        match self.inner.runtime.timeout(limit, work).await {
            Ok(outcome) => outcome,
            Err(_) => Err(DnsError::Deadline {
                addr: addr.clone(),
                after: limit,
            }),
        }
    }

    /// One lookup, from the cache when fresh.
    pub async fn lookup(&self, query: &Query) -> Result<Answer, DnsError> {
        let now = self.inner.runtime.now();
        if let Some(answer) = self
            .inner
            .cache
            .lock()
            .ok()
            .and_then(|mut c| c.get(query, now))
        {
            tracing::trace!(name = %query.name, "DNS answer from the cache");
            return Ok(answer);
        }
        let (answer, ttl) = match query.kind {
            QueryKind::Ip4 => ips(self.records(query, RecordType::A).await?),
            QueryKind::Ip6 => ips(self.records(query, RecordType::AAAA).await?),
            QueryKind::Ip => {
                let (v4, v6) = futures::join!(
                    self.records(query, RecordType::A),
                    self.records(query, RecordType::AAAA)
                );
                match (v4, v6) {
                    (Ok(mut a), Ok(aaaa)) => {
                        a.extend(aaaa);
                        ips(a)
                    }
                    (Ok(a), Err(e)) | (Err(e), Ok(a)) => {
                        tracing::trace!(name = %query.name, %e, "one address family failed");
                        ips(a)
                    }
                    // Report the more telling failure: anything beats "no records".
                    (Err(DnsError::NoRecords { .. }), Err(e)) | (Err(e), Err(_)) => {
                        return Err(match e {
                            DnsError::NoRecords { name, .. } => DnsError::NoRecords {
                                name,
                                kind: QueryKind::Ip.label(),
                            },
                            other => other,
                        });
                    }
                }
            }
            QueryKind::Txt => txts(self.records(query, RecordType::TXT).await?),
        };
        if matches!(&answer, Answer::Ips(v) if v.is_empty())
            || matches!(&answer, Answer::Txt(v) if v.is_empty())
        {
            return Err(DnsError::NoRecords {
                name: query.name.clone(),
                kind: query.kind.label(),
            });
        }
        if let Ok(mut cache) = self.inner.cache.lock() {
            cache.insert(query.clone(), answer.clone(), ttl, now);
        }
        Ok(answer)
    }

    async fn records(
        &self,
        query: &Query,
        record_type: RecordType,
    ) -> Result<Vec<Record>, DnsError> {
        let kind = match record_type {
            RecordType::A => "A",
            RecordType::AAAA => "AAAA",
            _ => "TXT",
        };
        match self
            .inner
            .hickory
            .lookup(query.name.as_str(), record_type)
            .await
        {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter(|r| r.record_type() == record_type)
                .cloned()
                .collect()),
            Err(err) => match classify(&err, &query.name, kind) {
                DnsError::NoRecords { name, kind } => Err(self
                    .cname_loop(&name)
                    .await
                    .unwrap_or(DnsError::NoRecords { name, kind })),
                other => Err(other),
            },
        }
    }

    /// When a name has no record, checks whether it is an alias chain that loops, to say
    /// so instead of "no record".
    async fn cname_loop(&self, name: &str) -> Option<DnsError> {
        let mut chain = vec![name.trim_end_matches('.').to_ascii_lowercase()];
        for _ in 0..MAX_CNAME_CHAIN {
            let current = chain.last()?.clone();
            let lookup = self
                .inner
                .hickory
                .lookup(current.as_str(), RecordType::CNAME)
                .await
                .ok()?;
            let target = lookup.answers().iter().find_map(|r| match &r.data {
                RData::CNAME(target) => Some(
                    target
                        .0
                        .to_ascii()
                        .trim_end_matches('.')
                        .to_ascii_lowercase(),
                ),
                _ => None,
            })?;
            let repeated = chain.contains(&target);
            chain.push(target);
            if repeated {
                return Some(DnsError::CnameLoop {
                    name: name.to_owned(),
                    chain,
                });
            }
        }
        None
    }
}

fn default_runtime() -> Result<RuntimeHandle, DnsError> {
    RuntimeHandle::try_default().ok_or_else(|| {
        DnsError::NoServers("no runtime compiled in (enable async-std or smol)".to_owned())
    })
}

#[cfg(any(unix, target_os = "windows"))]
fn system_config() -> Result<(ResolverConfig, ResolverOpts), String> {
    match hickory_resolver::system_conf::read_system_conf() {
        Ok((config, opts)) if !config.name_servers().is_empty() => Ok((config, opts)),
        Ok(_) => Err("the system configuration names no server".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(not(any(unix, target_os = "windows")))]
fn system_config() -> Result<(ResolverConfig, ResolverOpts), String> {
    Err("reading the system configuration is not supported on this platform".to_owned())
}

fn classify(err: &NetError, name: &str, kind: &'static str) -> DnsError {
    match err {
        NetError::Dns(hickory_net::DnsError::NoRecordsFound(_)) => DnsError::NoRecords {
            name: name.to_owned(),
            kind,
        },
        NetError::Timeout => DnsError::Timeout {
            name: name.to_owned(),
            kind,
        },
        NetError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => DnsError::Timeout {
            name: name.to_owned(),
            kind,
        },
        _ => DnsError::Lookup {
            name: name.to_owned(),
            kind,
            reason: err.to_string(),
        },
    }
}

fn min_ttl(records: &[Record]) -> Duration {
    Duration::from_secs(records.iter().map(|r| u64::from(r.ttl)).min().unwrap_or(0))
}

fn ips(records: Vec<Record>) -> (Answer, Duration) {
    let ttl = min_ttl(&records);
    let ips = records
        .into_iter()
        .filter_map(|r| match r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    (Answer::Ips(ips), ttl)
}

fn txts(records: Vec<Record>) -> (Answer, Duration) {
    let ttl = min_ttl(&records);
    let txts = records
        .into_iter()
        .filter_map(|r| match r.data {
            RData::TXT(txt) => Some(txt.txt_data.iter().map(|s| s.to_vec()).collect()),
            _ => None,
        })
        .collect();
    (Answer::Txt(txts), ttl)
}

#[async_trait]
impl AddressResolver for DnsResolver {
    fn can_resolve(&self, addr: &Multiaddr) -> bool {
        has_name(addr)
    }

    async fn resolve(&self, addr: &Multiaddr) -> Result<Vec<Multiaddr>, Error> {
        self.resolve_addr(addr).await.map_err(|e| Error::Resolve {
            addr: addr.clone(),
            source: Box::new(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_FALLBACK_SERVERS;

    #[test]
    fn no_system_configuration_falls_back() {
        let (config, _) = setup(&DnsConfig::default(), || Err("no resolv.conf".to_owned()));
        assert_eq!(servers_of(&config), DEFAULT_FALLBACK_SERVERS.to_vec());
        let none = DnsConfig {
            fallback: Vec::new(),
            ..DnsConfig::default()
        };
        let (config, _) = setup(&none, || Err("no resolv.conf".to_owned()));
        assert!(servers_of(&config).is_empty());
    }

    #[test]
    fn one_server_only() {
        let server: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let (config, opts) = setup(&DnsConfig::with_server(server), || {
            panic!("the system configuration is not read")
        });
        assert_eq!(servers_of(&config), vec![server]);
        assert_eq!(opts.use_hosts_file, ResolveHosts::Never);
        let protocols: Vec<_> = config.name_servers()[0]
            .connections
            .iter()
            .map(|c| c.protocol.to_protocol())
            .collect();
        assert_eq!(protocols.len(), 2, "UDP, then TCP for truncated answers");
    }

    #[test]
    fn an_empty_fallback_is_an_error() {
        let config = DnsConfig {
            servers: Servers::Only(Vec::new()),
            ..DnsConfig::default()
        };
        let err = DnsResolver::new(config, RuntimeHandle::default()).unwrap_err();
        assert!(matches!(err, DnsError::NoServers(_)), "{err}");
    }
}
