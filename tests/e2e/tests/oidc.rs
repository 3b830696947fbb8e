//! The tenant's OpenID provider, client credentials grant: Authlib (PyPI
//! `authlib`, a client nobody here wrote) and curl against the real
//! `lightwelld`; access tokens checked with PyJWT against the published
//! JWKS, and through introspection.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lightwell_proto::IssueCertificateRequest;
use lightwell_testkit::pki::{self, Files};
use lightwell_testkit::{Cli, TestServer};
use serde_json::Value;

const T: &str = "corp.example";

/// Authlib's OAuth 2.0 client: discovery, the client credentials grant with
/// `method` (`client_secret_basic` or `client_secret_post`) and scope
/// `orders:read`, PyJWT checking the token against the JWKS (issuer,
/// audience `orders-api`, signature), and introspection.
const PY_CLIENT_CREDENTIALS: &str = r#"
import ssl, sys
import jwt, requests
from authlib.integrations.requests_client import OAuth2Session
issuer, ca, client_id, secret, method = sys.argv[1:6]
disc = requests.get(issuer + "/.well-known/openid-configuration", verify=ca).json()
session = OAuth2Session(client_id, secret, token_endpoint_auth_method=method, scope="orders:read")
token = session.fetch_token(disc["token_endpoint"], grant_type="client_credentials", verify=ca)
access = token["access_token"]
print("TOKEN", access)
print("EXPIRES_IN", token["expires_in"])
print("SCOPE", token.get("scope"))
key = jwt.PyJWKClient(disc["jwks_uri"], ssl_context=ssl.create_default_context(cafile=ca)).get_signing_key_from_jwt(access)
claims = jwt.decode(access, key.key, algorithms=["ES256"], audience="orders-api", issuer=disc["issuer"])
print("TYP", jwt.get_unverified_header(access)["typ"])
print("SUB", claims["sub"])
print("USERNAME", claims["username"])
print("CLIENT_ID", claims["client_id"])
print("CNF", "cnf" in claims)
intro = session.introspect_token(disc["introspection_endpoint"], token=access, verify=ca).json()
print("ACTIVE", intro["active"], intro.get("username"))
"#;

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn said<'a>(said: &'a str, key: &str) -> &'a str {
    said.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')).unwrap_or_else(|| panic!("no {key} in {said}"))
}

fn issuer(server: &TestServer) -> String {
    format!("{}/oidc/{T}", server.url())
}

/// A tenant with services `web` and `api`, an admin CLI, and an API client.
async fn tenant() -> (TestServer, lightwell_client::Client, Cli) {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    pki::host(&admin, T, "services", "web", &["web.corp.example"], &[]).await;
    pki::host(&admin, T, "services", "api", &["api.corp.example"], &[]).await;
    let cli = pki::admin_cli(&server, T);
    (server, admin, cli)
}

/// A certificate of `principal` (`service/web`) with its key: (key, chain) files.
async fn certificate(
    admin: &lightwell_client::Client,
    files: &Files,
    name: &str,
    principal: &str,
) -> (PathBuf, PathBuf) {
    let (key, csr) = files.csr(name, "ec:P-256", &format!("/CN={name}"), &[]);
    let req = IssueCertificateRequest { csr, principal: Some(principal.into()), ..Default::default() };
    let cert = admin.issue_certificate(T, &req).await.unwrap();
    let chain = key.with_extension("chain.pem");
    std::fs::write(&chain, cert.chain_pem).unwrap();
    (key, chain)
}

/// Joins `host` through the API with a CSR made here: (key, chain) files of the machine's own certificate.
async fn join(server: &TestServer, admin: &lightwell_client::Client, files: &Files, host: &str) -> (PathBuf, PathBuf) {
    let req = lightwell_proto::CreateJoinTokenRequest { hostname: Some(host.into()), ..Default::default() };
    let token = admin.create_join_token(T, &req).await.unwrap().token;
    let (key, csr) = files.csr(host, "ec:P-256", &format!("/CN={host}"), &[]);
    let body = lightwell_proto::JoinRequestBody { token, hostname: host.into(), ips: vec![], csr };
    let joined = server.client().join(T, &body).await.unwrap();
    let chain = key.with_extension("chain.pem");
    std::fs::write(&chain, joined.chain).unwrap();
    (key, chain)
}

/// What [`PY_CLIENT_CREDENTIALS`] says for a secret client authenticating with `method`.
fn authlib(server: &TestServer, id: &str, secret: &str, method: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", PY_CLIENT_CREDENTIALS, &issuer(server), server.ca_file().to_str().unwrap(), id, secret, method])
        .output()
        .unwrap();
    assert!(out.status.success(), "authlib {method}: {}", text(&out));
    text(&out)
}

/// A `tls_client_auth` client acting as machine `node1.corp.example`, and
/// an access token it gets with the machine's own certificate `cert`.
fn machine_token(server: &TestServer, cli: &Cli, cert: (&Path, &Path), extra: &[&str]) -> String {
    let create =
        ["oidc", "client", "create", "node1", "--principal", "machine/node1.corp.example", "--auth", "tls_client_auth"];
    let client = cli.json(&[&create[..], extra].concat());
    let grant = ["grant_type=client_credentials", &format!("client_id={}", client["client_id"].as_str().unwrap())];
    let (status, body) = curl(server, &format!("{}/token", issuer(server)), &grant, Some(cert), &[]);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["access_token"].as_str().unwrap().to_string()
}

/// curl POSTing a form to `url`, optionally with a TLS client certificate: (status, body).
fn curl(server: &TestServer, url: &str, form: &[&str], cert: Option<(&Path, &Path)>, extra: &[&str]) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-w", "\n%{http_code}", "--cacert"]).arg(server.ca_file());
    if let Some((key, chain)) = cert {
        cmd.arg("--cert").arg(chain).arg("--key").arg(key);
    }
    for f in form {
        cmd.args(["--data-urlencode", f]);
    }
    if form.is_empty() && !extra.contains(&"--data-binary") {
        cmd.args(["--data", ""]);
    }
    cmd.args(extra).arg(url);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "curl: {}", text(&out));
    let all = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = all.rsplit_once('\n').unwrap();
    (status.trim().parse().unwrap(), body.to_string())
}

/// The claims of a JWT, unverified (the signature is PyJWT's and introspection's to check).
fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// RFC 8705's `x5t#S256` of the first certificate in `chain`, computed by openssl.
fn thumbprint(chain: &Path) -> String {
    let script =
        "openssl x509 -in \"$1\" -outform der | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=\\n'";
    let out = Command::new("sh").args(["-c", script, "sh"]).arg(chain).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn client_credentials_give_access_tokens_bound_to_the_client_certificate_that_stop_when_the_service_is_disabled()
{
    let (server, admin, cli) = tenant().await;
    let files = Files::new();
    let audience = ["--audience", "orders-api", "--scope", "orders:read"];
    let secret_client =
        cli.json(&[&["oidc", "client", "create", "web", "--principal", "service/web"][..], &audience].concat());
    let (id, secret) = (secret_client["client_id"].as_str().unwrap(), secret_client["client_secret"].as_str().unwrap());
    assert!(cli.json(&["oidc", "client", "show", "web"]).get("client_secret").is_none(), "the secret is shown once");

    // Authlib, with the secret in HTTP Basic and in the form.
    let mut subjects = Vec::new();
    for method in ["client_secret_basic", "client_secret_post"] {
        let said_ = authlib(&server, id, secret, method);
        assert_eq!(said(&said_, "TYP"), "at+jwt", "{said_}");
        subjects.push(said(&said_, "SUB").to_string());
        assert_eq!(said(&said_, "USERNAME"), "service/web", "{said_}");
        assert_eq!(said(&said_, "CLIENT_ID"), id, "{said_}");
        assert_eq!(said(&said_, "SCOPE"), "orders:read", "{said_}");
        assert_eq!(said(&said_, "EXPIRES_IN"), "600", "{said_}");
        assert_eq!(said(&said_, "CNF"), "False", "a secret client's token is a plain bearer token: {said_}");
        assert_eq!(said(&said_, "ACTIVE"), "True service/web", "{said_}");
    }

    // tls_client_auth: the service's own certificate; the token is bound to it.
    let mtls = cli.json(
        &[
            &["oidc", "client", "create", "web-mtls", "--principal", "service/web", "--auth", "tls_client_auth"][..],
            &audience,
        ]
        .concat(),
    );
    assert!(mtls.get("client_secret").is_none(), "{mtls}");
    let mtls_id = mtls["client_id"].as_str().unwrap();
    let (key, chain) = certificate(&admin, &files, "web", "service/web").await;
    let token_url = format!("{}/token", issuer(&server));
    let grant = ["grant_type=client_credentials", &format!("client_id={mtls_id}")];
    let (status, body) = curl(&server, &token_url, &grant, Some((&key, &chain)), &[]);
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let bound = answer["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&bound)["cnf"]["x5t#S256"], thumbprint(&chain), "bound to the certificate openssl hashes");
    subjects.push(claims(&bound)["sub"].as_str().unwrap().to_string());
    subjects.dedup();
    assert_eq!(subjects.len(), 1, "every token's subject is the service's id: {subjects:?}");

    // Introspection by the certificate client itself.
    let introspect_url = format!("{}/introspect", issuer(&server));
    let form = [format!("token={bound}"), format!("client_id={mtls_id}")];
    let form = [form[0].as_str(), form[1].as_str()];
    let (status, body) = curl(&server, &introspect_url, &form, Some((&key, &chain)), &[]);
    assert_eq!(status, 200, "{body}");
    let intro: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(intro["active"], true, "{intro}");
    assert_eq!(intro["cnf"]["x5t#S256"], thumbprint(&chain), "{intro}");

    // Another service's certificate does not authenticate this client.
    let (api_key, api_chain) = certificate(&admin, &files, "api", "service/api").await;
    let (status, body) = curl(&server, &token_url, &grant, Some((&api_key, &api_chain)), &[]);
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()["error"].clone()),
        (401, "invalid_client".into()),
        "{body}"
    );

    let gateway = cli.json(&["oidc", "client", "create", "gateway", "--principal", "service/api"]);
    let basic = format!("{}:{}", gateway["client_id"].as_str().unwrap(), gateway["client_secret"].as_str().unwrap());
    // Lightwell's own API takes access tokens of audience `lightwell`: a
    // secret client's as a bearer token, a certificate-bound one only over a
    // connection presenting that certificate, and only if the certificate
    // itself authenticates its principal to Lightwell (a machine's own).
    let whoami = format!("{}/v1/whoami", server.url());
    let get = |token: &str, cert: Option<(&Path, &Path)>| {
        let (status, body) =
            curl(&server, &whoami, &[], cert, &["-G", "-H", &format!("Authorization: Bearer {token}")]);
        (status, serde_json::from_str::<Value>(&body).unwrap_or_default())
    };
    let (status, body) = curl(&server, &token_url, &["grant_type=client_credentials"], None, &["-u", &basic]);
    assert_eq!(status, 200, "{body}");
    let gateway_token = serde_json::from_str::<Value>(&body).unwrap()["access_token"].as_str().unwrap().to_string();
    let (status, me) = get(&gateway_token, None);
    assert_eq!((status, me["kind"].as_str(), me["name"].as_str()), (200, Some("service"), Some("api")), "{me}");
    let (status, _) = get(&bound, Some((&key, &chain)));
    assert_eq!(
        status, 401,
        "web's certificate was requested by the administrator: it never authenticates web to Lightwell"
    );
    let (node_key, node_chain) = join(&server, &admin, &files, "node1.corp.example").await;
    let node_token = machine_token(&server, &cli, (&node_key, &node_chain), &[]);
    let (status, me) = get(&node_token, Some((&node_key, &node_chain)));
    assert_eq!(
        (status, me["kind"].as_str(), me["name"].as_str()),
        (200, Some("machine"), Some("node1.corp.example")),
        "{me}"
    );
    assert_eq!(get(&node_token, None).0, 401, "a certificate-bound token without its certificate");
    assert_eq!(
        get(&node_token, Some((&api_key, &api_chain))).0,
        401,
        "a certificate-bound token over another certificate"
    );
    let (status, _) = get(said(&authlib(&server, id, secret, "client_secret_basic"), "TOKEN"), None);
    assert_eq!(status, 401, "a token for another audience (orders-api) is not Lightwell's");

    // Disabling the service ends it at once: no new token, old ones inactive.
    cli.ok(&["service", "disable", "web"]);
    let (status, body) = curl(&server, &introspect_url, &form, Some((&key, &chain)), &[]);
    assert_eq!(status, 401, "a disabled service's certificate no longer authenticates: {body}");
    let (status, body) = curl(&server, &introspect_url, &[&format!("token={bound}")], None, &["-u", &basic]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), serde_json::json!({"active": false}));
    let web_basic = format!("{id}:{secret}");
    let (status, body) = curl(&server, &token_url, &["grant_type=client_credentials"], None, &["-u", &web_basic]);
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()["error"].clone()),
        (400, "unauthorized_client".into()),
        "{body}"
    );

    // Enabled again, a deleted client's tokens are inactive too.
    cli.ok(&["service", "enable", "web"]);
    let (status, body) = curl(&server, &token_url, &["grant_type=client_credentials"], None, &["-u", &web_basic]);
    assert_eq!(status, 200, "{body}");
    let plain = serde_json::from_str::<Value>(&body).unwrap()["access_token"].as_str().unwrap().to_string();
    let active = |token: &str| {
        let (_, body) = curl(&server, &introspect_url, &[&format!("token={token}")], None, &["-u", &basic]);
        serde_json::from_str::<Value>(&body).unwrap()["active"].clone()
    };
    assert_eq!(active(&plain), true);
    // Revocation (RFC 7009): only by the token's own client; then inactive
    // and refused everywhere.
    let revoke_url = format!("{}/revoke", issuer(&server));
    let revoke =
        |token: &str, basic: &str| curl(&server, &revoke_url, &[&format!("token={token}")], None, &["-u", basic]).0;
    assert_eq!(revoke(&gateway_token, &web_basic), 200, "another client's revocation is no error");
    assert_eq!(active(&gateway_token), true, "and changes nothing");
    assert_eq!(revoke("garbage", &basic), 200, "an invalid token is no error");
    assert_eq!(revoke(&gateway_token, &format!("{id}:wrong")), 401, "the revoking client authenticates");
    assert_eq!(revoke(&gateway_token, &basic), 200);
    assert_eq!(active(&gateway_token), false, "revoked");
    assert_eq!(get(&gateway_token, None).0, 401, "a revoked token no longer authenticates to Lightwell");
    cli.ok(&["oidc", "client", "delete", "web"]);
    assert_eq!(active(&plain), false, "the deleted client's token");
    let log = cli.json(&["audit", "list"]).to_string();
    for action in ["oidc.client.create", "oidc.token", "oidc.client.delete"] {
        assert!(log.contains(action), "{action} audited: {log}");
    }
}

/// Forgeries of a real access token offered to introspection (each should
/// come back inactive), built with PyJWT and by hand.
const PY_FORGERIES: &str = r#"
import base64, hmac, hashlib, json, ssl, sys
import jwt, requests
from cryptography.hazmat.primitives.asymmetric import ec
issuer, ca, real = sys.argv[1:4]
def b64(d):
    return base64.urlsafe_b64encode(d).rstrip(b"=").decode()
h, p, sig = real.split(".")
header = jwt.get_unverified_header(real)
claims = jwt.decode(real, options={"verify_signature": False})
jwks = requests.get(issuer + "/jwks", verify=ca).json()
public_pem = jwt.PyJWK(jwks["keys"][0]).key.public_bytes(
    __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).Encoding.PEM,
    __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).PublicFormat.SubjectPublicKeyInfo)
mine = ec.generate_private_key(ec.SECP256R1())
hs_head = b64(json.dumps({"alg": "HS256", "kid": header["kid"], "typ": "at+jwt"}).encode())
hs_sig = b64(hmac.new(public_pem, (hs_head + "." + p).encode(), hashlib.sha256).digest())
forged = {
    "GARBAGE": "a.b.c",
    "ALG_NONE": b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": header["kid"]}).encode()) + "." + p + ".",
    "SWAPPED_SUB": h + "." + b64(json.dumps(dict(claims, sub="someone-else")).encode()) + "." + sig,
    "OWN_KEY": jwt.encode(claims, mine, algorithm="ES256", headers={"kid": header["kid"], "typ": "at+jwt"}),
    "HS256_PUBLIC_KEY": hs_head + "." + p + "." + hs_sig,
    "EXPIRED": jwt.encode(dict(claims, exp=1), mine, algorithm="ES256", headers={"kid": header["kid"], "typ": "at+jwt"}),
    "HUGE": "x" * 60000,
}
for name, token in forged.items():
    print(name, token)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn hostile_token_requests_registrations_and_forged_tokens_are_refused_and_issue_nothing() {
    let (server, admin, cli) = tenant().await;
    let created =
        cli.json(&["oidc", "client", "create", "web", "--principal", "service/web", "--scope", "orders:read"]);
    let (id, secret) = (created["client_id"].as_str().unwrap(), created["client_secret"].as_str().unwrap());
    let basic = format!("{id}:{secret}");
    let token_url = format!("{}/token", issuer(&server));
    let grant = "grant_type=client_credentials";
    let secret_in_form = format!("client_secret={secret}");
    let error = |(status, body): (u16, String)| -> (u16, String) {
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"));
        (status, v["error"].as_str().unwrap_or_default().to_string())
    };
    // (form, curl's other arguments, the answer: status and RFC 6749 error)
    type Refusal<'a> = (Vec<&'a str>, Vec<String>, (u16, &'a str));
    let refusals: Vec<Refusal> = vec![
        (vec![grant], vec!["-u".into(), format!("{id}:wrong")], (401, "invalid_client")),
        (vec![grant], vec!["-u".into(), "no-such-client:whatever".into()], (401, "invalid_client")),
        (vec![grant, "client_id=no-such-client"], vec![], (401, "invalid_client")),
        (vec![grant], vec![], (401, "invalid_client")),
        (
            vec!["grant_type=password", "username=alice", "password=x"],
            vec!["-u".into(), basic.clone()],
            (400, "unsupported_grant_type"),
        ),
        (vec![], vec!["-u".into(), basic.clone()], (400, "invalid_request")),
        (vec![grant, grant], vec!["-u".into(), basic.clone()], (400, "invalid_request")),
        (vec![grant, "scope=orders:write"], vec!["-u".into(), basic.clone()], (400, "invalid_scope")),
        (vec![grant, &secret_in_form], vec!["-u".into(), basic.clone()], (400, "invalid_request")),
        (
            vec![grant],
            vec!["-u".into(), basic.clone(), "-H".into(), "Content-Type: application/json".into()],
            (400, "invalid_request"),
        ),
    ];
    for (form, extra, want) in &refusals {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let got = error(curl(&server, &token_url, form, None, &extra));
        assert_eq!((got.0, got.1.as_str()), *want, "{form:?} {extra:?}");
    }
    // A wrong secret in HTTP Basic names the scheme (RFC 6749 section 5.2).
    let out = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(server.ca_file())
        .args(["-u", &format!("{id}:wrong"), "-d", grant, &token_url])
        .output()
        .unwrap();
    assert!(text(&out).to_ascii_lowercase().contains("www-authenticate: basic"), "{}", text(&out));

    // Registrations refused.
    let alice = pki::user(&server, &admin, T, "alice").await;
    let req = lightwell_proto::CreateOidcClientRequest {
        name: "x".into(),
        principal: "service/web".into(),
        ..Default::default()
    };
    assert!(alice.create_oidc_client(T, &req).await.unwrap_err().to_string().contains("not allowed"));
    for (args, code) in [
        (vec!["Bad_Name", "--principal", "service/web"], "invalid_name"),
        (vec!["x", "--principal", "user/alice"], "invalid_request"),
        (vec!["x", "--principal", "service/nobody"], "principal_not_found"),
        (vec!["x", "--principal", "service/web", "--auth", "none"], "invalid_request"),
        (vec!["x", "--principal", "service/web", "--access-token-ttl", "10h"], "invalid_request"),
        (vec!["x", "--principal", "service/web", "--scope", "two words"], "invalid_request"),
        (vec!["web", "--principal", "service/api"], "already_exists"),
    ] {
        assert_eq!(cli.fails_with(&[&["oidc", "client", "create"][..], &args].concat()), code, "{args:?}");
    }
    assert_eq!(cli.json(&["oidc", "client", "list"]).as_array().unwrap().len(), 1, "nothing else registered");

    // Forgeries of a real token come back inactive.
    let (status, body) = curl(&server, &token_url, &[grant], None, &["-u", &basic]);
    assert_eq!(status, 200, "{body}");
    let real = serde_json::from_str::<Value>(&body).unwrap()["access_token"].as_str().unwrap().to_string();
    let out = Command::new("python3")
        .args(["-c", PY_FORGERIES, &issuer(&server), server.ca_file().to_str().unwrap(), &real])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let introspect_url = format!("{}/introspect", issuer(&server));
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let (name, token) = line.split_once(' ').unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), format!("token={token}")).unwrap();
        let (status, body) = curl(
            &server,
            &introspect_url,
            &[],
            None,
            &[
                "-u",
                &basic,
                "--data-binary",
                &format!("@{}", file.path().display()),
                "-H",
                "Content-Type: application/x-www-form-urlencoded",
            ],
        );
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["active"], false, "{name} is inactive: {body}");
    }
    let (status, body) = curl(&server, &introspect_url, &[&format!("token={real}")], None, &["-u", &basic]);
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()["active"].clone()), (200, true.into()), "{body}");
    // Introspection needs a client.
    assert_eq!(
        error(curl(&server, &introspect_url, &[&format!("token={real}")], None, &[])),
        (401, "invalid_client".into())
    );

    // Exactly one token was issued (this test's one good request); the
    // refusals of the known client are recorded as such.
    let log = cli.json(&["audit", "list", "--limit", "500"]);
    let records = log.as_array().unwrap();
    let issued = records.iter().filter(|r| r["action"] == "oidc.token" && r["outcome"] == "success").count();
    assert_eq!(issued, 1, "one token issued");
    assert!(records.iter().any(|r| r["action"] == "oidc.token" && r["outcome"] == "failure"), "refusals audited");

    // A wrong secret in a loop: after ten failures of this client from this
    // address its requests from here are refused unexamined (429,
    // Retry-After) and audit nothing more; from another address it works.
    let failed = || {
        let log = cli.json(&["audit", "list", "--limit", "1000"]);
        log.as_array().unwrap().iter().filter(|r| r["action"] == "oidc.token" && r["outcome"] == "failure").count()
    };
    let before = failed();
    let wrong = format!("{id}:wrong");
    let statuses: Vec<u16> = (0..12).map(|_| curl(&server, &token_url, &[grant], None, &["-u", &wrong]).0).collect();
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    assert!(unauthorized >= 1 && statuses[unauthorized..].iter().all(|s| *s == 429), "{statuses:?}");
    assert!(unauthorized <= 10, "{statuses:?}");
    assert_eq!(failed(), before + unauthorized, "throttled attempts audit nothing");
    let out = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(server.ca_file())
        .args(["-u", &basic, "-d", grant, &token_url])
        .output()
        .unwrap();
    let head = text(&out).to_ascii_lowercase();
    assert!(
        head.starts_with("http/1.1 429") || head.starts_with("http/2 429"),
        "even the right secret, from here: {head}"
    );
    assert!(head.contains("retry-after: "), "{head}");
    let elsewhere = server
        .raw_from("127.0.0.2".parse().unwrap())
        .post(&token_url)
        .basic_auth(id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(grant)
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 200, "another address is not locked out");
}

/// The TokenReview kube-apiserver sends to its webhook for `token`.
fn token_review(token: &str, audiences: &[&str]) -> String {
    serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": { "token": token, "audiences": audiences },
    })
    .to_string()
}

const K8S_AUDIENCE: &str = "https://kubernetes.default.svc";

#[tokio::test(flavor = "multi_thread")]
async fn token_reviews_name_the_principal_and_its_nested_groups_for_access_tokens_and_jwt_svids_only() {
    let (server, admin, cli) = tenant().await;
    let files = Files::new();
    // web is in deployers, which is in platform: RBAC binds either.
    cli.ok(&["group", "create", "deployers"]);
    cli.ok(&["group", "create", "platform"]);
    cli.ok(&["group", "add-member", "deployers", "web", "--kind", "service"]);
    cli.ok(&["group", "add-member", "platform", "deployers", "--kind", "group"]);
    let client =
        cli.json(&["oidc", "client", "create", "web", "--principal", "service/web", "--audience", K8S_AUDIENCE]);
    let basic = format!("{}:{}", client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    let token_url = format!("{}/token", issuer(&server));
    let fetch = |basic: &str, url: &str| {
        let (status, body) = curl(&server, url, &["grant_type=client_credentials"], None, &["-u", basic]);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["access_token"].as_str().unwrap().to_string()
    };
    let access = fetch(&basic, &token_url);
    let review_url = format!("{}/k8s/{T}/token-review", server.url());
    let review = |token: &str, audiences: &[&str]| {
        let body = token_review(token, audiences);
        let (status, answer) =
            curl(&server, &review_url, &[], None, &["--data-binary", &body, "-H", "Content-Type: application/json"]);
        assert_eq!(status, 200, "{answer}");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(
            (answer["apiVersion"].as_str(), answer["kind"].as_str()),
            (Some("authentication.k8s.io/v1"), Some("TokenReview"))
        );
        answer["status"].clone()
    };
    let status = review(&access, &[K8S_AUDIENCE, "other"]);
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(status["user"]["username"], "service/web", "{status}");
    assert_eq!(status["audiences"], serde_json::json!([K8S_AUDIENCE]), "{status}");
    let groups: Vec<&str> = status["user"]["groups"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(groups.contains(&"deployers") && groups.contains(&"platform"), "nested groups: {status}");

    // A JWT-SVID of a workload of web, asked for by its host's agent.
    let (node_key, node_chain) = join(&server, &admin, &files, "node1.corp.example").await;
    cli.ok(&[
        "workload",
        "create",
        "web-worker",
        "--service",
        "web",
        "--host",
        "node1.corp.example",
        "--selector",
        "unix:uid:1000",
    ]);
    let svid_url = format!("{}/v1/tenants/{T}/workloads/web-worker/jwt-svid", server.url());
    let body = serde_json::json!({ "audience": [K8S_AUDIENCE] }).to_string();
    let (status, answer) = curl(
        &server,
        &svid_url,
        &[],
        Some((&node_key, &node_chain)),
        &["--data-binary", &body, "-H", "Content-Type: application/json"],
    );
    assert_eq!(status, 201, "{answer}");
    let svid = serde_json::from_str::<Value>(&answer).unwrap()["token"].as_str().unwrap().to_string();
    let status = review(&svid, &[K8S_AUDIENCE]);
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(status["user"]["username"], "spiffe://corp.example/service/web", "{status}");
    assert!(status["user"]["groups"].as_array().unwrap().iter().any(|g| g == "platform"), "{status}");

    // Not authenticated: another audience, no audiences, garbage, a token of
    // another tenant, a certificate-bound access token, a session token.
    let refused = |token: &str, audiences: &[&str], why: &str| {
        let status = review(token, audiences);
        assert_eq!(status["authenticated"], false, "{why}: {status}");
        assert!(status.get("user").is_none(), "{why}: {status}");
    };
    refused(&access, &["https://other.cluster"], "another audience");
    refused(&access, &[], "no audiences");
    refused("a.b.c", &[K8S_AUDIENCE], "garbage");
    refused("", &[K8S_AUDIENCE], "empty");
    let other = pki::tenant(&server, "other.example", None).await;
    pki::host(&other, "other.example", "services", "web", &[], &[]).await;
    let other_cli = pki::admin_cli(&server, "other.example");
    let other_client =
        other_cli.json(&["oidc", "client", "create", "web", "--principal", "service/web", "--audience", K8S_AUDIENCE]);
    let other_basic =
        format!("{}:{}", other_client["client_id"].as_str().unwrap(), other_client["client_secret"].as_str().unwrap());
    let other_token = fetch(&other_basic, &format!("{}/oidc/other.example/token", server.url()));
    refused(&other_token, &[K8S_AUDIENCE], "another tenant's token");
    let bound = machine_token(&server, &cli, (&node_key, &node_chain), &["--audience", K8S_AUDIENCE]);
    refused(&bound, &[K8S_AUDIENCE], "a certificate-bound token");
    let session = server.client().login(T, "administrator", pki::ADMIN_PASSWORD).await.unwrap().token;
    refused(&session, &[K8S_AUDIENCE], "a session token");
    let spare = fetch(&basic, &token_url);
    assert_eq!(review(&spare, &[K8S_AUDIENCE])["authenticated"], true);
    let (status, _) =
        curl(&server, &format!("{}/revoke", issuer(&server)), &[&format!("token={spare}")], None, &["-u", &basic]);
    assert_eq!(status, 200);
    refused(&spare, &[K8S_AUDIENCE], "a revoked token");
    for (body, why) in
        [("{}", "no kind"), ("[1]", "not an object"), (r#"{"apiVersion":"v1","kind":"Pod","spec":{}}"#, "a Pod")]
    {
        let (status, _) =
            curl(&server, &review_url, &[], None, &["--data-binary", body, "-H", "Content-Type: application/json"]);
        assert_eq!(status, 400, "{why}");
    }

    // Revoked: the entry deleted, the service disabled; expired: two hours on.
    cli.ok(&["workload", "delete", "web-worker"]);
    refused(&svid, &[K8S_AUDIENCE], "a JWT-SVID whose entry is gone");
    cli.ok(&["service", "disable", "web"]);
    refused(&access, &[K8S_AUDIENCE], "a disabled service's token");
    cli.ok(&["service", "enable", "web"]);
    assert_eq!(review(&access, &[K8S_AUDIENCE])["authenticated"], true);
    server.set_clock_offset(2 * 3600);
    refused(&access, &[K8S_AUDIENCE], "an expired token");

    // The webhook configuration kube-apiserver reads.
    let config = files.path("webhook.kubeconfig");
    cli.ok(&[
        "k8s",
        "webhook-config",
        "--out",
        config.to_str().unwrap(),
        "--server-ca",
        server.ca_file().to_str().unwrap(),
    ]);
    let out = Command::new("kubectl")
        .args(["config", "view", "--raw", "-o", "json", "--kubeconfig"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "kubectl reads it: {}", text(&out));
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["clusters"][0]["cluster"]["server"], review_url, "{view}");
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(view["clusters"][0]["cluster"]["certificate-authority-data"].as_str().unwrap())
        .unwrap();
    assert_eq!(ca, std::fs::read(server.ca_file()).unwrap(), "the server's CA");
}
