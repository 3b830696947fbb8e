//! Passwords, lockout and sessions against the real server.
#![allow(clippy::unwrap_used)]

use lightwell_client::Client;
use lightwell_proto::{CreateUserRequest, ErrorCode, SetPasswordRequest};
use lightwell_testkit::TestServer;

const ADMIN_PW: &str = "Tenant-Admin-1!";
const T: &str = "corp.example";

async fn tenant_with_user(server: &TestServer, user: &str, pw: &str) -> Client {
    let admin = server.create_tenant(T, ADMIN_PW).await;
    let req = CreateUserRequest { name: user.into(), password: Some(pw.into()), ..Default::default() };
    admin.create_principal(T, "users", &req).await.unwrap();
    admin
}

async fn login_code(server: &TestServer, user: &str, pw: &str) -> Option<ErrorCode> {
    server.client().login(T, user, pw).await.err().map(|e| e.code().unwrap())
}

/// Five wrong passwords for `user`, from two addresses: one address alone
/// is throttled after three, before it could lock the account.
async fn five_failures_from_two_addresses(server: &TestServer, user: &str) {
    for source in ["127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"] {
        let answer = server.login_from(source, T, user, "wrong").await;
        assert_eq!((answer.status, answer.code()), (401, Some("invalid_credentials")), "{answer:?}");
    }
}

#[tokio::test]
async fn five_bad_passwords_lock_the_account_until_the_window_passes() {
    let server = TestServer::start();
    let admin = tenant_with_user(&server, "alice", "Rabbit-Hole-1!").await;
    five_failures_from_two_addresses(&server, "alice").await;
    assert!(admin.principal(T, "users", "alice").await.unwrap().locked, "the fifth failure locks");
    // Locked answers like wrong, even to the right password (see login_defences.rs).
    let right = "Rabbit-Hole-1!";
    let refused = server.login_from("127.0.0.4", T, "alice", right).await;
    assert_eq!(refused.code(), Some("invalid_credentials"), "refused while locked");
    server.set_clock_offset(200);
    assert_eq!(server.login_from("127.0.0.5", T, "alice", right).await.code(), Some("invalid_credentials"));
    // Generous margins: the machine may be slow between the lock and these checks.
    server.set_clock_offset(330);
    assert_eq!(server.login_from("127.0.0.6", T, "alice", right).await.status, 200, "unlocked after 300 s");

    let metrics = server.raw().get(format!("{}/metrics", server.url())).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("lightwell_lockouts_total 1"), "{metrics}");
    assert!(metrics.contains("lightwell_login_failures_total 7"), "{metrics}");
}

#[tokio::test]
async fn an_administrator_can_unlock_a_locked_account() {
    let server = TestServer::start();
    let admin = tenant_with_user(&server, "alice", "Rabbit-Hole-1!").await;
    five_failures_from_two_addresses(&server, "alice").await;
    assert!(admin.principal(T, "users", "alice").await.unwrap().locked);
    assert_eq!(server.login_from("127.0.0.4", T, "alice", "Rabbit-Hole-1!").await.code(), Some("invalid_credentials"));
    admin.principal_action(T, "users", "alice", "unlock").await.unwrap();
    assert!(!admin.principal(T, "users", "alice").await.unwrap().locked);
    assert_eq!(login_code(&server, "alice", "Rabbit-Hole-1!").await, None);
}

#[tokio::test]
async fn failures_spread_over_more_than_the_window_do_not_lock() {
    let server = TestServer::start();
    tenant_with_user(&server, "alice", "Rabbit-Hole-1!").await;
    for i in 0..6 {
        server.set_clock_offset(i * 100);
        assert_eq!(login_code(&server, "alice", "wrong").await, Some(ErrorCode::InvalidCredentials), "failure {i}");
    }
    assert_eq!(login_code(&server, "alice", "Rabbit-Hole-1!").await, None);
}

#[tokio::test]
async fn tokens_stop_working_after_password_change_disable_delete_logout_and_expiry() {
    let server = TestServer::start();
    let admin = tenant_with_user(&server, "alice", "Rabbit-Hole-1!").await;

    // Change by the user (old password required): old token dies, new password works.
    let alice = server.login(T, "alice", "Rabbit-Hole-1!").await;
    let bad = SetPasswordRequest { new_password: "Rabbit-Hole-2!".into(), old_password: Some("nope".into()) };
    assert_eq!(alice.set_password(T, "alice", &bad).await.unwrap_err().code(), Some(ErrorCode::InvalidCredentials));
    let missing = SetPasswordRequest { new_password: "Rabbit-Hole-2!".into(), old_password: None };
    // Without the current password: told it is needed (not that it is wrong).
    let err = alice.set_password(T, "alice", &missing).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidRequest), "{err}");
    assert!(err.to_string().contains("needs the current one"), "{err}");
    let good =
        SetPasswordRequest { new_password: "Rabbit-Hole-2!".into(), old_password: Some("Rabbit-Hole-1!".into()) };
    alice.set_password(T, "alice", &good).await.unwrap();
    assert_eq!(alice.whoami().await.unwrap_err().code(), Some(ErrorCode::InvalidToken));
    assert_eq!(login_code(&server, "alice", "Rabbit-Hole-1!").await, Some(ErrorCode::InvalidCredentials));

    // A user cannot reset someone else's password.
    let alice = server.login(T, "alice", "Rabbit-Hole-2!").await;
    let steal = SetPasswordRequest { new_password: "Stolen-Admin-9!".into(), old_password: None };
    assert_eq!(alice.set_password(T, "administrator", &steal).await.unwrap_err().code(), Some(ErrorCode::Forbidden));

    // Reset by an administrator.
    let reset = SetPasswordRequest { new_password: "Rabbit-Hole-3!".into(), old_password: None };
    admin.set_password(T, "alice", &reset).await.unwrap();
    assert_eq!(alice.whoami().await.unwrap_err().code(), Some(ErrorCode::InvalidToken));

    // Disable, then enable.
    let alice = server.login(T, "alice", "Rabbit-Hole-3!").await;
    admin.principal_action(T, "users", "alice", "disable").await.unwrap();
    assert_eq!(alice.whoami().await.unwrap_err().code(), Some(ErrorCode::InvalidToken));
    assert_eq!(login_code(&server, "alice", "Rabbit-Hole-3!").await, Some(ErrorCode::AccountDisabled));
    admin.principal_action(T, "users", "alice", "enable").await.unwrap();

    // Logout.
    let alice = server.login(T, "alice", "Rabbit-Hole-3!").await;
    alice.logout().await.unwrap();
    assert_eq!(alice.whoami().await.unwrap_err().code(), Some(ErrorCode::InvalidToken));

    // Expiry after the session TTL (1 h).
    let alice = server.login(T, "alice", "Rabbit-Hole-3!").await;
    server.set_clock_offset(3601);
    assert_eq!(alice.whoami().await.unwrap_err().code(), Some(ErrorCode::InvalidToken));
    server.set_clock_offset(0);

    // Delete.
    let alice = server.login(T, "alice", "Rabbit-Hole-3!").await;
    admin.delete_principal(T, "users", "alice").await.unwrap();
    assert_eq!(alice.whoami().await.unwrap_err().code(), Some(ErrorCode::InvalidToken));
    assert_eq!(login_code(&server, "alice", "Rabbit-Hole-3!").await, Some(ErrorCode::InvalidCredentials));
}

#[tokio::test]
async fn weak_passwords_are_refused_with_the_rule_that_failed() {
    let server = TestServer::start();
    let admin = tenant_with_user(&server, "alice", "Rabbit-Hole-1!").await;
    for (pw, rule) in [("Sh0rt!", "at least 8"), ("nouppercase1!", "upper-case"), ("Xalice-Secret-1", "user name")] {
        let req = SetPasswordRequest { new_password: pw.into(), old_password: None };
        let err = admin.set_password(T, "alice", &req).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::WeakPassword));
        assert!(err.to_string().contains(rule), "{err}");
    }
    assert_eq!(login_code(&server, "alice", "Rabbit-Hole-1!").await, None, "password unchanged");
}

/// Every audit record `token` may read (`/v1/audit` when `tenant` is
/// `None`), as the server sent it: one JSON object per record.
async fn raw_audit(
    server: &TestServer,
    token: &str,
    tenant: Option<&str>,
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let path = match tenant {
        Some(t) => format!("/v1/tenants/{t}/audit"),
        None => "/v1/audit".into(),
    };
    let resp =
        server.raw().get(format!("{}{path}?after=0&limit=1000", server.url())).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "GET {path}");
    let body: serde_json::Value = resp.json().await.unwrap();
    body.as_array().unwrap().iter().map(|r| r.as_object().unwrap().clone()).collect()
}

#[tokio::test]
async fn authentication_failures_are_audited() {
    // Distinctive passwords (nothing JSON would escape), so a match anywhere is a leak.
    const ALICE_PW: &str = "Vorpal-Blade-Snicker-Snack-4711";
    const WRONG_PW: &str = "Tulgey-Wood-Burbled-Frumious-0815";
    const GHOST_PW: &str = "Mimsy-Borogoves-Outgrabe-Brillig-2323";
    const RESET_PW: &str = "Tumtum-Tree-Uffish-Thought-9042";
    let server = TestServer::start();
    let admin = tenant_with_user(&server, "alice", ALICE_PW).await;
    assert_eq!(login_code(&server, "alice", WRONG_PW).await, Some(ErrorCode::InvalidCredentials));
    assert_eq!(login_code(&server, "ghost", GHOST_PW).await, Some(ErrorCode::InvalidCredentials));
    assert_eq!(login_code(&server, "alice", ALICE_PW).await, None);
    let reset = SetPasswordRequest { new_password: RESET_PW.into(), old_password: None };
    admin.set_password(T, "alice", &reset).await.unwrap();
    let tenant_token = server.client().login(T, "administrator", ADMIN_PW).await.unwrap().token;

    let records = admin.audit(Some(T), 0, 1000).await.unwrap();
    let failures: Vec<_> = records.iter().filter(|r| r.action == "login" && r.outcome == "failure").collect();
    assert_eq!(failures.len(), 2, "{records:#?}");
    assert!(failures.iter().any(|r| r.target == "alice" && r.detail == "wrong password"));
    assert!(failures.iter().any(|r| r.target == "ghost" && r.detail == "unknown user"));

    // No password, right or wrong, in any field of any record of the
    // tenant's or the system's chain, nor anywhere in the server's log.
    let passwords = [ADMIN_PW, ALICE_PW, WRONG_PW, GHOST_PW, RESET_PW];
    let operator_token = server.client().operator_login("operator", &server.operator_password()).await.unwrap().token;
    let mut all = raw_audit(&server, &tenant_token, Some(T)).await;
    assert_eq!(all.len(), records.len());
    all.extend(raw_audit(&server, &operator_token, None).await);
    for record in &all {
        for field in ["actor", "action", "target", "outcome", "detail"] {
            assert!(record.contains_key(field), "{field} missing from {record:?}");
        }
        for (field, value) in record {
            let text = value.as_str().map_or_else(|| value.to_string(), str::to_string);
            for pw in passwords {
                assert!(!text.contains(pw), "password material in audit field {field}: {record:?}");
            }
        }
    }
    let log = server.output();
    assert!(!log.is_empty());
    for pw in passwords {
        assert!(!log.contains(pw), "password material in the server log:\n{log}");
    }
}
