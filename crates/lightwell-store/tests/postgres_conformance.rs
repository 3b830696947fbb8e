//! The conformance suite against a real PostgreSQL server: one throwaway
//! cluster per test process, one fresh database per case.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use lightwell_store::postgres::PostgresStore;
use lightwell_testkit::postgres::PgCluster;

static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

fn fresh() -> Box<PostgresStore> {
    let cluster = CLUSTER.get_or_init(PgCluster::start);
    let name = format!("conformance_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    Box::new(PostgresStore::open(&cluster.create_database(&name)).expect("open"))
}

lightwell_store::conformance_tests!(fresh());

#[test]
fn schema_version_is_recorded_and_reopen_is_idempotent() {
    let cluster = CLUSTER.get_or_init(PgCluster::start);
    let url = cluster.create_database("reopen");
    let s = PostgresStore::open(&url).unwrap();
    assert_eq!(s.schema_version().unwrap(), lightwell_store::postgres::SCHEMA_VERSION);
    drop(s);
    let s = PostgresStore::open(&url).unwrap();
    assert_eq!(s.schema_version().unwrap(), lightwell_store::postgres::SCHEMA_VERSION);
}

#[test]
fn a_committed_trust_change_is_notified_to_every_listener_and_a_rolled_back_one_is_not() {
    use lightwell_store::{Store, StoreError, StoreExt, TenantId};
    use std::sync::mpsc;
    use std::time::Duration;
    let cluster = CLUSTER.get_or_init(PgCluster::start);
    let url = cluster.create_database("notify");
    // Two stores on one database stand for two replicas.
    let (a, b) = (PostgresStore::open(&url).unwrap(), PostgresStore::open(&url).unwrap());
    let (tx, rx) = mpsc::channel();
    let _sub = b
        .subscribe_changes(Box::new(move |t: Option<&TenantId>| {
            let _ = tx.send(t.map(|t| t.as_str().to_string()));
        }))
        .expect("PostgreSQL supports change notifications");
    // The listener connects in the background, and a change committed
    // before it LISTENs is not delivered: commit probes until one arrives.
    let started = std::time::Instant::now();
    loop {
        a.write(|tx| tx.bump_trust_revision(&TenantId::new("t-probe")).map(drop)).unwrap();
        if let Ok(got) = rx.recv_timeout(Duration::from_millis(100)) {
            assert_eq!(got.as_deref(), Some("t-probe"));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the listener never received a notification");
    }

    let rolled_back: Result<(), StoreError> = a.write(|tx| {
        tx.bump_trust_revision(&TenantId::new("t-rollback"))?;
        Err(StoreError::Aborted)
    });
    assert!(rolled_back.is_err());
    a.write(|tx| tx.bump_trust_revision(&TenantId::new("t1")).map(drop)).unwrap();
    // Notifications arrive in commit order: late probes, then t1, and the
    // rolled-back change (aborted between them) never.
    let got = loop {
        let got = rx.recv_timeout(Duration::from_secs(5)).expect("a notification");
        if got.as_deref() != Some("t-probe") {
            break got;
        }
    };
    assert_eq!(got.as_deref(), Some("t1"), "only the committed change is notified");
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
}
