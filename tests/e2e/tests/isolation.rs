//! Tenant isolation: an administrator of tenant A can reach nothing of
//! tenant B by any route, and the operator cannot act inside tenants or log
//! in as a tenant user.
#![allow(clippy::unwrap_used)]

use lightwell_proto::{CreateUserRequest, ErrorCode};
use lightwell_testkit::TestServer;
use reqwest::Method;
use serde_json::json;

const ADMIN_PW: &str = "Tenant-Admin-1!";

#[tokio::test]
async fn an_administrator_of_one_tenant_cannot_touch_another() {
    let server = TestServer::start();
    let a_admin = server.create_tenant("a.example", ADMIN_PW).await;
    let b_admin = server.create_tenant("b.example", ADMIN_PW).await;
    let bob = CreateUserRequest { name: "bob".into(), password: Some("Builder-Pass-77!".into()), ..Default::default() };
    b_admin.create_principal("b.example", "users", &bob).await.unwrap();
    b_admin.create_principal("b.example", "groups", &json!({"name": "ops"})).await.unwrap();
    let before = b_admin.list_principals("b.example", "users").await.unwrap();

    let token = a_admin.whoami().await.unwrap();
    assert_eq!(token.tenant.as_deref(), Some("a.example"));

    // Every route into tenant B, with A's administrator token.
    let a_token = server.client().login("a.example", "administrator", ADMIN_PW).await.unwrap().token;
    let raw = server.raw();
    let base = format!("{}/v1/tenants/b.example", server.url());
    let cases: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::GET, base.clone(), None),
        (Method::DELETE, base.clone(), None),
        (Method::GET, format!("{base}/users"), None),
        (Method::GET, format!("{base}/users/bob"), None),
        (Method::GET, format!("{base}/groups"), None),
        (Method::GET, format!("{base}/groups/ops"), None),
        (Method::GET, format!("{base}/machines"), None),
        (Method::GET, format!("{base}/services"), None),
        (Method::POST, format!("{base}/users"), Some(json!({"name": "mallory", "password": "Mallory-Pw-99!"}))),
        (Method::PATCH, format!("{base}/users/bob"), Some(json!({"email": "mallory@a.example"}))),
        (Method::DELETE, format!("{base}/users/bob"), None),
        (Method::PUT, format!("{base}/users/bob/password"), Some(json!({"new_password": "Owned-By-A-123!"}))),
        (Method::POST, format!("{base}/users/bob/disable"), None),
        (Method::POST, format!("{base}/users/bob/unlock"), None),
        (Method::POST, format!("{base}/groups/ops/members"), Some(json!({"kind": "user", "name": "bob"}))),
        (Method::POST, format!("{base}/groups/Administrators/members"), Some(json!({"kind": "user", "name": "bob"}))),
        (Method::GET, format!("{base}/audit"), None),
        (Method::GET, format!("{base}/audit/verify"), None),
        (Method::GET, format!("{}/v1/tenants", server.url()), None),
        (Method::POST, format!("{}/v1/tenants", server.url()), Some(json!({"domain": "c.example"}))),
        (Method::GET, format!("{}/v1/audit", server.url()), None),
    ];
    for (method, url, body) in cases {
        let mut req = raw.request(method.clone(), &url).bearer_auth(&a_token);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 403, "{method} {url} must be forbidden to tenant A's administrator");
        let err: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["code"], "forbidden", "{method} {url}");
    }

    // A's credentials do not authenticate into B.
    let err = server.client().login("b.example", "administrator", "wrong-for-b").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidCredentials));
    let err = server.client().login("b.example", "administrator", "").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidCredentials));

    // Nothing in B changed.
    let after = b_admin.list_principals("b.example", "users").await.unwrap();
    assert_eq!(before, after);
    assert!(b_admin.principal("b.example", "users", "mallory").await.is_err());
    assert_eq!(b_admin.principal("b.example", "groups", "ops").await.unwrap().members, Some(vec![]));
    server.client().login("b.example", "bob", "Builder-Pass-77!").await.unwrap();
}

#[tokio::test]
async fn the_operator_has_no_rights_inside_tenants_and_cannot_log_in_to_them() {
    let server = TestServer::start();
    server.create_tenant("corp.example", ADMIN_PW).await;
    let op = server.operator().await;
    let err = op.list_principals("corp.example", "users").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Forbidden));
    let err = op.audit(Some("corp.example"), 0, 10).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Forbidden));
    let err = server.client().login("corp.example", "operator", &server.operator_password()).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidCredentials), "the operator is not a tenant user");
    // And a tenant administrator cannot log in at the system scope.
    let err = server.client().operator_login("administrator", ADMIN_PW).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidCredentials));
}

mod every_route {
    //! Every tenant route of `/v1/openapi.json`, driven for tenant B with
    //! tenant A's administrator token and with A's client certificates.

    use lightwell_client::Client;
    use lightwell_proto::{CreateClusterRequest, CreateJoinTokenRequest, CreateUserRequest, JoinRequestBody};
    use lightwell_testkit::TestServer;
    use lightwell_testkit::pki::{self, Files};
    use reqwest::Method;
    use serde_json::{Value, json};

    const A: &str = "a.example";
    const B: &str = "b.example";
    const A_PW: &str = "Tenant-A-Admin-1!";
    const B_PW: &str = "Tenant-B-Admin-2!";
    const B_HOST: &str = "nodeb.b.example";

    /// What tenant B holds, to compare before and after the attempts.
    async fn state_of_b(server: &TestServer, b: &Client) -> Value {
        let mut principals = Vec::new();
        for c in ["users", "groups", "machines", "services"] {
            principals.push(serde_json::to_value(b.list_principals(B, c).await.unwrap()).unwrap());
        }
        let certs: Vec<Value> = b
            .list_certificates(B, None)
            .await
            .unwrap()
            .into_iter()
            .map(|c| json!([c.serial, c.revoked_at, c.principal_name]))
            .collect();
        let cas = b.list_cas(B).await.unwrap();
        let mut crl_numbers = Vec::new();
        for ca in &cas {
            let (status, der) = pki::http_get(&format!("{}/pki/{B}/ca/{}.crl", server.pki_url(), ca.id)).await;
            assert_eq!(status, 200);
            let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
            crl_numbers.push(crl.crl_number().map(|n| n.to_string()));
        }
        let cas: Vec<Value> = cas.iter().map(|c| json!([c.id, c.name, c.status, c.is_default])).collect();
        let tokens: Vec<Value> =
            b.list_join_tokens(B).await.unwrap().into_iter().map(|t| json!([t.id, t.uses_left, t.revoked])).collect();
        let clusters = serde_json::to_value(b.list_clusters(B).await.unwrap()).unwrap();
        // Not the read schedule or its error: the federation job moves those.
        let federations: Vec<Value> = b
            .list_federations(B)
            .await
            .unwrap()
            .into_iter()
            .map(|f| json!([f.trust_domain, f.bundle_endpoint_url, f.sequence, f.created_at]))
            .collect();
        let domains = b.machine_domains(B).await.unwrap().domains;
        let oidc_clients = serde_json::to_value(b.list_oidc_clients(B).await.unwrap()).unwrap();
        json!({ "oidc_clients": oidc_clients, "principals": principals, "certs": certs, "cas": cas, "crl_numbers": crl_numbers,
                "tokens": tokens, "clusters": clusters, "machine_domains": domains, "federations": federations })
    }

    /// The concrete requests for one OpenAPI path template: URL and body.
    struct Ctx {
        ca: String,
        serial: String,
        token_id: String,
        csr: String,
        ca_pem: String,
        ca_key: String,
        a_machine_secret: String,
    }

    fn collections_for(suffix: &str) -> &'static [(&'static str, &'static str)] {
        const ALL: &[(&str, &str)] = &[("users", "bob"), ("groups", "ops"), ("machines", B_HOST), ("services", "svcb")];
        match suffix {
            "/password" | "/unlock" => &ALL[..1],
            "/members" | "/members/{kind}/{member}" => &ALL[1..2],
            "/hosts" | "/hosts/{machine}" => &ALL[3..],
            "/disable" | "/enable" => &[("users", "bob"), ("machines", B_HOST), ("services", "svcb")],
            _ => ALL,
        }
    }

    /// Expands a template into (URL path, body) pairs; panics on a template
    /// or method it does not know, so a new route must be added here.
    fn expand(method: &Method, template: &str, ctx: &Ctx) -> Vec<(String, Option<Value>)> {
        let rest = template.strip_prefix("/v1/tenants/{tenant}").unwrap();
        let mut out = Vec::new();
        if let Some(sub) = rest.strip_prefix("/{collection}") {
            let suffix = sub.strip_prefix("/{name}").unwrap_or(sub);
            for (collection, name) in collections_for(suffix) {
                let path = format!("/v1/tenants/{B}/{collection}{}", sub.replace("{name}", name));
                let path = path.replace("{kind}/{member}", "user/bob").replace("{machine}", B_HOST);
                let body = match (method.as_str(), suffix) {
                    ("POST", "") => Some(match *collection {
                        "users" => json!({"name": "mallory", "password": "Mallory-Pw-99!"}),
                        "machines" => json!({"name": "evil.b.example"}),
                        _ => json!({"name": "evil"}),
                    }),
                    ("PATCH", "") => Some(json!({"display_name": "owned by A"})),
                    ("PUT", "/password") => Some(json!({"new_password": "Owned-By-A-123!"})),
                    ("POST", "/members") => Some(json!({"kind": "user", "name": "bob"})),
                    ("POST", "/hosts") => Some(json!({"machine": B_HOST})),
                    (_, _) => None,
                };
                out.push((path, body));
            }
            return out;
        }
        let path = format!("/v1/tenants/{B}{rest}")
            .replace("{ca}", &ctx.ca)
            .replace("{serial}", &ctx.serial)
            .replace("{id}", &ctx.token_id)
            .replace("{cluster}", "kb")
            .replace("{machine}", B_HOST)
            .replace("{name}", "ent")
            .replace("{trust_domain}", "partner.example");
        assert!(!path.contains('{'), "unknown placeholder in {template}: add it to the isolation test");
        let body = match (method.as_str(), rest) {
            ("GET" | "DELETE", _) => None,
            ("POST", "/cas") => Some(json!({"name": "evil"})),
            ("POST", "/cas/import") => Some(json!({"certificate": ctx.ca_pem, "key": ctx.ca_key})),
            ("POST", "/cas/rotate") => Some(json!({})),
            ("POST", "/cas/{ca}/revoke" | "/certificates/{serial}/revoke") => Some(json!({"reason": "key-compromise"})),
            ("POST", "/ca-requests") => Some(json!({"name": "evil-req"})),
            ("POST", "/ca-requests/{name}/install") => Some(json!({"certificate": ctx.ca_pem})),
            ("POST", "/certificates") => Some(json!({"csr": ctx.csr, "principal": "user/bob"})),
            ("POST", "/certificates/revoke") => Some(json!({"principal": "user/bob", "reason": "key-compromise"})),
            ("POST", "/join") => Some(json!({"hostname": "evil.b.example", "csr": ctx.csr})),
            ("POST", "/join-tokens") => Some(json!({})),
            ("POST", "/k8s/clusters") => Some(json!({"name": "evil"})),
            ("POST", "/k8s/clusters/{cluster}/ca-key") => None,
            ("POST", "/leave") => Some(json!({"hostname": B_HOST, "machine_secret": ctx.a_machine_secret})),
            ("POST", "/k8s/clusters/{cluster}/components") => Some(json!({"component": "apiserver", "csr": ctx.csr})),
            ("POST", "/k8s/clusters/{cluster}/nodes") => Some(json!({"machine": B_HOST})),
            ("POST", "/workloads") => {
                Some(json!({"name": "evil", "service": "svcb", "hosts": [B_HOST], "selectors": ["unix:uid:0"]}))
            }
            ("POST", "/workloads/{name}/svid") => Some(json!({"csr": ctx.csr})),
            ("POST", "/workloads/{name}/jwt-svid") => Some(json!({"audience": ["db"]})),
            ("POST", "/federations") => {
                Some(json!({"trust_domain": "evil.example", "bundle_endpoint_url": "https://169.254.169.254/b"}))
            }
            ("POST", "/federations/{trust_domain}/refresh") => None,
            ("POST", "/oidc/clients") => Some(json!({"name": "evil", "principal": "service/svcb"})),
            ("POST", "/oidc/clients/{name}/secret") => None,
            ("POST", "/login") => Some(json!({"user": "administrator", "password": A_PW})),
            ("PUT", "/machine-domains") => Some(json!({"domains": ["evil.example"]})),
            ("POST", "/machine-secret") => Some(json!({"machine_secret": ctx.a_machine_secret})),
            ("POST", "/reenroll") => {
                Some(json!({"hostname": B_HOST, "machine_secret": ctx.a_machine_secret, "csr": ctx.csr}))
            }
            (m, r) => panic!("no request body for {m} {r}: add the route to the isolation test"),
        };
        vec![(path, body)]
    }

    /// Routes anyone may call without credentials, by design: the trust
    /// state is published anyway (also as CRLs and CA certificates over
    /// plain HTTP).
    const PUBLIC: &[&str] = &["/trust", "/trust-bundle", "/trust/watch", "/trust/changes"];

    /// What a route answers someone of another tenant: (status, code).
    fn expected(rest: &str, by_certificate: bool) -> (u16, &'static str) {
        match rest {
            // These check their own credential, not the caller's session.
            "/login" | "/reenroll" | "/leave" => (401, "invalid_credentials"),
            "/join" if by_certificate => (401, "invalid_join_token"),
            _ => (403, "forbidden"),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn every_route_of_another_tenant_refuses_a_token_and_a_certificate_of_this_one() {
        // The login route is tried with a wrong password from this one
        // address; the address throttle (tested in login_defences.rs) would
        // then answer 429 to every later login here.
        let server = TestServer::start_with(&["--login-throttle-failures", "0"]);
        let files = Files::new();
        let a = server.create_tenant(A, A_PW).await;
        let b = server.create_tenant(B, B_PW).await;
        // Tenant B: a user, an empty group, a joined machine, a service, a
        // cluster, a join token, a pending CA request.
        let bob =
            CreateUserRequest { name: "bob".into(), password: Some("Builder-Pass-77!".into()), ..Default::default() };
        b.create_principal(B, "users", &bob).await.unwrap();
        b.create_principal(B, "groups", &json!({"name": "ops"})).await.unwrap();
        pki::host(&b, B, "services", "svcb", &[], &[]).await;
        let join = |c: &Client, tenant: &'static str, host: &'static str| {
            let c = c.clone();
            let (key, csr) = files.csr(host, "ec:P-256", &format!("/CN={host}"), &[]);
            async move {
                let req = CreateJoinTokenRequest { hostname: Some(host.into()), ..Default::default() };
                let token = c.create_join_token(tenant, &req).await.unwrap().token;
                let body = JoinRequestBody { token, hostname: host.into(), ips: vec![], csr };
                (c.join(tenant, &body).await.unwrap(), key)
            }
        };
        let (joined_b, _) = join(&b, B, B_HOST).await;
        b.create_cluster(B, &CreateClusterRequest { name: "kb".into(), ..Default::default() }).await.unwrap();
        let federation = lightwell_proto::CreateFederationRequest {
            trust_domain: "partner.example".into(),
            bundle_endpoint_url: Some("https://169.254.169.254/b".into()),
            ..Default::default()
        };
        b.create_federation(B, &federation).await.unwrap();
        let client = lightwell_proto::CreateOidcClientRequest {
            name: "ent".into(),
            principal: "service/svcb".into(),
            ..Default::default()
        };
        b.create_oidc_client(B, &client).await.unwrap();
        let token_id = b.create_join_token(B, &CreateJoinTokenRequest::default()).await.unwrap().id;
        b.create_ca_request(B, &lightwell_proto::CreateCaRequestRequest { name: "ent".into(), ..Default::default() })
            .await
            .unwrap();
        // Tenant A: its administrator's own certificate and a joined machine.
        let (joined_a, a_machine_key) = join(&a, A, "nodea.a.example").await;
        let (admin_key, csr) = files.csr("a-admin", "ec:P-256", "/CN=administrator", &[]);
        let req = lightwell_proto::IssueCertificateRequest { csr, ..Default::default() };
        let a_cert = a.issue_certificate(A, &req).await.unwrap();
        let identity = |key: &std::path::Path, chain: &str| {
            let mut id = std::fs::read(key).unwrap();
            id.extend_from_slice(chain.as_bytes());
            server.mtls(Some(&id))
        };
        let as_admin_cert = identity(&admin_key, &a_cert.chain_pem);
        let as_machine_cert = identity(&a_machine_key, &joined_a.chain);
        let a_token = server.client().login(A, "administrator", A_PW).await.unwrap().token;

        let (ca_pem_path, ca_key_path) = files.openssl_self_signed("import", "/CN=Imported", true);
        let ca = b.list_cas(B).await.unwrap().into_iter().find(|c| c.is_default).unwrap().id;
        let serial = b.list_certificates(B, None).await.unwrap()[0].serial.clone();
        let ctx = Ctx {
            ca,
            serial,
            token_id,
            csr: files.csr("any", "ec:P-256", "/CN=bob", &[]).1,
            ca_pem: std::fs::read_to_string(ca_pem_path).unwrap(),
            ca_key: std::fs::read_to_string(ca_key_path).unwrap(),
            a_machine_secret: joined_a.machine_secret.clone(),
        };
        let before = state_of_b(&server, &b).await;

        let spec: Value =
            server.raw().get(format!("{}/v1/openapi.json", server.url())).send().await.unwrap().json().await.unwrap();
        let mut tried = 0;
        for (template, ops) in spec["paths"].as_object().unwrap() {
            let Some(rest) = template.strip_prefix("/v1/tenants/{tenant}") else { continue };
            for method in ops.as_object().unwrap().keys() {
                let method: Method = method.to_uppercase().parse().unwrap();
                for (path, body) in expand(&method, template, &ctx) {
                    let url = if rest == "/trust/watch" || rest == "/trust/changes" {
                        format!("{}{path}?since=0&timeout_secs=1", server.url())
                    } else {
                        format!("{}{path}", server.url())
                    };
                    let callers = [
                        ("A's administrator token", server.raw(), Some(&a_token), false),
                        ("A's administrator certificate", as_admin_cert.clone(), None, true),
                        ("A's machine certificate", as_machine_cert.clone(), None, true),
                    ];
                    for (who, client, bearer, by_certificate) in callers {
                        let mut req = client.request(method.clone(), &url);
                        if let Some(t) = bearer {
                            req = req.bearer_auth(t);
                        }
                        if let Some(b) = &body {
                            req = req.json(b);
                        }
                        let resp = req.send().await.unwrap();
                        let status = resp.status().as_u16();
                        let text = resp.text().await.unwrap();
                        if PUBLIC.contains(&rest) {
                            assert_eq!(status, 200, "{method} {path} is public: {text}");
                            continue;
                        }
                        let (want_status, want_code) = expected(rest, by_certificate);
                        let got: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                        assert_eq!(
                            (status, got["error"]["code"].as_str()),
                            (want_status, Some(want_code)),
                            "{method} {path} with {who}: {text}"
                        );
                        tried += 1;
                    }
                }
            }
        }
        assert!(tried > 150, "only {tried} requests: did the OpenAPI document lose its routes?");

        // Nothing of B changed; its administrator and machine still work.
        assert_eq!(state_of_b(&server, &b).await, before);
        server.client().login(B, "administrator", B_PW).await.unwrap();
        assert!(joined_b.chain.contains("BEGIN CERTIFICATE"));
    }
}
