//! `--clock-offset-file`: an implementation of the one [`Clock`] trait (see
//! `lightwell_ca::clock`), the wall clock shifted by an offset read from a
//! file at each reading. The offset exists for end-to-end tests of
//! time-dependent behaviour (lockout windows, token expiry, CRL freshness,
//! an agent's renewal) against the real binary; it is off unless
//! `clock_offset_file` is configured, and its use is logged loudly.

use std::path::PathBuf;

use lightwell_core::clock::{Clock, SystemClock};
use time::OffsetDateTime;

/// Wall clock plus the number of seconds written in a file.
#[derive(Debug)]
pub(crate) struct FileOffsetClock {
    path: PathBuf,
}

impl FileOffsetClock {
    pub(crate) fn new(path: PathBuf) -> Self {
        tracing::warn!(path = %path.display(), "TEST ONLY: the clock is shifted by the offset in this file");
        Self { path }
    }
}

impl Clock for FileOffsetClock {
    fn now(&self) -> OffsetDateTime {
        let offset = std::fs::read_to_string(&self.path).ok().and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0);
        SystemClock.now() + time::Duration::seconds(offset)
    }
}
