//! Helpers for certificate authority tests: a tenant with a known
//! administrator, CSRs made by OpenSSL (an independent implementation), and
//! `openssl verify` with CRLs fetched over plain HTTP.

use std::path::{Path, PathBuf};
use std::process::Command;

use lightwell_client::Client;
use lightwell_proto::{CreateHostPrincipalRequest, CreateTenantRequest, CreateUserRequest};

use crate::TestServer;

/// Password of every tenant administrator these helpers create.
pub const ADMIN_PASSWORD: &str = "Admin-Passw0rd!";
/// Password of every user these helpers create.
pub const USER_PASSWORD: &str = "User-Passw0rd!";

/// Creates `domain` (CA key type `key_type`, default p256) and returns a client logged in as its administrator.
pub async fn tenant(server: &TestServer, domain: &str, key_type: Option<&str>) -> Client {
    let op = server.operator().await;
    op.create_tenant(&CreateTenantRequest {
        domain: domain.into(),
        admin_password: Some(ADMIN_PASSWORD.into()),
        key_type: key_type.map(str::to_string),
    })
    .await
    .unwrap();
    server.login(domain, "administrator", ADMIN_PASSWORD).await
}

/// Creates a user with [`USER_PASSWORD`] and returns a client logged in as it.
pub async fn user(server: &TestServer, admin: &Client, domain: &str, name: &str) -> Client {
    let req = CreateUserRequest {
        name: name.into(),
        password: Some(USER_PASSWORD.into()),
        email: Some(format!("{name}@{domain}")),
        display_name: None,
    };
    admin.create_principal(domain, "users", &req).await.unwrap();
    server.login(domain, name, USER_PASSWORD).await
}

/// Registers a machine or service (`collection` `machines` or `services`) with DNS names and IPs.
pub async fn host(admin: &Client, domain: &str, collection: &str, name: &str, dns: &[&str], ips: &[&str]) {
    let req = CreateHostPrincipalRequest {
        name: name.into(),
        hostnames: dns.iter().map(|s| s.to_string()).collect(),
        ips: ips.iter().map(|s| s.to_string()).collect(),
        display_name: None,
    };
    admin.create_principal(domain, collection, &req).await.unwrap();
}

/// Runs a command and returns (success, stdout + stderr).
pub fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A scratch directory for PEM files.
#[derive(Debug)]
pub struct Files {
    dir: tempfile::TempDir,
}

impl Default for Files {
    fn default() -> Self {
        Self::new()
    }
}

impl Files {
    /// A new empty directory.
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    /// Path of `name` in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `name` and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// An OpenSSL-made key (`ec:P-256`, `ec:P-384`, `ed25519`, `rsa:2048`, `rsa:1024`, `ec:P-521`) and CSR
    /// for `subject` with extra `-addext` values; returns (key path, CSR PEM).
    pub fn csr(&self, name: &str, key: &str, subject: &str, addext: &[&str]) -> (PathBuf, String) {
        let key_path = self.path(&format!("{name}.key"));
        let mut keygen = Command::new("openssl");
        keygen.arg("genpkey").arg("-out").arg(&key_path);
        match key.split_once(':') {
            Some(("ec", curve)) => keygen.args(["-algorithm", "EC", "-pkeyopt", &format!("ec_paramgen_curve:{curve}")]),
            Some(("rsa", bits)) => keygen.args(["-algorithm", "RSA", "-pkeyopt", &format!("rsa_keygen_bits:{bits}")]),
            _ => keygen.args(["-algorithm", key]),
        };
        let (ok, out) = run(&mut keygen);
        assert!(ok, "openssl genpkey: {out}");
        let csr_path = self.path(&format!("{name}.csr"));
        let mut req = Command::new("openssl");
        req.args(["req", "-new", "-key"]).arg(&key_path).args(["-subj", subject, "-out"]).arg(&csr_path);
        for ext in addext {
            req.args(["-addext", ext]);
        }
        let (ok, out) = run(&mut req);
        assert!(ok, "openssl req: {out}");
        (key_path, std::fs::read_to_string(csr_path).unwrap())
    }
}

/// The URIs of an extension (`crlDistributionPoints`, `authorityInfoAccess`) of a PEM certificate.
pub fn extension_uris(cert: &Path, ext: &str) -> Vec<String> {
    let (ok, out) = run(Command::new("openssl").args(["x509", "-noout", "-ext", ext, "-in"]).arg(cert));
    assert!(ok, "openssl x509: {out}");
    out.split_whitespace().filter_map(|w| w.split_once("URI:").map(|(_, u)| u.to_string())).collect()
}

/// GETs a plain-HTTP URL; returns the status and body.
pub async fn http_get(url: &str) -> (u16, Vec<u8>) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

/// Fetches the CRL named in a certificate's CRL Distribution Point and writes it as PEM.
pub async fn fetch_crl(files: &Files, cert: &Path, name: &str) -> PathBuf {
    let url = extension_uris(cert, "crlDistributionPoints").pop().expect("certificate has a CDP");
    let (status, der) = http_get(&url).await;
    assert_eq!(status, 200, "GET {url}");
    der_crl_to_pem(files, &der, name)
}

/// Converts a DER CRL to a PEM file.
pub fn der_crl_to_pem(files: &Files, der: &[u8], name: &str) -> PathBuf {
    let der_path = files.write(&format!("{name}.der"), der);
    let pem = files.path(&format!("{name}.pem"));
    let (ok, out) =
        run(Command::new("openssl").args(["crl", "-inform", "DER", "-in"]).arg(&der_path).arg("-out").arg(&pem));
    assert!(ok, "openssl crl: {out}");
    pem
}

/// `openssl verify` of `leaf` against `bundle` with `chain` as untrusted
/// intermediates and, if given, CRLs with `-crl_check_all`.
pub fn openssl_verify(bundle: &Path, chain: &Path, leaf: &Path, crls: &[PathBuf]) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.arg("verify").arg("-CAfile").arg(bundle).arg("-untrusted").arg(chain);
    if !crls.is_empty() {
        cmd.arg("-crl_check_all");
        for crl in crls {
            cmd.arg("-CRLfile").arg(crl);
        }
    }
    run(cmd.arg(leaf))
}

/// A CLI logged in to `domain` as its administrator (password [`ADMIN_PASSWORD`]).
pub fn admin_cli(server: &TestServer, domain: &str) -> crate::Cli {
    login_cli(server, domain, "administrator", ADMIN_PASSWORD)
}

/// A CLI logged in to `domain` as `user` with `password` (trusting the server by its CA file).
pub fn login_cli(server: &TestServer, domain: &str, user: &str, password: &str) -> crate::Cli {
    let cli = server.cli();
    let pw = cli.secret_file("login.pw", password);
    let ca = server.ca_file().display().to_string();
    let url = server.url();
    cli.ok(&["login", "--server", &url, "--ca-file", &ca, "--tenant", domain, "--user", user, "--password-file", &pw]);
    cli
}

/// Extensions of a CA certificate made by OpenSSL (an enterprise CA in tests).
const OPENSSL_CA_CONFIG: &str = "[req]\ndistinguished_name = dn\n[dn]\n\
    [ca]\nbasicConstraints = critical,CA:true\nkeyUsage = critical,keyCertSign,cRLSign\n\
    subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n\
    [leaf]\nbasicConstraints = critical,CA:false\nkeyUsage = critical,digitalSignature\n\
    subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n";

impl Files {
    fn openssl_config(&self) -> PathBuf {
        self.write("openssl-ca.cnf", OPENSSL_CA_CONFIG)
    }

    /// A P-256 key made by OpenSSL (PKCS#8 PEM); returns its path.
    pub fn openssl_key(&self, name: &str) -> PathBuf {
        let key = self.path(&format!("{name}.key"));
        let (ok, out) = run(Command::new("openssl")
            .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
            .arg(&key));
        assert!(ok, "openssl genpkey: {out}");
        key
    }

    /// A self-signed certificate made by OpenSSL for a new key: a CA (`ca`
    /// true) or not. Returns (certificate path, key path).
    pub fn openssl_self_signed(&self, name: &str, subject: &str, ca: bool) -> (PathBuf, PathBuf) {
        let key = self.openssl_key(name);
        let cert = self.path(&format!("{name}.pem"));
        let (ok, out) = run(Command::new("openssl")
            .args(["req", "-x509", "-new", "-days", "3650", "-subj", subject, "-key"])
            .arg(&key)
            .arg("-config")
            .arg(self.openssl_config())
            .args(["-extensions", if ca { "ca" } else { "leaf" }, "-out"])
            .arg(&cert));
        assert!(ok, "openssl req -x509: {out}");
        (cert, key)
    }

    /// Has the OpenSSL CA `ca_cert`/`ca_key` sign `csr` as a CA certificate
    /// (the enterprise CA's part); returns the certificate's path.
    pub fn openssl_sign_ca(&self, name: &str, csr: &Path, ca_cert: &Path, ca_key: &Path) -> PathBuf {
        let cert = self.path(&format!("{name}.pem"));
        let (ok, out) = run(Command::new("openssl")
            .args(["x509", "-req", "-days", "365", "-in"])
            .arg(csr)
            .arg("-CA")
            .arg(ca_cert)
            .arg("-CAkey")
            .arg(ca_key)
            .args(["-set_serial", &format!("0x{:x}", rand_serial())])
            .arg("-extfile")
            .arg(self.openssl_config())
            .args(["-extensions", "ca", "-out"])
            .arg(&cert));
        assert!(ok, "openssl x509 -req: {out}");
        cert
    }

    /// A CSR made by OpenSSL for an existing key; returns its path.
    pub fn openssl_csr_for(&self, name: &str, key: &Path, subject: &str) -> PathBuf {
        let csr = self.path(&format!("{name}.csr"));
        let (ok, out) = run(Command::new("openssl")
            .args(["req", "-new", "-subj", subject, "-key"])
            .arg(key)
            .arg("-config")
            .arg(self.openssl_config())
            .arg("-out")
            .arg(&csr));
        assert!(ok, "openssl req: {out}");
        csr
    }
}

fn rand_serial() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    // Positive and distinct enough for a test CA.
    (nanos as u64 & 0x7fff_ffff_ffff_ffff) | 1
}
