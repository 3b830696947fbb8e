//! The federation job: reads the SPIFFE bundle endpoints of the foreign
//! trust domains tenants registered (`https_web` profile) when they are due
//! and hands each answer to the service, which decides whether the bundle
//! is accepted. This is the server's only outbound HTTP, to URLs tenant
//! administrators chose, so it is fenced:
//!
//! - HTTPS only, checked against the registration's endpoint CA if it has
//!   one, else the system's web roots; no proxies; redirects not followed.
//! - Addresses are checked when the name is resolved (and IP literals
//!   before connecting): never unspecified, link-local (cloud metadata
//!   services live there), multicast or broadcast; loopback only with
//!   `--federation-allow-loopback`, so a tenant cannot point the server at
//!   its own local ports. Private networks stay reachable: that is where a
//!   partner's SPIRE server usually is.
//! - 10 s per read, at most [`lightwell_jose::bundle::MAX_BUNDLE_BYTES`] read.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lightwell_core::{FederationFetch, Service};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::sync::watch;

/// Endpoints read at once.
const CONCURRENCY: usize = 8;
/// How often due endpoints are looked for without being woken.
const TICK: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads due endpoints until `stop` changes.
pub(crate) async fn run(service: Service, allow_loopback: bool, mut stop: watch::Receiver<bool>) {
    loop {
        match service.due_federations(CONCURRENCY).await {
            Ok(due) => {
                let full = due.len() == CONCURRENCY;
                let mut reads = tokio::task::JoinSet::new();
                for f in due {
                    reads.spawn(async move {
                        let outcome = fetch(&f, allow_loopback).await;
                        (f, outcome)
                    });
                }
                while let Some(done) = reads.join_next().await {
                    let Ok((f, outcome)) = done else { continue };
                    if let Err(e) = service.record_federation_fetch(&f, outcome).await {
                        tracing::warn!(tenant = %f.tenant, trust_domain = %f.trust_domain, error = %e, "federation: recording a read failed");
                    }
                }
                if full {
                    continue;
                }
            }
            Err(e) => tracing::warn!(error = %e, "federation: listing due endpoints failed"),
        }
        tokio::select! {
            _ = service.federation_wakeup() => {}
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Whether the federation job may connect to `ip`.
fn address_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let this_network = v4.octets()[0] == 0;
            if v4.is_unspecified() || this_network || v4.is_link_local() || v4.is_multicast() || v4.is_broadcast() {
                return false;
            }
            !v4.is_loopback() || allow_loopback
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return address_allowed(IpAddr::V4(v4), allow_loopback);
            }
            let link_local = v6.segments()[0] & 0xffc0 == 0xfe80;
            if v6.is_unspecified() || v6.is_multicast() || link_local {
                return false;
            }
            !v6.is_loopback() || allow_loopback
        }
    }
}

fn refused_address(host: &str) -> String {
    format!(
        "{host} is an address the server does not read bundles from (unspecified, link-local, multicast, broadcast, \
         or loopback without --federation-allow-loopback)"
    )
}

/// Resolves names like the system does, keeping only the addresses [`address_allowed`].
#[derive(Debug)]
struct GuardedResolver {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.into_iter().filter(|a| address_allowed(a.ip(), allow_loopback)).collect();
            if allowed.is_empty() {
                return Err(std::io::Error::other(refused_address(&host)).into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// TLS trusting only the registration's endpoint CA certificates.
fn endpoint_tls(pem: &str) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("the endpoint CA certificates do not read: {e}"))?;
        roots.add(cert).map_err(|e| format!("an endpoint CA certificate is unusable: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The error and its causes on one line (reqwest's own message names only the outermost).
fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Reads one endpoint: the body, or why it could not be read.
async fn fetch(f: &FederationFetch, allow_loopback: bool) -> Result<Vec<u8>, String> {
    let url = url::Url::parse(&f.endpoint_url).map_err(|_| "the endpoint URL does not parse".to_string())?;
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    if let Some(ip) = literal
        && !address_allowed(ip, allow_loopback)
    {
        return Err(refused_address(&ip.to_string()));
    }
    let mut builder = reqwest::Client::builder()
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(READ_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("lightwelld/", env!("CARGO_PKG_VERSION"), " (SPIFFE federation)"))
        .dns_resolver(GuardedResolver { allow_loopback });
    if let Some(pem) = &f.endpoint_ca_pem {
        builder = builder.tls_backend_preconfigured(endpoint_tls(pem)?);
    }
    let client = builder.build().map_err(|e| describe(&e))?;
    let mut resp = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("reading the endpoint failed: {}", describe(&e)))?;
    let status = resp.status();
    if status.is_redirection() {
        return Err(format!("the endpoint answered HTTP {status}, a redirect; redirects are not followed"));
    }
    if !status.is_success() {
        return Err(format!("the endpoint answered HTTP {status}"));
    }
    let too_large =
        || format!("the endpoint's answer is larger than {} KiB", lightwell_jose::bundle::MAX_BUNDLE_BYTES / 1024);
    if resp.content_length().is_some_and(|n| n > lightwell_jose::bundle::MAX_BUNDLE_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("reading the endpoint failed: {}", describe(&e)))? {
        if body.len() + chunk.len() > lightwell_jose::bundle::MAX_BUNDLE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_never_reaches_link_local_unspecified_or_multicast_and_loopback_only_when_allowed() {
        for never in [
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "fe80::1",
            "ff02::1",
            "::ffff:169.254.169.254",
        ] {
            let ip: IpAddr = never.parse().unwrap();
            assert!(!address_allowed(ip, true), "{never}");
        }
        for loopback in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = loopback.parse().unwrap();
            assert!(!address_allowed(ip, false), "{loopback}");
            assert!(address_allowed(ip, true), "{loopback}");
        }
        for fine in ["10.1.2.3", "192.168.0.10", "203.0.113.7", "fd00::1", "2001:db8::1"] {
            assert!(address_allowed(fine.parse().unwrap(), false), "{fine}");
        }
    }
}
