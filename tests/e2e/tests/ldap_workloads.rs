//! Workload entries over LDAP (issue 19 item 1): each entry appears, read
//! only, below its service — its SPIFFE ID as `labeledURI`, its selectors as
//! `description`, the machines and groups it may run on as `seeAlso` — and
//! follows the API (created, deleted). Every LDAP write to one is refused
//! with unwillingToPerform and changes nothing.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Output;

use lightwell_proto::{CreateGroupRequest, CreateWorkloadRequest, WorkloadInfo};
use lightwell_testkit::TestServer;
use lightwell_testkit::pki::{self, ADMIN_PASSWORD};

const T: &str = "corp.example";
const ADMIN_DN: &str = "uid=administrator,cn=Users,dc=corp,dc=example";
const SERVICE_DN: &str = "cn=payments,cn=Services,dc=corp,dc=example";
const WORKER_DN: &str = "cn=worker,cn=payments,cn=Services,dc=corp,dc=example";

/// Entries as DN → attribute → values.
type Entries = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// ldapsearch as `bind_dn`: (exit code, entries).
fn search(server: &TestServer, bind: (&str, &str), base: &str, scope: &str, filter: &str) -> (Option<i32>, Entries) {
    let url = server.ldaps_url();
    let args = [
        "-LLL",
        "-o",
        "ldif-wrap=no",
        "-x",
        "-H",
        &url,
        "-D",
        bind.0,
        "-w",
        bind.1,
        "-s",
        scope,
        "-b",
        base,
        filter,
        "*",
        "+",
    ];
    let out = server.ldap_tool("ldapsearch", &args);
    let text = |values: Vec<Vec<u8>>| values.into_iter().map(|v| String::from_utf8(v).unwrap()).collect();
    let entries = lightwell_testkit::ldap::parse_ldif(&String::from_utf8(out.stdout).unwrap())
        .into_iter()
        .map(|(dn, attrs)| (dn, attrs.into_iter().map(|(name, values)| (name, text(values))).collect()))
        .collect();
    (out.status.code(), entries)
}

fn ldapmodify(server: &TestServer, ldif: &str) -> Output {
    let path = server.scratch().join("change.ldif");
    std::fs::write(&path, ldif).unwrap();
    let url = server.ldaps_url();
    server.ldap_tool(
        "ldapmodify",
        &["-x", "-H", &url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD, "-f", path.to_str().unwrap()],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn workload_entries_appear_read_only_below_their_service_and_follow_the_api() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    pki::host(&admin, T, "services", "payments", &["pay.corp.example"], &[]).await;
    pki::host(&admin, T, "machines", "node1.corp.example", &["node1.corp.example"], &["10.0.0.11"]).await;
    let group = CreateGroupRequest { name: "pay-hosts".into(), ..Default::default() };
    admin.create_principal(T, "groups", &group).await.unwrap();
    pki::user(&server, &admin, T, "alice").await;
    let req = CreateWorkloadRequest {
        name: "worker".into(),
        service: "payments".into(),
        path: Some("worker".into()),
        hosts: vec!["node1.corp.example".into()],
        host_groups: vec!["pay-hosts".into()],
        selectors: vec!["unix:uid:1000".into(), "unix:path:/usr/bin/pay".into()],
        ttl: None,
        dns_names: vec!["pay.corp.example".into()],
    };
    let created: WorkloadInfo = admin.create_workload(T, &req).await.unwrap();

    // Any principal of the tenant reads it, as over REST.
    let alice = ("uid=alice,cn=Users,dc=corp,dc=example", pki::USER_PASSWORD);
    let (code, entries) = search(&server, alice, SERVICE_DN, "one", "(objectClass=*)");
    assert_eq!(code, Some(0));
    assert_eq!(entries.keys().collect::<Vec<_>>(), [WORKER_DN], "{entries:?}");
    let worker = &entries[WORKER_DN];
    assert_eq!(worker["labeledURI"], std::slice::from_ref(&created.spiffe_id));
    assert_eq!(created.spiffe_id, "spiffe://corp.example/service/payments/worker");
    let mut selectors = worker["description"].clone();
    selectors.sort();
    let mut wanted = created.selectors.clone();
    wanted.sort();
    assert_eq!(selectors, wanted);
    assert_eq!(
        worker["seeAlso"],
        ["cn=node1.corp.example,ou=Computers,dc=corp,dc=example", "cn=pay-hosts,cn=Groups,dc=corp,dc=example"]
    );
    assert_eq!(worker["dNSHostName"], ["pay.corp.example"]);
    assert_eq!(worker["hasSubordinates"], ["FALSE"]);
    assert_eq!(worker["entryUUID"].len(), 1);
    let (_, service) = search(&server, alice, SERVICE_DN, "base", "(objectClass=*)");
    assert_eq!(service[SERVICE_DN]["hasSubordinates"], ["TRUE"]);
    // Found by its SPIFFE ID from the tenant's base.
    let filter = format!("(labeledURI={})", created.spiffe_id);
    let (code, found) = search(&server, alice, "dc=corp,dc=example", "sub", &filter);
    assert_eq!((code, found.keys().collect::<Vec<_>>()), (Some(0), vec![&WORKER_DN.to_string()]));

    // Every write is refused and changes nothing.
    let attempts = [
        format!("dn: {WORKER_DN}\nchangetype: modify\nreplace: description\ndescription: unix:uid:0\n"),
        format!(
            "dn: {WORKER_DN}\nchangetype: modify\nadd: seeAlso\nseeAlso: cn=evil,ou=Computers,dc=corp,dc=example\n"
        ),
        format!("dn: {WORKER_DN}\nchangetype: delete\n"),
        format!("dn: {WORKER_DN}\nchangetype: modrdn\nnewrdn: cn=other\ndeleteoldrdn: 1\n"),
        format!(
            "dn: cn=rogue,{SERVICE_DN}\nchangetype: add\nobjectClass: applicationProcess\ncn: rogue\n\
             labeledURI: spiffe://corp.example/service/payments/rogue\ndescription: unix:uid:0\n"
        ),
    ];
    for ldif in &attempts {
        let out = ldapmodify(&server, ldif);
        assert_eq!(
            out.status.code(),
            Some(53),
            "unwillingToPerform for\n{ldif}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(admin.workload(T, "worker").await.unwrap(), created, "the entry is as created");
    assert_eq!(admin.list_workloads(T).await.unwrap().len(), 1, "no entry was added");
    let (_, after) = search(&server, alice, SERVICE_DN, "one", "(objectClass=*)");
    assert_eq!(after, entries, "LDAP shows the same entry");

    // Another tenant's principal does not see it.
    let other = pki::tenant(&server, "other.example", None).await;
    drop(other);
    let other_admin = ("uid=administrator,cn=Users,dc=other,dc=example", ADMIN_PASSWORD);
    let (code, seen) = search(&server, other_admin, WORKER_DN, "base", "(objectClass=*)");
    assert_eq!((code, seen.len()), (Some(32), 0), "noSuchObject across tenants");

    // Deleted through the API: gone from LDAP.
    admin.delete_workload(T, "worker").await.unwrap();
    let (code, _) = search(&server, alice, WORKER_DN, "base", "(objectClass=*)");
    assert_eq!(code, Some(32), "noSuchObject after deletion");
    let (_, service) = search(&server, alice, SERVICE_DN, "base", "(objectClass=*)");
    assert_eq!(service[SERVICE_DN]["hasSubordinates"], ["FALSE"]);
}
