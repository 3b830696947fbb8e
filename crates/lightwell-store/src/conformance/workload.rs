//! Conformance cases of workload identity: workload entries, token keys,
//! foreign trust domains and OpenID clients.

use crate::{
    FederationRecord, OidcClientRecord, Store, StoreError, StoreExt, TenantId, TokenKeyRecord, WorkloadEntryRecord,
};

fn entry(tenant: &TenantId, id: &str, name: &str, service: &str) -> WorkloadEntryRecord {
    WorkloadEntryRecord {
        id: id.into(),
        tenant_id: tenant.clone(),
        name: name.into(),
        service_id: service.into(),
        spec: format!("{{\"name\":\"{name}\"}}"),
        created_at: 42,
    }
}

fn w<T>(s: &dyn Store, f: impl FnMut(&mut dyn crate::Tx) -> Result<T, StoreError>) -> T {
    s.write(f).unwrap()
}

/// Entries are found by name in any letter case within their tenant only,
/// names are unique per tenant, and deletion (one, a service's, a tenant's)
/// is scoped.
pub fn workload_entries_round_trip_scoped_by_tenant(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    let web = entry(&a, "w1", "web", "svc-web");
    w(s, |tx| {
        tx.insert_workload_entry(&web)?;
        tx.insert_workload_entry(&entry(&a, "w2", "batch", "svc-batch"))?;
        tx.insert_workload_entry(&entry(&a, "w3", "web-worker", "svc-web"))?;
        tx.insert_workload_entry(&entry(&b, "w4", "web", "svc-web"))
    });
    assert_eq!(w(s, |tx| tx.workload_entry(&a, "WEB")), Some(web.clone()));
    assert_eq!(w(s, |tx| tx.workload_entry(&b, "web")).map(|e| e.id), Some("w4".into()));
    let names: Vec<String> = w(s, |tx| tx.list_workload_entries(&a)).into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["batch", "web", "web-worker"]);
    let err = s.write(|tx| tx.insert_workload_entry(&entry(&a, "w5", "Web", "svc-web"))).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "names are unique in any case: {err:?}");
    assert!(!w(s, |tx| tx.delete_workload_entry(&b, "w2")), "another tenant's id deletes nothing");
    assert!(w(s, |tx| tx.delete_workload_entry(&a, "w2")));
    assert_eq!(w(s, |tx| tx.workload_entry(&a, "batch")), None);
    assert_eq!(w(s, |tx| tx.delete_service_workload_entries(&a, "svc-web")), 2);
    assert!(w(s, |tx| tx.list_workload_entries(&a)).is_empty());
    assert_eq!(
        w(s, |tx| tx.list_workload_entries(&b)).len(),
        1,
        "the other tenant's entry of a same-named service stays"
    );
    w(s, |tx| tx.delete_tenant(&b));
    assert!(w(s, |tx| tx.list_workload_entries(&b)).is_empty());
}

fn token_key(tenant: &TenantId, id: &str, activates_at: i64, expires_at: i64) -> TokenKeyRecord {
    TokenKeyRecord {
        id: id.into(),
        tenant_id: tenant.clone(),
        algorithm: "ES256".into(),
        public_jwk: format!("{{\"kid\":\"{id}\"}}"),
        sealed_key: vec![1, 2, 3, 0, 255],
        created_at: activates_at - 10,
        activates_at,
        retires_at: expires_at - 5,
        expires_at,
    }
}

/// Token keys come back by activation time within their tenant only, ids
/// are unique, and pruning removes only the tenant's keys no longer published.
pub fn token_keys_round_trip_pruned_and_scoped_by_tenant(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    let (old, new) = (token_key(&a, "k-old", 100, 200), token_key(&a, "k-new", 150, 400));
    w(s, |tx| {
        tx.insert_token_key(&new)?;
        tx.insert_token_key(&old)?;
        tx.insert_token_key(&token_key(&b, "k-b", 100, 200))
    });
    assert_eq!(w(s, |tx| tx.list_token_keys(&a)), vec![old.clone(), new.clone()]);
    let err = s.write(|tx| tx.insert_token_key(&token_key(&b, "k-old", 1, 2))).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "key ids are unique: {err:?}");
    assert_eq!(w(s, |tx| tx.prune_token_keys(&a, 200)), 1, "a key expiring at 200 is gone at 200");
    assert_eq!(w(s, |tx| tx.list_token_keys(&a)), vec![new]);
    assert_eq!(w(s, |tx| tx.list_token_keys(&b)).len(), 1, "the other tenant's key stays");
    w(s, |tx| tx.delete_tenant(&b));
    assert!(w(s, |tx| tx.list_token_keys(&b)).is_empty());
}

fn federation(tenant: &TenantId, trust_domain: &str) -> FederationRecord {
    FederationRecord {
        tenant_id: tenant.clone(),
        trust_domain: trust_domain.into(),
        endpoint_url: Some(format!("https://{trust_domain}/bundle")),
        endpoint_ca_pem: None,
        bundle: None,
        sequence: None,
        fetched_at: None,
        next_fetch_at: 10,
        last_error: None,
        created_at: 5,
        updated_at: 5,
    }
}

/// Foreign trust domains are unique per tenant, updated in place, listed by
/// name, and seen and deleted only through their own tenant.
pub fn federations_round_trip_scoped_by_tenant(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    w(s, |tx| {
        tx.insert_federation(&federation(&a, "zeta.example"))?;
        tx.insert_federation(&federation(&a, "alpha.example"))?;
        tx.insert_federation(&federation(&b, "alpha.example"))
    });
    let err = s.write(|tx| tx.insert_federation(&federation(&a, "alpha.example"))).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "one record per trust domain: {err:?}");
    let names =
        |t: &TenantId| w(s, |tx| tx.list_federations(t)).into_iter().map(|f| f.trust_domain).collect::<Vec<_>>();
    assert_eq!(names(&a), ["alpha.example", "zeta.example"]);
    let fetched = FederationRecord {
        bundle: Some("{\"keys\":[]}".into()),
        sequence: Some(3),
        fetched_at: Some(20),
        next_fetch_at: 320,
        last_error: Some("later".into()),
        updated_at: 20,
        ..federation(&a, "alpha.example")
    };
    assert!(w(s, |tx| tx.update_federation(&fetched)));
    assert_eq!(w(s, |tx| tx.federation(&a, "alpha.example")), Some(fetched));
    assert_eq!(
        w(s, |tx| tx.federation(&b, "alpha.example")),
        Some(federation(&b, "alpha.example")),
        "the other tenant's is untouched"
    );
    assert!(!w(s, |tx| tx.update_federation(&federation(&b, "nowhere.example"))));
    // Due: read from an endpoint, next_fetch_at reached; soonest first, across tenants.
    let fixed = FederationRecord { endpoint_url: None, ..federation(&b, "fixed.example") };
    w(s, |tx| tx.insert_federation(&fixed));
    let due = |now, limit| {
        w(s, |tx| tx.due_federations(now, limit))
            .into_iter()
            .map(|f| (f.tenant_id.as_str().to_string(), f.trust_domain))
            .collect::<Vec<_>>()
    };
    assert!(due(9, 10).is_empty(), "nothing due before next_fetch_at");
    let all = [("ta", "zeta.example"), ("tb", "alpha.example"), ("ta", "alpha.example")];
    let all: Vec<(String, String)> = all.iter().map(|(t, d)| (t.to_string(), d.to_string())).collect();
    assert_eq!(due(400, 10), all, "a bundle given as it is is never due");
    assert_eq!(due(400, 1), all[..1]);
    w(s, |tx| tx.delete_federation(&b, "fixed.example"));
    assert!(w(s, |tx| tx.delete_federation(&a, "alpha.example")));
    assert!(!w(s, |tx| tx.delete_federation(&a, "alpha.example")));
    assert_eq!(names(&b), ["alpha.example"]);
    w(s, |tx| tx.delete_tenant(&b));
    assert!(names(&b).is_empty());
}

fn oidc_client(tenant: &TenantId, id: &str, name: &str, principal: &str) -> OidcClientRecord {
    OidcClientRecord {
        id: id.into(),
        tenant_id: tenant.clone(),
        name: name.into(),
        principal_id: principal.into(),
        secret_hash: Some(format!("hash-of-{id}")),
        spec: "{}".into(),
        created_at: 7,
        updated_at: 7,
    }
}

/// OpenID clients are found by id, and by name in any case, within their
/// tenant only; names are unique per tenant; a principal's clients go with
/// it, and a tenant's with the tenant.
pub fn oidc_clients_round_trip_scoped_by_tenant(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    w(s, |tx| {
        tx.insert_oidc_client(&oidc_client(&a, "c1", "web", "svc-web"))?;
        tx.insert_oidc_client(&oidc_client(&a, "c2", "api", "svc-api"))?;
        tx.insert_oidc_client(&oidc_client(&b, "c3", "web", "svc-b"))
    });
    let err = s.write(|tx| tx.insert_oidc_client(&oidc_client(&a, "c4", "WEB", "svc-web"))).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "one client per name, any case: {err:?}");
    assert_eq!(w(s, |tx| tx.oidc_client_by_name(&a, "Web")).map(|c| c.id), Some("c1".into()));
    assert_eq!(w(s, |tx| tx.oidc_client(&a, "c3")), None, "another tenant's client is not found by id");
    let names = |t: &TenantId| w(s, |tx| tx.list_oidc_clients(t)).into_iter().map(|c| c.name).collect::<Vec<_>>();
    assert_eq!(names(&a), ["api", "web"]);
    let rotated = OidcClientRecord {
        secret_hash: Some("new".into()),
        spec: "{\"x\":1}".into(),
        updated_at: 9,
        ..oidc_client(&a, "c1", "web", "svc-web")
    };
    assert!(w(s, |tx| tx.update_oidc_client(&rotated)));
    assert_eq!(w(s, |tx| tx.oidc_client(&a, "c1")), Some(rotated));
    assert_eq!(w(s, |tx| tx.oidc_client(&b, "c3")), Some(oidc_client(&b, "c3", "web", "svc-b")), "untouched");
    assert_eq!(w(s, |tx| tx.delete_principal_oidc_clients(&a, "svc-web")), 1);
    assert_eq!(names(&a), ["api"]);
    assert!(w(s, |tx| tx.delete_oidc_client(&a, "c2")));
    assert!(!w(s, |tx| tx.delete_oidc_client(&a, "c2")));
    assert_eq!(names(&b), ["web"]);
    w(s, |tx| tx.delete_tenant(&b));
    assert!(names(&b).is_empty());
}

/// A revoked token's `jti` is known within its tenant only, revoking twice
/// is harmless, and the record goes once the token would have expired.
pub fn revoked_tokens_are_scoped_by_tenant_and_pruned_after_expiry(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    assert!(w(s, |tx| tx.revoke_token(&a, "j1", 100, 10)));
    assert!(!w(s, |tx| tx.revoke_token(&a, "j1", 100, 11)), "a second revocation changes nothing");
    assert!(w(s, |tx| tx.revoke_token(&b, "j2", 200, 10)));
    assert!(w(s, |tx| tx.token_revoked(&a, "j1")));
    assert!(!w(s, |tx| tx.token_revoked(&b, "j1")), "another tenant's jti");
    assert_eq!(w(s, |tx| tx.prune_revoked_tokens(100)), 1, "expired at 100: gone at 100");
    assert!(!w(s, |tx| tx.token_revoked(&a, "j1")));
    assert!(w(s, |tx| tx.token_revoked(&b, "j2")));
    w(s, |tx| tx.delete_tenant(&b));
    assert!(!w(s, |tx| tx.token_revoked(&b, "j2")));
}
