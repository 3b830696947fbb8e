//! Conformance cases of domain join: join tokens, trust and directory revisions.

use crate::{JoinTokenRecord, Store, StoreError, StoreExt, TenantId};

fn token(tenant: &TenantId, id: &str, hash: u8) -> JoinTokenRecord {
    JoinTokenRecord {
        id: id.into(),
        tenant_id: tenant.clone(),
        token_hash: vec![hash; 32],
        hostname: Some("node1.t.example".into()),
        ips: vec!["10.0.0.7".into(), "fd00::7".into()],
        uses_left: 1,
        expires_at: 5000,
        revoked: false,
        allow_rejoin: false,
        created_by: "user:administrator".into(),
        created_at: 10 + i64::from(hash),
    }
}

fn w<T>(s: &dyn Store, f: impl FnMut(&mut dyn crate::Tx) -> Result<T, StoreError>) -> T {
    s.write(f).unwrap()
}

/// Join tokens are found by hash within their tenant only, listed newest first, updated in place.
pub fn join_tokens_round_trip_scoped_by_tenant(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    let t1 = token(&a, "j1", 1);
    let t2 = token(&a, "j2", 2);
    w(s, |tx| {
        tx.insert_join_token(&t1)?;
        tx.insert_join_token(&t2)
    });
    assert_eq!(w(s, |tx| tx.join_token_by_hash(&a, &[1; 32])), Some(t1.clone()));
    assert_eq!(w(s, |tx| tx.join_token_by_hash(&b, &[1; 32])), None, "hash of tenant A not visible through B");
    assert_eq!(w(s, |tx| tx.join_token(&b, "j1")), None);
    let listed: Vec<String> = w(s, |tx| tx.list_join_tokens(&a)).into_iter().map(|t| t.id).collect();
    assert_eq!(listed, ["j2", "j1"]);
    let mut used = t1.clone();
    used.uses_left = 0;
    used.revoked = true;
    w(s, |tx| tx.update_join_token(&used));
    assert_eq!(w(s, |tx| tx.join_token(&a, "j1")), Some(used));
    let err = s.write(|tx| tx.insert_join_token(&token(&a, "j3", 2))).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "token hashes are unique: {err:?}");
}

/// Trust revisions start at 0, only grow, are per tenant, and go with the tenant.
pub fn trust_revisions_grow_per_tenant(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    assert_eq!(w(s, |tx| tx.trust_revision(&a)), 0);
    assert_eq!(w(s, |tx| tx.bump_trust_revision(&a)), 1);
    assert_eq!(w(s, |tx| tx.bump_trust_revision(&a)), 2);
    assert_eq!(w(s, |tx| tx.bump_trust_revision(&b)), 1);
    assert_eq!(w(s, |tx| tx.trust_revision(&a)), 2);
    let mut all = w(s, |tx| tx.trust_revisions());
    all.sort();
    assert_eq!(all, vec![(a.clone(), 2), (b.clone(), 1)]);
    w(s, |tx| tx.insert_join_token(&token(&a, "j1", 1)));
    w(s, |tx| tx.delete_tenant(&a));
    assert_eq!(w(s, |tx| tx.trust_revision(&a)), 0);
    assert!(w(s, |tx| tx.list_join_tokens(&a)).is_empty());
    assert_eq!(w(s, |tx| tx.trust_revision(&b)), 1);
}

/// Trust changes are kept per tenant and revision, read after a revision in
/// order, pruned up to a revision, and go with the tenant.
pub fn trust_changes_are_kept_per_revision_pruned_and_scoped_by_tenant(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    for revision in 1..=5 {
        w(s, |tx| tx.insert_trust_change(&a, revision, format!("a{revision}").as_bytes()));
    }
    w(s, |tx| tx.insert_trust_change(&b, 1, b"b1"));
    assert!(matches!(s.write(|tx| tx.insert_trust_change(&a, 3, b"again")), Err(StoreError::Conflict(_))));
    let since = |t: &TenantId, r: i64| w(s, |tx| tx.trust_changes_since(t, r));
    assert_eq!(since(&a, 3), vec![(4, b"a4".to_vec()), (5, b"a5".to_vec())]);
    assert_eq!(since(&a, 0).len(), 5);
    assert!(since(&a, 5).is_empty());
    let size = |t: &TenantId, r: i64| w(s, |tx| tx.trust_changes_size(t, r));
    assert_eq!(size(&a, 3), (2, 4), "two bodies of two bytes");
    assert_eq!(size(&a, 0), (5, 10));
    assert_eq!(size(&a, 5), (0, 0));
    assert_eq!(size(&b, 0), (1, 2));
    w(s, |tx| tx.prune_trust_changes(&a, 2));
    assert_eq!(since(&a, 0).iter().map(|(r, _)| *r).collect::<Vec<_>>(), vec![3, 4, 5]);
    assert_eq!(since(&b, 0), vec![(1, b"b1".to_vec())]);
    w(s, |tx| tx.delete_tenant(&a));
    assert!(since(&a, 0).is_empty());
    assert_eq!(since(&b, 0).len(), 1);
}

/// Directory revisions start at 0, only grow, are per tenant, are separate
/// from trust revisions, and go with the tenant.
pub fn directory_revisions_grow_per_tenant(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    assert_eq!(w(s, |tx| tx.directory_revision(&a)), 0);
    assert_eq!(w(s, |tx| tx.bump_directory_revision(&a)), 1);
    assert_eq!(w(s, |tx| tx.bump_directory_revision(&a)), 2);
    assert_eq!(w(s, |tx| tx.bump_directory_revision(&b)), 1);
    assert_eq!(w(s, |tx| tx.directory_revision(&a)), 2);
    assert_eq!(w(s, |tx| tx.trust_revision(&a)), 0, "a separate counter");
    let failed = s.write(|tx| {
        tx.bump_directory_revision(&a)?;
        Err::<(), _>(StoreError::Conflict("rolled back".into()))
    });
    assert!(failed.is_err());
    assert_eq!(w(s, |tx| tx.directory_revision(&a)), 2, "a rolled-back bump is not seen");
    w(s, |tx| tx.delete_tenant(&a));
    assert_eq!(w(s, |tx| tx.directory_revision(&a)), 0);
    assert_eq!(w(s, |tx| tx.directory_revision(&b)), 1);
}
