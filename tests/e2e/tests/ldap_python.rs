//! The Python `ldap3` client (installed by scripts/test.sh) against the real
//! server: schema discovery, writes, paged search, StartTLS and Password
//! Modify, checked against the REST API.
#![allow(clippy::unwrap_used)]

use lightwell_proto::{CreateUserRequest, ErrorCode};
use lightwell_testkit::TestServer;
use serde_json::{Value, json};

const T: &str = "corp.example";
const ADMIN_PW: &str = "Corp-Admin-2026!";
const ALICE_PW: &str = "Wonderland-42!";
const ALICE_NEW_PW: &str = "Looking-Glass-43!";

#[tokio::test]
async fn the_python_ldap3_client_reads_writes_pages_and_changes_passwords() {
    let server = TestServer::start();
    let admin = server.create_tenant(T, ADMIN_PW).await;
    let alice = CreateUserRequest { name: "alice".into(), password: Some(ALICE_PW.into()), ..Default::default() };
    admin.create_principal(T, "users", &alice).await.unwrap();
    let rest_alice = server.login(T, "alice", ALICE_PW).await;

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ldap/ldap3_client.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .env("LW_CA", server.ca_file())
        .env("LW_LDAPS", server.ldaps_addr().to_string())
        .env("LW_LDAP", server.ldap_addr().to_string())
        .env("LW_ADMIN_PW", ADMIN_PW)
        .env("LW_ALICE_PW", ALICE_PW)
        .env("LW_ALICE_NEW_PW", ALICE_NEW_PW)
        .output()
        .expect("python3 with ldap3 (./scripts/test.sh installs it)");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(got["whoami"], "dn:uid=administrator,cn=Users,dc=corp,dc=example");
    assert_eq!(got["naming_contexts"], json!(["dc=corp,dc=example"]));
    assert_eq!(got["schema_has_inetorgperson"], true, "ldap3 read the subschema entry");
    for step in [
        "add_group",
        "modify_group",
        "start_tls",
        "alice_bind",
        "modify_password",
        "rebind_new_password",
        "delete_group",
    ] {
        assert_eq!(got[step], true, "{step}: {got}");
    }
    assert_eq!(
        got["members"],
        json!(["uid=administrator,cn=Users,dc=corp,dc=example", "uid=alice,cn=Users,dc=corp,dc=example"])
    );
    assert_eq!(got["display_name"], "Py Team");
    assert_eq!(got["pyteam_users"], json!(["administrator", "alice"]));
    assert_eq!(got["alice_whoami"], "dn:uid=alice,cn=Users,dc=corp,dc=example");
    let (mut paged, mut all) =
        (got["paged_dns"].as_array().unwrap().clone(), got["all_dns"].as_array().unwrap().clone());
    assert!(paged.len() > 6, "{paged:?}");
    paged.sort_by_key(|v| v.to_string());
    all.sort_by_key(|v| v.to_string());
    assert_eq!(paged, all, "paging returns every entry once");

    // The LDAP password change is the REST one: old sessions end, the new password logs in.
    assert_eq!(rest_alice.whoami().await.unwrap_err().code(), Some(ErrorCode::InvalidToken));
    server.login(T, "alice", ALICE_NEW_PW).await;
    assert_eq!(
        admin.principal(T, "groups", "pyteam").await.unwrap_err().code(),
        Some(ErrorCode::PrincipalNotFound),
        "deleted over LDAP"
    );
    let audit = admin.audit(Some(T), 0, 1000).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "group.create" && a.target == "pyteam"), "{audit:?}");
}
