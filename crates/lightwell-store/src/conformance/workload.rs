//! Conformance cases of workload identity: workload entries.

use crate::{Store, StoreError, StoreExt, TenantId, WorkloadEntryRecord};

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
