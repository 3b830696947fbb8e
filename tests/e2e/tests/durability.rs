//! Data survives restarts, and a kill -9 in the middle of a stream of writes
//! loses no write the server acknowledged.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lightwell_proto::CreateUserRequest;
use lightwell_testkit::TestServer;

const ADMIN_PW: &str = "Tenant-Admin-1!";
const T: &str = "corp.example";

#[tokio::test]
async fn a_restart_keeps_all_data() {
    let mut server = TestServer::start();
    let admin = server.create_tenant(T, ADMIN_PW).await;
    let req = CreateUserRequest {
        name: "alice".into(),
        password: Some("Rabbit-Hole-1!".into()),
        email: Some("alice@corp.example".into()),
        ..Default::default()
    };
    admin.create_principal(T, "users", &req).await.unwrap();
    admin
        .add_member(T, "CAAdmins", &lightwell_proto::AddMemberRequest { kind: "user".into(), name: "alice".into() })
        .await
        .unwrap();
    let before = admin.principal(T, "users", "alice").await.unwrap();

    assert!(server.stop(), "SIGTERM gives a clean exit");
    server.start_again();

    // The old token is still valid (sessions are stored), and so is the data.
    assert_eq!(admin.principal(T, "users", "alice").await.unwrap(), before);
    let alice = server.login(T, "alice", "Rabbit-Hole-1!").await;
    assert!(alice.whoami().await.unwrap().groups.contains(&"CAAdmins".to_string()));
    assert!(admin.audit_verify(Some(T)).await.unwrap().valid);
}

#[tokio::test]
async fn kill_9_under_a_stream_of_writes_loses_no_acknowledged_write() {
    let mut server = TestServer::start();
    let admin = server.create_tenant(T, ADMIN_PW).await;

    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (admin, acked, stop) = (admin.clone(), acked.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let name = format!("w{w}-u{i}");
                let req = serde_json::json!({ "name": name });
                match admin.create_principal(T, "users", &req).await {
                    Ok(_) => acked.lock().unwrap().push(name),
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    // Let writes flow, then pull the plug without warning.
    let started = std::time::Instant::now();
    while acked.lock().unwrap().len() < 40 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120) && !writers.iter().all(|w| w.is_finished()),
            "40 writes were never acknowledged: {} in {:?}, {} writers left",
            acked.lock().unwrap().len(),
            started.elapsed(),
            writers.iter().filter(|w| !w.is_finished()).count()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 40);

    server.start_again();
    let users = admin.list_principals(T, "users").await.unwrap();
    let names: std::collections::HashSet<_> = users.iter().map(|u| u.name.clone()).collect();
    let lost: Vec<_> = acked.iter().filter(|n| !names.contains(*n)).collect();
    assert!(lost.is_empty(), "acknowledged writes lost after kill -9: {lost:?}");
    assert!(admin.audit_verify(Some(T)).await.unwrap().valid, "the audit chain survived the crash");
}
