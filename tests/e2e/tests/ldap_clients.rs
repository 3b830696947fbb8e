//! The LDAP front end driven by OpenLDAP's command-line clients (Debian's
//! ldap-utils) against the real server: binds, searches, paging, password
//! changes and administrators' writes, all sharing data, lockout, sessions
//! and audit with the REST API.
#![allow(clippy::unwrap_used)]

use std::process::Output;

use lightwell_client::Client;
use lightwell_proto::{CreateUserRequest, ErrorCode};
use lightwell_testkit::{TestServer, pki};
use serde_json::json;

const T: &str = "corp.example";
const BASE: &str = "dc=corp,dc=example";
const ADMIN_PW: &str = "Corp-Admin-2026!";
const ALICE_PW: &str = "Wonderland-42!";
const ALICE_DN: &str = "uid=alice,cn=Users,dc=corp,dc=example";
const ADMIN_DN: &str = "uid=administrator,cn=Users,dc=corp,dc=example";

/// corp.example with alice (in engineers, nested in CAAdmins), a service and a machine.
async fn corp(server: &TestServer) -> Client {
    let admin = server.create_tenant(T, ADMIN_PW).await;
    let alice = CreateUserRequest {
        name: "alice".into(),
        password: Some(ALICE_PW.into()),
        email: Some("alice@corp.example".into()),
        display_name: Some("Alice Liddell".into()),
    };
    admin.create_principal(T, "users", &alice).await.unwrap();
    admin.create_principal(T, "groups", &json!({"name": "engineers"})).await.unwrap();
    admin
        .add_member(T, "engineers", &serde_json::from_value(json!({"kind": "user", "name": "alice"})).unwrap())
        .await
        .unwrap();
    admin
        .add_member(T, "CAAdmins", &serde_json::from_value(json!({"kind": "group", "name": "engineers"})).unwrap())
        .await
        .unwrap();
    admin
        .create_principal(T, "services", &json!({"name": "payments", "hostnames": ["payments.corp.example"]}))
        .await
        .unwrap();
    admin.create_principal(T, "machines", &json!({"name": "node1.corp.example", "ips": ["10.0.0.7"]})).await.unwrap();
    admin
}

fn text(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs an ldap-utils program and asserts it succeeded; returns stdout.
fn ok(server: &TestServer, program: &str, args: &[&str]) -> String {
    let (code, stdout, stderr) = text(&server.ldap_tool(program, args));
    assert_eq!(code, 0, "{program} {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}");
    stdout
}

/// `ldapsearch` over LDAPS bound as `dn`, LDIF without line wrapping.
fn search(server: &TestServer, dn: &str, pw: &str, args: &[&str]) -> Output {
    let url = server.ldaps_url();
    let mut all = vec!["-LLL", "-o", "ldif-wrap=no", "-x", "-H", &url, "-D", dn, "-w", pw];
    all.extend_from_slice(args);
    server.ldap_tool("ldapsearch", &all)
}

/// The DNs in LDIF output.
fn dns(ldif: &str) -> Vec<String> {
    ldif.lines().filter_map(|l| l.strip_prefix("dn: ")).map(str::to_string).collect()
}

fn search_dns(server: &TestServer, args: &[&str]) -> Vec<String> {
    let out = search(server, ALICE_DN, ALICE_PW, args);
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "ldapsearch {args:?}: {stderr}");
    dns(&stdout)
}

#[tokio::test]
async fn the_root_dse_lists_what_the_server_supports_and_only_the_callers_tenant() {
    let server = TestServer::start();
    corp(&server).await;
    server.create_tenant("other.example", ADMIN_PW).await;
    let url = server.ldaps_url();
    let anon = ok(&server, "ldapsearch", &["-LLL", "-x", "-H", &url, "-b", "", "-s", "base", "+"]);
    for want in [
        "supportedLDAPVersion: 3",
        "supportedExtension: 1.3.6.1.4.1.1466.20037",
        "supportedExtension: 1.3.6.1.4.1.4203.1.11.3",
        "supportedExtension: 1.3.6.1.4.1.4203.1.11.1",
        "supportedControl: 1.2.840.113556.1.4.319",
        "subschemaSubentry: cn=Subschema",
    ] {
        assert!(anon.contains(want), "{want} missing from\n{anon}");
    }
    assert!(!anon.contains("namingContexts"), "anonymous callers see no tenant:\n{anon}");
    let alice =
        String::from_utf8(search(&server, ALICE_DN, ALICE_PW, &["-b", "", "-s", "base", "namingContexts"]).stdout)
            .unwrap();
    assert!(alice.contains("namingContexts: dc=corp,dc=example"), "{alice}");
    assert!(!alice.contains("other"), "{alice}");
}

#[tokio::test]
async fn simple_binds_work_with_a_dn_or_user_at_domain_over_ldaps_and_starttls() {
    let server = TestServer::start();
    corp(&server).await;
    let (ldaps, ldap) = (server.ldaps_url(), server.ldap_url());
    for (url, starttls, name) in
        [(&ldaps, false, ALICE_DN), (&ldaps, false, "alice@corp.example"), (&ldap, true, "ALICE@Corp.Example")]
    {
        let mut args = vec!["-x", "-H", url.as_str(), "-D", name, "-w", ALICE_PW];
        if starttls {
            args.push("-ZZ");
        }
        let out = ok(&server, "ldapwhoami", &args);
        assert_eq!(out.trim(), format!("dn:{ALICE_DN}"), "{name} over {url}");
    }
    let (code, _, stderr) = text(&server.ldap_tool("ldapwhoami", &["-x", "-H", &ldaps, "-D", ALICE_DN, "-w", "wrong"]));
    assert_eq!(code, 49, "{stderr}");
    let anon = ok(&server, "ldapwhoami", &["-x", "-H", &ldaps]);
    assert_eq!(anon.trim(), "anonymous");
}

#[tokio::test]
async fn a_simple_bind_without_tls_is_refused_unless_the_configuration_allows_it() {
    let server = TestServer::start();
    corp(&server).await;
    let url = server.ldap_url();
    let (code, _, stderr) = text(&server.ldap_tool("ldapwhoami", &["-x", "-H", &url, "-D", ALICE_DN, "-w", ALICE_PW]));
    assert_eq!(code, 13, "confidentialityRequired: {stderr}");
    assert!(stderr.contains("TLS"), "{stderr}");

    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), "ldap_allow_plaintext_bind = true\n").unwrap();
    let relaxed = TestServer::start_with(&["--config", cfg.path().to_str().unwrap()]);
    corp(&relaxed).await;
    let out = ok(&relaxed, "ldapwhoami", &["-x", "-H", &relaxed.ldap_url(), "-D", ALICE_DN, "-w", ALICE_PW]);
    assert_eq!(out.trim(), format!("dn:{ALICE_DN}"));
}

/// Configuration layers against the real binary: the file allows plaintext
/// binds and names a public PKI URL, the environment replaces the URL (and
/// allows plaintext binds too); then flags replace the URL again and turn
/// plaintext binds off over both the file's and the environment's `true`.
#[tokio::test]
async fn a_flag_turns_off_what_the_file_and_the_environment_turned_on() {
    let cfg = tempfile::NamedTempFile::new().unwrap();
    let file = "ldap_allow_plaintext_bind = true\npublic_pki_url = \"http://file.example:8080\"\n";
    std::fs::write(cfg.path(), file).unwrap();
    let config = ["--config", cfg.path().to_str().unwrap()];
    let env =
        [("LIGHTWELL_PUBLIC_PKI_URL", "http://env.example:8080"), ("LIGHTWELL_LDAP_ALLOW_PLAINTEXT_BIND", "true")];
    let bind = |server: &TestServer| {
        text(&server.ldap_tool("ldapwhoami", &["-x", "-H", &server.ldap_url(), "-D", ALICE_DN, "-w", ALICE_PW]))
    };

    let on = TestServer::start_with_env(&env, &config);
    corp(&on).await;
    let printed =
        |server: &TestServer, url: &str| server.output().lines().any(|l| l == format!("public pki url: {url}"));
    assert!(printed(&on, "http://env.example:8080"), "the environment over the file: {}", on.output());
    let (code, out, stderr) = bind(&on);
    assert_eq!((code, out.trim()), (0, format!("dn:{ALICE_DN}").as_str()), "plaintext binds allowed: {stderr}");
    drop(on);

    let flags = [&config[..], &["--ldap-allow-plaintext-bind=false", "--public-pki-url", "http://flag.example:8080"]];
    let off = TestServer::start_with_env(&env, &flags.concat());
    corp(&off).await;
    assert!(printed(&off, "http://flag.example:8080"), "a flag over the environment: {}", off.output());
    let (code, _, stderr) = bind(&off);
    assert_eq!(
        code, 13,
        "confidentialityRequired: the flag's false beats the file's and the environment's true: {stderr}"
    );
    assert!(stderr.contains("TLS"), "{stderr}");
}

#[tokio::test]
async fn searches_apply_filters_scopes_and_attribute_selection() {
    let server = TestServer::start();
    corp(&server).await;
    let s = |args: &[&str]| search_dns(&server, args);
    let nested = "(&(objectClass=inetOrgPerson)(memberOf=cn=CAAdmins,cn=Groups,dc=corp,dc=example))";
    assert_eq!(s(&["-b", BASE, nested]), [ALICE_DN], "memberOf resolves nesting");
    assert_eq!(s(&["-b", BASE, "(|(uid=ALICE)(cn=payments))"]).len(), 2);
    assert_eq!(s(&["-b", BASE, "(mail=*@CORP.example)"]), [ALICE_DN]);
    assert_eq!(s(&["-b", BASE, "(cn~=Engineers)"]), ["cn=engineers,cn=Groups,dc=corp,dc=example"]);
    assert_eq!(s(&["-b", BASE, "(&(ipHostNumber=10.0.0.7)(dNSHostName=node1.corp.example))"]).len(), 1);
    assert_eq!(s(&["-b", "cn=Groups,dc=corp,dc=example", "-s", "one", "(!(objectClass=groupOfNames))"]).len(), 0);
    assert!(s(&["-b", BASE, "(createTimestamp>=20000101000000Z)"]).len() >= 10);
    assert_eq!(s(&["-b", BASE, "(createTimestamp<=20000101000000Z)"]).len(), 0);
    // Scopes.
    assert_eq!(s(&["-b", ALICE_DN, "-s", "base"]), [ALICE_DN]);
    assert_eq!(
        s(&["-b", BASE, "-s", "one"]),
        [
            "cn=Users,dc=corp,dc=example",
            "cn=Groups,dc=corp,dc=example",
            "ou=Computers,dc=corp,dc=example",
            "cn=Services,dc=corp,dc=example",
            "cn=Configuration,dc=corp,dc=example"
        ]
    );
    let all = s(&["-b", BASE, "-s", "sub"]);
    assert!(all.contains(&BASE.to_string()) && all.contains(&ALICE_DN.to_string()), "{all:?}");
    let (code, _, _) = text(&search(&server, ALICE_DN, ALICE_PW, &["-b", "uid=nobody,cn=Users,dc=corp,dc=example"]));
    assert_eq!(code, 32, "noSuchObject");

    // Attribute selection.
    let get = |attrs: &[&str]| {
        let mut args = vec!["-b", ALICE_DN, "-s", "base"];
        args.extend_from_slice(attrs);
        String::from_utf8(search(&server, ALICE_DN, ALICE_PW, &args).stdout).unwrap()
    };
    let user = get(&[]);
    assert!(user.contains("mail: alice@corp.example") && user.contains("displayName: Alice Liddell"), "{user}");
    assert!(user.contains("memberOf: cn=CAAdmins,cn=Groups,dc=corp,dc=example"), "{user}");
    assert!(!user.contains("entryUUID") && !user.contains("userPassword"), "{user}");
    let op = get(&["+"]);
    assert!(op.contains("entryUUID: ") && op.contains("createTimestamp: ") && !op.contains("mail:"), "{op}");
    let both = get(&["*", "+"]);
    assert!(both.contains("modifyTimestamp: ") && both.contains("uid: alice"), "{both}");
    assert_eq!(get(&["1.1"]).trim(), format!("dn: {ALICE_DN}"));
    assert_eq!(get(&["MAIL"]).trim(), format!("dn: {ALICE_DN}\nmail: alice@corp.example"));
    let types_only = get(&["-A", "mail"]);
    assert!(types_only.contains("mail:") && !types_only.contains("alice@corp.example"), "{types_only}");
}

#[tokio::test]
async fn paged_searches_return_every_entry_exactly_once_and_size_limits_hold() {
    let server = TestServer::start();
    corp(&server).await;
    let all = search_dns(&server, &["-b", BASE, "(objectClass=*)", "1.1"]);
    let out = search(&server, ALICE_DN, ALICE_PW, &["-b", BASE, "-E", "pr=2/noprompt", "(objectClass=*)", "1.1"]);
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("pagedresults"), "{stdout}");
    let mut paged = dns(&stdout);
    assert_eq!(paged.len(), all.len());
    paged.sort();
    paged.dedup();
    assert_eq!(paged.len(), all.len(), "no entry twice");

    let (code, stdout, _) =
        text(&search(&server, ALICE_DN, ALICE_PW, &["-b", BASE, "-z", "2", "(objectClass=*)", "1.1"]));
    assert_eq!(code, 4, "sizeLimitExceeded");
    assert_eq!(dns(&stdout).len(), 2);
}

#[tokio::test]
async fn failed_binds_count_toward_the_same_lockout_and_address_throttle_as_rest_logins() {
    let server = TestServer::start();
    corp(&server).await;
    let url = server.ldaps_url();
    // ldapwhoami binds from 127.0.0.1.
    let bind = |pw: &str| text(&server.ldap_tool("ldapwhoami", &["-x", "-H", &url, "-D", ALICE_DN, "-w", pw]));
    for i in 0..3 {
        let (code, _, stderr) = bind("wrong");
        assert_eq!(code, 49, "failure {i}: {stderr}");
        assert!(!stderr.contains("locked"), "{stderr}");
    }
    // The address had its three failures: busy, unexamined, whatever the password.
    let (code, _, stderr) = bind(ALICE_PW);
    assert_eq!(code, 51, "{stderr}");
    assert!(stderr.contains("too many failed logins"), "{stderr}");
    // Two more failures from another address, over REST, lock the account.
    for _ in 0..2 {
        assert_eq!(server.login_from("127.0.0.2", T, "alice", "wrong").await.code(), Some("invalid_credentials"));
    }
    // Past the address's window, inside the lock: the right password gets a
    // plain invalidCredentials, with nothing saying "locked".
    server.set_clock_offset(181);
    let (code, _, stderr) = bind(ALICE_PW);
    assert_eq!(code, 49, "{stderr}");
    assert!(!stderr.contains("locked"), "a lock is not told to the caller: {stderr}");
    let rest = server.login_from("127.0.0.3", T, "alice", ALICE_PW).await;
    assert_eq!(rest.code(), Some("invalid_credentials"), "REST sees the lockout from LDAP binds the same way");
    let admin = server.login(T, "administrator", ADMIN_PW).await;
    assert!(admin.principal(T, "users", "alice").await.unwrap().locked, "an administrator sees the lock");
    let audit = admin.audit(Some(T), 0, 1000).await.unwrap();
    let failed: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "login" && a.outcome == "failure" && a.target == "alice")
        .map(|a| a.detail.as_str())
        .collect();
    // Three wrong binds, two wrong REST logins, the right password refused twice while locked; the busy bind was never examined.
    assert_eq!(
        failed,
        [
            "wrong password",
            "wrong password",
            "wrong password",
            "wrong password",
            "wrong password; account locked",
            "account locked",
            "account locked"
        ],
        "every examined bind is audited like a login"
    );
    server.set_clock_offset(330);
    ok(&server, "ldapwhoami", &["-x", "-H", &url, "-D", ALICE_DN, "-w", ALICE_PW]);
}

#[tokio::test]
async fn ldappasswd_changes_passwords_under_the_policy_and_ends_rest_sessions() {
    let server = TestServer::start();
    let admin = corp(&server).await;
    let url = server.ldaps_url();
    let rest_alice = server.login(T, "alice", ALICE_PW).await;
    rest_alice.whoami().await.unwrap();

    let passwd = |bind_dn: &str, bind_pw: &str, extra: &[&str]| {
        let mut args = vec!["-x", "-H", url.as_str(), "-D", bind_dn, "-w", bind_pw];
        args.extend_from_slice(extra);
        text(&server.ldap_tool("ldappasswd", &args))
    };
    // ldappasswd prints the result on stdout.
    let (code, stdout, _) = passwd(ALICE_DN, ALICE_PW, &["-s", "Looking-Glass-43!"]);
    assert_ne!(code, 0, "a self-change without the old password is refused");
    // ...with the command that works, not "wrong password".
    assert!(stdout.contains("unwilling to perform (53)") && stdout.contains("ldappasswd -a OLD"), "{stdout}");
    let (code, stdout, _) = passwd(ALICE_DN, ALICE_PW, &["-a", ALICE_PW, "-s", "short"]);
    assert_ne!(code, 0);
    assert!(stdout.contains("Constraint violation (19)"), "the tenant's policy applies: {stdout}");
    rest_alice.whoami().await.unwrap();

    let (code, _, stderr) = passwd(ALICE_DN, ALICE_PW, &["-a", ALICE_PW, "-s", "Looking-Glass-43!"]);
    assert_eq!(code, 0, "{stderr}");
    let err = rest_alice.whoami().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidToken), "the LDAP change ended the REST session");
    ok(&server, "ldapwhoami", &["-x", "-H", &url, "-D", ALICE_DN, "-w", "Looking-Glass-43!"]);
    server.login(T, "alice", "Looking-Glass-43!").await;

    // An administrator resets without the old password.
    let (code, _, stderr) = passwd(ADMIN_DN, ADMIN_PW, &["-s", "Through-Mirror-44!", ALICE_DN]);
    assert_eq!(code, 0, "{stderr}");
    server.login(T, "alice", "Through-Mirror-44!").await;
    let audit = admin.audit(Some(T), 0, 1000).await.unwrap();
    let has = |actor: &str, action: &str| {
        audit.iter().any(|a| a.actor == actor && a.action == action && a.outcome == "success")
    };
    assert!(has("user:alice", "user.password_change"), "{audit:?}");
    assert!(has("user:administrator", "user.password_reset"), "{audit:?}");
}

#[tokio::test]
async fn administrators_write_users_groups_and_membership_through_ldap() {
    let server = TestServer::start();
    let admin = corp(&server).await;
    let url = server.ldaps_url();
    let dir = server.scratch();
    let tool = |program: &str, ldif: &str| {
        let file = dir.join(format!("{program}.ldif"));
        std::fs::write(&file, ldif).unwrap();
        let f = file.to_str().unwrap().to_string();
        text(&server.ldap_tool(program, &["-x", "-H", &url, "-D", ADMIN_DN, "-w", ADMIN_PW, "-f", &f]))
    };
    let (code, _, stderr) = tool(
        "ldapadd",
        "dn: uid=carol,cn=Users,dc=corp,dc=example\nobjectClass: inetOrgPerson\nuid: carol\ncn: carol\nsn: Jones\n\
         mail: carol@corp.example\ndisplayName: Carol Jones\nuserPassword: Queen-Of-Hearts-5!\n\n\
         dn: cn=ops,cn=Groups,dc=corp,dc=example\nobjectClass: groupOfNames\ncn: ops\n\
         member: uid=carol,cn=Users,dc=corp,dc=example\n",
    );
    assert_eq!(code, 0, "{stderr}");
    let carol = admin.principal(T, "users", "carol").await.unwrap();
    assert_eq!(carol.email.as_deref(), Some("carol@corp.example"));
    assert!(carol.member_of.contains(&"ops".to_string()) && carol.member_of.contains(&"Users".to_string()));
    server.login(T, "carol", "Queen-Of-Hearts-5!").await;

    let (code, _, stderr) = tool(
        "ldapmodify",
        "dn: cn=ops,cn=Groups,dc=corp,dc=example\nchangetype: modify\nadd: member\n\
         member: cn=engineers,cn=Groups,dc=corp,dc=example\n-\ndelete: member\n\
         member: uid=carol,cn=Users,dc=corp,dc=example\n-\nreplace: displayName\ndisplayName: Operations\n\n\
         dn: uid=carol,cn=Users,dc=corp,dc=example\nchangetype: modify\nreplace: mail\nmail: cj@corp.example\n",
    );
    assert_eq!(code, 0, "{stderr}");
    let ops = admin.principal(T, "groups", "ops").await.unwrap();
    assert_eq!(ops.display_name.as_deref(), Some("Operations"));
    assert_eq!(serde_json::to_value(&ops.members).unwrap(), json!([{"kind": "group", "name": "engineers"}]));
    assert_eq!(admin.principal(T, "users", "carol").await.unwrap().email.as_deref(), Some("cj@corp.example"));
    let alice =
        search_dns(&server, &["-b", BASE, "(&(objectClass=person)(memberOf=cn=ops,cn=Groups,dc=corp,dc=example))"]);
    assert_eq!(alice, [ALICE_DN], "alice is in ops through engineers");

    // Malformed requests change nothing.
    let (code, _, _) =
        tool("ldapadd", "dn: uid=dan,cn=Users,dc=corp,dc=example\nobjectClass: inetOrgPerson\nfavouriteColour: blue\n");
    assert_eq!(code, 17, "undefinedAttributeType");
    let (code, _, _) = tool(
        "ldapadd",
        "dn: cn=ghosts,cn=Groups,dc=corp,dc=example\nobjectClass: groupOfNames\ncn: ghosts\n\
         member: uid=nobody,cn=Users,dc=corp,dc=example\n",
    );
    assert_eq!(code, 19, "constraintViolation for a member that does not exist");
    let (code, _, _) = tool(
        "ldapmodify",
        "dn: cn=ops,cn=Groups,dc=corp,dc=example\nchangetype: modify\nreplace: displayName\ndisplayName: Changed\n-\n\
         add: member\nmember: uid=nobody,cn=Users,dc=corp,dc=example\n",
    );
    assert_eq!(code, 19);
    assert_eq!(admin.principal(T, "users", "dan").await.unwrap_err().code(), Some(ErrorCode::PrincipalNotFound));
    assert_eq!(admin.principal(T, "groups", "ghosts").await.unwrap_err().code(), Some(ErrorCode::PrincipalNotFound));
    assert_eq!(admin.principal(T, "groups", "ops").await.unwrap().display_name.as_deref(), Some("Operations"));
    // A modify whose last part fails only when applied (a member that would make a cycle:
    // ops contains engineers) changes nothing at all: its parts are one transaction.
    let before = admin.principal(T, "groups", "engineers").await.unwrap();
    let (code, _, _) = tool(
        "ldapmodify",
        "dn: cn=engineers,cn=Groups,dc=corp,dc=example\nchangetype: modify\nreplace: displayName\ndisplayName: Changed\n-\n\
         add: member\nmember: cn=ops,cn=Groups,dc=corp,dc=example\n",
    );
    assert_ne!(code, 0, "the cycle is refused");
    let after = admin.principal(T, "groups", "engineers").await.unwrap();
    assert_eq!((after.display_name, after.members), (before.display_name, before.members), "nothing applied");

    for dn in ["cn=ops,cn=Groups,dc=corp,dc=example", "uid=carol,cn=Users,dc=corp,dc=example"] {
        let (code, _, stderr) =
            text(&server.ldap_tool("ldapdelete", &["-x", "-H", &url, "-D", ADMIN_DN, "-w", ADMIN_PW, dn]));
        assert_eq!(code, 0, "{dn}: {stderr}");
    }
    assert_eq!(admin.principal(T, "users", "carol").await.unwrap_err().code(), Some(ErrorCode::PrincipalNotFound));
    let (code, _, _) = text(&server.ldap_tool(
        "ldapdelete",
        &["-x", "-H", &url, "-D", ADMIN_DN, "-w", ADMIN_PW, "cn=Administrators,cn=Groups,dc=corp,dc=example"],
    ));
    assert_eq!(code, 53, "built-in groups are protected");

    let audit = admin.audit(Some(T), 0, 1000).await.unwrap();
    for action in [
        "user.create",
        "group.create",
        "group.add_member",
        "group.remove_member",
        "principal.update",
        "principal.delete",
    ] {
        assert!(
            audit.iter().any(|a| a.actor == "user:administrator" && a.action == action),
            "{action} audited: {audit:?}"
        );
    }
    admin.audit_verify(Some(T)).await.unwrap();
}

#[tokio::test]
async fn rest_objects_appear_in_ldap_and_non_administrators_cannot_write() {
    let server = TestServer::start();
    let admin = corp(&server).await;
    admin
        .create_principal(
            T,
            "users",
            &json!({"name": "dave", "email": "dave@corp.example", "password": "Rest-Made-User-1!"}),
        )
        .await
        .unwrap();
    assert_eq!(
        search_dns(&server, &["-b", BASE, "(mail=dave@corp.example)"]),
        ["uid=dave,cn=Users,dc=corp,dc=example"]
    );
    admin
        .update_principal(T, "users", "dave", &serde_json::from_value(json!({"display_name": "Dave Rest"})).unwrap())
        .await
        .unwrap();
    let out = String::from_utf8(search(&server, ALICE_DN, ALICE_PW, &["-b", BASE, "(uid=dave)", "displayName"]).stdout)
        .unwrap();
    assert!(out.contains("displayName: Dave Rest"), "{out}");

    let url = server.ldaps_url();
    let (code, _, _) = text(&server.ldap_tool(
        "ldapdelete",
        &["-x", "-H", &url, "-D", ALICE_DN, "-w", ALICE_PW, "uid=dave,cn=Users,dc=corp,dc=example"],
    ));
    assert_eq!(code, 50, "insufficientAccessRights for a non-administrator");
    admin.principal(T, "users", "dave").await.unwrap();
}

#[tokio::test]
async fn the_subschema_entry_describes_the_schema_for_generic_tools() {
    let server = TestServer::start();
    corp(&server).await;
    let out = String::from_utf8(
        search(&server, ALICE_DN, ALICE_PW, &["-b", "cn=Subschema", "-s", "base", "attributeTypes", "objectClasses"])
            .stdout,
    )
    .unwrap();
    assert!(out.contains("NAME 'inetOrgPerson'") && out.contains("NAME 'groupOfNames'"), "{out}");
    assert!(out.contains("NAME ( 'uid' 'userid' ) EQUALITY caseIgnoreMatch"), "{out}");
    assert!(out.contains("NAME 'memberOf' EQUALITY distinguishedNameMatch"), "{out}");
}

#[tokio::test]
async fn sasl_external_binds_with_a_tenant_certificate_and_refuses_foreign_or_revoked_ones() {
    let server = TestServer::start();
    let admin = corp(&server).await;
    let dir = server.scratch();
    let whoami = |cert: &std::path::Path, key: &std::path::Path| {
        let out = std::process::Command::new("ldapwhoami")
            .args(["-Y", "EXTERNAL", "-H", &server.ldaps_url()])
            .env("LDAPTLS_CACERT", server.ca_file())
            .env("LDAPTLS_CERT", cert)
            .env("LDAPTLS_KEY", key)
            .env("LDAPCONF", "/dev/null")
            .output()
            .unwrap();
        text(&out)
    };

    // A certificate from a third-party CA is refused.
    let (key, cert) = (dir.join("foreign.key"), dir.join("foreign.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=alice", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success());
    let (code, _, stderr) = whoami(&cert, &key);
    assert_eq!(code, 49, "invalidCredentials: {stderr}");

    // Alice's own certificate (requested with her password, key made locally) binds as alice.
    let cli = pki::login_cli(&server, T, "alice", ALICE_PW);
    let (key, cert) = (dir.join("alice.key"), dir.join("alice.pem"));
    cli.ok(&["cert", "request", "--key-out", key.to_str().unwrap(), "--out", cert.to_str().unwrap()]);
    let (code, stdout, stderr) = whoami(&cert, &key);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), format!("dn:{ALICE_DN}"));

    // Once revoked, the same certificate no longer binds.
    let serial = cli.json(&["cert", "list"]).as_array().unwrap()[0]["serial"].as_str().unwrap().to_string();
    let req = lightwell_proto::RevokeRequest { reason: Some("key-compromise".into()), principal: None };
    admin.revoke_certificate(T, &serial, &req).await.unwrap();
    let (code, _, stderr) = whoami(&cert, &key);
    assert_eq!(code, 49, "a revoked certificate is refused: {stderr}");
    assert!(stderr.contains("revoked"), "{stderr}");
}

#[tokio::test]
async fn ldapcompare_and_a_self_service_password_change_through_ldapmodify() {
    let server = TestServer::start();
    corp(&server).await;
    let url = server.ldaps_url();
    let compare = |assertion: &str| {
        text(&server.ldap_tool("ldapcompare", &["-x", "-H", &url, "-D", ALICE_DN, "-w", ALICE_PW, ALICE_DN, assertion]))
            .0
    };
    assert_eq!(compare("mail:ALICE@corp.example"), 6, "compareTrue, case-insensitive");
    assert_eq!(compare("mail:bob@corp.example"), 5, "compareFalse");
    assert_eq!(compare("memberOf:cn=caadmins,cn=groups,dc=corp,dc=example"), 6, "DN matching, nested groups");

    // The LDAP idiom for changing one's own password: delete the old value, add the new one.
    let ldif = server.scratch().join("self.ldif");
    std::fs::write(
        &ldif,
        format!("dn: {ALICE_DN}\nchangetype: modify\ndelete: userPassword\nuserPassword: {ALICE_PW}\n-\nadd: userPassword\nuserPassword: Looking-Glass-43!\n"),
    )
    .unwrap();
    let wrong = std::fs::read_to_string(&ldif).unwrap().replace(ALICE_PW, "Not-Her-Password-1!");
    let wrong_file = server.scratch().join("wrong.ldif");
    std::fs::write(&wrong_file, wrong).unwrap();
    let modify =
        |f: &std::path::Path| {
            text(&server.ldap_tool(
                "ldapmodify",
                &["-x", "-H", &url, "-D", ALICE_DN, "-w", ALICE_PW, "-f", f.to_str().unwrap()],
            ))
            .0
        };
    assert_eq!(modify(&wrong_file), 49, "the old password must be right");
    assert_eq!(modify(&ldif), 0);
    server.login(T, "alice", "Looking-Glass-43!").await;
}
