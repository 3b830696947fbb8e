//! Change notifications across processes sharing one database (see
//! [`Store::subscribe_changes`](crate::Store::subscribe_changes)).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::TenantId;

/// Called from the listener's thread: `Some(tenant)` when that tenant's trust
/// revision changed, `None` when changes may have been missed (after a
/// reconnect) and every tenant should be re-read.
pub type ChangeCallback = Box<dyn Fn(Option<&TenantId>) + Send + Sync>;

/// A running change listener; dropping it stops the listener (within about a second).
#[derive(Debug)]
pub struct ChangeSubscription {
    stop: Arc<AtomicBool>,
}

impl ChangeSubscription {
    /// A subscription whose listener watches `stop`. Only the PostgreSQL
    /// backend listens (SQLite has one process), so a SQLite-only build has no caller.
    #[cfg(feature = "postgres")]
    pub(crate) fn new(stop: Arc<AtomicBool>) -> Self {
        Self { stop }
    }
}

impl Drop for ChangeSubscription {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
