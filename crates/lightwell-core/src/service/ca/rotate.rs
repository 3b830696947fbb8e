//! Root rotation: a new root and default issuing CA are created `pending`
//! (trusted, issuing nothing), activated by an administrator or after the
//! tenant's overlap, and the old root is retired (dropped from the trust
//! bundle) once the last certificate under it has expired.
//!
//! Lifecycle of a root: `pending` → `active` → `superseded` → `retired`.

use crate::service::Tenant;
use lightwell_ca::{CaCertificate, KeyAlgorithm, PublicKey, PublicKeyAlgorithm};
use lightwell_proto::ErrorCode;
use lightwell_store::{CaRecord, CaRole, CaStatus, CertificateFilter, StoreExt, Tx};

use super::trust::TrustChange;
use super::{CaView, Service, parse_key_type};
use crate::audit::AuditEvent;
use crate::authz::{self, Actor, Permission};
use crate::service::Inner;
use crate::{Error, Result};

/// Actor name of changes made by the background job.
const SYSTEM: &str = "system";

/// What one run of the CA maintenance job did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Pending rotations activated because their overlap elapsed.
    pub activated: usize,
    /// Superseded roots retired because every certificate under them expired.
    pub retired: usize,
    /// CRLs re-signed.
    pub crls: usize,
    /// OCSP responder certificates issued (new CAs, or the old one half-way through its life).
    pub ocsp_responders: usize,
    /// Token keys made (successors published ahead of their predecessor's retirement).
    pub token_keys: usize,
}

/// A pending rotation: the new root and its issuing CA.
struct Pending {
    root: CaRecord,
    issuing: Option<CaRecord>,
}

fn pending_rotation(cas: &[CaRecord]) -> Option<Pending> {
    let root = cas.iter().find(|c| c.role == CaRole::Root && c.status == CaStatus::Pending)?.clone();
    let issuing =
        cas.iter().find(|c| c.status == CaStatus::Pending && c.parent_id.as_deref() == Some(root.id.as_str())).cloned();
    Some(Pending { root, issuing })
}

/// Whether `ca` sits under `ancestor` (directly or further down).
fn descends_from(cas: &[CaRecord], ca: &CaRecord, ancestor: &str) -> bool {
    let mut next = ca.parent_id.as_deref();
    // Bounded: a hierarchy is a few levels deep, and a corrupted cycle must not hang the job.
    for _ in 0..16 {
        let Some(id) = next else { return false };
        if id == ancestor {
            return true;
        }
        next = cas.iter().find(|c| c.id == id).and_then(|c| c.parent_id.as_deref());
    }
    false
}

/// The generated-key type of a CA certificate's key, if Lightwell can generate one like it.
pub(super) fn key_type_of(cert_der: &[u8]) -> Option<KeyAlgorithm> {
    let cert = CaCertificate::from_der(cert_der).ok()?;
    match PublicKey::from_spki_der(cert.public_key_der()).ok()?.algorithm() {
        PublicKeyAlgorithm::EcdsaP256 => Some(KeyAlgorithm::EcdsaP256),
        PublicKeyAlgorithm::EcdsaP384 => Some(KeyAlgorithm::EcdsaP384),
        PublicKeyAlgorithm::Ed25519 => Some(KeyAlgorithm::Ed25519),
        PublicKeyAlgorithm::Rsa { bits: 3072 } => Some(KeyAlgorithm::Rsa3072),
        PublicKeyAlgorithm::Rsa { bits: 4096 } => Some(KeyAlgorithm::Rsa4096),
        PublicKeyAlgorithm::Rsa { .. } => None,
    }
}

/// `root-N` / `issuing-N` with the smallest N ≥ 2 that names no CA yet.
fn rotation_names(tx: &mut dyn Tx, t: &Tenant, cas: &[CaRecord]) -> Result<(String, String)> {
    let taken = |name: &str| cas.iter().any(|c| c.name.eq_ignore_ascii_case(name));
    let mut n = cas.iter().filter(|c| c.role == CaRole::Root).count().max(1) + 1;
    loop {
        let (root, issuing) = (format!("root-{n}"), format!("issuing-{n}"));
        if !taken(&root)
            && !taken(&issuing)
            && tx.ca_request(&t.id, &root)?.is_none()
            && tx.ca_request(&t.id, &issuing)?.is_none()
        {
            return Ok((root, issuing));
        }
        n += 1;
    }
}

fn already_pending(root: &CaRecord) -> Error {
    Error::new(
        ErrorCode::CaUnavailable,
        format!(
            "a root rotation to {} is already pending since {}; activate it with `lightwell ca rotate --activate`",
            root.name,
            crate::clock::rfc3339(root.created_at)
        ),
    )
}

impl Inner {
    /// Moves issuance to a pending rotation: the new root and issuing CA
    /// become active (the issuing CA the default), every active CA under the
    /// old roots becomes superseded. Both roots stay in the trust bundle.
    fn activate_rotation(&self, tx: &mut dyn Tx, t: &Tenant, pending: &Pending) -> Result<()> {
        let new_root = pending.root.id.as_str();
        let new_issuing = pending.issuing.as_ref().map(|c| c.id.as_str());
        let cas = tx.list_cas(&t.id)?;
        let old_roots: Vec<&str> = cas
            .iter()
            .filter(|c| c.role == CaRole::Root && c.status == CaStatus::Active && c.id != new_root)
            .map(|c| c.id.as_str())
            .collect();
        for ca in &cas {
            let mut updated = ca.clone();
            if ca.id == new_root || Some(ca.id.as_str()) == new_issuing {
                updated.status = CaStatus::Active;
                updated.is_default = Some(ca.id.as_str()) == new_issuing;
            } else if ca.status == CaStatus::Active
                && old_roots.iter().any(|old| ca.id == *old || descends_from(&cas, ca, old))
            {
                updated.status = CaStatus::Superseded;
                updated.is_default = false;
            } else if new_issuing.is_some() {
                // Issuance moves to the new hierarchy, even from an imported default issuing CA.
                updated.is_default = false;
            }
            if updated != *ca {
                self.apply_trust_change(tx, t, TrustChange::CaUpdated(&updated))?;
            }
        }
        Ok(())
    }

    /// Retires superseded roots (and every CA under them) whose certificates
    /// have all expired. Returns the names of the retired roots.
    fn retire_expired_roots(&self, tx: &mut dyn Tx, t: &Tenant) -> Result<Vec<String>> {
        let now = self.now();
        let cas = tx.list_cas(&t.id)?;
        let mut retired = Vec::new();
        for root in cas.iter().filter(|c| c.role == CaRole::Root && c.status == CaStatus::Superseded) {
            let tree: Vec<&CaRecord> =
                cas.iter().filter(|c| c.id == root.id || descends_from(&cas, c, &root.id)).collect();
            let mut live = false;
            for ca in &tree {
                let filter = CertificateFilter { ca_id: Some(ca.id.clone()), ..Default::default() };
                if tx.list_certificates(&t.id, &filter)?.iter().any(|c| c.not_after > now) {
                    live = true;
                    break;
                }
            }
            if live {
                continue;
            }
            for ca in tree.into_iter().filter(|c| c.status != CaStatus::Revoked) {
                let mut updated = ca.clone();
                updated.status = CaStatus::Retired;
                updated.is_default = false;
                self.apply_trust_change(tx, t, TrustChange::CaUpdated(&updated))?;
            }
            retired.push(root.name.clone());
        }
        Ok(retired)
    }

    /// The background job's part for one tenant: activates a rotation whose
    /// overlap elapsed and retires roots with nothing unexpired under them.
    fn advance_rotation(&self, tx: &mut dyn Tx, t: &Tenant) -> Result<(usize, usize)> {
        let mut activated = 0;
        if let Some(pending) = pending_rotation(&tx.list_cas(&t.id)?) {
            let overlap = t.policy.clone().ca.rotation_overlap_secs.max(0);
            if pending.root.created_at.saturating_add(overlap) <= self.now() {
                self.activate_rotation(tx, t, &pending)?;
                let detail = format!("overlap of {overlap} s elapsed");
                self.audit(
                    tx,
                    t,
                    AuditEvent::success(SYSTEM, "ca.rotate.activate", pending.root.name.clone()).with_detail(detail),
                )?;
                activated = 1;
            }
        }
        let retired = self.retire_expired_roots(tx, t)?;
        for name in &retired {
            let ev = AuditEvent::success(SYSTEM, "ca.retire", name.clone())
                .with_detail("every certificate under it has expired; dropped from the trust bundle");
            self.audit(tx, t, ev)?;
        }
        Ok((activated, retired.len()))
    }
}

impl Service {
    /// Rotates the tenant's root. Without a pending rotation it creates a new
    /// root and default issuing CA (the key type of the current root unless
    /// `key_type` says otherwise), trusted at once and issuing after
    /// activation; with `activate` it activates now. With a pending rotation,
    /// `activate` activates it and anything else is refused. Returns the new
    /// root and issuing CA.
    pub async fn rotate_root(
        &self,
        actor: &Actor,
        tenant: &str,
        activate: bool,
        key_type: Option<&str>,
    ) -> Result<Vec<CaView>> {
        authz::check(actor, Some(tenant), Permission::ManageCa)?;
        let explicit = key_type.filter(|k| !k.is_empty()).map(|k| parse_key_type(Some(k))).transpose()?;
        let (actor_name, tenant) = (actor.audit_name(), tenant.to_string());
        self.blocking(move |inner| {
            let (t, pending, key_type, names) = inner.tenant_read(&tenant, |tx, t| {
                let cas = tx.list_cas(&t.id)?;
                let current = cas.iter().find(|c| c.role == CaRole::Root && c.status == CaStatus::Active);
                let key_type = current.and_then(|c| key_type_of(&c.cert_der)).unwrap_or_default();
                Ok((t.clone(), pending_rotation(&cas).map(|p| p.root), key_type, rotation_names(tx, t, &cas)?))
            })?;
            if let Some(root) = pending {
                if !activate {
                    return Err(already_pending(&root));
                }
                if explicit.is_some() {
                    return Err(Error::invalid("a rotation is already pending; --key-type applies only to a new one"));
                }
                return inner.tenant_write(&tenant, |tx, t| {
                    let pending = pending_rotation(&tx.list_cas(&t.id)?)
                        .ok_or_else(|| Error::new(ErrorCode::CaUnavailable, "the pending rotation is gone"))?;
                    inner.activate_rotation(tx, t, &pending)?;
                    let ev = AuditEvent::success(actor_name.clone(), "ca.rotate.activate", pending.root.name.clone());
                    inner.audit(tx, t, ev)?;
                    inner.rotation_views(tx, t, &pending.root.id)
                });
            }
            // Key generation (slow for RSA) stays outside the write transaction.
            let key_type = explicit.unwrap_or(key_type);
            let mut new = inner.build_hierarchy(&t, key_type, &names.0, &names.1)?;
            for ca in &mut new {
                ca.status = CaStatus::Pending;
                ca.is_default = false;
            }
            inner.tenant_write(&tenant, |tx, t| {
                if let Some(other) = pending_rotation(&tx.list_cas(&t.id)?) {
                    return Err(already_pending(&other.root));
                }
                inner.store_cas(tx, t, &new)?;
                let detail = format!("new root {} and issuing CA {}; key {key_type}", names.0, names.1);
                inner.audit(
                    tx,
                    t,
                    AuditEvent::success(actor_name.clone(), "ca.rotate", names.0.clone()).with_detail(detail),
                )?;
                let root_id = new[0].id.clone();
                if activate {
                    let pending = pending_rotation(&tx.list_cas(&t.id)?)
                        .ok_or_else(|| Error::internal("the rotation just stored is not pending"))?;
                    inner.activate_rotation(tx, t, &pending)?;
                    inner.audit(
                        tx,
                        t,
                        AuditEvent::success(actor_name.clone(), "ca.rotate.activate", names.0.clone()),
                    )?;
                }
                inner.rotation_views(tx, t, &root_id)
            })
        })
        .await
    }

    /// The hourly CA job: activates rotations whose overlap elapsed, retires
    /// roots whose certificates all expired, rotates OCSP responders and
    /// token keys, and re-signs every CRL.
    pub async fn ca_maintenance(&self) -> Result<MaintenanceReport> {
        let mut report = self
            .blocking(|inner| {
                let tenants = inner.store.read(|tx| tx.list_tenants().map_err(Error::from))?;
                let tenants: Vec<Tenant> = tenants.iter().map(Tenant::from).collect();
                let mut report = MaintenanceReport::default();
                for tenant in tenants {
                    let (activated, retired) = inner.store.write(|tx| inner.advance_rotation(tx, &tenant))?;
                    report.activated += activated;
                    report.retired += retired;
                    // A responder that cannot be issued must not stop the
                    // job (CRL refresh included) for every tenant.
                    match inner.rotate_ocsp_responders(&tenant) {
                        Ok(n) => report.ocsp_responders += n,
                        Err(e) => tracing::warn!(tenant = %tenant.domain, error = %e, "OCSP responders not rotated"),
                    }
                    match inner.rotate_token_keys(&tenant) {
                        Ok(n) => report.token_keys += n,
                        Err(e) => tracing::warn!(tenant = %tenant.domain, error = %e, "token keys not rotated"),
                    }
                }
                // Revoked access tokens that have expired need no record any more.
                let now = inner.now();
                if let Err(e) = inner.store.write(|tx| tx.prune_revoked_tokens(now).map_err(Error::from)) {
                    tracing::warn!(error = %e, "revoked access tokens not pruned");
                }
                Ok(report)
            })
            .await?;
        report.crls = self.refresh_crls().await?;
        Ok(report)
    }
}

impl Inner {
    /// The root `root_id` and then the CAs directly under it, as views.
    fn rotation_views(&self, tx: &mut dyn Tx, t: &Tenant, root_id: &str) -> Result<Vec<CaView>> {
        let mut cas: Vec<CaRecord> = tx
            .list_cas(&t.id)?
            .into_iter()
            .filter(|c| c.id == root_id || c.parent_id.as_deref() == Some(root_id))
            .collect();
        cas.sort_by_key(|c| c.id != root_id);
        cas.into_iter().map(|c| self.ca_view(tx, t, c)).collect()
    }
}
