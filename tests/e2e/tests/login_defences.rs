//! The defences of password logins, attacked through the real server: the
//! per-address throttle (so one address cannot lock an account), identical
//! answers for unknown, locked and wrong, self-service password changes
//! counting toward lockout, and bounded memory under floods of bogus logins.
//!
//! Callers get addresses of their own by binding to other addresses of
//! 127/8 (all of it is the loopback interface on Linux).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lightwell_client::Client;
use lightwell_proto::{AuditEntry, CreateUserRequest, ErrorCode, SetPasswordRequest};
use lightwell_testkit::{LoginAnswer, TestServer};

const T: &str = "corp.example";
const ADMIN_PW: &str = "Tenant-Admin-1!";
const ALICE_PW: &str = "Rabbit-Hole-1!";
const BOB_PW: &str = "Builder-Pass-77!";
/// The resident-memory bound under a flood of logins.
const RSS_LIMIT_KIB: u64 = 300 * 1024;

async fn corp(server: &TestServer) -> Client {
    let admin = server.create_tenant(T, ADMIN_PW).await;
    for (name, pw) in [("alice", ALICE_PW), ("bob", BOB_PW)] {
        let req = CreateUserRequest { name: name.into(), password: Some(pw.into()), ..Default::default() };
        admin.create_principal(T, "users", &req).await.unwrap();
    }
    admin
}

fn failures<'a>(audit: &'a [AuditEntry], action: &str) -> Vec<&'a AuditEntry> {
    audit.iter().filter(|r| r.action == action && r.outcome == "failure").collect()
}

async fn metric(server: &TestServer, name: &str) -> u64 {
    let text = server.raw().get(format!("{}/metrics", server.url())).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}: {text}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn assert_refused(a: &LoginAnswer, status: u16, code: &str) {
    assert_eq!((a.status, a.code()), (status, Some(code)), "{a:?}");
}

#[tokio::test]
async fn five_wrong_guesses_from_one_address_do_not_lock_the_administrator() {
    let server = TestServer::start();
    let admin = corp(&server).await;
    let mut answers = vec![];
    for i in 0..5 {
        answers.push(server.login_from("127.0.0.2", T, "administrator", &format!("Guess-{i}-Pass!")).await);
    }
    for a in &answers[..3] {
        assert_refused(a, 401, "invalid_credentials");
        assert_eq!(a.retry_after, None);
    }
    for a in &answers[3..] {
        assert_refused(a, 429, "too_many_requests");
        assert!(a.retry_after.is_some_and(|s| (1..=180).contains(&s)), "Retry-After within the window: {a:?}");
    }
    // The throttled address learns nothing, not even from the right password.
    assert_refused(&server.login_from("127.0.0.2", T, "administrator", ADMIN_PW).await, 429, "too_many_requests");

    // The account is not locked: the administrator logs in from elsewhere.
    assert!(!admin.principal(T, "users", "administrator").await.unwrap().locked);
    assert_eq!(server.login_from("127.0.0.3", T, "administrator", ADMIN_PW).await.status, 200);
    // Throttled attempts were never examined: only three failures are audited.
    let audit = admin.audit(Some(T), 0, 1000).await.unwrap();
    assert_eq!(failures(&audit, "login").len(), 3, "{audit:#?}");
    assert_eq!(metric(&server, "lightwell_logins_throttled_total").await, 3);

    // Once the oldest failure is 180 s old the address may try again.
    server.set_clock_offset(181);
    assert_eq!(server.login_from("127.0.0.2", T, "administrator", ADMIN_PW).await.status, 200);
}

#[tokio::test]
async fn unknown_user_locked_user_and_wrong_password_get_the_same_answer() {
    let server = TestServer::start();
    let admin = corp(&server).await;
    // Locking an account takes two addresses now (3 + 2 failures).
    for source in ["127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"] {
        assert_refused(&server.login_from(source, T, "alice", "Not-Her-Pass-1!").await, 401, "invalid_credentials");
    }
    assert!(admin.principal(T, "users", "alice").await.unwrap().locked, "an administrator sees the lock");

    // Each from a fresh address, so the throttle is not what answers.
    let unknown = server.login_from("127.0.0.10", T, "ghost", "Not-Her-Pass-1!").await;
    let locked_wrong = server.login_from("127.0.0.11", T, "alice", "Not-Her-Pass-1!").await;
    let locked_right = server.login_from("127.0.0.12", T, "alice", ALICE_PW).await;
    let wrong = server.login_from("127.0.0.13", T, "bob", "Not-His-Pass-1!").await;
    assert_refused(&unknown, 401, "invalid_credentials");
    assert_eq!(unknown.retry_after, None);
    for (what, answer) in [("locked, wrong", &locked_wrong), ("locked, right", &locked_right), ("wrong", &wrong)] {
        assert_eq!(answer, &unknown, "{what} answers exactly like an unknown user");
    }
    // The audit chain tells an administrator what happened.
    let audit = admin.audit(Some(T), 0, 1000).await.unwrap();
    let details: Vec<_> = failures(&audit, "login").iter().map(|r| (r.target.as_str(), r.detail.as_str())).collect();
    for seen in [("ghost", "unknown user"), ("alice", "account locked"), ("bob", "wrong password")] {
        assert!(details.contains(&seen), "{seen:?} in {details:?}");
    }

    // An administrator clears the lock; then the right password works.
    admin.principal_action(T, "users", "alice", "unlock").await.unwrap();
    assert_eq!(server.login_from("127.0.0.12", T, "alice", ALICE_PW).await.status, 200);
}

#[tokio::test]
async fn wrong_current_passwords_in_a_self_service_change_count_toward_lockout() {
    let server = TestServer::start();
    let admin = corp(&server).await;
    // A stolen session guesses the current password.
    let alice = server.login(T, "alice", ALICE_PW).await;
    for i in 0..5 {
        let guess =
            SetPasswordRequest { new_password: "Rabbit-Hole-2!".into(), old_password: Some(format!("Guess-{i}!x")) };
        let err = alice.set_password(T, "alice", &guess).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidCredentials), "guess {i}");
    }
    assert!(admin.principal(T, "users", "alice").await.unwrap().locked, "the fifth wrong guess locks the account");
    // Locked: even the right current password changes nothing now.
    let right = SetPasswordRequest { new_password: "Rabbit-Hole-2!".into(), old_password: Some(ALICE_PW.into()) };
    assert_eq!(alice.set_password(T, "alice", &right).await.unwrap_err().code(), Some(ErrorCode::AccountLocked));
    assert_refused(&server.login_from("127.0.0.5", T, "alice", ALICE_PW).await, 401, "invalid_credentials");

    let audit = admin.audit(Some(T), 0, 1000).await.unwrap();
    let changes = failures(&audit, "user.password_change");
    let details: Vec<_> = changes.iter().map(|r| r.detail.as_str()).collect();
    assert_eq!(
        details,
        [
            "wrong current password",
            "wrong current password",
            "wrong current password",
            "wrong current password",
            "wrong current password; account locked",
            "account locked",
        ]
    );
    // Nothing changed: after an unlock the old password still works and the new one does not.
    admin.principal_action(T, "users", "alice", "unlock").await.unwrap();
    assert_eq!(server.login_from("127.0.0.6", T, "alice", ALICE_PW).await.status, 200);
    assert_refused(&server.login_from("127.0.0.7", T, "alice", "Rabbit-Hole-2!").await, 401, "invalid_credentials");
}

/// Samples the server's resident memory every 20 ms until stopped; kills
/// the server at once if it passes the limit, so a regression fails the
/// test instead of exhausting the machine. Returns the peak (KiB).
fn watch_memory(server: &TestServer, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u64, bool)> {
    let pid = server.pid().unwrap();
    let peak = AtomicU64::new(server.rss_kib());
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Some(rss) = lightwell_testkit::rss_kib(pid) else { break };
            peak.fetch_max(rss, Ordering::Relaxed);
            if rss > RSS_LIMIT_KIB {
                let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
                return (rss, true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (peak.load(Ordering::Relaxed), false)
    })
}

/// Asks `/healthz` from its own address every 20 ms until stopped; returns
/// the latencies (`None`: no answer). It runs on a thread and runtime of
/// its own, so the flood's tasks in this process do not delay it.
fn probe_health(server: &TestServer, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Option<Duration>>> {
    let client = server.raw_from("127.0.0.250".parse().unwrap());
    let url = format!("{}/healthz", server.url());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let mut latencies = vec![];
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let ok = client.get(&url).send().await.is_ok_and(|r| r.status().is_success());
                latencies.push(ok.then(|| start.elapsed()));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            latencies
        })
    })
}

fn p99(latencies: Vec<Option<Duration>>) -> Duration {
    assert!(!latencies.is_empty());
    let failed = latencies.iter().filter(|l| l.is_none()).count();
    assert_eq!(failed, 0, "/healthz failed {failed} times during the flood");
    let mut latencies: Vec<Duration> = latencies.into_iter().flatten().collect();
    latencies.sort();
    latencies[(latencies.len() * 99).div_ceil(100) - 1]
}

/// `per_client` concurrent bogus logins from each client, all at once;
/// each answer with the index of its client. Panics (after all are done)
/// if one got no answer.
async fn flood(server: &TestServer, clients: Vec<reqwest::Client>, per_client: usize) -> Vec<(usize, LoginAnswer)> {
    let answers = try_flood(server, clients, per_client).await;
    answers.into_iter().map(|(i, a)| (i, a.unwrap_or_else(|e| panic!("a login got no answer: {e}")))).collect()
}

async fn try_flood(
    server: &TestServer,
    clients: Vec<reqwest::Client>,
    per_client: usize,
) -> Vec<(usize, Result<LoginAnswer, reqwest::Error>)> {
    let url = format!("{}/v1/tenants/{T}/login", server.url());
    let mut tasks = tokio::task::JoinSet::new();
    for (i, client) in clients.into_iter().enumerate() {
        for j in 0..per_client {
            let (client, url) = (client.clone(), url.clone());
            let body = serde_json::json!({ "user": format!("ghost{i}-{j}"), "password": "Not-A-Password-1!" });
            tasks.spawn(async move {
                match client.post(url).json(&body).send().await {
                    Ok(resp) => (i, Ok(LoginAnswer::read(resp).await)),
                    Err(e) => (i, Err(e)),
                }
            });
        }
    }
    tasks.join_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_bogus_logins_from_many_addresses_keeps_memory_bounded_and_health_answering() {
    let server = TestServer::start();
    server.create_tenant(T, ADMIN_PW).await;
    // 500 logins for unknown users from 250 addresses, two each: under
    // the per-address limit, so every one reaches the password check. The
    // clients connect first: what is measured is the password work, not
    // 250 TLS handshakes (which the connection caps bound).
    let clients: Vec<_> = (1..=250).map(|i| server.raw_from(format!("127.0.1.{i}").parse().unwrap())).collect();
    let mut connecting = tokio::task::JoinSet::new();
    for client in clients.clone() {
        let url = format!("{}/healthz", server.url());
        connecting.spawn(async move { client.get(url).send().await.unwrap().status().is_success() });
    }
    assert!(connecting.join_all().await.into_iter().all(|ok| ok));
    let baseline = server.rss_kib();
    let stop = Arc::new(AtomicBool::new(false));
    let memory = watch_memory(&server, stop.clone());
    let health = probe_health(&server, stop.clone());
    let answers = try_flood(&server, clients, 2).await;
    stop.store(true, Ordering::Relaxed);
    let latencies = health.join().unwrap();
    let (peak, killed) = memory.join().unwrap();
    assert!(!killed, "resident memory passed {RSS_LIMIT_KIB} KiB during the flood ({peak} KiB)");
    let answers: Vec<_> = answers.into_iter().map(|(_, a)| a.unwrap()).collect();

    let overloaded: Vec<_> = answers.iter().filter(|a| a.status == 503).collect();
    for a in &answers {
        match a.status {
            401 => assert_refused(a, 401, "invalid_credentials"),
            _ => {
                assert_refused(a, 503, "overloaded");
                assert_eq!(a.retry_after, Some(1), "{a:?}");
            }
        }
    }
    // Memory comes back once the flood is over.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = server.rss_kib();
    let p99 = p99(latencies);
    eprintln!(
        "RSS baseline {baseline} KiB, peak {peak} KiB, after {after} KiB; {} overloaded of 500; /healthz p99 {p99:?}",
        overloaded.len()
    );
    assert!(after < RSS_LIMIT_KIB, "{after} KiB after the flood");
    assert!(p99 < Duration::from_millis(500), "/healthz p99 {p99:?} during the flood");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_logins_from_one_address_is_refused_before_any_password_work() {
    let server = TestServer::start();
    let admin = server.create_tenant(T, ADMIN_PW).await;
    let stop = Arc::new(AtomicBool::new(false));
    let memory = watch_memory(&server, stop.clone());
    let health = probe_health(&server, stop.clone());

    // One HTTP/2 connection (opened first) carries all 500 logins.
    let client = server.raw_from("127.0.0.20".parse().unwrap());
    assert!(client.get(format!("{}/healthz", server.url())).send().await.unwrap().status().is_success());
    let answers = try_flood(&server, vec![client; 1], 500).await;
    stop.store(true, Ordering::Relaxed);
    let latencies = health.join().unwrap();
    let (peak, killed) = memory.join().unwrap();
    assert!(!killed, "resident memory passed {RSS_LIMIT_KIB} KiB ({peak} KiB)");
    let answers: Vec<_> = answers.into_iter().map(|(_, a)| a.unwrap()).collect();
    let p99 = p99(latencies);

    let examined = answers.iter().filter(|a| a.status == 401).count();
    assert_eq!(examined, 3, "three failures allowed per address and window");
    for a in answers.iter().filter(|a| a.status != 401) {
        assert_refused(a, 429, "too_many_requests");
        assert!(a.retry_after.is_some_and(|s| (1..=180).contains(&s)), "{a:?}");
    }
    let audit = admin.audit(Some(T), 0, 1000).await.unwrap();
    assert_eq!(failures(&audit, "login").len(), 3, "refused logins are not examined, nor audited");
    assert_eq!(metric(&server, "lightwell_logins_throttled_total").await, 497);
    eprintln!("RSS peak {peak} KiB; /healthz p99 {p99:?}");
    assert!(p99 < Duration::from_millis(500), "/healthz p99 {p99:?} during the flood");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_beyond_the_password_hashing_capacity_get_503_with_retry_after_and_change_nothing() {
    // One permit: 300 logins queue behind it and most wait out the 2 s.
    let server = TestServer::start_with(&["--password-hashing-concurrency", "1"]);
    let admin = server.create_tenant(T, ADMIN_PW).await;
    let clients = (1..=150).map(|i| server.raw_from(format!("127.0.2.{i}").parse().unwrap())).collect();
    let answers = flood(&server, clients, 2).await;

    let overloaded: Vec<_> = answers.iter().filter(|(_, a)| a.status == 503).map(|(_, a)| a).collect();
    let examined = answers.len() - overloaded.len();
    assert!(!overloaded.is_empty(), "one permit cannot check 300 passwords in 2 s");
    for a in &overloaded {
        assert_refused(a, 503, "overloaded");
        assert_eq!(a.retry_after, Some(1));
    }
    assert!(answers.iter().all(|(_, a)| a.status == 503 || a.status == 401));
    let audit = admin.audit(Some(T), 0, 1000).await.unwrap();
    assert_eq!(failures(&audit, "login").len(), examined, "an overloaded login is neither examined nor audited");
    assert_eq!(metric(&server, "lightwell_password_hashing_overloaded_total").await, overloaded.len() as u64);

    // Nor does it count against its address: one refused twice still has its three tries.
    let refused_twice = (0..150)
        .find(|i| answers.iter().filter(|(c, a)| c == i && a.status == 503).count() == 2)
        .expect("most addresses were refused twice");
    let source = format!("127.0.2.{}", refused_twice + 1);
    for _ in 0..3 {
        assert_refused(&server.login_from(&source, T, "ghost", "Not-A-Password-1!").await, 401, "invalid_credentials");
    }
    assert_refused(&server.login_from(&source, T, "ghost", "Not-A-Password-1!").await, 429, "too_many_requests");
}

#[tokio::test]
async fn the_cli_says_why_a_login_was_refused_and_when_to_try_again() {
    let server = TestServer::start();
    corp(&server).await;
    // The CLI connects from 127.0.0.1; three failures from there first.
    for _ in 0..3 {
        assert_eq!(server.login_from("127.0.0.1", T, "alice", "wrong").await.status, 401);
    }
    let cli = server.cli();
    let ca = server.ca_file().display().to_string();
    let pw = cli.secret_file("alice.pw", ALICE_PW);
    let url = server.url();
    let out = cli.run(&[
        "login",
        "--server",
        &url,
        "--ca-file",
        &ca,
        "--tenant",
        T,
        "--user",
        "alice",
        "--password-file",
        &pw,
    ]);
    assert!(!out.status.success(), "even the right password waits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("too many failed logins from 127.0.0.1; try again in "), "{stderr}");
    assert!(stderr.contains("(too_many_requests, HTTP 429)"), "{stderr}");
}
