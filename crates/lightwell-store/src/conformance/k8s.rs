//! Conformance cases of Kubernetes support: clusters.

use crate::{K8sClusterRecord, Store, StoreError, StoreExt, TenantId};

fn cluster(tenant: &TenantId, id: &str, name: &str) -> K8sClusterRecord {
    K8sClusterRecord {
        id: id.into(),
        tenant_id: tenant.clone(),
        name: name.into(),
        spec: format!("{{\"name\":\"{name}\"}}"),
        created_at: 42,
    }
}

fn w<T>(s: &dyn Store, f: impl FnMut(&mut dyn crate::Tx) -> Result<T, StoreError>) -> T {
    s.write(f).unwrap()
}

/// Clusters are found by name in any letter case within their tenant only,
/// names are unique per tenant, specs update in place, and deletion is scoped.
pub fn k8s_clusters_round_trip_scoped_by_tenant(s: &dyn Store) {
    let (a, b) = (TenantId::new("ta"), TenantId::new("tb"));
    let prod = cluster(&a, "c1", "prod");
    w(s, |tx| {
        tx.insert_k8s_cluster(&prod)?;
        tx.insert_k8s_cluster(&cluster(&a, "c2", "dev"))?;
        tx.insert_k8s_cluster(&cluster(&b, "c3", "prod"))
    });
    assert_eq!(w(s, |tx| tx.k8s_cluster(&a, "PROD")), Some(prod.clone()));
    assert_eq!(w(s, |tx| tx.k8s_cluster(&b, "prod")).map(|c| c.id), Some("c3".into()));
    let names: Vec<String> = w(s, |tx| tx.list_k8s_clusters(&a)).into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["dev", "prod"]);
    let err = s.write(|tx| tx.insert_k8s_cluster(&cluster(&a, "c4", "Prod"))).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "names are unique in any case: {err:?}");
    let mut changed = prod.clone();
    changed.spec = "{\"nodes\":[\"m1\"]}".into();
    w(s, |tx| tx.update_k8s_cluster(&changed));
    assert_eq!(w(s, |tx| tx.k8s_cluster(&a, "prod")), Some(changed));
    assert!(!w(s, |tx| tx.delete_k8s_cluster(&b, "c1")), "another tenant's id deletes nothing");
    assert!(w(s, |tx| tx.delete_k8s_cluster(&a, "c1")));
    assert_eq!(w(s, |tx| tx.k8s_cluster(&a, "prod")), None);
    w(s, |tx| tx.delete_tenant(&a));
    assert!(w(s, |tx| tx.list_k8s_clusters(&a)).is_empty());
    assert_eq!(w(s, |tx| tx.list_k8s_clusters(&b)).len(), 1);
}
