//! Configuration, layered: the TOML file, then `LIGHTWELL_*` environment
//! variables, then command-line flags (each layer overrides the one before).
//! Every secret setting also has a `_FILE` form that names a file holding it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

/// Command line of `lightwelld`.
#[derive(Debug, Parser)]
#[command(name = "lightwelld", version, about = "Lightwell server: directory, certificate authority, node-agent hub")]
pub struct Cli {
    /// Subcommand; without one the server runs.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the server.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Log filter (`info`, `debug`, `lightwell_core=debug`, ...).
    #[arg(long, env = "LIGHTWELL_LOG", global = true)]
    pub log: Option<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Initialize a data dir: key-encryption key, operator credentials, server TLS.
    Init(InitArgs),
    /// Copy every row of one database into another, empty one (SQLite to
    /// PostgreSQL to move a single node to HA). Run with the server stopped.
    Migrate(MigrateArgs),
}

/// `lightwelld migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The database to copy: `sqlite://PATH` or `postgres://...`.
    #[arg(long)]
    pub from: Option<String>,
    /// File holding the source URL (it may contain a password).
    #[arg(long, conflicts_with = "from")]
    pub from_file: Option<PathBuf>,
    /// The empty database to fill: `postgres://...` (or `sqlite://PATH`).
    #[arg(long, env = "LIGHTWELL_DATABASE", hide_env_values = true)]
    pub to: Option<String>,
    /// File holding the target URL (it may contain a password).
    #[arg(long, env = "LIGHTWELL_DATABASE_FILE", conflicts_with = "to")]
    pub to_file: Option<PathBuf>,
}

/// `lightwelld init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Data directory to create.
    #[arg(long, env = "LIGHTWELL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database to create the operator in (default: lightwell.db in the data dir).
    #[arg(long, env = "LIGHTWELL_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// File holding the database URL.
    #[arg(long, env = "LIGHTWELL_DATABASE_FILE")]
    pub database_file: Option<PathBuf>,
    /// Extra DNS name or IP for the server certificate (repeatable); localhost,
    /// 127.0.0.1, ::1 and the host name are always included.
    #[arg(long = "tls-san")]
    pub tls_san: Vec<String>,
}

/// Options of the running server. Each also reads `LIGHTWELL_<NAME>`.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "LIGHTWELL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (holds lightwell.db, kek.key, operator.password, server-ca.pem).
    #[arg(long, env = "LIGHTWELL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `sqlite://PATH` (default: lightwell.db in the data dir) or `postgres://USER@HOST/DB`.
    #[arg(long, env = "LIGHTWELL_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// File holding the database URL (it may contain a password).
    #[arg(long, env = "LIGHTWELL_DATABASE_FILE")]
    pub database_file: Option<PathBuf>,
    /// Development mode: initialize the data dir if needed, listen on 127.0.0.1, print operator credentials.
    #[arg(long, env = "LIGHTWELL_DEV")]
    pub dev: bool,
    /// Address of the HTTPS API (default 0.0.0.0:8443; 127.0.0.1:8443 with --dev).
    #[arg(long, env = "LIGHTWELL_LISTEN_API")]
    pub listen_api: Option<SocketAddr>,
    /// Address of the plain-HTTP PKI listener (default 0.0.0.0:8080; 127.0.0.1:8080 with --dev).
    #[arg(long, env = "LIGHTWELL_LISTEN_PKI")]
    pub listen_pki: Option<SocketAddr>,
    /// Base URL of the CRL and CA certificate URLs put into certificates (default http://<listen-pki address>).
    #[arg(long, env = "LIGHTWELL_PUBLIC_PKI_URL")]
    pub public_pki_url: Option<String>,
    /// Address of the LDAPS listener (default 0.0.0.0:6636; 127.0.0.1:6636 with --dev).
    #[arg(long, env = "LIGHTWELL_LISTEN_LDAPS")]
    pub listen_ldaps: Option<SocketAddr>,
    /// Address of the LDAP listener where clients use StartTLS (default 0.0.0.0:3389; 127.0.0.1:3389 with --dev).
    #[arg(long, env = "LIGHTWELL_LISTEN_LDAP")]
    pub listen_ldap: Option<SocketAddr>,
    /// Accept LDAP simple binds without TLS (refused with confidentialityRequired by default).
    #[arg(long, env = "LIGHTWELL_LDAP_ALLOW_PLAINTEXT_BIND")]
    pub ldap_allow_plaintext_bind: bool,
    /// File holding the key-encryption key (default: kek.key in the data dir).
    #[arg(long, env = "LIGHTWELL_KEK_FILE")]
    pub kek_file: Option<PathBuf>,
    /// Seconds before a request is answered with a timeout error (default 30).
    #[arg(long, env = "LIGHTWELL_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Largest accepted request body in bytes (default 1 MiB).
    #[arg(long, env = "LIGHTWELL_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Seconds an API or PKI connection has to send a complete request head
    /// (a new connection: from accept) before it is closed (default 10).
    #[arg(long, env = "LIGHTWELL_HTTP_HEADER_READ_TIMEOUT_SECS")]
    pub http_header_read_timeout_secs: Option<u64>,
    /// Seconds an API or PKI connection may stay open with no request and
    /// no traffic (default 60).
    #[arg(long, env = "LIGHTWELL_HTTP_IDLE_TIMEOUT_SECS")]
    pub http_idle_timeout_secs: Option<u64>,
    /// Seconds a client has to complete the API's TLS handshake (default 10).
    #[arg(long, env = "LIGHTWELL_TLS_HANDSHAKE_TIMEOUT_SECS")]
    pub tls_handshake_timeout_secs: Option<u64>,
    /// Open connections per HTTP listener (API, PKI); more are closed at
    /// once (default 4096).
    #[arg(long, env = "LIGHTWELL_HTTP_MAX_CONNECTIONS")]
    pub http_max_connections: Option<usize>,
    /// Open connections per client address (IPv6: per /64) and HTTP
    /// listener (default 256).
    #[arg(long, env = "LIGHTWELL_HTTP_MAX_CONNECTIONS_PER_IP")]
    pub http_max_connections_per_ip: Option<usize>,
    /// Failed logins and binds an address (IPv6: a /64) may have within the
    /// throttle window; its further logins are refused with 429 until the
    /// oldest leaves the window (default 3, below the account lockout's 5
    /// so one address cannot lock an account; 0 turns it off). Behind a
    /// reverse proxy or NAT every client shares the proxy's address.
    #[arg(long, env = "LIGHTWELL_LOGIN_THROTTLE_FAILURES")]
    pub login_throttle_failures: Option<u32>,
    /// The login throttle's sliding window in seconds (default 180, the
    /// lockout's window).
    #[arg(long, env = "LIGHTWELL_LOGIN_THROTTLE_WINDOW_SECS")]
    pub login_throttle_window_secs: Option<u64>,
    /// Password hashes (argon2id, 19 MiB each) computed at once; a login
    /// that waits 2 s for one gets 503 `overloaded` (default twice the
    /// CPUs, at most 16).
    #[arg(long, env = "LIGHTWELL_PASSWORD_HASHING_CONCURRENCY")]
    pub password_hashing_concurrency: Option<usize>,
    /// TEST ONLY: shift the clock by the number of seconds in this file.
    #[arg(long, env = "LIGHTWELL_CLOCK_OFFSET_FILE", hide = true)]
    pub clock_offset_file: Option<PathBuf>,
    /// Seconds between runs of the CA job that re-signs CRLs and advances root rotations (default 3600).
    #[arg(long, env = "LIGHTWELL_CA_MAINTENANCE_INTERVAL_SECS")]
    pub ca_maintenance_interval_secs: Option<u64>,
    /// Seconds between audit checkpoints: each tenant chain's head is
    /// recorded in the system chain and the checkpoint file (default 300).
    #[arg(long, env = "LIGHTWELL_AUDIT_CHECKPOINT_INTERVAL_SECS")]
    pub audit_checkpoint_interval_secs: Option<u64>,
    /// File each audit checkpoint is appended to as JSON lines (default: none).
    /// Keep it, or a copy, where the database's writers cannot rewrite it.
    #[arg(long, env = "LIGHTWELL_AUDIT_CHECKPOINT_FILE")]
    pub audit_checkpoint_file: Option<PathBuf>,
    /// Largest CRL (entries) re-signed inside the revoking transaction
    /// (default 1000); larger ones are re-signed in the background after the
    /// revocation is acknowledged. Hidden: tests set it low to exercise that path.
    #[arg(long, env = "LIGHTWELL_CRL_SYNC_LIMIT", hide = true)]
    pub crl_sync_limit: Option<u64>,
    /// Trust revisions of changes kept per tenant for agents to catch up
    /// from (default 1000); an agent further behind fetches the whole trust
    /// state. Hidden: tests set it low to exercise that path.
    #[arg(long, env = "LIGHTWELL_TRUST_CHANGE_WINDOW", hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub trust_change_window: Option<u64>,
}

/// The TOML file: the same settings, snake_case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database: Option<String>,
    database_file: Option<PathBuf>,
    listen_api: Option<SocketAddr>,
    listen_pki: Option<SocketAddr>,
    public_pki_url: Option<String>,
    listen_ldaps: Option<SocketAddr>,
    listen_ldap: Option<SocketAddr>,
    ldap_allow_plaintext_bind: Option<bool>,
    kek_file: Option<PathBuf>,
    request_timeout_secs: Option<u64>,
    max_body_bytes: Option<usize>,
    http_header_read_timeout_secs: Option<u64>,
    http_idle_timeout_secs: Option<u64>,
    tls_handshake_timeout_secs: Option<u64>,
    http_max_connections: Option<usize>,
    http_max_connections_per_ip: Option<usize>,
    login_throttle_failures: Option<u32>,
    login_throttle_window_secs: Option<u64>,
    password_hashing_concurrency: Option<usize>,
    clock_offset_file: Option<PathBuf>,
    ca_maintenance_interval_secs: Option<u64>,
    audit_checkpoint_interval_secs: Option<u64>,
    audit_checkpoint_file: Option<PathBuf>,
}

/// Where the store lives.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Database {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database shared by replicas (the URL may hold a password).
    Postgres(String),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "Sqlite({})", p.display()),
            Self::Postgres(_) => f.write_str("Postgres(<redacted>)"),
        }
    }
}

impl std::fmt::Display for Database {
    /// Names the store without its credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            Self::Postgres(url) => {
                // postgres://user:password@host/db → postgres://host/db
                let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                write!(f, "postgres://{}", host.split('?').next().unwrap_or_default())
            }
        }
    }
}

impl Database {
    /// [`Database::open`] on a blocking thread: the PostgreSQL client must
    /// not block an async runtime's thread.
    pub(crate) async fn open_async(&self) -> anyhow::Result<std::sync::Arc<dyn lightwell_store::Store>> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.open()).await.context("opening the database")?
    }

    /// Opens the store, applying pending migrations. Blocking.
    pub(crate) fn open(&self) -> anyhow::Result<std::sync::Arc<dyn lightwell_store::Store>> {
        Ok(match self {
            Self::Sqlite(path) => std::sync::Arc::new(
                lightwell_store::sqlite::SqliteStore::open(path)
                    .with_context(|| format!("opening the database {}", path.display()))?,
            ),
            Self::Postgres(url) => std::sync::Arc::new(
                lightwell_store::postgres::PostgresStore::open(url).context("opening the PostgreSQL database")?,
            ),
        })
    }
}

/// Resolved settings of the running server.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) dev: bool,
    pub(crate) data_dir: PathBuf,
    pub(crate) database: Database,
    pub(crate) listen_api: SocketAddr,
    pub(crate) listen_pki: SocketAddr,
    /// `None`: derived from the PKI listener's bound address at start.
    pub(crate) public_pki_url: Option<String>,
    pub(crate) listen_ldaps: SocketAddr,
    pub(crate) listen_ldap: SocketAddr,
    pub(crate) ldap_allow_plaintext_bind: bool,
    pub(crate) kek_file: PathBuf,
    pub(crate) request_timeout: Duration,
    pub(crate) max_body_bytes: usize,
    /// Timeouts and connection caps of the API and PKI listeners.
    pub(crate) http: crate::http_conn::HttpLimits,
    /// Failed logins per caller address.
    pub(crate) login_throttle: lightwell_core::throttle::ThrottleLimit,
    /// Password hashes at once (`None`: the service's default).
    pub(crate) password_hashing_concurrency: Option<usize>,
    pub(crate) clock_offset_file: Option<PathBuf>,
    pub(crate) ca_maintenance_interval: Duration,
    pub(crate) audit_checkpoint_interval: Duration,
    pub(crate) audit_checkpoint_file: Option<PathBuf>,
    pub(crate) crl_sync_limit: u64,
    pub(crate) trust_change_window: u64,
}

/// The default data dir: `/var/lib/lightwelld`, or `~/.lightwell-dev` with `--dev`.
pub(crate) fn default_data_dir(dev: bool) -> PathBuf {
    if dev {
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".lightwell-dev")
    } else {
        PathBuf::from("/var/lib/lightwelld")
    }
}

fn read_secret_file(path: &Path) -> anyhow::Result<String> {
    let s = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(s.trim().to_string())
}

pub(crate) fn parse_database(url: &str) -> anyhow::Result<Database> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            bail!("sqlite:// needs a file path, e.g. sqlite:///var/lib/lightwelld/lightwell.db");
        }
        return Ok(Database::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::Postgres(url.to_string()));
    }
    // Never echo the URL: it may carry a password.
    bail!("unsupported database URL scheme; expected sqlite://PATH or postgres://...")
}

/// The database named by a URL flag or a file holding it, if any.
pub(crate) fn database_from(url: Option<String>, file: Option<&Path>) -> anyhow::Result<Option<Database>> {
    match (url, file) {
        (Some(url), _) => Ok(Some(parse_database(&url)?)),
        (None, Some(f)) => Ok(Some(parse_database(&read_secret_file(f)?)?)),
        (None, None) => Ok(None),
    }
}

impl ServeArgs {
    /// Resolves flags and environment (already merged by clap) over the config file.
    pub(crate) fn resolve(self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<FileConfig>(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let dev = self.dev;
        let data_dir = self.data_dir.or(file.data_dir).unwrap_or_else(|| default_data_dir(dev));
        let database = match database_from(self.database, self.database_file.as_deref())? {
            Some(db) => db,
            None => database_from(file.database, file.database_file.as_deref())?
                .unwrap_or_else(|| Database::Sqlite(data_dir.join("lightwell.db"))),
        };
        let host = if dev { [127, 0, 0, 1] } else { [0, 0, 0, 0] };
        let http_default = crate::http_conn::HttpLimits::default();
        let secs = |flag: Option<u64>, file: Option<u64>, default: Duration| {
            flag.or(file).map_or(default, |s| Duration::from_secs(s.max(1)))
        };
        let http = crate::http_conn::HttpLimits {
            header_read_timeout: secs(
                self.http_header_read_timeout_secs,
                file.http_header_read_timeout_secs,
                http_default.header_read_timeout,
            ),
            idle_timeout: secs(self.http_idle_timeout_secs, file.http_idle_timeout_secs, http_default.idle_timeout),
            tls_handshake_timeout: secs(
                self.tls_handshake_timeout_secs,
                file.tls_handshake_timeout_secs,
                http_default.tls_handshake_timeout,
            ),
            max_connections: self
                .http_max_connections
                .or(file.http_max_connections)
                .unwrap_or(http_default.max_connections)
                .max(1),
            max_connections_per_ip: self
                .http_max_connections_per_ip
                .or(file.http_max_connections_per_ip)
                .unwrap_or(http_default.max_connections_per_ip)
                .max(1),
        };
        let throttle_default = lightwell_core::DEFAULT_LOGIN_THROTTLE;
        let login_throttle = lightwell_core::throttle::ThrottleLimit {
            max_failures: self
                .login_throttle_failures
                .or(file.login_throttle_failures)
                .unwrap_or(throttle_default.max_failures),
            window_secs: self
                .login_throttle_window_secs
                .or(file.login_throttle_window_secs)
                .map_or(throttle_default.window_secs, |s| i64::try_from(s.max(1)).unwrap_or(i64::MAX)),
            max_keys: throttle_default.max_keys,
        };
        Ok(Settings {
            http,
            login_throttle,
            password_hashing_concurrency: self
                .password_hashing_concurrency
                .or(file.password_hashing_concurrency)
                .map(|n| n.max(1)),
            dev,
            listen_api: self.listen_api.or(file.listen_api).unwrap_or(SocketAddr::from((host, 8443))),
            listen_pki: self.listen_pki.or(file.listen_pki).unwrap_or(SocketAddr::from((host, 8080))),
            public_pki_url: match self.public_pki_url.or(file.public_pki_url) {
                Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                    bail!("--public-pki-url must be an http:// or https:// URL")
                }
                other => other.map(|u| u.trim_end_matches('/').to_string()),
            },
            listen_ldaps: self.listen_ldaps.or(file.listen_ldaps).unwrap_or(SocketAddr::from((host, 6636))),
            listen_ldap: self.listen_ldap.or(file.listen_ldap).unwrap_or(SocketAddr::from((host, 3389))),
            ldap_allow_plaintext_bind: self.ldap_allow_plaintext_bind
                || file.ldap_allow_plaintext_bind.unwrap_or(false),
            kek_file: self.kek_file.or(file.kek_file).unwrap_or_else(|| data_dir.join("kek.key")),
            request_timeout: Duration::from_secs(self.request_timeout_secs.or(file.request_timeout_secs).unwrap_or(30)),
            max_body_bytes: self.max_body_bytes.or(file.max_body_bytes).unwrap_or(1024 * 1024),
            clock_offset_file: self.clock_offset_file.or(file.clock_offset_file),
            ca_maintenance_interval: Duration::from_secs(
                self.ca_maintenance_interval_secs.or(file.ca_maintenance_interval_secs).unwrap_or(3600).max(1),
            ),
            audit_checkpoint_interval: Duration::from_secs(
                self.audit_checkpoint_interval_secs.or(file.audit_checkpoint_interval_secs).unwrap_or(300).max(1),
            ),
            audit_checkpoint_file: self.audit_checkpoint_file.or(file.audit_checkpoint_file),
            crl_sync_limit: self.crl_sync_limit.unwrap_or(lightwell_core::DEFAULT_CRL_SYNC_LIMIT),
            trust_change_window: self.trust_change_window.unwrap_or(lightwell_core::DEFAULT_TRUST_CHANGE_WINDOW),
            database,
            data_dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let cfg = dir.join("lightwell.toml");
        std::fs::write(
            &cfg,
            "listen_api = \"127.0.0.1:9000\"\nlisten_pki = \"127.0.0.1:9001\"\ndata_dir = \"/srv/lw\"\n",
        )
        .unwrap();
        let args =
            ServeArgs { config: Some(cfg), listen_api: Some("127.0.0.1:9443".parse().unwrap()), ..Default::default() };
        let s = args.resolve().unwrap();
        assert_eq!(s.listen_api, "127.0.0.1:9443".parse().unwrap(), "flag wins over file");
        assert_eq!(s.listen_pki, "127.0.0.1:9001".parse().unwrap(), "file wins over default");
        assert_eq!(s.database, Database::Sqlite(PathBuf::from("/srv/lw/lightwell.db")));
        assert_eq!(s.kek_file, PathBuf::from("/srv/lw/kek.key"));
        assert_eq!(s.listen_ldaps, "0.0.0.0:6636".parse().unwrap());
        assert_eq!(s.listen_ldap, "0.0.0.0:3389".parse().unwrap());
        assert!(!s.ldap_allow_plaintext_bind, "plaintext binds are refused by default");
    }

    #[test]
    fn ldap_listeners_and_plaintext_binds_come_from_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("lightwell.toml");
        std::fs::write(&cfg, "listen_ldaps = \"127.0.0.1:1636\"\nldap_allow_plaintext_bind = true\n").unwrap();
        let s = ServeArgs { config: Some(cfg), dev: true, ..Default::default() }.resolve().unwrap();
        assert_eq!(s.listen_ldaps, "127.0.0.1:1636".parse().unwrap());
        assert_eq!(s.listen_ldap, "127.0.0.1:3389".parse().unwrap(), "--dev binds loopback");
        assert!(s.ldap_allow_plaintext_bind);
    }

    #[test]
    fn unknown_keys_and_unsupported_databases_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let cfg = dir.join("bad.toml");
        std::fs::write(&cfg, "listen_apii = \"127.0.0.1:1\"\n").unwrap();
        let err = ServeArgs { config: Some(cfg), ..Default::default() }.resolve().unwrap_err();
        assert!(format!("{err:#}").contains("listen_apii"), "{err:#}");
        let err =
            ServeArgs { database: Some("mysql://u:secret@h/db".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(!format!("{err:#}").contains("secret"), "the URL's password is never echoed");
    }

    #[test]
    fn the_trust_change_window_is_a_hidden_positive_number() {
        let cli = Cli::try_parse_from(["lightwelld", "--trust-change-window", "100"]).unwrap();
        assert_eq!(cli.serve.resolve().unwrap().trust_change_window, 100);
        let default = Cli::try_parse_from(["lightwelld"]).unwrap().serve.resolve().unwrap();
        assert_eq!(default.trust_change_window, lightwell_core::DEFAULT_TRUST_CHANGE_WINDOW);
        for bad in ["0", "many", "-1", ""] {
            assert!(Cli::try_parse_from(["lightwelld", "--trust-change-window", bad]).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn the_crl_sync_limit_is_a_hidden_number() {
        use clap::CommandFactory;
        let cli = Cli::try_parse_from(["lightwelld", "--crl-sync-limit", "0"]).unwrap();
        assert_eq!(cli.serve.resolve().unwrap().crl_sync_limit, 0);
        let default = Cli::try_parse_from(["lightwelld"]).unwrap().serve.resolve().unwrap();
        assert_eq!(default.crl_sync_limit, lightwell_core::DEFAULT_CRL_SYNC_LIMIT);
        for bad in ["many", "-1", "1e3", "", "18446744073709551616"] {
            assert!(Cli::try_parse_from(["lightwelld", "--crl-sync-limit", bad]).is_err(), "{bad:?} is refused");
        }
        let help = Cli::command().render_long_help().to_string();
        assert!(!help.contains("crl-sync-limit"), "not in --help");
    }

    #[test]
    fn listener_limits_and_login_defences_come_from_flags_over_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("lightwell.toml");
        std::fs::write(
            &cfg,
            "http_header_read_timeout_secs = 5\nhttp_max_connections = 100\nlogin_throttle_failures = 2\n\
             password_hashing_concurrency = 3\nhttp_max_connections_per_ip = 50\n",
        )
        .unwrap();
        let cfg = cfg.to_str().unwrap();
        let args = [
            "lightwelld",
            "--config",
            cfg,
            "--http-max-connections-per-ip",
            "8",
            "--login-throttle-window-secs",
            "600",
        ];
        let s = Cli::try_parse_from(args).unwrap().serve.resolve().unwrap();
        let limits = crate::http_conn::HttpLimits {
            header_read_timeout: Duration::from_secs(5),
            max_connections: 100,
            max_connections_per_ip: 8,
            ..Default::default()
        };
        assert_eq!(s.http, limits);
        assert_eq!((s.login_throttle.max_failures, s.login_throttle.window_secs), (2, 600));
        assert_eq!(s.password_hashing_concurrency, Some(3));

        let default = Cli::try_parse_from(["lightwelld"]).unwrap().serve.resolve().unwrap();
        assert_eq!(default.http, crate::http_conn::HttpLimits::default());
        assert_eq!(default.login_throttle, lightwell_core::DEFAULT_LOGIN_THROTTLE);
        assert_eq!(default.password_hashing_concurrency, None);
        let zero = Cli::try_parse_from(["lightwelld", "--http-idle-timeout-secs", "0"]).unwrap();
        assert_eq!(zero.serve.resolve().unwrap().http.idle_timeout, Duration::from_secs(1), "never zero");
    }

    #[test]
    fn database_url_can_come_from_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let f = dir.join("db.url");
        std::fs::write(&f, "sqlite:///tmp/x.db\n").unwrap();
        let s = ServeArgs { database_file: Some(f), ..Default::default() }.resolve().unwrap();
        assert_eq!(s.database, Database::Sqlite(PathBuf::from("/tmp/x.db")));
    }

    #[test]
    fn audit_checkpoints_default_to_every_five_minutes_without_a_file() {
        let s = ServeArgs::default().resolve().unwrap();
        assert_eq!((s.audit_checkpoint_interval, s.audit_checkpoint_file), (Duration::from_secs(300), None));
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("lightwell.toml");
        std::fs::write(&cfg, "audit_checkpoint_interval_secs = 60\naudit_checkpoint_file = \"/var/log/lw.jsonl\"\n")
            .unwrap();
        let s = ServeArgs { config: Some(cfg.clone()), ..Default::default() }.resolve().unwrap();
        assert_eq!(s.audit_checkpoint_interval, Duration::from_secs(60));
        assert_eq!(s.audit_checkpoint_file, Some(PathBuf::from("/var/log/lw.jsonl")));
        let cli = Cli::try_parse_from([
            "lightwelld",
            "--config",
            cfg.to_str().unwrap(),
            "--audit-checkpoint-interval-secs",
            "0",
            "--audit-checkpoint-file",
            "/srv/cp.jsonl",
        ])
        .unwrap();
        let s = cli.serve.resolve().unwrap();
        assert_eq!(s.audit_checkpoint_interval, Duration::from_secs(1), "flags win; at least a second");
        assert_eq!(s.audit_checkpoint_file, Some(PathBuf::from("/srv/cp.jsonl")));
    }
}
