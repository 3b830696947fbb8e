//! The SPIFFE Workload API of the real agent, driven by SPIFFE clients
//! nobody here wrote: py-spiffe (PyPI `spiffe`) and the Rust `spiffe`
//! crate. Workload entries are made with the real CLI; processes are told
//! apart by what the kernel says about them (uid, executable path): the
//! Python interpreter and this test binary are two workloads.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lightwell_proto::{CreateJoinTokenRequest, SvidRequest};
use lightwell_testkit::node::{Node, wait_until};
use lightwell_testkit::pki;
use lightwell_testkit::{Cli, TestServer};
use tokio_stream::StreamExt as _;

const T: &str = "corp.example";
const NODE1: &str = "node1.corp.example";
const NODE2: &str = "node2.corp.example";

/// py-spiffe: fetch the X.509-SVID and the bundles, save them as PEM, print
/// the SPIFFE ID; on an error print its class and message and exit 3.
const PY_FETCH: &str = r#"
import os, sys
from cryptography.hazmat.primitives import serialization
from spiffe import WorkloadApiClient
out = sys.argv[1]
client = WorkloadApiClient(os.environ["SPIFFE_ENDPOINT_SOCKET"], default_timeout=20)
try:
    svid = client.fetch_x509_svid()
    bundles = client.fetch_x509_bundles()
except Exception as e:
    print("ERROR", type(e).__name__, e)
    sys.exit(3)
svid.save(out + "/svid.pem", out + "/svid.key", serialization.Encoding.PEM)
bundle = bundles.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
bundle.save(out + "/bundle.pem", serialization.Encoding.PEM)
print("SPIFFE_ID", svid.spiffe_id)
client.close()
"#;

/// Raw gRPC (grpcio) with py-spiffe's generated stubs: a request without
/// the security header, and an oversized one with it.
const PY_RAW: &str = r#"
import os, grpc
from spiffe._proto import workload_pb2, workload_pb2_grpc
stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(grpc.insecure_channel(os.environ["SPIFFE_ENDPOINT_SOCKET"]))
try:
    next(stub.FetchX509SVID(workload_pb2.X509SVIDRequest(), timeout=10))
    print("NO_HEADER OK")
except grpc.RpcError as e:
    print("NO_HEADER", e.code().name, e.details())
try:
    stub.FetchJWTSVID(workload_pb2.JWTSVIDRequest(audience=["a" * (1 << 20)]),
                      metadata=[("workload.spiffe.io", "true")], timeout=10)
    print("OVERSIZED OK")
except grpc.RpcError as e:
    print("OVERSIZED", e.code().name)
"#;

/// Python's `ssl`: a mutual-TLS server with one SVID and a client with
/// another, each trusting only the bundle; prints the SPIFFE ID each side
/// saw in the other's certificate.
const PY_MTLS: &str = r#"
import socket, ssl, sys, threading
srv_dir, cli_dir = sys.argv[1], sys.argv[2]
def uri(cert):
    return [v for k, v in cert.get("subjectAltName", ()) if k == "URI"][0]
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(srv_dir + "/svid.pem", srv_dir + "/svid.key")
sctx.load_verify_locations(srv_dir + "/bundle.pem")
sctx.verify_mode = ssl.CERT_REQUIRED
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
cctx.check_hostname = False
cctx.load_cert_chain(cli_dir + "/svid.pem", cli_dir + "/svid.key")
cctx.load_verify_locations(cli_dir + "/bundle.pem")
lsock = socket.create_server(("127.0.0.1", 0))
port = lsock.getsockname()[1]
seen = {}
def serve():
    conn, _ = lsock.accept()
    with sctx.wrap_socket(conn, server_side=True) as s:
        seen["server saw"] = uri(s.getpeercert())
        s.sendall(b"hello")
t = threading.Thread(target=serve); t.start()
with cctx.wrap_socket(socket.create_connection(("127.0.0.1", port))) as c:
    seen["client saw"] = uri(c.getpeercert())
    c.recv(5)
t.join()
print("SERVER_SAW", seen["server saw"])
print("CLIENT_SAW", seen["client saw"])
"#;

/// py-spiffe and PyJWT: a JWT-SVID for two audiences, the JWT bundles,
/// the agent's validation (its audience and another), then PyJWT verifying
/// the token against the JWKS the tenant's discovery document names, as a
/// relying party off the host would.
const PY_JWT: &str = r#"
import json, os, ssl, sys, urllib.request
import jwt
from spiffe import WorkloadApiClient
issuer_url, ca = sys.argv[1], sys.argv[2]
client = WorkloadApiClient(os.environ["SPIFFE_ENDPOINT_SOCKET"], default_timeout=20)
try:
    svid = client.fetch_jwt_svid(audience={"db", "api"})
except Exception as e:
    print("ERROR", type(e).__name__, e)
    sys.exit(3)
print("SPIFFE_ID", svid.spiffe_id)
print("AUDIENCE", " ".join(sorted(svid.audience)))
again = client.fetch_jwt_svid(audience={"api", "db"})
print("REUSED", again.token == svid.token)
bundles = client.fetch_jwt_bundles()
bundle = bundles.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
print("BUNDLE_HAS_KID", jwt.get_unverified_header(svid.token)["kid"] in bundle.jwt_authorities)
print("VALID", client.validate_jwt_svid(svid.token, "db").spiffe_id)
try:
    client.validate_jwt_svid(svid.token, "other")
    print("OTHER accepted")
except Exception as e:
    print("OTHER refused", e)
ctx = ssl.create_default_context(cafile=ca)
disc = json.load(urllib.request.urlopen(issuer_url + "/.well-known/openid-configuration", context=ctx))
print("ISSUER", disc["issuer"])
key = jwt.PyJWKClient(disc["jwks_uri"], ssl_context=ctx).get_signing_key_from_jwt(svid.token)
claims = jwt.decode(svid.token, key.key, algorithms=["ES256"], audience="db", issuer=disc["issuer"])
print("PYJWT_SUB", claims["sub"], claims["exp"] - claims["iat"])
try:
    jwt.decode(svid.token, key.key, algorithms=["ES256"], audience="other", issuer=disc["issuer"])
    print("PYJWT_OTHER accepted")
except jwt.InvalidAudienceError:
    print("PYJWT_OTHER refused")
client.close()
"#;

/// Raw gRPC against the JWT calls: malformed requests, then forgeries of a
/// real token offered to `ValidateJWTSVID`; prints one line per attempt.
const PY_JWT_HOSTILE: &str = r#"
import base64, json, os, grpc
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from spiffe._proto import workload_pb2, workload_pb2_grpc
stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(grpc.insecure_channel(os.environ["SPIFFE_ENDPOINT_SOCKET"]))
H = [("workload.spiffe.io", "true")]
def attempt(name, call):
    try:
        r = call()
        print(name, "OK", r)
    except grpc.RpcError as e:
        print(name, e.code().name, e.details())
attempt("NO_HEADER", lambda: stub.FetchJWTSVID(workload_pb2.JWTSVIDRequest(audience=["db"]), timeout=10))
attempt("NO_AUDIENCE", lambda: stub.FetchJWTSVID(workload_pb2.JWTSVIDRequest(), metadata=H, timeout=10))
attempt("NINE_AUDIENCES", lambda: stub.FetchJWTSVID(workload_pb2.JWTSVIDRequest(audience=[str(i) for i in range(9)]), metadata=H, timeout=10))
attempt("CONTROL_AUDIENCE", lambda: stub.FetchJWTSVID(workload_pb2.JWTSVIDRequest(audience=["db\n"]), metadata=H, timeout=10))
attempt("OTHER_ID", lambda: stub.FetchJWTSVID(workload_pb2.JWTSVIDRequest(audience=["db"], spiffe_id="spiffe://corp.example/service/orders"), metadata=H, timeout=10))
real = stub.FetchJWTSVID(workload_pb2.JWTSVIDRequest(audience=["db"]), metadata=H, timeout=10).svids[0].svid
def b64(d):
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
h, p, sig = real.split(".")
kid = jwt.get_unverified_header(real)["kid"]
claims = jwt.decode(real, options={"verify_signature": False})
mine = ec.generate_private_key(ec.SECP256R1())
forged = {
    "GARBAGE": "a.b.c",
    "ALG_NONE": b64({"alg": "none", "kid": kid}) + "." + p + ".",
    "SWAPPED_SUB": h + "." + b64(dict(claims, sub="spiffe://corp.example/service/admin")) + "." + sig,
    "OWN_KEY": jwt.encode(dict(claims, sub="spiffe://corp.example/service/admin"), mine, algorithm="ES256", headers={"kid": kid}),
    "HS256": b64({"alg": "HS256", "kid": kid, "typ": "JWT"}) + "." + p + "." + sig,
    "HUGE": "x" * 60000,
}
for name, token in forged.items():
    attempt(name, lambda: stub.ValidateJWTSVID(workload_pb2.ValidateJWTSVIDRequest(audience="db", svid=token), metadata=H, timeout=10))
attempt("EMPTY_AUDIENCE", lambda: stub.ValidateJWTSVID(workload_pb2.ValidateJWTSVIDRequest(audience="", svid=real), metadata=H, timeout=10))
attempt("EMPTY_SVID", lambda: stub.ValidateJWTSVID(workload_pb2.ValidateJWTSVIDRequest(audience="db", svid=""), metadata=H, timeout=10))
r = stub.ValidateJWTSVID(workload_pb2.ValidateJWTSVIDRequest(audience="db", svid=real), metadata=H, timeout=10)
print("REAL", r.spiffe_id, r.claims["aud"])
codes = {}
for i in range(60):
    try:
        stub.FetchJWTSVID(workload_pb2.JWTSVIDRequest(audience=["burst%d" % i]), metadata=H, timeout=10)
        codes["OK"] = codes.get("OK", 0) + 1
    except grpc.RpcError as e:
        codes[e.code().name] = codes.get(e.code().name, 0) + 1
print("BURST", codes.get("OK", 0), codes.get("RESOURCE_EXHAUSTED", 0), sum(codes.values()))
"#;

/// The real path of the Python interpreter (`python3` may be a shim).
fn python_exe() -> String {
    let out = Command::new("python3").args(["-c", "import os, sys; print(os.path.realpath(sys.executable))"]).output();
    String::from_utf8(out.unwrap().stdout).unwrap().trim().to_string()
}

/// This test binary's path: the Rust workload's `unix:path`.
fn this_exe() -> String {
    std::env::current_exe().unwrap().to_string_lossy().into_owned()
}

/// The uid this test (and the Python it starts) runs as.
fn my_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

fn endpoint(socket: &Path) -> String {
    format!("unix://{}", socket.display())
}

fn python(socket: &Path, script: &str, args: &[&str]) -> Output {
    Command::new("python3")
        .args(["-c", script])
        .args(args)
        .env("SPIFFE_ENDPOINT_SOCKET", endpoint(socket))
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A server, a tenant with services `payments` and `orders`, and an admin CLI.
async fn tenant() -> (TestServer, lightwell_client::Client, Cli) {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    pki::host(&admin, T, "services", "payments", &["payments.corp.example"], &[]).await;
    pki::host(&admin, T, "services", "orders", &[], &[]).await;
    let cli = pki::admin_cli(&server, T);
    (server, admin, cli)
}

/// A host that joined, its agent running and serving its Workload API socket.
async fn host(server: &TestServer, admin: &lightwell_client::Client, name: &str, env: &[(&str, &str)]) -> Node {
    host_in(server, admin, T, name, env).await
}

/// [`host`] of tenant `tenant`.
async fn host_in(
    server: &TestServer,
    admin: &lightwell_client::Client,
    tenant: &str,
    name: &str,
    env: &[(&str, &str)],
) -> Node {
    let dir = server.scratch().join("hosts");
    std::fs::create_dir_all(&dir).unwrap();
    let mut node = Node::new(&dir, name);
    for (k, v) in env {
        node.env(k, v);
    }
    let req = CreateJoinTokenRequest { hostname: Some(name.into()), ..Default::default() };
    let token = admin.create_join_token(tenant, &req).await.unwrap().token.unwrap();
    let out = node.join(server, tenant, Some(&token));
    assert!(out.status.success(), "join: {}", text(&out));
    node.start_agent();
    let socket = node.workload_socket();
    assert!(
        wait_until(Duration::from_secs(20), || socket.exists()),
        "the agent serves no socket: {}",
        std::fs::read_to_string(node.agent_log()).unwrap_or_default()
    );
    node
}

fn create_entry(cli: &Cli, name: &str, service: &str, hosts: &[&str], selectors: &[String], extra: &[&str]) {
    let mut args = vec!["workload", "create", name, "--service", service];
    for h in hosts {
        args.extend(["--host", h]);
    }
    for s in selectors {
        args.extend(["--selector", s.as_str()]);
    }
    args.extend(extra);
    cli.ok(&args);
}

/// POSTs a raw JSON body as the tenant administrator: (status, body).
async fn admin_post(server: &TestServer, path: &str, body: String) -> (u16, String) {
    let token = server.client().login(T, "administrator", pki::ADMIN_PASSWORD).await.unwrap().token;
    let resp = server
        .raw()
        .post(format!("{}{path}", server.url()))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn openssl_verify(bundle: &Path, chain: &Path) -> Output {
    Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(bundle)
        .arg("-untrusted")
        .arg(chain)
        .arg(chain)
        .output()
        .unwrap()
}

/// Serials (lower-case hex, no leading zeros) listed in a host's CRL files.
fn revoked_on(node: &Node) -> Vec<String> {
    use rustls_pki_types::CertificateRevocationListDer;
    use rustls_pki_types::pem::PemObject;
    let pem = node.crls();
    CertificateRevocationListDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .flat_map(|der| {
            let (_, crl) = x509_parser::parse_x509_crl(der.as_ref()).unwrap();
            crl.iter_revoked_certificates().map(|r| hex_serial(r.raw_serial())).collect::<Vec<_>>()
        })
        .collect()
}

fn hex_serial(bytes: &[u8]) -> String {
    let s: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    s.trim_start_matches('0').to_string()
}

fn serial_of(der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    hex_serial(cert.raw_serial())
}

#[tokio::test(flavor = "multi_thread")]
async fn py_spiffe_and_rust_spiffe_each_get_their_own_svid_and_nobody_else_gets_one() {
    let (server, admin, cli) = tenant().await;
    let node1 = host(&server, &admin, NODE1, &[]).await;
    let node2 = host(&server, &admin, NODE2, &[]).await;
    let uid = my_uid();
    create_entry(
        &cli,
        "payments-py",
        "payments",
        &[NODE1],
        &[format!("unix:uid:{uid}"), format!("unix:path:{}", python_exe())],
        &["--dns", "payments.corp.example"],
    );
    create_entry(&cli, "orders-rust", "orders", &[NODE1], &[format!("unix:path:{}", this_exe())], &["--path", "rust"]);
    create_entry(&cli, "nobody", "orders", &[NODE1], &["unix:uid:4242".into()], &["--path", "nobody"]);

    // py-spiffe on node1: the Python interpreter's entry, and a chain that
    // verifies against the bundle it received.
    let out_dir = server.scratch().join("py");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = python(&node1.workload_socket(), PY_FETCH, &[out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "py-spiffe: {}\n{}", text(&out), std::fs::read_to_string(node1.agent_log()).unwrap());
    assert!(text(&out).contains("SPIFFE_ID spiffe://corp.example/service/payments\n"), "{}", text(&out));
    let verified = openssl_verify(&out_dir.join("bundle.pem"), &out_dir.join("svid.pem"));
    assert!(verified.status.success(), "openssl verify: {}", text(&verified));
    let key_mode = std::fs::metadata(out_dir.join("svid.key")).unwrap().mode() & 0o777;
    assert_eq!(key_mode, 0o600);
    let (_, leaf) = x509_parser::pem::parse_x509_pem(&std::fs::read(out_dir.join("svid.pem")).unwrap()).unwrap();
    let leaf = leaf.parse_x509().unwrap();
    let san = leaf.subject_alternative_name().unwrap().unwrap().value.general_names.clone();
    assert!(format!("{san:?}").contains("payments.corp.example"), "the entry's DNS name is in the SVID: {san:?}");

    // The Rust spiffe crate on node1: this binary's entry, a different ID.
    let client = spiffe::WorkloadApiClient::connect_to(endpoint(&node1.workload_socket())).await.unwrap();
    let svid = client.fetch_x509_svid().await.unwrap();
    assert_eq!(svid.spiffe_id().to_string(), "spiffe://corp.example/service/orders/rust");
    let bundles = client.fetch_x509_bundles().await.unwrap();
    let td = spiffe::TrustDomain::new(T).unwrap();
    let roots = bundles.get(&td).expect("the tenant's bundle").authorities().to_vec();
    let dir = pki::Files::new();
    let chain: String =
        svid.cert_chain().iter().map(|c| lightwell_ca::pem::encode("CERTIFICATE", c.as_ref())).collect();
    let bundle: String = roots.iter().map(|c| lightwell_ca::pem::encode("CERTIFICATE", c.as_ref())).collect();
    let verified = openssl_verify(&dir.write("bundle.pem", bundle), &dir.write("chain.pem", chain));
    assert!(verified.status.success(), "openssl verify: {}", text(&verified));

    // The same binary on node2, where no entry is assigned: nothing.
    let client2 = spiffe::WorkloadApiClient::connect_to(endpoint(&node2.workload_socket())).await.unwrap();
    let err = client2.fetch_x509_svid().await.unwrap_err();
    // The crate reports the agent's PermissionDenied as NoIdentityIssued.
    assert!(matches!(err, spiffe::workload_api::WorkloadApiError::NoIdentityIssued), "{err:?}");
    let out = python(&node2.workload_socket(), PY_FETCH, &[out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("no identity issued"), "{}", text(&out));

    // A modified agent on node2 asking the server directly with its machine
    // certificate is refused, and nothing is issued; node1's certificate may.
    let count = || async { admin.list_certificates(T, Some("service/payments")).await.unwrap().len() };
    let before = count().await;
    let csr = {
        let key = lightwell_ca::SigningKey::generate(lightwell_ca::KeyAlgorithm::EcdsaP256).unwrap();
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(lightwell_ca::csr::create(&key, "").unwrap())
    };
    let url = format!("{}/v1/tenants/{T}/workloads/payments-py/svid", server.url());
    let as_node = |n: &Node| {
        let chain = std::fs::read_to_string(n.state.join("chain.pem")).unwrap();
        server.mtls_as(&n.state.join("key.pem"), &chain)
    };
    let refused = as_node(&node2).post(&url).json(&SvidRequest { csr: csr.clone() }).send().await.unwrap();
    assert_eq!(refused.status(), 404);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "workload_not_found");
    assert_eq!(count().await, before, "a refused request issues nothing");
    let allowed = as_node(&node1).post(&url).json(&SvidRequest { csr: csr.clone() }).send().await.unwrap();
    assert_eq!(allowed.status(), 201);
    let svid_serial = allowed.json::<serde_json::Value>().await.unwrap()["serial"].as_str().unwrap().to_string();
    assert_eq!(count().await, before + 1);
    // And a user may not ask for a workload's SVID at all.
    let csr_body = serde_json::json!({ "csr": csr.clone() }).to_string();
    let (status, body) = admin_post(&server, &format!("/v1/tenants/{T}/workloads/payments-py/svid"), csr_body).await;
    assert_eq!(status, 403, "{body}");

    // Disabling the machine revokes the SVIDs it holds, though they are the service's certificates.
    cli.ok(&["machine", "disable", NODE1]);
    let cert = admin.certificate(T, &svid_serial).await.unwrap();
    assert!(cert.revoked_at.is_some(), "the disabled machine's SVID is revoked");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workloads_on_two_hosts_talk_mutual_tls_with_only_what_the_workload_api_gave_them() {
    let (server, admin, cli) = tenant().await;
    let node1 = host(&server, &admin, NODE1, &[]).await;
    let node2 = host(&server, &admin, NODE2, &[]).await;
    let python = python_exe();
    create_entry(&cli, "payments", "payments", &[NODE1], &[format!("unix:path:{python}")], &[]);
    create_entry(&cli, "orders", "orders", &[NODE2], &[format!("unix:path:{python}")], &[]);
    let dirs = [server.scratch().join("w1"), server.scratch().join("w2")];
    for (node, dir) in [(&node1, &dirs[0]), (&node2, &dirs[1])] {
        std::fs::create_dir_all(dir).unwrap();
        let out = self::python(&node.workload_socket(), PY_FETCH, &[dir.to_str().unwrap()]);
        assert!(out.status.success(), "py-spiffe on {}: {}", node.hostname, text(&out));
    }
    let out = Command::new("python3")
        .args(["-c", PY_MTLS, dirs[0].to_str().unwrap(), dirs[1].to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "mutual TLS: {}", text(&out));
    let said = text(&out);
    assert!(said.contains("SERVER_SAW spiffe://corp.example/service/orders\n"), "{said}");
    assert!(said.contains("CLIENT_SAW spiffe://corp.example/service/payments\n"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_gets_a_new_svid_before_the_old_expires_and_loses_it_when_the_entry_is_deleted() {
    let (server, admin, cli) = tenant().await;
    let node1 = host(&server, &admin, NODE1, &[]).await;
    let relying = host(&server, &admin, NODE2, &[]).await;
    create_entry(&cli, "short", "orders", &[NODE1], &[format!("unix:path:{}", this_exe())], &["--ttl", "60s"]);
    let client = spiffe::WorkloadApiClient::connect_to(endpoint(&node1.workload_socket())).await.unwrap();
    let mut stream = client.stream_x509_svids().await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    let first_serial = serial_of(first.leaf().as_ref());
    let (_, leaf) = x509_parser::parse_x509_certificate(first.leaf().as_ref()).unwrap();
    let expires = leaf.validity().not_after.timestamp();

    // Rotated at half its life, on the open stream, before it expires.
    let rotated = tokio::time::timeout(Duration::from_secs(50), async {
        loop {
            let next = stream.next().await.unwrap().unwrap();
            if serial_of(next.leaf().as_ref()) != first_serial {
                return next;
            }
        }
    })
    .await
    .expect("a new SVID within 50 s");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!(now < expires, "the new SVID came before the old one expired ({now} >= {expires})");
    let second_serial = serial_of(rotated.leaf().as_ref());

    // Deleting the entry ends the stream and revokes the SVIDs; the relying
    // host's agent has the serial in its CRL within seconds.
    let deleted_at = Instant::now();
    let out = cli.json(&["workload", "delete", "short"]);
    let revoked: Vec<String> = out["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().trim_start_matches('0').to_string())
        .collect();
    assert!(revoked.contains(&second_serial), "{revoked:?} lists {second_serial}");
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.next().await {
                Some(Ok(svid)) if serial_of(svid.leaf().as_ref()) == second_serial => continue,
                other => return format!("{other:?}"),
            }
        }
    })
    .await
    .expect("the stream answers within 10 s of the deletion");
    assert!(ended.contains("NoIdentityIssued") || ended == "None", "the stream loses the identity: {ended}");
    assert!(
        wait_until(Duration::from_secs(10), || revoked_on(&relying).contains(&second_serial)),
        "the relying host's CRL lists the deleted entry's SVID"
    );
    println!("entry deleted → stream ended and relying CRL updated in {:?}", deleted_at.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_callers_get_clear_errors_and_the_agent_keeps_serving() {
    let (server, admin, cli) = tenant().await;
    let node = host(&server, &admin, NODE1, &[("LIGHTWELL_AGENT_WORKLOAD_CONNECTIONS_PER_UID", "8")]).await;
    let socket = node.workload_socket();
    create_entry(&cli, "rust", "orders", &[NODE1], &[format!("unix:path:{}", this_exe())], &[]);
    let fetch = || async {
        let client = spiffe::WorkloadApiClient::connect_to(endpoint(&socket)).await?;
        client.fetch_x509_svid().await
    };
    fetch().await.unwrap();

    // Entries that could never match, or do not parse, are refused and nothing is created.
    for (selectors, why) in [
        (vec!["unix:uid:1", "unix:uid:2"], "contradict"),
        (vec!["unix:path:relative"], "absolute"),
        (vec!["k8s:ns:Default"], "a namespace is"),
        (vec!["k8s:pod-label:app"], "k8s:pod-label:KEY:VALUE"),
        (vec!["bogus"], "unknown selector"),
    ] {
        let mut args = vec!["workload", "create", "bad", "--service", "orders", "--host", NODE1];
        for s in &selectors {
            args.extend(["--selector", s]);
        }
        let out = cli.run(&args);
        assert!(!out.status.success());
        assert!(text(&out).contains(why), "{selectors:?}: {}", text(&out));
    }
    let out = cli.run(&[
        "workload",
        "create",
        "bad",
        "--service",
        "orders",
        "--host",
        "ghost.corp.example",
        "--selector",
        "unix:uid:1",
    ]);
    assert!(!out.status.success() && text(&out).contains("ghost.corp.example"), "{}", text(&out));
    let out = cli.run(&[
        "workload",
        "create",
        "bad",
        "--service",
        "orders",
        "--host",
        NODE1,
        "--selector",
        "unix:uid:1",
        "--dns",
        "evil.example",
    ]);
    assert!(!out.status.success() && text(&out).contains("not registered"), "{}", text(&out));
    let (status, body) = admin_post(
        &server,
        &format!("/v1/tenants/{T}/workloads"),
        "{\"name\":\"bad\",\"service\":\"orders\",\"selectors\":[\"unix:uid:1\"],\"hosts\":[],\"extra\":1}".into(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let names: Vec<String> = admin.list_workloads(T).await.unwrap().into_iter().map(|w| w.name).collect();
    assert_eq!(names, ["rust"], "nothing was created");

    // No security header: refused. An oversized request: refused.
    let out = python(&socket, PY_RAW, &[]);
    let said = text(&out);
    assert!(said.contains("NO_HEADER INVALID_ARGUMENT security header missing"), "{said}");
    assert!(said.contains("OVERSIZED OUT_OF_RANGE"), "{said}");

    // Garbage and a broken HTTP/2 frame: the connection is dropped.
    for junk in [b"GET / HTTP/1.1\r\n\r\n".to_vec(), {
        let mut v = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        v.extend([0xff, 0xff, 0xff, 0x09, 0xff, 0x7f, 0xff, 0xff, 0xff]);
        v.extend(std::iter::repeat_n(0xAAu8, 4096));
        v
    }] {
        let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(&junk);
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    }
    fetch().await.unwrap();

    // Idle connections from one uid are bounded (8 here): of 12 held at
    // once, at most 8 are served (the server's SETTINGS arrive) and the rest
    // are closed at once (connections of the calls above may still hold a
    // place for a moment, so fewer than 8 may be served); the others'
    // release frees the places again.
    let mut held: Vec<_> = (0..12).map(|_| std::os::unix::net::UnixStream::connect(&socket).unwrap()).collect();
    let mut served = 0;
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 9];
        if s.read(&mut buf).unwrap_or(0) > 0 {
            served += 1;
        }
    }
    assert!((1..=8).contains(&served), "{served} of 12 connections from one uid were served; the bound is 8");
    let mut extra = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    extra.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    if served == 8 {
        assert_eq!(extra.read(&mut buf).unwrap(), 0, "a connection beyond the bound is closed");
        assert!(fetch().await.is_err(), "no place for another connection while eight are held");
    }
    drop(held);
    drop(extra);
    assert!(
        {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if fetch().await.is_ok() {
                    break true;
                }
                if Instant::now() > deadline {
                    break false;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        },
        "released connections free their places"
    );
    let mut agent = node;
    assert!(agent.agent_running(), "the agent kept serving");
}

/// Unix seconds now.
fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn py_spiffe_gets_a_jwt_svid_that_the_agent_and_pyjwt_verify_against_the_published_jwks() {
    let (server, admin, cli) = tenant().await;
    let node1 = host(&server, &admin, NODE1, &[]).await;
    create_entry(&cli, "payments-py", "payments", &[NODE1], &[format!("unix:path:{}", python_exe())], &[]);
    let issuer = format!("{}/oidc/{T}", server.url());
    let out = python(&node1.workload_socket(), PY_JWT, &[&issuer, server.ca_file().to_str().unwrap()]);
    let said = text(&out);
    assert!(out.status.success(), "py-spiffe: {said}\n{}", std::fs::read_to_string(node1.agent_log()).unwrap());
    for line in [
        "SPIFFE_ID spiffe://corp.example/service/payments\n",
        "AUDIENCE api db\n",
        "REUSED True\n",
        "BUNDLE_HAS_KID True\n",
        "VALID spiffe://corp.example/service/payments\n",
        "OTHER refused",
        &format!("ISSUER {issuer}\n"),
        "PYJWT_SUB spiffe://corp.example/service/payments 300\n",
        "PYJWT_OTHER refused\n",
    ] {
        assert!(said.contains(line), "{line:?} in:\n{said}");
    }
    // The Rust spiffe crate from this binary, another entry: its token
    // verifies with the crate's own JWT verifier against the bundle it got.
    create_entry(&cli, "orders-rust", "orders", &[NODE1], &[format!("unix:path:{}", this_exe())], &[]);
    let client = spiffe::WorkloadApiClient::connect_to(endpoint(&node1.workload_socket())).await.unwrap();
    // The agent asks the server for new entries at most every 2 s; a client retries.
    let mut svid = client.fetch_jwt_svid(["db"], None).await;
    for _ in 0..20 {
        if svid.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        svid = client.fetch_jwt_svid(["db"], None).await;
    }
    let svid = svid.unwrap_or_else(|e| panic!("{e:?}: {}", std::fs::read_to_string(node1.agent_log()).unwrap()));
    assert_eq!(svid.spiffe_id().to_string(), "spiffe://corp.example/service/orders");
    assert_eq!(svid.hint(), Some("orders-rust"));
    let bundles = client.fetch_jwt_bundles().await.unwrap();
    let checked = spiffe::JwtSvid::parse_and_validate(svid.token(), &bundles, &["db"]).unwrap();
    assert_eq!(checked.spiffe_id(), svid.spiffe_id());
    assert!(spiffe::JwtSvid::parse_and_validate(svid.token(), &bundles, &["other"]).is_err(), "another audience");
    let validated = client.validate_jwt_token("db", svid.token()).await.unwrap();
    assert_eq!(validated.spiffe_id(), svid.spiffe_id());
    assert!(client.validate_jwt_token("other", svid.token()).await.is_err());

    // The same audiences twice made one token: one issuance audited per entry.
    let issued: Vec<_> = admin
        .audit(Some(T), 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "jwt_svid.issue" && e.outcome == "success" && e.target == "workload:payments-py")
        .collect();
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert!(issued[0].detail.contains("aud api db"), "{:?}", issued[0]);

    // The discovery document is public and cacheable; an unknown tenant has none.
    let resp = server.raw().get(format!("{issuer}/jwks")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
    let jwks: serde_json::Value = resp.json().await.unwrap();
    let algs: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["alg"].as_str().unwrap()).collect();
    assert_eq!(algs.len(), 2, "one ES256 and one RS256 key: {jwks}");
    assert!(algs.contains(&"ES256") && algs.contains(&"RS256"), "{jwks}");
    assert!(jwks.to_string().find("\"d\"").is_none(), "no private key member in the JWKS: {jwks}");
    let resp = server.raw().get(format!("{}/oidc/nowhere.example/jwks", server.url())).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_jwt_svid_requests_and_forged_tokens_are_refused_and_issue_nothing() {
    let (server, admin, cli) = tenant().await;
    let node1 = host(&server, &admin, NODE1, &[]).await;
    let node2 = host(&server, &admin, NODE2, &[]).await;
    create_entry(&cli, "payments-py", "payments", &[NODE1], &[format!("unix:path:{}", python_exe())], &[]);
    let issued = || async {
        let log = admin.audit(Some(T), 0, 1000).await.unwrap();
        let count = |outcome: &str| log.iter().filter(|e| e.action == "jwt_svid.issue" && e.outcome == outcome).count();
        (count("success"), count("failure"))
    };

    let out = python(&node1.workload_socket(), PY_JWT_HOSTILE, &[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}\n{}", std::fs::read_to_string(node1.agent_log()).unwrap());
    for line in [
        "NO_HEADER INVALID_ARGUMENT security header missing",
        "NO_AUDIENCE INVALID_ARGUMENT",
        "NINE_AUDIENCES INVALID_ARGUMENT",
        "CONTROL_AUDIENCE INVALID_ARGUMENT",
        "OTHER_ID PERMISSION_DENIED",
        "GARBAGE INVALID_ARGUMENT",
        "ALG_NONE INVALID_ARGUMENT",
        "SWAPPED_SUB INVALID_ARGUMENT invalid JWT-SVID: token signature does not verify",
        "OWN_KEY INVALID_ARGUMENT invalid JWT-SVID: token signature does not verify",
        "HS256 INVALID_ARGUMENT",
        "HUGE INVALID_ARGUMENT",
        "EMPTY_AUDIENCE INVALID_ARGUMENT",
        "EMPTY_SVID INVALID_ARGUMENT",
        "REAL spiffe://corp.example/service/payments",
    ] {
        assert!(said.contains(line), "{line:?} in:\n{said}");
    }
    // 60 new audiences at once: the agent asks the server for the first 16
    // (and 2 more a second), refuses the rest; the burst's tokens are audited.
    let burst = said.lines().find_map(|l| l.strip_prefix("BURST ")).unwrap();
    let [ok, exhausted, total]: [usize; 3] =
        burst.split(' ').map(|n| n.parse().unwrap()).collect::<Vec<_>>().try_into().unwrap();
    assert_eq!(ok + exhausted, total, "only successes and RESOURCE_EXHAUSTED: {burst}");
    assert!(exhausted > 0 && ok >= 15, "the bucket (16, then 2/s) shows: {burst}");
    assert_eq!(issued().await, (1 + ok, 0), "only the good requests reached the server");

    // Python on node2 matches no entry there: no token.
    let out = python(&node2.workload_socket(), PY_JWT, &["https://unused", "/dev/null"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("no identity issued"), "{}", text(&out));

    // A modified agent on node2 asking the server directly for node1's
    // entry is refused and audited; a user may not ask at all; bad bodies
    // are refused before anything is signed.
    let url = format!("{}/v1/tenants/{T}/workloads/payments-py/jwt-svid", server.url());
    let as_node = |n: &Node| {
        let chain = std::fs::read_to_string(n.state.join("chain.pem")).unwrap();
        server.mtls_as(&n.state.join("key.pem"), &chain)
    };
    let body = serde_json::json!({ "audience": ["db"] });
    let refused = as_node(&node2).post(&url).json(&body).send().await.unwrap();
    assert_eq!(refused.status(), 404);
    assert_eq!(refused.json::<serde_json::Value>().await.unwrap()["error"]["code"], "workload_not_found");
    assert_eq!(issued().await, (1 + ok, 1), "the refusal is audited");
    let (status, text_) =
        admin_post(&server, &format!("/v1/tenants/{T}/workloads/payments-py/jwt-svid"), body.to_string()).await;
    assert_eq!(status, 403, "{text_}");
    for (bad, why) in [
        (serde_json::json!({ "audience": [] }), "at least one audience"),
        (serde_json::json!({ "audience": ["db"], "ttl": "2h" }), "3600 seconds"),
        (serde_json::json!({ "audience": ["db"], "ttl": "1s" }), "30 to"),
        (serde_json::json!({ "audience": ["db"], "sub": "spiffe://corp.example/service/admin" }), "unknown field"),
        (serde_json::json!({ "audience": "db" }), ""),
    ] {
        let resp = as_node(&node1).post(&url).json(&bad).send().await.unwrap();
        let status = resp.status().as_u16();
        let text_ = resp.text().await.unwrap();
        assert_eq!(status, 400, "{bad}: {text_}");
        assert!(text_.contains(why), "{bad}: {text_}");
    }
    let (after, _) = issued().await;
    assert_eq!(after, 1 + ok, "nothing was issued for a bad request");

    // The machine it is assigned to may, and the token names only its entry.
    let resp = as_node(&node1).post(&url).json(&serde_json::json!({ "audience": ["db"], "ttl": "60s" })).send().await;
    let info: serde_json::Value = resp.unwrap().json().await.unwrap();
    assert_eq!(info["spiffe_id"], "spiffe://corp.example/service/payments", "{info}");
    let expires = info["expires_at"].as_i64().unwrap();
    assert!((expires - unix_now() - 60).abs() <= 5, "{info}");
}

/// The tenant's SPIFFE bundle endpoint read as a federating trust domain
/// would (Python's urllib and `cryptography`): prints the sequence and
/// refresh hint, one line per key saying whether an X.509 authority's JWK
/// matches the certificate in its `x5c`, and writes those certificates as PEM.
const PY_BUNDLE: &str = r#"
import base64, json, ssl, sys, urllib.request
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
url, ca, out = sys.argv[1:4]
resp = urllib.request.urlopen(url, context=ssl.create_default_context(cafile=ca))
print("TYPE", resp.headers["content-type"])
doc = json.load(resp)
print("SEQUENCE", doc["spiffe_sequence"])
print("HINT", doc["spiffe_refresh_hint"])
def b64u(i, size):
    return base64.urlsafe_b64encode(i.to_bytes(size, "big")).rstrip(b"=").decode()
pems = []
for k in doc["keys"]:
    if k["use"] == "x509-svid":
        assert len(k["x5c"]) == 1, k
        cert = x509.load_der_x509_certificate(base64.b64decode(k["x5c"][0]))
        pub = cert.public_key()
        if isinstance(pub, ec.EllipticCurvePublicKey):
            n = pub.public_numbers()
            size = (pub.curve.key_size + 7) // 8
            same = k["kty"] == "EC" and b64u(n.x, size) == k["x"] and b64u(n.y, size) == k["y"]
        else:
            n = pub.public_numbers()
            same = k["kty"] == "RSA" and b64u(n.n, (n.n.bit_length() + 7) // 8) == k["n"]
        print("X509", same, cert.subject.rfc4514_string())
        pems.append(cert.public_bytes(serialization.Encoding.PEM))
    elif k["use"] == "jwt-svid":
        print("JWT", k["kid"])
open(out, "wb").write(b"".join(pems))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_spiffe_bundle_endpoint_lets_another_trust_domain_validate_this_ones_svids_and_moves_its_sequence() {
    let (server, admin, cli) = tenant().await;
    let node1 = host(&server, &admin, NODE1, &[]).await;
    create_entry(&cli, "payments-py", "payments", &[NODE1], &[format!("unix:path:{}", python_exe())], &[]);
    let url = format!("{}/spiffe/{T}/bundle", server.url());
    let dir = server.scratch().join("federated");
    std::fs::create_dir_all(&dir).unwrap();
    let roots = dir.join("roots.pem");
    let read = || {
        let out = Command::new("python3")
            .args(["-c", PY_BUNDLE, &url, server.ca_file().to_str().unwrap(), roots.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "bundle endpoint: {}", text(&out));
        text(&out)
    };
    let said = read();
    assert!(said.contains("TYPE application/json\n") && said.contains("HINT 300\n"), "{said}");
    assert!(said.contains("X509 True"), "an X.509 authority: {said}");
    assert!(!said.contains("X509 False"), "every X.509 authority's key is its certificate's: {said}");
    // The JWT authorities are the tenant's token keys, as its JWKS lists them.
    let jwks: serde_json::Value =
        server.raw().get(format!("{}/oidc/{T}/jwks", server.url())).send().await.unwrap().json().await.unwrap();
    for key in jwks["keys"].as_array().unwrap() {
        assert!(said.contains(&format!("JWT {}\n", key["kid"].as_str().unwrap())), "{key} in {said}");
    }
    let sequence =
        |said: &str| -> i64 { said.lines().find_map(|l| l.strip_prefix("SEQUENCE ")).unwrap().parse().unwrap() };
    let first = sequence(&said);

    // A workload's SVID verifies against the endpoint's roots alone: what a
    // federated peer holds.
    let svid_dir = dir.join("svid");
    std::fs::create_dir_all(&svid_dir).unwrap();
    let out = python(&node1.workload_socket(), PY_FETCH, &[svid_dir.to_str().unwrap()]);
    assert!(out.status.success(), "py-spiffe: {}", text(&out));
    let verified = openssl_verify(&roots, &svid_dir.join("svid.pem"));
    assert!(verified.status.success(), "openssl verify: {}", text(&verified));

    // A revocation changes the tenant's trust state: the sequence moves.
    cli.ok(&["workload", "delete", "payments-py"]);
    assert!(
        wait_until(Duration::from_secs(20), || sequence(&read()) > first),
        "the sequence moved past {first} after a revocation"
    );

    // Unknown and malformed tenants have no bundle.
    for tenant in ["nowhere.example", "..", "%00"] {
        let resp = server.raw().get(format!("{}/spiffe/{tenant}/bundle", server.url())).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{tenant}");
    }
}

/// The partner tenant of the federation tests.
const P: &str = "partner.example";
const PARTNER_NODE: &str = "node1.partner.example";

/// py-spiffe on a federated host: saves its X.509-SVID and the bundle of
/// trust domain `peer` (from `FetchX509Bundles`), says where the peer's
/// bundles appeared, prints a JWT-SVID for audience `partner`, and
/// validates a peer's token if given (through the agent, then with
/// py-spiffe's own check against the peer's JWT bundle).
const PY_FEDERATED: &str = r#"
import os, sys
from cryptography.hazmat.primitives import serialization
from spiffe import JwtSvid, TrustDomain, WorkloadApiClient
out, peer = sys.argv[1], TrustDomain(sys.argv[2])
token = sys.argv[3] if len(sys.argv) > 3 else ""
client = WorkloadApiClient(os.environ["SPIFFE_ENDPOINT_SOCKET"], default_timeout=20)
try:
    ctx = client.fetch_x509_context()
    bundles = client.fetch_x509_bundles()
    jwt_bundles = client.fetch_jwt_bundles()
    mine = client.fetch_jwt_svid(audience={"partner"})
except Exception as e:
    print("ERROR", type(e).__name__, e)
    sys.exit(3)
ctx.default_svid.save(out + "/svid.pem", out + "/svid.key", serialization.Encoding.PEM)
print("IN_SVID_RESPONSE", ctx.x509_bundle_set.get_bundle_for_trust_domain(peer) is not None)
bundle = bundles.get_bundle_for_trust_domain(peer)
print("IN_BUNDLES", bundle is not None)
if bundle is not None:
    bundle.save(out + "/bundle.pem", serialization.Encoding.PEM)
jwt_bundle = jwt_bundles.get_bundle_for_trust_domain(peer)
print("IN_JWT_BUNDLES", jwt_bundle is not None)
print("MY_JWT", mine.token)
if token:
    try:
        print("AGENT_VALID", client.validate_jwt_svid(token, "partner").spiffe_id)
    except Exception as e:
        print("AGENT_REFUSED", type(e).__name__, e)
    if jwt_bundle is not None:
        print("PY_VALID", JwtSvid.parse_and_validate(token, jwt_bundle, {"partner"}).spiffe_id)
client.close()
"#;

/// What [`PY_FEDERATED`] printed after `key `.
fn said_value<'a>(said: &'a str, key: &str) -> Option<&'a str> {
    said.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
}

/// The federation record of `trust_domain` as the CLI shows it.
fn federation(cli: &Cli, trust_domain: &str) -> serde_json::Value {
    cli.json(&["federation", "show", trust_domain])
}

#[tokio::test(flavor = "multi_thread")]
async fn two_federated_tenants_workloads_validate_each_others_svids_and_talk_mutual_tls_until_unfederated() {
    let server = TestServer::start_with(&["--federation-allow-loopback"]);
    let admin = pki::tenant(&server, T, None).await;
    pki::host(&admin, T, "services", "payments", &[], &[]).await;
    let partner = pki::tenant(&server, P, None).await;
    pki::host(&partner, P, "services", "orders", &[], &[]).await;
    let (cli, partner_cli) = (pki::admin_cli(&server, T), pki::admin_cli(&server, P));
    let node = host(&server, &admin, NODE1, &[]).await;
    let partner_node = host_in(&server, &partner, P, PARTNER_NODE, &[]).await;
    let by_path = format!("unix:path:{}", python_exe());
    create_entry(&cli, "payments", "payments", &[NODE1], std::slice::from_ref(&by_path), &[]);
    create_entry(&partner_cli, "orders", "orders", &[PARTNER_NODE], &[by_path], &[]);

    // Each tenant reads the other's bundle endpoint, trusting the server's TLS CA.
    let ca = server.ca_file();
    for (cli, other) in [(&cli, P), (&partner_cli, T)] {
        let url = format!("{}/spiffe/{other}/bundle", server.url());
        cli.ok(&["federation", "create", other, "--bundle-endpoint", &url, "--endpoint-ca", ca.to_str().unwrap()]);
    }
    for (cli, other) in [(&cli, P), (&partner_cli, T)] {
        assert!(
            wait_until(Duration::from_secs(20), || federation(cli, other)["sequence"].is_i64()),
            "the bundle of {other} was fetched: {}",
            federation(cli, other)
        );
        let shown = federation(cli, other);
        assert_eq!(shown["last_error"], serde_json::Value::Null, "{shown}");
        assert!(
            shown["x509_authorities"].as_u64() >= Some(1) && shown["jwt_authorities"].as_u64() >= Some(1),
            "{shown}"
        );
    }

    // Each side's workload receives the peer's bundles from its own agent
    // (within moments of the fetch: a `federation` trust change).
    let dirs = [server.scratch().join("fed-corp"), server.scratch().join("fed-partner")];
    let run = |node: &Node, dir: &Path, peer: &str, token: &str| {
        std::fs::create_dir_all(dir).unwrap();
        let mut args = vec![dir.to_str().unwrap(), peer];
        if !token.is_empty() {
            args.push(token);
        }
        let out = python(&node.workload_socket(), PY_FEDERATED, &args);
        assert!(out.status.success(), "py-spiffe on {}: {}", node.hostname, text(&out));
        text(&out)
    };
    let federated = |said: &str| {
        ["IN_SVID_RESPONSE", "IN_BUNDLES", "IN_JWT_BUNDLES"].iter().all(|k| said_value(said, k) == Some("True"))
    };
    let mut said = String::new();
    assert!(
        wait_until(Duration::from_secs(20), || {
            said = run(&partner_node, &dirs[1], T, "");
            federated(&said)
        }),
        "the partner's workload got corp.example's bundles: {said}"
    );
    let partner_token = said_value(&said, "MY_JWT").unwrap().to_string();
    assert!(
        wait_until(Duration::from_secs(20), || {
            said = run(&node, &dirs[0], P, &partner_token);
            federated(&said)
        }),
        "corp.example's workload got the partner's bundles: {said}"
    );
    assert_eq!(said_value(&said, "AGENT_VALID"), Some("spiffe://partner.example/service/orders"), "{said}");
    assert_eq!(said_value(&said, "PY_VALID"), Some("spiffe://partner.example/service/orders"), "{said}");
    let token = said_value(&said, "MY_JWT").unwrap().to_string();
    let said = run(&partner_node, &dirs[1], T, &token);
    assert_eq!(said_value(&said, "AGENT_VALID"), Some("spiffe://corp.example/service/payments"), "{said}");

    // Mutual TLS across the trust domains: the partner's server trusts only
    // corp.example's bundle, corp.example's client only the partner's.
    let out = Command::new("python3")
        .args(["-c", PY_MTLS, dirs[1].to_str().unwrap(), dirs[0].to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "mutual TLS: {}", text(&out));
    let seen = text(&out);
    assert!(seen.contains("SERVER_SAW spiffe://corp.example/service/payments\n"), "{seen}");
    assert!(seen.contains("CLIENT_SAW spiffe://partner.example/service/orders\n"), "{seen}");

    // Unfederated: corp.example's workloads lose the partner's bundles and
    // its agent no longer validates the partner's tokens.
    cli.ok(&["federation", "delete", P]);
    let mut said = String::new();
    assert!(
        wait_until(Duration::from_secs(20), || {
            said = run(&node, &dirs[0], P, &partner_token);
            said_value(&said, "IN_BUNDLES") == Some("False")
        }),
        "the partner's bundle is gone: {said}"
    );
    assert!(said.contains("AGENT_REFUSED"), "{said}");
    assert!(said_value(&said, "IN_JWT_BUNDLES") == Some("False"), "{said}");
    let log = cli.json(&["audit", "list"]).to_string();
    assert!(log.contains("federation.create") && log.contains("federation.delete"), "audited: {log}");
}

/// An HTTPS server of files in a directory (Python's `http.server`), plus
/// `/redirect` (302 to `/good`) and `/endless` (a body past 256 KiB without
/// a length); prints its port.
const PY_ENDPOINT: &str = r#"
import http.server, os, ssl, sys
root, cert, key = sys.argv[1:4]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/redirect":
            self.send_response(302); self.send_header("Location", "/good"); self.end_headers(); return
        if self.path == "/endless":
            self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers()
            self.wfile.write(b'{"keys": [' + b" " * (400 * 1024)); return
        path = os.path.join(root, os.path.basename(self.path))
        if not os.path.isfile(path):
            self.send_response(404); self.end_headers(); return
        body = open(path, "rb").read()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves `dir` over HTTPS on loopback with a fresh self-signed
/// certificate for 127.0.0.1; returns the server, its base URL and the certificate file.
fn hostile_endpoint(dir: &Path) -> (Child, String, std::path::PathBuf) {
    let (cert, key) = (dir.join("endpoint.pem"), dir.join("endpoint.key"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl req: {}", text(&out));
    let mut child = Command::new("python3")
        .args(["-c", PY_ENDPOINT])
        .arg(dir)
        .arg(&cert)
        .arg(&key)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("endpoint port: {line:?}"));
    (Child(child), format!("https://127.0.0.1:{port}"), cert)
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_federation_registrations_and_endpoints_are_refused_and_the_bundle_held_stays() {
    let server = TestServer::start_with(&["--federation-allow-loopback"]);
    let admin = pki::tenant(&server, T, None).await;
    pki::tenant(&server, P, None).await;
    let cli = pki::admin_cli(&server, T);
    let dir = server.scratch().join("endpoint");
    std::fs::create_dir_all(&dir).unwrap();
    // A real bundle (the partner tenant's), served with a sequence of 50.
    let url = format!("{}/spiffe/{P}/bundle", server.url());
    let mut real: serde_json::Value = server.raw().get(&url).send().await.unwrap().json().await.unwrap();
    real["spiffe_sequence"] = 50.into();
    std::fs::write(dir.join("good"), real.to_string()).unwrap();
    std::fs::write(dir.join("big"), format!("{{\"keys\": [], \"pad\": \"{}\"}}", "x".repeat(300 * 1024))).unwrap();
    std::fs::write(dir.join("html"), "<html>not a bundle</html>").unwrap();
    let (_endpoint, base, endpoint_ca) = hostile_endpoint(&dir);
    let endpoint_ca = endpoint_ca.to_str().unwrap();

    // Registrations that are refused outright, changing nothing.
    let partner_bundle = real.to_string();
    let refused: Vec<(serde_json::Value, &str)> = vec![
        (serde_json::json!({"trust_domain": "a.example", "bundle_endpoint_url": "http://127.0.0.1/b"}), "not https://"),
        (
            serde_json::json!({"trust_domain": "a.example", "bundle_endpoint_url": "https://u:p@a.example/"}),
            "user information",
        ),
        (serde_json::json!({"trust_domain": T, "bundle": partner_bundle}), "own trust domain"),
        (serde_json::json!({"trust_domain": "Partner.Example", "bundle": partner_bundle}), "invalid trust domain"),
        (serde_json::json!({"trust_domain": "a.example"}), "bundle endpoint URL or its bundle"),
        (
            serde_json::json!({"trust_domain": "a.example", "bundle": partner_bundle, "bundle_endpoint_url": format!("{base}/good")}),
            "not both",
        ),
        (serde_json::json!({"trust_domain": "a.example", "bundle": "{\"keys\": 5}"}), "refused"),
        (serde_json::json!({"trust_domain": "a.example", "bundle": "{\"keys\": []}"}), "no X.509 or JWT authority"),
        (
            serde_json::json!({"trust_domain": "a.example", "bundle_endpoint_url": format!("{base}/good"), "endpoint_ca_pem": "garbage"}),
            "endpoint CA",
        ),
        (serde_json::json!({"trust_domain": "a.example", "bundle": partner_bundle, "extra": 1}), "unknown field"),
    ];
    for (body, why) in &refused {
        let (status, answer) = admin_post(&server, &format!("/v1/tenants/{T}/federations"), body.to_string()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer.contains(why), "{body}: {answer} should say {why:?}");
    }
    // Only CA administrators federate; anyone in the tenant may look.
    let alice = pki::user(&server, &admin, T, "alice").await;
    let req = lightwell_proto::CreateFederationRequest {
        trust_domain: "a.example".into(),
        bundle: Some(partner_bundle.clone()),
        ..Default::default()
    };
    let err = alice.create_federation(T, &req).await.unwrap_err().to_string();
    assert!(err.contains("forbidden") || err.contains("not allowed"), "{err}");
    assert!(cli.json(&["federation", "list"]).as_array().unwrap().is_empty(), "nothing was registered");

    // Endpoints that answer badly: each keeps its error, and no bundle.
    let cases = [
        ("redirect.example", format!("{base}/redirect"), Some(endpoint_ca), "redirects are not followed"),
        ("big.example", format!("{base}/big"), Some(endpoint_ca), "larger than 256 KiB"),
        ("endless.example", format!("{base}/endless"), Some(endpoint_ca), "larger than 256 KiB"),
        ("html.example", format!("{base}/html"), Some(endpoint_ca), "refused"),
        ("missing.example", format!("{base}/missing"), Some(endpoint_ca), "HTTP 404"),
        ("untrusted.example", format!("{base}/good"), None, "reading the endpoint failed"),
        ("metadata.example", "https://169.254.169.254/latest/bundle".to_string(), None, "does not read bundles from"),
    ];
    for (td, url, ca, _) in &cases {
        let mut args = vec!["federation", "create", td, "--bundle-endpoint", url];
        if let Some(ca) = ca {
            args.extend(["--endpoint-ca", ca]);
        }
        cli.ok(&args);
    }
    for (td, _, _, why) in &cases {
        assert!(
            wait_until(Duration::from_secs(20), || federation(&cli, td)["last_error"].is_string()),
            "{td} was read: {}",
            federation(&cli, td)
        );
        let shown = federation(&cli, td);
        assert!(shown["last_error"].as_str().unwrap().contains(why), "{td}: {shown} should say {why:?}");
        assert_eq!(shown["sequence"], serde_json::Value::Null, "{td} holds no bundle: {shown}");
    }

    // A good endpoint, then one whose sequence goes back: refused, the
    // bundle held stays.
    let good_url = format!("{base}/good");
    let register_good =
        ["federation", "create", "good.example", "--bundle-endpoint", &good_url, "--endpoint-ca", endpoint_ca];
    cli.ok(&register_good);
    assert!(
        wait_until(Duration::from_secs(20), || federation(&cli, "good.example")["sequence"] == 50),
        "the good bundle was accepted: {}",
        federation(&cli, "good.example")
    );
    real["spiffe_sequence"] = 40.into();
    std::fs::write(dir.join("good"), real.to_string()).unwrap();
    cli.ok(&["federation", "refresh", "good.example"]);
    assert!(
        wait_until(Duration::from_secs(20), || federation(&cli, "good.example")["last_error"].is_string()),
        "the rollback was read: {}",
        federation(&cli, "good.example")
    );
    let shown = federation(&cli, "good.example");
    assert!(shown["last_error"].as_str().unwrap().contains("went back from 50 to 40"), "{shown}");
    assert_eq!(shown["sequence"], 50, "the bundle held stays: {shown}");
    let bundles = admin.federated_bundles(T).await.unwrap();
    let names: Vec<&str> = bundles.iter().map(|b| b.trust_domain.as_str()).collect();
    assert_eq!(names, ["good.example"], "only the accepted bundle reaches agents");
    assert!(bundles[0].bundle.contains("\"spiffe_sequence\":50"), "{}", bundles[0].bundle);
    let (status, answer) = admin_post(
        &server,
        &format!("/v1/tenants/{T}/federations"),
        serde_json::json!({"trust_domain": "good.example", "bundle": partner_bundle}).to_string(),
    )
    .await;
    assert_eq!(status, 409, "{answer}");

    // A bundle given as it is (a SPIRE server's `bundle show -format spiffe`).
    let file = dir.join("static.json");
    std::fs::write(&file, &partner_bundle).unwrap();
    let shown = cli.json(&["federation", "create", "static.example", "--bundle", file.to_str().unwrap()]);
    assert_eq!(shown["sequence"], 50, "{shown}");
    assert_eq!(shown["next_fetch_at"], serde_json::Value::Null, "{shown}");
    assert_eq!(cli.fails_with(&["federation", "refresh", "static.example"]), "invalid_request", "it has no endpoint");

    // Without --federation-allow-loopback, the server does not read loopback endpoints.
    let strict = TestServer::start();
    pki::tenant(&strict, T, None).await;
    let strict_cli = pki::admin_cli(&strict, T);
    strict_cli.ok(&register_good);
    assert!(
        wait_until(Duration::from_secs(20), || federation(&strict_cli, "good.example")["last_error"].is_string()),
        "the loopback endpoint was considered"
    );
    let shown = federation(&strict_cli, "good.example");
    assert!(shown["last_error"].as_str().unwrap().contains("loopback without --federation-allow-loopback"), "{shown}");
}
