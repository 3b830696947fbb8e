//! LISTEN/NOTIFY: the fast path that carries trust changes across replicas.
//! Bumping a trust revision also runs `pg_notify('lightwell_trust', tenant)`
//! in the same transaction, so PostgreSQL delivers it on commit (and never
//! for a rolled-back change). One dedicated connection per subscriber, on
//! its own thread, LISTENs and reconnects after an outage.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use postgres::NoTls;
use postgres::fallible_iterator::FallibleIterator;

use crate::{ChangeCallback, ChangeSubscription, TenantId};

/// The notification channel of trust changes.
pub(super) const TRUST_CHANNEL: &str = "lightwell_trust";

/// How often the listener looks at its stop flag while no notification arrives.
const TICK: Duration = Duration::from_millis(500);

/// Starts the listener thread; `None` if the thread cannot be started.
pub(super) fn subscribe(config: postgres::Config, on_change: ChangeCallback) -> Option<ChangeSubscription> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("lightwell-pg-listen".into())
        .spawn(move || listen_loop(&config, &on_change, &flag))
        .map_err(|e| tracing::warn!(error = %e, "cannot start the PostgreSQL listener"))
        .ok()?;
    Some(ChangeSubscription::new(stop))
}

fn listen_loop(config: &postgres::Config, on_change: &ChangeCallback, stop: &AtomicBool) {
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    while !stop.load(Ordering::SeqCst) {
        match config.connect(NoTls) {
            Ok(mut client) => {
                if let Err(e) = client.batch_execute(&format!("LISTEN {TRUST_CHANNEL}")) {
                    tracing::warn!(error = %e, "LISTEN failed");
                } else {
                    backoff = Duration::from_millis(100);
                    if !first {
                        // Changes committed while disconnected were not delivered.
                        on_change(None);
                    }
                    first = false;
                    if let Err(e) = receive(&mut client, on_change, stop) {
                        tracing::warn!(error = %e, "the PostgreSQL change listener lost its connection; reconnecting");
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "the PostgreSQL change listener cannot connect yet"),
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn receive(
    client: &mut postgres::Client,
    on_change: &ChangeCallback,
    stop: &AtomicBool,
) -> Result<(), postgres::Error> {
    while !stop.load(Ordering::SeqCst) {
        {
            let mut notifications = client.notifications();
            let mut iter = notifications.timeout_iter(TICK);
            while let Some(n) = iter.next()? {
                on_change(Some(&TenantId::new(n.payload().to_string())));
            }
        }
        // A timeout also returns here; a dead connection only shows as an
        // error on the next use, so check it between waits.
        if client.is_closed() {
            return client.simple_query("").map(drop);
        }
    }
    Ok(())
}
