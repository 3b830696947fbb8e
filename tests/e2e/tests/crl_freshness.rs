//! CRLs stay fresh without revocations: the CA job re-signs every CRL, so
//! with the server's clock shifted past a CRL's lifetime (7 days) each CRL
//! served — the root's, the issuing CAs', and one large enough for the
//! background CRL signer — has a nextUpdate ahead of the shifted clock, a
//! thisUpdate at it, and a CRL Number that only grew.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lightwell_client::Client;
use lightwell_proto::{CreateIntermediateRequest, IssueCertificateRequest, RevokeRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::pki::{self, Files, http_get};

const T: &str = "corp.example";
const DAY: i64 = 24 * 3600;

/// What freshness needs from a CRL.
#[derive(Debug, Clone, Copy)]
struct Crl {
    number: u64,
    this_update: i64,
    next_update: i64,
}

fn parse(der: &[u8]) -> Crl {
    let (_, crl) = x509_parser::parse_x509_crl(der).unwrap();
    let number = crl.crl_number().unwrap().to_u64_digits().first().copied().unwrap_or(0);
    Crl {
        number,
        this_update: crl.last_update().timestamp(),
        next_update: crl.next_update().expect("every CRL names its next update").timestamp(),
    }
}

async fn crl(server: &TestServer, ca: &str) -> Crl {
    let url = format!("{}/pki/{T}/ca/{ca}.crl", server.pki_url());
    let (status, der) = http_get(&url).await;
    assert_eq!(status, 200, "GET {url}");
    parse(&der)
}

/// The server's clock: the wall clock shifted by `offset` seconds.
fn server_now(offset: i64) -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 + offset
}

/// Shifts the server's clock by `offset` and waits (up to 30 s) until every
/// CRL of `cas` was re-signed at the shifted time; returns them.
async fn fresh_after_shift(server: &TestServer, cas: &[String], offset: i64, before: &[Crl]) -> Vec<Crl> {
    server.set_clock_offset(offset);
    let shifted = server_now(offset);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut fresh = Vec::new();
    for (ca, old) in cas.iter().zip(before) {
        let crl = loop {
            let crl = crl(server, ca).await;
            if crl.this_update >= shifted - 5 {
                break crl;
            }
            assert!(Instant::now() < deadline, "CA {ca}: no CRL re-signed after the clock moved {offset} s: {crl:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let now = server_now(offset);
        assert!(crl.next_update > now, "CA {ca}: nextUpdate {} is not ahead of the clock {now}", crl.next_update);
        assert!(crl.next_update >= crl.this_update + 7 * DAY - 5, "CA {ca}: a full lifetime ahead: {crl:?}");
        assert!(crl.number > old.number, "CA {ca}: the CRL Number grew: {old:?} then {crl:?}");
        fresh.push(crl);
    }
    fresh
}

async fn ca_ids(admin: &Client) -> Vec<String> {
    admin.list_cas(T).await.unwrap().into_iter().map(|c| c.id).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ca_job_keeps_every_crl_ahead_of_a_clock_moved_past_its_lifetime() {
    let server = TestServer::start_with(&["--ca-maintenance-interval-secs", "1"]);
    let admin = pki::tenant(&server, T, None).await;
    let req = CreateIntermediateRequest { name: "extra".into(), ..Default::default() };
    admin.create_intermediate(T, &req).await.unwrap();
    let cas = ca_ids(&admin).await;
    assert_eq!(cas.len(), 3, "root, issuing, extra");
    let mut crls = Vec::new();
    for ca in &cas {
        let crl = crl(&server, ca).await;
        assert!(crl.next_update > server_now(0) + 6 * DAY, "{crl:?}");
        crls.push(crl);
    }
    // Past every CRL's nextUpdate, then far past it: each time every CRL is re-signed ahead of the clock.
    let crls = fresh_after_shift(&server, &cas, 8 * DAY, &crls).await;
    fresh_after_shift(&server, &cas, 40 * DAY, &crls).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crl_too_large_to_sign_inline_is_kept_fresh_by_the_crl_signer() {
    // Every CRL with an entry is "large": the CA job hands it to the CRL signer.
    let server = TestServer::start_with(&["--ca-maintenance-interval-secs", "1", "--crl-sync-limit", "0"]);
    let admin = pki::tenant(&server, T, None).await;
    let files = Files::new();
    let (_, csr) = files.csr("admin", "ec:P-256", "/CN=administrator", &[]);
    // Thirty days: the revoked certificate is still unexpired, so still listed, when the clock has moved.
    let req = IssueCertificateRequest { csr, ttl: Some("30d".into()), ..Default::default() };
    let cert = admin.issue_certificate(T, &req).await.unwrap();
    let why = RevokeRequest { reason: Some("key-compromise".into()), principal: None };
    admin.revoke_certificate(T, &cert.serial, &why).await.unwrap();
    let issuing = admin.list_cas(T).await.unwrap().into_iter().find(|c| c.is_default).unwrap().id;
    let deadline = Instant::now() + Duration::from_secs(30);
    let before = loop {
        let url = format!("{}/pki/{T}/ca/{issuing}.crl", server.pki_url());
        let (_, der) = http_get(&url).await;
        if lightwell_testkit::ha::crl_info(&der).serials.contains(&lightwell_testkit::ha::serial_key(&cert.serial)) {
            break parse(&der);
        }
        assert!(Instant::now() < deadline, "the signer never listed the revocation");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let signed_before = server.metric("lightwell_crl_background_signed_total").await;

    let after = fresh_after_shift(&server, std::slice::from_ref(&issuing), 8 * DAY, &[before]).await;
    let der = http_get(&format!("{}/pki/{T}/ca/{issuing}.crl", server.pki_url())).await.1;
    let listed = lightwell_testkit::ha::crl_info(&der).serials;
    assert!(listed.contains(&lightwell_testkit::ha::serial_key(&cert.serial)), "still listed: {listed:?}");
    assert!(
        server.metric("lightwell_crl_background_signed_total").await > signed_before,
        "the re-signing went through the CRL signer: {after:?}"
    );
}
