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
