//! Every mutating operation leaves its audit record. One table of
//! operations, run in order against the real server: each row is a request
//! (through the route it names) or the CA job, and the record it must
//! append — chain, action, actor, target, outcome. Every POST, PUT, PATCH
//! and DELETE route of `/v1/openapi.json` must have a row, so a new route
//! without one fails this test. Afterwards the tenant chains and the system
//! chain verify.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use lightwell_proto::AuditEntry;
use lightwell_testkit::TestServer;
use lightwell_testkit::pki::{self, Files};
use serde_json::{Value, json};

const T: &str = "corp.example";
/// A tenant whose root is rotated and then retired by the CA job.
const ROT: &str = "rotate.example";
/// A tenant that is created and deleted.
const GONE: &str = "gone.example";
const ADMIN: &str = "user:administrator";
const NODE1: &str = "node1.corp.example";
const NODE2: &str = "node2.corp.example";
const ALICE_PW: &str = "Wonder-Land-42!";
const ALICE_PW2: &str = "Looking-Glass-43!";
const ALICE_PW3: &str = "Queen-Of-Hearts-44!";

/// Which audit chain a record goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Chain {
    Tenant(&'static str),
    System,
}

/// How a request authenticates.
#[derive(Debug, Clone)]
enum Auth {
    Anonymous,
    Bearer(String),
    /// Mutual TLS: a private key and its certificate chain, PEM.
    Mtls(Vec<u8>),
}

/// A request through one route of the OpenAPI document.
#[derive(Debug)]
struct Request {
    method: &'static str,
    /// The route as the OpenAPI document names it.
    route: &'static str,
    path: String,
    auth: Auth,
    body: Option<Value>,
    /// `None`: any 2xx.
    status: Option<u16>,
}

fn request(method: &'static str, route: &'static str, path: impl Into<String>) -> Request {
    Request { method, route, path: path.into(), auth: Auth::Anonymous, body: None, status: None }
}

impl Request {
    fn bearer(mut self, token: &str) -> Self {
        self.auth = Auth::Bearer(token.to_string());
        self
    }

    fn mtls(mut self, identity: &[u8]) -> Self {
        self.auth = Auth::Mtls(identity.to_vec());
        self
    }

    fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn refused_with(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}

/// The record a row must append.
#[derive(Debug, Clone)]
struct Record {
    chain: Chain,
    action: &'static str,
    actor: String,
    target: String,
    outcome: &'static str,
}

fn ok(chain: Chain, action: &'static str, actor: &str, target: &str) -> Record {
    Record { chain, action, actor: actor.into(), target: target.into(), outcome: "success" }
}

fn refused(chain: Chain, action: &'static str, actor: &str, target: &str) -> Record {
    Record { outcome: "failure", ..ok(chain, action, actor, target) }
}

/// Runs rows and keeps what is needed to check them.
struct Run<'a> {
    server: &'a TestServer,
    /// A token that may read each chain.
    readers: BTreeMap<Chain, String>,
    /// The last sequence number already looked at, per chain.
    seen: BTreeMap<Chain, i64>,
    /// Routes a row went through.
    covered: BTreeSet<(String, String)>,
    rows: usize,
}

impl<'a> Run<'a> {
    fn new(server: &'a TestServer) -> Self {
        Self { server, readers: BTreeMap::new(), seen: BTreeMap::new(), covered: BTreeSet::new(), rows: 0 }
    }

    /// Sends the request, checks its answer, then that `record` was appended; returns the answer's body.
    async fn row(&mut self, req: Request, record: Record) -> Value {
        let what = format!("{} {}", req.method, req.path);
        let answer = self.send(req).await;
        self.expect(&record, &what).await;
        answer
    }

    /// The request half of a row whose record depends on the answer (then [`Run::expect`]).
    async fn send(&mut self, req: Request) -> Value {
        assert!(route_matches(req.route, &req.path), "{} does not go through {}", req.path, req.route);
        let client = match &req.auth {
            Auth::Mtls(identity) => self.server.mtls(Some(identity)),
            _ => self.server.raw(),
        };
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
        let mut http = client.request(method, format!("{}{}", self.server.url(), req.path));
        if let Auth::Bearer(token) = &req.auth {
            http = http.bearer_auth(token);
        }
        if let Some(body) = &req.body {
            http = http.json(body);
        }
        let resp = http.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        match req.status {
            None => assert!((200..300).contains(&status), "{} {}: {status} {text}", req.method, req.path),
            Some(want) => assert_eq!(status, want, "{} {}: {text}", req.method, req.path),
        }
        self.covered.insert((req.method.to_string(), req.route.to_string()));
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A row without a request: `record` is appended by a background job within 30 s.
    async fn job(&mut self, what: &str, record: Record) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.new_records(record.chain).await.iter().any(|r| matches(r, &record)) {
            assert!(Instant::now() < deadline, "{what}: no record {record:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.expect(&record, what).await;
    }

    /// Records of `chain` after the last one looked at.
    async fn new_records(&self, chain: Chain) -> Vec<AuditEntry> {
        let reader = self.server.client().with_token(self.readers[&chain].clone());
        let tenant = match chain {
            Chain::Tenant(t) => Some(t),
            Chain::System => None,
        };
        reader.audit(tenant, self.seen.get(&chain).copied().unwrap_or(0), 1000).await.unwrap()
    }

    /// Checks that `record` is among the records appended since the last check.
    async fn expect(&mut self, record: &Record, what: &str) {
        let fresh = self.new_records(record.chain).await;
        assert!(fresh.iter().any(|r| matches(r, record)), "{what}: no record {record:?} among {fresh:#?}");
        if let Some(last) = fresh.last() {
            self.seen.insert(record.chain, last.seq);
        }
        self.rows += 1;
    }

    /// Lets `token` read `chain` from now on; records before now are not rows' records.
    async fn reads(&mut self, chain: Chain, token: &str) {
        self.readers.insert(chain, token.to_string());
        if !self.seen.contains_key(&chain) {
            let all = self.new_records(chain).await;
            self.seen.insert(chain, all.last().map_or(0, |r| r.seq));
        }
    }

    /// A password login through the API, as a row; returns the session token.
    async fn login(&mut self, chain: Chain, user: &str, password: &str) -> String {
        let (route, path, actor) = match chain {
            Chain::System => ("/v1/login", "/v1/login".to_string(), "operator".to_string()),
            Chain::Tenant(t) => {
                ("/v1/tenants/{tenant}/login", format!("/v1/tenants/{t}/login"), format!("user:{user}"))
            }
        };
        let req = request("POST", route, path).json(json!({ "user": user, "password": password }));
        let answer = self.row(req, ok(chain, "login", &actor, user)).await;
        answer["token"].as_str().unwrap().to_string()
    }
}

fn matches(r: &AuditEntry, want: &Record) -> bool {
    r.action == want.action && r.actor == want.actor && r.target == want.target && r.outcome == want.outcome
}

/// Whether a concrete path goes through an OpenAPI route (`{name}` is one segment).
fn route_matches(route: &str, path: &str) -> bool {
    let (route, path): (Vec<&str>, Vec<&str>) = (route.split('/').collect(), path.split('/').collect());
    route.len() == path.len() && route.iter().zip(&path).all(|(r, p)| (r.starts_with('{') && !p.is_empty()) || r == p)
}

/// Every (method, route) of the OpenAPI document that may change something.
async fn mutating_routes(server: &TestServer) -> BTreeSet<(String, String)> {
    let doc: Value =
        server.raw().get(format!("{}/v1/openapi.json", server.url())).send().await.unwrap().json().await.unwrap();
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["post", "put", "patch", "delete"].contains(&method.as_str()) {
                routes.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    assert!(routes.len() > 30, "the OpenAPI document lists the API: {routes:?}");
    routes
}

/// A key and a CSR made by OpenSSL; returns (key PEM, CSR PEM).
fn csr(files: &Files, name: &str, subject: &str, san: Option<&str>) -> (String, String) {
    let ext: Vec<String> = san.map(|s| format!("subjectAltName={s}")).into_iter().collect();
    let ext: Vec<&str> = ext.iter().map(String::as_str).collect();
    let (key, csr) = files.csr(name, "ec:P-256", subject, &ext);
    (std::fs::read_to_string(key).unwrap(), csr)
}

/// The principal id of `name` in `domain`, read from the SQLite file (the
/// actor of a logout is the session's principal id).
fn principal_id(server: &TestServer, domain: &str, name: &str) -> String {
    let db = rusqlite::Connection::open(server.data_dir().join("lightwell.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.query_row(
        "SELECT p.id FROM principals p JOIN tenants t ON t.id = p.tenant_id WHERE t.domain = ?1 AND p.name = ?2",
        [domain, name],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_mutating_route_and_the_ca_job_leave_their_audit_record_and_the_chains_verify() {
    // No address throttle: the lockout below takes five failed logins from one address.
    let server = TestServer::start_with(&["--ca-maintenance-interval-secs", "1", "--login-throttle-failures", "0"]);
    let files = Files::new();
    let mut run = Run::new(&server);
    let tenant = Chain::Tenant(T);
    let system = Chain::System;
    let create = "/v1/tenants/{tenant}/{collection}";
    let principal = "/v1/tenants/{tenant}/{collection}/{name}";

    // --- the operator and tenants ---
    let op_pw = server.operator_password();
    let op = {
        // The system chain's reader is the operator; its first login is a row like the others.
        let first = server.client().operator_login("operator", &op_pw).await.unwrap().token;
        run.reads(system, &first).await;
        run.login(system, "operator", &op_pw).await
    };
    let created = run
        .row(
            request("POST", "/v1/tenants", "/v1/tenants")
                .bearer(&op)
                .json(json!({ "domain": T, "admin_password": pki::ADMIN_PASSWORD })),
            ok(system, "tenant.create", "operator", T),
        )
        .await;
    let tenant_id = created["tenant"]["id"].as_str().unwrap().to_string();
    let admin = server.client().login(T, "administrator", pki::ADMIN_PASSWORD).await.unwrap().token;
    run.reads(tenant, &admin).await;
    let admin = run.login(tenant, "administrator", pki::ADMIN_PASSWORD).await;

    // --- the directory ---
    for (collection, body, action, name) in [
        ("users", json!({ "name": "alice", "password": ALICE_PW }), "user.create", "alice"),
        ("users", json!({ "name": "bob" }), "user.create", "bob"),
        ("groups", json!({ "name": "ops" }), "group.create", "ops"),
        ("services", json!({ "name": "web", "hostnames": ["web.corp.example"] }), "service.create", "web"),
        ("machines", json!({ "name": NODE2, "hostnames": [NODE2] }), "machine.create", NODE2),
    ] {
        let req = request("POST", create, format!("/v1/tenants/{T}/{collection}")).bearer(&admin).json(body);
        run.row(req, ok(tenant, action, ADMIN, name)).await;
    }
    let members = "/v1/tenants/{tenant}/{collection}/{name}/members";
    run.row(
        request("POST", members, format!("/v1/tenants/{T}/groups/ops/members"))
            .bearer(&admin)
            .json(json!({ "kind": "user", "name": "alice" })),
        ok(tenant, "group.add_member", ADMIN, "ops"),
    )
    .await;
    run.row(
        request(
            "DELETE",
            "/v1/tenants/{tenant}/{collection}/{name}/members/{kind}/{member}",
            format!("/v1/tenants/{T}/groups/ops/members/user/alice"),
        )
        .bearer(&admin),
        ok(tenant, "group.remove_member", ADMIN, "ops"),
    )
    .await;
    run.row(
        request("PATCH", principal, format!("/v1/tenants/{T}/users/alice"))
            .bearer(&admin)
            .json(json!({ "display_name": "Alice" })),
        ok(tenant, "principal.update", ADMIN, "alice"),
    )
    .await;
    for (verb, action) in [("disable", "principal.disable"), ("enable", "principal.enable")] {
        let route = if verb == "disable" {
            "/v1/tenants/{tenant}/{collection}/{name}/disable"
        } else {
            "/v1/tenants/{tenant}/{collection}/{name}/enable"
        };
        let req = request("POST", route, format!("/v1/tenants/{T}/users/alice/{verb}")).bearer(&admin);
        run.row(req, ok(tenant, action, ADMIN, "alice")).await;
    }
    // Five wrong passwords lock alice; each refusal is on record.
    for _ in 0..5 {
        let req = request("POST", "/v1/tenants/{tenant}/login", format!("/v1/tenants/{T}/login"))
            .json(json!({ "user": "alice", "password": "Wrong-Passw0rd!" }))
            .refused_with(401);
        run.row(req, refused(tenant, "login", "alice", "alice")).await;
    }
    run.row(
        request(
            "POST",
            "/v1/tenants/{tenant}/{collection}/{name}/unlock",
            format!("/v1/tenants/{T}/users/alice/unlock"),
        )
        .bearer(&admin),
        ok(tenant, "user.unlock", ADMIN, "alice"),
    )
    .await;
    let password = "/v1/tenants/{tenant}/{collection}/{name}/password";
    run.row(
        request("PUT", password, format!("/v1/tenants/{T}/users/alice/password"))
            .bearer(&admin)
            .json(json!({ "new_password": ALICE_PW2 })),
        ok(tenant, "user.password_reset", ADMIN, "alice"),
    )
    .await;
    let alice = run.login(tenant, "alice", ALICE_PW2).await;
    run.row(
        request("PUT", password, format!("/v1/tenants/{T}/users/alice/password"))
            .bearer(&alice)
            .json(json!({ "new_password": ALICE_PW3, "old_password": ALICE_PW2 })),
        ok(tenant, "user.password_change", "user:alice", "alice"),
    )
    .await;
    let alice = run.login(tenant, "alice", ALICE_PW3).await;
    let alice_id = principal_id(&server, T, "alice");
    run.row(
        request("POST", "/v1/logout", "/v1/logout").bearer(&alice),
        ok(tenant, "logout", &format!("principal:{alice_id}"), "session"),
    )
    .await;
    run.row(
        request("DELETE", principal, format!("/v1/tenants/{T}/users/bob")).bearer(&admin),
        ok(tenant, "principal.delete", ADMIN, "bob"),
    )
    .await;
    run.row(
        request(
            "POST",
            "/v1/tenants/{tenant}/{collection}/{name}/hosts",
            format!("/v1/tenants/{T}/services/web/hosts"),
        )
        .bearer(&admin)
        .json(json!({ "machine": NODE2 })),
        ok(tenant, "service.add_host", ADMIN, "web"),
    )
    .await;
    run.row(
        request(
            "DELETE",
            "/v1/tenants/{tenant}/{collection}/{name}/hosts/{machine}",
            format!("/v1/tenants/{T}/services/web/hosts/{NODE2}"),
        )
        .bearer(&admin),
        ok(tenant, "service.remove_host", ADMIN, "web"),
    )
    .await;

    // --- joining hosts ---
    run.row(
        request("PUT", "/v1/tenants/{tenant}/machine-domains", format!("/v1/tenants/{T}/machine-domains"))
            .bearer(&admin)
            .json(json!({ "domains": ["lab.example"] })),
        ok(tenant, "tenant.machine_domains", ADMIN, T),
    )
    .await;
    // A token's record names its id, known from the answer.
    let tokens = "/v1/tenants/{tenant}/join-tokens";
    let mut created = Vec::new();
    for body in [json!({ "hostname": NODE1 }), json!({})] {
        let req = request("POST", tokens, format!("/v1/tenants/{T}/join-tokens")).bearer(&admin).json(body);
        let token = run.send(req).await;
        let id = token["id"].as_str().unwrap().to_string();
        run.expect(&ok(tenant, "join_token.create", ADMIN, &id), "POST join-tokens").await;
        created.push((id, token["token"].as_str().unwrap().to_string()));
    }
    let (token, spare) = (created[0].clone(), created[1].clone());
    run.row(
        request("DELETE", "/v1/tenants/{tenant}/join-tokens/{id}", format!("/v1/tenants/{T}/join-tokens/{}", spare.0))
            .bearer(&admin),
        ok(tenant, "join_token.revoke", ADMIN, &spare.0),
    )
    .await;
    let join = "/v1/tenants/{tenant}/join";
    let (_, bogus_csr) = csr(&files, "node3", &format!("/CN=node3.{T}"), None);
    run.row(
        request("POST", join, format!("/v1/tenants/{T}/join"))
            .json(json!({ "token": "lwj_bogus", "hostname": "node3.corp.example", "csr": bogus_csr }))
            .refused_with(401),
        refused(tenant, "machine.join", "anonymous", "node3.corp.example"),
    )
    .await;
    let (key1, csr1) = csr(&files, "node1", &format!("/CN={NODE1}"), None);
    let joined = run
        .row(
            request("POST", join, format!("/v1/tenants/{T}/join"))
                .json(json!({ "token": token.1, "hostname": NODE1, "csr": csr1 })),
            ok(tenant, "machine.join", &format!("join-token:{NODE1}"), NODE1),
        )
        .await;
    let identity = format!("{key1}{}", joined["chain"].as_str().unwrap());
    let rotated = run
        .row(
            request("POST", "/v1/tenants/{tenant}/machine-secret", format!("/v1/tenants/{T}/machine-secret"))
                .mtls(identity.as_bytes())
                .json(json!({ "machine_secret": joined["machine_secret"] })),
            ok(tenant, "machine.rotate_secret", &format!("machine:{NODE1}"), NODE1),
        )
        .await;
    let (key2, csr2) = csr(&files, "node1-again", &format!("/CN={NODE1}"), None);
    let reenrolled = run
        .row(
            request("POST", "/v1/tenants/{tenant}/reenroll", format!("/v1/tenants/{T}/reenroll"))
                .json(json!({ "hostname": NODE1, "machine_secret": rotated["machine_secret"], "csr": csr2 })),
            ok(tenant, "machine.reenroll", &format!("machine:{NODE1}"), NODE1),
        )
        .await;
    let identity = format!("{key2}{}", reenrolled["chain"].as_str().unwrap());

    // --- certificates ---
    let certificates = "/v1/tenants/{tenant}/certificates";
    let web_csr = || csr(&files, "web", "/CN=web", Some("DNS:web.corp.example")).1;
    let issue = |csr: String| {
        request("POST", certificates, format!("/v1/tenants/{T}/certificates"))
            .bearer(&admin)
            .json(json!({ "csr": csr, "principal": "service/web" }))
    };
    let first = run.row(issue(web_csr()), ok(tenant, "certificate.issue", ADMIN, "service:web")).await;
    let (_, evil) = csr(&files, "evil", "/CN=web", Some("DNS:evil.example"));
    run.row(issue(evil).refused_with(403), refused(tenant, "certificate.issue", ADMIN, "service:web")).await;
    let serial = first["serial"].as_str().unwrap().to_string();
    run.row(
        request(
            "POST",
            "/v1/tenants/{tenant}/certificates/{serial}/revoke",
            format!("/v1/tenants/{T}/certificates/{serial}/revoke"),
        )
        .bearer(&admin)
        .json(json!({ "reason": "superseded" })),
        ok(tenant, "certificate.revoke", ADMIN, &serial),
    )
    .await;
    run.row(issue(web_csr()), ok(tenant, "certificate.issue", ADMIN, "service:web")).await;
    run.row(
        request("POST", "/v1/tenants/{tenant}/certificates/revoke", format!("/v1/tenants/{T}/certificates/revoke"))
            .bearer(&admin)
            .json(json!({ "principal": "service/web", "reason": "cessation-of-operation" })),
        ok(tenant, "certificate.revoke", ADMIN, "service:web"),
    )
    .await;

    // --- certificate authorities ---
    let extra = run
        .row(
            request("POST", "/v1/tenants/{tenant}/cas", format!("/v1/tenants/{T}/cas"))
                .bearer(&admin)
                .json(json!({ "name": "extra" })),
            ok(tenant, "ca.create", ADMIN, "extra"),
        )
        .await;
    let extra_id = extra["id"].as_str().unwrap();
    run.row(
        request("POST", "/v1/tenants/{tenant}/cas/{ca}/revoke", format!("/v1/tenants/{T}/cas/{extra_id}/revoke"))
            .bearer(&admin)
            .json(json!({ "reason": "cessation-of-operation" })),
        ok(tenant, "ca.revoke", ADMIN, "extra"),
    )
    .await;
    // --- Kubernetes (before a second root is imported: a cluster's CAs go under the active root) ---
    let clusters = "/v1/tenants/{tenant}/k8s/clusters";
    run.row(
        request("POST", clusters, format!("/v1/tenants/{T}/k8s/clusters")).bearer(&admin).json(json!({
            "name": "prod",
            "api_server": "https://k8s.corp.example:6443",
            "allow_ca_key_export": true,
        })),
        ok(tenant, "k8s.cluster.create", ADMIN, "prod"),
    )
    .await;
    run.row(
        request(
            "POST",
            "/v1/tenants/{tenant}/k8s/clusters/{cluster}/nodes",
            format!("/v1/tenants/{T}/k8s/clusters/prod/nodes"),
        )
        .bearer(&admin)
        .json(json!({ "machine": NODE2 })),
        ok(tenant, "k8s.node.add", ADMIN, NODE2),
    )
    .await;
    run.row(
        request(
            "DELETE",
            "/v1/tenants/{tenant}/k8s/clusters/{cluster}/nodes/{machine}",
            format!("/v1/tenants/{T}/k8s/clusters/prod/nodes/{NODE2}"),
        )
        .bearer(&admin),
        ok(tenant, "k8s.node.remove", ADMIN, NODE2),
    )
    .await;
    let (_, etcd_client) = csr(&files, "etcd-client", "/CN=kube-apiserver-etcd-client", None);
    run.row(
        request(
            "POST",
            "/v1/tenants/{tenant}/k8s/clusters/{cluster}/components",
            format!("/v1/tenants/{T}/k8s/clusters/prod/components"),
        )
        .bearer(&admin)
        .json(json!({ "component": "apiserver-etcd-client", "csr": etcd_client })),
        ok(tenant, "certificate.issue", ADMIN, "k8s:prod:apiserver-etcd-client"),
    )
    .await;
    run.row(
        request(
            "POST",
            "/v1/tenants/{tenant}/k8s/clusters/{cluster}/ca-key",
            format!("/v1/tenants/{T}/k8s/clusters/prod/ca-key"),
        )
        .bearer(&admin),
        ok(tenant, "k8s.ca-key.export", ADMIN, "prod"),
    )
    .await;
    run.row(
        request("DELETE", "/v1/tenants/{tenant}/k8s/clusters/{cluster}", format!("/v1/tenants/{T}/k8s/clusters/prod"))
            .bearer(&admin),
        ok(tenant, "k8s.cluster.delete", ADMIN, "prod"),
    )
    .await;

    // --- workload entries, and an SVID asked for by the machine's agent ---
    run.row(
        request("POST", "/v1/tenants/{tenant}/workloads", format!("/v1/tenants/{T}/workloads"))
            .bearer(&admin)
            .json(json!({ "name": "web-worker", "service": "web", "hosts": [NODE1], "selectors": ["unix:uid:1000"] })),
        ok(tenant, "workload.create", ADMIN, "web-worker"),
    )
    .await;
    let (_, svid_csr) = csr(&files, "svid", "/CN=web", None);
    run.row(
        request(
            "POST",
            "/v1/tenants/{tenant}/workloads/{name}/svid",
            format!("/v1/tenants/{T}/workloads/web-worker/svid"),
        )
        .mtls(identity.as_bytes())
        .json(json!({ "csr": svid_csr })),
        ok(tenant, "certificate.issue", &format!("machine:{NODE1}"), "workload:web-worker"),
    )
    .await;
    run.row(
        request(
            "POST",
            "/v1/tenants/{tenant}/workloads/{name}/jwt-svid",
            format!("/v1/tenants/{T}/workloads/web-worker/jwt-svid"),
        )
        .mtls(identity.as_bytes())
        .json(json!({ "audience": ["db"] })),
        ok(tenant, "jwt_svid.issue", &format!("machine:{NODE1}"), "workload:web-worker"),
    )
    .await;
    run.row(
        request("DELETE", "/v1/tenants/{tenant}/workloads/{name}", format!("/v1/tenants/{T}/workloads/web-worker"))
            .bearer(&admin),
        ok(tenant, "workload.delete", ADMIN, "web-worker"),
    )
    .await;

    // --- foreign trust domains (never read: the endpoint's address is refused) ---
    run.row(
        request("POST", "/v1/tenants/{tenant}/federations", format!("/v1/tenants/{T}/federations"))
            .bearer(&admin)
            .json(
                json!({ "trust_domain": "spire.partner.example", "bundle_endpoint_url": "https://169.254.169.254/b" }),
            ),
        ok(tenant, "federation.create", ADMIN, "spire.partner.example"),
    )
    .await;
    run.row(
        request(
            "POST",
            "/v1/tenants/{tenant}/federations/{trust_domain}/refresh",
            format!("/v1/tenants/{T}/federations/spire.partner.example/refresh"),
        )
        .bearer(&admin),
        ok(tenant, "federation.refresh", ADMIN, "spire.partner.example"),
    )
    .await;
    run.row(
        request(
            "DELETE",
            "/v1/tenants/{tenant}/federations/{trust_domain}",
            format!("/v1/tenants/{T}/federations/spire.partner.example"),
        )
        .bearer(&admin),
        ok(tenant, "federation.delete", ADMIN, "spire.partner.example"),
    )
    .await;

    // --- clients of the tenant's OpenID provider ---
    run.row(
        request("POST", "/v1/tenants/{tenant}/oidc/clients", format!("/v1/tenants/{T}/oidc/clients"))
            .bearer(&admin)
            .json(json!({ "name": "web-client", "principal": "service/web" })),
        ok(tenant, "oidc.client.create", ADMIN, "web-client"),
    )
    .await;
    run.row(
        request(
            "POST",
            "/v1/tenants/{tenant}/oidc/clients/{name}/secret",
            format!("/v1/tenants/{T}/oidc/clients/web-client/secret"),
        )
        .bearer(&admin),
        ok(tenant, "oidc.client.rotate_secret", ADMIN, "web-client"),
    )
    .await;
    run.row(
        request(
            "DELETE",
            "/v1/tenants/{tenant}/oidc/clients/{name}",
            format!("/v1/tenants/{T}/oidc/clients/web-client"),
        )
        .bearer(&admin),
        ok(tenant, "oidc.client.delete", ADMIN, "web-client"),
    )
    .await;

    // --- bring-your-own CAs ---
    let (imported_cert, imported_key) = files.openssl_self_signed("imported", "/O=Elsewhere/CN=Imported Root", true);
    run.row(
        request("POST", "/v1/tenants/{tenant}/cas/import", format!("/v1/tenants/{T}/cas/import")).bearer(&admin).json(
            json!({
                "certificate": std::fs::read_to_string(&imported_cert).unwrap(),
                "key": std::fs::read_to_string(&imported_key).unwrap(),
                "name": "imported",
            }),
        ),
        ok(tenant, "ca.import", ADMIN, "imported"),
    )
    .await;
    let pending = run
        .row(
            request("POST", "/v1/tenants/{tenant}/ca-requests", format!("/v1/tenants/{T}/ca-requests"))
                .bearer(&admin)
                .json(json!({ "name": "ent" })),
            ok(tenant, "ca.request", ADMIN, "ent"),
        )
        .await;
    let (ent_root, ent_key) = files.openssl_self_signed("enterprise-root", "/O=Enterprise/CN=Enterprise Root", true);
    let ent_csr = files.write("ent.csr", pending["csr_pem"].as_str().unwrap());
    let signed = files.openssl_sign_ca("ent", &ent_csr, &ent_root, &ent_key);
    run.row(
        request(
            "POST",
            "/v1/tenants/{tenant}/ca-requests/{name}/install",
            format!("/v1/tenants/{T}/ca-requests/ent/install"),
        )
        .bearer(&admin)
        .json(json!({ "certificate": std::fs::read_to_string(&signed).unwrap() })),
        ok(tenant, "ca.install", ADMIN, "ent"),
    )
    .await;

    // --- the host leaves ---
    run.row(
        request("POST", "/v1/tenants/{tenant}/leave", format!("/v1/tenants/{T}/leave"))
            .mtls(identity.as_bytes())
            .json(json!({ "hostname": NODE1, "machine_secret": rotated["machine_secret"] })),
        ok(tenant, "machine.leave", &format!("machine:{NODE1}"), NODE1),
    )
    .await;

    // --- the system chain: checkpoints, a tenant created and deleted ---
    run.row(
        request("POST", "/v1/audit/checkpoint", "/v1/audit/checkpoint").bearer(&op),
        ok(system, "audit.checkpoint", "system", &tenant_id),
    )
    .await;
    run.row(
        request("POST", "/v1/tenants", "/v1/tenants").bearer(&op).json(json!({ "domain": GONE })),
        ok(system, "tenant.create", "operator", GONE),
    )
    .await;
    run.row(
        request("DELETE", "/v1/tenants/{tenant}", format!("/v1/tenants/{GONE}")).bearer(&op),
        ok(system, "tenant.delete", "operator", GONE),
    )
    .await;

    // --- a root rotation, and the CA job retiring the old root ---
    let rot = Chain::Tenant(ROT);
    run.row(
        request("POST", "/v1/tenants", "/v1/tenants")
            .bearer(&op)
            .json(json!({ "domain": ROT, "admin_password": pki::ADMIN_PASSWORD })),
        ok(system, "tenant.create", "operator", ROT),
    )
    .await;
    let rot_admin = server.client().login(ROT, "administrator", pki::ADMIN_PASSWORD).await.unwrap().token;
    run.reads(rot, &rot_admin).await;
    let rot_admin = run.login(rot, "administrator", pki::ADMIN_PASSWORD).await;
    let (_, own) = csr(&files, "rot-admin", "/CN=administrator", None);
    run.row(
        request("POST", certificates, format!("/v1/tenants/{ROT}/certificates"))
            .bearer(&rot_admin)
            .json(json!({ "csr": own, "ttl": "1h" })),
        ok(rot, "certificate.issue", ADMIN, ADMIN),
    )
    .await;
    let rotate = "/v1/tenants/{tenant}/cas/rotate";
    run.row(
        request("POST", rotate, format!("/v1/tenants/{ROT}/cas/rotate")).bearer(&rot_admin).json(json!({})),
        ok(rot, "ca.rotate", ADMIN, "root-2"),
    )
    .await;
    run.row(
        request("POST", rotate, format!("/v1/tenants/{ROT}/cas/rotate"))
            .bearer(&rot_admin)
            .json(json!({ "activate": true })),
        ok(rot, "ca.rotate.activate", ADMIN, "root-2"),
    )
    .await;
    // The old root's last certificate (1 h) expires; the CA job (every second) retires it.
    server.set_clock_offset(2 * 3600);
    let op = server.client().operator_login("operator", &op_pw).await.unwrap().token;
    run.reads(system, &op).await;
    let rot_admin = server.client().login(ROT, "administrator", pki::ADMIN_PASSWORD).await.unwrap().token;
    run.reads(rot, &rot_admin).await;
    run.job("the CA job retires the old root", ok(rot, "ca.retire", "system", "root")).await;

    // Every mutating route had a row.
    let routes = mutating_routes(&server).await;
    let missing: Vec<_> = routes.difference(&run.covered).collect();
    assert!(missing.is_empty(), "mutating routes without a row in this table: {missing:?}");
    let unknown: Vec<_> = run.covered.difference(&routes).collect();
    assert!(unknown.is_empty(), "rows for routes the OpenAPI document does not list: {unknown:?}");
    eprintln!("{} rows over {} mutating routes", run.rows, routes.len());

    // Both kinds of chain verify after all of it.
    let admin = server.client().login(T, "administrator", pki::ADMIN_PASSWORD).await.unwrap().token;
    for (tenant, token) in [(Some(T), &admin), (Some(ROT), &rot_admin), (None, &op)] {
        let v = server.client().with_token(token.clone()).audit_verify(tenant).await.unwrap();
        assert!(v.valid, "{tenant:?}: {v:?}");
    }
}
