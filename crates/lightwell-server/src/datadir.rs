//! The data dir and `lightwelld init`.
//!
//! ```text
//! lightwell.db            the SQLite store (default database)
//! kek.key                 key-encryption key, 0600
//! operator.password       the system operator's first password, 0600
//! server-ca.pem           CA of the server's TLS certificate (clients' --ca-file)
//! server-ca.key.sealed    its key, sealed under the KEK, 0600
//! server.pem / server.key the server's TLS certificate chain and key (key 0600)
//! ```

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use lightwell_ca::kek::Kek;
use lightwell_ca::{fingerprint, server_tls};
use lightwell_core::clock::{Clock, SystemClock};
use lightwell_core::{NoopObserver, Service, ServiceConfig, password};
use zeroize::Zeroizing;

use crate::config::{Database, InitArgs, default_data_dir};

pub(crate) const KEK_FILE: &str = "kek.key";
pub(crate) const OPERATOR_PASSWORD_FILE: &str = "operator.password";
pub(crate) const SERVER_CA_FILE: &str = "server-ca.pem";
const SERVER_CA_KEY_FILE: &str = "server-ca.key.sealed";
pub(crate) const SERVER_CERT_FILE: &str = "server.pem";
pub(crate) const SERVER_KEY_FILE: &str = "server.key";

/// Writes a new file readable only by its owner (0600); refuses to overwrite.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}

fn write_public(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Reads the KEK from its file.
pub(crate) fn load_kek(path: &Path) -> anyhow::Result<Kek> {
    if !path.exists() {
        bail!(
            "the key-encryption key {} is missing: restore it from your backup (every CA key and the audit chains \
             are sealed under it; `lightwelld init` would make a new one that opens nothing)",
            path.display()
        );
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?);
    Kek::from_file_contents(&text).with_context(|| format!("{} is not a valid key-encryption key", path.display()))
}

/// Files `init` writes; any one of them means `dir` was initialized.
const INIT_FILES: &[&str] =
    &[KEK_FILE, SERVER_CA_FILE, SERVER_CA_KEY_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE, OPERATOR_PASSWORD_FILE];

/// Whether `dir` has been initialized: it holds a file `init` writes, so a
/// data dir that lost its KEK is not taken for a new one (and re-initialized
/// over its server CA).
pub(crate) fn is_initialized(dir: &Path) -> bool {
    INIT_FILES.iter().any(|f| dir.join(f).exists())
}

fn host_name() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim().to_ascii_lowercase();
    lightwell_core::names::Hostname::parse(&h).ok().map(|h| h.into_string())
}

/// What `initialize` produced.
#[derive(Debug)]
pub(crate) struct Initialized {
    pub(crate) fingerprint: String,
}

/// Creates and fills a data dir. Refuses a dir that is already initialized.
pub(crate) async fn initialize(dir: &Path, database: &Database, extra_sans: &[String]) -> anyhow::Result<Initialized> {
    if is_initialized(dir) {
        bail!("{} is already initialized (it holds files of `lightwelld init`)", dir.display());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;

    let clock = SystemClock;
    let now = clock.now();
    let kek = Kek::generate()?;
    write_private(&dir.join(KEK_FILE), kek.to_file_contents().as_bytes())?;

    let ca = server_tls::generate_server_ca(
        &format!("Lightwell server CA ({})", host_name().as_deref().unwrap_or("lightwelld")),
        now,
    )?;
    write_public(&dir.join(SERVER_CA_FILE), ca.cert_pem.as_bytes())?;
    write_private(&dir.join(SERVER_CA_KEY_FILE), &kek.seal(b"server-ca", &ca.key_pkcs8)?)?;

    let mut dns = vec!["localhost".to_string()];
    dns.extend(host_name());
    let mut ips: Vec<IpAddr> = vec![[127, 0, 0, 1].into(), "::1".parse()?];
    for san in extra_sans {
        match san.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => {
                dns.push(lightwell_core::names::Hostname::parse(san).map_err(|e| anyhow::anyhow!("{e}"))?.into_string())
            }
        }
    }
    dns.dedup();
    let leaf = server_tls::issue_server_cert(&ca.cert_der, &ca.key_pkcs8, &dns, &ips, now)?;
    write_public(&dir.join(SERVER_CERT_FILE), leaf.chain_pem.as_bytes())?;
    write_private(&dir.join(SERVER_KEY_FILE), leaf.key_pem.as_bytes())?;

    let operator_password = password::generate()?;
    write_private(&dir.join(OPERATOR_PASSWORD_FILE), format!("{}\n", &*operator_password).as_bytes())?;
    let store = database.open_async().await?;
    let service = Service::new(store, Arc::new(clock), &kek, Arc::new(NoopObserver), ServiceConfig::default())?;
    service.bootstrap_operator(operator_password).await?;
    Ok(Initialized { fingerprint: fingerprint::cert_fingerprint(&ca.cert_der) })
}

/// `lightwelld init`.
pub(crate) async fn init_command(args: &InitArgs) -> anyhow::Result<()> {
    let dir: PathBuf = args.data_dir.clone().unwrap_or_else(|| default_data_dir(false));
    let database = crate::config::database_from(args.database.clone(), args.database_file.as_deref())?
        .unwrap_or_else(|| Database::Sqlite(dir.join("lightwell.db")));
    let init = initialize(&dir, &database, &args.tls_san).await?;
    println!("initialized {}", dir.display());
    println!("operator password: {} (file {OPERATOR_PASSWORD_FILE})", dir.join(OPERATOR_PASSWORD_FILE).display());
    println!("server CA: {}", dir.join(SERVER_CA_FILE).display());
    println!("server CA fingerprint: {}", init.fingerprint);
    Ok(())
}

/// The server CA's fingerprint, read from the data dir.
pub(crate) fn server_ca_fingerprint(dir: &Path) -> anyhow::Result<String> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_file(dir.join(SERVER_CA_FILE))
        .context("reading the certificate in server-ca.pem")?;
    Ok(fingerprint::cert_fingerprint(&der))
}
