//! Configuration, layered: defaults, then the TOML file, then `LIGHTWELL_*`
//! environment variables, then command-line flags (each layer overrides the
//! one before). Each setting is declared once, as a field of
//! [`ServerConfig`]: its flag, environment variable and TOML key come from
//! that field. Every secret setting also has a `_FILE` form that names a
//! file holding it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::builder::BoolishValueParser;
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
    pub serve: ServerConfig,
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

/// Declares a layered configuration struct once: each field is a setting
/// whose clap attributes give its flag and environment variable and whose
/// name is its TOML key. Generates [`Layer`]: the list of keys and the
/// merge of one layer over a lower one. `secrets { url => url_file }`
/// names a secret and its `_FILE` form, which a layer sets together: a
/// layer that names either replaces both of a lower layer's.
macro_rules! layered {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : Option<$ty:ty>, )*
        }
        secrets { $( $secret:ident => $secret_file:ident ),* $(,)? }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$fmeta])* pub $field: Option<$ty>, )*
        }

        impl Layer for $name {
            const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            fn over(self, lower: Self) -> Self {
                $(
                    let $secret = if self.$secret.is_some() || self.$secret_file.is_some() {
                        (self.$secret.clone(), self.$secret_file.clone())
                    } else {
                        (lower.$secret.clone(), lower.$secret_file.clone())
                    };
                )*
                #[allow(unused_mut)]
                let mut merged = Self { $( $field: self.$field.or(lower.$field), )* };
                $( (merged.$secret, merged.$secret_file) = $secret; )*
                merged
            }
        }
    };
}

/// A configuration of optional settings, one layer of several (flags,
/// environment, file), declared by [`layered!`].
pub(crate) trait Layer: Args + serde::de::DeserializeOwned + Default {
    /// Every setting's name: its field, its TOML key, its flag (with `-`
    /// for `_`) and, in capitals after `LIGHTWELL_`, its environment variable.
    const KEYS: &'static [&'static str];
    /// Each setting from `self` where it is set there, otherwise from `lower`.
    fn over(self, lower: Self) -> Self;
}

/// `cmd` with the settings of `L` no longer read from the process
/// environment by clap: [`env_layer`] reads them from an explicit map, so
/// flags and environment stay two layers and tests need no process env.
fn without_env<L: Layer>(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|a| if L::KEYS.contains(&a.get_id().as_str()) { a.env(None) } else { a })
}

/// The layer of `L` set by environment variables in `env` (each parsed as
/// its flag would be; a bad value is refused naming the variable).
pub(crate) fn env_layer<L: Layer>(env: &BTreeMap<OsString, OsString>) -> anyhow::Result<L> {
    let declared = L::augment_args(clap::Command::new("env"));
    let parser = without_env::<L>(declared.clone()).no_binary_name(true);
    let mut layer = L::default();
    for arg in declared.get_arguments() {
        let (Some(var), Some(long)) = (arg.get_env(), arg.get_long()) else { continue };
        let Some(value) = env.get(var) else { continue };
        let mut flag = OsString::from(format!("--{long}="));
        flag.push(value);
        let matches = parser.clone().try_get_matches_from([flag]).map_err(|e| {
            let e = e.to_string();
            let why = e.lines().next().unwrap_or_default().trim_start_matches("error: ");
            anyhow::anyhow!("{}: {why}", var.to_string_lossy())
        })?;
        layer = L::from_arg_matches(&matches)?.over(layer);
    }
    Ok(layer)
}

/// The layer of `L` in the TOML file at `path` (unknown keys refused).
pub(crate) fn file_layer<L: Layer>(path: &Path) -> anyhow::Result<L> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str::<L>(&text).with_context(|| format!("parsing {}", path.display()))
}

layered! {
    /// Every setting of the running server, declared once: flag `--name`,
    /// environment variable `LIGHTWELL_NAME`, TOML key `name` (see
    /// [`Layer::KEYS`]). Flags win over the environment, the environment
    /// over the file, the file over the defaults (applied by
    /// [`ServerConfig::resolve`]). Booleans take `--name`, `--name=true` or
    /// `--name=false` (so a flag turns a file's `true` off); the
    /// environment takes `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    #[derive(Debug, Clone, Default, PartialEq, Args, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct ServerConfig {
        /// TOML configuration file (a flag or environment variable only).
        #[arg(long, env = "LIGHTWELL_CONFIG")]
        #[serde(skip)]
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
        #[arg(
            long, env = "LIGHTWELL_DEV", value_name = "BOOL", num_args = 0..=1, require_equals = true,
            default_missing_value = "true", value_parser = BoolishValueParser::new()
        )]
        pub dev: Option<bool>,
        /// Address of the HTTPS API (default 0.0.0.0:8443; 127.0.0.1:8443 with --dev).
        #[arg(long, env = "LIGHTWELL_LISTEN_API")]
        pub listen_api: Option<SocketAddr>,
        /// Address of the plain-HTTP PKI listener (default 0.0.0.0:8080; 127.0.0.1:8080 with --dev).
        #[arg(long, env = "LIGHTWELL_LISTEN_PKI")]
        pub listen_pki: Option<SocketAddr>,
        /// Base URL of the CRL and CA certificate URLs put into certificates (default http://<listen-pki address>).
        #[arg(long, env = "LIGHTWELL_PUBLIC_PKI_URL")]
        pub public_pki_url: Option<String>,
        /// Base URL of the API as clients reach it: the tenants' token issuers are <base>/oidc/<tenant> (default https://<listen-api address>).
        #[arg(long, env = "LIGHTWELL_PUBLIC_API_URL")]
        pub public_api_url: Option<String>,
        /// Address of the LDAPS listener (default 0.0.0.0:6636; 127.0.0.1:6636 with --dev).
        #[arg(long, env = "LIGHTWELL_LISTEN_LDAPS")]
        pub listen_ldaps: Option<SocketAddr>,
        /// Address of the LDAP listener where clients use StartTLS (default 0.0.0.0:3389; 127.0.0.1:3389 with --dev).
        #[arg(long, env = "LIGHTWELL_LISTEN_LDAP")]
        pub listen_ldap: Option<SocketAddr>,
        /// Accept LDAP simple binds without TLS (refused with confidentialityRequired by default).
        #[arg(
            long, env = "LIGHTWELL_LDAP_ALLOW_PLAINTEXT_BIND", value_name = "BOOL", num_args = 0..=1,
            require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new()
        )]
        pub ldap_allow_plaintext_bind: Option<bool>,
        /// Let the federation job read SPIFFE bundle endpoints on loopback
        /// addresses (refused by default: a tenant administrator's URL must
        /// not reach the server's own local ports). For tests and single-host set-ups.
        #[arg(
            long, env = "LIGHTWELL_FEDERATION_ALLOW_LOOPBACK", value_name = "BOOL", num_args = 0..=1,
            require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new()
        )]
        pub federation_allow_loopback: Option<bool>,
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
        /// Largest answer of trust changes, in bytes of recorded changes
        /// (default 1 MiB); an agent whose changes weigh more fetches the
        /// whole trust state. Hidden: tests set it low to exercise that path.
        #[arg(long, env = "LIGHTWELL_TRUST_CHANGE_MAX_BYTES", hide = true, value_parser = clap::value_parser!(u64).range(1..))]
        pub trust_change_max_bytes: Option<u64>,
    }
    secrets { database => database_file }
}

/// The running server's settings: its flags in `args` (the program name
/// first) over the environment variables in `env` over the TOML file that
/// `--config` or `LIGHTWELL_CONFIG` names, over the defaults.
pub(crate) fn load(
    args: impl IntoIterator<Item = OsString>,
    env: impl IntoIterator<Item = (OsString, OsString)>,
) -> anyhow::Result<Settings> {
    use clap::{CommandFactory, FromArgMatches};
    let matches = without_env::<ServerConfig>(Cli::command()).try_get_matches_from(args)?;
    let flags = ServerConfig::from_arg_matches(&matches)?;
    let env = env_layer::<ServerConfig>(&env.into_iter().collect())?;
    flags.over(env).resolve()
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
    /// `None`: derived from the API listener's bound address at start.
    pub(crate) public_api_url: Option<String>,
    pub(crate) listen_ldaps: SocketAddr,
    pub(crate) listen_ldap: SocketAddr,
    pub(crate) ldap_allow_plaintext_bind: bool,
    pub(crate) federation_allow_loopback: bool,
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
    pub(crate) trust_change_max_bytes: u64,
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

impl ServerConfig {
    /// Lays this configuration (flags over environment) over the file it
    /// names, if any, and fills what no layer set with the defaults.
    pub(crate) fn resolve(self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => file_layer::<Self>(path)?,
            None => Self::default(),
        };
        let c = self.over(file);
        let dev = c.dev.unwrap_or(false);
        let data_dir = c.data_dir.unwrap_or_else(|| default_data_dir(dev));
        let database = database_from(c.database, c.database_file.as_deref())?
            .unwrap_or_else(|| Database::Sqlite(data_dir.join("lightwell.db")));
        let host = if dev { [127, 0, 0, 1] } else { [0, 0, 0, 0] };
        let secs = |setting: Option<u64>, default: Duration| setting.map_or(default, |s| Duration::from_secs(s.max(1)));
        let http_default = crate::http_conn::HttpLimits::default();
        let http = crate::http_conn::HttpLimits {
            header_read_timeout: secs(c.http_header_read_timeout_secs, http_default.header_read_timeout),
            idle_timeout: secs(c.http_idle_timeout_secs, http_default.idle_timeout),
            tls_handshake_timeout: secs(c.tls_handshake_timeout_secs, http_default.tls_handshake_timeout),
            max_connections: c.http_max_connections.unwrap_or(http_default.max_connections).max(1),
            max_connections_per_ip: c.http_max_connections_per_ip.unwrap_or(http_default.max_connections_per_ip).max(1),
        };
        let throttle_default = lightwell_core::DEFAULT_LOGIN_THROTTLE;
        let login_throttle = lightwell_core::throttle::ThrottleLimit {
            max_failures: c.login_throttle_failures.unwrap_or(throttle_default.max_failures),
            window_secs: c
                .login_throttle_window_secs
                .map_or(throttle_default.window_secs, |s| i64::try_from(s.max(1)).unwrap_or(i64::MAX)),
            max_keys: throttle_default.max_keys,
        };
        Ok(Settings {
            http,
            login_throttle,
            password_hashing_concurrency: c.password_hashing_concurrency.map(|n| n.max(1)),
            dev,
            listen_api: c.listen_api.unwrap_or(SocketAddr::from((host, 8443))),
            listen_pki: c.listen_pki.unwrap_or(SocketAddr::from((host, 8080))),
            public_pki_url: match c.public_pki_url {
                Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                    bail!("--public-pki-url must be an http:// or https:// URL")
                }
                other => other.map(|u| u.trim_end_matches('/').to_string()),
            },
            public_api_url: match c.public_api_url {
                // Token issuers are HTTPS URLs (OpenID Connect Discovery §3).
                Some(url) if !url.starts_with("https://") => bail!("--public-api-url must be an https:// URL"),
                other => other.map(|u| u.trim_end_matches('/').to_string()),
            },
            listen_ldaps: c.listen_ldaps.unwrap_or(SocketAddr::from((host, 6636))),
            listen_ldap: c.listen_ldap.unwrap_or(SocketAddr::from((host, 3389))),
            ldap_allow_plaintext_bind: c.ldap_allow_plaintext_bind.unwrap_or(false),
            federation_allow_loopback: c.federation_allow_loopback.unwrap_or(false),
            kek_file: c.kek_file.unwrap_or_else(|| data_dir.join("kek.key")),
            request_timeout: Duration::from_secs(c.request_timeout_secs.unwrap_or(30)),
            max_body_bytes: c.max_body_bytes.unwrap_or(1024 * 1024),
            clock_offset_file: c.clock_offset_file,
            ca_maintenance_interval: secs(c.ca_maintenance_interval_secs, Duration::from_secs(3600)),
            audit_checkpoint_interval: secs(c.audit_checkpoint_interval_secs, Duration::from_secs(300)),
            audit_checkpoint_file: c.audit_checkpoint_file,
            crl_sync_limit: c.crl_sync_limit.unwrap_or(lightwell_core::DEFAULT_CRL_SYNC_LIMIT),
            trust_change_window: c.trust_change_window.unwrap_or(lightwell_core::DEFAULT_TRUST_CHANGE_WINDOW),
            trust_change_max_bytes: c.trust_change_max_bytes.unwrap_or(lightwell_core::DEFAULT_TRUST_CHANGE_MAX_BYTES),
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
        let args = ServerConfig {
            config: Some(cfg),
            listen_api: Some("127.0.0.1:9443".parse().unwrap()),
            ..Default::default()
        };
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
        let s = ServerConfig { config: Some(cfg), dev: Some(true), ..Default::default() }.resolve().unwrap();
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
        let err = ServerConfig { config: Some(cfg), ..Default::default() }.resolve().unwrap_err();
        assert!(format!("{err:#}").contains("listen_apii"), "{err:#}");
        let err = ServerConfig { database: Some("mysql://u:secret@h/db".into()), ..Default::default() }
            .resolve()
            .unwrap_err();
        assert!(!format!("{err:#}").contains("secret"), "the URL's password is never echoed");
    }

    #[test]
    fn the_trust_change_window_is_a_hidden_positive_number() {
        let cli = Cli::try_parse_from(["lightwelld", "--trust-change-window", "100"]).unwrap();
        assert_eq!(cli.serve.resolve().unwrap().trust_change_window, 100);
        let default = Cli::try_parse_from(["lightwelld"]).unwrap().serve.resolve().unwrap();
        assert_eq!(default.trust_change_window, lightwell_core::DEFAULT_TRUST_CHANGE_WINDOW);
        assert_eq!(default.trust_change_max_bytes, lightwell_core::DEFAULT_TRUST_CHANGE_MAX_BYTES);
        assert!(Cli::try_parse_from(["lightwelld", "--trust-change-max-bytes", "0"]).is_err(), "0 is refused");
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
        let s = ServerConfig { database_file: Some(f), ..Default::default() }.resolve().unwrap();
        assert_eq!(s.database, Database::Sqlite(PathBuf::from("/tmp/x.db")));
    }

    #[test]
    fn audit_checkpoints_default_to_every_five_minutes_without_a_file() {
        let s = ServerConfig::default().resolve().unwrap();
        assert_eq!((s.audit_checkpoint_interval, s.audit_checkpoint_file), (Duration::from_secs(300), None));
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("lightwell.toml");
        std::fs::write(&cfg, "audit_checkpoint_interval_secs = 60\naudit_checkpoint_file = \"/var/log/lw.jsonl\"\n")
            .unwrap();
        let s = ServerConfig { config: Some(cfg.clone()), ..Default::default() }.resolve().unwrap();
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

    /// Settings from `flags` (after the program name and `--config`) over
    /// the environment `env` over the TOML text `file`.
    fn layers(file: &str, env: &[(&str, &str)], flags: &[&str]) -> anyhow::Result<Settings> {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("lightwell.toml");
        std::fs::write(&cfg, file).unwrap();
        let args = [OsString::from("lightwelld"), "--config".into(), cfg.into()];
        let args = args.into_iter().chain(flags.iter().map(OsString::from));
        load(args, env.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))))
    }

    /// A value as TOML: numbers and booleans bare, anything else a string.
    fn toml_value(v: &str) -> String {
        if v.parse::<i64>().is_ok() || v == "true" || v == "false" { v.to_string() } else { format!("{v:?}") }
    }

    /// `key` left to its default, set by the file, by the environment over
    /// the file, and by a flag over both: `want` is what each resolves to.
    fn precedence<T: PartialEq + std::fmt::Debug>(
        key: &str,
        [file, env, flag]: [&str; 3],
        get: impl Fn(&Settings) -> T,
        want: [T; 4],
    ) {
        let toml = format!("{key} = {}\n", toml_value(file));
        let var = format!("LIGHTWELL_{}", key.to_uppercase());
        let env = [(var.as_str(), env)];
        let flag = format!("--{}={flag}", key.replace('_', "-"));
        let [default, from_file, from_env, from_flag] = want;
        assert_eq!(get(&layers("", &[], &[]).unwrap()), default, "{key}: the default");
        assert_eq!(get(&layers(&toml, &[], &[]).unwrap()), from_file, "{key}: the file over the default");
        assert_eq!(get(&layers(&toml, &env, &[]).unwrap()), from_env, "{key}: the environment over the file");
        assert_eq!(get(&layers(&toml, &env, &[&flag]).unwrap()), from_flag, "{key}: a flag over the environment");
    }

    #[test]
    fn every_setting_has_a_flag_an_environment_variable_and_a_toml_key() {
        use clap::{CommandFactory, FromArgMatches};
        // One sample value per setting; the test fails when a setting is added without one.
        let samples: BTreeMap<&str, &str> = [
            ("config", "/etc/lightwell.toml"),
            ("data_dir", "/srv/lw"),
            ("database", "sqlite:///srv/lw.db"),
            ("database_file", "/run/secrets/db-url"),
            ("dev", "true"),
            ("listen_api", "127.0.0.1:1"),
            ("listen_pki", "127.0.0.1:2"),
            ("public_pki_url", "http://pki.example"),
            ("public_api_url", "https://api.example"),
            ("listen_ldaps", "127.0.0.1:3"),
            ("listen_ldap", "127.0.0.1:4"),
            ("ldap_allow_plaintext_bind", "true"),
            ("federation_allow_loopback", "true"),
            ("kek_file", "/run/secrets/kek"),
            ("request_timeout_secs", "5"),
            ("max_body_bytes", "6"),
            ("http_header_read_timeout_secs", "7"),
            ("http_idle_timeout_secs", "8"),
            ("tls_handshake_timeout_secs", "9"),
            ("http_max_connections", "10"),
            ("http_max_connections_per_ip", "11"),
            ("login_throttle_failures", "12"),
            ("login_throttle_window_secs", "13"),
            ("password_hashing_concurrency", "14"),
            ("clock_offset_file", "/tmp/offset"),
            ("ca_maintenance_interval_secs", "15"),
            ("audit_checkpoint_interval_secs", "16"),
            ("audit_checkpoint_file", "/var/log/cp.jsonl"),
            ("crl_sync_limit", "17"),
            ("trust_change_window", "18"),
            ("trust_change_max_bytes", "19"),
        ]
        .into();
        let declared = ServerConfig::augment_args(clap::Command::new("lightwelld"));
        let ids: Vec<&str> = declared.get_arguments().map(|a| a.get_id().as_str()).collect();
        assert_eq!(ids, ServerConfig::KEYS, "every field is a setting, in order");
        assert_eq!(samples.keys().copied().collect::<Vec<_>>(), {
            let mut keys = ServerConfig::KEYS.to_vec();
            keys.sort_unstable();
            keys
        });
        let parser = without_env::<ServerConfig>(Cli::command());
        for arg in declared.get_arguments() {
            let key = arg.get_id().as_str();
            let (long, var) = (key.replace('_', "-"), format!("LIGHTWELL_{}", key.to_uppercase()));
            assert_eq!(arg.get_long(), Some(long.as_str()), "{key}: its flag");
            assert_eq!(arg.get_env(), Some(std::ffi::OsStr::new(&var)), "{key}: its environment variable");
            let sample = samples[key];
            let matches = parser.clone().try_get_matches_from(["lightwelld", &format!("--{long}={sample}")]).unwrap();
            let by_flag = ServerConfig::from_arg_matches(&matches).unwrap();
            assert_ne!(by_flag, ServerConfig::default(), "{key}: set by its flag");
            let by_env = env_layer::<ServerConfig>(&[(var.into(), sample.into())].into()).unwrap();
            assert_eq!(by_env, by_flag, "{key}: its environment variable sets the same");
            let toml = format!("{key} = {}\n", toml_value(sample));
            if key == "config" {
                // The file cannot name another file.
                let err = toml::from_str::<ServerConfig>(&toml).unwrap_err();
                assert!(err.to_string().contains("unknown field"), "{err}");
                continue;
            }
            assert_eq!(toml::from_str::<ServerConfig>(&toml).unwrap(), by_flag, "{key}: its TOML key sets the same");
        }
    }

    #[test]
    fn a_string_setting_comes_from_a_flag_over_the_environment_over_the_file() {
        let urls = ["http://file.example/", "https://env.example", "http://flag.example"];
        let want = [None, Some("http://file.example"), Some("https://env.example"), Some("http://flag.example")];
        precedence("public_pki_url", urls, |s| s.public_pki_url.clone(), want.map(|u| u.map(String::from)));
        let err = layers("", &[("LIGHTWELL_PUBLIC_PKI_URL", "ftp://x")], &[]).unwrap_err();
        assert!(format!("{err:#}").contains("http://"), "{err:#}");
        let err = layers("", &[("LIGHTWELL_PUBLIC_API_URL", "http://plain.example")], &[]).unwrap_err();
        assert!(format!("{err:#}").contains("https://"), "{err:#}");
    }

    #[test]
    fn a_path_setting_comes_from_a_flag_over_the_environment_over_the_file() {
        let want = ["/var/lib/lightwelld/kek.key", "/file/kek", "/env/kek", "/flag/kek"].map(PathBuf::from);
        precedence("kek_file", ["/file/kek", "/env/kek", "/flag/kek"], |s| s.kek_file.clone(), want);
        // A data dir from any layer moves the defaults derived from it.
        let s = layers("data_dir = \"/file\"\n", &[("LIGHTWELL_DATA_DIR", "/env")], &[]).unwrap();
        assert_eq!(
            (s.kek_file, s.database),
            (PathBuf::from("/env/kek.key"), Database::Sqlite("/env/lightwell.db".into()))
        );
    }

    #[test]
    fn a_number_setting_comes_from_a_flag_over_the_environment_over_the_file() {
        precedence("max_body_bytes", ["100", "200", "300"], |s| s.max_body_bytes, [1024 * 1024, 100, 200, 300]);
        precedence(
            "crl_sync_limit",
            ["1", "2", "0"],
            |s| s.crl_sync_limit,
            [lightwell_core::DEFAULT_CRL_SYNC_LIMIT, 1, 2, 0],
        );
        let err = layers("", &[("LIGHTWELL_MAX_BODY_BYTES", "lots")], &[]).unwrap_err();
        assert!(format!("{err:#}").contains("LIGHTWELL_MAX_BODY_BYTES"), "a bad value names its variable: {err:#}");
        let err = layers("max_body_bytes = \"lots\"\n", &[], &[]).unwrap_err();
        assert!(format!("{err:#}").contains("max_body_bytes"), "{err:#}");
    }

    #[test]
    fn a_duration_setting_comes_from_a_flag_over_the_environment_over_the_file() {
        let want = [30, 5, 6, 7].map(Duration::from_secs);
        precedence("request_timeout_secs", ["5", "6", "7"], |s| s.request_timeout, want);
        let want = [3600, 60, 1, 120].map(Duration::from_secs);
        precedence("ca_maintenance_interval_secs", ["60", "0", "120"], |s| s.ca_maintenance_interval, want);
    }

    #[test]
    fn a_socket_address_setting_comes_from_a_flag_over_the_environment_over_the_file() {
        let addrs = ["127.0.0.1:1001", "127.0.0.1:1002", "[::1]:1003"];
        let want = ["0.0.0.0:8443", addrs[0], addrs[1], addrs[2]].map(|a| a.parse::<SocketAddr>().unwrap());
        precedence("listen_api", addrs, |s| s.listen_api, want);
        // The space-separated form of a flag works as well.
        let s = layers("", &[("LIGHTWELL_LISTEN_API", addrs[1])], &["--listen-api", addrs[2]]).unwrap();
        assert_eq!(s.listen_api, want[3]);
    }

    #[test]
    fn a_boolean_setting_is_turned_on_and_off_by_each_layer() {
        let get = |s: &Settings| s.ldap_allow_plaintext_bind;
        precedence("ldap_allow_plaintext_bind", ["true", "false", "true"], get, [false, true, false, true]);
        let on = "ldap_allow_plaintext_bind = true\n";
        assert!(layers(on, &[], &[]).unwrap().ldap_allow_plaintext_bind);
        for flag in ["--ldap-allow-plaintext-bind=false", "--ldap-allow-plaintext-bind=no"] {
            assert!(!layers(on, &[], &[flag]).unwrap().ldap_allow_plaintext_bind, "{flag} turns the file's true off");
        }
        assert!(
            !layers(on, &[("LIGHTWELL_LDAP_ALLOW_PLAINTEXT_BIND", "false")], &[]).unwrap().ldap_allow_plaintext_bind
        );
        let off_by_env = [("LIGHTWELL_LDAP_ALLOW_PLAINTEXT_BIND", "0")];
        let bare = layers(on, &off_by_env, &["--ldap-allow-plaintext-bind"]).unwrap();
        assert!(bare.ldap_allow_plaintext_bind, "the bare flag still means true, over the environment");
        // --dev likewise: the file's dev = true turned off by a flag binds the
        // default (all-interfaces) addresses again.
        let dev = layers("dev = true\n", &[], &[]).unwrap();
        assert_eq!((dev.dev, dev.listen_api), (true, "127.0.0.1:8443".parse().unwrap()));
        let not_dev = layers("dev = true\n", &[], &["--dev=false"]).unwrap();
        assert_eq!((not_dev.dev, not_dev.listen_api), (false, "0.0.0.0:8443".parse().unwrap()));
        for bad in ["--dev=maybe", "--dev="] {
            assert!(layers("", &[], &[bad]).is_err(), "{bad} is refused");
        }
        assert!(layers("", &[("LIGHTWELL_DEV", "maybe")], &[]).is_err());
    }

    #[test]
    fn a_secret_and_its_file_form_come_from_the_highest_layer_that_names_either() {
        let tmp = tempfile::tempdir().unwrap();
        let secret = |name: &str| {
            let f = tmp.path().join(name);
            std::fs::write(&f, format!("sqlite:///{name}.db\n")).unwrap();
            f.to_str().unwrap().to_string()
        };
        let (one, two, three) = (secret("one"), secret("two"), secret("three"));
        let db = |s: &Settings| s.database.clone();
        let want = ["/var/lib/lightwelld/lightwell.db", "/file.db", "/two.db", "/three.db"]
            .map(|p| Database::Sqlite(PathBuf::from(p)));
        // The file names the URL; the environment's _FILE form replaces it,
        // and a flag's _FILE form replaces that.
        let file = "database = \"sqlite:///file.db\"\n";
        assert_eq!(db(&layers("", &[], &[]).unwrap()), want[0]);
        assert_eq!(db(&layers(file, &[], &[]).unwrap()), want[1]);
        let env_file = [("LIGHTWELL_DATABASE_FILE", two.as_str())];
        assert_eq!(db(&layers(file, &env_file, &[]).unwrap()), want[2]);
        let flag_file = format!("--database-file={three}");
        assert_eq!(db(&layers(file, &env_file, &[&flag_file]).unwrap()), want[3]);
        // A flag's _FILE form also beats the environment's URL, and the
        // file's _FILE form a default.
        let env_url = [("LIGHTWELL_DATABASE", "sqlite:///env.db")];
        assert_eq!(db(&layers(file, &env_url, &[&flag_file]).unwrap()), want[3]);
        let file_file = format!("database_file = {one:?}\n");
        assert_eq!(db(&layers(&file_file, &[], &[]).unwrap()), Database::Sqlite("/one.db".into()));
        // A flag's URL beats the environment's _FILE form.
        let s = layers(&file_file, &env_file, &["--database=sqlite:///flag.db"]).unwrap();
        assert_eq!(db(&s), Database::Sqlite("/flag.db".into()));
    }
}
