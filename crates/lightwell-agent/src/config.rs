//! `agent.toml`: where the agent finds its servers and what it keeps current.
//!
//! ```toml
//! servers = ["https://lw1.corp.example:8443", "https://lw2.corp.example:8443"]
//! tenant = "corp.example"
//! hostname = "node1.corp.example"
//! server_ca_fingerprint = "sha256:..."  # or trust server-ca.pem in the state dir
//! key_type = "p256"
//! renew_at = 0.6667            # fraction of the lifetime after which to renew
//! resync_interval_secs = 300   # full resync even without pushed changes
//! workload_socket = "/run/lightwell/agent.sock"  # SPIFFE Workload API; "none" turns it off
//! workload_connections_per_uid = 256
//!
//! [hooks]
//! on_trust_change = "systemctl reload nginx"     # bundle or CRLs changed
//! on_identity_change = "systemctl reload nginx"  # machine key or certificate changed
//!
//! [[certificate]]                                # more identities to keep current
//! name = "payments"
//! service = "payments"
//! key_type = "p256"
//! cert_path = "/etc/payments/tls/cert.pem"       # leaf + intermediates
//! key_path = "/etc/payments/tls/key.pem"
//! hook = "systemctl reload payments"
//!
//! [[kubernetes]]                                 # kubelet identities (`lightwell k8s node add`)
//! cluster = "prod"
//! client_cert = "/var/lib/kubelet/pki/kubelet-client-current.pem"  # chain + key, 0600
//! serving_cert = "/var/lib/kubelet/pki/kubelet.crt"
//! serving_key = "/var/lib/kubelet/pki/kubelet.key"
//! ca_file = "/etc/kubernetes/pki/ca.crt"          # the cluster CA, for clientCAFile
//! kubelet_url = "https://127.0.0.1:10250"         # the kubelet's API, for k8s:ns/sa/pod-label
//! hook = "systemctl restart kubelet"
//! ```
//!
//! `kubelet_url` is where the Workload API asks the kubelet for the pods of
//! this node (`GET /pods`) when an entry selects by `k8s:ns`, `k8s:sa` or
//! `k8s:pod-label`. It authenticates with `client_cert` and believes only
//! a kubelet whose serving certificate chains to `ca_file` and names this
//! machine (`hostname`), as the serving certificate Lightwell issues does;
//! no other credential is kept for it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors reading or writing `agent.toml`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// The agent's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Server URLs, tried in turn (failover).
    pub servers: Vec<String>,
    /// Tenant domain.
    pub tenant: String,
    /// This machine's host name (its principal name).
    pub hostname: String,
    /// Trust the server by this SHA-256 fingerprint (`sha256:HEX`); otherwise
    /// by `server-ca.pem` in the state dir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ca_fingerprint: Option<String>,
    /// Key type of the machine key (`p256`, `p384`, `ed25519`, `rsa3072`, `rsa4096`).
    #[serde(default = "default_key_type")]
    pub key_type: String,
    /// Seconds between rotations of the machine secret.
    #[serde(default = "default_secret_rotation")]
    pub secret_rotation_secs: u64,
    /// Fraction of a certificate's lifetime after which it is renewed.
    #[serde(default = "default_renew_at")]
    pub renew_at: f64,
    /// Seconds between full resyncs of the trust bundle and CRLs.
    #[serde(default = "default_resync")]
    pub resync_interval_secs: u64,
    /// The SPIFFE Workload API's Unix socket; `none` serves no Workload API.
    #[serde(default = "default_workload_socket", skip_serializing_if = "is_default_workload_socket")]
    pub workload_socket: String,
    /// Workload API connections one uid may hold open at once.
    #[serde(default = "default_connections_per_uid", skip_serializing_if = "is_default_connections_per_uid")]
    pub workload_connections_per_uid: usize,
    /// Reload hooks.
    #[serde(default)]
    pub hooks: Hooks,
    /// Additional certificates to keep current.
    #[serde(default, rename = "certificate", skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<TrackedCertificate>,
    /// Kubelet identities of the clusters this machine is a node of.
    #[serde(default, rename = "kubernetes", skip_serializing_if = "Vec::is_empty")]
    pub kubernetes: Vec<KubeletIdentity>,
}

fn default_renew_at() -> f64 {
    2.0 / 3.0
}

fn default_resync() -> u64 {
    300
}

/// Where the Workload API listens unless configured otherwise (SPIRE's agent uses /tmp/spire-agent/public/api.sock).
pub const DEFAULT_WORKLOAD_SOCKET: &str = "/run/lightwell/agent.sock";

fn default_workload_socket() -> String {
    DEFAULT_WORKLOAD_SOCKET.into()
}

fn is_default_workload_socket(s: &str) -> bool {
    s == DEFAULT_WORKLOAD_SOCKET
}

fn default_connections_per_uid() -> usize {
    256
}

fn is_default_connections_per_uid(n: &usize) -> bool {
    *n == default_connections_per_uid()
}

fn default_secret_rotation() -> u64 {
    7 * 86_400
}

/// Hook commands (run with `sh -c`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// After the trust bundle or a CRL changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_trust_change: Option<String>,
    /// After the machine key or certificate changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_identity_change: Option<String>,
}

/// A certificate the agent keeps current besides the machine's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackedCertificate {
    /// Name for logs and status.
    pub name: String,
    /// The service principal the certificate is for.
    pub service: String,
    /// Key type (`p256`, `p384`, `ed25519`, `rsa3072`, `rsa4096`).
    #[serde(default = "default_key_type")]
    pub key_type: String,
    /// Where the leaf and intermediates go.
    pub cert_path: PathBuf,
    /// Where the private key goes (0600).
    pub key_path: PathBuf,
    /// Run after this certificate changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
}

/// The kubelet client and serving certificates of one cluster, at the paths
/// kubelet reads by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeletIdentity {
    /// The cluster's name in Lightwell.
    pub cluster: String,
    /// Key type (`p256`, `p384`, `rsa3072`, `rsa4096`).
    #[serde(default = "default_key_type")]
    pub key_type: String,
    /// Client certificate chain followed by its key (`system:node:<host>` in `system:nodes`), 0600.
    #[serde(default = "default_kubelet_client")]
    pub client_cert: PathBuf,
    /// Serving certificate chain (the machine's own names).
    #[serde(default = "default_kubelet_serving_cert")]
    pub serving_cert: PathBuf,
    /// Serving key (0600).
    #[serde(default = "default_kubelet_serving_key")]
    pub serving_key: PathBuf,
    /// Where the cluster CA certificate goes (kubelet's `clientCAFile`).
    #[serde(default = "default_kubelet_ca")]
    pub ca_file: PathBuf,
    /// The kubelet's API (`https://`), asked for the pods of this node when a
    /// workload entry selects by namespace, service account or pod label.
    #[serde(default = "default_kubelet_url", skip_serializing_if = "is_default_kubelet_url")]
    pub kubelet_url: String,
    /// Run after either certificate changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
}

fn default_kubelet_client() -> PathBuf {
    "/var/lib/kubelet/pki/kubelet-client-current.pem".into()
}

fn default_kubelet_serving_cert() -> PathBuf {
    "/var/lib/kubelet/pki/kubelet.crt".into()
}

fn default_kubelet_serving_key() -> PathBuf {
    "/var/lib/kubelet/pki/kubelet.key".into()
}

fn default_kubelet_ca() -> PathBuf {
    "/etc/kubernetes/pki/ca.crt".into()
}

/// The kubelet's authenticated port on this host.
pub const DEFAULT_KUBELET_URL: &str = "https://127.0.0.1:10250";

fn default_kubelet_url() -> String {
    DEFAULT_KUBELET_URL.into()
}

fn is_default_kubelet_url(s: &str) -> bool {
    s == DEFAULT_KUBELET_URL
}

fn default_key_type() -> String {
    "p256".into()
}

impl AgentConfig {
    /// Reads and validates `agent.toml`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
        let cfg: Self = toml::from_str(&text)
            .map_err(|e| ConfigError::Invalid { path: path.to_path_buf(), message: e.to_string() })?;
        cfg.validate().map_err(|message| ConfigError::Invalid { path: path.to_path_buf(), message })?;
        Ok(cfg)
    }

    /// Checks the settings are usable (after [`crate::settings::AgentSettings`] changed them too).
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.servers.is_empty() {
            return Err("servers must name at least one https:// URL".into());
        }
        if let Some(bad) = self.servers.iter().find(|s| !s.starts_with("https://")) {
            return Err(format!("server {bad:?} is not an https:// URL"));
        }
        if !(0.1..=0.95).contains(&self.renew_at) {
            return Err("renew_at must be between 0.1 and 0.95".into());
        }
        if self.resync_interval_secs < 10 {
            return Err("resync_interval_secs must be at least 10".into());
        }
        if self.workload_socket != "none" && !self.workload_socket.starts_with('/') {
            return Err("workload_socket must be an absolute path or \"none\"".into());
        }
        // sun_path holds 108 bytes with its terminating NUL.
        if self.workload_socket.len() > 107 {
            return Err("workload_socket is longer than a Unix socket path may be (107 bytes)".into());
        }
        if self.workload_connections_per_uid == 0 {
            return Err("workload_connections_per_uid must be at least 1".into());
        }
        if let Some(k) = self.kubernetes.iter().find(|k| {
            reqwest::Url::parse(&k.kubelet_url)
                .map_or(true, |u| u.scheme() != "https" || u.host().is_none() || u.path() != "/" || u.query().is_some())
        }) {
            return Err(format!(
                "kubelet_url {:?} of cluster {} is not an https:// URL of a host and port",
                k.kubelet_url, k.cluster
            ));
        }
        Ok(())
    }

    /// Writes `agent.toml` atomically.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = toml::to_string_pretty(self)
            .map_err(|e| ConfigError::Invalid { path: path.to_path_buf(), message: e.to_string() })?;
        crate::files::write_atomic(path, text.as_bytes(), 0o644)
            .map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        let doc = include_str!("config.rs").lines().filter_map(|l| l.strip_prefix("//! ")).collect::<Vec<_>>();
        let start = doc.iter().position(|l| l.starts_with("servers")).unwrap();
        let end = doc.iter().rposition(|l| l.starts_with("hook =")).unwrap();
        let example: String =
            doc[start..=end].iter().map(|l| l.split(" #").next().unwrap_or(l).trim_end().to_string() + "\n").collect();
        std::fs::write(&path, example).unwrap();
        let cfg = AgentConfig::load(&path).unwrap();
        assert_eq!(cfg.servers.len(), 2);
        assert_eq!(cfg.certificates[0].service, "payments");
        assert_eq!(cfg.kubernetes[0].cluster, "prod");
        assert_eq!(cfg.kubernetes[0].client_cert, default_kubelet_client());
        assert_eq!(cfg.kubernetes[0].kubelet_url, DEFAULT_KUBELET_URL);
        cfg.save(&path).unwrap();
        assert_eq!(AgentConfig::load(&path).unwrap(), cfg);
    }

    #[test]
    fn invalid_configurations_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        for (text, why) in [
            ("servers = []\ntenant = \"t.example\"\nhostname = \"h.t.example\"\n", "at least one"),
            ("servers = [\"http://x\"]\ntenant = \"t.example\"\nhostname = \"h.t.example\"\n", "https"),
            ("servers = [\"https://x\"]\ntenant = \"t.example\"\nhostname = \"h\"\nrenew_at = 1.5\n", "renew_at"),
            ("servers = [\"https://x\"]\ntenant = \"t.example\"\nhostname = \"h\"\ncolour = 1\n", "colour"),
            (
                "servers = [\"https://x\"]\ntenant = \"t\"\nhostname = \"h\"\n\n[[kubernetes]]\ncluster = \"prod\"\nkubelet_url = \"http://127.0.0.1:10255\"\n",
                "kubelet_url",
            ),
            (
                "servers = [\"https://x\"]\ntenant = \"t\"\nhostname = \"h\"\n\n[[kubernetes]]\ncluster = \"prod\"\nkubelet_url = \"https://127.0.0.1:10250/pods\"\n",
                "kubelet_url",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = AgentConfig::load(&path).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }
}
