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
