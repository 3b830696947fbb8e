//! A small directory for unit tests.
#![allow(clippy::unwrap_used)]

use lightwell_core::{DirectorySnapshot, Principal, PrincipalKind, PrincipalView, Tenant, TenantId};

fn record(kind: PrincipalKind, name: &str) -> Principal {
    Principal {
        id: lightwell_core::PrincipalId::parse(&format!("00000000-0000-4000-8000-{:012}", name.len())).unwrap(),
        kind,
        name: name.into(),
        display_name: None,
        email: None,
        hostnames: vec![],
        ips: vec![],
        enabled: true,
        builtin: false,
        created_at: 1_790_000_000,
        updated_at: 1_790_000_100,
    }
}

/// corp.example: alice (in engineers, which is in CAAdmins), bob, a
/// machine, service payments with workload entry worker.
pub(crate) fn snapshot() -> DirectorySnapshot {
    let mut alice = record(PrincipalKind::User, "alice");
    alice.email = Some("alice@corp.example".into());
    alice.display_name = Some("Alice Liddell".into());
    let bob = record(PrincipalKind::User, "bob");
    let mut node = record(PrincipalKind::Machine, "node1.corp.example");
    node.hostnames = vec!["node1.corp.example".into()];
    node.ips = vec!["10.0.0.1".into()];
    let mut payments = record(PrincipalKind::Service, "payments");
    payments.id = lightwell_core::PrincipalId::parse("00000000-0000-4000-b000-000000000001").unwrap();
    let view = |r: Principal, member_of: &[&str], members: Option<Vec<(PrincipalKind, String)>>| PrincipalView {
        principal: r,
        member_of: member_of.iter().map(|s| s.to_string()).collect(),
        members,
        locked: false,
    };
    let tenant_id = TenantId::new("11111111-2222-4333-8444-555555555555");
    DirectorySnapshot {
        version: lightwell_core::DirectoryVersion { tenant_id: tenant_id.clone(), revision: 1 },
        valid_until: None,
        tenant: Tenant {
            id: tenant_id,
            domain: "corp.example".into(),
            policy: Default::default(),
            created_at: 1_780_000_000,
        },
        principals: vec![
            view(alice, &["CAAdmins", "Users", "engineers"], None),
            view(bob, &["Users"], None),
            view(
                record(PrincipalKind::Group, "engineers"),
                &["CAAdmins"],
                Some(vec![(PrincipalKind::User, "alice".into())]),
            ),
            view(record(PrincipalKind::Group, "CAAdmins"), &[], Some(vec![(PrincipalKind::Group, "engineers".into())])),
            view(
                record(PrincipalKind::Group, "Users"),
                &[],
                Some(vec![(PrincipalKind::User, "alice".into()), (PrincipalKind::User, "bob".into())]),
            ),
            view(node, &["DomainClients"], None),
            view(payments, &[], Some(vec![])),
        ],
        cas: vec![lightwell_core::CaObject {
            id: "ca-1".into(),
            name: "root".into(),
            cert_der: vec![0x30, 0x03, 0x02, 0x01, 0x01],
            crl_der: Some(vec![0x30, 0x00]),
            delta_crl_der: Some(vec![0x30, 0x00]),
            created_at: 1_780_000_000,
        }],
        certificates: Default::default(),
        workloads: vec![lightwell_core::WorkloadView {
            id: "00000000-0000-4000-a000-000000000001".into(),
            name: "worker".into(),
            spiffe_id: "spiffe://corp.example/service/payments/worker".into(),
            service: "payments".into(),
            hosts: vec!["node1.corp.example".into()],
            host_groups: vec!["engineers".into()],
            selectors: vec!["unix:uid:1000".into(), "unix:path:/usr/bin/pay".into()],
            ttl_secs: 3600,
            dns_names: vec!["pay.corp.example".into()],
            created_at: 1_790_000_000,
        }],
    }
}

/// [`snapshot`] with `n` more groups, `group0` to `group{n-1}`.
pub(crate) fn with_groups(n: usize) -> DirectorySnapshot {
    let mut snap = snapshot();
    for i in 0..n {
        let mut r = record(PrincipalKind::Group, &format!("group{i}"));
        r.id = lightwell_core::PrincipalId::parse(&format!("00000000-0000-4000-9000-{i:012}")).unwrap();
        snap.principals.push(PrincipalView { principal: r, member_of: vec![], members: Some(vec![]), locked: false });
    }
    snap
}
