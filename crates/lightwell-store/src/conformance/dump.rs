//! Conformance case of export and import (`lightwelld migrate`).

use super::{audit, principal, tenant, w};
use crate::{
    CaRecord, CaRequestRecord, CaRole, CaStatus, CertificateRecord, CrlRecord, DeltaCrlRecord, JoinTokenRecord,
    K8sClusterRecord, OcspResponderRecord, PrincipalKind, SessionRecord, Store, StoreError, TenantId, TokenKeyRecord,
    Value, WorkloadEntryRecord,
};

/// Puts at least one row in every table, with NULLs, booleans and bytes.
fn fill(s: &dyn Store) {
    let t = tenant("dump.example");
    let id = t.id.clone();
    let mut alice = principal(&id, PrincipalKind::User, "alice");
    alice.password_hash = Some("$argon2id$x".into());
    alice.locked_until = Some(77);
    let group = principal(&id, PrincipalKind::Group, "admins");
    let ca = CaRecord {
        id: "ca-1".into(),
        tenant_id: id.clone(),
        name: "root".into(),
        parent_id: None,
        role: CaRole::Root,
        cert_der: vec![0x30, 3, 0],
        sealed_key: vec![7; 40],
        status: CaStatus::Active,
        is_default: true,
        next_crl_number: 4,
        revoked_at: None,
        revocation_reason: None,
        created_at: 5,
    };
    let cert = CertificateRecord {
        serial: "0a0b".into(),
        tenant_id: id.clone(),
        ca_id: ca.id.clone(),
        principal_id: alice.id.clone(),
        principal_kind: PrincipalKind::User,
        principal_name: "alice".into(),
        profile: "client".into(),
        der: vec![0x30, 0],
        not_before: 10,
        not_after: 20,
        requester: "user:alice".into(),
        created_at: 10,
        revoked_at: None,
        revocation_reason: None,
    };
    w(s, |tx| {
        tx.insert_tenant(&t)?;
        tx.insert_principal(&alice)?;
        tx.insert_principal(&group)?;
        tx.add_member(&id, &group.id, &alice.id)?;
        tx.insert_session(&SessionRecord {
            token_hash: vec![1; 32],
            tenant_id: id.clone(),
            principal_id: alice.id.clone(),
            credential_epoch: 1,
            created_at: 1,
            expires_at: 99,
        })?;
        tx.insert_audit(&audit(&id, 1), "m")?;
        tx.insert_audit(&audit(&TenantId::system(), 1), "m")?;
        tx.insert_ca(&ca)?;
        tx.insert_certificate(&cert)?;
        tx.revoke_certificate(&id, &cert.serial, 15, "key-compromise")?;
        tx.put_crl(&CrlRecord {
            ca_id: ca.id.clone(),
            tenant_id: id.clone(),
            number: 3,
            der: vec![0x30, 1],
            this_update: 15,
            next_update: 115,
        })?;
        tx.put_delta_crl(&DeltaCrlRecord {
            crl: CrlRecord {
                ca_id: ca.id.clone(),
                tenant_id: id.clone(),
                number: 4,
                der: vec![0x30, 3],
                this_update: 16,
                next_update: 116,
            },
            base_number: 3,
            base_this_update: 15,
        })?;
        tx.mark_crl_pending(&id, &ca.id, 16)?;
        tx.put_ocsp_responder(&OcspResponderRecord {
            ca_id: ca.id.clone(),
            tenant_id: id.clone(),
            cert_der: vec![0x30, 2],
            sealed_key: vec![9; 40],
            not_before: 10,
            not_after: 20,
            created_at: 11,
        })?;
        tx.insert_join_token(&JoinTokenRecord {
            id: "jt-1".into(),
            tenant_id: id.clone(),
            token_hash: vec![2; 32],
            hostname: None,
            ips: vec!["10.1.2.3".into()],
            uses_left: 3,
            expires_at: 500,
            revoked: false,
            allow_rejoin: true,
            created_by: "user:administrator".into(),
            created_at: 12,
        })?;
        let revision = tx.bump_trust_revision(&id)?;
        tx.insert_trust_change(&id, revision, b"{\"crl\":{}}")?;
        tx.bump_directory_revision(&id)?;
        tx.insert_ca_request(&CaRequestRecord {
            id: "req-1".into(),
            tenant_id: id.clone(),
            name: "enterprise".into(),
            csr_der: vec![0x30, 4],
            sealed_key: vec![8; 40],
            created_at: 13,
        })?;
        tx.insert_k8s_cluster(&K8sClusterRecord {
            id: "k8s-1".into(),
            tenant_id: id.clone(),
            name: "prod".into(),
            spec: "{\"nodes\":[]}".into(),
            created_at: 14,
        })?;
        tx.insert_workload_entry(&WorkloadEntryRecord {
            id: "wl-1".into(),
            tenant_id: id.clone(),
            name: "web".into(),
            service_id: "svc-1".into(),
            spec: "{\"selectors\":[]}".into(),
            created_at: 15,
        })?;
        tx.insert_token_key(&TokenKeyRecord {
            id: "kid-1".into(),
            tenant_id: id.clone(),
            algorithm: "ES256".into(),
            public_jwk: "{\"kty\":\"EC\"}".into(),
            sealed_key: vec![0, 1, 255],
            created_at: 16,
            activates_at: 16,
            retires_at: 17,
            expires_at: 18,
        })?;
        tx.insert_federation(&crate::FederationRecord {
            tenant_id: id.clone(),
            trust_domain: "partner.example".into(),
            endpoint_url: Some("https://spire.partner.example/".into()),
            endpoint_ca_pem: None,
            bundle: Some("{\"keys\":[]}".into()),
            sequence: Some(19),
            fetched_at: Some(19),
            next_fetch_at: 20,
            last_error: None,
            created_at: 19,
            updated_at: 19,
        })?;
        tx.insert_oidc_client(&crate::OidcClientRecord {
            id: "client-1".into(),
            tenant_id: id.clone(),
            name: "billing".into(),
            principal_id: "p-billing".into(),
            secret_hash: None,
            spec: "{\"grants\":[]}".into(),
            created_at: 21,
            updated_at: 22,
        })?;
        tx.revoke_token(&id, "jti-1", 30, 23).map(drop)
    });
}

/// A dump loads into an empty store unchanged (every table, NULLs, booleans,
/// bytes), and a store that already holds data refuses it without change.
pub fn dump_round_trips_into_an_empty_store(source: &dyn Store, target: &dyn Store) {
    fill(source);
    let dump = source.export().unwrap();
    for (table, rows) in dump.counts() {
        assert!(rows > 0, "the filled store has rows in {table}");
    }
    assert!(dump.tables.iter().flat_map(|t| &t.rows).flatten().any(|v| *v == Value::Null));
    assert!(dump.tables.iter().flat_map(|t| &t.rows).flatten().any(|v| *v == Value::Bool(true)));

    target.import(&dump).unwrap();
    assert_eq!(target.export().unwrap(), dump, "the copy is identical");

    assert!(matches!(source.import(&dump), Err(StoreError::Conflict(_))), "a non-empty target is refused");
    assert_eq!(source.export().unwrap(), dump, "a refused import changes nothing");
}
