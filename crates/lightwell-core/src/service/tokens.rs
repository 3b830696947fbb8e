//! The tenant's token keys (DESIGN section 2) and the JWTs they sign:
//! JWT-SVIDs now, the OpenID provider's tokens later.
//!
//! Each tenant has one key per algorithm (ES256, the default, and RS256
//! for verifiers that know nothing else) signing at a time. A key signs for
//! [`SIGNS_FOR`]; its successor is made and published [`PUBLISHED_AHEAD`]
//! before it takes over, and a retired key stays published for
//! [`PUBLISHED_AFTER`], longer than any token it signed lives: a verifier
//! that caches the JWKS for up to a day never meets a token whose key it
//! has not seen. Which key signs is computed from the four times each key
//! carries ([`signing_key`], [`due`]); nothing changes state at a boundary.
//! Keys are made when a tenant first needs one and kept rotating by the CA
//! job; the private key is sealed under the KEK with the key id as context.

use lightwell_jose::{Algorithm, Jwk, Jwks, TokenSigner};
use lightwell_proto::ErrorCode;
use lightwell_store::{StoreExt, TokenKeyRecord, Tx};
use serde_json::{Map, Value, json};

use super::ca::{TrustChange, bundle_roots};
use super::workloads::{self, calling_machine};
use super::{Inner, Service, Tenant, short, tenant_by_domain};
use crate::audit::AuditEvent;
use crate::authz::Actor;
use crate::{Error, Result};

/// How long a key signs.
const SIGNS_FOR: i64 = 30 * 86_400;
/// How long before it signs a key is published.
const PUBLISHED_AHEAD: i64 = 86_400;
/// How long after it stops signing a key stays published.
const PUBLISHED_AFTER: i64 = 86_400;
/// How often a federated trust domain is told to fetch the tenant's SPIFFE
/// bundle (`spiffe_refresh_hint`): roots and token keys are published a day
/// before they are used, so five minutes is ample.
const BUNDLE_REFRESH_HINT_SECS: u64 = 300;
/// JWT-SVID lifetime unless asked otherwise.
pub const DEFAULT_JWT_SVID_TTL_SECS: i64 = 300;
/// Longest JWT-SVID: a bearer token cannot be revoked, so it lives briefly.
pub const MAX_JWT_SVID_TTL_SECS: i64 = 3600;
const MIN_JWT_SVID_TTL_SECS: i64 = 30;
/// Held while token keys are made.
static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// Actor name of keys made for a tenant.
const SYSTEM: &str = "system";

/// A JWT-SVID as issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSvid {
    /// The compact JWT.
    pub token: String,
    /// Its `sub`.
    pub spiffe_id: String,
    /// Its `exp`, Unix seconds.
    pub expires_at: i64,
}

/// The key of `algorithm` that signs at `now`: the newest one activated.
fn signing_key(keys: &[TokenKeyRecord], algorithm: Algorithm, now: i64) -> Option<&TokenKeyRecord> {
    keys.iter()
        .filter(|k| k.algorithm == algorithm.as_str() && k.activates_at <= now && now < k.retires_at)
        .max_by_key(|k| k.activates_at)
}

/// When the next key of `algorithm` must start signing, if it has to be
/// made now: at once when none signs, or when the signing key retires
/// within [`PUBLISHED_AHEAD`] and no successor exists.
fn due(keys: &[TokenKeyRecord], algorithm: Algorithm, now: i64) -> Option<i64> {
    let Some(current) = signing_key(keys, algorithm, now) else { return Some(now) };
    let has_successor = keys.iter().any(|k| k.algorithm == algorithm.as_str() && k.activates_at > current.activates_at);
    (!has_successor && now >= current.retires_at - PUBLISHED_AHEAD).then_some(current.retires_at)
}

/// Keys published at `now`.
fn published(keys: &[TokenKeyRecord], now: i64) -> impl Iterator<Item = &TokenKeyRecord> {
    keys.iter().filter(move |k| k.created_at <= now && now < k.expires_at)
}

fn seal_context(kid: &str) -> Vec<u8> {
    format!("token-key:{kid}").into_bytes()
}

impl Service {
    /// The tenant's published token keys as a JWK Set (public; what any
    /// verifier fetches). Makes the tenant's first keys if it has none.
    pub async fn token_jwks(&self, tenant: &str) -> Result<Jwks> {
        let tenant = tenant.to_string();
        self.blocking(move |inner| inner.published_token_keys(&tenant)).await
    }

    /// The tenant's SPIFFE bundle (SPIFFE Trust Domain and Bundle, section
    /// 4), public: the trust bundle's roots as X.509 authorities, the token
    /// keys as JWT authorities, the trust revision as `spiffe_sequence`.
    /// Every change of either goes through the trust pipeline, which moves
    /// the revision; keys are listed until pruned, not only while
    /// published, so the contents change only with it. Makes the tenant's
    /// first token keys if it has none.
    pub async fn spiffe_bundle(&self, tenant: &str) -> Result<lightwell_jose::SpiffeBundle> {
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            inner.token_keys(&tenant)?;
            inner.store.read(|tx| {
                let t = tenant_by_domain(tx, &tenant)?;
                let revision = tx.trust_revision(&t.id)?;
                let roots = bundle_roots(tx, &t)?.into_iter().map(|c| c.cert_der).collect();
                let keys = tx
                    .list_token_keys(&t.id)?
                    .iter()
                    .map(|k| serde_json::from_str::<Jwk>(&k.public_jwk).map_err(Error::internal))
                    .collect::<Result<Vec<_>>>()?;
                Ok(lightwell_jose::SpiffeBundle {
                    sequence: Some(u64::try_from(revision).unwrap_or_default()),
                    refresh_hint: Some(BUNDLE_REFRESH_HINT_SECS),
                    x509_authorities: roots,
                    jwt_authorities: Jwks { keys },
                })
            })
        })
        .await
    }

    /// The tenant's token issuer (`iss`), `<public API URL>/oidc/<tenant>`.
    pub async fn token_issuer(&self, tenant: &str) -> Result<String> {
        let tenant = tenant.to_string();
        self.blocking(move |inner| {
            let t = inner.store.read(|tx| tenant_by_domain(tx, &tenant))?;
            Ok(inner.token_issuer_of(&t))
        })
        .await
    }

    /// Issues a JWT-SVID of entry `name` to the calling machine's agent:
    /// only if the entry is assigned to that machine and its service is
    /// enabled. `sub` is the entry's SPIFFE ID, `aud` the audiences asked
    /// for, signed with the tenant's ES256 key. Audited, refusals included.
    pub async fn issue_jwt_svid(
        &self,
        actor: &Actor,
        tenant: &str,
        name: &str,
        audiences: &[String],
        ttl_secs: Option<i64>,
    ) -> Result<JwtSvid> {
        let me = calling_machine(actor, tenant)?;
        let audiences = lightwell_proto::jwt_audiences(audiences).map_err(Error::invalid)?;
        let ttl = ttl_secs.unwrap_or(DEFAULT_JWT_SVID_TTL_SECS);
        if !(MIN_JWT_SVID_TTL_SECS..=MAX_JWT_SVID_TTL_SECS).contains(&ttl) {
            return Err(Error::invalid(format!(
                "a JWT-SVID lives {MIN_JWT_SVID_TTL_SECS} to {MAX_JWT_SVID_TTL_SECS} seconds"
            )));
        }
        let (actor_name, tenant, name) = (actor.audit_name(), tenant.to_string(), name.to_string());
        self.blocking(move |inner| {
            // Keys first, in their own transaction: making an RSA key takes
            // a while and must not hold the writer of the issuance.
            inner.token_keys(&tenant)?;
            inner.write_committing_refusal(|tx| {
                let t = tenant_by_domain(tx, &tenant)?;
                let target = format!("workload:{}", short(&name));
                let outcome = inner.jwt_svid_in_tx(tx, &t, &me, &name, &audiences, ttl);
                match outcome {
                    Ok(svid) => {
                        let detail =
                            format!("{}; aud {}; expires {}", svid.spiffe_id, audiences.join(" "), svid.expires_at);
                        inner.audit(
                            tx,
                            &t,
                            AuditEvent::success(&actor_name, "jwt_svid.issue", target).with_detail(detail),
                        )?;
                        Ok(Ok(svid))
                    }
                    Err(e) if e.is_undecided() => Err(e),
                    Err(e) => {
                        let detail = format!("{}: {}", e.code, short(&e.message));
                        inner.audit(
                            tx,
                            &t,
                            AuditEvent::failure(&actor_name, "jwt_svid.issue", target).with_detail(detail),
                        )?;
                        Ok(Err(e))
                    }
                }
            })
        })
        .await
    }
}

impl Inner {
    /// Makes token keys that are due and drops those no longer published,
    /// for a tenant that has token keys (the CA job); returns how many keys
    /// were made.
    pub(super) fn rotate_token_keys(&self, tenant: &Tenant) -> Result<usize> {
        let keys = self.store.read(|tx| tx.list_token_keys(&tenant.id).map_err(Error::from))?;
        if keys.is_empty() {
            return Ok(0);
        }
        let now = self.now();
        let made = self.make_due_keys(tenant, now)?;
        self.store.write(|tx| {
            if tx.prune_token_keys(&tenant.id, now)? > 0 {
                self.apply_trust_change(tx, tenant, TrustChange::TokenKeys)?;
            }
            Ok::<_, Error>(())
        })?;
        Ok(made)
    }

    /// The tenant's published token keys as a JWK Set, making those due first.
    pub(super) fn published_token_keys(&self, tenant: &str) -> Result<Jwks> {
        let keys = self.token_keys(tenant)?;
        let now = self.now();
        let keys = published(&keys, now)
            .map(|k| serde_json::from_str::<Jwk>(&k.public_jwk).map_err(Error::internal))
            .collect::<Result<Vec<_>>>()?;
        Ok(Jwks { keys })
    }

    /// The tenant's ES256 key that signs at `now`, unsealed.
    pub(super) fn token_signer(&self, tx: &mut dyn Tx, t: &Tenant, now: i64) -> Result<TokenSigner> {
        let keys = tx.list_token_keys(&t.id)?;
        let key = signing_key(&keys, Algorithm::Es256, now)
            .ok_or_else(|| Error::new(ErrorCode::Unavailable, "the tenant's token key is being made; retry"))?;
        let pkcs8 = self.kek.open(&seal_context(&key.id), &key.sealed_key).map_err(Error::internal)?;
        TokenSigner::from_pkcs8(Algorithm::Es256, &pkcs8, &key.id).map_err(Error::internal)
    }

    pub(super) fn token_issuer_of(&self, t: &Tenant) -> String {
        format!("{}/oidc/{}", self.api_base, t.domain)
    }

    /// The tenant's keys, making those that are due first.
    pub(super) fn token_keys(&self, tenant: &str) -> Result<Vec<TokenKeyRecord>> {
        let (t, keys) = self.store.read(|tx| {
            let t = tenant_by_domain(tx, tenant)?;
            let keys = tx.list_token_keys(&t.id)?;
            Ok::<_, Error>((t, keys))
        })?;
        let now = self.now();
        if Algorithm::ALL.iter().all(|a| due(&keys, *a, now).is_none()) {
            return Ok(keys);
        }
        self.make_due_keys(&t, now)?;
        Ok(self.store.read(|tx| tx.list_token_keys(&t.id))?)
    }

    /// Generates the keys [`due`] asks for outside any transaction, then
    /// stores those still due (another replica may have made them meanwhile).
    fn make_due_keys(&self, t: &Tenant, now: i64) -> Result<usize> {
        // One maker at a time in this process, reading the keys once it
        // holds the lock: a burst of first requests (the JWKS is public)
        // must not each generate an RSA key.
        let _one = MAKING.lock().unwrap_or_else(|e| e.into_inner());
        let keys = self.store.read(|tx| tx.list_token_keys(&t.id))?;
        let mut made = Vec::new();
        for algorithm in Algorithm::ALL {
            let Some(activates_at) = due(&keys, algorithm, now) else { continue };
            let signer = TokenSigner::generate(algorithm).map_err(Error::internal)?;
            let pkcs8 = signer.to_pkcs8().map_err(Error::internal)?;
            let retires_at = activates_at + SIGNS_FOR;
            made.push(TokenKeyRecord {
                id: signer.kid().to_string(),
                tenant_id: t.id.clone(),
                algorithm: algorithm.as_str().to_string(),
                public_jwk: serde_json::to_string(&signer.public_jwk()).map_err(Error::internal)?,
                sealed_key: self.kek.seal(&seal_context(signer.kid()), &pkcs8).map_err(Error::internal)?,
                created_at: now,
                activates_at,
                retires_at,
                expires_at: retires_at + PUBLISHED_AFTER,
            });
        }
        self.store.write(|tx| {
            let current = tx.list_token_keys(&t.id)?;
            let mut stored = 0;
            for key in &made {
                let algorithm: Algorithm = key.algorithm.parse().map_err(Error::internal)?;
                if due(&current, algorithm, now).is_none() {
                    continue;
                }
                tx.insert_token_key(key)?;
                let detail = format!(
                    "{} key {}; signs from {} until {}",
                    key.algorithm, key.id, key.activates_at, key.retires_at
                );
                self.audit(tx, t, AuditEvent::success(SYSTEM, "token_key.create", key.id.clone()).with_detail(detail))?;
                stored += 1;
            }
            if stored > 0 {
                self.apply_trust_change(tx, t, TrustChange::TokenKeys)?;
            }
            Ok(stored)
        })
    }

    fn jwt_svid_in_tx(
        &self,
        tx: &mut dyn Tx,
        t: &Tenant,
        machine_id: &str,
        name: &str,
        audiences: &[String],
        ttl: i64,
    ) -> Result<JwtSvid> {
        let spiffe_id = workloads::entry_identity_for(tx, t, machine_id, name)?;
        let now = self.now();
        let signer = self.token_signer(tx, t, now)?;
        let expires_at = now + ttl;
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.token_issuer_of(t)));
        claims.insert("sub".into(), json!(spiffe_id));
        claims.insert("aud".into(), Value::from(audiences.to_vec()));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(expires_at));
        let token = lightwell_jose::jwt::issue(&signer, &claims).map_err(Error::internal)?;
        Ok(JwtSvid { token, spiffe_id, expires_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightwell_store::TenantId;

    fn key(alg: Algorithm, activates_at: i64) -> TokenKeyRecord {
        let retires_at = activates_at + SIGNS_FOR;
        TokenKeyRecord {
            id: format!("{alg}-{activates_at}"),
            tenant_id: TenantId::new("t"),
            algorithm: alg.as_str().into(),
            public_jwk: "{}".into(),
            sealed_key: vec![],
            created_at: activates_at - PUBLISHED_AHEAD,
            activates_at,
            retires_at,
            expires_at: retires_at + PUBLISHED_AFTER,
        }
    }

    #[test]
    fn a_successor_is_published_a_day_ahead_and_takes_over_when_its_predecessor_retires() {
        let first = key(Algorithm::Es256, 0);
        assert_eq!(due(&[], Algorithm::Es256, 5), Some(5), "no key: one at once");
        assert_eq!(due(std::slice::from_ref(&first), Algorithm::Es256, SIGNS_FOR - PUBLISHED_AHEAD - 1), None);
        assert_eq!(due(std::slice::from_ref(&first), Algorithm::Es256, SIGNS_FOR - PUBLISHED_AHEAD), Some(SIGNS_FOR));
        assert_eq!(due(std::slice::from_ref(&first), Algorithm::Rs256, 0), Some(0), "each algorithm has its own key");
        let next = key(Algorithm::Es256, SIGNS_FOR);
        let both = [first.clone(), next.clone()];
        assert_eq!(due(&both, Algorithm::Es256, SIGNS_FOR - 10), None, "the successor exists");
        assert_eq!(signing_key(&both, Algorithm::Es256, SIGNS_FOR - 1).map(|k| &k.id), Some(&first.id));
        assert_eq!(signing_key(&both, Algorithm::Es256, SIGNS_FOR).map(|k| &k.id), Some(&next.id));
        let shown = |now| published(&both, now).map(|k| k.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            shown(SIGNS_FOR - PUBLISHED_AHEAD),
            [first.id.clone(), next.id.clone()],
            "both published while they overlap"
        );
        assert_eq!(
            shown(SIGNS_FOR + PUBLISHED_AFTER),
            std::slice::from_ref(&next.id),
            "the old one goes a day after it retired"
        );
        assert_eq!(due(&both, Algorithm::Es256, 3 * SIGNS_FOR), Some(3 * SIGNS_FOR), "all retired: a new one at once");
    }
}
