//! What the CLI remembers between runs: the server (or several replicas,
//! comma-separated, tried in order), how it is trusted, the tenant, and one
//! bearer token per (server, tenant) — in
//! `$LIGHTWELL_CONFIG_DIR/credentials.json` (default
//! `$XDG_CONFIG_HOME/lightwell` or `~/.config/lightwell`), mode 0600.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use lightwell_client::{Client, Trust};
use serde::{Deserialize, Serialize};

use crate::args::GlobalArgs;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum SavedTrust {
    CaPem(String),
    Fingerprint(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Current {
    server: String,
    trust: SavedTrust,
    tenant: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    current: Option<Current>,
    #[serde(default)]
    sessions: BTreeMap<String, String>,
}

/// The resolved connection settings of one CLI run.
#[derive(Debug)]
pub(crate) struct Context {
    path: PathBuf,
    saved: Saved,
    server: Option<String>,
    trust: Option<SavedTrust>,
    tenant: Option<String>,
}

fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("LIGHTWELL_CONFIG_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(d).join("lightwell"));
    }
    let home = std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set; set LIGHTWELL_CONFIG_DIR"))?;
    Ok(PathBuf::from(home).join(".config").join("lightwell"))
}

/// `https://a/, https://b` → `https://a,https://b`: one spelling per list, so
/// the saved session of a list of replicas is found again.
fn normalize_servers(list: &str) -> String {
    list.split(',').map(|s| s.trim().trim_end_matches('/')).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(",")
}

fn session_key(server: &str, tenant: Option<&str>) -> String {
    format!("{server}|{}", tenant.unwrap_or(""))
}

impl Context {
    /// Loads saved state and overlays the command's flags.
    pub(crate) fn load(global: &GlobalArgs) -> anyhow::Result<Self> {
        let path = config_dir()?.join("credentials.json");
        let saved: Saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let flag_trust = match (&global.ca_file, &global.ca_fingerprint) {
            (Some(f), _) => Some(SavedTrust::CaPem(
                std::fs::read_to_string(f).with_context(|| format!("reading CA file {}", f.display()))?,
            )),
            (None, Some(fp)) => {
                Trust::fingerprint(fp)?;
                Some(SavedTrust::Fingerprint(fp.clone()))
            }
            (None, None) => None,
        };
        let server = global.server.as_deref().map(normalize_servers);
        let current = saved.current.clone();
        let same_server = |c: &Current| server.as_ref().is_none_or(|s| *s == c.server);
        let trust = flag_trust.or_else(|| current.as_ref().filter(|c| same_server(c)).map(|c| c.trust.clone()));
        let tenant = global
            .tenant
            .clone()
            .or_else(|| current.as_ref().filter(|c| same_server(c)).and_then(|c| c.tenant.clone()));
        let server = server.or_else(|| current.map(|c| c.server));
        Ok(Self { path, saved, server, trust, tenant })
    }

    pub(crate) fn server(&self) -> anyhow::Result<&str> {
        self.server.as_deref().ok_or_else(|| anyhow!("no server: pass --server URL (or log in first)"))
    }

    pub(crate) fn tenant(&self) -> anyhow::Result<&str> {
        self.tenant.as_deref().ok_or_else(|| anyhow!("no tenant: pass --tenant DOMAIN (or log in to one)"))
    }

    /// The server's CA certificates (PEM), when it is trusted by them rather than by a fingerprint.
    pub(crate) fn ca_pem(&self) -> Option<&str> {
        match &self.trust {
            Some(SavedTrust::CaPem(pem)) => Some(pem),
            _ => None,
        }
    }

    fn trust(&self) -> anyhow::Result<Trust> {
        match &self.trust {
            Some(SavedTrust::CaPem(pem)) => Ok(Trust::CaPem(pem.as_bytes().to_vec())),
            Some(SavedTrust::Fingerprint(fp)) => Ok(Trust::fingerprint(fp)?),
            None => bail!("the server is not trusted yet: pass --ca-file server-ca.pem or --ca-fingerprint sha256:HEX"),
        }
    }

    /// A client without credentials; with several servers it fails over
    /// across them in order (see [`Client`]).
    pub(crate) fn anonymous(&self) -> anyhow::Result<Client> {
        let servers: Vec<&str> = self.server()?.split(',').collect();
        Ok(Client::with_servers(&servers, &self.trust()?, None)?)
    }

    fn session(&self, tenant: Option<&str>) -> anyhow::Result<Client> {
        let server = self.server()?;
        let token = self.saved.sessions.get(&session_key(server, tenant)).ok_or_else(|| match tenant {
            Some(t) => anyhow!("not logged in to {t} on {server}: run lightwell login"),
            None => anyhow!("not logged in as the operator on {server}: run lightwell login --operator"),
        })?;
        Ok(self.anonymous()?.with_token(token.clone()))
    }

    /// A client with the session of the current tenant.
    pub(crate) fn tenant_client(&self) -> anyhow::Result<(Client, String)> {
        let tenant = self.tenant()?.to_string();
        Ok((self.session(Some(&tenant))?, tenant))
    }

    /// A client with the operator's session.
    pub(crate) fn operator_client(&self) -> anyhow::Result<Client> {
        self.session(None)
    }

    /// The client for whichever session is current: the tenant's if a tenant is set, else the operator's.
    pub(crate) fn current_client(&self) -> anyhow::Result<Client> {
        self.session(self.tenant.as_deref())
    }

    /// Remembers a successful login as the current context.
    pub(crate) fn save_login(&mut self, tenant: Option<&str>, token: &str) -> anyhow::Result<()> {
        let server = self.server()?.to_string();
        let trust = self.trust.clone().ok_or_else(|| anyhow!("no trust anchor"))?;
        self.saved.sessions.insert(session_key(&server, tenant), token.to_string());
        self.saved.current = Some(Current { server, trust, tenant: tenant.map(str::to_string) });
        self.store()
    }

    /// Forgets the session of the current context.
    pub(crate) fn forget_session(&mut self) -> anyhow::Result<()> {
        let key = session_key(self.server()?, self.tenant.as_deref());
        self.saved.sessions.remove(&key);
        self.store()
    }

    fn store(&self) -> anyhow::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let bytes = serde_json::to_vec_pretty(&self.saved)?;
        lightwell_agent::files::write_atomic(&self.path, &bytes, 0o600)
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_servers;

    #[test]
    fn a_server_list_has_one_spelling() {
        assert_eq!(normalize_servers("https://a:8443/"), "https://a:8443");
        assert_eq!(normalize_servers(" https://a:8443/, https://b:8443 ,"), "https://a:8443,https://b:8443");
    }
}
