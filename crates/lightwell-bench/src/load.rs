//! A closed-loop load generator: C clients, each sending its next request
//! as soon as the previous one is answered, for a warm-up and then a
//! measured window. Throughput counts the requests completed inside the
//! window; latencies are those of the requests started inside it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::task::JoinSet;

use crate::stats::Summary;

/// One request of one client.
pub(crate) type Request = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<()>> + Send>> + Send + Sync>;

/// What a run measured.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Requests completed in the measured window, per second.
    pub(crate) per_sec: f64,
    /// Latencies of the requests started in the window.
    pub(crate) latency: Option<Summary>,
    /// Requests that failed (warm-up included).
    pub(crate) errors: usize,
    /// The first failure, to show what went wrong.
    pub(crate) first_error: Option<String>,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "per_s={:.1} ", self.per_sec)?;
        match &self.latency {
            Some(s) => write!(f, "{s}")?,
            None => f.write_str("no_samples")?,
        }
        write!(f, " errors={}", self.errors)
    }
}

/// Runs one closed loop per entry of `clients` for `warmup + window`.
pub(crate) async fn closed_loop(clients: Vec<Request>, warmup: Duration, window: Duration) -> Outcome {
    let start = Instant::now() + warmup;
    let end = start + window;
    let mut tasks = JoinSet::new();
    for request in clients {
        tasks.spawn(async move {
            let (mut latencies, mut done, mut errors, mut first_error) = (Vec::new(), 0usize, 0usize, None);
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let result = request().await;
                let answered = Instant::now();
                match result {
                    Ok(()) => {
                        if sent >= start {
                            latencies.push(answered - sent);
                        }
                        if answered >= start && answered <= end {
                            done += 1;
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                        // Do not spin on a persistent failure.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (latencies, done, errors, first_error)
        });
    }
    let (mut all, mut done, mut errors, mut first_error) = (Vec::new(), 0, 0, None);
    while let Some(Ok((latencies, n, e, first))) = tasks.join_next().await {
        all.extend(latencies);
        done += n;
        errors += e;
        if first_error.is_none() {
            first_error = first;
        }
    }
    Outcome { per_sec: done as f64 / window.as_secs_f64(), latency: Summary::of(&all), errors, first_error }
}
