//! nginx, a TLS server nobody here wrote, configured only from the files a
//! joined host's real agent keeps: its chain and key, the tenant bundle and
//! `crl.pem` (every CRL of the tenant's CAs), reloaded by the agent's
//! `on_trust_change` hook. It accepts a user's client certificate, and
//! refuses it after the revocation with no step but the hook. The recipe
//! that names one issuing CA's CRL (what docs/agent.md used to show) makes
//! nginx refuse every client, because `ssl_crl` checks the whole chain.
//! The same nginx staples Lightwell's OCSP response for the host's
//! certificate (`ssl_stapling on; ssl_stapling_verify on;`).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lightwell_proto::{CreateJoinTokenRequest, RevokeRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::node::{Identity, Node, free_port, wait_until};
use lightwell_testkit::pki::{self, USER_PASSWORD};

const T: &str = "corp.example";
const HOST: &str = "web.corp.example";

/// An nginx master process on a prefix dir of its own, stopped on drop.
struct Nginx {
    prefix: PathBuf,
    conf: PathBuf,
}

impl Nginx {
    /// Writes the configuration: one mTLS server per `(port, crl file)`,
    /// and on `stapling` a server without client certificates that staples
    /// the OCSP response for its certificate, fetched from the URL the
    /// certificate names and verified against the tenant bundle.
    fn new(prefix: &Path, state: &Path, servers: &[(u16, PathBuf)], stapling: u16) -> Self {
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        let mut blocks = format!(
            "  server {{\n    listen 127.0.0.1:{stapling} ssl;\n    server_name {HOST};\n\
             \x20   ssl_certificate {state}/chain.pem;\n    ssl_certificate_key {state}/key.pem;\n\
             \x20   ssl_stapling on;\n    ssl_stapling_verify on;\n    ssl_trusted_certificate {state}/bundle.pem;\n\
             \x20   location / {{ return 200 \"stapled\\n\"; }}\n  }}\n",
            state = state.display(),
        );
        for (port, crl) in servers {
            blocks.push_str(&format!(
                "  server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name {HOST};\n\
                 \x20   ssl_certificate {state}/chain.pem;\n    ssl_certificate_key {state}/key.pem;\n\
                 \x20   ssl_client_certificate {state}/bundle.pem;\n    ssl_verify_client on;\n\
                 \x20   ssl_verify_depth 4;\n    ssl_crl {crl};\n\
                 \x20   location / {{ return 200 \"hello $ssl_client_s_dn\\n\"; }}\n  }}\n",
                state = state.display(),
                crl = crl.display(),
            ));
        }
        let conf = prefix.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon on;\npid {p}/nginx.pid;\nerror_log {p}/logs/error.log info;\nevents {{}}\n\
                 http {{\n  access_log {p}/logs/access.log;\n  client_body_temp_path {p}/body;\n\
                 \x20 proxy_temp_path {p}/proxy;\n  fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n\
                 \x20 scgi_temp_path {p}/scgi;\n{blocks}}}\n",
                p = prefix.display()
            ),
        )
        .unwrap();
        Self { prefix: prefix.to_path_buf(), conf }
    }

    fn command(&self) -> String {
        format!("nginx -p {} -c {}", self.prefix.display(), self.conf.display())
    }

    fn start(&self) {
        let out = Command::new("sh").args(["-c", &self.command()]).output().unwrap();
        assert!(out.status.success(), "nginx did not start: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// How many times nginx was told to reload (its error log at level info).
    fn reloads(&self) -> usize {
        std::fs::read_to_string(self.prefix.join("logs/error.log")).unwrap_or_default().matches("reconfiguring").count()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("sh").args(["-c", &format!("{} -s stop", self.command())]).output();
    }
}

/// `curl` to nginx on `port` presenting `client`: the HTTP status (0 when
/// the TLS handshake itself failed) and the body.
fn get(port: u16, bundle: &Path, client: &Identity) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", "--resolve"])
        .arg(format!("{HOST}:{port}:127.0.0.1"))
        .arg("--cacert")
        .arg(bundle)
        .arg("--cert")
        .arg(&client.cert)
        .arg("--key")
        .arg(&client.key)
        .arg(format!("https://{HOST}:{port}/"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A host `HOST` joined with a token bound to its name; returns the hosts dir and the node.
async fn joined_host(server: &TestServer, admin: &lightwell_client::Client) -> (PathBuf, Node) {
    let dir = server.scratch().join("hosts");
    std::fs::create_dir_all(&dir).unwrap();
    let web = Node::new(&dir, HOST);
    let req = CreateJoinTokenRequest { hostname: Some(HOST.into()), ..Default::default() };
    let token = admin.create_join_token(T, &req).await.unwrap().token.unwrap();
    let out = web.join(server, T, Some(&token));
    assert!(out.status.success(), "join: {}", String::from_utf8_lossy(&out.stderr));
    (dir, web)
}

/// A user's certificate, requested with the CLI after a password login; the key is made locally.
fn user_identity(server: &TestServer, dir: &Path, user: &str) -> Identity {
    let cli = pki::login_cli(server, T, user, USER_PASSWORD);
    let (key, cert) = (dir.join(format!("{user}.key")), dir.join(format!("{user}.pem")));
    cli.ok(&["cert", "request", "--key-out", key.to_str().unwrap(), "--out", cert.to_str().unwrap()]);
    Identity { cert: cert.clone(), chain: cert, key }
}

/// A certificate's serial, lower-case hex, as OpenSSL reads it.
fn serial_of(cert: &Path) -> String {
    let out = Command::new("openssl").args(["x509", "-noout", "-serial", "-in"]).arg(cert).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().trim_start_matches("serial=").to_lowercase()
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_on_the_agents_files_staples_ocsp_and_on_crl_pem_refuses_a_client_after_its_revocation() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    pki::user(&server, &admin, T, "bob").await;
    let (dir, mut web) = joined_host(&server, &admin).await;
    let state = web.state.clone();

    // The tenant has a root and an issuing CA: crl.pem holds both CRLs.
    let cas = admin.list_cas(T).await.unwrap();
    assert!(cas.len() >= 2, "a root and an issuing CA: {cas:?}");
    let bundle_crls = std::fs::read_to_string(state.join("crl.pem")).unwrap();
    assert_eq!(bundle_crls.matches("BEGIN X509 CRL").count(), cas.len(), "one CRL per CA in crl.pem");
    let issuing = cas.iter().find(|c| c.is_default).unwrap();

    // Two servers: the agent's crl.pem, and the single issuing-CA CRL.
    let (good, single, stapling) = (free_port(), free_port(), free_port());
    let nginx = Nginx::new(
        &dir.join("nginx"),
        &state,
        &[(good, state.join("crl.pem")), (single, state.join(format!("crl/{}.crl.pem", issuing.id)))],
        stapling,
    );
    nginx.start();
    let agent_toml = state.join("agent.toml");
    let config = std::fs::read_to_string(&agent_toml).unwrap();
    let hook = format!("on_trust_change = \"{} -s reload\"\n", nginx.command());
    let config = if config.contains("[hooks]\n") {
        config.replacen("[hooks]\n", &format!("[hooks]\n{hook}"), 1)
    } else {
        format!("{config}\n[hooks]\n{hook}")
    };
    std::fs::write(&agent_toml, config).unwrap();
    web.start_agent();

    let bob = user_identity(&server, &dir, "bob");
    let bundle = state.join("bundle.pem");
    // nginx fetches the OCSP response on a first handshake and staples it
    // from then on: Lightwell's responder, named in the machine
    // certificate's AIA, answers it, and nginx verified it (ssl_stapling_verify).
    let stapled = || {
        let out = Command::new("openssl")
            .args(["s_client", "-status", "-servername", HOST, "-connect"])
            .arg(format!("127.0.0.1:{stapling}"))
            .arg("-CAfile")
            .arg(&bundle)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        wait_until(Duration::from_secs(20), || stapled().contains("OCSP Response Status: successful")),
        "nginx staples an OCSP response:\n{}\nnginx log:\n{}",
        stapled(),
        std::fs::read_to_string(dir.join("nginx/logs/error.log")).unwrap_or_default()
    );
    let staple = stapled();
    assert!(staple.contains("Cert Status: good"), "{staple}");
    assert!(staple.contains("Verify return code: 0 (ok)"), "{staple}");
    let (status, body) = get(good, &bundle, &bob);
    assert_eq!(status, 200, "nginx on crl.pem accepts bob: {body}");
    assert!(body.contains("CN=bob"), "nginx saw bob's certificate: {body}");
    let (status, body) = get(single, &bundle, &bob);
    assert_eq!(status, 400, "one issuing CA's CRL leaves the root's missing: nginx refuses everyone: {body}");
    assert!(body.contains("SSL certificate error"), "{body}");

    // The revocation: nothing but the agent (its push and its hook) runs.
    let serial = serial_of(&bob.cert);
    let reloads = nginx.reloads();
    let revoked_at = Instant::now();
    let reason = RevokeRequest { reason: Some("key-compromise".into()), principal: None };
    admin.revoke_certificate(T, &serial, &reason).await.unwrap();
    // A generous bound for a loaded machine; the latency target is the benchmark's.
    assert!(
        wait_until(Duration::from_secs(30), || get(good, &bundle, &bob).0 == 400),
        "nginx refuses bob after the revocation; agent log:\n{}",
        std::fs::read_to_string(web.agent_log()).unwrap_or_default()
    );
    eprintln!("nginx refused the revoked certificate {:?} after the revoke call", revoked_at.elapsed());
    assert!(nginx.reloads() > reloads, "the agent's hook reloaded nginx");
    assert!(std::fs::read_to_string(state.join("crl.pem")).unwrap() != bundle_crls, "crl.pem was rewritten");

    // Another user's certificate is still accepted: the refusal is the revocation.
    pki::user(&server, &admin, T, "carol").await;
    let carol = user_identity(&server, &dir, "carol");
    let (status, body) = get(good, &bundle, &carol);
    assert_eq!(status, 200, "nginx still accepts carol: {body}");
}

/// What `openssl ocsp` says of the host's `ocsp.der`, verified against the
/// tenant bundle, for its `cert.pem`.
fn staple_status(state: &Path) -> String {
    let chain = std::fs::read_to_string(state.join("chain.pem")).unwrap();
    let second = chain.match_indices("-----BEGIN CERTIFICATE-----").nth(1).unwrap().0;
    let issuer = state.with_extension("issuer.pem");
    std::fs::write(&issuer, &chain[second..]).unwrap();
    let out = Command::new("openssl")
        .args(["ocsp", "-respin"])
        .arg(state.join("ocsp.der"))
        .arg("-issuer")
        .arg(&issuer)
        .arg("-cert")
        .arg(state.join("cert.pem"))
        .arg("-CAfile")
        .arg(state.join("bundle.pem"))
        .output()
        .unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_keeps_its_certificates_ocsp_response_to_staple_and_refreshes_it_on_revocation() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    let (_, mut web) = joined_host(&server, &admin).await;
    let state = web.state.clone();
    web.start_agent();

    // The staple answers for the certificate beside it, signed by the
    // tenant's responder: OpenSSL verifies it against the bundle.
    assert!(
        wait_until(Duration::from_secs(20), || state.join("ocsp.der").exists()),
        "the agent wrote ocsp.der; its log:\n{}",
        std::fs::read_to_string(web.agent_log()).unwrap_or_default()
    );
    let said = staple_status(&state);
    assert!(said.contains("Response verify OK"), "{said}");
    assert!(said.contains(": good"), "{said}");

    // The machine certificate revoked: the pushed CRL makes the agent ask
    // again, and the staple now says so (clients of a stapling server learn it).
    let serial = serial_of(&state.join("cert.pem"));
    let reason = RevokeRequest { reason: Some("superseded".into()), principal: None };
    admin.revoke_certificate(T, &serial, &reason).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || staple_status(&state).contains(": revoked")),
        "the staple follows the revocation: {}\nagent log:\n{}",
        staple_status(&state),
        std::fs::read_to_string(web.agent_log()).unwrap_or_default()
    );
    let said = staple_status(&state);
    assert!(said.contains("Response verify OK") && said.contains("Reason: superseded"), "{said}");
}
