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
