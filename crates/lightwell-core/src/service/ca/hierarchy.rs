//! CA hierarchies: creating roots and issuing CAs, sealing and unsealing
//! their keys, the URLs put into certificates, and CRL generation.

use std::sync::Arc;

use crate::service::Tenant;
use lightwell_ca::ca::{self, CaSpec, ParentLinks};
use lightwell_ca::constraints::{IpRange, NameConstraints};
use lightwell_ca::crl::{self, CrlSpec, RevocationReason, RevokedCertificate};
use lightwell_ca::{CaCertificate, Issuer, KeyAlgorithm, Serial, SigningKey};
use lightwell_proto::ErrorCode;
use lightwell_store::{CaRecord, CaRole, CaStatus, CrlRecord, DeltaCrlRecord, Tx};
use time::{Duration, OffsetDateTime};

use super::super::{Inner, short};
use super::trust::{TrustChange, TrustUpdate};
use crate::names::Hostname;
use crate::{Error, Result};

/// A delta CRL's base moves to the complete CRL signed with it once the
/// base is this old (seconds): relying parties then fetch a complete CRL
/// about hourly and the small delta on every revocation.
const DELTA_BASE_MAX_AGE: i64 = 3600;
/// ...or once the delta would list more entries than this.
const DELTA_MAX_ENTRIES: usize = 1000;
/// A delta lists the revocations from this long (seconds) before its
/// base's thisUpdate on: a revocation committed after the base on a replica
/// whose clock is behind still appears. Entries also in the base are harmless.
const DELTA_CLOCK_MARGIN: i64 = 300;

/// A CA's CRLs signed together: the complete CRL and, for an issuing CA,
/// the delta CRL numbered right after it (RFC 5280 section 5.2.4).
pub(super) struct SignedCrls {
    /// The complete CRL, with the CA's next CRL Number.
    pub(super) complete: CrlRecord,
    /// The delta CRL, with the number after that.
    pub(super) delta: Option<DeltaCrlRecord>,
}

/// Name of a tenant's first root.
const ROOT_NAME: &str = "root";
/// Name of a tenant's first issuing CA.
const ISSUING_NAME: &str = "issuing";

/// Plain-HTTP URL of a CA's CRL (DER).
pub(crate) fn crl_url(base: &str, domain: &str, ca_id: &str) -> String {
    format!("{}/pki/{domain}/ca/{ca_id}.crl", base.trim_end_matches('/'))
}

/// Plain-HTTP URL of an issuing CA's delta CRL (DER): the Freshest CRL of
/// its complete CRL and of its leaves.
pub(crate) fn delta_crl_url(base: &str, domain: &str, ca_id: &str) -> String {
    format!("{}/pki/{domain}/ca/{ca_id}.delta.crl", base.trim_end_matches('/'))
}

/// Plain-HTTP URL of a CA's certificate (DER).
pub(crate) fn cert_url(base: &str, domain: &str, ca_id: &str) -> String {
    format!("{}/pki/{domain}/ca/{ca_id}.crt", base.trim_end_matches('/'))
}

/// The tenant's OCSP responder on the PKI listener (AIA OCSP of its leaves).
pub(crate) fn ocsp_url(base: &str, domain: &str) -> String {
    format!("{}/pki/{domain}/ocsp", base.trim_end_matches('/'))
}

/// Maps errors of the CA primitives: input problems keep their meaning,
/// everything else is internal.
pub(in crate::service) fn ca_error(e: lightwell_ca::Error) -> Error {
    use lightwell_ca::Error as E;
    match e {
        E::UnsupportedKey { .. } | E::UnknownKeyAlgorithm(_) => Error::new(ErrorCode::UnsupportedKey, e.to_string()),
        E::CsrTooLarge { .. } | E::MalformedCsr(_) | E::CsrSignatureInvalid | E::UnsupportedSignatureAlgorithm(_) => {
            Error::new(ErrorCode::InvalidCsr, e.to_string())
        }
        E::InvalidName { .. } | E::InvalidSpiffeId { .. } | E::Lint { .. } | E::BeyondIssuer { .. } => {
            Error::new(ErrorCode::PolicyViolation, e.to_string())
        }
        E::PathLength { .. } | E::UnknownProfile(_) | E::UnknownRevocationReason(_) | E::InvalidSerial(_) => {
            Error::invalid(e.to_string())
        }
        other => Error::internal(other),
    }
}

fn unix(t: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t).map_err(Error::internal)
}

/// A CA built but not yet stored.
#[derive(Debug)]
pub(in crate::service) struct NewCa {
    pub(in crate::service) record: CaRecord,
    pub(super) issuer: Issuer,
}

/// An unsealed CA key and what it was unsealed from (see [`Inner::issuer`]).
#[derive(Debug, Clone)]
pub(in crate::service) struct CachedIssuer {
    sealed_key: Vec<u8>,
    cert_der: Vec<u8>,
    issuer: Arc<Issuer>,
}

/// Parses name constraints as operators write them: DNS names
/// (`corp.example`, or `.corp.example` for names under it only) and IP
/// ranges (`10.0.0.0/8`).
pub(in crate::service) fn parse_name_constraints(entries: &[String]) -> Result<NameConstraints> {
    let mut out = NameConstraints::default();
    for entry in entries {
        let bad = |why: String| Error::invalid(format!("name constraint {:?}: {why}", short(entry)));
        if entry.contains('/') {
            out.ip_ranges.push(IpRange::parse(entry).map_err(|e| bad(e.to_string()))?);
        } else {
            let (dot, name) = entry.strip_prefix('.').map_or(("", entry.as_str()), |n| (".", n));
            let host = Hostname::parse(name).map_err(|e| bad(e.message))?;
            out.dns.push(format!("{dot}{}", host.as_str()));
        }
    }
    Ok(out)
}

impl Inner {
    /// The base of the plain-HTTP PKI URLs.
    pub(in crate::service) fn pki_base(&self) -> String {
        self.pki_base.clone()
    }

    pub(in crate::service) fn now_time(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The tenant and its active root with the root's unsealed key, for
    /// building issuing CAs under it (outside the write transaction).
    pub(in crate::service) fn active_root(&self, tenant: &str) -> Result<(Tenant, CaRecord, Arc<Issuer>)> {
        let (t, root) = self.tenant_read(tenant, |tx, t| {
            let root = tx
                .list_cas(&t.id)?
                .into_iter()
                .find(|c| c.role == CaRole::Root && c.status == CaStatus::Active)
                .ok_or_else(|| Error::new(ErrorCode::CaUnavailable, "the tenant has no active root CA"))?;
            Ok((t.clone(), root))
        })?;
        let issuer = self.issuer(&root)?;
        Ok((t, root, issuer))
    }

    /// Pairs a stored CA with its unsealed key (zeroized when the last user
    /// of the issuer drops it).
    ///
    /// Unsealed keys are kept in memory, by CA id, next to the sealed key and
    /// certificate they were unsealed from: a hit must match both byte for
    /// byte, so a re-keyed or replaced CA is unsealed afresh, and whether the
    /// CA may sign is still decided from its stored status by the caller.
    /// Unsealing (AES-GCM, PKCS#8 parsing, the key-pair check) was a tenth
    /// of each issuance's CPU (BENCHMARKS.md, issuance).
    pub(in crate::service) fn issuer(&self, ca: &CaRecord) -> Result<Arc<Issuer>> {
        if let Some(hit) = self.issuers.get(&ca.id)
            && hit.sealed_key == ca.sealed_key
            && hit.cert_der == ca.cert_der
        {
            return Ok(hit.issuer);
        }
        let pkcs8 = self.kek.open(ca.id.as_bytes(), &ca.sealed_key).map_err(Error::internal)?;
        let key = SigningKey::from_pkcs8_der(&pkcs8).map_err(Error::internal)?;
        let cert = CaCertificate::from_der(&ca.cert_der).map_err(Error::internal)?;
        let issuer = Arc::new(Issuer::new(cert, key).map_err(Error::internal)?);
        // Only keys that sign day to day stay unsealed in memory: a revoked,
        // superseded or retired CA's key is unsealed for the rare CRL it signs.
        if ca.status == CaStatus::Active {
            let entry = CachedIssuer {
                sealed_key: ca.sealed_key.clone(),
                cert_der: ca.cert_der.clone(),
                issuer: issuer.clone(),
            };
            self.issuers.insert(ca.id.clone(), entry);
        }
        Ok(issuer)
    }

    pub(super) fn record(
        &self,
        tenant: &Tenant,
        id: String,
        name: &str,
        issuer: &Issuer,
        parent: Option<&CaRecord>,
    ) -> Result<CaRecord> {
        let sealed_key = self.kek.seal(id.as_bytes(), &issuer.key().to_pkcs8_der()).map_err(Error::internal)?;
        Ok(CaRecord {
            id,
            tenant_id: tenant.id.clone(),
            name: name.to_string(),
            parent_id: parent.map(|p| p.id.clone()),
            role: if parent.is_some() { CaRole::Intermediate } else { CaRole::Root },
            cert_der: issuer.certificate().der().to_vec(),
            sealed_key,
            status: CaStatus::Active,
            is_default: false,
            next_crl_number: 1,
            revoked_at: None,
            revocation_reason: None,
            created_at: self.now(),
        })
    }

    /// Builds a self-signed root (no storage).
    pub(super) fn build_root(&self, tenant: &Tenant, name: &str, key_type: KeyAlgorithm) -> Result<NewCa> {
        let key = SigningKey::generate(key_type).map_err(ca_error)?;
        let spec = CaSpec::root(&tenant.domain, &format!("{} {name} CA", tenant.domain));
        let issuer = ca::create_root(&spec, key, self.now_time()).map_err(ca_error)?;
        let record = self.record(tenant, uuid::Uuid::new_v4().to_string(), name, &issuer, None)?;
        Ok(NewCa { record, issuer })
    }

    /// Builds an issuing CA under `parent` (no storage).
    pub(in crate::service) fn build_intermediate(
        &self,
        tenant: &Tenant,
        parent: &CaRecord,
        parent_issuer: &Issuer,
        name: &str,
        name_constraints: &NameConstraints,
        path_len: Option<u8>,
    ) -> Result<NewCa> {
        let key_type = parent_issuer.key().algorithm();
        let key = SigningKey::generate(key_type).map_err(ca_error)?;
        let mut spec = CaSpec::intermediate(&tenant.domain, &format!("{} {name} CA", tenant.domain));
        spec.path_len = path_len.or(Some(0));
        spec.name_constraints = name_constraints.clone();
        let base = self.pki_base();
        let links = ParentLinks {
            crl_url: &crl_url(&base, &tenant.domain, &parent.id),
            ca_issuers_url: &cert_url(&base, &tenant.domain, &parent.id),
        };
        let issuer = ca::create_intermediate(&spec, key, parent_issuer, links, self.now_time()).map_err(ca_error)?;
        let record = self.record(tenant, uuid::Uuid::new_v4().to_string(), name, &issuer, Some(parent))?;
        Ok(NewCa { record, issuer })
    }

    /// A new tenant's root and default issuing CA, built but not stored:
    /// slow key generation (RSA) stays outside the write transaction.
    pub(in crate::service) fn build_tenant_hierarchy(
        &self,
        tenant: &Tenant,
        key_type: KeyAlgorithm,
    ) -> Result<Vec<CaRecord>> {
        self.build_hierarchy(tenant, key_type, ROOT_NAME, ISSUING_NAME)
    }

    /// Builds a root and its default issuing CA (no storage).
    pub(super) fn build_hierarchy(
        &self,
        tenant: &Tenant,
        key_type: KeyAlgorithm,
        root_name: &str,
        issuing_name: &str,
    ) -> Result<Vec<CaRecord>> {
        let root = self.build_root(tenant, root_name, key_type)?;
        let mut issuing = self.build_intermediate(
            tenant,
            &root.record,
            &root.issuer,
            issuing_name,
            &NameConstraints::default(),
            None,
        )?;
        issuing.record.is_default = true;
        Ok(vec![root.record, issuing.record])
    }

    /// Stores new CAs and signs their first CRLs.
    pub(in crate::service) fn store_cas(&self, tx: &mut dyn Tx, tenant: &Tenant, cas: &[CaRecord]) -> Result<()> {
        for ca in cas {
            self.apply_trust_change(tx, tenant, TrustChange::NewCa(ca))?;
        }
        for ca in cas {
            self.regenerate_crl(tx, tenant, &ca.id)?;
        }
        Ok(())
    }

    /// Signs and stores a fresh CRL for a CA with the next CRL Number, all
    /// in the caller's transaction. The CRL lists every revocation the
    /// transaction sees, so any mark of the CA as pending goes.
    pub(super) fn regenerate_crl(&self, tx: &mut dyn Tx, tenant: &Tenant, ca_id: &str) -> Result<()> {
        let ca = tx.ca(&tenant.id, ca_id)?.ok_or_else(|| Error::internal(format!("CA {ca_id} vanished")))?;
        let now = self.now();
        let revoked = self.crl_entries(tx, tenant, &ca, now)?;
        let previous_delta = tx.delta_crl(&tenant.id, ca_id)?;
        let signed = self.sign_crl(tenant, &ca, &revoked, previous_delta.as_ref(), now)?;
        self.store_crl(tx, tenant, ca, &signed, None)?;
        tx.clear_crl_pending(&tenant.id, ca_id, None)?;
        Ok(())
    }

    /// What a CA's CRL lists at `now`. An issuing CA's CRL lists its revoked,
    /// unexpired certificates; a root's CRL lists its revoked intermediates.
    pub(super) fn crl_entries(
        &self,
        tx: &mut dyn Tx,
        tenant: &Tenant,
        ca: &CaRecord,
        now: i64,
    ) -> Result<Vec<RevokedCertificate>> {
        let mut revoked = Vec::new();
        match ca.role {
            CaRole::Intermediate => {
                // Entries of expired certificates may be dropped (RFC 5280 section 3.3).
                let rows = tx.revoked_entries(&tenant.id, &ca.id, now)?;
                revoked.reserve_exact(rows.len());
                for e in rows {
                    let serial = Serial::from_hex(&e.serial).map_err(Error::internal)?;
                    revoked.push(entry(serial, Some(e.revoked_at), e.reason.as_deref())?);
                }
            }
            CaRole::Root => {
                for child in tx.list_cas(&tenant.id)? {
                    if child.parent_id.as_deref() == Some(&ca.id) && child.status == CaStatus::Revoked {
                        let cert = CaCertificate::from_der(&child.cert_der).map_err(Error::internal)?;
                        let serial = cert.serial().map_err(Error::internal)?;
                        revoked.push(entry(serial, child.revoked_at, child.revocation_reason.as_deref())?);
                    }
                }
            }
        }
        Ok(revoked)
    }

    /// Signs a CA's CRL with its next CRL Number (no storage; no transaction
    /// needed). An issuing CA's CRL names its own URL as Issuing
    /// Distribution Point and its delta CRL's as Freshest CRL, and the delta
    /// CRL is signed with it: the entries revoked since its base (see
    /// [`DELTA_BASE_MAX_AGE`]), where `previous_delta` is the one stored.
    pub(super) fn sign_crl(
        &self,
        tenant: &Tenant,
        ca: &CaRecord,
        revoked: &[RevokedCertificate],
        previous_delta: Option<&DeltaCrlRecord>,
        now: i64,
    ) -> Result<SignedCrls> {
        let issuer = self.issuer(ca)?;
        let this_update = unix(now)?;
        let next_update = this_update + Duration::seconds(tenant.policy.clone().ca.crl_validity_secs.max(3600));
        let base = self.pki_base();
        let url = crl_url(&base, &tenant.domain, &ca.id);
        let number = ca.next_crl_number;
        let issuing = ca.role == CaRole::Intermediate;
        let spec = CrlSpec {
            number: u64::try_from(number).map_err(Error::internal)?,
            this_update,
            next_update,
            distribution_point: issuing.then_some(url.as_str()),
            revoked,
        };
        let record = |number, der| CrlRecord {
            ca_id: ca.id.clone(),
            tenant_id: tenant.id.clone(),
            number,
            der,
            this_update: now,
            next_update: next_update.unix_timestamp(),
        };
        if !issuing {
            // A root's CRL lists its revoked intermediates only: always small, no delta.
            let signed = crl::build(&issuer, &spec).map_err(ca_error)?;
            return Ok(SignedCrls { complete: record(number, signed.into_der()), delta: None });
        }
        let delta_url = delta_crl_url(&base, &tenant.domain, &ca.id);
        let complete = record(number, crl::build_complete(&issuer, &spec, &delta_url).map_err(ca_error)?.into_der());
        let since =
            |from: i64| revoked.iter().filter(|e| e.revoked_at.unix_timestamp() >= from).cloned().collect::<Vec<_>>();
        // The base stays while it is young and the delta small; else this
        // complete CRL is the new base, which lists everything this delta
        // could (later revocations, even from a replica whose clock is
        // behind, land in the next delta through the margin).
        let kept = previous_delta
            .filter(|d| d.base_number < number && now - d.base_this_update < DELTA_BASE_MAX_AGE)
            .map(|d| (d.base_number, d.base_this_update, since(d.base_this_update - DELTA_CLOCK_MARGIN)))
            .filter(|(_, _, entries)| entries.len() <= DELTA_MAX_ENTRIES);
        let (base_number, base_this_update, entries) = kept.unwrap_or_else(|| (number, now, since(now)));
        // Dated a second before its complete CRL: OpenSSL without
        // `-extended_crl` does not set delta CRLs aside when it picks the
        // CRL to check against, and among CRLs of one issuer and scope takes
        // the newest; a CApath holding both must make that the complete CRL,
        // or revocations older than the delta's window would go unseen.
        let delta_spec = CrlSpec {
            number: spec.number + 1,
            this_update: this_update - Duration::seconds(1),
            revoked: &entries,
            ..spec
        };
        let delta = crl::build_delta(&issuer, &delta_spec, u64::try_from(base_number).map_err(Error::internal)?)
            .map_err(ca_error)?;
        let delta_record = CrlRecord { this_update: now - 1, ..record(number + 1, delta.into_der()) };
        let delta = DeltaCrlRecord { crl: delta_record, base_number, base_this_update };
        Ok(SignedCrls { complete, delta: Some(delta) })
    }

    /// Stores CRLs signed with `ca`'s current next CRL Number (the complete
    /// CRL, then its delta CRL) and advances the number past them; agents
    /// see each through the trust revision. `updates` are their trust
    /// changes as the caller computed them (see [`TrustChange::Crl`]).
    pub(super) fn store_crl(
        &self,
        tx: &mut dyn Tx,
        tenant: &Tenant,
        mut ca: CaRecord,
        signed: &SignedCrls,
        updates: Option<&(TrustUpdate, Option<TrustUpdate>)>,
    ) -> Result<()> {
        debug_assert_eq!(ca.next_crl_number, signed.complete.number);
        ca.next_crl_number = signed.complete.number + 1;
        let update = updates.map(|(complete, _)| complete);
        self.apply_trust_change(tx, tenant, TrustChange::Crl { crl: &signed.complete, ca: &ca, update })?;
        if let Some(delta) = &signed.delta {
            debug_assert_eq!(ca.next_crl_number, delta.crl.number);
            ca.next_crl_number = delta.crl.number + 1;
            let update = updates.and_then(|(_, delta)| delta.as_ref());
            self.apply_trust_change(tx, tenant, TrustChange::DeltaCrl { delta, ca: &ca, update })?;
        }
        Ok(())
    }
}

fn entry(serial: Serial, revoked_at: Option<i64>, reason: Option<&str>) -> Result<RevokedCertificate> {
    Ok(RevokedCertificate {
        serial,
        revoked_at: unix(revoked_at.unwrap_or(0))?,
        reason: reason.and_then(|r| r.parse::<RevocationReason>().ok()).unwrap_or_default(),
    })
}
