//! The watch hub: tells long-polling agents when a tenant's trust revision
//! (bundle or CRLs) changes.
//!
//! One background task reads every tenant's revision from the database and
//! wakes the watchers of the tenants whose revision grew. It reads as soon as
//! a trust change of this process has committed (`Service::trust_committed`),
//! as soon as the store reports one (LISTEN/NOTIFY on PostgreSQL: a change
//! committed by any replica), and every 100 ms regardless — the safety net for
//! a lost notification and the only path on SQLite. Reading the database
//! rather than trusting in-process events is what lets a change committed by
//! another replica reach agents connected here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightwell_core::{Service, TenantId};
use tokio::sync::{Notify, watch};

/// Fan-out of trust revisions to watchers.
#[derive(Debug)]
pub(crate) struct WatchHub {
    service: Service,
    tenants: Mutex<HashMap<TenantId, watch::Sender<i64>>>,
    interval: Duration,
}

impl WatchHub {
    pub(crate) fn new(service: Service, interval: Duration) -> Arc<Self> {
        Arc::new(Self { service, tenants: Mutex::new(HashMap::new()), interval })
    }

    fn sender(&self, tenant: &TenantId, current: i64) -> watch::Sender<i64> {
        let mut map = self.tenants.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = map.entry(tenant.clone()).or_insert_with(|| watch::channel(current).0);
        tx.send_if_modified(|r| {
            let newer = current > *r;
            if newer {
                *r = current;
            }
            newer
        });
        tx.clone()
    }

    /// Waits until the tenant's revision exceeds `since` or `timeout` passes;
    /// returns the revision then known.
    pub(crate) async fn wait(&self, tenant: &TenantId, current: i64, since: i64, timeout: Duration) -> i64 {
        if current > since {
            return current;
        }
        let mut rx = self.sender(tenant, current).subscribe();
        let woke = tokio::time::timeout(timeout, rx.wait_for(|r| *r > since)).await.map(|r| r.map(|r| *r));
        match woke {
            Ok(Ok(r)) => r,
            _ => *rx.borrow(),
        }
    }

    /// Reads revisions on every change notification and every interval, until `stop` fires.
    pub(crate) async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let changed = Arc::new(Notify::new());
        let waker = changed.clone();
        // Kept alive for as long as this loop runs; dropping it stops the listener.
        let _subscription = self.service.subscribe_trust_changes(Box::new(move |_tenant| waker.notify_one()));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = changed.notified() => {}
                _ = self.service.trust_committed() => {}
                _ = stop.changed() => return,
            }
            match self.service.trust_revisions().await {
                Ok(revisions) => {
                    for (tenant, revision) in revisions {
                        // Only tenants someone watched have a sender; others cost nothing.
                        let known = self
                            .tenants
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .contains_key(&tenant);
                        if known {
                            self.sender(&tenant, revision);
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "reading trust revisions"),
            }
        }
    }
}
