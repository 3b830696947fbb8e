//! The audit checkpoint file: an append-only copy, outside the database, of
//! the chain heads each checkpoint run verified, one JSON line each. Ship it
//! elsewhere (log forwarding, a write-once mount, `chattr +a`): someone who
//! can rewrite the database and holds the KEK can cut the audit chains so
//! that they verify, but not so that they still hold what this file names.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use lightwell_core::clock::rfc3339;
use lightwell_core::{ChainHead, CheckpointSink};
use lightwell_proto::AuditCheckpointLine;

/// Appends checkpoint lines to a file.
#[derive(Debug)]
pub(crate) struct CheckpointFile {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: std::fs::File,
    /// The head last written per chain: a run writes only chains that moved
    /// (every chain once after start).
    written: HashMap<String, (i64, String)>,
}

impl CheckpointFile {
    /// Opens (creating, mode 0600) the file for appending.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("opening the audit checkpoint file {}", path.display()))?;
        Ok(Self { path: path.to_path_buf(), state: Mutex::new(State { file, written: HashMap::new() }) })
    }
}

impl CheckpointSink for CheckpointFile {
    fn record(&self, at: i64, heads: &[ChainHead]) -> std::io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut lines = Vec::new();
        let mut moved = Vec::new();
        for h in heads {
            let key = h.scope.as_str().to_string();
            if state.written.get(&key).is_some_and(|(seq, hash)| *seq == h.seq && *hash == h.hash) {
                continue;
            }
            let line = AuditCheckpointLine {
                at: rfc3339(at),
                chain: if h.scope.is_system() { "system" } else { "tenant" }.to_string(),
                tenant_id: key.clone(),
                domain: h.domain.clone(),
                seq: h.seq,
                hash: h.hash.clone(),
            };
            serde_json::to_writer(&mut lines, &line)?;
            lines.push(b'\n');
            moved.push((key, (h.seq, h.hash.clone())));
        }
        if lines.is_empty() {
            return Ok(());
        }
        // One write of whole lines, then fsync: a line is either in the file or not.
        state
            .file
            .write_all(&lines)
            .and_then(|()| state.file.sync_data())
            .map_err(|e| std::io::Error::new(e.kind(), format!("appending to {}: {e}", self.path.display())))?;
        state.written.extend(moved);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use lightwell_store::TenantId;

    use super::*;

    fn head(scope: &str, seq: i64) -> ChainHead {
        ChainHead { scope: TenantId::new(scope), domain: format!("{scope}.example"), seq, hash: format!("h{seq}") }
    }

    #[test]
    fn a_run_appends_a_line_per_chain_that_moved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.jsonl");
        let sink = CheckpointFile::open(&path).unwrap();
        sink.record(0, &[head("a", 1), head("b", 1)]).unwrap();
        sink.record(60, &[head("a", 1), head("b", 2)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<AuditCheckpointLine> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let got: Vec<(&str, i64)> = lines.iter().map(|l| (l.tenant_id.as_str(), l.seq)).collect();
        assert_eq!(got, [("a", 1), ("b", 1), ("b", 2)]);
        assert_eq!(
            (lines[2].chain.as_str(), lines[2].domain.as_str(), lines[2].at.as_str()),
            ("tenant", "b.example", "1970-01-01T00:01:00Z")
        );
        drop(sink);
        // Reopening appends, and writes every chain once again.
        CheckpointFile::open(&path).unwrap().record(120, &[head("a", 1)]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 4);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
