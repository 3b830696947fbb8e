//! Kubernetes webhook token authentication (`TokenReview`,
//! `authentication.k8s.io/v1`): a cluster's API server asks whether a
//! bearer token is one of this tenant's, and who it names. Two kinds are
//! answered: the tenant's access tokens (`typ: at+jwt`, from its OpenID
//! provider) and JWT-SVIDs of its workloads (the agent's Workload API). The
//! user is the directory principal — for a JWT-SVID the service its entry
//! belongs to — with its groups resolved through nesting, so RBAC bindings
//! name directory groups.
//!
//! A token must be for one of the audiences the API server sends (its
//! `--api-audiences`); a review without audiences is refused rather than
//! accepting a token made for any other service. Certificate-bound access
//! tokens are refused: the API server cannot show the certificate its
//! client presented. Everything is read again for every review, so a
//! disabled principal, a deleted client or workload entry is seen at once.

use lightwell_jose::jwt::{unverified_claims, verify};
use lightwell_store::{PrincipalRecord, StoreExt, Tx};
use serde_json::Value;

use super::workloads::service_of_spiffe_id;
use super::{Inner, Service, Tenant, tenant_by_domain};
use crate::authz::Actor;
use crate::{Error, Result};

/// Audiences a review may name.
const MAX_AUDIENCES: usize = 16;

/// Who a reviewed token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewedUser {
    /// `kind/name` for an access token (`service/web`), the SPIFFE ID for a JWT-SVID.
    pub username: String,
    /// The principal's id.
    pub uid: String,
    /// Its directory groups, nested membership resolved.
    pub groups: Vec<String>,
    /// The review's audiences the token is for.
    pub audiences: Vec<String>,
}

/// The answer to a review: the user, or why the token is not one.
pub type TokenReview = std::result::Result<ReviewedUser, String>;

impl Service {
    /// Reviews `token` for a Kubernetes API server of tenant `tenant` with
    /// the API server's `audiences`. Never an error for a bad token: that is
    /// an unauthenticated review (`Err` inside), as `TokenReview` has it.
    pub async fn token_review(&self, tenant: &str, token: String, audiences: Vec<String>) -> Result<TokenReview> {
        let tenant = tenant.to_string();
        self.blocking(move |inner| inner.token_review(&tenant, &token, &audiences)).await
    }
}

impl Inner {
    fn token_review(&self, tenant: &str, token: &str, audiences: &[String]) -> Result<TokenReview> {
        if audiences.is_empty() || audiences.len() > MAX_AUDIENCES {
            return Ok(Err(format!(
                "the review must name 1 to {MAX_AUDIENCES} audiences (kube-apiserver --api-audiences)"
            )));
        }
        let keys = self.published_token_keys(tenant)?;
        let Ok(claims) = unverified_claims(token) else { return Ok(Err("not a token of this tenant".into())) };
        // The audience the token is checked for: the first of the review's it names.
        let named = |a: &String| match claims.get("aud") {
            Some(Value::String(s)) => s == a,
            Some(Value::Array(list)) => list.iter().any(|v| v.as_str() == Some(a)),
            _ => false,
        };
        let Some(audience) = audiences.iter().find(|a| named(a)) else {
            return Ok(Err("the token is for none of the review's audiences".into()));
        };
        let validation = lightwell_jose::Validation { audience, now: self.now(), leeway: 0 };
        let verified = match verify(token, &keys, &validation) {
            Ok(v) => v,
            Err(e) => return Ok(Err(format!("invalid token: {e}"))),
        };
        let matched: Vec<String> = audiences.iter().filter(|a| named(a)).cloned().collect();
        self.store.read(|tx| {
            let t = tenant_by_domain(tx, tenant)?;
            if verified.claims.get("iss").and_then(Value::as_str) != Some(self.token_issuer_of(&t).as_str()) {
                return Ok(Err("the token is not from this tenant's issuer".into()));
            }
            let found = match verified.typ.as_deref() {
                Some("at+jwt") => access_token_principal(tx, &t, &verified.claims)?,
                _ => workload_principal(tx, &t, &verified.subject)?,
            };
            let (username, p) = match found {
                Ok(found) => found,
                Err(why) => return Ok(Err(why)),
            };
            let Actor::Principal(actor) = super::auth::actor_for(tx, Some(&t), &p)? else {
                return Err(Error::internal("a tenant principal's actor"));
            };
            Ok(Ok(ReviewedUser {
                username,
                uid: p.id.clone(),
                groups: actor.groups.into_iter().collect(),
                audiences: matched.clone(),
            }))
        })
    }
}

type Found = std::result::Result<(String, PrincipalRecord), String>;

/// The principal of an access token: not bound to a certificate, and still
/// counting ([`super::oidc::live_principal`]).
fn access_token_principal(tx: &mut dyn Tx, t: &Tenant, claims: &serde_json::Map<String, Value>) -> Result<Found> {
    if claims.contains_key("cnf") {
        return Ok(Err(
            "certificate-bound access tokens are not accepted here: the API server cannot show the certificate".into(),
        ));
    }
    Ok(super::oidc::live_principal(tx, t, claims)?
        .map(|p| (format!("{}/{}", p.kind.as_str(), p.name), p))
        .map_err(str::to_string))
}

/// The service of a JWT-SVID: an entry grants its SPIFFE ID and the service is enabled.
fn workload_principal(tx: &mut dyn Tx, t: &Tenant, sub: &str) -> Result<Found> {
    Ok(match service_of_spiffe_id(tx, t, sub)? {
        Some(p) if p.enabled => Ok((sub.to_string(), p)),
        Some(_) => Err("the workload's service is disabled".into()),
        None => Err("no workload entry grants this SPIFFE ID".into()),
    })
}
