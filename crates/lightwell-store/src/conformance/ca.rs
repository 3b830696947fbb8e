//! Conformance cases of the certificate authority tables.

use super::{tenant, w};
use crate::{
    CaRecord, CaRequestRecord, CaRole, CaStatus, CertificateFilter, CertificateRecord, CrlPending, CrlRecord,
    DeltaCrlRecord, OcspResponderRecord, PrincipalKind, Store, StoreError, StoreExt, TenantId,
};

pub(super) fn ca(t: &TenantId, name: &str, role: CaRole) -> CaRecord {
    CaRecord {
        id: format!("{}-{name}", t.as_str()),
        tenant_id: t.clone(),
        name: name.into(),
        parent_id: None,
        role,
        cert_der: vec![0x30, 1],
        sealed_key: vec![9; 40],
        status: CaStatus::Active,
        is_default: false,
        next_crl_number: 1,
        revoked_at: None,
        revocation_reason: None,
        created_at: 5,
    }
}

pub(super) fn cert(t: &TenantId, serial: &str, ca_id: &str, principal: &str) -> CertificateRecord {
    CertificateRecord {
        serial: serial.into(),
        tenant_id: t.clone(),
        ca_id: ca_id.into(),
        principal_id: principal.into(),
        principal_kind: PrincipalKind::Machine,
        principal_name: format!("{principal}.example"),
        profile: "server-client".into(),
        der: vec![0x30, 2],
        not_before: 10,
        not_after: 20,
        requester: "user:administrator".into(),
        created_at: 10,
        revoked_at: None,
        revocation_reason: None,
    }
}

/// CAs round-trip, are scoped by tenant, keep their updates, and names are unique per tenant.
pub fn cas_round_trip_scoped_by_tenant(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    let root = ca(&a, "root", CaRole::Root);
    let mut issuing = ca(&a, "issuing", CaRole::Intermediate);
    issuing.parent_id = Some(root.id.clone());
    issuing.is_default = true;
    issuing.created_at = 6;
    w(s, |tx| {
        tx.insert_ca(&root)?;
        tx.insert_ca(&issuing)
    });
    assert_eq!(w(s, |tx| tx.list_cas(&a)), vec![root.clone(), issuing.clone()]);
    assert_eq!(w(s, |tx| tx.ca(&a, &issuing.id)), Some(issuing.clone()));
    assert_eq!(w(s, |tx| tx.ca(&b, &issuing.id)), None, "tenant B cannot see A's CA");
    assert!(w(s, |tx| tx.list_cas(&b)).is_empty());
    issuing.status = CaStatus::Revoked;
    issuing.is_default = false;
    issuing.next_crl_number = 42;
    issuing.revoked_at = Some(77);
    issuing.revocation_reason = Some("ca-compromise".into());
    w(s, |tx| tx.update_ca(&issuing));
    assert_eq!(w(s, |tx| tx.ca(&a, &issuing.id)), Some(issuing.clone()));
    let mut dup = ca(&a, "ROOT", CaRole::Root);
    dup.id = "other".into();
    let err = s.write(|tx| tx.insert_ca(&dup)).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "CA names are unique regardless of case: {err:?}");
    let mut wrong_tenant = issuing.clone();
    wrong_tenant.tenant_id = b.clone();
    assert!(s.write(|tx| tx.update_ca(&wrong_tenant)).is_err(), "tenant B cannot update A's CA");
}

/// A serial is never recorded twice, not even in another tenant.
pub fn certificate_serials_are_unique(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    w(s, |tx| tx.insert_certificate(&cert(&a, "4a01", "ca", "p1")));
    let err = s.write(|tx| tx.insert_certificate(&cert(&b, "4a01", "ca", "p1"))).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(w(s, |tx| tx.certificate(&a, "4a01")), Some(cert(&a, "4a01", "ca", "p1")));
    assert_eq!(w(s, |tx| tx.certificate(&b, "4a01")), None, "tenant B cannot see A's certificate");
}

/// Listing filters by CA, principal and revocation; revoking happens once and only in the owning tenant.
pub fn certificates_filter_and_revoke(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    w(s, |tx| {
        tx.insert_certificate(&cert(&a, "4a01", "ca1", "p1"))?;
        tx.insert_certificate(&cert(&a, "4a02", "ca1", "p2"))?;
        let mut by_machine = cert(&a, "4a03", "ca2", "p1");
        by_machine.requester = "machine:node1.ta.example".into();
        tx.insert_certificate(&by_machine)?;
        tx.insert_certificate(&cert(&b, "4b01", "ca1", "p1"))
    });
    let serials = |f: CertificateFilter| -> Vec<String> {
        w(s, |tx| tx.list_certificates(&a, &f)).into_iter().map(|c| c.serial).collect()
    };
    assert_eq!(serials(CertificateFilter::default()), ["4a01", "4a02", "4a03"]);
    assert_eq!(serials(CertificateFilter { ca_id: Some("ca1".into()), ..Default::default() }), ["4a01", "4a02"]);
    assert_eq!(serials(CertificateFilter { principal_id: Some("p1".into()), ..Default::default() }), ["4a01", "4a03"]);
    let by = |r: &str| CertificateFilter { requester: Some(r.into()), ..Default::default() };
    assert_eq!(serials(by("machine:node1.ta.example")), ["4a03"]);
    assert_eq!(serials(by("user:administrator")), ["4a01", "4a02"]);
    assert!(!w(s, |tx| tx.revoke_certificate(&b, "4a01", 15, "key-compromise")), "tenant B cannot revoke A's");
    assert!(w(s, |tx| tx.revoke_certificate(&a, "4a01", 15, "key-compromise")));
    assert!(!w(s, |tx| tx.revoke_certificate(&a, "4a01", 16, "superseded")), "revoked once");
    let revoked = w(s, |tx| tx.certificate(&a, "4a01")).expect("cert");
    assert_eq!((revoked.revoked_at, revoked.revocation_reason.as_deref()), (Some(15), Some("key-compromise")));
    assert_eq!(serials(CertificateFilter { revoked: Some(true), ..Default::default() }), ["4a01"]);
    assert_eq!(serials(CertificateFilter { revoked: Some(false), ..Default::default() }), ["4a02", "4a03"]);
}

/// A CA's CRL entries: its revoked certificates not yet expired, by serial, in its tenant only.
pub fn revoked_entries_are_a_cas_unexpired_revocations(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    let mut expired = cert(&a, "4a04", "ca1", "p1");
    expired.not_after = 5;
    w(s, |tx| {
        for c in [
            cert(&a, "4a02", "ca1", "p1"),
            cert(&a, "4a01", "ca1", "p2"),
            cert(&a, "4a03", "ca2", "p1"),
            expired.clone(),
        ] {
            tx.insert_certificate(&c)?;
        }
        tx.insert_certificate(&cert(&b, "4b01", "ca1", "p1"))?;
        for (t, serial) in [(&a, "4a01"), (&a, "4a02"), (&a, "4a03"), (&a, "4a04"), (&b, "4b01")] {
            tx.revoke_certificate(t, serial, 15, "key-compromise")?;
        }
        tx.insert_certificate(&cert(&a, "4a05", "ca1", "p1"))
    });
    let entries = w(s, |tx| tx.revoked_entries(&a, "ca1", 10));
    let serials: Vec<&str> = entries.iter().map(|e| e.serial.as_str()).collect();
    assert_eq!(serials, ["4a01", "4a02"], "revoked, of ca1, of tenant A, not expired before 10");
    assert_eq!((entries[0].revoked_at, entries[0].reason.as_deref()), (15, Some("key-compromise")));
    assert_eq!(w(s, |tx| tx.revoked_entries(&a, "ca1", 0)).len(), 3, "with the expired one");
}

/// The latest CRL of a CA replaces the one before and is visible only in its tenant.
pub fn crls_replace_and_are_scoped(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    let mk = |number| CrlRecord {
        ca_id: "ca1".into(),
        tenant_id: a.clone(),
        number,
        der: vec![number as u8],
        this_update: number,
        next_update: number + 100,
    };
    w(s, |tx| tx.put_crl(&mk(1)));
    w(s, |tx| tx.put_crl(&mk(2)));
    assert_eq!(w(s, |tx| tx.crl(&a, "ca1")), Some(mk(2)));
    assert_eq!(w(s, |tx| tx.crl(&b, "ca1")), None);
}

/// The latest delta CRL of a CA replaces the one before, keeps its base's
/// number, is visible only in its tenant, leaves the complete CRL alone, and
/// another tenant cannot overwrite it.
pub fn delta_crls_replace_and_are_scoped(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    let mk = |tenant: &TenantId, number, base_number| DeltaCrlRecord {
        crl: CrlRecord {
            ca_id: "ca1".into(),
            tenant_id: tenant.clone(),
            number,
            der: vec![number as u8],
            this_update: number,
            next_update: number + 100,
        },
        base_number,
        base_this_update: base_number * 10,
    };
    assert_eq!(w(s, |tx| tx.delta_crl(&a, "ca1")), None);
    w(s, |tx| tx.put_delta_crl(&mk(&a, 2, 1)));
    w(s, |tx| tx.put_delta_crl(&mk(&a, 3, 1)));
    assert_eq!(w(s, |tx| tx.delta_crl(&a, "ca1")), Some(mk(&a, 3, 1)));
    assert_eq!(w(s, |tx| tx.crl(&a, "ca1")), None, "a delta is not the complete CRL");
    assert_eq!(w(s, |tx| tx.delta_crl(&b, "ca1")), None);
    w(s, |tx| tx.put_delta_crl(&mk(&b, 9, 8)));
    assert_eq!(w(s, |tx| tx.delta_crl(&a, "ca1")), Some(mk(&a, 3, 1)), "tenant B cannot replace A's delta");
    w(s, |tx| tx.put_delta_crl(&mk(&a, 5, 4)));
    assert_eq!(w(s, |tx| tx.delta_crl(&a, "ca1")), Some(mk(&a, 5, 4)), "a new base moves the delta on");
}

/// A CA's OCSP responder replaces the one before, is visible only in its
/// tenant, and another tenant cannot overwrite it.
pub fn ocsp_responders_replace_and_are_scoped(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    let mk = |tenant: &TenantId, n: i64| OcspResponderRecord {
        ca_id: "ca1".into(),
        tenant_id: tenant.clone(),
        cert_der: vec![n as u8],
        sealed_key: vec![n as u8; 40],
        not_before: n,
        not_after: n + 100,
        created_at: n,
    };
    assert_eq!(w(s, |tx| tx.ocsp_responder(&a, "ca1")), None);
    w(s, |tx| tx.put_ocsp_responder(&mk(&a, 1)));
    w(s, |tx| tx.put_ocsp_responder(&mk(&a, 2)));
    assert_eq!(w(s, |tx| tx.ocsp_responder(&a, "ca1")), Some(mk(&a, 2)));
    assert_eq!(w(s, |tx| tx.ocsp_responder(&b, "ca1")), None);
    w(s, |tx| tx.put_ocsp_responder(&mk(&b, 3)));
    assert_eq!(w(s, |tx| tx.ocsp_responder(&a, "ca1")), Some(mk(&a, 2)), "tenant B cannot replace A's responder");
    assert_eq!(w(s, |tx| tx.ocsp_responder(&b, "ca1")), None);
}

/// Deleting a tenant removes its CAs, certificates and CRLs, and nothing of other tenants.
pub fn deleting_a_tenant_removes_its_ca_data(s: &dyn Store) {
    let (ta, tb) = (tenant("a.example"), tenant("b.example"));
    for (t, serial) in [(&ta, "4a01"), (&tb, "4b01")] {
        let root = ca(&t.id, "root", CaRole::Root);
        w(s, |tx| {
            tx.insert_tenant(t)?;
            tx.insert_ca(&root)?;
            tx.insert_certificate(&cert(&t.id, serial, &root.id, "p"))?;
            tx.put_crl(&CrlRecord {
                ca_id: root.id.clone(),
                tenant_id: t.id.clone(),
                number: 1,
                der: vec![1],
                this_update: 1,
                next_update: 2,
            })?;
            tx.put_delta_crl(&DeltaCrlRecord {
                crl: CrlRecord {
                    ca_id: root.id.clone(),
                    tenant_id: t.id.clone(),
                    number: 2,
                    der: vec![2],
                    this_update: 1,
                    next_update: 2,
                },
                base_number: 1,
                base_this_update: 1,
            })?;
            tx.put_ocsp_responder(&OcspResponderRecord {
                ca_id: root.id.clone(),
                tenant_id: t.id.clone(),
                cert_der: vec![1],
                sealed_key: vec![1; 40],
                not_before: 1,
                not_after: 2,
                created_at: 1,
            })
        });
    }
    assert!(w(s, |tx| tx.delete_tenant(&ta.id)));
    let a_root = format!("{}-root", ta.id.as_str());
    let left = w(s, |tx| {
        Ok((
            tx.list_cas(&ta.id)?,
            tx.list_certificates(&ta.id, &CertificateFilter::default())?,
            tx.crl(&ta.id, &a_root)?,
            tx.ocsp_responder(&ta.id, &a_root)?,
            tx.delta_crl(&ta.id, &a_root)?,
        ))
    });
    assert!(left.0.is_empty() && left.1.is_empty() && left.2.is_none() && left.3.is_none() && left.4.is_none());
    let b_root = format!("{}-root", tb.id.as_str());
    let b_left = w(s, |tx| Ok((tx.list_cas(&tb.id)?.len(), tx.certificate(&tb.id, "4b01")?, tx.crl(&tb.id, &b_root)?)));
    assert!(b_left.0 == 1 && b_left.1.is_some() && b_left.2.is_some(), "tenant B untouched");
    assert!(w(s, |tx| tx.ocsp_responder(&tb.id, &b_root)).is_some(), "tenant B's responder untouched");
    assert!(w(s, |tx| tx.delta_crl(&tb.id, &b_root)).is_some(), "tenant B's delta CRL untouched");
}

/// Intermediates waiting for a signature round-trip, are found by name in any
/// letter case, are scoped by tenant, have unique names, and can be removed.
pub fn ca_requests_round_trip_scoped_by_tenant(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    let req = CaRequestRecord {
        id: "req-1".into(),
        tenant_id: a.clone(),
        name: "Enterprise".into(),
        csr_der: vec![0x30, 3],
        sealed_key: vec![7; 40],
        created_at: 9,
    };
    w(s, |tx| tx.insert_ca_request(&req));
    assert_eq!(w(s, |tx| tx.ca_request(&a, "enterprise")), Some(req.clone()));
    assert_eq!(w(s, |tx| tx.ca_request(&b, "enterprise")), None, "tenant B cannot see A's request");
    let dup = CaRequestRecord { id: "req-2".into(), name: "ENTERPRISE".into(), ..req.clone() };
    assert!(matches!(s.write(|tx| tx.insert_ca_request(&dup)), Err(StoreError::Conflict(_))));
    let in_b = CaRequestRecord { id: "req-3".into(), tenant_id: b.clone(), ..req.clone() };
    w(s, |tx| tx.insert_ca_request(&in_b));
    assert!(!w(s, |tx| tx.delete_ca_request(&b, &req.id)), "tenant B cannot remove A's request");
    assert!(w(s, |tx| tx.delete_ca_request(&a, &req.id)));
    assert_eq!(w(s, |tx| tx.ca_request(&a, "enterprise")), None);
    assert!(w(s, |tx| tx.ca_request(&b, "enterprise")).is_some());
}

/// Whether a CA's CRL is large is answered from its unexpired revocations
/// only, per CA and tenant, exactly at the limit.
pub fn revoked_entries_exceed_counts_a_cas_unexpired_revocations(s: &dyn Store) {
    let (a, b) = (tenant("a.example"), tenant("b.example"));
    let root = ca(&a.id, "root", CaRole::Root);
    w(s, |tx| {
        tx.insert_tenant(&a)?;
        tx.insert_tenant(&b)?;
        tx.insert_ca(&root)?;
        for (serial, not_after) in [("01", 20), ("02", 20), ("03", 20), ("04", 5)] {
            let mut c = cert(&a.id, serial, &root.id, "p");
            c.not_after = not_after;
            tx.insert_certificate(&c)?;
            tx.revoke_certificate(&a.id, serial, 12, "superseded")?;
        }
        // Unrevoked, and another CA's revocation: neither counts.
        tx.insert_certificate(&cert(&a.id, "05", &root.id, "p"))?;
        tx.insert_certificate(&cert(&a.id, "06", "other-ca", "p"))?;
        tx.revoke_certificate(&a.id, "06", 12, "superseded")?;
        // Tenant B's revocation under the same CA id counts only in B.
        tx.insert_certificate(&cert(&b.id, "07", &root.id, "p"))?;
        tx.revoke_certificate(&b.id, "07", 12, "superseded")
    });
    let exceeds = |t: &TenantId, limit| w(s, |tx| tx.revoked_entries_exceed(t, &root.id, 10, limit));
    assert!(exceeds(&a.id, 0) && exceeds(&a.id, 2));
    assert!(!exceeds(&a.id, 3), "three unexpired revocations do not exceed three (the expired one does not count)");
    assert!(!exceeds(&a.id, u64::MAX));
    assert!(exceeds(&b.id, 0) && !exceeds(&b.id, 1), "tenant B counts only its own revocation");
}

/// Marks of CAs whose CRL awaits a re-sign: each mark raises the
/// generation, a clear removes only the generation it names (or any), and
/// marks are scoped by tenant and go with their tenant.
pub fn crl_pending_marks_clear_by_generation_scoped_by_tenant(s: &dyn Store) {
    let (a, b) = (tenant("a.example"), tenant("b.example"));
    w(s, |tx| {
        tx.insert_tenant(&a)?;
        tx.insert_tenant(&b)
    });
    assert!(w(s, |tx| tx.tenants_with_pending_crls()).is_empty());
    assert_eq!(w(s, |tx| tx.mark_crl_pending(&a.id, "ca1", 100)), 1);
    assert_eq!(w(s, |tx| tx.mark_crl_pending(&a.id, "ca1", 101)), 2);
    assert_eq!(w(s, |tx| tx.mark_crl_pending(&a.id, "ca2", 102)), 1);
    let pending = |t: &TenantId| w(s, |tx| tx.pending_crls(t));
    let mark = |ca_id: &str, generation, marked_at| CrlPending { ca_id: ca_id.into(), generation, marked_at };
    assert_eq!(pending(&a.id), vec![mark("ca1", 2, 100), mark("ca2", 1, 102)], "the first mark's time stays");
    assert!(pending(&b.id).is_empty(), "tenant B sees none of A's marks");
    assert_eq!(w(s, |tx| tx.tenants_with_pending_crls()), vec![a.id.clone()]);

    assert!(!w(s, |tx| tx.clear_crl_pending(&b.id, "ca1", None)), "tenant B cannot clear A's mark");
    assert!(!w(s, |tx| tx.clear_crl_pending(&a.id, "ca1", Some(1))), "a signer that read generation 1 leaves 2");
    assert_eq!(pending(&a.id)[0], mark("ca1", 2, 100));
    assert!(w(s, |tx| tx.clear_crl_pending(&a.id, "ca1", Some(2))));
    assert_eq!(pending(&a.id), vec![mark("ca2", 1, 102)]);
    assert!(w(s, |tx| tx.clear_crl_pending(&a.id, "ca2", None)), "a CRL signed in the marking transaction clears any");
    assert!(pending(&a.id).is_empty() && w(s, |tx| tx.tenants_with_pending_crls()).is_empty());

    // A mark made in a transaction that fails is not kept.
    let failed = s.write(|tx| {
        tx.mark_crl_pending(&a.id, "ca1", 103)?;
        Err::<(), _>(StoreError::Backend("the revoking transaction failed".into()))
    });
    assert!(failed.is_err() && pending(&a.id).is_empty());

    w(s, |tx| {
        tx.mark_crl_pending(&a.id, "ca1", 104)?;
        tx.mark_crl_pending(&b.id, "ca1", 105)
    });
    assert!(w(s, |tx| tx.delete_tenant(&a.id)));
    assert!(pending(&a.id).is_empty(), "deleting a tenant removes its marks");
    assert_eq!(pending(&b.id), vec![mark("ca1", 1, 105)]);
}
