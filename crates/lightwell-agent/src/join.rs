//! `lightwell join`: generate the machine key here, ask the server for a
//! machine account and certificate, and write the state dir — all or
//! nothing: the files are written to a temporary sibling directory that is
//! renamed into place only when complete.

use std::path::{Path, PathBuf};

use lightwell_ca::clock::Clock;
use lightwell_client::{Client, Trust};
use lightwell_proto::{JoinRequestBody, TrustStateBody};

use crate::changes::TrustFiles;
use crate::config::{AgentConfig, Hooks};
use crate::enroll::key_and_csr;
use crate::error::AgentError;
use crate::state::{CrlFile, StateDir};

/// How the joining host trusts the server.
#[derive(Debug, Clone)]
pub enum ServerTrust {
    /// A CA file (copied into the state dir as `server-ca.pem`).
    CaFile(PathBuf),
    /// A pinned fingerprint (kept in `agent.toml`).
    Fingerprint(String),
}

/// What `lightwell join` needs.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// Server URLs (the first that answers is used).
    pub servers: Vec<String>,
    /// Tenant domain.
    pub tenant: String,
    /// Join token; `None` when `bearer` (an administrator's session) is given.
    pub token: Option<String>,
    /// An administrator's bearer token, to join without a join token.
    pub bearer: Option<String>,
    /// This host's name.
    pub hostname: String,
    /// This host's IP addresses.
    pub ips: Vec<String>,
    /// Server trust.
    pub trust: ServerTrust,
    /// Key type of the machine key.
    pub key_type: String,
    /// State dir to create.
    pub state_dir: PathBuf,
}

/// The result of a join.
#[derive(Debug, Clone)]
pub struct JoinOutcome {
    /// The machine account.
    pub machine: String,
    /// The state dir written.
    pub state_dir: PathBuf,
    /// The trust revision the state dir holds.
    pub revision: i64,
    /// IP addresses asked for but not approved: not in the certificate.
    pub unapproved_ips: Vec<String>,
}

impl ServerTrust {
    /// The client-side trust setting.
    pub fn to_trust(&self) -> Result<Trust, AgentError> {
        Ok(match self {
            ServerTrust::CaFile(p) => Trust::CaPem(std::fs::read(p)?),
            ServerTrust::Fingerprint(fp) => Trust::fingerprint(fp)?,
        })
    }
}

/// Parses the PEM blocks of a trust state into DER roots, CRLs and delta CRLs.
pub fn trust_files(trust: &TrustStateBody) -> Result<TrustFiles, AgentError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
    let bad = |what: &str| AgentError::Other(format!("the server sent a malformed {what}"));
    let roots = CertificateDer::pem_slice_iter(trust.bundle.as_bytes())
        .map(|c| c.map(|c| c.to_vec()).map_err(|_| bad("trust bundle")))
        .collect::<Result<Vec<_>, _>>()?;
    let crls = |entries: &[lightwell_proto::CrlEntry]| {
        entries
            .iter()
            .map(|c| {
                let der = CertificateRevocationListDer::from_pem_slice(c.pem.as_bytes()).map_err(|_| bad("CRL"))?;
                Ok(CrlFile { ca_id: c.ca_id.clone(), der: der.to_vec() })
            })
            .collect::<Result<Vec<_>, AgentError>>()
    };
    Ok(TrustFiles { roots, crls: crls(&trust.crls)?, delta_crls: crls(&trust.delta_crls)? })
}

/// The CA certificates of the machine's chain (chain.pem without the leaf):
/// issuers whose CRL signatures the agent can check.
pub fn chain_cas(state: &StateDir) -> Result<Vec<Vec<u8>>, AgentError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let chain = std::fs::read(state.chain())?;
    let certs = CertificateDer::pem_slice_iter(&chain)
        .skip(1)
        .map(|c| c.map(|c| c.to_vec()).map_err(|_| AgentError::Other("chain.pem is malformed".into())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(certs)
}

fn staging_dir(target: &Path) -> Result<PathBuf, AgentError> {
    let name = target.file_name().ok_or_else(|| AgentError::Other("state dir has no name".into()))?;
    let suffix = hex::encode(lightwell_ca::random::bytes::<4>()?);
    Ok(target.with_file_name(format!(".{}.joining-{suffix}", name.to_string_lossy())))
}

/// Joins the domain and writes the state dir; the machine secret's age
/// starts at `clock`'s now.
pub async fn join(opts: &JoinOptions, clock: &dyn Clock) -> Result<JoinOutcome, AgentError> {
    let target = &opts.state_dir;
    if target.join("agent.toml").exists() {
        return Err(AgentError::Other(format!(
            "{} already holds a joined identity; run `lightwell leave` first",
            target.display()
        )));
    }
    if target.exists() && std::fs::read_dir(target)?.next().is_some() {
        return Err(AgentError::Other(format!("{} exists and is not empty", target.display())));
    }
    let trust = opts.trust.to_trust()?;
    let (key_pem, csr_pem) = key_and_csr(&opts.key_type, &opts.hostname)?;
    let body = JoinRequestBody {
        token: opts.token.clone(),
        hostname: opts.hostname.clone(),
        ips: opts.ips.clone(),
        csr: csr_pem,
    };
    let servers = crate::servers::Servers::new(&opts.servers, &trust, None)?;
    let bearer = opts.bearer.clone();
    let joined = servers
        .call(|c: Client| {
            let c = match &bearer {
                Some(t) => c.with_token(t.clone()),
                None => c,
            };
            let body = body.clone();
            let tenant = opts.tenant.clone();
            async move { c.join(&tenant, &body).await }
        })
        .await?;

    // Everything goes into a staging dir first; the rename makes it appear whole.
    let staging = StateDir::new(staging_dir(target)?);
    let result = (|| -> Result<(), AgentError> {
        staging.create()?;
        staging.write_identity(Some(&key_pem), &joined.certificate, &joined.chain)?;
        staging.write_secret(&joined.machine_secret)?;
        staging.write_trust(&trust_files(&joined.trust)?)?;
        let fingerprint = match &opts.trust {
            ServerTrust::CaFile(p) => {
                crate::files::write_atomic(&staging.server_ca(), &std::fs::read(p)?, 0o644)?;
                None
            }
            ServerTrust::Fingerprint(fp) => Some(fp.clone()),
        };
        let config = AgentConfig {
            servers: opts.servers.clone(),
            tenant: opts.tenant.clone(),
            hostname: joined.machine.clone(),
            server_ca_fingerprint: fingerprint,
            key_type: opts.key_type.clone(),
            secret_rotation_secs: 7 * 86_400,
            renew_at: 2.0 / 3.0,
            resync_interval_secs: 300,
            workload_socket: crate::config::DEFAULT_WORKLOAD_SOCKET.into(),
            workload_connections_per_uid: 256,
            hooks: Hooks::default(),
            certificates: vec![],
            kubernetes: vec![],
        };
        config.save(&staging.config())?;
        let issued = clock.unix();
        let status = crate::status::Status {
            revision: joined.trust.revision,
            last_secret_rotation: Some(issued),
            ..Default::default()
        };
        status.save(&staging)?;
        if target.exists() {
            std::fs::remove_dir(target)?;
        }
        std::fs::rename(staging.root(), target)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(staging.root());
        return Err(e);
    }
    Ok(JoinOutcome {
        machine: joined.machine,
        state_dir: target.clone(),
        revision: joined.trust.revision,
        unapproved_ips: joined.unapproved_ips,
    })
}

#[cfg(test)]
mod tests {
    use lightwell_proto::CrlEntry;

    use super::*;

    #[test]
    fn trust_state_pem_is_parsed_and_garbage_refused() {
        let body = |bundle: String, crl: String| TrustStateBody {
            revision: 1,
            bundle,
            crls: vec![CrlEntry { ca_id: "c1".into(), pem: crl.clone() }],
            delta_crls: vec![CrlEntry { ca_id: "c1".into(), pem: crl }],
        };
        let two = format!(
            "{}{}",
            lightwell_ca::pem::encode("CERTIFICATE", b"one"),
            lightwell_ca::pem::encode("CERTIFICATE", b"two")
        );
        let crl = lightwell_ca::pem::encode("X509 CRL", b"crl");
        let files = trust_files(&body(two, crl.clone())).unwrap();
        assert_eq!(files.roots, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(files.crls[0].der, b"crl");
        assert_eq!(files.delta_crls[0].der, b"crl");
        let garbage = "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n".to_string();
        assert!(trust_files(&body(garbage, crl)).is_err());
        assert!(trust_files(&body(String::new(), "nothing".into())).is_err());
    }
}
