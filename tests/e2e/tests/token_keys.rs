//! The tenant's token keys over time, against the real server with its
//! clock moved forward: a successor is published a day before it signs,
//! takes over when its predecessor retires, and the predecessor stays in
//! the JWKS for a day more, so no verifier that caches the JWKS meets a
//! token whose key it cannot see. The CA job (every second here) does it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::Engine as _;
use lightwell_proto::{CreateJoinTokenRequest, CreateWorkloadRequest};
use lightwell_testkit::node::Node;
use lightwell_testkit::{TestServer, pki};

const T: &str = "corp.example";
const DAY: i64 = 86_400;

/// The `kid` and `alg` of each key the tenant publishes.
async fn published(server: &TestServer) -> Vec<(String, String)> {
    let jwks: serde_json::Value =
        server.raw().get(format!("{}/oidc/{T}/jwks", server.url())).send().await.unwrap().json().await.unwrap();
    let mut keys: Vec<(String, String)> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap().to_string(), k["alg"].as_str().unwrap().to_string()))
        .collect();
    keys.sort();
    keys
}

/// The `kid` a token's header names.
fn kid(token: &str) -> String {
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
    serde_json::from_slice::<serde_json::Value>(&header).unwrap()["kid"].as_str().unwrap().to_string()
}

fn es256(keys: &[(String, String)]) -> Vec<String> {
    keys.iter().filter(|(_, alg)| alg == "ES256").map(|(kid, _)| kid.clone()).collect()
}

/// A machine joined at the server's current time (certificates issued
/// before a jump of weeks would have expired) with an entry assigned to it;
/// returns a client speaking as it and the entry's JWT-SVID URL.
async fn machine(server: &TestServer, n: usize) -> (reqwest::Client, String) {
    let admin = server.login(T, "administrator", pki::ADMIN_PASSWORD).await;
    let hostname = format!("node{n}.{T}");
    let hosts = server.scratch().join("hosts");
    std::fs::create_dir_all(&hosts).unwrap();
    let node = Node::new(&hosts, &hostname);
    let req = CreateJoinTokenRequest { hostname: Some(hostname.clone()), ..Default::default() };
    let token = admin.create_join_token(T, &req).await.unwrap().token.unwrap();
    assert!(node.join(server, T, Some(&token)).status.success());
    let entry = CreateWorkloadRequest {
        name: format!("pay{n}"),
        service: "payments".into(),
        path: Some(format!("p{n}")),
        hosts: vec![hostname],
        selectors: vec!["unix:uid:1000".into()],
        ..Default::default()
    };
    admin.create_workload(T, &entry).await.unwrap();
    let chain = std::fs::read_to_string(node.state.join("chain.pem")).unwrap();
    let url = format!("{}/v1/tenants/{T}/workloads/pay{n}/jwt-svid", server.url());
    (server.mtls_as(&node.state.join("key.pem"), &chain), url)
}

/// The `kid` of a JWT-SVID a new machine gets now.
async fn signing_kid(server: &TestServer, n: usize) -> String {
    let (client, url) = machine(server, n).await;
    let resp = client.post(&url).json(&serde_json::json!({ "audience": ["db"] })).send().await.unwrap();
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    kid(body["token"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successor_key_is_published_a_day_ahead_signs_from_its_turn_and_its_predecessor_goes_a_day_later() {
    let server = TestServer::start_with(&["--ca-maintenance-interval-secs", "1"]);
    let admin = pki::tenant(&server, T, None).await;
    pki::host(&admin, T, "services", "payments", &[], &[]).await;
    let until = |want: usize, offset: i64| {
        let server = &server;
        async move {
            server.set_clock_offset(offset);
            for _ in 0..100 {
                let keys = published(server).await;
                if keys.len() == want {
                    return keys;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            panic!("{want} keys published at +{offset}s: {:?}", published(server).await)
        }
    };

    let first = published(&server).await;
    assert_eq!(first.len(), 2, "one ES256 and one RS256 key: {first:?}");
    let k1 = es256(&first)[0].clone();
    assert_eq!(signing_kid(&server, 1).await, k1);

    // A day before the first retires (after 30 days) the successors are made.
    let both = until(4, 29 * DAY + 60).await;
    let k2 = es256(&both).into_iter().find(|k| *k != k1).unwrap();
    assert_eq!(signing_kid(&server, 2).await, k1, "the successor is published, not signing yet");
    let admin = server.login(T, "administrator", pki::ADMIN_PASSWORD).await;
    let log = admin.audit(Some(T), 0, 1000).await.unwrap();
    let made: Vec<_> = log.iter().filter(|e| e.action == "token_key.create").collect();
    assert_eq!(made.len(), 4, "two keys at first, two successors: {made:?}");
    assert!(made.iter().all(|e| e.actor == "system" && e.outcome == "success"), "{made:?}");

    // After 30 days the successor signs; the old key is still published.
    server.set_clock_offset(30 * DAY + 60);
    assert_eq!(signing_kid(&server, 3).await, k2);
    assert_eq!(published(&server).await.len(), 4, "the retired keys stay published a day");

    // A day after it retired the old key leaves the JWKS.
    let last = until(2, 31 * DAY + 60).await;
    assert_eq!(es256(&last), std::slice::from_ref(&k2));
    assert_eq!(signing_kid(&server, 4).await, k2);
}
