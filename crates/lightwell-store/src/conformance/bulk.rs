//! Conformance cases of the bulk inserts (seeding big databases): they keep
//! the invariants of one-row writes, and a batch with one bad row is refused
//! whole and changes nothing.

use super::ca::{ca, cert};
use super::{principal, tenant, w};
use crate::{
    CaRole, CertificateFilter, CertificateRecord, CrlPending, PrincipalKind, PrincipalRecord, Store, StoreError,
    StoreExt, TenantId, TenantRecord,
};

/// More rows than one PostgreSQL statement takes, so batches span statements.
const ROWS: usize = 4_100;

/// Two tenants, each with an issuing CA and a machine.
fn two_tenants(s: &dyn Store) -> (TenantRecord, TenantRecord) {
    let (a, b) = (tenant("a.example"), tenant("b.example"));
    w(s, |tx| {
        for t in [&a, &b] {
            tx.insert_tenant(t)?;
            tx.insert_ca(&ca(&t.id, "issuing", CaRole::Intermediate))?;
            tx.insert_principal(&principal(&t.id, PrincipalKind::Machine, "web"))?;
        }
        Ok(())
    });
    (a, b)
}

fn certs(t: &TenantId, prefix: &str, n: usize) -> Vec<CertificateRecord> {
    let (ca_id, machine) = (format!("{}-issuing", t.as_str()), format!("{}-machine-web", t.as_str()));
    (0..n).map(|i| cert(t, &format!("{prefix}{i:06x}"), &ca_id, &machine)).collect()
}

/// What a refused batch must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    certificates: Vec<Vec<CertificateRecord>>,
    principals: Vec<Vec<PrincipalRecord>>,
    directory: Vec<i64>,
    trust: Vec<i64>,
    pending: Vec<Vec<CrlPending>>,
}

fn snapshot(s: &dyn Store, tenants: &[&TenantId]) -> Snapshot {
    w(s, |tx| {
        let mut snap =
            Snapshot { certificates: vec![], principals: vec![], directory: vec![], trust: vec![], pending: vec![] };
        for t in tenants {
            snap.certificates.push(tx.list_certificates(t, &CertificateFilter::default())?);
            snap.principals.push(tx.list_principals(t, None)?);
            snap.directory.push(tx.directory_revision(t)?);
            snap.trust.push(tx.trust_revision(t)?);
            snap.pending.push(tx.pending_crls(t)?);
        }
        Ok(snap)
    })
}

/// Certificates inserted in bulk read back like one-row inserts; the
/// directory revision moves once a batch; a CA whose revoked certificates
/// arrived is marked for its CRL to be re-signed (at the latest revocation);
/// the other tenant sees none of it.
pub fn bulk_certificates_keep_the_invariants_of_one_row_writes(s: &dyn Store) {
    let (a, b) = two_tenants(s);
    let before = snapshot(s, &[&b.id]);
    let mut batch = certs(&a.id, "aa", ROWS);
    for (i, c) in batch.iter_mut().enumerate().filter(|(i, _)| i % 1000 == 7) {
        c.revoked_at = Some(500 + i as i64);
        c.revocation_reason = Some("key-compromise".into());
    }
    let revision = w(s, |tx| tx.directory_revision(&a.id));
    w(s, |tx| tx.insert_certificates(&a.id, &batch));
    let stored = w(s, |tx| tx.list_certificates(&a.id, &CertificateFilter::default()));
    assert_eq!(stored.len(), ROWS);
    let mut sorted = stored.clone();
    sorted.sort_by(|x, y| x.serial.cmp(&y.serial));
    assert_eq!(sorted, batch, "every row reads back as written");
    assert_eq!(w(s, |tx| tx.certificate(&a.id, &batch[4007].serial)), Some(batch[4007].clone()));
    assert_eq!(w(s, |tx| tx.directory_revision(&a.id)), revision + 1, "one bump for the batch");
    let latest = 500 + 4007;
    let mark = CrlPending { ca_id: format!("{}-issuing", a.id.as_str()), generation: 1, marked_at: latest };
    assert_eq!(w(s, |tx| tx.pending_crls(&a.id)), vec![mark]);
    assert_eq!(w(s, |tx| tx.revoked_entries(&a.id, "id-a.example-issuing", 0)).len(), 5);
    assert_eq!(snapshot(s, &[&b.id]), before, "tenant B is untouched");
    // A batch of unrevoked certificates marks no CRL.
    w(s, |tx| tx.clear_crl_pending(&a.id, "id-a.example-issuing", None));
    w(s, |tx| tx.insert_certificates(&a.id, &certs(&a.id, "ab", 3)));
    assert!(w(s, |tx| tx.pending_crls(&a.id)).is_empty());
    assert_eq!(w(s, |tx| tx.directory_revision(&a.id)), revision + 2);
}

/// A batch with one hostile or malformed row — another tenant's row, a CA
/// or a principal of another tenant, a principal of another kind, a serial
/// used before (in any tenant) or twice, a tenant that does not exist — is
/// refused whole: no row, no revision, no mark; even when the caller goes on
/// with the transaction and commits.
pub fn bulk_certificates_refuse_a_bad_row_and_change_nothing(s: &dyn Store) {
    let (a, b) = two_tenants(s);
    w(s, |tx| tx.insert_certificates(&b.id, &certs(&b.id, "bb", 2)));
    w(s, |tx| tx.insert_principal(&principal(&a.id, PrincipalKind::User, "alice")));
    let before = snapshot(s, &[&a.id, &b.id]);
    let revoked = |mut c: CertificateRecord| {
        c.revoked_at = Some(9);
        c
    };
    let mut cases: Vec<(&str, TenantId, CertificateRecord, bool)> = vec![];
    let base = || revoked(certs(&a.id, "ff", 1).remove(0));
    let mut c = base();
    c.tenant_id = b.id.clone();
    cases.push(("a row of another tenant", a.id.clone(), c, true));
    let mut c = base();
    c.ca_id = format!("{}-issuing", b.id.as_str());
    cases.push(("another tenant's CA", a.id.clone(), c, true));
    let mut c = base();
    c.principal_id = format!("{}-machine-web", b.id.as_str());
    cases.push(("another tenant's principal", a.id.clone(), c, true));
    let mut c = base();
    c.principal_id = format!("{}-user-alice", a.id.as_str());
    cases.push(("a user's id as a machine", a.id.clone(), c, true));
    let mut c = base();
    c.serial = "bb000000".into();
    cases.push(("a serial tenant B used", a.id.clone(), c, false));
    cases.push(("a serial twice in the batch", a.id.clone(), certs(&a.id, "aa", 1).remove(0), false));
    let mut c = base();
    c.tenant_id = TenantId::new("id-nowhere.example");
    cases.push(("a tenant that does not exist", c.tenant_id.clone(), c, true));
    cases.push(("the system scope", TenantId::system(), base(), true));

    for (what, target, bad, refused) in cases {
        // Good rows before and after the bad one (the duplicate case repeats the first).
        let mut batch = certs(&a.id, "aa", 3000);
        batch.insert(2500, bad);
        let err = s.write(|tx| tx.insert_certificates(&target, &batch)).unwrap_err();
        if refused {
            assert!(matches!(err, StoreError::Refused(_)), "{what}: {err:?}");
        } else {
            assert!(matches!(err, StoreError::Conflict(_)), "{what}: {err:?}");
        }
        // A caller that ignores the error and commits keeps none of the batch.
        let ignored = s.write(|tx| {
            let outcome = tx.insert_certificates(&target, &batch);
            Ok::<_, StoreError>(outcome.is_err())
        });
        assert!(ignored.unwrap(), "{what}: refused inside a committed transaction too");
        assert_eq!(snapshot(s, &[&a.id, &b.id]), before, "{what}: nothing changed");
    }
}

/// Principals inserted in bulk claim their names and bump the directory
/// revision once; groups claim none.
pub fn bulk_principals_claim_names_and_bump_the_directory_revision(s: &dyn Store) {
    let (a, b) = two_tenants(s);
    let before = snapshot(s, &[&b.id]);
    let revision = w(s, |tx| tx.directory_revision(&a.id));
    let mut batch: Vec<PrincipalRecord> =
        (0..ROWS).map(|i| principal(&a.id, PrincipalKind::User, &format!("user{i:05}"))).collect();
    batch[17].hostnames = vec!["u17.a.example".into()];
    batch.push(principal(&a.id, PrincipalKind::Group, "staff"));
    w(s, |tx| tx.insert_principals(&a.id, &batch));
    assert_eq!(w(s, |tx| tx.list_principals(&a.id, Some(PrincipalKind::User))).len(), ROWS);
    assert_eq!(w(s, |tx| tx.principal(&a.id, PrincipalKind::User, "USER04099")), Some(batch[4099].clone()));
    assert_eq!(w(s, |tx| tx.name_owner(&a.id, "U17.a.example")), Some(batch[17].id.clone()));
    assert_eq!(w(s, |tx| tx.name_owner(&a.id, "staff")), None, "groups claim no name");
    assert_eq!(w(s, |tx| tx.directory_revision(&a.id)), revision + 1, "one bump for the batch");
    assert_eq!(snapshot(s, &[&b.id]), before, "tenant B is untouched");
    // A one-row insert now meets the names the batch claimed.
    let err = s.write(|tx| tx.insert_principal(&principal(&a.id, PrincipalKind::Machine, "user00001"))).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

/// A batch of principals with one bad row — another tenant's, a name (or a
/// DNS name) another principal claims, a name twice in the batch, an id
/// taken, a tenant that does not exist — is refused whole and changes
/// nothing, even when the caller goes on and commits.
pub fn bulk_principals_refuse_a_bad_row_and_change_nothing(s: &dyn Store) {
    let (a, b) = two_tenants(s);
    let before = snapshot(s, &[&a.id, &b.id]);
    let user = |name: &str| principal(&a.id, PrincipalKind::User, name);
    let mut cases: Vec<(&str, TenantId, PrincipalRecord, bool)> = vec![];
    let mut p = user("mallory");
    p.tenant_id = b.id.clone();
    cases.push(("a row of another tenant", a.id.clone(), p, true));
    cases.push(("the name of an existing machine", a.id.clone(), user("WEB"), false));
    let mut p = user("mallory");
    p.hostnames = vec!["User00007".into()];
    cases.push(("a DNS name that is another row's name", a.id.clone(), p, false));
    let mut p = user("mallory");
    p.id = format!("{}-machine-web", a.id.as_str());
    cases.push(("an id taken", a.id.clone(), p, false));
    let mut p = user("mallory");
    p.id = "other-id".into();
    p.name = "user02000".into();
    cases.push(("a name twice in the batch", a.id.clone(), p, false));
    let mut p = user("mallory");
    p.tenant_id = TenantId::new("id-nowhere.example");
    cases.push(("a tenant that does not exist", p.tenant_id.clone(), p, true));

    for (what, target, bad, refused) in cases {
        let mut batch: Vec<PrincipalRecord> = (0..3000).map(|i| user(&format!("user{i:05}"))).collect();
        batch.insert(2500, bad);
        let err = s.write(|tx| tx.insert_principals(&target, &batch)).unwrap_err();
        if refused {
            assert!(matches!(err, StoreError::Refused(_)), "{what}: {err:?}");
        } else {
            assert!(matches!(err, StoreError::Conflict(_)), "{what}: {err:?}");
        }
        let ignored = s.write(|tx| {
            let outcome = tx.insert_principals(&target, &batch);
            Ok::<_, StoreError>(outcome.is_err())
        });
        assert!(ignored.unwrap(), "{what}: refused inside a committed transaction too");
        assert_eq!(snapshot(s, &[&a.id, &b.id]), before, "{what}: nothing changed");
        assert_eq!(w(s, |tx| tx.name_owner(&a.id, "user00001")), None, "{what}: no name stays claimed");
    }
}
