//! The agent state dir (DESIGN.md section 4), default `/var/lib/lightwell`:
//!
//! ```text
//! agent.toml        key.pem  cert.pem  chain.pem  (leaf + intermediates)
//! bundle.pem        (trusted roots)   crl/<ca-id>.crl.pem   capath/ (HASH.0, HASH.rN)
//!                   crl/<ca-id>.delta.crl.pem (an issuing CA's delta CRL, also in capath/)
//! crl.pem           (every CRL above, concatenated: nginx `ssl_crl`, HAProxy `crl-file`)
//! ocsp.der          (the machine certificate's OCSP response, to staple from a file)
//! machine.secret    (fallback credential to re-enrol after expiry or revocation)
//! server-ca.pem     (how the agent trusts the server)
//! ```
//!
//! Every file is replaced atomically; private keys and the secret are 0600.
//! Writers report which files actually changed, so hooks run only on change.

use std::path::{Path, PathBuf};

use lightwell_ca::pem;

use crate::changes::TrustFiles;
use crate::files::Durability;
use crate::{capath, files};

/// The default state dir.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/lightwell";

/// A CRL as the agent keeps it: the id of the CA that issued it and its DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlFile {
    /// CA id (names the file `crl/<ca-id>.crl.pem`).
    pub ca_id: String,
    /// DER of the CRL.
    pub der: Vec<u8>,
}

/// Errors writing the state dir.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A file operation failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A certificate or CRL could not be read.
    #[error("{0}")]
    Pki(#[from] lightwell_ca::Error),
    /// A CA id is not a safe file name.
    #[error("invalid CA id {0:?}")]
    BadCaId(String),
}

/// Paths of a state dir.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

fn write_if_changed(
    path: &Path,
    contents: &[u8],
    mode: u32,
    durability: Durability,
    changed: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    if std::fs::read(path).ok().as_deref() != Some(contents) {
        // The agent's log names the file a full or read-only disk refused.
        files::replace(path, contents, mode, durability)
            .map_err(|e| std::io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))?;
        changed.push(path.to_path_buf());
    }
    Ok(())
}

impl StateDir {
    /// A state dir at `root` (not created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `agent.toml`.
    pub fn config(&self) -> PathBuf {
        self.root.join("agent.toml")
    }
    /// `key.pem`.
    pub fn key(&self) -> PathBuf {
        self.root.join("key.pem")
    }
    /// `cert.pem`.
    pub fn cert(&self) -> PathBuf {
        self.root.join("cert.pem")
    }
    /// `chain.pem`.
    pub fn chain(&self) -> PathBuf {
        self.root.join("chain.pem")
    }
    /// `bundle.pem`.
    pub fn bundle(&self) -> PathBuf {
        self.root.join("bundle.pem")
    }
    /// `ocsp.der`: the machine certificate's OCSP response, to staple.
    pub fn staple(&self) -> PathBuf {
        self.root.join("ocsp.der")
    }

    /// `crl.pem`: every CRL of the tenant's CAs in one file. TLS servers
    /// that check the whole chain (nginx's `ssl_crl` sets OpenSSL's
    /// `CRL_CHECK_ALL`) refuse every client when the CRL of any CA in its
    /// chain is missing, so one issuing CA's file is not enough for them.
    pub fn crl_bundle(&self) -> PathBuf {
        self.root.join("crl.pem")
    }

    /// `crl/`.
    pub fn crl_dir(&self) -> PathBuf {
        self.root.join("crl")
    }
    /// `capath/`.
    pub fn capath(&self) -> PathBuf {
        self.root.join("capath")
    }
    /// `machine.secret`.
    pub fn machine_secret(&self) -> PathBuf {
        self.root.join("machine.secret")
    }
    /// `server-ca.pem`.
    pub fn server_ca(&self) -> PathBuf {
        self.root.join("server-ca.pem")
    }

    /// Creates the directory (0755; secrets inside are 0600).
    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(self.crl_dir())?;
        std::fs::create_dir_all(self.capath())
    }

    /// Writes the machine identity: key (0600, if given), leaf certificate,
    /// and leaf + intermediates. Returns the files that changed.
    pub fn write_identity(
        &self,
        key_pem: Option<&str>,
        cert_pem: &str,
        chain_pem: &str,
    ) -> std::io::Result<Vec<PathBuf>> {
        let mut changed = Vec::new();
        if let Some(key) = key_pem {
            write_if_changed(&self.key(), key.as_bytes(), 0o600, Durability::Durable, &mut changed)?;
        }
        write_if_changed(&self.cert(), cert_pem.as_bytes(), 0o644, Durability::Durable, &mut changed)?;
        write_if_changed(&self.chain(), chain_pem.as_bytes(), 0o644, Durability::Durable, &mut changed)?;
        Ok(changed)
    }

    /// Writes the machine secret (0600).
    pub fn write_secret(&self, secret: &str) -> std::io::Result<()> {
        files::write_atomic(&self.machine_secret(), format!("{secret}\n").as_bytes(), 0o600)
    }

    /// Reads back the trust files [`StateDir::write_trust`] wrote: the roots
    /// of bundle.pem, the CRLs of crl/ in crl.pem's order, and the delta CRLs.
    pub fn read_trust(&self) -> Result<TrustFiles, StateError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
        let bad = |what: &'static str| StateError::Pki(lightwell_ca::Error::Malformed(what));
        let bundle = std::fs::read(self.bundle())?;
        let roots = CertificateDer::pem_slice_iter(&bundle)
            .map(|c| c.map(|c| c.to_vec()).map_err(|_| bad("bundle.pem")))
            .collect::<Result<Vec<_>, _>>()?;
        let all = std::fs::read(self.crl_bundle())?;
        let (mut crls, mut files, mut delta_crls) = (Vec::new(), Vec::new(), Vec::new());
        for entry in std::fs::read_dir(self.crl_dir())? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            let Some((ca_id, kind)) = name.split_once('.') else { continue };
            let list = match kind {
                "crl.pem" => &mut files,
                "delta.crl.pem" => &mut delta_crls,
                _ => continue,
            };
            let der = CertificateRevocationListDer::from_pem_file(self.crl_dir().join(&name))
                .map_err(|_| bad("a CRL file"))?;
            list.push(CrlFile { ca_id: ca_id.to_string(), der: der.to_vec() });
        }
        for der in CertificateRevocationListDer::pem_slice_iter(&all) {
            let der = der.map_err(|_| bad("crl.pem"))?;
            let file =
                files.iter().position(|f| f.der == der.as_ref()).ok_or_else(|| bad("crl.pem and crl/ differ"))?;
            crls.push(files.swap_remove(file));
        }
        if !files.is_empty() {
            return Err(bad("crl.pem and crl/ differ"));
        }
        delta_crls.sort_by(|a, b| a.ca_id.cmp(&b.ca_id));
        Ok(TrustFiles { roots, crls, delta_crls })
    }

    /// Writes the trust bundle (roots, DER), the CRLs and delta CRLs, and
    /// the hashed CApath (roots and both kinds of CRL; intermediates come
    /// from peers' chains). Removes CRL files of CAs no longer listed.
    /// Returns the files that changed.
    pub fn write_trust(&self, trust: &TrustFiles) -> Result<Vec<PathBuf>, StateError> {
        self.create()?;
        let mut changed = Vec::new();
        let bundle: String = trust.roots.iter().map(|der| pem::encode("CERTIFICATE", der)).collect();
        write_if_changed(&self.bundle(), bundle.as_bytes(), 0o644, Durability::Atomic, &mut changed)?;
        let mut keep = Vec::new();
        let named =
            trust.crls.iter().map(|c| (c, "crl.pem")).chain(trust.delta_crls.iter().map(|c| (c, "delta.crl.pem")));
        for (crl, suffix) in named {
            if crl.ca_id.is_empty() || !crl.ca_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(StateError::BadCaId(crl.ca_id.clone()));
            }
            let name = format!("{}.{suffix}", crl.ca_id);
            write_if_changed(
                &self.crl_dir().join(&name),
                pem::encode("X509 CRL", &crl.der).as_bytes(),
                0o644,
                Durability::Atomic,
                &mut changed,
            )?;
            keep.push(name);
        }
        for entry in std::fs::read_dir(self.crl_dir())? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".crl.pem") && !keep.contains(&name) {
                let path = self.crl_dir().join(&name);
                std::fs::remove_file(&path)?;
                changed.push(path);
            }
        }
        // Written after the per-CA files, in the server's order, so a hook
        // that reads it sees the same CRLs. Complete CRLs only: it is for
        // software that reads one file (nginx `ssl_crl`), which would
        // not use a delta CRL.
        let all: String = trust.crls.iter().map(|crl| pem::encode("X509 CRL", &crl.der)).collect();
        write_if_changed(&self.crl_bundle(), all.as_bytes(), 0o644, Durability::Atomic, &mut changed)?;
        // OpenSSL's CApath lookup ignores delta CRLs unless asked to use them (`-use_deltas`).
        let crl_ders: Vec<Vec<u8>> = trust.crls.iter().chain(&trust.delta_crls).map(|c| c.der.clone()).collect();
        let layout = capath::layout(&trust.roots, &crl_ders)?;
        for name in capath::sync(&self.capath(), &layout)? {
            changed.push(self.capath().join(name));
        }
        Ok(changed)
    }
}
