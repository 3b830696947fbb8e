//! `status.json` in the state dir: what `lightwell agent status` reports
//! beyond the certificate itself.

use serde::{Deserialize, Serialize};

use crate::state::StateDir;

/// The agent's last known state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Trust revision of the files on disk.
    pub revision: i64,
    /// Last successful sync with a server (Unix seconds).
    #[serde(default)]
    pub last_sync: Option<i64>,
    /// Last successful renewal or re-enrolment (Unix seconds).
    #[serde(default)]
    pub last_renewal: Option<i64>,
    /// Last machine-secret rotation (Unix seconds).
    #[serde(default)]
    pub last_secret_rotation: Option<i64>,
}

impl Status {
    fn path(state: &StateDir) -> std::path::PathBuf {
        state.root().join("status.json")
    }

    /// Reads `status.json` (defaults if missing or unreadable).
    pub fn load(state: &StateDir) -> Self {
        std::fs::read(Self::path(state)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Writes `status.json` atomically.
    pub fn save(&self, state: &StateDir) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::files::replace(&Self::path(state), &bytes, 0o644, crate::files::Durability::Advisory)
    }
}
