//! The domain every benchmark runs against: a real `lightwelld` on a
//! temporary data dir (lightwell-testkit runs the process and removes the
//! dir), one tenant, a multi-use join token, and a user whose certificates
//! the benchmarks revoke.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lightwell_agent::join::{JoinOptions, ServerTrust};
use lightwell_ca::clock::SystemClock;
use lightwell_client::Client;
use lightwell_proto::{CreateJoinTokenRequest, CreateUserRequest, IssueCertificateRequest, RevokeRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::pki::{self, USER_PASSWORD};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The tenant the benchmarks create.
pub(crate) const TENANT: &str = "bench.example";
/// The user whose certificates are issued and then revoked.
pub(crate) const USER: &str = "bench-user";

/// A running server with a tenant ready for hosts to join.
#[derive(Debug)]
pub(crate) struct Domain {
    /// The server (killed, and its data dir removed, on drop).
    pub(crate) server: TestServer,
    /// The tenant's administrator.
    pub(crate) admin: Client,
    /// A join token good for the number of hosts asked for.
    pub(crate) token: String,
    /// The hosts' state dirs, when not in the server's scratch dir.
    hosts_dir: Option<tempfile::TempDir>,
}

/// Fails early, with the command to run, when the binaries are not built.
pub(crate) fn check_binaries() -> Result<()> {
    let dir = lightwell_testkit::bin_dir();
    for name in ["lightwelld", "lightwell"] {
        if !dir.join(name).exists() {
            bail!(
                "{} is missing; build it (cargo build --release -p lightwell-server -p lightwell-cli) \
                 or point LIGHTWELL_BIN_DIR at the directory holding it",
                dir.join(name).display()
            );
        }
    }
    Ok(())
}

impl Domain {
    /// Starts the server, creates the tenant, its user and a join token for
    /// `hosts` joins. The hosts' state dirs go in a new directory under
    /// `hosts_under` if given (another file system), else beside the server's data dir.
    pub(crate) async fn start(hosts: usize, hosts_under: Option<&Path>) -> Result<Self> {
        check_binaries()?;
        let server = tokio::task::spawn_blocking(TestServer::start).await.context("starting lightwelld")?;
        let admin = pki::tenant(&server, TENANT, None).await;
        let user = CreateUserRequest {
            name: USER.into(),
            password: Some(USER_PASSWORD.into()),
            email: None,
            display_name: None,
        };
        admin.create_principal(TENANT, "users", &user).await?;
        let req = CreateJoinTokenRequest {
            ttl: Some("1h".into()),
            uses: Some(i64::try_from(hosts.max(1))?),
            hostname: None,
            ips: vec![],
            allow_rejoin: false,
        };
        let token = admin.create_join_token(TENANT, &req).await?.token.context("the server returned no token")?;
        let hosts_dir = hosts_under.map(tempfile::TempDir::new_in).transpose()?;
        let domain = Self { server, admin, token, hosts_dir };
        std::fs::create_dir_all(domain.hosts())?;
        Ok(domain)
    }

    /// Where the hosts' state dirs go (removed when the domain is dropped).
    pub(crate) fn hosts(&self) -> PathBuf {
        match &self.hosts_dir {
            Some(dir) => dir.path().to_path_buf(),
            None => self.server.scratch().join("hosts"),
        }
    }

    /// What `lightwell join` would pass for `hostname`, with the domain's token.
    pub(crate) fn join_options(&self, hostname: &str) -> JoinOptions {
        JoinOptions {
            servers: vec![self.server.url()],
            tenant: TENANT.into(),
            token: Some(self.token.clone()),
            bearer: None,
            hostname: hostname.into(),
            ips: vec!["127.0.0.1".into()],
            trust: ServerTrust::CaFile(self.server.ca_file()),
            key_type: "p256".into(),
            state_dir: self.hosts().join(hostname),
        }
    }

    /// Joins hosts `node-NNNN` for NNNN in `hosts`, `concurrency` at a time;
    /// returns their state dirs and join latencies, or the first failure.
    pub(crate) async fn join_hosts(
        &self,
        hosts: std::ops::Range<usize>,
        concurrency: usize,
    ) -> Result<(Vec<PathBuf>, Vec<Duration>)> {
        let (mut dirs, mut latencies) = (Vec::with_capacity(hosts.len()), Vec::with_capacity(hosts.len()));
        for joined in self.try_join_hosts(hosts, concurrency).await {
            let (dir, latency) = joined?;
            dirs.push(dir);
            latencies.push(latency);
        }
        dirs.sort();
        Ok((dirs, latencies))
    }

    /// Like [`Domain::join_hosts`], with the outcome of every join.
    pub(crate) async fn try_join_hosts(
        &self,
        hosts: std::ops::Range<usize>,
        concurrency: usize,
    ) -> Vec<Result<(PathBuf, Duration)>> {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut joins = JoinSet::new();
        for i in hosts {
            let opts = self.join_options(&format!("node-{i:04}.{TENANT}"));
            let permits = permits.clone();
            joins.spawn(async move {
                let _permit = permits.acquire_owned().await?;
                let started = Instant::now();
                let joined = lightwell_agent::join::join(&opts, &SystemClock)
                    .await
                    .with_context(|| format!("joining {}", opts.hostname))?;
                anyhow::Ok((joined.state_dir, started.elapsed()))
            });
        }
        let mut all = Vec::new();
        while let Some(joined) = joins.join_next().await {
            all.push(joined.map_err(anyhow::Error::from).and_then(|r| r));
        }
        all
    }

    /// Issues `count` client certificates to the user (keys made here); returns their serials.
    pub(crate) async fn user_certificates(&self, count: usize) -> Result<Vec<String>> {
        let mut serials = Vec::with_capacity(count);
        for _ in 0..count {
            let (_key, csr) = lightwell_agent::enroll::key_and_csr("p256", USER)?;
            let req = IssueCertificateRequest {
                csr,
                profile: Some("client".into()),
                ttl: None,
                principal: Some(format!("user/{USER}")),
                cluster: None,
            };
            serials.push(self.admin.issue_certificate(TENANT, &req).await?.serial);
        }
        Ok(serials)
    }

    /// Revokes a certificate; returns once the server acknowledged it.
    pub(crate) async fn revoke(&self, serial: &str) -> Result<()> {
        let req = RevokeRequest { reason: Some("key-compromise".into()), principal: None };
        self.admin.revoke_certificate(TENANT, serial, &req).await?;
        Ok(())
    }
}
