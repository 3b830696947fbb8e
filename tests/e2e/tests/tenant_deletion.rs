//! Deleting a tenant through the API: every row of it goes from every table
//! of the store (read from the SQLite file, table by table, with the store's
//! own table list, which is also checked against the file's schema), no row
//! of another tenant changes, and every listener — REST, LDAP, the PKI
//! listener's CRL and CA certificate URLs, the trust watch — answers "not
//! found" for it afterwards while the other tenant carries on.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ldap3_proto::proto::{LdapFilter, LdapResultCode, LdapSearchScope};
use lightwell_client::Client;
use lightwell_proto::{
    AddMemberRequest, CreateCaRequestRequest, CreateClusterRequest, CreateFederationRequest, CreateGroupRequest,
    CreateJoinTokenRequest, CreateOidcClientRequest, CreateWorkloadRequest, IssueCertificateRequest, RevokeRequest,
};
use lightwell_testkit::TestServer;
use lightwell_testkit::ldap::{RawLdap, search_request};
use lightwell_testkit::node::Node;
use lightwell_testkit::pki::{self, Files};
use rusqlite::types::Value;

/// The tenant deleted.
const GONE: &str = "gone.example";
/// The tenant that stays.
const KEPT: &str = "kept.example";

/// Every kind of row a tenant has: users, a group with a member, a service
/// with its names, a joined machine (certificate, machine secret), issued
/// and revoked certificates (CRLs), an unused join token, an intermediate
/// waiting for an enterprise signature, a Kubernetes cluster, token keys,
/// sessions and audit records. Returns the administrator and the ids of the tenant's CAs.
async fn populate(server: &TestServer, domain: &str) -> (Client, Vec<String>) {
    let admin = pki::tenant(server, domain, None).await;
    let _alice = pki::user(server, &admin, domain, "alice").await;
    admin
        .create_principal(domain, "groups", &CreateGroupRequest { name: "ops".into(), display_name: None })
        .await
        .unwrap();
    admin.add_member(domain, "ops", &AddMemberRequest { kind: "user".into(), name: "alice".into() }).await.unwrap();
    let web = format!("web.{domain}");
    pki::host(&admin, domain, "services", "web", &[&web], &[]).await;
    let files = Files::new();
    for name in ["kept", "revoked"] {
        let (_, csr) = files.csr(name, "ec:P-256", "/CN=web", &[&format!("subjectAltName=DNS:{web}")]);
        let req = IssueCertificateRequest { csr, principal: Some("service/web".into()), ..Default::default() };
        let cert = admin.issue_certificate(domain, &req).await.unwrap();
        if name == "revoked" {
            let why = RevokeRequest { reason: Some("key-compromise".into()), principal: None };
            admin.revoke_certificate(domain, &cert.serial, &why).await.unwrap();
        }
    }
    let hostname = format!("node1.{domain}");
    let token = admin
        .create_join_token(domain, &CreateJoinTokenRequest { hostname: Some(hostname.clone()), ..Default::default() })
        .await
        .unwrap()
        .token
        .unwrap();
    let hosts = server.scratch().join(domain);
    std::fs::create_dir_all(&hosts).unwrap();
    let out = Node::new(&hosts, &hostname).join(server, domain, Some(&token));
    assert!(out.status.success(), "join: {}", String::from_utf8_lossy(&out.stderr));
    admin.create_join_token(domain, &CreateJoinTokenRequest::default()).await.unwrap();
    let req = CreateCaRequestRequest { name: "enterprise".into(), path_len: None, key_type: None };
    admin.create_ca_request(domain, &req).await.unwrap();
    let req = CreateClusterRequest {
        name: "prod".into(),
        api_server: Some(format!("https://k8s.{domain}:6443")),
        ..Default::default()
    };
    admin.create_cluster(domain, &req).await.unwrap();
    let entry = CreateWorkloadRequest {
        name: "web-worker".into(),
        service: "web".into(),
        hosts: vec![hostname.clone()],
        selectors: vec!["unix:uid:1000".into()],
        ..Default::default()
    };
    admin.create_workload(domain, &entry).await.unwrap();
    // A foreign trust domain (a `federations` row); never read: its endpoint is refused.
    let federation = CreateFederationRequest {
        trust_domain: "spire.partner.example".into(),
        bundle_endpoint_url: Some("https://169.254.169.254/bundle".into()),
        ..Default::default()
    };
    admin.create_federation(domain, &federation).await.unwrap();
    let client = CreateOidcClientRequest { name: "web".into(), principal: "service/web".into(), ..Default::default() };
    let client = admin.create_oidc_client(domain, &client).await.unwrap();
    // An access token of it, revoked (a `revoked_tokens` row).
    let (id, secret) = (client.client_id, client.client_secret.unwrap());
    let oidc = format!("{}/oidc/{domain}", server.url());
    let post = |endpoint: &str, form: String| {
        let request = server.raw().post(format!("{oidc}/{endpoint}")).basic_auth(&id, Some(&secret));
        request.header("content-type", "application/x-www-form-urlencoded").body(form).send()
    };
    let token: serde_json::Value =
        post("token", "grant_type=client_credentials".into()).await.unwrap().json().await.unwrap();
    let revoked = post("revoke", format!("token={}", token["access_token"].as_str().unwrap())).await.unwrap();
    assert_eq!(revoked.status(), 200);
    // Fetching the JWKS makes the tenant's token keys (`token_keys` rows).
    let jwks = server.raw().get(format!("{}/oidc/{domain}/jwks", server.url())).send().await.unwrap();
    assert_eq!(jwks.status(), 200);
    let infos = admin.list_cas(domain).await.unwrap();
    // An OCSP query gives the issuing CA its delegated responder (an `ocsp_responders` row).
    let issuing = infos.iter().find(|c| c.is_default).unwrap();
    let issuing = lightwell_ca::CaCertificate::from_pem(&issuing.pem).unwrap();
    let serial = lightwell_ca::Serial::random().unwrap();
    let id = lightwell_ca::ocsp::CertId::new(&issuing, &serial, lightwell_ca::ocsp::HashAlgorithm::Sha1);
    let body = lightwell_ca::ocsp::OcspRequest::encode(&[id], None);
    let url = format!("{}/pki/{domain}/ocsp", server.pki_url());
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/ocsp-request")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cas = infos.into_iter().map(|c| c.id).collect();
    (admin, cas)
}

fn open_db(server: &TestServer) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(server.data_dir().join("lightwell.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db
}

/// The column that says which tenant a row of `table` belongs to.
fn tenant_column(table: &str, columns: &[&str]) -> &'static str {
    if table == "tenants" {
        "id"
    } else if columns.contains(&"tenant_id") {
        "tenant_id"
    } else if columns.contains(&"scope") {
        // The audit chains: the tenant's id, or '' for the system chain.
        "scope"
    } else {
        panic!("table {table} has no tenant column: teach this test how its rows belong to a tenant")
    }
}

type Rows = BTreeMap<&'static str, Vec<Vec<Value>>>;

/// Every row of every table of the store whose tenant column is `scope`, in a fixed order.
fn rows_of(db: &rusqlite::Connection, scope: &str) -> Rows {
    lightwell_store::tables()
        .map(|(table, columns)| {
            let list = columns.join(", ");
            let sql =
                format!("SELECT {list} FROM {table} WHERE {} = ?1 ORDER BY {list}", tenant_column(table, &columns));
            let mut stmt = db.prepare(&sql).unwrap();
            let rows = stmt
                .query_map([scope], |r| (0..columns.len()).map(|i| r.get::<_, Value>(i)).collect())
                .unwrap()
                .collect::<Result<Vec<Vec<Value>>, _>>()
                .unwrap();
            (table, rows)
        })
        .collect()
}

fn tenant_id(db: &rusqlite::Connection, domain: &str) -> String {
    db.query_row("SELECT id FROM tenants WHERE domain = ?1", [domain], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_tenant_empties_every_table_of_it_and_every_listener_forgets_it() {
    let server = TestServer::start_with(&["--ldap-allow-plaintext-bind"]);
    let (gone_admin, gone_cas) = populate(&server, GONE).await;
    let (kept_admin, kept_cas) = populate(&server, KEPT).await;

    // The store's table list is the file's schema (less the migration log),
    // so no table escapes the walk below.
    let db = open_db(&server);
    let schema: BTreeSet<String> = {
        let sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'";
        let mut stmt = db.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    let listed: BTreeSet<String> = lightwell_store::tables().map(|(t, _)| t.to_string()).collect();
    let expected: BTreeSet<String> = listed.iter().cloned().chain(["schema_migrations".to_string()]).collect();
    assert_eq!(schema, expected, "every table of the file is in the store's table list");

    // A CRL re-signing left pending (as a crashed signer leaves it): a kind
    // of row the API does not leave behind on its own. Only for the deleted
    // tenant: the signer may pick it up at any moment, which must not change
    // the other tenant while its rows are compared.
    let (gone_id, kept_id) = (tenant_id(&db, GONE), tenant_id(&db, KEPT));
    db.execute(
        "INSERT INTO crl_pending (tenant_id, ca_id, generation, marked_at) VALUES (?1, ?2, 1, 0)",
        rusqlite::params![gone_id, gone_cas[0]],
    )
    .unwrap();

    // A connection bound as the doomed tenant's administrator, open across the deletion.
    let mut bound = RawLdap::connect(server.ldap_addr()).await;
    let gone_admin_dn = "uid=administrator,cn=Users,dc=gone,dc=example";
    assert_eq!(bound.simple_bind(gone_admin_dn, pki::ADMIN_PASSWORD).await.code, LdapResultCode::Success);
    let users = |base: &str| {
        search_request(
            &format!("cn=Users,{base}"),
            LdapSearchScope::OneLevel,
            LdapFilter::Present("uid".into()),
            &["1.1"],
        )
    };
    assert_eq!(bound.search(users("dc=gone,dc=example")).await.1.code, LdapResultCode::Success);

    // Logged in before the snapshot: an operator login is a system record of its own.
    let op = server.operator().await;
    let gone_before = rows_of(&db, &gone_id);
    let empty: Vec<_> = gone_before.iter().filter(|(_, rows)| rows.is_empty()).map(|(t, _)| *t).collect();
    assert!(empty.is_empty(), "the tenant has rows in every table before its deletion, not in {empty:?}");
    let kept_before = rows_of(&db, &kept_id);
    let system_before = rows_of(&db, "");

    op.delete_tenant(GONE).await.unwrap();

    let gone_after = rows_of(&db, &gone_id);
    let left: Vec<_> = gone_after.iter().filter(|(_, rows)| !rows.is_empty()).collect();
    assert!(left.is_empty(), "rows of the deleted tenant left behind: {left:?}");
    assert_eq!(rows_of(&db, &kept_id), kept_before, "no row of the other tenant changed");
    let system_after = rows_of(&db, "");
    let appended = &system_after["audit"][system_before["audit"].len()..];
    assert_eq!(system_after["audit"][..system_before["audit"].len()], system_before["audit"][..]);
    let actions: Vec<&Value> = appended.iter().map(|r| &r[4]).collect();
    assert_eq!(actions, [&Value::Text("tenant.delete".into())], "the system chain gained the deletion's record");
    drop(db);

    // --- every listener: the deleted tenant is not found ---
    let status = |resp: reqwest::Response| resp.status().as_u16();
    let api = |path: &str| format!("{}/v1/tenants/{GONE}{path}", server.url());
    let raw = server.raw();
    let login =
        raw.post(api("/login")).json(&serde_json::json!({ "user": "administrator", "password": pki::ADMIN_PASSWORD }));
    let resp = login.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "tenant_not_found", "{body}");
    for path in ["/trust", "/trust/watch?since=0", "/trust/changes?since=0", "/trust-bundle"] {
        let resp = raw.get(api(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 404, "GET {path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "tenant_not_found", "GET {path}: {body}");
    }
    assert_eq!(op.tenant(GONE).await.unwrap_err().code(), Some(lightwell_proto::ErrorCode::TenantNotFound));
    let whoami = gone_admin.whoami().await.unwrap_err();
    assert_eq!(whoami.code(), Some(lightwell_proto::ErrorCode::InvalidToken), "its sessions ended: {whoami}");
    for ca in &gone_cas {
        for ext in ["crl", "crt"] {
            let url = format!("{}/pki/{GONE}/ca/{ca}.{ext}", server.pki_url());
            assert_eq!(status(reqwest::get(&url).await.unwrap()), 404, "GET {url}");
        }
    }
    // LDAP: the open bind ends, a new bind is refused, the tree is gone.
    let (entries, res) = bound.search(users("dc=gone,dc=example")).await;
    assert!(entries.is_empty());
    assert_ne!(res.code, LdapResultCode::Success, "the bound connection lost its rights: {res:?}");
    let mut fresh = RawLdap::connect(server.ldap_addr()).await;
    assert_eq!(fresh.simple_bind(gone_admin_dn, pki::ADMIN_PASSWORD).await.code, LdapResultCode::InvalidCredentials);

    // --- the other tenant carries on, on every listener ---
    kept_admin.whoami().await.unwrap();
    server.login(KEPT, "alice", pki::USER_PASSWORD).await.whoami().await.unwrap();
    assert_eq!(raw.get(format!("{}/v1/tenants/{KEPT}/trust", server.url())).send().await.unwrap().status(), 200);
    for ca in &kept_cas {
        let url = format!("{}/pki/{KEPT}/ca/{ca}.crl", server.pki_url());
        assert_eq!(status(reqwest::get(&url).await.unwrap()), 200, "GET {url}");
    }
    let mut kept = RawLdap::connect(server.ldap_addr()).await;
    let kept_dn = "uid=administrator,cn=Users,dc=kept,dc=example";
    assert_eq!(kept.simple_bind(kept_dn, pki::ADMIN_PASSWORD).await.code, LdapResultCode::Success);
    let (entries, res) = kept.search(users("dc=kept,dc=example")).await;
    assert_eq!((res.code, entries.len()), (LdapResultCode::Success, 2), "administrator and alice");
    let v = kept_admin.audit_verify(Some(KEPT)).await.unwrap();
    assert!(v.valid, "{v:?}");
    let v = op.audit_verify(None).await.unwrap();
    assert!(v.valid, "{v:?}");
}
