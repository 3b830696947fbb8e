//! The single door through which a tenant's trust changes: its trust bundle
//! (a root joins, changes status, or leaves) and its CRLs.
//!
//! Each change, in the caller's transaction, bumps the tenant's trust
//! revision and records what changed at that revision (`trust_changes`):
//! for a CA, its certificate and the bundle and CRL list that follow; for a
//! CRL (complete or delta CRL), the signed CRL when it is small, else a
//! [`CrlDelta`] from the CRL of the same kind it replaces. Agents then catch up with one small answer
//! ([`Service::trust_changes`]); the record keeps the last
//! `trust_change_window` revisions per tenant, and an agent further behind,
//! or whose changes weigh more than `trust_change_max_bytes`, is told to
//! fetch the whole state.

use lightwell_ca::crl::delta::CrlDelta;
use lightwell_proto::ErrorCode;
use lightwell_store::{CaRecord, CaRole, CaStatus, CrlRecord, DeltaCrlRecord, StoreError, TenantId, Tx};
use serde::{Deserialize, Serialize};

use crate::service::Inner;
use crate::service::{Service, Tenant};
use crate::{Error, Result};

/// A CRL at most this large (DER octets) is recorded whole: a delta would
/// save little, and an agent needs no base to use it.
const WHOLE_CRL_LIMIT: usize = 2048;

/// Default of `trust_change_window`: revisions of changes kept per tenant.
pub const DEFAULT_TRUST_CHANGE_WINDOW: u64 = 1000;
/// Default of `trust_change_max_bytes`: a change answer past this many bytes
/// of recorded changes is a snapshot answer instead. Changes are small (a
/// revocation is a few hundred bytes), but a patch listing many entries
/// (a principal's certificates revoked at once, entries expiring) is not,
/// and a window of them would otherwise be read and sent whole, per agent.
pub const DEFAULT_TRUST_CHANGE_MAX_BYTES: u64 = 1 << 20;

/// A change to what a tenant's peers trust.
#[derive(Debug, Clone, Copy)]
pub(in crate::service) enum TrustChange<'a> {
    /// A new CA is stored; a root joins the trust bundle.
    NewCa(&'a CaRecord),
    /// A CA's status or default flag changed; a root may join or leave the trust bundle.
    CaUpdated(&'a CaRecord),
    /// A CA's CRL was re-signed; `ca` is the CA with its next CRL Number
    /// advanced. `update` is the change as recorded when the caller computed
    /// it outside the transaction (from the CRL numbered one less, which the
    /// caller's CRL Number check proves is still the one stored); else it is
    /// computed here, from the stored CRL.
    Crl { crl: &'a CrlRecord, ca: &'a CaRecord, update: Option<&'a TrustUpdate> },
    /// A CA's delta CRL was signed (right after its complete CRL); `ca` and
    /// `update` as for [`TrustChange::Crl`].
    DeltaCrl { delta: &'a DeltaCrlRecord, ca: &'a CaRecord, update: Option<&'a TrustUpdate> },
    /// The tenant's token keys were made or pruned (the caller wrote them):
    /// its SPIFFE bundle holds them, and its sequence is the trust revision.
    TokenKeys,
    /// A foreign trust domain's bundle was accepted, changed or removed (the caller wrote it).
    Federation,
}

/// What changed at one trust revision, as agents receive it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustUpdate {
    /// A CA was added or changed.
    Ca {
        /// The CA.
        ca_id: String,
        /// Its certificate (DER).
        #[serde(with = "b64")]
        certificate: Vec<u8>,
        /// The trust bundle after the change: root certificates (DER).
        #[serde(with = "b64_list")]
        bundle: Vec<Vec<u8>>,
        /// The CAs whose CRLs the trust state lists, in its order.
        crl_cas: Vec<String>,
    },
    /// A CA's CRL was re-signed.
    Crl {
        /// The CA.
        ca_id: String,
        /// The new CRL Number.
        number: i64,
        /// The new CRL whole (DER), when small or without a usable base.
        #[serde(with = "b64_opt", default, skip_serializing_if = "Option::is_none")]
        crl: Option<Vec<u8>>,
        /// Else the [`CrlDelta`] (its DER) from the CRL stored before it.
        #[serde(with = "b64_opt", default, skip_serializing_if = "Option::is_none")]
        delta: Option<Vec<u8>>,
    },
    /// A CA's delta CRL (RFC 5280 section 5.2.4) was signed: `crl` or
    /// `delta` as for [`TrustUpdate::Crl`], from the delta CRL before it.
    DeltaCrl {
        /// The CA.
        ca_id: String,
        /// The delta CRL's own CRL Number.
        number: i64,
        /// The complete CRL it applies to.
        base_number: i64,
        /// The delta CRL whole (DER).
        #[serde(with = "b64_opt", default, skip_serializing_if = "Option::is_none")]
        crl: Option<Vec<u8>>,
        /// Else the [`CrlDelta`] from the previous delta CRL.
        #[serde(with = "b64_opt", default, skip_serializing_if = "Option::is_none")]
        delta: Option<Vec<u8>>,
    },
    /// The tenant's token keys changed: its JWT bundle (`/oidc/{t}/jwks`) is
    /// to be fetched again. No trust file changes.
    TokenKeys,
    /// The bundles of the tenant's foreign trust domains changed: they are
    /// to be fetched again (`/v1/tenants/{t}/federated-bundles`).
    Federation,
}

/// The answer to "what changed since revision N".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustChanges {
    /// Every change after N, oldest first, up to `revision`.
    Changes {
        /// The revision the changes lead to.
        revision: i64,
        /// The changes, one per revision.
        changes: Vec<TrustUpdate>,
    },
    /// N is older than the recorded window (or not a revision this server
    /// had): fetch the whole trust state.
    SnapshotRequired {
        /// The current revision.
        revision: i64,
    },
}

impl Inner {
    /// Writes a change of the tenant's trust bundle or CRLs and records it.
    /// Every such write of the CA service goes through here, inside the
    /// caller's transaction.
    pub(in crate::service) fn apply_trust_change(
        &self,
        tx: &mut dyn Tx,
        tenant: &Tenant,
        change: TrustChange<'_>,
    ) -> Result<()> {
        // Agents watch this number: every change of a CA, a CRL, a token key or a federated bundle is a trust change.
        let revision = tx.bump_trust_revision(&tenant.id)?;
        if !matches!(change, TrustChange::TokenKeys | TrustChange::Federation) {
            // CA certificates and CRLs are directory entries too (cn=Configuration).
            tx.bump_directory_revision(&tenant.id)?;
        }
        let update = match change {
            TrustChange::NewCa(ca) => {
                debug_assert_eq!(ca.tenant_id, tenant.id);
                tx.insert_ca(ca).map_err(|e| match e {
                    StoreError::Conflict(_) => {
                        Error::new(ErrorCode::AlreadyExists, format!("a CA named {:?} already exists", ca.name))
                    }
                    other => other.into(),
                })?;
                ca_update(tx, tenant, ca)?
            }
            TrustChange::CaUpdated(ca) => {
                debug_assert_eq!(ca.tenant_id, tenant.id);
                tx.update_ca(ca)?;
                ca_update(tx, tenant, ca)?
            }
            TrustChange::Crl { crl, ca, update } => {
                debug_assert_eq!(crl.tenant_id, tenant.id);
                debug_assert_eq!(crl.ca_id, ca.id);
                let update = match update {
                    Some(update) => update.clone(),
                    None => crl_update(tx.crl(&tenant.id, &crl.ca_id)?.as_ref(), crl),
                };
                tx.put_crl(crl)?;
                tx.update_ca(ca)?;
                update
            }
            TrustChange::DeltaCrl { delta, ca, update } => {
                debug_assert_eq!(delta.crl.tenant_id, tenant.id);
                debug_assert_eq!(delta.crl.ca_id, ca.id);
                let update = match update {
                    Some(update) => update.clone(),
                    None => delta_crl_update(tx.delta_crl(&tenant.id, &ca.id)?.as_ref(), delta),
                };
                tx.put_delta_crl(delta)?;
                tx.update_ca(ca)?;
                update
            }
            TrustChange::TokenKeys => TrustUpdate::TokenKeys,
            TrustChange::Federation => TrustUpdate::Federation,
        };
        let body = serde_json::to_vec(&update).map_err(Error::internal)?;
        tx.insert_trust_change(&tenant.id, revision, &body)?;
        // Watchers here are woken once this work returns, after the commit (`Service::blocking`).
        self.trust_changes_made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let window = i64::try_from(self.trust_change_window()).unwrap_or(i64::MAX);
        if revision > window {
            tx.prune_trust_changes(&tenant.id, revision - window)?;
        }
        Ok(())
    }

    fn trust_changes_in(tx: &mut dyn Tx, tenant: &TenantId, since: i64, max_bytes: u64) -> Result<TrustChanges> {
        let revision = tx.trust_revision(tenant)?;
        if since < 0 || since > revision {
            return Ok(TrustChanges::SnapshotRequired { revision });
        }
        // Weighed before any body is read: past the budget a snapshot is the cheaper answer.
        let (count, bytes) = tx.trust_changes_size(tenant, since)?;
        if count != revision - since || u64::try_from(bytes).unwrap_or(u64::MAX) > max_bytes {
            return Ok(TrustChanges::SnapshotRequired { revision });
        }
        let rows = tx.trust_changes_since(tenant, since)?;
        // One record per revision, none missing: else some fell out of the window
        // (or predate the record) and only a snapshot is complete.
        let complete = rows.len() as i64 == revision - since
            && rows.iter().zip(since + 1..).all(|((r, _), expected)| *r == expected);
        if !complete {
            return Ok(TrustChanges::SnapshotRequired { revision });
        }
        let mut changes = Vec::with_capacity(rows.len());
        for (_, body) in rows {
            changes.push(serde_json::from_slice(&body).map_err(Error::internal)?);
        }
        Ok(TrustChanges::Changes { revision, changes })
    }
}

/// A CA change as recorded: the CA and the bundle and CRL list after it.
fn ca_update(tx: &mut dyn Tx, tenant: &Tenant, ca: &CaRecord) -> Result<TrustUpdate> {
    let bundle = super::bundle_roots(tx, tenant)?.into_iter().map(|c| c.cert_der).collect();
    let crl_cas = tx
        .list_cas(&tenant.id)?
        .into_iter()
        .filter(|c| !(c.status == CaStatus::Revoked && c.role == CaRole::Root))
        .map(|c| c.id)
        .collect();
    Ok(TrustUpdate::Ca { ca_id: ca.id.clone(), certificate: ca.cert_der.clone(), bundle, crl_cas })
}

/// A CRL change as recorded: a delta from the CRL before it if that is
/// worth it and reproduces the new CRL exactly, else the CRL whole.
pub(super) fn crl_update(previous: Option<&CrlRecord>, crl: &CrlRecord) -> TrustUpdate {
    let (whole, delta) = payload(previous, crl);
    TrustUpdate::Crl { ca_id: crl.ca_id.clone(), number: crl.number, crl: whole, delta }
}

/// A delta CRL's change as recorded, from the delta CRL before it.
pub(super) fn delta_crl_update(previous: Option<&DeltaCrlRecord>, new: &DeltaCrlRecord) -> TrustUpdate {
    let (whole, delta) = payload(previous.map(|p| &p.crl), &new.crl);
    TrustUpdate::DeltaCrl {
        ca_id: new.crl.ca_id.clone(),
        number: new.crl.number,
        base_number: new.base_number,
        crl: whole,
        delta,
    }
}

/// The signed `crl` whole, or the [`CrlDelta`] from `previous` (an older
/// CRL of the same kind: the receiver checks it holds that one).
fn payload(previous: Option<&CrlRecord>, crl: &CrlRecord) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let delta = previous.filter(|p| crl.der.len() > WHOLE_CRL_LIMIT && p.number < crl.number).and_then(|p| {
        match CrlDelta::between(&p.der, &crl.der) {
            Ok(delta) => Some(delta.to_der()),
            Err(e) => {
                tracing::warn!(ca = %crl.ca_id, error = %e, "CRL recorded whole: no delta from the previous one");
                None
            }
        }
    });
    let whole = delta.is_none().then(|| crl.der.clone());
    (whole, delta)
}

impl Service {
    /// What changed in the tenant's trust state after revision `since`, or
    /// that the caller must fetch the whole state. Public, as the trust state is.
    pub async fn trust_changes(&self, tenant: &str, since: i64) -> Result<TrustChanges> {
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            let max_bytes = inner.trust_change_max_bytes();
            inner.tenant_read(&tenant, |tx, t| Inner::trust_changes_in(tx, &t.id, since, max_bytes))
        })
        .await
    }

    /// Resolves after work of this process that changed a tenant's trust
    /// has returned, its transaction committed (changes committed by other
    /// replicas arrive through [`Service::subscribe_trust_changes`]).
    pub async fn trust_committed(&self) {
        self.inner.trust_wake.notified().await;
    }
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        STANDARD.decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod b64_opt {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_some(&STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?.map(|s| STANDARD.decode(s).map_err(serde::de::Error::custom)).transpose()
    }
}

mod b64_list {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(list: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(list.iter().map(|b| STANDARD.encode(b)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(|s| STANDARD.decode(s).map_err(serde::de::Error::custom))
            .collect()
    }
}
