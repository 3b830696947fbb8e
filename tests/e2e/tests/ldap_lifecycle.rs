//! An LDAP connection over time: its bind lasts only as long as the
//! credentials behind it (like a REST session), and stopping the server
//! tells connected clients before it exits cleanly.
#![allow(clippy::unwrap_used)]

use ldap3_proto::proto::{LdapFilter, LdapResultCode, LdapSearchScope};
use lightwell_proto::{CreateUserRequest, SetPasswordRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::ldap::{RawLdap, search_request};

const T: &str = "corp.example";
const ADMIN_PW: &str = "Corp-Admin-2026!";
const ALICE_DN: &str = "uid=alice,cn=Users,dc=corp,dc=example";
const ALICE_PW: &str = "Wonderland-42!";

/// A server that accepts simple binds without TLS, so a raw TCP client can bind.
fn plaintext_server() -> (TestServer, tempfile::NamedTempFile) {
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), "ldap_allow_plaintext_bind = true\n").unwrap();
    (TestServer::start_with(&["--config", cfg.path().to_str().unwrap()]), cfg)
}

fn users() -> ldap3_proto::proto::LdapOp {
    search_request(
        "cn=Users,dc=corp,dc=example",
        LdapSearchScope::OneLevel,
        LdapFilter::Present("uid".into()),
        &["1.1"],
    )
}

#[tokio::test]
async fn a_bound_connection_loses_its_rights_when_rest_resets_the_password() {
    let (server, _cfg) = plaintext_server();
    let admin = server.create_tenant(T, ADMIN_PW).await;
    let alice = CreateUserRequest { name: "alice".into(), password: Some(ALICE_PW.into()), ..Default::default() };
    admin.create_principal(T, "users", &alice).await.unwrap();

    let mut conn = RawLdap::connect(server.ldap_addr()).await;
    assert_eq!(conn.simple_bind(ALICE_DN, ALICE_PW).await.code, LdapResultCode::Success);
    assert_eq!(conn.whoami().await, format!("dn:{ALICE_DN}"));
    let (entries, res) = conn.search(users()).await;
    assert_eq!(res.code, LdapResultCode::Success);
    assert_eq!(entries.len(), 2, "administrator and alice");

    let reset = SetPasswordRequest { new_password: "Looking-Glass-43!".into(), old_password: None };
    admin.set_password(T, "alice", &reset).await.unwrap();
    let (entries, res) = conn.search(users()).await;
    assert_eq!(res.code, LdapResultCode::InsufficentAccessRights, "{res:?}");
    assert!(res.message.contains("bind again"), "{}", res.message);
    assert!(entries.is_empty());
    assert_eq!(conn.whoami().await, "", "the connection is anonymous again");
    assert_eq!(conn.simple_bind(ALICE_DN, "Looking-Glass-43!").await.code, LdapResultCode::Success);
    assert_eq!(conn.search(users()).await.1.code, LdapResultCode::Success);
}

#[tokio::test]
async fn stopping_the_server_notifies_ldap_clients_and_a_restart_keeps_the_ports() {
    let (mut server, _cfg) = plaintext_server();
    let (ldaps, ldap) = (server.ldaps_addr(), server.ldap_addr());
    let mut conn = RawLdap::connect(ldap).await;
    let root = search_request("", LdapSearchScope::Base, LdapFilter::Present("objectClass".into()), &[]);
    assert_eq!(conn.search(root.clone()).await.1.code, LdapResultCode::Success);

    // stop() waits for the exit; the notice waits in the client's socket buffer.
    assert!(server.stop(), "lightwelld exits cleanly with an LDAP client connected");
    let notice = conn.expect_disconnect().await;
    assert_eq!(notice, LdapResultCode::Unavailable, "the idle client was told the server is going away");

    server.start_again();
    assert_eq!((server.ldaps_addr(), server.ldap_addr()), (ldaps, ldap));
    let mut again = RawLdap::connect(ldap).await;
    assert_eq!(again.search(root).await.1.code, LdapResultCode::Success);
}

/// Deletes `dn` on `conn`; the result code.
async fn delete(conn: &mut RawLdap, dn: &str) -> LdapResultCode {
    conn.request(ldap3_proto::proto::LdapOp::DelRequest(dn.into()), vec![]).await;
    match conn.recv().await.unwrap().op {
        ldap3_proto::proto::LdapOp::DelResponse(res) => res.code,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_bound_connection_gains_and_loses_rights_as_soon_as_its_groups_change() {
    let (server, _cfg) = plaintext_server();
    let admin = server.create_tenant(T, ADMIN_PW).await;
    for name in ["alice", "bob", "carol"] {
        let pw = if name == "alice" { ALICE_PW } else { "Some-Passw0rd-1!" };
        let u = CreateUserRequest { name: name.into(), password: Some(pw.into()), ..Default::default() };
        admin.create_principal(T, "users", &u).await.unwrap();
    }
    let mut conn = RawLdap::connect(server.ldap_addr()).await;
    assert_eq!(conn.simple_bind(ALICE_DN, ALICE_PW).await.code, LdapResultCode::Success);
    assert_eq!(conn.search(users()).await.1.code, LdapResultCode::Success, "the bind is checked and kept");
    assert_eq!(delete(&mut conn, "uid=bob,cn=Users,dc=corp,dc=example").await, LdapResultCode::InsufficentAccessRights);

    let to_admins = lightwell_proto::AddMemberRequest { kind: "user".into(), name: "alice".into() };
    admin.add_member(T, "Administrators", &to_admins).await.unwrap();
    assert_eq!(delete(&mut conn, "uid=bob,cn=Users,dc=corp,dc=example").await, LdapResultCode::Success);

    admin.remove_member(T, "Administrators", "user", "alice").await.unwrap();
    assert_eq!(
        delete(&mut conn, "uid=carol,cn=Users,dc=corp,dc=example").await,
        LdapResultCode::InsufficentAccessRights
    );
}
