//! SPIFFE federation, the consuming side (DESIGN section 1, item 9): the
//! foreign trust domains a tenant trusts, and the bundles its agents hand
//! to workloads beside the tenant's own.
//!
//! A foreign trust domain is registered by a CA administrator with either
//! its SPIFFE bundle endpoint (`https_web`) or a bundle to keep as it is
//! (SPIRE's `bundle show -format spiffe`). Endpoints are read by the
//! server's federation job (network I/O is the front end's: see
//! `lightwell-server`), which hands each answer here: a bundle is accepted
//! only whole (it parses, holds an authority, its `spiffe_sequence` does
//! not go back); otherwise the last bundle accepted stays in use and the
//! error is kept for `federation show`. A bundle whose contents changed is
//! a trust change (kind `federation`), so agents fetch the tenant's
//! federated bundles again within a second.

use lightwell_jose::SpiffeBundle;
use lightwell_proto::ErrorCode;
use lightwell_store::{FederationRecord, StoreExt, Tx};

use super::ca::TrustChange;
use super::{Inner, Service, Tenant, short, tenant_by_domain};
use crate::audit::AuditEvent;
use crate::authz::{self, Actor, Permission};
use crate::{Error, Result};

/// Foreign trust domains one tenant may register.
const MAX_FEDERATIONS: usize = 64;
/// Read an endpoint again after this long when its bundle names no refresh hint.
const DEFAULT_REFRESH_SECS: i64 = 300;
/// Refresh hints are held within these bounds: a hostile or mistaken
/// endpoint can neither make the server poll it in a loop nor stop being read.
const MIN_REFRESH_SECS: i64 = 30;
const MAX_REFRESH_SECS: i64 = 86_400;
/// After a failed read, try again this much later.
const RETRY_SECS: i64 = 60;
/// Longest endpoint URL.
const MAX_URL_LEN: usize = 2048;
/// Largest endpoint CA file.
const MAX_CA_PEM_BYTES: usize = 64 * 1024;
/// Longest error kept for `federation show`.
const MAX_ERROR_LEN: usize = 512;

/// What `federation create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewFederation {
    /// The foreign trust domain.
    pub trust_domain: String,
    /// Its SPIFFE bundle endpoint (`https://`).
    pub endpoint_url: Option<String>,
    /// CA certificates (PEM) the endpoint's TLS certificate must chain to.
    pub endpoint_ca_pem: Option<String>,
    /// A bundle document to trust as it is, instead of an endpoint.
    pub bundle: Option<String>,
}

/// A foreign trust domain as front ends show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationView {
    /// The trust domain.
    pub trust_domain: String,
    /// Its bundle endpoint, if it is read from one.
    pub endpoint_url: Option<String>,
    /// Whether the endpoint is checked against CA certificates of its own.
    pub endpoint_ca: bool,
    /// `spiffe_sequence` of the bundle held.
    pub sequence: Option<i64>,
    /// X.509 authorities in the bundle held.
    pub x509_authorities: usize,
    /// JWT authorities in the bundle held.
    pub jwt_authorities: usize,
    /// When the bundle held was accepted, Unix seconds.
    pub fetched_at: Option<i64>,
    /// When the endpoint is read next (none for a bundle given as it is).
    pub next_fetch_at: Option<i64>,
    /// Why the last read failed, if it did.
    pub last_error: Option<String>,
    /// Registration time.
    pub created_at: i64,
}

/// An endpoint due to be read, for the server's federation job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationFetch {
    /// The tenant's domain.
    pub tenant: String,
    /// The foreign trust domain.
    pub trust_domain: String,
    /// Its bundle endpoint.
    pub endpoint_url: String,
    /// CA certificates (PEM) its TLS certificate must chain to, if given.
    pub endpoint_ca_pem: Option<String>,
}

fn federation_not_found(trust_domain: &str) -> Error {
    Error::new(ErrorCode::FederationNotFound, format!("no foreign trust domain {:?}", short(trust_domain)))
}

/// A SPIFFE trust domain name (SPIFFE ID standard, section 2.1): lower-case
/// letters, digits, `.`, `-` and `_`, at most 255 characters.
fn parse_trust_domain(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !ok {
        return Err(Error::new(
            ErrorCode::InvalidName,
            format!(
                "invalid trust domain {:?}: lower-case letters, digits, '.', '-' and '_', at most 255 characters",
                short(name)
            ),
        ));
    }
    Ok(name.to_string())
}

/// A bundle endpoint URL: `https://`, a host, no user information or
/// fragment. Which addresses it may reach is the fetcher's check, at
/// connection time (a name can resolve anywhere later).
fn parse_endpoint_url(raw: &str) -> Result<String> {
    let bad = |why: &str| Error::invalid(format!("bundle endpoint URL {:?} {why}", short(raw)));
    if raw.len() > MAX_URL_LEN {
        return Err(Error::invalid(format!("a bundle endpoint URL is at most {MAX_URL_LEN} bytes")));
    }
    let url = url::Url::parse(raw).map_err(|_| bad("is not a URL"))?;
    if url.scheme() != "https" {
        return Err(bad("is not https:// (the https_web profile reads bundles over TLS only)"));
    }
    if url.host().is_none() {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("carries user information"));
    }
    if url.fragment().is_some() {
        return Err(bad("has a fragment"));
    }
    Ok(url.to_string())
}

/// CA certificates given for an endpoint: PEM, at least one certificate, each parsing.
fn parse_endpoint_ca(pem: &str) -> Result<String> {
    if pem.len() > MAX_CA_PEM_BYTES {
        return Err(Error::invalid(format!("endpoint CA certificates are at most {} KiB", MAX_CA_PEM_BYTES / 1024)));
    }
    let mut count = 0;
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|_| Error::invalid("the endpoint CA certificates are not PEM"))?;
        if block.label != "CERTIFICATE" || x509_parser::parse_x509_certificate(&block.contents).is_err() {
            return Err(Error::invalid("the endpoint CA file holds something other than certificates"));
        }
        count += 1;
    }
    if count == 0 {
        return Err(Error::invalid("the endpoint CA file holds no certificate"));
    }
    Ok(pem.to_string())
}

/// A bundle read from an endpoint or given at registration, checked, as
/// the document to store (re-encoded: only the keys understood).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Accepted {
    document: String,
    sequence: Option<i64>,
    refresh_secs: i64,
}

/// Whether `body` may replace the bundle `held` (its sequence): it parses,
/// holds an authority, and its `spiffe_sequence` is not below the held one.
fn accept(body: &[u8], held_sequence: Option<i64>) -> std::result::Result<Accepted, String> {
    let bundle = SpiffeBundle::parse(body).map_err(|e| format!("the bundle is refused: {e}"))?;
    if bundle.x509_authorities.is_empty() && bundle.jwt_authorities.keys.is_empty() {
        return Err("the bundle is refused: it holds no X.509 or JWT authority".into());
    }
    let sequence = bundle.sequence.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
    if let (Some(held), Some(new)) = (held_sequence, sequence)
        && new < held
    {
        return Err(format!("the bundle is refused: its spiffe_sequence went back from {held} to {new}"));
    }
    let hint = bundle.refresh_hint.map_or(DEFAULT_REFRESH_SECS, |h| i64::try_from(h).unwrap_or(i64::MAX));
    let document = bundle.to_json().map_err(|e| format!("the bundle is refused: {e}"))?;
    Ok(Accepted {
        document: String::from_utf8(document).map_err(|_| "the bundle is refused: not UTF-8".to_string())?,
        sequence,
        refresh_secs: hint.clamp(MIN_REFRESH_SECS, MAX_REFRESH_SECS),
    })
}

fn view(r: &FederationRecord) -> FederationView {
    let held = r.bundle.as_deref().and_then(|b| SpiffeBundle::parse(b.as_bytes()).ok()).unwrap_or_default();
    FederationView {
        trust_domain: r.trust_domain.clone(),
        endpoint_url: r.endpoint_url.clone(),
        endpoint_ca: r.endpoint_ca_pem.is_some(),
        sequence: r.sequence,
        x509_authorities: held.x509_authorities.len(),
        jwt_authorities: held.jwt_authorities.keys.len(),
        fetched_at: r.fetched_at,
        next_fetch_at: r.endpoint_url.is_some().then_some(r.next_fetch_at),
        last_error: r.last_error.clone(),
        created_at: r.created_at,
    }
}

impl Service {
    /// Registers a foreign trust domain (CA administrators): read from its
    /// bundle endpoint from now on, or trusted with the bundle given.
    pub async fn create_federation(&self, actor: &Actor, tenant: &str, new: NewFederation) -> Result<FederationView> {
        authz::check(actor, Some(tenant), Permission::ManageCa)?;
        let trust_domain = parse_trust_domain(&new.trust_domain)?;
        let endpoint_url = new.endpoint_url.as_deref().filter(|u| !u.is_empty()).map(parse_endpoint_url).transpose()?;
        let endpoint_ca_pem =
            new.endpoint_ca_pem.as_deref().filter(|p| !p.is_empty()).map(parse_endpoint_ca).transpose()?;
        let given = new.bundle.as_deref().filter(|b| !b.is_empty());
        let accepted = match (&endpoint_url, given) {
            (Some(_), Some(_)) => return Err(Error::invalid("give a bundle endpoint URL or a bundle, not both")),
            (None, None) => return Err(Error::invalid("give the trust domain's bundle endpoint URL or its bundle")),
            (None, Some(b)) => Some(accept(b.as_bytes(), None).map_err(Error::invalid)?),
            (Some(_), None) => None,
        };
        if endpoint_url.is_none() && endpoint_ca_pem.is_some() {
            return Err(Error::invalid("endpoint CA certificates go with a bundle endpoint URL"));
        }
        let (actor_name, tenant) = (actor.audit_name(), tenant.to_string());
        let out = self
            .blocking(move |inner| {
                inner.store.write(|tx| {
                    let t = tenant_by_domain(tx, &tenant)?;
                    if trust_domain == t.domain {
                        return Err(Error::invalid(format!("{trust_domain} is this tenant's own trust domain")));
                    }
                    if tx.federation(&t.id, &trust_domain)?.is_some() {
                        return Err(Error::new(
                            ErrorCode::AlreadyExists,
                            format!("trust domain {trust_domain} is already federated; delete it first"),
                        ));
                    }
                    if tx.list_federations(&t.id)?.len() >= MAX_FEDERATIONS {
                        return Err(Error::invalid(format!(
                            "a tenant federates with at most {MAX_FEDERATIONS} trust domains"
                        )));
                    }
                    let now = inner.now();
                    let record = FederationRecord {
                        tenant_id: t.id.clone(),
                        trust_domain: trust_domain.clone(),
                        endpoint_url: endpoint_url.clone(),
                        endpoint_ca_pem: endpoint_ca_pem.clone(),
                        bundle: accepted.as_ref().map(|a| a.document.clone()),
                        sequence: accepted.as_ref().and_then(|a| a.sequence),
                        fetched_at: accepted.as_ref().map(|_| now),
                        next_fetch_at: now,
                        last_error: None,
                        created_at: now,
                        updated_at: now,
                    };
                    tx.insert_federation(&record)?;
                    if record.bundle.is_some() {
                        inner.apply_trust_change(tx, &t, TrustChange::Federation)?;
                    }
                    let source = endpoint_url.clone().unwrap_or_else(|| "a bundle given as it is".into());
                    let ev = AuditEvent::success(actor_name.clone(), "federation.create", trust_domain.clone())
                        .with_detail(source);
                    inner.audit(tx, &t, ev)?;
                    Ok(view(&record))
                })
            })
            .await?;
        if out.endpoint_url.is_some() {
            self.inner.federation_wake.notify_one();
        }
        Ok(out)
    }

    /// The tenant's foreign trust domains, by name.
    pub async fn list_federations(&self, actor: &Actor, tenant: &str) -> Result<Vec<FederationView>> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            inner.store.read(|tx| {
                let t = tenant_by_domain(tx, &tenant)?;
                Ok(tx.list_federations(&t.id)?.iter().map(view).collect())
            })
        })
        .await
    }

    /// One foreign trust domain.
    pub async fn federation(&self, actor: &Actor, tenant: &str, trust_domain: &str) -> Result<FederationView> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let (tenant, trust_domain) = (tenant.to_string(), trust_domain.to_string());
        self.blocking(move |inner| {
            inner.store.read(|tx| {
                let t = tenant_by_domain(tx, &tenant)?;
                let record = tx.federation(&t.id, &trust_domain)?.ok_or_else(|| federation_not_found(&trust_domain))?;
                Ok(view(&record))
            })
        })
        .await
    }

    /// Stops trusting a foreign trust domain (CA administrators); agents drop its bundle.
    pub async fn delete_federation(&self, actor: &Actor, tenant: &str, trust_domain: &str) -> Result<()> {
        authz::check(actor, Some(tenant), Permission::ManageCa)?;
        let (actor_name, tenant, trust_domain) = (actor.audit_name(), tenant.to_string(), trust_domain.to_string());
        self.blocking(move |inner| {
            inner.store.write(|tx| {
                let t = tenant_by_domain(tx, &tenant)?;
                let record = tx.federation(&t.id, &trust_domain)?.ok_or_else(|| federation_not_found(&trust_domain))?;
                tx.delete_federation(&t.id, &trust_domain)?;
                if record.bundle.is_some() {
                    inner.apply_trust_change(tx, &t, TrustChange::Federation)?;
                }
                inner.audit(tx, &t, AuditEvent::success(actor_name.clone(), "federation.delete", trust_domain.clone()))
            })
        })
        .await
    }

    /// Reads a foreign trust domain's endpoint again now (CA administrators).
    pub async fn refresh_federation(&self, actor: &Actor, tenant: &str, trust_domain: &str) -> Result<FederationView> {
        authz::check(actor, Some(tenant), Permission::ManageCa)?;
        let (actor_name, tenant, trust_domain) = (actor.audit_name(), tenant.to_string(), trust_domain.to_string());
        let out = self
            .blocking(move |inner| {
                inner.store.write(|tx| {
                    let t = tenant_by_domain(tx, &tenant)?;
                    let mut record =
                        tx.federation(&t.id, &trust_domain)?.ok_or_else(|| federation_not_found(&trust_domain))?;
                    if record.endpoint_url.is_none() {
                        return Err(Error::invalid(format!(
                            "{trust_domain} was given as a bundle, it has no endpoint to read"
                        )));
                    }
                    record.next_fetch_at = inner.now();
                    tx.update_federation(&record)?;
                    let ev = AuditEvent::success(actor_name.clone(), "federation.refresh", trust_domain.clone());
                    inner.audit(tx, &t, ev)?;
                    Ok(view(&record))
                })
            })
            .await?;
        self.inner.federation_wake.notify_one();
        Ok(out)
    }

    /// The bundles of the tenant's foreign trust domains that have one, for
    /// its agents (any principal of the tenant may read them: bundles are public).
    pub async fn federated_bundles(&self, actor: &Actor, tenant: &str) -> Result<Vec<(String, String)>> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            inner.store.read(|tx| {
                let t = tenant_by_domain(tx, &tenant)?;
                let records = tx.list_federations(&t.id)?;
                Ok(records.into_iter().filter_map(|r| Some((r.trust_domain, r.bundle?))).collect())
            })
        })
        .await
    }

    /// Endpoints due to be read, soonest first, at most `limit` (the server's federation job).
    pub async fn due_federations(&self, limit: usize) -> Result<Vec<FederationFetch>> {
        self.blocking(move |inner| {
            let now = inner.now();
            inner.store.read(|tx| {
                let mut out = Vec::new();
                for r in tx.due_federations(now, limit)? {
                    let Some(tenant) = tx.tenant(&r.tenant_id)? else { continue };
                    let Some(endpoint_url) = r.endpoint_url else { continue };
                    out.push(FederationFetch {
                        tenant: tenant.domain,
                        trust_domain: r.trust_domain,
                        endpoint_url,
                        endpoint_ca_pem: r.endpoint_ca_pem,
                    });
                }
                Ok(out)
            })
        })
        .await
    }

    /// Records what reading `fetch`'s endpoint gave: the body, or why it
    /// could not be read. A bundle accepted whose contents changed is a
    /// trust change; a refused or failed one leaves the bundle held and
    /// keeps the error. Ignored when the registration changed meanwhile.
    pub async fn record_federation_fetch(
        &self,
        fetch: &FederationFetch,
        outcome: std::result::Result<Vec<u8>, String>,
    ) -> Result<()> {
        let fetch = fetch.clone();
        self.blocking(move |inner| {
            inner.store.write(|tx| {
                let t = tenant_by_domain(tx, &fetch.tenant)?;
                let Some(mut record) = tx.federation(&t.id, &fetch.trust_domain)? else { return Ok(()) };
                if record.endpoint_url.as_deref() != Some(fetch.endpoint_url.as_str()) {
                    return Ok(());
                }
                inner.apply_fetch(tx, &t, &mut record, &outcome)
            })
        })
        .await
    }

    /// Waits until a registration or refresh asks the federation job to look at due endpoints.
    pub async fn federation_wakeup(&self) {
        self.inner.federation_wake.notified().await;
    }
}

impl Inner {
    fn apply_fetch(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        record: &mut FederationRecord,
        outcome: &std::result::Result<Vec<u8>, String>,
    ) -> Result<()> {
        let now = self.now();
        record.updated_at = now;
        let accepted = match outcome {
            Ok(body) => accept(body, record.sequence),
            Err(e) => Err(e.clone()),
        };
        match accepted {
            Ok(a) => {
                let changed = record.bundle.as_deref() != Some(a.document.as_str());
                record.bundle = Some(a.document);
                record.sequence = a.sequence.or(record.sequence);
                record.fetched_at = Some(now);
                record.next_fetch_at = now.saturating_add(a.refresh_secs);
                record.last_error = None;
                tx.update_federation(record)?;
                if changed {
                    self.apply_trust_change(tx, t, TrustChange::Federation)?;
                    let ev =
                        AuditEvent::success("system", "federation.bundle", record.trust_domain.clone()).with_detail(
                            format!("spiffe_sequence {}", record.sequence.map_or("none".into(), |s| s.to_string())),
                        );
                    self.audit(tx, t, ev)?;
                }
            }
            Err(e) => {
                tracing::warn!(tenant = %t.domain, trust_domain = %record.trust_domain, error = %e, "foreign trust domain's bundle not updated");
                record.last_error = Some(e.chars().take(MAX_ERROR_LEN).collect());
                record.next_fetch_at = now.saturating_add(RETRY_SECS);
                tx.update_federation(record)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_json(sequence: Option<u64>, hint: Option<u64>) -> Vec<u8> {
        let signer = lightwell_jose::TokenSigner::generate(lightwell_jose::Algorithm::Es256).unwrap();
        let mut jwk = signer.public_jwk();
        jwk.kid = Some(signer.kid().into());
        let bundle = SpiffeBundle {
            sequence,
            refresh_hint: hint,
            x509_authorities: vec![],
            jwt_authorities: lightwell_jose::Jwks { keys: vec![jwk] },
        };
        bundle.to_json().unwrap()
    }

    #[test]
    fn trust_domains_and_endpoints_are_checked() {
        assert!(parse_trust_domain("partner.example").is_ok());
        assert!(parse_trust_domain("spire_td-1").is_ok());
        for bad in ["", "Partner.example", ".a", "a.", "a..b", "a/b", "spiffe://a", &"a".repeat(256)] {
            assert!(parse_trust_domain(bad).is_err(), "{bad}");
        }
        assert!(parse_endpoint_url("https://spire.partner.example:8443/bundle").is_ok());
        for bad in
            ["http://a.example/b", "https://u:p@a.example/", "https://a.example/#x", "file:///etc/passwd", "a.example"]
        {
            assert!(parse_endpoint_url(bad).is_err(), "{bad}");
        }
        assert!(parse_endpoint_ca("not pem").is_err());
    }

    #[test]
    fn a_bundle_is_accepted_whole_and_its_sequence_never_goes_back() {
        let a = accept(&bundle_json(Some(7), Some(5)), Some(7)).unwrap();
        assert_eq!(a.sequence, Some(7));
        assert_eq!(a.refresh_secs, MIN_REFRESH_SECS, "a hint below the floor is raised");
        assert_eq!(accept(&bundle_json(None, Some(1 << 40)), None).unwrap().refresh_secs, MAX_REFRESH_SECS);
        assert_eq!(accept(&bundle_json(None, None), None).unwrap().refresh_secs, DEFAULT_REFRESH_SECS);
        let back = accept(&bundle_json(Some(6), None), Some(7)).unwrap_err();
        assert!(back.contains("went back from 7 to 6"), "{back}");
        let empty = accept(br#"{"keys":[],"spiffe_sequence":9}"#, None).unwrap_err();
        assert!(empty.contains("no X.509 or JWT authority"), "{empty}");
        assert!(accept(b"<html>", None).unwrap_err().contains("refused"));
    }
}
