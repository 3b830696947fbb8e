//! Helpers for high-availability tests: replicas of `lightwelld` sharing one
//! PostgreSQL database, a client failing over across them, and CRLs read
//! from each replica's plain-HTTP PKI listener and parsed by OpenSSL.

use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use lightwell_client::{Client, Trust};

use crate::TestServer;
use crate::postgres::PgCluster;

static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// The PostgreSQL cluster of this test process (started on first use).
pub fn cluster() -> &'static PgCluster {
    CLUSTER.get_or_init(PgCluster::start)
}

/// A fresh database in `cluster`, named after this process.
pub fn fresh_database(cluster: &PgCluster) -> String {
    cluster.create_database(&format!("ha_{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::SeqCst)))
}

/// `n` replicas on one fresh database of `cluster`: the first initialized
/// there, the others sharing its KEK and TLS files (see [`TestServer::replica`]).
pub fn replicas(cluster: &PgCluster, n: usize, extra: &[&str]) -> Vec<TestServer> {
    let first = TestServer::start_on(&fresh_database(cluster), extra);
    let mut all: Vec<TestServer> = (1..n).map(|_| first.replica()).collect();
    all.insert(0, first);
    all
}

/// An API client of every server in `servers`, in order, failing over across them.
pub fn failover_client(servers: &[&TestServer]) -> Client {
    let urls: Vec<String> = servers.iter().map(|s| s.url()).collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let pem = std::fs::read(servers[0].ca_file()).unwrap();
    Client::with_servers(&urls, &Trust::CaPem(pem), None).unwrap()
}

/// Asserts that the audit chains of `tenants` (administrator password
/// [`crate::pki::ADMIN_PASSWORD`]) and the system chain verify on `server`:
/// how a high-availability test ends, whatever the replicas went through.
pub async fn assert_audit_verifies(server: &TestServer, tenants: &[&str]) {
    for tenant in tenants {
        let admin = server.login(tenant, "administrator", crate::pki::ADMIN_PASSWORD).await;
        let v = admin.audit_verify(Some(tenant)).await.unwrap();
        assert!(v.valid, "the audit chain of {tenant} on {}: {v:?}", server.url());
    }
    let v = server.operator().await.audit_verify(None).await.unwrap();
    assert!(v.valid, "the system audit chain on {}: {v:?}", server.url());
}

/// What a CRL says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlInfo {
    /// The CRL Number extension.
    pub number: u64,
    /// Revoked serials, lower-case hex without leading zeros.
    pub serials: Vec<String>,
}

/// Normalizes a hex serial (any case, optional leading zeros) for comparison.
pub fn serial_key(hex: &str) -> String {
    let s = hex.trim().trim_start_matches('0').to_ascii_lowercase();
    if s.is_empty() { "0".into() } else { s }
}

/// Parses a DER CRL with `openssl crl -text`.
pub fn crl_info(der: &[u8]) -> CrlInfo {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crl.der");
    std::fs::write(&path, der).unwrap();
    let out =
        Command::new("openssl").args(["crl", "-inform", "DER", "-noout", "-text", "-in"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "openssl crl: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let serials = text.lines().filter_map(|l| l.trim().strip_prefix("Serial Number:")).map(serial_key).collect();
    CrlInfo { number: number_after(&text, "X509v3 CRL Number").expect("the CRL has a CRL Number"), serials }
}

/// The number `openssl crl -text` prints on the line after `extension`
/// (`X509v3 CRL Number`, `X509v3 Delta CRL Indicator`): decimal when
/// small, `0xHEX` when large.
pub fn number_after(text: &str, extension: &str) -> Option<u64> {
    let mut lines = text.lines().map(str::trim);
    lines.find(|l| l.starts_with(extension))?;
    let value = lines.next()?;
    match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

/// GETs the CRL of CA `ca_id` of `tenant` from a replica's PKI listener.
pub async fn fetch_crl(server: &TestServer, tenant: &str, ca_id: &str) -> Vec<u8> {
    let url = format!("{}/pki/{tenant}/ca/{ca_id}.crl", server.pki_url());
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "GET {url}");
    resp.bytes().await.unwrap().to_vec()
}
