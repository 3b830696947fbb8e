//! The conformance suite every [`Store`] backend must pass.
//!
//! Each case takes a fresh, empty, migrated store. A backend's tests invoke
//! [`conformance_tests!`](crate::conformance_tests) with an expression that
//! builds one; the macro emits one `#[test]` per case so failures name the
//! behaviour that broke.

// Test support: a panic here is a failing conformance case, not a crashed server.
#![allow(clippy::unwrap_used)]

mod bulk;
mod ca;
mod dump;
mod join;
mod k8s;
mod workload;

pub use self::bulk::*;
pub use self::ca::*;
pub use self::dump::*;
pub use self::join::*;
pub use self::k8s::*;
pub use self::workload::*;

use crate::{
    AuditHead, AuditRecord, PrincipalKind, PrincipalRecord, SessionRecord, Store, StoreError, StoreExt, TenantId,
    TenantRecord,
};

/// Emits one test per conformance case; `$make` builds a fresh store and
/// must evaluate to something that derefs to a [`Store`].
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            tenants_round_trip, duplicate_tenant_domain_conflicts, principals_are_scoped_by_tenant,
            duplicate_principal_conflicts, names_have_one_owner_across_kinds, principal_update_persists, memberships_and_cascades,
            sessions_round_trip, audit_chain_appends_in_order, audit_heads_carry_their_mac,
            the_newest_checkpoint_of_a_tenant_is_found, failed_transaction_changes_nothing,
            deleting_a_tenant_removes_all_its_data,
            cas_round_trip_scoped_by_tenant, certificate_serials_are_unique, certificates_filter_and_revoke,
            crls_replace_and_are_scoped, delta_crls_replace_and_are_scoped, ocsp_responders_replace_and_are_scoped, deleting_a_tenant_removes_its_ca_data, revoked_entries_are_a_cas_unexpired_revocations,
            revoked_entries_exceed_counts_a_cas_unexpired_revocations, crl_pending_marks_clear_by_generation_scoped_by_tenant,
            join_tokens_round_trip_scoped_by_tenant, trust_revisions_grow_per_tenant,
            trust_changes_are_kept_per_revision_pruned_and_scoped_by_tenant, directory_revisions_grow_per_tenant,
            ca_requests_round_trip_scoped_by_tenant, k8s_clusters_round_trip_scoped_by_tenant, workload_entries_round_trip_scoped_by_tenant, token_keys_round_trip_pruned_and_scoped_by_tenant, federations_round_trip_scoped_by_tenant, oidc_clients_round_trip_scoped_by_tenant, revoked_tokens_are_scoped_by_tenant_and_pruned_after_expiry,
            bulk_certificates_keep_the_invariants_of_one_row_writes, bulk_certificates_refuse_a_bad_row_and_change_nothing,
            bulk_principals_claim_names_and_bump_the_directory_revision, bulk_principals_refuse_a_bad_row_and_change_nothing);
        $crate::conformance_tests!(@pairs $make; dump_round_trips_into_an_empty_store);
    };
    (@pairs $make:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                let (first, second) = ($make, $make);
                $crate::conformance::$case(&*first, &*second);
            }
        )*
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                let store = $make;
                $crate::conformance::$case(&*store);
            }
        )*
    };
}

fn tenant(domain: &str) -> TenantRecord {
    TenantRecord {
        id: TenantId::new(format!("id-{domain}")),
        domain: domain.into(),
        policy: "{}".into(),
        created_at: 1,
    }
}

fn principal(t: &TenantId, kind: PrincipalKind, name: &str) -> PrincipalRecord {
    PrincipalRecord {
        id: format!("{}-{}-{name}", t.as_str(), kind.as_str()),
        tenant_id: t.clone(),
        kind,
        name: name.into(),
        display_name: None,
        email: None,
        hostnames: vec![],
        ips: vec![],
        enabled: true,
        builtin: false,
        password_hash: None,
        credential_epoch: 1,
        failed_logins: 0,
        failure_window_start: None,
        locked_until: None,
        created_at: 10,
        updated_at: 10,
    }
}

fn audit(scope: &TenantId, seq: i64) -> AuditRecord {
    AuditRecord {
        scope: scope.clone(),
        seq,
        at: 100 + seq,
        actor: "operator".into(),
        action: "test".into(),
        target: format!("t{seq}"),
        outcome: "success".into(),
        detail: String::new(),
        prev_hash: format!("h{}", seq - 1),
        hash: format!("h{seq}"),
    }
}

fn w<T>(s: &dyn Store, f: impl FnMut(&mut dyn crate::Tx) -> Result<T, StoreError>) -> T {
    s.write(f).expect("write transaction")
}

/// Tenants can be created, found by id and domain, listed and deleted.
pub fn tenants_round_trip(s: &dyn Store) {
    let a = tenant("a.example");
    let b = tenant("b.example");
    w(s, |tx| {
        tx.insert_tenant(&b)?;
        tx.insert_tenant(&a)
    });
    let (by_domain, by_id, list) =
        w(s, |tx| Ok((tx.tenant_by_domain("a.example")?, tx.tenant(&b.id)?, tx.list_tenants()?)));
    assert_eq!(by_domain, Some(a.clone()));
    assert_eq!(by_id, Some(b.clone()));
    assert_eq!(list, vec![a.clone(), b.clone()], "listed in domain order");
    assert!(w(s, |tx| tx.update_tenant_policy(&b.id, r#"{"machine_domains":["x.example"]}"#)));
    assert_eq!(w(s, |tx| tx.tenant(&b.id)).unwrap().policy, r#"{"machine_domains":["x.example"]}"#);
    assert_eq!(w(s, |tx| tx.tenant(&a.id)).unwrap().policy, a.policy, "only that tenant's policy changes");
    assert!(!w(s, |tx| tx.update_tenant_policy(&TenantId::new("nope"), "{}")));
    assert!(w(s, |tx| tx.delete_tenant(&a.id)));
    assert!(!w(s, |tx| tx.delete_tenant(&a.id)), "second delete finds nothing");
    assert_eq!(w(s, |tx| tx.tenant_by_domain("a.example")), None);
}

/// Two tenants cannot share a domain.
pub fn duplicate_tenant_domain_conflicts(s: &dyn Store) {
    w(s, |tx| tx.insert_tenant(&tenant("a.example")));
    let mut dup = tenant("a.example");
    dup.id = TenantId::new("other");
    let err = s.write(|tx| tx.insert_tenant(&dup)).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

/// A principal is reachable only through its own tenant.
pub fn principals_are_scoped_by_tenant(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    let alice_a = principal(&a, PrincipalKind::User, "alice");
    let alice_b = principal(&b, PrincipalKind::User, "alice");
    w(s, |tx| {
        tx.insert_principal(&alice_a)?;
        tx.insert_principal(&alice_b)
    });
    let got = w(s, |tx| {
        Ok((
            tx.principal(&a, PrincipalKind::User, "alice")?,
            tx.principal_by_id(&b, &alice_a.id)?,
            tx.list_principals(&a, None)?,
            tx.list_principals(&a, Some(PrincipalKind::Group))?,
            tx.principal(&a, PrincipalKind::Group, "alice")?,
        ))
    });
    assert_eq!(got.0, Some(alice_a.clone()));
    assert_eq!(got.1, None, "id of tenant A not visible through tenant B");
    assert_eq!(got.2, vec![alice_a.clone()]);
    assert!(got.3.is_empty());
    assert_eq!(got.4, None, "kind is part of the key");
    assert!(!w(s, |tx| tx.delete_principal(&b, &alice_a.id)), "tenant B cannot delete A's principal");
    assert!(w(s, |tx| tx.principal_by_id(&a, &alice_a.id)).is_some());
}

/// (tenant, kind, name) is unique.
pub fn duplicate_principal_conflicts(s: &dyn Store) {
    let t = TenantId::new("t");
    w(s, |tx| tx.insert_principal(&principal(&t, PrincipalKind::User, "bob")));
    let mut dup = principal(&t, PrincipalKind::User, "bob");
    dup.id = "another-id".into();
    let err = s.write(|tx| tx.insert_principal(&dup)).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    dup.name = "BOB".into();
    let err = s.write(|tx| tx.insert_principal(&dup)).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "names are unique regardless of case: {err:?}");
    let found = w(s, |tx| tx.principal(&t, PrincipalKind::User, "Bob"));
    assert_eq!(found.map(|p| p.name), Some("bob".to_string()), "lookups ignore case");
}

/// A name (a principal's own, or a DNS name registered to it) belongs to one
/// principal of a tenant whatever its kind; groups claim none; updates and
/// deletes release what they drop; other tenants are unaffected.
pub fn names_have_one_owner_across_kinds(s: &dyn Store) {
    let (t, other) = (TenantId::new("t"), TenantId::new("other"));
    let mut svc = principal(&t, PrincipalKind::Service, "payments");
    svc.hostnames = vec!["payments.t.example".into()];
    w(s, |tx| tx.insert_principal(&svc));
    let conflict = |p: &PrincipalRecord| {
        let err = s.write(|tx| tx.insert_principal(p)).unwrap_err();
        assert!(matches!(&err, StoreError::Conflict(m) if m.contains("registered to another principal")), "{err:?}");
    };
    conflict(&principal(&t, PrincipalKind::User, "Payments"));
    conflict(&principal(&t, PrincipalKind::Machine, "PAYMENTS.t.example"));
    assert_eq!(w(s, |tx| tx.principal(&t, PrincipalKind::User, "payments")), None, "a refused insert leaves nothing");
    assert_eq!(w(s, |tx| tx.name_owner(&t, "Payments.T.Example")), Some(svc.id.clone()));
    // Groups claim no name; other tenants have their own names.
    w(s, |tx| tx.insert_principal(&principal(&t, PrincipalKind::Group, "payments")));
    w(s, |tx| tx.insert_principal(&principal(&other, PrincipalKind::User, "payments")));
    // A machine cannot take the service's DNS name by an update either.
    let mut m = principal(&t, PrincipalKind::Machine, "node1.t.example");
    w(s, |tx| tx.insert_principal(&m));
    m.hostnames = vec!["node1.t.example".into(), "payments.t.example".into()];
    let err = s.write(|tx| tx.update_principal(&m)).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(w(s, |tx| tx.principal_by_id(&t, &m.id)).unwrap().hostnames, Vec::<String>::new());
    // What an update drops and a delete removes is free again.
    svc.hostnames = vec![];
    w(s, |tx| tx.update_principal(&svc));
    assert_eq!(w(s, |tx| tx.name_owner(&t, "payments.t.example")), None);
    w(s, |tx| tx.update_principal(&m));
    assert_eq!(w(s, |tx| tx.name_owner(&t, "payments.t.example")), Some(m.id.clone()));
    w(s, |tx| tx.delete_principal(&t, &svc.id));
    w(s, |tx| tx.insert_principal(&principal(&t, PrincipalKind::User, "payments")));
}

/// Every mutable field of a principal survives an update.
pub fn principal_update_persists(s: &dyn Store) {
    let t = TenantId::new("t");
    let mut p = principal(&t, PrincipalKind::Machine, "node1.t.example");
    w(s, |tx| tx.insert_principal(&p));
    p.display_name = Some("Node One".into());
    p.email = Some("ops@t.example".into());
    p.hostnames = vec!["node1.t.example".into(), "n1.t.example".into()];
    p.ips = vec!["10.0.0.1".into(), "::1".into()];
    p.enabled = false;
    p.password_hash = Some("$argon2id$x".into());
    p.credential_epoch = 7;
    p.failed_logins = 3;
    p.failure_window_start = Some(50);
    p.locked_until = Some(99);
    p.updated_at = 20;
    w(s, |tx| tx.update_principal(&p));
    assert_eq!(w(s, |tx| tx.principal_by_id(&t, &p.id)), Some(p));
}

/// Memberships are edges; deleting a principal removes its edges and sessions.
pub fn memberships_and_cascades(s: &dyn Store) {
    let t = TenantId::new("t");
    let g = principal(&t, PrincipalKind::Group, "admins");
    let u = principal(&t, PrincipalKind::User, "carol");
    w(s, |tx| {
        tx.insert_principal(&g)?;
        tx.insert_principal(&u)?;
        tx.add_member(&t, &g.id, &u.id)?;
        tx.insert_session(&SessionRecord {
            token_hash: vec![1, 2, 3],
            tenant_id: t.clone(),
            principal_id: u.id.clone(),
            credential_epoch: 1,
            created_at: 1,
            expires_at: 1000,
        })
    });
    let err = s.write(|tx| tx.add_member(&t, &g.id, &u.id)).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "duplicate membership: {err:?}");
    assert_eq!(w(s, |tx| tx.memberships(&t)).len(), 1);
    assert!(w(s, |tx| tx.memberships(&TenantId::new("other"))).is_empty());
    let direct = w(s, |tx| tx.memberships_of(&t, &u.id));
    assert_eq!(direct, vec![crate::Membership { group_id: g.id.clone(), member_id: u.id.clone() }]);
    assert!(w(s, |tx| tx.memberships_of(&t, &g.id)).is_empty(), "the group is in nothing");
    assert!(w(s, |tx| tx.memberships_of(&TenantId::new("other"), &u.id)).is_empty(), "scoped by tenant");
    assert!(w(s, |tx| tx.delete_principal(&t, &u.id)));
    assert!(w(s, |tx| tx.memberships(&t)).is_empty());
    assert_eq!(w(s, |tx| tx.session(&[1, 2, 3])), None);
    w(s, |tx| tx.add_member(&t, &g.id, "x"));
    assert!(w(s, |tx| tx.remove_member(&t, &g.id, "x")));
    assert!(!w(s, |tx| tx.remove_member(&t, &g.id, "x")));
}

/// Sessions are found by token hash and purged after expiry.
pub fn sessions_round_trip(s: &dyn Store) {
    let t = TenantId::system();
    let mk = |h: u8, exp: i64| SessionRecord {
        token_hash: vec![h; 32],
        tenant_id: t.clone(),
        principal_id: "op".into(),
        credential_epoch: 2,
        created_at: 1,
        expires_at: exp,
    };
    w(s, |tx| {
        tx.insert_session(&mk(1, 100))?;
        tx.insert_session(&mk(2, 300))?;
        tx.insert_session(&mk(3, 300))
    });
    assert_eq!(w(s, |tx| tx.session(&[1; 32])), Some(mk(1, 100)));
    assert_eq!(w(s, |tx| tx.purge_sessions(200)), 1);
    assert_eq!(w(s, |tx| tx.session(&[1; 32])), None);
    assert!(w(s, |tx| tx.delete_session(&[2; 32])));
    assert_eq!(w(s, |tx| tx.delete_sessions_of(&t, "op")), 1);
    assert_eq!(w(s, |tx| tx.session(&[3; 32])), None);
}

/// Audit records append per scope; the head follows; sequence numbers are unique.
pub fn audit_chain_appends_in_order(s: &dyn Store) {
    let sys = TenantId::system();
    let t = TenantId::new("t");
    assert_eq!(w(s, |tx| tx.audit_head(&sys)), None);
    w(s, |tx| {
        for seq in 1..=3 {
            tx.insert_audit(&audit(&sys, seq), "m")?;
        }
        tx.insert_audit(&audit(&t, 1), "m")
    });
    let head = w(s, |tx| tx.audit_head(&sys)).expect("head");
    assert_eq!((head.seq, head.hash.as_str(), head.mac.as_str()), (3, "h3", "m"));
    let all = w(s, |tx| tx.list_audit(&sys, 0, 100));
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(all[1], audit(&sys, 2));
    assert_eq!(w(s, |tx| tx.list_audit(&sys, 1, 1)).len(), 1);
    assert_eq!(w(s, |tx| tx.list_audit(&t, 0, 100)).len(), 1);
    let err = s.write(|tx| tx.insert_audit(&audit(&sys, 2), "m")).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

/// Each append replaces its chain's head MAC; every chain's head is listed;
/// a head is sealed only while it is still at the sequence number named.
pub fn audit_heads_carry_their_mac(s: &dyn Store) {
    let sys = TenantId::system();
    let t = TenantId::new("t");
    w(s, |tx| {
        tx.insert_audit(&audit(&sys, 1), "m1")?;
        tx.insert_audit(&audit(&sys, 2), "m2")?;
        tx.insert_audit(&audit(&t, 1), "")
    });
    let heads = w(s, |tx| tx.audit_heads());
    let head = |seq: i64, mac: &str| AuditHead { seq, hash: format!("h{seq}"), mac: mac.into() };
    assert_eq!(heads, vec![(sys.clone(), head(2, "m2")), (t.clone(), head(1, ""))]);
    assert!(!w(s, |tx| tx.seal_audit_head(&t, 2, "sealed")), "not at seq 2");
    assert!(w(s, |tx| tx.seal_audit_head(&t, 1, "sealed")));
    assert_eq!(w(s, |tx| tx.audit_head(&t)), Some(head(1, "sealed")));
    assert_eq!(w(s, |tx| tx.audit_head(&sys)), Some(head(2, "m2")), "other chains untouched");
}

/// The newest checkpoint of a tenant is found among the system chain's
/// records by action and target; other actions, tenants and chains are not.
pub fn the_newest_checkpoint_of_a_tenant_is_found(s: &dyn Store) {
    let sys = TenantId::system();
    let (a, b) = (TenantId::new("a"), TenantId::new("b"));
    let rec = |scope: &TenantId, seq: i64, action: &str, target: &TenantId| AuditRecord {
        action: action.into(),
        target: target.as_str().into(),
        ..audit(scope, seq)
    };
    assert_eq!(w(s, |tx| tx.last_audit_checkpoint(&a)), None);
    let cp = crate::AUDIT_CHECKPOINT_ACTION;
    w(s, |tx| {
        tx.insert_audit(&rec(&sys, 1, cp, &a), "m")?;
        tx.insert_audit(&rec(&sys, 2, cp, &b), "m")?;
        tx.insert_audit(&rec(&sys, 3, cp, &a), "m")?;
        tx.insert_audit(&rec(&sys, 4, "tenant.create", &a), "m")?;
        tx.insert_audit(&rec(&a, 1, cp, &a), "m")
    });
    assert_eq!(w(s, |tx| tx.last_audit_checkpoint(&a)), Some(rec(&sys, 3, cp, &a)));
    assert_eq!(w(s, |tx| tx.last_audit_checkpoint(&b)).map(|r| r.seq), Some(2));
    assert_eq!(w(s, |tx| tx.last_audit_checkpoint(&TenantId::new("c"))), None);
}

/// An error inside a transaction rolls back everything it wrote.
pub fn failed_transaction_changes_nothing(s: &dyn Store) {
    #[derive(Debug)]
    struct Boom;
    impl From<StoreError> for Boom {
        fn from(_: StoreError) -> Self {
            Boom
        }
    }
    let r: Result<(), Boom> = s.write(|tx| {
        tx.insert_tenant(&tenant("gone.example"))?;
        tx.insert_audit(&audit(&TenantId::system(), 1), "m")?;
        Err(Boom)
    });
    assert!(r.is_err());
    assert_eq!(w(s, |tx| tx.tenant_by_domain("gone.example")), None);
    assert_eq!(w(s, |tx| tx.audit_head(&TenantId::system())), None);
}

/// Deleting a tenant removes its principals, memberships, sessions and audit
/// chain, and nothing of other tenants.
pub fn deleting_a_tenant_removes_all_its_data(s: &dyn Store) {
    let a = tenant("a.example");
    let b = tenant("b.example");
    for t in [&a, &b] {
        let g = principal(&t.id, PrincipalKind::Group, "g");
        let u = principal(&t.id, PrincipalKind::User, "u");
        w(s, |tx| {
            tx.insert_tenant(t)?;
            tx.insert_principal(&g)?;
            tx.insert_principal(&u)?;
            tx.add_member(&t.id, &g.id, &u.id)?;
            tx.insert_session(&SessionRecord {
                token_hash: t.domain.as_bytes().to_vec(),
                tenant_id: t.id.clone(),
                principal_id: u.id.clone(),
                credential_epoch: 1,
                created_at: 1,
                expires_at: 9,
            })?;
            tx.insert_audit(&audit(&t.id, 1), "m")
        });
    }
    assert!(w(s, |tx| tx.delete_tenant(&a.id)));
    let left = w(s, |tx| {
        Ok((
            tx.list_principals(&a.id, None)?,
            tx.memberships(&a.id)?,
            tx.session(a.domain.as_bytes())?,
            tx.list_audit(&a.id, 0, 10)?,
            tx.audit_head(&a.id)?,
        ))
    });
    assert!(left.0.is_empty() && left.1.is_empty() && left.2.is_none() && left.3.is_empty() && left.4.is_none());
    let b_left = w(s, |tx| Ok((tx.list_principals(&b.id, None)?.len(), tx.list_audit(&b.id, 0, 10)?.len())));
    assert_eq!(b_left, (2, 1), "tenant B untouched");
}
