//! Lightwell's LDAPv3 front end, on `ldap3_proto`.
//!
//! Like the REST API it only translates: binds become `Service::login`,
//! searches read a `Service::directory_snapshot` (kept per tenant while
//! `Service::directory_version` says it is current), writes call the same
//! service-layer operations as REST, so data, validation, permissions and
//! audit are shared. See `docs/architecture.md` (LDAP) for the tree, schema
//! and limits.
//!
//! | module | holds |
//! | --- | --- |
//! | `codec` | message framing, size and BER-depth limits |
//! | `session` | one connection: dispatch, StartTLS, the bound identity |
//! | `bind` | simple bind through the service layer's login; SASL |
//! | `search` | visibility, scopes, attribute selection, limits, paging; compare |
//! | `cache` | each tenant's tree and its indexes, kept per directory version |
//! | `filter` | RFC 4515 filters: limits, compilation, evaluation |
//! | `work` | what a search may cost (the budget) and where it runs (the gate) |
//! | `tree`, `dn`, `entry`, `schema` | the namespace, DNs, entries, the schema |
//! | `extended` | StartTLS, Who am I?, Password Modify |
//! | `write` | add, modify, delete |
//!
//! # What a front end can see
//!
//! A front end works on the service layer's views, which hold no secret:
//! it cannot name a store row, nor read a password hash, a sealed CA key or
//! a token's hash from what the service returns. The checks below compile
//! against this crate's dependencies (the service layer and the protocol
//! types) and must fail with the error named; the first shows the same
//! reads compile where a field is public.
//!
//! ```
//! fn shown(p: &lightwell_core::Principal, c: &lightwell_core::CaInfo, t: &lightwell_core::JoinTokenInfo) -> usize {
//!     p.name.len() + c.cert_der.len() + t.id.len()
//! }
//! ```
//!
//! ```compile_fail,E0432
//! use lightwell_core::PrincipalRecord;
//! ```
//!
//! ```compile_fail,E0433
//! fn row(p: &lightwell_store::PrincipalRecord) -> Option<&String> { p.password_hash.as_ref() }
//! ```
//!
//! ```compile_fail,E0609
//! fn hash(p: &lightwell_core::Principal) -> Option<&String> { p.password_hash.as_ref() }
//! ```
//!
//! ```compile_fail,E0609
//! fn key(c: &lightwell_core::CaInfo) -> &[u8] { &c.sealed_key }
//! ```
//!
//! ```compile_fail,E0609
//! fn digest(t: &lightwell_core::JoinTokenInfo) -> &[u8] { &t.token_hash }
//! ```
#![forbid(unsafe_code)]

mod bind;
mod cache;
mod codec;
mod dn;
mod entry;
mod extended;
mod filter;
mod result;
mod schema;
mod search;
mod session;
#[cfg(test)]
mod testdata;
mod tree;
mod work;
mod write;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightwell_core::Service;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

pub use crate::cache::DirectoryCache;
use crate::session::{Session, Stream};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How a listener's connections start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// LDAPS: TLS from the first byte (default port 6636).
    Ldaps,
    /// Plain LDAP where clients upgrade with StartTLS (default port 3389).
    StartTls,
}

/// Limits that protect the server from hostile or runaway clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request accepted, in bytes (1 MiB).
    pub max_message_bytes: usize,
    /// Deepest search filter accepted (64).
    pub max_filter_depth: usize,
    /// Most terms in one search filter, counted over the whole tree: AND,
    /// OR, NOT, every assertion and every substring component (512). A
    /// larger filter is refused with `adminLimitExceeded` before any work.
    pub max_filter_terms: usize,
    /// Work steps one search may take (one per filter term evaluated on an
    /// entry, per value compared, per 64 bytes scanned, per index candidate,
    /// per entry returned): 50 million, about a second of one CPU. Past it
    /// the search is abandoned with `adminLimitExceeded`.
    pub max_search_work: u64,
    /// Searches one principal may have in flight at once, over all its
    /// connections to both listeners (4); more get `busy`.
    pub max_searches_per_principal: usize,
    /// Most entries one search (or one page) returns (10,000).
    pub max_entries: usize,
    /// Longest a search may run (30 s), waiting for a search worker
    /// included; clients may ask for less. Checked during evaluation, so a
    /// search is abandoned with `timeLimitExceeded` when it passes.
    pub max_time: Duration,
    /// Open LDAP connections per listener (4,096).
    pub max_connections: usize,
    /// Open connections from one IP address per listener (256).
    pub max_connections_per_ip: usize,
    /// A connection with no request for this long is closed (5 min).
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 1024 * 1024,
            max_filter_depth: 64,
            max_filter_terms: 512,
            max_search_work: 50_000_000,
            max_searches_per_principal: 4,
            max_entries: 10_000,
            max_time: Duration::from_secs(30),
            max_connections: 4096,
            max_connections_per_ip: 256,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Settings of one LDAP listener.
#[derive(Debug, Clone)]
pub struct LdapConfig {
    /// LDAPS or StartTLS.
    pub transport: Transport,
    /// Accept simple binds (and password changes) without TLS. Off by
    /// default: they are refused with `confidentialityRequired`.
    pub allow_plaintext_bind: bool,
    /// Limits.
    pub limits: Limits,
    /// The tenants' trees; give every listener of a server the same one.
    pub cache: DirectoryCache,
}

/// Serves LDAP on `listener` until `stop` turns true, then closes idle
/// connections with a notice of disconnection and waits (up to 10 s) for
/// requests in progress. `tls` is the server's TLS configuration (it should
/// offer no ALPN protocols and may request client certificates).
pub async fn serve(
    listener: TcpListener,
    config: LdapConfig,
    tls: Arc<rustls::ServerConfig>,
    service: Service,
    mut stop: watch::Receiver<bool>,
) {
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.limits.max_connections));
    let per_ip: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        tracing::warn!("LDAP connection limit reached; refusing a connection");
                        continue;
                    };
                    let Some(ip_slot) = IpSlot::take(&per_ip, peer.ip(), config.limits.max_connections_per_ip) else {
                        tracing::debug!(peer = %peer.ip(), "per-address LDAP connection limit reached");
                        continue;
                    };
                    let (config, tls, service, stop) = (config.clone(), tls.clone(), service.clone(), stop.clone());
                    tokio::spawn(async move {
                        connection(stream, config, tls, service, stop).await;
                        drop(ip_slot);
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "LDAP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    // Every connection holds a slot: having them all back means all are closed.
    let all = u32::try_from(config.limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all)).await.is_err() {
        tracing::warn!("LDAP connections still open after the grace period; closing them");
    }
}

async fn connection(
    stream: TcpStream,
    config: Arc<LdapConfig>,
    tls: Arc<rustls::ServerConfig>,
    service: Service,
    stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let stream = match config.transport {
        Transport::StartTls => Stream::Plain(stream),
        Transport::Ldaps => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => Stream::Tls(Box::new(s)),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "LDAPS handshake failed");
                    return;
                }
                Err(_) => return,
            }
        }
    };
    Session::new(service, config, stream, tls).run(stop).await;
}

/// Resolves once `stop` is true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; drop it here.
    let _ = stop.wait_for(|s| *s).await;
}

/// One connection counted against its address's limit; released on drop.
struct IpSlot {
    map: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl IpSlot {
    fn take(map: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<Self> {
        let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Self { map: map.clone(), ip })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}
