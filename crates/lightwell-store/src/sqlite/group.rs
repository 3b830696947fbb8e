//! Group commit on the writer connection. SQLite with `synchronous=FULL`
//! fsyncs the WAL at every commit, and one commit at a time: under
//! concurrent writes (issuance, joins) the fsync, not the work, sets the
//! rate. Here writers that queue up while a commit is in progress join one
//! transaction, each inside its own savepoint, and the last of them commits
//! for all: one fsync for the batch.
//!
//! What each caller sees is unchanged: its closure runs alone on the
//! connection (the mutex), a closure that fails (or panics) is rolled back to
//! its savepoint and leaves the others' work alone, and `write` returns only
//! after the COMMIT holding the caller's changes has succeeded — durable, as
//! before. A failed COMMIT fails every member of the batch. Members see the
//! uncommitted changes of earlier members of their batch; they commit or fail
//! together, so no caller acts on data that is later lost.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;

use crate::StoreError;

/// Most closures in one transaction, so a long queue still commits regularly.
const MAX_BATCH: usize = 128;
/// Failed batches remembered for members that wake up late.
const FAILURES_KEPT: usize = 64;

/// The writer connection and the batch open on it.
#[derive(Debug)]
pub(super) struct Writer {
    pub(super) conn: Connection,
    /// A transaction is open (BEGIN IMMEDIATE done, COMMIT not yet).
    open: bool,
    /// Number of the open batch, or of the last one.
    batch: u64,
    /// Closures of the open batch that succeeded.
    members: usize,
    /// Highest batch whose COMMIT (or failure) is known.
    settled: u64,
    /// Batches whose COMMIT failed, with the error.
    failures: VecDeque<(u64, String)>,
}

/// The writer with group commit.
#[derive(Debug)]
pub(super) struct GroupWriter {
    writer: Mutex<Writer>,
    settled: Condvar,
    /// Writers waiting for the mutex; while there are any, a batch stays open for them.
    queued: AtomicUsize,
}

fn relock<'a>(r: Result<MutexGuard<'a, Writer>, PoisonError<MutexGuard<'a, Writer>>>) -> MutexGuard<'a, Writer> {
    // A panicking closure was rolled back to its savepoint before the panic
    // resumed, so the connection is consistent.
    r.unwrap_or_else(PoisonError::into_inner)
}

impl GroupWriter {
    pub(super) fn new(conn: Connection) -> Self {
        let writer = Writer { conn, open: false, batch: 0, members: 0, settled: 0, failures: VecDeque::new() };
        Self { writer: Mutex::new(writer), settled: Condvar::new(), queued: AtomicUsize::new(0) }
    }

    /// The connection alone, with no batch open (for maintenance: ping, export, import).
    pub(super) fn exclusive(&self) -> MutexGuard<'_, Writer> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let mut w = relock(self.writer.lock());
        self.queued.fetch_sub(1, Ordering::SeqCst);
        if w.open {
            let _ = self.commit(&mut w);
        }
        w
    }

    /// Runs `f` in a savepoint of the current batch and returns once the batch is committed.
    pub(super) fn write(&self, f: &mut dyn FnMut(&Connection) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let mut w = relock(self.writer.lock());
        self.queued.fetch_sub(1, Ordering::SeqCst);
        if !w.open {
            w.conn.execute_batch("BEGIN IMMEDIATE")?;
            w.open = true;
            w.batch += 1;
            w.members = 0;
        }
        let batch = w.batch;
        let outcome = match w.conn.execute_batch("SAVEPOINT member") {
            Ok(()) => catch_unwind(AssertUnwindSafe(|| f(&w.conn))),
            Err(e) => Ok(Err(e.into())),
        };
        let kept = matches!(outcome, Ok(Ok(())));
        let end = if kept { "RELEASE member" } else { "ROLLBACK TO member; RELEASE member" };
        let ended = w.conn.execute_batch(end);
        if kept {
            w.members += 1;
        }
        let result = if ended.is_err() {
            // The savepoint is in an unknown state: give up the whole batch.
            let _ = w.conn.execute_batch("ROLLBACK");
            self.settle(&mut w, Some("the transaction could not be closed".into()));
            Err(StoreError::Backend("the transaction could not be closed".into()))
        } else if self.queued.load(Ordering::SeqCst) == 0 || w.members >= MAX_BATCH {
            self.commit(&mut w)
        } else {
            // The writers queued behind us join this batch; the last one commits.
            while w.settled < batch {
                w = relock(self.settled.wait(w));
            }
            match w.failures.iter().find(|(b, _)| *b == batch) {
                Some((_, e)) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
                None => Ok(()),
            }
        };
        drop(w);
        match outcome {
            Err(panic) => resume_unwind(panic),
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => result,
        }
    }

    /// Commits the open batch and wakes its members.
    fn commit(&self, w: &mut Writer) -> Result<(), StoreError> {
        match w.conn.execute_batch("COMMIT") {
            Ok(()) => {
                self.settle(w, None);
                Ok(())
            }
            Err(e) => {
                let _ = w.conn.execute_batch("ROLLBACK");
                self.settle(w, Some(e.to_string()));
                Err(e.into())
            }
        }
    }

    fn settle(&self, w: &mut Writer, failure: Option<String>) {
        w.open = false;
        w.settled = w.batch;
        if let Some(e) = failure {
            if w.failures.len() == FAILURES_KEPT {
                w.failures.pop_front();
            }
            w.failures.push_back((w.batch, e));
        }
        self.settled.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn writer() -> (tempfile::TempDir, Arc<GroupWriter>) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (n INTEGER PRIMARY KEY)").unwrap();
        (dir, Arc::new(GroupWriter::new(conn)))
    }

    #[test]
    fn concurrent_writers_keep_their_own_outcome() {
        let (_dir, w) = writer();
        let threads: Vec<_> = (0..8i64)
            .map(|t| {
                let w = w.clone();
                std::thread::spawn(move || {
                    let mut ok = 0;
                    for i in 0..50i64 {
                        let n = t * 1000 + i;
                        let r = w.write(&mut |c| {
                            c.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                            if n % 7 == 0 { Err(StoreError::Conflict("refused".into())) } else { Ok(()) }
                        });
                        assert_eq!(r.is_ok(), n % 7 != 0);
                        ok += usize::from(r.is_ok());
                    }
                    ok
                })
            })
            .collect();
        let written: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let g = w.exclusive();
        let rows: i64 = g.conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        let refused: i64 = g.conn.query_row("SELECT COUNT(*) FROM t WHERE n % 7 = 0", [], |r| r.get(0)).unwrap();
        assert_eq!((rows as usize, refused), (written, 0));
        assert!(g.conn.is_autocommit(), "no transaction is left open");
    }

    #[test]
    fn a_panicking_writer_is_rolled_back_and_the_next_one_commits() {
        let (_dir, w) = writer();
        let w2 = w.clone();
        let panicked = std::thread::spawn(move || {
            w2.write(&mut |c| {
                c.execute("INSERT INTO t (n) VALUES (1)", [])?;
                panic!("boom")
            })
        })
        .join();
        assert!(panicked.is_err());
        w.write(&mut |c| c.execute("INSERT INTO t (n) VALUES (2)", []).map(drop).map_err(Into::into)).unwrap();
        let g = w.exclusive();
        let rows: Vec<i64> = g
            .conn
            .prepare("SELECT n FROM t")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows, vec![2]);
    }
}
