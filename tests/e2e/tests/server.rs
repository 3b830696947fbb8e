//! The server binary itself: init, trust by fingerprint, configuration,
//! health, OpenAPI, and client certificates handed to handlers.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use lightwell_testkit::{TestServer, bin};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_creates_a_private_data_dir_and_refuses_to_run_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let out = Command::new(bin("lightwelld")).args(["init", "--data-dir"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let fp_line =
        stdout.lines().find(|l| l.starts_with("server CA fingerprint: sha256:")).expect("fingerprint printed");
    assert_eq!(fp_line.len(), "server CA fingerprint: sha256:".len() + 64);

    assert_eq!(mode(&dir), 0o700);
    for secret in ["kek.key", "operator.password", "server.key", "server-ca.key.sealed", "lightwell.db"] {
        assert_eq!(mode(&dir.join(secret)), 0o600, "{secret}");
    }
    let password = std::fs::read_to_string(dir.join("operator.password")).unwrap();
    assert!(!stdout.contains(password.trim()), "init does not print the operator password");

    // The fingerprint printed is the one openssl computes for server-ca.pem.
    let openssl = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(dir.join("server-ca.pem"))
        .output()
        .unwrap();
    let openssl_fp = String::from_utf8(openssl.stdout).unwrap();
    let hex: String = openssl_fp.trim().rsplit('=').next().unwrap().replace(':', "").to_lowercase();
    assert!(fp_line.ends_with(&hex), "{fp_line} vs {openssl_fp}");

    let again = Command::new(bin("lightwelld")).args(["init", "--data-dir"]).arg(&dir).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialized"));
}

#[test]
fn the_server_refuses_an_uninitialized_data_dir_and_bad_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(bin("lightwelld")).arg("--data-dir").arg(tmp.path().join("none")).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lightwelld init"));

    let cfg = tmp.path().join("lightwell.toml");
    std::fs::write(&cfg, "listen_apii = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(bin("lightwelld")).arg("--config").arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_apii"));
}

#[test]
fn configuration_comes_from_the_file_then_the_environment_then_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    assert!(Command::new(bin("lightwelld")).args(["init", "--data-dir"]).arg(&dir).status().unwrap().success());
    let cfg = tmp.path().join("lightwell.toml");
    // The file names the data dir and a listen address the environment overrides.
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\nlisten_api = \"127.0.0.1:1\"\nlisten_pki = \"127.0.0.1:0\"\n",
            dir.display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new(bin("lightwelld"))
        .arg("--config")
        .arg(&cfg)
        .env("LIGHTWELL_LISTEN_API", "127.0.0.1:0")
        .env("LIGHTWELL_LISTEN_PKI", "127.0.0.1:1")
        .args(["--listen-pki", "127.0.0.1:0"])
        // Keep off the default LDAP ports, which parallel tests may hold.
        .args(["--listen-ldaps", "127.0.0.1:0", "--listen-ldap", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let api = lines.next().unwrap().unwrap();
    let pki = lines.next().unwrap().unwrap();
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    assert!(child.wait().unwrap().success(), "SIGTERM shuts down cleanly");
    assert!(api.starts_with("api: https://127.0.0.1:") && !api.ends_with(":1"), "env beats file: {api}");
    assert!(pki.starts_with("pki: http://127.0.0.1:") && !pki.ends_with(":1"), "flag beats env: {pki}");
}

#[test]
fn the_cli_trusts_the_server_only_by_ca_file_or_matching_fingerprint() {
    let server = TestServer::start();
    let cli = server.cli();
    let pw = cli.secret_file("op.pw", &server.operator_password());
    let out =
        Command::new(bin("lightwelld")).args(["init", "--data-dir"]).arg(server.scratch().join("x")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let other_fp = stdout.lines().find_map(|l| l.strip_prefix("server CA fingerprint: ")).unwrap().to_string();
    let fp = server.output().lines().find_map(|l| l.strip_prefix("server CA fingerprint: ")).unwrap().to_string();

    let url = server.url();
    let no_trust = cli.run(&["login", "--server", &url, "--operator", "--password-file", &pw]);
    assert!(!no_trust.status.success());
    assert!(String::from_utf8_lossy(&no_trust.stderr).contains("--ca-fingerprint"));

    let wrong =
        cli.run(&["login", "--server", &url, "--ca-fingerprint", &other_fp, "--operator", "--password-file", &pw]);
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("pinned fingerprint"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );

    let garbage =
        cli.run(&["login", "--server", &url, "--ca-fingerprint", "sha256:zz", "--operator", "--password-file", &pw]);
    assert!(!garbage.status.success());

    cli.ok(&["login", "--server", &url, "--ca-fingerprint", &fp, "--operator", "--password-file", &pw]);
    let who = cli.json(&["whoami"]);
    assert_eq!(who["kind"], "operator");
    let cred = cli.dir().join("credentials.json");
    assert_eq!(mode(&cred), 0o600, "saved token is private");
}

#[tokio::test]
async fn health_readiness_metrics_and_openapi_are_served() {
    let server = TestServer::start();
    let raw = server.raw();
    let get = |path: &str| raw.get(format!("{}{path}", server.url())).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let ready: serde_json::Value = get("/readyz").await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ok");
    assert_eq!(ready["store"], "sqlite");
    let doc: serde_json::Value = get("/v1/openapi.json").await.unwrap().json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/login",
        "/v1/tenants",
        "/v1/tenants/{tenant}/login",
        "/v1/tenants/{tenant}/{collection}",
        "/v1/audit/verify",
        "/v1/tenants/{tenant}/cas",
        "/v1/tenants/{tenant}/cas/{ca}",
        "/v1/tenants/{tenant}/cas/{ca}/crl",
        "/v1/tenants/{tenant}/cas/{ca}/revoke",
        "/v1/tenants/{tenant}/cas/rotate",
        "/v1/tenants/{tenant}/cas/import",
        "/v1/tenants/{tenant}/ca-requests",
        "/v1/tenants/{tenant}/ca-requests/{name}/install",
        "/v1/tenants/{tenant}/trust-bundle",
        "/v1/tenants/{tenant}/certificates",
        "/v1/tenants/{tenant}/certificates/revoke",
        "/v1/tenants/{tenant}/certificates/{serial}",
        "/v1/tenants/{tenant}/certificates/{serial}/revoke",
    ] {
        assert!(paths.contains_key(p), "OpenAPI documents {p}");
    }
    for schema in
        ["CaInfo", "CertificateInfo", "IssueCertificateRequest", "RotateRequest", "ImportCaRequest", "TrustBundle"]
    {
        assert!(doc["components"]["schemas"][schema].is_object(), "OpenAPI describes {schema}");
    }
    assert!(doc["components"]["schemas"]["ErrorCode"].is_object());
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("lightwell_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("lightwell_http_request_duration_seconds_bucket"));
}

#[test]
fn the_client_certificate_reaches_the_handlers() {
    let server = TestServer::start();
    let dir = server.scratch();
    let (key, cert) = (dir.join("client.key"), dir.join("client.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=some-client", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let token = rt.block_on(async {
        server.client().operator_login("operator", &server.operator_password()).await.unwrap().token
    });
    let curl = |with_cert: bool| {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--cacert"]).arg(server.ca_file());
        if with_cert {
            cmd.arg("--cert").arg(&cert).arg("--key").arg(&key);
        }
        cmd.args(["-H", &format!("authorization: Bearer {token}"), &format!("{}/v1/whoami", server.url())]);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let fp =
        Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(&cert).output().unwrap();
    let hex = String::from_utf8(fp.stdout).unwrap().trim().rsplit('=').next().unwrap().replace(':', "").to_lowercase();
    assert_eq!(curl(true)["tls_client_certificate"], format!("sha256:{hex}"));
    assert!(curl(false).get("tls_client_certificate").is_none());
}
