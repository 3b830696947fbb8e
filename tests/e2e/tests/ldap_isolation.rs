//! Tenant isolation over LDAP: a principal of tenant A cannot bind into,
//! search or modify tenant B, and anonymous callers read no principal.
#![allow(clippy::unwrap_used)]

use std::process::Output;

use lightwell_proto::CreateUserRequest;
use lightwell_testkit::TestServer;

const ADMIN_PW: &str = "Tenant-Admin-1!";
const A_ADMIN: &str = "uid=administrator,cn=Users,dc=a,dc=example";

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_principal_of_one_tenant_cannot_bind_into_search_or_modify_another() {
    let server = TestServer::start();
    server.create_tenant("a.example", ADMIN_PW).await;
    let b_admin = server.create_tenant("b.example", ADMIN_PW).await;
    let bob = CreateUserRequest { name: "bob".into(), password: Some("Builder-Pass-77!".into()), ..Default::default() };
    b_admin.create_principal("b.example", "users", &bob).await.unwrap();
    let before = b_admin.list_principals("b.example", "users").await.unwrap();
    let url = server.ldaps_url();
    let as_a = |program: &str, extra: &[&str]| {
        let mut args = vec!["-x", "-H", url.as_str(), "-D", A_ADMIN, "-w", ADMIN_PW];
        args.extend_from_slice(extra);
        server.ldap_tool(program, &args)
    };

    // A's administrator password does not bind as B's administrator (same name, same password text).
    let other = server.ldap_tool(
        "ldapwhoami",
        &["-x", "-H", &url, "-D", "uid=bob,cn=Users,dc=a,dc=example", "-w", "Builder-Pass-77!"],
    );
    assert_eq!(code(&other), 49, "bob exists only in b.example");

    // B's tree does not exist for A, not even its base.
    for base in ["dc=b,dc=example", "cn=Users,dc=b,dc=example", "uid=bob,cn=Users,dc=b,dc=example"] {
        let out = as_a("ldapsearch", &["-LLL", "-b", base, "(objectClass=*)"]);
        assert_eq!(code(&out), 32, "{base}: noSuchObject");
        assert!(!stdout(&out).contains("dn:"), "{base}");
    }
    let everything = as_a("ldapsearch", &["-LLL", "-b", "", "-s", "sub", "(objectClass=*)", "1.1"]);
    assert_eq!(code(&everything), 0);
    let seen = stdout(&everything);
    assert!(seen.contains("dc=a,dc=example") && !seen.contains("dc=b"), "{seen}");

    // Writes into B fail the same way and change nothing.
    let dir = server.scratch();
    let ldif = dir.join("into-b.ldif");
    std::fs::write(
        &ldif,
        "dn: uid=bob,cn=Users,dc=b,dc=example\nchangetype: modify\nreplace: mail\nmail: mallory@a.example\n\n\
         dn: cn=Administrators,cn=Groups,dc=b,dc=example\nchangetype: modify\nadd: member\n\
         member: uid=administrator,cn=Users,dc=a,dc=example\n",
    )
    .unwrap();
    assert_eq!(code(&as_a("ldapmodify", &["-c", "-f", ldif.to_str().unwrap()])), 32);
    assert_eq!(code(&as_a("ldapdelete", &["uid=bob,cn=Users,dc=b,dc=example"])), 32);
    let add = dir.join("add-b.ldif");
    std::fs::write(&add, "dn: uid=mallory,cn=Users,dc=b,dc=example\nobjectClass: inetOrgPerson\nuid: mallory\n")
        .unwrap();
    assert_eq!(code(&as_a("ldapadd", &["-f", add.to_str().unwrap()])), 32);
    let reset = as_a("ldappasswd", &["-s", "Owned-By-A-123!", "uid=bob,cn=Users,dc=b,dc=example"]);
    assert_ne!(code(&reset), 0);
    assert!(stdout(&reset).contains("No such object"), "{}", stdout(&reset));

    assert_eq!(b_admin.list_principals("b.example", "users").await.unwrap(), before);
    let admins = b_admin.principal("b.example", "groups", "Administrators").await.unwrap();
    assert_eq!(admins.members.map(|m| m.len()), Some(1));
    server.client().login("b.example", "bob", "Builder-Pass-77!").await.unwrap();
}

#[tokio::test]
async fn anonymous_callers_read_the_root_dse_and_nothing_else() {
    let server = TestServer::start();
    server.create_tenant("a.example", ADMIN_PW).await;
    let url = server.ldaps_url();
    for (base, scope) in
        [("dc=a,dc=example", "sub"), ("uid=administrator,cn=Users,dc=a,dc=example", "base"), ("cn=Subschema", "base")]
    {
        let out =
            server.ldap_tool("ldapsearch", &["-LLL", "-x", "-H", &url, "-b", base, "-s", scope, "(objectClass=*)"]);
        assert_eq!(code(&out), 50, "{base}: insufficientAccessRights");
        assert!(!stdout(&out).contains("dn:"));
    }
    let out = server.ldap_tool("ldapsearch", &["-LLL", "-x", "-H", &url, "-b", "", "-s", "sub", "(objectClass=*)"]);
    assert_eq!(code(&out), 0);
    assert!(!stdout(&out).contains("dn:"), "an anonymous subtree search from the root finds nothing: {}", stdout(&out));
}

/// The same over SASL EXTERNAL with A's administrator's own certificate,
/// and with compare: B's entries do not exist for A.
#[tokio::test]
async fn a_certificate_of_one_tenant_reads_compares_and_changes_nothing_of_another() {
    let server = TestServer::start();
    let a_admin = server.create_tenant("a.example", ADMIN_PW).await;
    let b_admin = server.create_tenant("b.example", "Tenant-Admin-2!").await;
    let bob = CreateUserRequest {
        name: "bob".into(),
        password: Some("Builder-Pass-77!".into()),
        email: Some("bob@b.example".into()),
        ..Default::default()
    };
    b_admin.create_principal("b.example", "users", &bob).await.unwrap();
    let before = b_admin.list_principals("b.example", "users").await.unwrap();
    let files = lightwell_testkit::pki::Files::new();
    let (key, csr) = files.csr("a-admin", "ec:P-256", "/CN=administrator", &[]);
    let req = lightwell_proto::IssueCertificateRequest { csr, ..Default::default() };
    let cert = files.write("a-admin.pem", a_admin.issue_certificate("a.example", &req).await.unwrap().chain_pem);
    let external = |program: &str, extra: &[&str]| {
        let mut cmd = std::process::Command::new(program);
        cmd.args(["-Y", "EXTERNAL", "-H", &server.ldaps_url()])
            .args(extra)
            .env("LDAPTLS_CACERT", server.ca_file())
            .env("LDAPTLS_CERT", &cert)
            .env("LDAPTLS_KEY", &key)
            .env("LDAPCONF", "/dev/null");
        cmd.output().unwrap()
    };
    // The certificate binds as A's administrator...
    let me = external("ldapwhoami", &[]);
    assert_eq!(code(&me), 0, "{}", String::from_utf8_lossy(&me.stderr));
    assert_eq!(stdout(&me).trim(), format!("dn:{A_ADMIN}"));
    // ...for whom B's entries do not exist: search, compare, modify, delete.
    const BOB: &str = "uid=bob,cn=Users,dc=b,dc=example";
    let search = external("ldapsearch", &["-LLL", "-b", BOB, "-s", "base", "(objectClass=*)"]);
    assert_eq!(code(&search), 32, "noSuchObject");
    assert!(!stdout(&search).contains("dn:"));
    for assertion in ["mail:bob@b.example", "mail:nobody@b.example", "uid:bob"] {
        assert_eq!(code(&external("ldapcompare", &[BOB, assertion])), 32, "compare {assertion} learns nothing");
    }
    let ldif = server.scratch().join("ext-into-b.ldif");
    std::fs::write(&ldif, format!("dn: {BOB}\nchangetype: modify\nreplace: mail\nmail: mallory@a.example\n")).unwrap();
    assert_eq!(code(&external("ldapmodify", &["-f", ldif.to_str().unwrap()])), 32);
    assert_eq!(code(&external("ldapdelete", &[BOB])), 32);
    assert_eq!(b_admin.list_principals("b.example", "users").await.unwrap(), before, "nothing of B changed");
}
