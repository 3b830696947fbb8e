//! Bad input gets the documented 4xx and error code, changes nothing, and
//! leaves the server healthy.
#![allow(clippy::unwrap_used)]

use lightwell_testkit::TestServer;
use reqwest::Method;
use serde_json::json;

const ADMIN_PW: &str = "Tenant-Admin-1!";

enum Body {
    None,
    Json(serde_json::Value),
    Raw(&'static str, Vec<u8>),
}

struct Case {
    what: &'static str,
    method: Method,
    path: &'static str,
    auth: bool,
    body: Body,
    status: u16,
    code: &'static str,
}

fn case(what: &'static str, method: Method, path: &'static str, body: Body, status: u16, code: &'static str) -> Case {
    Case { what, method, path, auth: true, body, status, code }
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_change_nothing() {
    let server = TestServer::start();
    let admin = server.create_tenant("corp.example", ADMIN_PW).await;
    let op = server.operator().await;
    admin.create_principal("corp.example", "users", &json!({"name": "alice"})).await.unwrap();
    admin.create_principal("corp.example", "groups", &json!({"name": "ops"})).await.unwrap();
    let admin_token = server.client().login("corp.example", "administrator", ADMIN_PW).await.unwrap().token;
    let op_token = server.client().operator_login("operator", &server.operator_password()).await.unwrap().token;

    let snapshot = || async {
        (
            op.list_tenants().await.unwrap(),
            admin.list_principals("corp.example", "users").await.unwrap(),
            admin.list_principals("corp.example", "groups").await.unwrap(),
            admin.list_principals("corp.example", "machines").await.unwrap(),
            admin.list_principals("corp.example", "services").await.unwrap(),
        )
    };
    let before = snapshot().await;
    let big = vec![b'a'; 2 * 1024 * 1024];
    let mut oversized = br#"{"name":""#.to_vec();
    oversized.extend_from_slice(&big);
    oversized.extend_from_slice(br#""}"#);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));

    use Method as M;
    let cases = vec![
        case(
            "malformed JSON",
            M::POST,
            "/v1/tenants/corp.example/users",
            Body::Raw("application/json", b"{\"name\": ".to_vec()),
            400,
            "invalid_json",
        ),
        case(
            "not JSON at all",
            M::POST,
            "/v1/tenants/corp.example/users",
            Body::Raw("application/json", b"\xff\xfe garbage".to_vec()),
            400,
            "invalid_json",
        ),
        case(
            "deeply nested JSON",
            M::POST,
            "/v1/tenants/corp.example/users",
            Body::Raw("application/json", deep.into_bytes()),
            400,
            "invalid_json",
        ),
        case(
            "wrong content type",
            M::POST,
            "/v1/tenants/corp.example/users",
            Body::Raw("text/plain", b"{}".to_vec()),
            400,
            "invalid_request",
        ),
        case(
            "wrong type",
            M::POST,
            "/v1/tenants/corp.example/users",
            Body::Json(json!({"name": 42})),
            400,
            "invalid_request",
        ),
        case(
            "missing field",
            M::POST,
            "/v1/tenants/corp.example/users",
            Body::Json(json!({"email": "x@corp.example"})),
            400,
            "invalid_request",
        ),
        case(
            "unknown field",
            M::POST,
            "/v1/tenants/corp.example/users",
            Body::Json(json!({"name": "bob", "admin": true})),
            400,
            "invalid_request",
        ),
        case(
            "oversized body",
            M::POST,
            "/v1/tenants/corp.example/users",
            Body::Raw("application/json", oversized),
            413,
            "body_too_large",
        ),
        case("unknown tenant", M::GET, "/v1/tenants/nope.example/users", Body::None, 403, "forbidden"),
        case("operator: unknown tenant", M::GET, "/v1/tenants/nope.example", Body::None, 404, "tenant_not_found"),
        case(
            "duplicate user",
            M::POST,
            "/v1/tenants/corp.example/users",
            Body::Json(json!({"name": "alice"})),
            409,
            "already_exists",
        ),
        case(
            "duplicate user, other case",
            M::POST,
            "/v1/tenants/corp.example/users",
            Body::Json(json!({"name": "ALICE"})),
            409,
            "already_exists",
        ),
        case(
            "duplicate group",
            M::POST,
            "/v1/tenants/corp.example/groups",
            Body::Json(json!({"name": "ops"})),
            409,
            "already_exists",
        ),
        case(
            "duplicate tenant",
            M::POST,
            "/v1/tenants",
            Body::Json(json!({"domain": "corp.example"})),
            409,
            "already_exists",
        ),
        case(
            "invalid domain",
            M::POST,
            "/v1/tenants",
            Body::Json(json!({"domain": "not a domain"})),
            400,
            "invalid_name",
        ),
        case(
            "single-label domain",
            M::POST,
            "/v1/tenants",
            Body::Json(json!({"domain": "localhost"})),
            400,
            "invalid_name",
        ),
        case(
            "weak admin password",
            M::POST,
            "/v1/tenants",
            Body::Json(json!({"domain": "weak.example", "admin_password": "password"})),
            400,
            "weak_password",
        ),
        case(
            "invalid user name",
            M::POST,
            "/v1/tenants/corp.example/users",
            Body::Json(json!({"name": "bob smith"})),
            400,
            "invalid_name",
        ),
        case(
            "invalid email",
            M::POST,
            "/v1/tenants/corp.example/users",
            Body::Json(json!({"name": "bob", "email": "bob@"})),
            400,
            "invalid_name",
        ),
        case(
            "invalid machine host name",
            M::POST,
            "/v1/tenants/corp.example/machines",
            Body::Json(json!({"name": "node_1.corp.example"})),
            400,
            "invalid_name",
        ),
        case(
            "wildcard host name",
            M::POST,
            "/v1/tenants/corp.example/services",
            Body::Json(json!({"name": "web", "hostnames": ["*.corp.example"]})),
            400,
            "invalid_name",
        ),
        case(
            "invalid IP",
            M::POST,
            "/v1/tenants/corp.example/machines",
            Body::Json(json!({"name": "n1.corp.example", "ips": ["10.0.0.999"]})),
            400,
            "invalid_name",
        ),
        case(
            "group cycle",
            M::POST,
            "/v1/tenants/corp.example/groups/ops/members",
            Body::Json(json!({"kind": "group", "name": "ops"})),
            409,
            "group_cycle",
        ),
        case(
            "unknown member kind",
            M::POST,
            "/v1/tenants/corp.example/groups/ops/members",
            Body::Json(json!({"kind": "robot", "name": "r2"})),
            400,
            "invalid_request",
        ),
        case(
            "unknown member",
            M::POST,
            "/v1/tenants/corp.example/groups/ops/members",
            Body::Json(json!({"kind": "user", "name": "ghost"})),
            404,
            "principal_not_found",
        ),
        case(
            "delete built-in group",
            M::DELETE,
            "/v1/tenants/corp.example/groups/Administrators",
            Body::None,
            409,
            "builtin_protected",
        ),
        case("unknown route", M::GET, "/v1/nothing-here", Body::None, 404, "not_found"),
        case("unknown collection", M::GET, "/v1/tenants/corp.example/printers", Body::None, 404, "not_found"),
        case("wrong method", M::PUT, "/v1/tenants", Body::None, 405, "method_not_allowed"),
        case("wrong method on login", M::GET, "/v1/login", Body::None, 405, "method_not_allowed"),
        case("bad paging", M::GET, "/v1/tenants/corp.example/audit?limit=lots", Body::None, 400, "invalid_request"),
        Case {
            what: "no token",
            method: M::GET,
            path: "/v1/tenants/corp.example/users",
            auth: false,
            body: Body::None,
            status: 401,
            code: "unauthenticated",
        },
    ];
    let raw = server.raw();
    for c in cases {
        let url = format!("{}{}", server.url(), c.path);
        let operator_route = c.path == "/v1/tenants" || c.what.starts_with("operator");
        let mut req = raw.request(c.method.clone(), &url);
        if c.auth {
            req = req.bearer_auth(if operator_route { &op_token } else { &admin_token });
        }
        req = match c.body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Raw(ct, bytes) => req.header("content-type", ct).body(bytes),
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap_or_else(|e| panic!("{}: body is not JSON: {e}", c.what));
        assert_eq!(status, c.status, "{}: {body}", c.what);
        assert_eq!(body["error"]["code"], c.code, "{}: {body}", c.what);
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", c.what);
    }

    // Bearer tokens that are not ours.
    for token in ["", "lw_", "lw_forged", &"x".repeat(10_000), "Basic abc"] {
        let resp = raw.get(format!("{}/v1/whoami", server.url())).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), 401, "token {:?}", &token[..token.len().min(10)]);
    }

    assert_eq!(snapshot().await, before, "no bad request changed anything");
    let health = raw.get(format!("{}/readyz", server.url())).send().await.unwrap();
    assert_eq!(health.status(), 200);
}
