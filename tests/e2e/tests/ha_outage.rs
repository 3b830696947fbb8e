//! A PostgreSQL restart under a running `lightwelld`: requests during the
//! outage fail cleanly with 503 `unavailable` and change nothing, `/readyz`
//! says not ready, and everything works again once the database returns.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use lightwell_proto::{CreateUserRequest, ErrorCode, IssueCertificateRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::ha;
use lightwell_testkit::node::wait_until;
use lightwell_testkit::pki::{self, Files};
use lightwell_testkit::postgres::PgCluster;

const T: &str = "corp.example";

async fn readyz(server: &TestServer) -> u16 {
    match server.raw().get(format!("{}/readyz", server.url())).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

fn user(name: &str) -> CreateUserRequest {
    CreateUserRequest { name: name.into(), password: Some("Wonderland-42!".into()), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn lightwelld_survives_a_postgres_restart_and_fails_cleanly_meanwhile() {
    // Its own cluster: this test stops it.
    let cluster = PgCluster::start();
    let mut server = TestServer::start_on(&ha::fresh_database(&cluster), &[]);
    let admin = pki::tenant(&server, T, None).await;
    let files = Files::new();
    let (_, csr) = files.csr("c", "ec:P-256", "/CN=administrator", &[]);
    let issue = IssueCertificateRequest { csr, ..Default::default() };
    admin.issue_certificate(T, &issue).await.unwrap();
    assert_eq!(readyz(&server).await, 200);
    let certs_before = admin.list_certificates(T, None).await.unwrap().len();

    cluster.stop();
    // Not ready, and every request is a clean 503 well within the request timeout.
    assert_eq!(readyz(&server).await, 503);
    // Each waits for the pool's connection timeout (5 s), then answers 503.
    let started = Instant::now();
    let create = admin.create_principal(T, "users", &user("during")).await.map(drop);
    let t_create = started.elapsed();
    let issued = admin.issue_certificate(T, &issue).await.map(drop);
    let t_issue = started.elapsed() - t_create;
    let whoami = admin.whoami().await.map(drop);
    let t_whoami = started.elapsed() - t_create - t_issue;
    eprintln!("during the outage: create {t_create:?}, issue {t_issue:?}, whoami {t_whoami:?}");
    for (attempt, took) in [(create, t_create), (issued, t_issue), (whoami, t_whoami)] {
        let err = attempt.unwrap_err();
        assert!(matches!(err, lightwell_client::ClientError::Api { status: 503, .. }), "{err}");
        assert_eq!(err.code(), Some(ErrorCode::Unavailable), "{err}");
        assert!(took < Duration::from_secs(30), "answered before the request timeout: {took:?}");
    }
    assert!(server.output().lines().all(|l| !l.contains("panicked")), "no panic:\n{}", server.output());

    cluster.restart();
    let rt = tokio::runtime::Handle::current();
    assert!(
        wait_until(Duration::from_secs(60), || tokio::task::block_in_place(|| rt.block_on(readyz(&server))) == 200),
        "ready again after the database returned"
    );
    // Nothing from the outage was half-applied; new work goes through.
    assert_eq!(
        admin.principal(T, "users", "during").await.unwrap_err().code(),
        Some(ErrorCode::PrincipalNotFound),
        "the refused user does not exist"
    );
    assert_eq!(admin.list_certificates(T, None).await.unwrap().len(), certs_before);
    admin.create_principal(T, "users", &user("after")).await.unwrap();
    admin.issue_certificate(T, &issue).await.unwrap();
    ha::assert_audit_verifies(&server, &[T]).await;
    assert!(server.stop(), "a clean exit on SIGTERM, pool and listener closed:\n{}", server.output());
}
