//! The I/O half of each method: one NAT-PMP or PCP exchange over UDP with retransmissions,
//! SSDP discovery, and HTTP/SOAP calls over TCP, all on async-io sockets with the timers of
//! lp2p's runtime. Decisions stay in [`Mapping`](crate::Mapping); this turns an
//! [`Action`](crate::Action) into a [`Granted`] or a [`Failure`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use async_io::Async;
use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::RuntimeHandle;

use crate::http::{self, HttpUrl, ResponseParser};
use crate::mapping::{Failure, Granted};
use crate::soap::{self, Outcome, PortMapping};
use crate::xml::Description;
use crate::{Method, PortMapperConfig, Protocol, UpnpError, natpmp, pcp, ssdp};

/// A UPnP gateway found by SSDP: its WAN connection service.
#[derive(Debug, Clone)]
pub(crate) struct UpnpGateway {
    pub(crate) control: HttpUrl,
    pub(crate) service_type: String,
    /// Our address on the way to the gateway (the internal client of mappings).
    pub(crate) local_ip: Ipv4Addr,
}

/// Carries out [`Action`](crate::Action)s against the gateway: the I/O half of the port
/// mapper, usable on its own to map a port that is not a host's listen port. It remembers
/// what the methods need between actions (the UPnP control URL, PCP nonces, the server's
/// epoch).
///
/// ```no_run
/// use lp2p_upnp::{Action, GatewayClient, Method, PortMapperConfig, Protocol};
///
/// # lp2p_core::runtime::block_on(async {
/// let mut client = GatewayClient::new(lp2p_core::RuntimeHandle::default(), PortMapperConfig::default());
/// let map = Action::Map { method: Method::NatPmp, lifetime: 3600, external_port: 4001, renewal: false };
/// let granted = client.execute(Protocol::Udp, 4001, map).await?;
/// println!("{} for {:?}", granted.external, granted.lifetime);
/// # Ok::<(), lp2p_upnp::Failure>(())
/// # }).unwrap();
/// ```
pub struct GatewayClient {
    runtime: RuntimeHandle,
    config: PortMapperConfig,
    upnp: Option<UpnpGateway>,
    /// PCP nonces per mapping: the same nonce renews and deletes it.
    nonces: HashMap<(Protocol, u16), [u8; 12]>,
    /// The last epoch seen from the NAT-PMP/PCP server and when.
    epoch: Option<(u32, Instant)>,
    /// Set when the server's epoch shows it lost its mappings.
    restarted: bool,
}

/// The outcome of one action.
type Outcome1 = Result<Granted, Failure>;

fn unavailable(e: impl std::fmt::Display) -> Failure {
    Failure::Unavailable(e.to_string())
}

impl std::fmt::Debug for GatewayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayClient")
            .field("upnp", &self.upnp)
            .finish_non_exhaustive()
    }
}

impl GatewayClient {
    /// A client with `config`'s gateways and timeouts, on `runtime`'s timers.
    pub fn new(runtime: RuntimeHandle, config: PortMapperConfig) -> GatewayClient {
        GatewayClient {
            runtime,
            config,
            upnp: None,
            nonces: HashMap::new(),
            epoch: None,
            restarted: false,
        }
    }

    /// The UPnP service in use, once SSDP found one: its service type (e.g.
    /// `urn:schemas-upnp-org:service:WANIPConnection:2`) and control URL.
    pub fn upnp_service(&self) -> Option<(String, String)> {
        self.upnp
            .as_ref()
            .map(|g| (g.service_type.clone(), g.control.to_string()))
    }

    /// Whether the NAT-PMP/PCP server restarted since the last call (then every mapping
    /// must be renewed).
    pub(crate) fn take_restarted(&mut self) -> bool {
        std::mem::take(&mut self.restarted)
    }

    fn check_public(&self, method: Method, ip: IpAddr) -> Result<(), Failure> {
        if self.config.allow_private_external || lp2p_core::addr::is_public_ip(ip) {
            Ok(())
        } else {
            Err(Failure::Unavailable(format!(
                "{method} gateway's external address {ip} is not public (another NAT upstream?)"
            )))
        }
    }

    fn note_epoch(&mut self, epoch: u32) {
        let now = self.runtime.now();
        if let Some((prev, at)) = self.epoch {
            let base = at;
            let prev_secs = 0u64;
            let now_secs = now.saturating_duration_since(base).as_secs();
            if natpmp::epoch_lost_state(prev, prev_secs, epoch, now_secs) {
                tracing::info!(
                    prev,
                    epoch,
                    "NAT-PMP/PCP server lost its mappings; renewing"
                );
                self.restarted = true;
            }
        }
        self.epoch = Some((epoch, now));
    }

    fn gateway(&self, method: Method) -> Result<SocketAddr, Failure> {
        let ip = self
            .config
            .gateway
            .or_else(crate::route::system_default_gateway)
            .ok_or_else(|| {
                unavailable(UpnpError::NoGateway {
                    method,
                    why: "no default IPv4 gateway".to_owned(),
                })
            })?;
        Ok(SocketAddr::new(IpAddr::V4(ip), natpmp::SERVER_PORT))
    }

    // -----------------------------------------------------------------------------------
    // NAT-PMP and PCP over UDP.

    /// Sends `request` to `gateway` until `accept` takes an answer, retransmitting with
    /// doubling timeouts. Answers `accept` refuses (other nonces, stray datagrams) are
    /// skipped.
    async fn udp_exchange<T>(
        &self,
        method: Method,
        sock: &Async<UdpSocket>,
        gateway: SocketAddr,
        request: &[u8],
        mut accept: impl FnMut(&[u8]) -> Option<T>,
    ) -> Result<T, UpnpError> {
        let io_err = |source| UpnpError::Io {
            method,
            gateway,
            source,
        };
        let mut wait = self.config.udp_initial_timeout;
        let mut waited = Duration::ZERO;
        let mut buf = vec![0u8; pcp::MAX_MESSAGE.saturating_add(1)];
        for _ in 0..self.config.udp_attempts.max(1) {
            sock.send(request).await.map_err(io_err)?;
            let deadline = self.runtime.now() + wait;
            loop {
                let left = deadline.saturating_duration_since(self.runtime.now());
                if left.is_zero() {
                    break;
                }
                match self.runtime.timeout(left, sock.recv(&mut buf)).await {
                    Err(_) => break,
                    // ICMP port unreachable: nobody listens there.
                    Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        return Err(io_err(e));
                    }
                    Ok(Err(e)) => return Err(io_err(e)),
                    Ok(Ok(n)) => {
                        let datagram = buf.get(..n).unwrap_or(&[]);
                        if let Some(answer) = accept(datagram) {
                            return Ok(answer);
                        }
                    }
                }
            }
            waited = waited.saturating_add(wait);
            wait = wait.saturating_mul(2);
        }
        Err(UpnpError::Timeout {
            method,
            gateway,
            after: waited,
        })
    }

    fn udp_socket(
        method: Method,
        gateway: SocketAddr,
    ) -> Result<(Async<UdpSocket>, IpAddr), UpnpError> {
        let io_err = |source| UpnpError::Io {
            method,
            gateway,
            source,
        };
        let sock = Async::<UdpSocket>::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
            .map_err(io_err)?;
        sock.get_ref().connect(gateway).map_err(io_err)?;
        let local = sock.get_ref().local_addr().map_err(io_err)?.ip();
        Ok((sock, local))
    }

    async fn natpmp(
        &mut self,
        protocol: Protocol,
        internal_port: u16,
        lifetime: u32,
        external_port: u16,
    ) -> Outcome1 {
        let method = Method::NatPmp;
        let gateway = self.gateway(method)?;
        let (sock, _) = Self::udp_socket(method, gateway).map_err(unavailable)?;
        let refused = |code: natpmp::ResultCode| {
            Failure::Unavailable(
                UpnpError::Refused {
                    method,
                    gateway,
                    reason: code.to_string(),
                }
                .to_string(),
            )
        };
        let external_ip = if lifetime == 0 {
            Ipv4Addr::UNSPECIFIED
        } else {
            let req = natpmp::Request::ExternalAddress;
            let resp = self
                .udp_exchange(method, &sock, gateway, &req.encode(), |d| {
                    decode_natpmp(d, req.response_opcode())
                })
                .await
                .map_err(unavailable)?;
            self.note_epoch(resp.epoch());
            match resp {
                natpmp::Response::ExternalAddress { address, .. } => address,
                natpmp::Response::Error { code, .. } => return Err(refused(code)),
                natpmp::Response::Map { .. } => {
                    return Err(unavailable("NAT-PMP: a map answer to an address request"));
                }
            }
        };
        if lifetime != 0 {
            self.check_public(method, IpAddr::V4(external_ip))?;
        }
        let req = natpmp::Request::Map {
            protocol,
            internal_port,
            suggested_external_port: if lifetime == 0 { 0 } else { external_port },
            lifetime,
        };
        let resp = self
            .udp_exchange(method, &sock, gateway, &req.encode(), |d| {
                decode_natpmp(d, req.response_opcode())
            })
            .await
            .map_err(unavailable)?;
        self.note_epoch(resp.epoch());
        match resp {
            natpmp::Response::Map {
                internal_port: ip,
                external_port,
                lifetime: granted,
                ..
            } if ip == internal_port => {
                if lifetime != 0 && granted == 0 {
                    return Err(unavailable("NAT-PMP: mapping granted with lifetime 0"));
                }
                Ok(Granted {
                    external: SocketAddr::new(IpAddr::V4(external_ip), external_port),
                    lifetime: Duration::from_secs(granted.into()),
                })
            }
            natpmp::Response::Map { internal_port, .. } => Err(unavailable(format!(
                "NAT-PMP: answer for internal port {internal_port}"
            ))),
            natpmp::Response::Error { code, .. } => Err(refused(code)),
            natpmp::Response::ExternalAddress { .. } => {
                Err(unavailable("NAT-PMP: an address answer to a map request"))
            }
        }
    }

    async fn pcp(
        &mut self,
        protocol: Protocol,
        internal_port: u16,
        lifetime: u32,
        external_port: u16,
    ) -> Outcome1 {
        let method = Method::Pcp;
        let gateway = self.gateway(method)?;
        let (sock, local) = Self::udp_socket(method, gateway).map_err(unavailable)?;
        let nonce = *self
            .nonces
            .entry((protocol, internal_port))
            .or_insert_with(rand::random);
        let req = pcp::MapRequest {
            lifetime,
            client: local,
            nonce,
            protocol,
            internal_port,
            suggested_external_port: if lifetime == 0 { 0 } else { external_port },
            suggested_external_addr: pcp::ANY_V4,
        };
        let resp = self
            .udp_exchange(
                method,
                &sock,
                gateway,
                &req.encode(),
                |d| match pcp::Response::decode(d) {
                    Err(e) => {
                        tracing::debug!(%gateway, error = %e, "PCP datagram skipped");
                        None
                    }
                    Ok(pcp::Response::Map(m))
                        if m.nonce != nonce
                            || m.protocol != protocol
                            || m.internal_port != internal_port =>
                    {
                        tracing::debug!(%gateway, "PCP answer to another request skipped");
                        None
                    }
                    Ok(r) => Some(r),
                },
            )
            .await
            .map_err(unavailable)?;
        let m = match resp {
            pcp::Response::NatPmpOnly => {
                return Err(Failure::UseInstead(
                    Method::NatPmp,
                    "the gateway answered PCP in NAT-PMP (version 0)".to_owned(),
                ));
            }
            pcp::Response::UnsupportedVersion { server_version } => {
                let why = format!("the gateway speaks PCP version {server_version} only");
                return Err(if server_version < pcp::VERSION {
                    Failure::UseInstead(Method::NatPmp, why)
                } else {
                    Failure::Unavailable(why)
                });
            }
            pcp::Response::Map(m) => m,
        };
        self.note_epoch(m.epoch);
        let refused = |code: pcp::ResultCode| {
            UpnpError::Refused {
                method,
                gateway,
                reason: code.to_string(),
            }
            .to_string()
        };
        match m.code {
            pcp::ResultCode::Success => {
                if lifetime != 0 {
                    self.check_public(method, m.external_addr)?;
                    if m.lifetime == 0 {
                        return Err(unavailable("PCP: mapping granted with lifetime 0"));
                    }
                } else {
                    self.nonces.remove(&(protocol, internal_port));
                }
                Ok(Granted {
                    external: SocketAddr::new(m.external_addr, m.external_port),
                    lifetime: Duration::from_secs(m.lifetime.into()),
                })
            }
            pcp::ResultCode::CannotProvideExternal => Err(Failure::Conflict(refused(m.code))),
            code => Err(Failure::Unavailable(refused(code))),
        }
    }

    // -----------------------------------------------------------------------------------
    // UPnP IGD.

    /// Finds the gateway by SSDP (cached until a call to it fails).
    async fn upnp_gateway(&mut self) -> Result<UpnpGateway, UpnpError> {
        if let Some(g) = &self.upnp {
            return Ok(g.clone());
        }
        let method = Method::Upnp;
        let target = self.config.ssdp_target;
        let io_err = |source| UpnpError::Io {
            method,
            gateway: target,
            source,
        };
        let sock = Async::<UdpSocket>::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
            .map_err(io_err)?;
        let _ = sock.get_ref().set_multicast_ttl_v4(2);
        for st in ssdp::SEARCH_TARGETS {
            sock.send_to(&ssdp::m_search(st, 2, target), target)
                .await
                .map_err(io_err)?;
        }
        let deadline = self.runtime.now() + self.config.ssdp_wait;
        let mut buf = vec![0u8; ssdp::MAX_ANSWER];
        let mut last_error = None;
        loop {
            let left = deadline.saturating_duration_since(self.runtime.now());
            if left.is_zero() {
                break;
            }
            let (n, from) = match self.runtime.timeout(left, sock.recv_from(&mut buf)).await {
                Err(_) => break,
                Ok(r) => r.map_err(io_err)?,
            };
            let answer = match ssdp::parse_answer(buf.get(..n).unwrap_or(&[])) {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(%from, error = %e, "SSDP answer skipped");
                    last_error = Some(e);
                    continue;
                }
            };
            match self.describe(&answer.location).await {
                Ok(g) => {
                    tracing::debug!(location = %answer.location, control = %g.control, service = %g.service_type, "UPnP gateway found");
                    self.upnp = Some(g.clone());
                    return Ok(g);
                }
                Err(e) => {
                    tracing::debug!(location = %answer.location, error = %e, "UPnP device skipped");
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| UpnpError::NoGateway {
            method,
            why: format!(
                "no SSDP answer from {target} within {:?}",
                self.config.ssdp_wait
            ),
        }))
    }

    async fn describe(&self, location: &HttpUrl) -> Result<UpnpGateway, UpnpError> {
        let (resp, local) = self.http(location, http::get_request(location)).await?;
        if resp.head.status != 200 {
            return Err(UpnpError::Refused {
                method: Method::Upnp,
                gateway: location.addr,
                reason: format!("HTTP {} for {location}", resp.head.status),
            });
        }
        let desc = Description::parse(&resp.body)?;
        let service = desc.wan_service().ok_or_else(|| UpnpError::NoGateway {
            method: Method::Upnp,
            why: format!("{location} has no WANIPConnection or WANPPPConnection service"),
        })?;
        let base = match &desc.url_base {
            Some(b) if !b.trim().is_empty() => HttpUrl::parse(b)?,
            _ => location.clone(),
        };
        let control = base.join(&service.control_url)?;
        let IpAddr::V4(local_ip) = local else {
            return Err(UpnpError::NoGateway {
                method: Method::Upnp,
                why: "the gateway is reachable over IPv6 only".to_owned(),
            });
        };
        Ok(UpnpGateway {
            control,
            service_type: service.service_type.trim().to_owned(),
            local_ip,
        })
    }

    /// One HTTP exchange on a new connection; returns the response and our local address.
    async fn http(
        &self,
        url: &HttpUrl,
        request: Vec<u8>,
    ) -> Result<(http::Response, IpAddr), UpnpError> {
        let method = Method::Upnp;
        let gateway = url.addr;
        let max_body = self.config.max_http_body;
        let exchange = async move {
            let io_err = |source| UpnpError::Io {
                method,
                gateway,
                source,
            };
            let mut stream = Async::<TcpStream>::connect(gateway).await.map_err(io_err)?;
            let local = stream.get_ref().local_addr().map_err(io_err)?.ip();
            stream.write_all(&request).await.map_err(io_err)?;
            stream.flush().await.map_err(io_err)?;
            let mut parser = ResponseParser::new(http::DEFAULT_MAX_HEAD, max_body);
            let mut buf = vec![0u8; 4096];
            loop {
                let n = stream.read(&mut buf).await.map_err(io_err)?;
                if n == 0 {
                    return Ok((parser.finish()?, local));
                }
                if let Some(resp) = parser.push(buf.get(..n).unwrap_or(&[]))? {
                    return Ok((resp, local));
                }
            }
        };
        self.runtime
            .timeout(self.config.http_timeout, exchange)
            .await
            .map_err(|_| UpnpError::Timeout {
                method,
                gateway,
                after: self.config.http_timeout,
            })?
    }

    async fn soap(&self, g: &UpnpGateway, action: &soap::Action) -> Result<Outcome, UpnpError> {
        let body = action.body(&g.service_type);
        let req = http::soap_request(&g.control, &action.soap_action(&g.service_type), &body);
        let (resp, _) = self.http(&g.control, req).await?;
        soap::parse_response(resp.head.status, &resp.body, action.name())
    }

    async fn upnp(
        &mut self,
        protocol: Protocol,
        internal_port: u16,
        lifetime: u32,
        external_port: u16,
        renewal: bool,
    ) -> Outcome1 {
        let result = self
            .upnp_map(protocol, internal_port, lifetime, external_port, renewal)
            .await;
        if let Err(Failure::Unavailable(_)) = &result {
            // Rediscover next time: the gateway may have moved or restarted.
            self.upnp = None;
        }
        result
    }

    async fn upnp_map(
        &mut self,
        protocol: Protocol,
        internal_port: u16,
        lifetime: u32,
        external_port: u16,
        renewal: bool,
    ) -> Outcome1 {
        let g = self.upnp_gateway().await.map_err(unavailable)?;
        let gateway = g.control.addr;
        let fault = |code: u16, description: &str| {
            let reason = format!(
                "UPnP error {code} {} ({description})",
                soap::fault_name(code)
            );
            match code {
                soap::ERR_ONLY_PERMANENT_LEASES => Failure::OnlyPermanentLeases,
                soap::ERR_CONFLICT => Failure::Conflict(reason),
                _ => Failure::Unavailable(
                    UpnpError::Refused {
                        method: Method::Upnp,
                        gateway,
                        reason,
                    }
                    .to_string(),
                ),
            }
        };
        let external_ip = match self
            .soap(&g, &soap::Action::GetExternalIpAddress)
            .await
            .map_err(unavailable)?
        {
            Outcome::Fault { code, description } => return Err(fault(code, &description)),
            ok @ Outcome::Ok(_) => {
                let text = ok
                    .arg("NewExternalIPAddress")
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                text.parse::<Ipv4Addr>().map_err(|_| {
                    unavailable(format!("UPnP: external address {text:.40} is not IPv4"))
                })?
            }
        };
        self.check_public(Method::Upnp, IpAddr::V4(external_ip))?;
        let mapping = PortMapping {
            external_port,
            protocol,
            internal_port,
            internal_client: g.local_ip,
            description: format!("{} {protocol} {internal_port}", self.config.description),
            lease_duration: lifetime,
        };
        let v2 = g.service_type.ends_with(":2");
        let action = if v2 && !renewal {
            soap::Action::AddAnyPortMapping(mapping)
        } else {
            soap::Action::AddPortMapping(mapping)
        };
        let outcome = self.soap(&g, &action).await.map_err(unavailable)?;
        let port = match &outcome {
            Outcome::Fault { code, description } => return Err(fault(*code, description)),
            ok if matches!(action, soap::Action::AddAnyPortMapping(_)) => {
                let text = ok.arg("NewReservedPort").unwrap_or("").trim();
                text.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| unavailable(format!("UPnP: reserved port {text:.20}")))?
            }
            Outcome::Ok(_) => external_port,
        };
        Ok(Granted {
            external: SocketAddr::new(IpAddr::V4(external_ip), port),
            lifetime: Duration::from_secs(lifetime.into()),
        })
    }

    async fn upnp_unmap(&mut self, protocol: Protocol, external_port: u16) -> Outcome1 {
        let g = self.upnp_gateway().await.map_err(unavailable)?;
        match self
            .soap(
                &g,
                &soap::Action::DeletePortMapping {
                    external_port,
                    protocol,
                },
            )
            .await
            .map_err(unavailable)?
        {
            Outcome::Fault { code, description } => Err(Failure::Unavailable(format!(
                "UPnP error {code} {} ({description})",
                soap::fault_name(code)
            ))),
            Outcome::Ok(_) => Ok(Granted {
                external: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), external_port),
                lifetime: Duration::ZERO,
            }),
        }
    }

    /// Carries out `action` for the mapping of `protocol`/`internal_port`. A removal
    /// ([`Action::Unmap`](crate::Action::Unmap)) answers with a zero lifetime.
    pub async fn execute(
        &mut self,
        protocol: Protocol,
        internal_port: u16,
        action: crate::Action,
    ) -> Outcome1 {
        match action {
            crate::Action::Map {
                method,
                lifetime,
                external_port,
                renewal,
            } => match method {
                Method::Pcp => {
                    self.pcp(protocol, internal_port, lifetime, external_port)
                        .await
                }
                Method::NatPmp => {
                    self.natpmp(protocol, internal_port, lifetime, external_port)
                        .await
                }
                Method::Upnp => {
                    self.upnp(protocol, internal_port, lifetime, external_port, renewal)
                        .await
                }
            },
            crate::Action::Unmap {
                method,
                external_port,
            } => match method {
                Method::Pcp => self.pcp(protocol, internal_port, 0, 0).await,
                Method::NatPmp => self.natpmp(protocol, internal_port, 0, 0).await,
                Method::Upnp => self.upnp_unmap(protocol, external_port).await,
            },
        }
    }
}

/// A NAT-PMP answer to the request with `opcode`; anything else is logged and skipped
/// (the exchange goes on waiting, so a stray or forged datagram cannot end it).
fn decode_natpmp(datagram: &[u8], opcode: u8) -> Option<natpmp::Response> {
    match natpmp::Response::decode(datagram) {
        Ok(r) if r.opcode() == opcode => Some(r),
        Ok(r) => {
            tracing::debug!(
                opcode = r.opcode(),
                "NAT-PMP answer to another request skipped"
            );
            None
        }
        Err(e) => {
            tracing::debug!(error = %e, "NAT-PMP datagram skipped");
            None
        }
    }
}
