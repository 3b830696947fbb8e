//! The audit chains on two `lightwelld` replicas sharing one PostgreSQL
//! database: records appended and checkpoints taken on both at once leave
//! every chain, its head MAC and its checkpoint consistent.
#![allow(clippy::unwrap_used)]

use lightwell_client::Client;
use lightwell_proto::CreateUserRequest;
use lightwell_testkit::{ha, pki};

const T: &str = "corp.example";

async fn create_users(admin: Client, prefix: &'static str) {
    for i in 0..15 {
        let req = CreateUserRequest { name: format!("{prefix}{i}"), ..Default::default() };
        admin.create_principal(T, "users", &req).await.unwrap();
    }
}

async fn checkpoints(op: Client) {
    for _ in 0..10 {
        let r = op.audit_checkpoint().await.unwrap();
        assert!(r.refused.is_empty(), "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn appends_and_checkpoints_on_both_replicas_at_once_keep_every_chain_verifying() {
    let r = ha::replicas(ha::cluster(), 2, &[]);
    let (a, b) = (&r[0], &r[1]);
    let admin_a = pki::tenant(a, T, None).await;
    let admin_b = b.login(T, "administrator", pki::ADMIN_PASSWORD).await;
    let before = admin_a.audit_verify(Some(T)).await.unwrap().records;
    let (op_a, op_b) = (a.operator().await, b.operator().await);

    tokio::join!(
        create_users(admin_a.clone(), "a"),
        create_users(admin_b.clone(), "b"),
        checkpoints(op_a.clone()),
        checkpoints(op_b.clone()),
    );

    // One more run catches up with the last appends; the other replica's run
    // then finds the checkpoint already taken.
    op_a.audit_checkpoint().await.unwrap();
    assert_eq!(op_b.audit_checkpoint().await.unwrap().checkpointed, 0);
    for (admin, op) in [(&admin_a, &op_a), (&admin_b, &op_b)] {
        let v = admin.audit_verify(Some(T)).await.unwrap();
        assert!(v.valid, "{v:?}");
        assert_eq!(v.records, before + 30);
        assert_eq!(v.checkpoint, Some(v.records), "the newest checkpoint names the head");
        let sys = op.audit_verify(None).await.unwrap();
        assert!(sys.valid, "{sys:?}");
    }
}

/// Creates `n` users named `{prefix}{i}`, one request at a time.
async fn create_named(admin: Client, prefix: String, n: usize) {
    for i in 0..n {
        let req = CreateUserRequest { name: format!("{prefix}{i}"), ..Default::default() };
        admin.create_principal(T, "users", &req).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn many_concurrent_writers_on_two_replicas_leave_gapless_chains_with_each_record_once() {
    const WRITERS: usize = 6;
    const EACH: usize = 5;
    let r = ha::replicas(ha::cluster(), 2, &[]);
    let admins = [pki::tenant(&r[0], T, None).await, r[1].login(T, "administrator", pki::ADMIN_PASSWORD).await];
    let ops = [r[0].operator().await, r[1].operator().await];
    let before = admins[0].audit(Some(T), 0, 1000).await.unwrap().len();

    // Six writers per replica on the tenant chain, and tenants created on both
    // replicas at once on the system chain: every append races for a head.
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        for (i, admin) in admins.iter().enumerate() {
            tasks.push(tokio::spawn(create_named(admin.clone(), format!("r{i}w{w}u"), EACH)));
        }
    }
    for (i, op) in ops.iter().enumerate() {
        for t in 0..3 {
            let (op, domain) = (op.clone(), format!("t{t}.r{i}.example"));
            tasks.push(tokio::spawn(async move {
                let req: lightwell_proto::CreateTenantRequest =
                    serde_json::from_value(serde_json::json!({ "domain": domain })).unwrap();
                op.create_tenant(&req).await.unwrap();
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }

    // The tenant chain: sequence numbers 1..=n without a gap or a repeat, each creation once, the head at n.
    let records = admins[1].audit(Some(T), 0, 1000).await.unwrap();
    let seqs: Vec<i64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=records.len() as i64).collect::<Vec<_>>(), "a gapless chain");
    assert_eq!(records.len(), before + 2 * WRITERS * EACH);
    for i in 0..2 {
        for w in 0..WRITERS {
            for u in 0..EACH {
                let name = format!("r{i}w{w}u{u}");
                let n = records.iter().filter(|r| r.action == "user.create" && r.target == name).count();
                assert_eq!(n, 1, "{name} created once on record");
            }
        }
    }
    // The system chain: each tenant's creation once.
    let system = ops[0].audit(None, 0, 1000).await.unwrap();
    let seqs: Vec<i64> = system.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=system.len() as i64).collect::<Vec<_>>(), "a gapless system chain");
    for i in 0..2 {
        for t in 0..3 {
            let domain = format!("t{t}.r{i}.example");
            let n = system.iter().filter(|r| r.action == "tenant.create" && r.target == domain).count();
            assert_eq!(n, 1, "{domain} created once on record");
        }
    }
    for admin in &admins {
        let v = admin.audit_verify(Some(T)).await.unwrap();
        assert!(v.valid && v.records == records.len() as i64, "{v:?}");
    }
    for server in &r {
        ha::assert_audit_verifies(server, &[T]).await;
    }
}
