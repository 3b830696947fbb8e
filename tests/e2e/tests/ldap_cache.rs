//! The LDAP front end keeps each tenant's tree between searches. These
//! tests pin down what that must never change: a search right after a
//! write (REST or LDAP) sees it, and a tenant's tree never answers another
//! tenant's caller, even when both have entries of the same name.
#![allow(clippy::unwrap_used)]

use lightwell_proto::{AddMemberRequest, CreateGroupRequest, CreateUserRequest, UpdatePrincipalRequest};
use lightwell_testkit::TestServer;

const ADMIN_PW: &str = "Tenant-Admin-1!";

/// `ldapsearch` as `tenant`'s administrator over LDAPS; the LDIF printed.
fn search(server: &TestServer, tenant: &str, filter: &str, attrs: &[&str]) -> String {
    let base = tenant.split('.').map(|l| format!("dc={l}")).collect::<Vec<_>>().join(",");
    let admin = format!("uid=administrator,cn=Users,{base}");
    let url = server.ldaps_url();
    let mut args =
        vec!["-x", "-LLL", "-o", "ldif-wrap=no", "-H", &url, "-D", &admin, "-w", ADMIN_PW, "-b", &base, filter];
    args.extend_from_slice(attrs);
    let out = server.ldap_tool("ldapsearch", &args);
    assert!(out.status.success(), "ldapsearch {filter}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn user(name: &str, email: &str) -> CreateUserRequest {
    CreateUserRequest {
        name: name.into(),
        password: Some("Secret-Passw0rd!".into()),
        email: Some(email.into()),
        display_name: None,
    }
}

#[tokio::test]
async fn a_search_right_after_a_rest_write_sees_it() {
    let server = TestServer::start();
    let admin = server.create_tenant("corp.example", ADMIN_PW).await;
    // Warm the tree, then change the directory behind it.
    assert!(search(&server, "corp.example", "(uid=carol)", &["mail"]).is_empty());

    admin.create_principal("corp.example", "users", &user("carol", "carol@corp.example")).await.unwrap();
    assert!(search(&server, "corp.example", "(uid=carol)", &["mail"]).contains("mail: carol@corp.example"));

    let patch = UpdatePrincipalRequest { email: Some("c2@corp.example".into()), ..Default::default() };
    admin.update_principal("corp.example", "users", "carol", &patch).await.unwrap();
    let found = search(&server, "corp.example", "(mail=C2@corp.example)", &["mail"]);
    assert!(found.contains("mail: c2@corp.example"), "{found}");
    assert!(search(&server, "corp.example", "(mail=carol@corp.example)", &["1.1"]).is_empty(), "the old value is gone");

    admin
        .create_principal("corp.example", "groups", &CreateGroupRequest { name: "ops".into(), display_name: None })
        .await
        .unwrap();
    admin
        .add_member("corp.example", "ops", &AddMemberRequest { kind: "user".into(), name: "carol".into() })
        .await
        .unwrap();
    let members = search(&server, "corp.example", "(memberOf=cn=ops,cn=Groups,dc=corp,dc=example)", &["1.1"]);
    assert!(members.contains("dn: uid=carol,cn=Users,dc=corp,dc=example"), "{members}");

    admin.delete_principal("corp.example", "users", "carol").await.unwrap();
    assert!(search(&server, "corp.example", "(uid=carol)", &["1.1"]).is_empty());
    let ops = search(&server, "corp.example", "(cn=ops)", &["member"]);
    assert!(!ops.contains("carol"), "{ops}");
}

#[tokio::test]
async fn a_search_right_after_an_ldap_write_sees_it() {
    let server = TestServer::start();
    let admin = server.create_tenant("corp.example", ADMIN_PW).await;
    admin.create_principal("corp.example", "users", &user("carol", "carol@corp.example")).await.unwrap();
    assert!(search(&server, "corp.example", "(uid=carol)", &["mail"]).contains("carol@corp.example"));
    let ldif = server.scratch().join("mail.ldif");
    std::fs::write(
        &ldif,
        "dn: uid=carol,cn=Users,dc=corp,dc=example\nchangetype: modify\nreplace: mail\nmail: new@corp.example\n",
    )
    .unwrap();
    let url = server.ldaps_url();
    let out = server.ldap_tool(
        "ldapmodify",
        &[
            "-x",
            "-H",
            &url,
            "-D",
            "uid=administrator,cn=Users,dc=corp,dc=example",
            "-w",
            ADMIN_PW,
            "-f",
            ldif.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(search(&server, "corp.example", "(uid=carol)", &["mail"]).contains("mail: new@corp.example"));
}

#[tokio::test]
async fn each_tenant_sees_only_its_own_entries_of_the_same_name() {
    let server = TestServer::start();
    let a = server.create_tenant("a.example", ADMIN_PW).await;
    let b = server.create_tenant("b.example", ADMIN_PW).await;
    a.create_principal("a.example", "users", &user("carol", "carol@a.example")).await.unwrap();
    b.create_principal("b.example", "users", &user("carol", "carol@b.example")).await.unwrap();
    // Alternate so each search follows one by the other tenant, trees cached for both.
    for _ in 0..2 {
        for (tenant, own, other) in
            [("a.example", "carol@a.example", "carol@b.example"), ("b.example", "carol@b.example", "carol@a.example")]
        {
            let found = search(&server, tenant, "(uid=carol)", &["mail"]);
            assert!(found.contains(own) && !found.contains(other), "{tenant}: {found}");
            assert!(search(&server, tenant, &format!("(mail={other})"), &["1.1"]).is_empty(), "{tenant}");
            let everything = search(&server, tenant, "(objectClass=*)", &["1.1"]);
            let foreign = if tenant == "a.example" { "dc=b,dc=example" } else { "dc=a,dc=example" };
            assert!(!everything.contains(foreign), "{tenant}: {everything}");
        }
    }
    // A change in one tenant shows there and nowhere else.
    let patch = UpdatePrincipalRequest { email: Some("changed@a.example".into()), ..Default::default() };
    a.update_principal("a.example", "users", "carol", &patch).await.unwrap();
    assert!(search(&server, "a.example", "(uid=carol)", &["mail"]).contains("changed@a.example"));
    let in_b = search(&server, "b.example", "(uid=carol)", &["mail"]);
    assert!(in_b.contains("carol@b.example") && !in_b.contains("changed"), "{in_b}");
}
