//! `lightwell agent`: keeps a joined host current.
//!
//! - Trust: a long poll on the tenant's trust revision; when it grows, the
//!   bundle and CRLs are fetched and written (bundle.pem, crl/, capath/) and
//!   the trust hook runs. A full resync runs every `resync_interval_secs` as
//!   a safety net, and a reconnecting agent compares revisions, so it misses
//!   nothing.
//! - Identity: the machine certificate is renewed at `renew_at` of its
//!   lifetime (with jitter) over mutual TLS with the current certificate; if
//!   that certificate is expired or revoked, the agent re-enrols with its
//!   machine secret. The machine secret is rotated periodically.
//! - Outages: every call fails over across the configured servers and
//!   retries with exponential backoff and jitter; the last good files stay.
//! - Time: every decision above reads the injected [`Clock`]; the loop
//!   sleeps on a monotonic timer at most [`Clock::recheck_interval`] at a
//!   time, so a jump of the clock (an NTP step, a resumed host, a test
//!   moving it) is acted on without waiting out the old timer.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use lightwell_ca::clock::{Clock, OffsetClock, SystemClock};
use lightwell_client::{Client, ClientError, ClientIdentity, Trust};
use lightwell_proto::{ErrorCode, IssueCertificateRequest, ReenrollRequest, TrustChangesBody, TrustStateBody};
use zeroize::Zeroizing;

use crate::changes::TrustFiles;
use crate::config::{AgentConfig, ConfigError};
use crate::enroll::{key_and_csr, validity};
use crate::error::AgentError;
use crate::join::trust_files;
use crate::servers::Servers;
use crate::state::StateDir;
use crate::status::Status;
use crate::{files, hooks, staple};

/// A certificate the agent keeps current besides the machine's own.
#[derive(Debug, Clone)]
struct Tracked {
    name: String,
    key_type: String,
    common_name: String,
    /// What to ask for (the CSR is filled in at each renewal).
    request: IssueCertificateRequest,
    /// The chain; with no `key_path`, the chain followed by the key (0600).
    cert_path: std::path::PathBuf,
    key_path: Option<std::path::PathBuf>,
    /// Where the issuing CA certificate goes, if anywhere.
    ca_path: Option<std::path::PathBuf>,
    hook: Option<String>,
}

const MAX_BACKOFF: Duration = Duration::from_secs(60);
const WATCH_TIMEOUT_SECS: u64 = 25;

/// The agent's clock: the wall clock, or (TEST ONLY, for end-to-end tests
/// of renewal, re-enrolment and secret rotation against the real binary)
/// the wall clock shifted by `LIGHTWELL_CLOCK_OFFSET_SECS` seconds, which
/// is logged as a warning.
pub fn clock_from_env() -> Result<Arc<dyn Clock>, AgentError> {
    let Some(offset) = std::env::var_os("LIGHTWELL_CLOCK_OFFSET_SECS") else {
        return Ok(Arc::new(SystemClock));
    };
    let secs: i64 = offset
        .to_str()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| AgentError::Other("LIGHTWELL_CLOCK_OFFSET_SECS must be a whole number of seconds".into()))?;
    tracing::warn!(secs, "TEST ONLY: the agent's clock is shifted by LIGHTWELL_CLOCK_OFFSET_SECS");
    Ok(Arc::new(OffsetClock::with_offset(secs)))
}

/// A pending long poll for the next trust revision.
type Watch = Pin<Box<dyn Future<Output = Result<TrustChangesBody, AgentError>> + Send>>;

fn jitter_fraction() -> f64 {
    lightwell_ca::random::bytes::<2>().map(|b| f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX)).unwrap_or(0.5)
}

/// A joined host's agent.
#[derive(Debug)]
pub struct Agent {
    state: StateDir,
    config: AgentConfig,
    trust: Trust,
    anonymous: Servers,
    status: Status,
    clock: Arc<dyn Clock>,
    /// When `ocsp.der` is next refreshed (Unix seconds; 0: at the next pass).
    staple_due: i64,
    /// The SPIFFE Workload API, once [`Agent::run_forever`] serves it.
    workload: Option<Arc<crate::workload::WorkloadApi>>,
}

impl Agent {
    /// Loads the state dir; every decision of this agent reads `clock`.
    pub fn load(state_dir: &Path, clock: Arc<dyn Clock>) -> Result<Self, AgentError> {
        Self::load_with(state_dir, crate::settings::AgentSettings::default(), clock)
    }

    /// Loads the state dir, with `settings` (from flags and environment
    /// variables) over what its `agent.toml` says.
    pub fn load_with(
        state_dir: &Path,
        settings: crate::settings::AgentSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AgentError> {
        let state = StateDir::new(state_dir);
        let mut config = AgentConfig::load(&state.config())?;
        settings.apply(&mut config);
        config.validate().map_err(|message| ConfigError::Invalid { path: state.config(), message })?;
        let trust = match &config.server_ca_fingerprint {
            Some(fp) => Trust::fingerprint(fp)?,
            None => Trust::CaPem(std::fs::read(state.server_ca())?),
        };
        let anonymous = Servers::new(&config.servers, &trust, None)?;
        let status = Status::load(&state);
        Ok(Self { state, config, trust, anonymous, status, clock, staple_due: 0, workload: None })
    }

    /// The current time on the agent's clock, Unix seconds.
    fn now(&self) -> i64 {
        self.clock.unix()
    }

    fn mtls(&self) -> Result<Servers, AgentError> {
        let identity = ClientIdentity {
            chain_pem: std::fs::read_to_string(self.state.chain())?,
            key_pem: Zeroizing::new(std::fs::read_to_string(self.state.key())?),
        };
        Ok(Servers::new(&self.config.servers, &self.trust, Some(&identity))?)
    }

    /// The trust revision of the files on disk.
    pub fn revision(&self) -> i64 {
        self.status.revision
    }

    /// Writes a trust state; runs the trust hook if files changed.
    fn apply_trust(&mut self, trust: &TrustStateBody) -> Result<(), AgentError> {
        self.write_trust(&trust_files(trust)?, trust.revision)
    }

    /// Writes the trust files of `revision`; runs the trust hook once if files changed.
    fn write_trust(&mut self, trust: &TrustFiles, revision: i64) -> Result<(), AgentError> {
        let changed = self.state.write_trust(trust)?;
        if !changed.is_empty()
            && let Some(workload) = &self.workload
        {
            workload.set_trust(&trust.roots, trust.crls.iter().map(|c| c.der.clone()).collect());
        }
        self.status.revision = revision;
        self.status.last_sync = Some(self.now());
        self.status.save(&self.state)?;
        if !changed.is_empty() {
            // A revocation may be this host's: ask the responder again.
            self.staple_due = 0;
            tracing::info!(revision, files = changed.len(), "trust bundle and CRLs updated");
            if let Some(hook) = &self.config.hooks.on_trust_change {
                hooks::run(hook, self.state.root(), &changed);
            }
        }
        Ok(())
    }

    /// Fetches and writes the bundle and CRLs: a full snapshot.
    pub async fn sync_trust(&mut self) -> Result<(), AgentError> {
        tracing::info!(revision = self.status.revision, "fetching a trust snapshot");
        let tenant = self.config.tenant.clone();
        let trust = self.anonymous.call(|c: Client| {
            let tenant = tenant.clone();
            async move { c.trust(&tenant).await }
        });
        let trust = trust.await?;
        self.apply_trust(&trust)
    }

    /// Waits (long poll) for the changes after the revision on disk; the
    /// answer carries them (or says a snapshot is needed).
    pub async fn changes(&self) -> Result<TrustChangesBody, AgentError> {
        self.changes_owned(WATCH_TIMEOUT_SECS).await
    }

    /// [`Agent::changes`] as a future that borrows nothing, so the agent can
    /// renew while the long poll stays open. Against a server from before
    /// the change feed (the route is unknown) it long-polls the old watch and
    /// answers "snapshot required" when the revision moved.
    fn changes_owned(&self, timeout_secs: u64) -> Watch {
        let (servers, tenant, since) = (self.anonymous.clone(), self.config.tenant.clone(), self.status.revision);
        Box::pin(async move {
            let r = servers.call(|c: Client| {
                let tenant = tenant.clone();
                async move { c.trust_changes(&tenant, since, timeout_secs).await }
            });
            match r.await.map_err(AgentError::from) {
                Err(e) if predates_changes(&e) => {
                    let watched = servers.call(|c: Client| {
                        let tenant = tenant.clone();
                        async move { c.watch_trust(&tenant, since, timeout_secs).await }
                    });
                    let revision = watched.await?.revision;
                    Ok(TrustChangesBody { revision, snapshot_required: revision > since, changes: Vec::new() })
                }
                other => other,
            }
        })
    }

    /// Waits (long poll) for the next trust revision (the watch older
    /// servers answer); returns it.
    pub async fn watch(&self) -> Result<i64, AgentError> {
        let (tenant, since) = (self.config.tenant.clone(), self.status.revision);
        let r = self.anonymous.call(|c: Client| {
            let tenant = tenant.clone();
            async move { c.watch_trust(&tenant, since, WATCH_TIMEOUT_SECS).await }
        });
        Ok(r.await?.revision)
    }

    /// Brings the trust files up to date at start: from the changes since
    /// the revision on disk (a snapshot only when the server no longer has
    /// them all, or nothing was synced yet).
    pub async fn catch_up(&mut self) -> Result<(), AgentError> {
        if self.status.revision <= 0 {
            return self.sync_trust().await;
        }
        // Answered at once when behind; up to date, after the shortest wait.
        let answer = self.changes_owned(1).await?;
        if answer.snapshot_required || !answer.changes.is_empty() {
            return self.apply_changes(&answer).await;
        }
        // Nothing changed: the files on disk are the server's, as of now.
        self.status.last_sync = Some(self.now());
        Ok(self.status.save(&self.state)?)
    }

    /// Applies a `changes` answer to the files on disk; fetches a snapshot
    /// when told to, or when a change does not apply (a CRL delta whose
    /// base is not the CRL held, or whose result does not verify).
    pub async fn apply_changes(&mut self, answer: &TrustChangesBody) -> Result<(), AgentError> {
        if answer.snapshot_required {
            tracing::info!(revision = answer.revision, "the server asks for a trust snapshot");
            return self.sync_trust().await;
        }
        if answer.changes.is_empty() || answer.revision <= self.status.revision {
            return Ok(());
        }
        if answer.changes.iter().any(|c| c.kind == "token_keys" || c.kind == "federation")
            && let Some(workload) = &self.workload
        {
            workload.bundles_changed();
        }
        let applied = self.state.read_trust().map_err(AgentError::from).and_then(|held| {
            let known = crate::join::chain_cas(&self.state)?;
            crate::changes::apply(&held, &known, &answer.changes)
        });
        match applied {
            Ok(files) => {
                tracing::info!(
                    revision = answer.revision,
                    changes = answer.changes.len(),
                    "trust changes applied incrementally"
                );
                self.write_trust(&files, answer.revision)
            }
            Err(e) => {
                tracing::warn!(error = %e, "trust changes do not apply to the files held; fetching a snapshot");
                self.sync_trust().await
            }
        }
    }

    /// When the machine certificate is due for renewal (Unix seconds).
    pub fn renewal_due(&self) -> Result<i64, AgentError> {
        let pem = std::fs::read_to_string(self.state.cert())?;
        self.due(&pem).ok_or_else(|| AgentError::Other("cert.pem does not parse".into()))
    }

    /// Renew at `renew_at` of the lifetime, spread by up to 10% of it so hosts
    /// do not renew in step. The spread comes from the certificate itself, so
    /// one certificate's renewal time stays put while different ones differ.
    fn due(&self, cert_pem: &str) -> Option<i64> {
        let (nb, na) = validity(cert_pem)?;
        let life = (na - nb).max(1) as f64;
        let h = lightwell_ca::fingerprint::sha256(cert_pem.as_bytes());
        let spread = f64::from(u16::from_le_bytes([h[0], h[1]])) / f64::from(u16::MAX);
        let at = nb as f64 + life * (self.config.renew_at - 0.05 + 0.1 * spread);
        Some((at as i64).min(na - 30))
    }

    /// When a tracked certificate is due: now if it is missing or unreadable.
    fn tracked_due(&self, c: &Tracked) -> i64 {
        std::fs::read_to_string(&c.cert_path).ok().and_then(|pem| self.due(&pem)).unwrap_or_else(|| self.now())
    }

    /// The next time any certificate is due.
    pub fn next_due(&self) -> Result<i64, AgentError> {
        let machine = self.renewal_due()?;
        Ok(self.tracked().iter().map(|c| self.tracked_due(c)).fold(machine, i64::min))
    }

    /// Every certificate kept current besides the machine's own: service
    /// identities, then each cluster's kubelet client and serving certificates.
    fn tracked(&self) -> Vec<Tracked> {
        let mut out: Vec<Tracked> = self
            .config
            .certificates
            .iter()
            .map(|c| Tracked {
                name: c.name.clone(),
                key_type: c.key_type.clone(),
                common_name: c.service.clone(),
                request: IssueCertificateRequest {
                    profile: Some("server-client".into()),
                    principal: Some(format!("service/{}", c.service)),
                    ..Default::default()
                },
                cert_path: c.cert_path.clone(),
                key_path: Some(c.key_path.clone()),
                ca_path: None,
                hook: c.hook.clone(),
            })
            .collect();
        for k in &self.config.kubernetes {
            let node = format!("system:node:{}", self.config.hostname);
            for (profile, cert_path, key_path) in
                [("k8s-node", &k.client_cert, None), ("k8s-node-serving", &k.serving_cert, Some(&k.serving_key))]
            {
                out.push(Tracked {
                    name: format!("{profile}@{}", k.cluster),
                    key_type: k.key_type.clone(),
                    common_name: node.clone(),
                    request: IssueCertificateRequest {
                        profile: Some(profile.into()),
                        cluster: Some(k.cluster.clone()),
                        ..Default::default()
                    },
                    cert_path: cert_path.clone(),
                    key_path: key_path.cloned(),
                    ca_path: Some(k.ca_file.clone()),
                    hook: k.hook.clone(),
                });
            }
        }
        out
    }

    /// Obtains or renews a tracked certificate over mutual TLS, writes its
    /// key (0600) and chain (or both in one 0600 file, as kubelet keeps its
    /// client certificate) and the issuing CA if asked; returns the files written.
    async fn renew_tracked(&self, c: &Tracked) -> Result<Vec<std::path::PathBuf>, AgentError> {
        let (key, csr) = key_and_csr(&c.key_type, &c.common_name)?;
        let req = IssueCertificateRequest { csr, ..c.request.clone() };
        let tenant = self.config.tenant.clone();
        let cert = self
            .mtls()?
            .call(|client: Client| {
                let (tenant, req) = (tenant.clone(), req.clone());
                async move { client.issue_certificate(&tenant, &req).await }
            })
            .await?;
        // kubelet's directories may not exist before its first start.
        for path in [Some(&c.cert_path), c.key_path.as_ref(), c.ca_path.as_ref()].into_iter().flatten() {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
        }
        let mut changed = Vec::new();
        if let Some(ca_path) = &c.ca_path {
            // The chain is the leaf then its issuing CA: the CA is everything after the first block.
            let ca_pem = cert
                .chain_pem
                .strip_prefix(cert.pem.as_str())
                .filter(|rest| !rest.trim().is_empty())
                .ok_or_else(|| AgentError::Other(format!("{}: the server sent no issuing CA", c.name)))?;
            files::write_atomic(ca_path, ca_pem.as_bytes(), 0o644)?;
            changed.push(ca_path.clone());
        }
        match &c.key_path {
            Some(key_path) => {
                // Key first: a reader that sees the new certificate also finds its key.
                files::write_atomic(key_path, key.as_bytes(), 0o600)?;
                files::write_atomic(&c.cert_path, cert.chain_pem.as_bytes(), 0o644)?;
                changed.push(key_path.clone());
            }
            None => {
                let combined = Zeroizing::new(format!("{}{}", cert.chain_pem, key.as_str()));
                files::write_atomic(&c.cert_path, combined.as_bytes(), 0o600)?;
            }
        }
        changed.push(c.cert_path.clone());
        tracing::info!(name = c.name, serial = cert.serial, "certificate renewed");
        Ok(changed)
    }

    /// Renews every certificate that is due: the machine's first, then tracked ones.
    pub async fn renew_due(&mut self) -> Result<(), AgentError> {
        if self.now() >= self.renewal_due()? {
            self.renew().await?;
        }
        let mut first_error = None;
        // Each hook runs once, after all its certificates (a kubelet's client and serving) renewed.
        let mut hooks_due: Vec<(String, Vec<std::path::PathBuf>)> = Vec::new();
        for c in self.tracked() {
            if self.now() < self.tracked_due(&c) {
                continue;
            }
            match self.renew_tracked(&c).await {
                Ok(changed) => {
                    if let Some(hook) = &c.hook {
                        match hooks_due.iter_mut().find(|(h, _)| h == hook) {
                            Some((_, files)) => files.extend(changed),
                            None => hooks_due.push((hook.clone(), changed)),
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(name = c.name, error = %e, "renewing a tracked certificate failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        for (hook, changed) in hooks_due {
            hooks::run(&hook, self.state.root(), &changed);
        }
        first_error.map_or(Ok(()), Err)
    }

    fn write_identity(&mut self, key: &str, cert: &str, chain: &str) -> Result<(), AgentError> {
        let changed = self.state.write_identity(Some(key), cert, chain)?;
        self.staple_due = 0;
        self.status.last_renewal = Some(self.now());
        self.status.save(&self.state)?;
        if let Some(hook) = &self.config.hooks.on_identity_change {
            hooks::run(hook, self.state.root(), &changed);
        }
        Ok(())
    }

    /// Renews the machine certificate over mutual TLS, or re-enrols with the
    /// machine secret when the current certificate no longer authenticates.
    pub async fn renew(&mut self) -> Result<(), AgentError> {
        let (key, csr) = key_and_csr(&self.config.key_type, &self.config.hostname)?;
        let tenant = self.config.tenant.clone();
        let req =
            IssueCertificateRequest { csr: csr.clone(), profile: Some("server-client".into()), ..Default::default() };
        let renewed = self
            .mtls()?
            .call(|c: Client| {
                let (tenant, req) = (tenant.clone(), req.clone());
                async move { c.issue_certificate(&tenant, &req).await }
            })
            .await;
        match renewed {
            Ok(cert) => {
                self.write_identity(&key, &cert.pem, &cert.chain_pem)?;
                tracing::info!(serial = cert.serial, not_after = cert.not_after, "machine certificate renewed");
                Ok(())
            }
            Err(ClientError::Api {
                code: ErrorCode::InvalidClientCertificate | ErrorCode::Unauthenticated, ..
            }) => {
                tracing::warn!("the machine certificate no longer authenticates; re-enrolling with the machine secret");
                self.reenroll(&key, csr).await
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn reenroll(&mut self, key: &str, csr: String) -> Result<(), AgentError> {
        let secret = Zeroizing::new(std::fs::read_to_string(self.state.machine_secret())?.trim().to_string());
        let req = ReenrollRequest { hostname: self.config.hostname.clone(), machine_secret: secret.to_string(), csr };
        let tenant = self.config.tenant.clone();
        let enrolled = self
            .anonymous
            .call(|c: Client| {
                let (tenant, req) = (tenant.clone(), req.clone());
                async move { c.reenroll(&tenant, &req).await }
            })
            .await?;
        self.write_identity(key, &enrolled.certificate, &enrolled.chain)?;
        self.apply_trust(&enrolled.trust)?;
        tracing::info!("re-enrolled with the machine secret");
        Ok(())
    }

    /// Rotates the machine secret if it is older than the configured period.
    pub async fn rotate_secret_if_due(&mut self) -> Result<(), AgentError> {
        // A secret of unknown age (no record) is rotated at the first opportunity.
        let last = self.status.last_secret_rotation.unwrap_or(0);
        if self.now() - last < i64::try_from(self.config.secret_rotation_secs).unwrap_or(i64::MAX) {
            return Ok(());
        }
        let tenant = self.config.tenant.clone();
        let current = Zeroizing::new(std::fs::read_to_string(self.state.machine_secret())?.trim().to_string());
        // The new secret is made here and kept before it is sent, so a lost
        // answer costs nothing: the next attempt sends the same one.
        let next_path = self.state.machine_secret().with_extension("secret.next");
        let next = match std::fs::read_to_string(&next_path) {
            Ok(s) if !s.trim().is_empty() => Zeroizing::new(s.trim().to_string()),
            _ => {
                let raw = Zeroizing::new(lightwell_ca::random::bytes::<32>()?);
                let fresh = Zeroizing::new(format!("lwm_{}", hex::encode(raw.as_slice())));
                files::write_atomic(&next_path, format!("{}\n", fresh.as_str()).as_bytes(), 0o600)?;
                fresh
            }
        };
        let fresh = self
            .mtls()?
            .call(|c: Client| {
                let (tenant, current, next) = (tenant.clone(), current.clone(), next.clone());
                async move { c.rotate_machine_secret(&tenant, &current, Some(&next)).await }
            })
            .await?;
        files::write_atomic(&self.state.machine_secret(), format!("{}\n", fresh.machine_secret).as_bytes(), 0o600)?;
        let _ = std::fs::remove_file(&next_path);
        self.status.last_secret_rotation = Some(self.now());
        self.status.save(&self.state)?;
        tracing::info!("machine secret rotated");
        Ok(())
    }

    /// Leaves the domain, authenticated by the machine secret (so a host
    /// whose certificate expired can leave too): the server revokes every
    /// certificate it holds or obtained, forgets its machine secret and
    /// disables it. Returns the serials revoked.
    pub async fn leave(&self) -> Result<Vec<String>, AgentError> {
        let secret = Zeroizing::new(std::fs::read_to_string(self.state.machine_secret())?.trim().to_string());
        let req = lightwell_proto::LeaveRequest {
            hostname: self.config.hostname.clone(),
            machine_secret: secret.to_string(),
        };
        let tenant = self.config.tenant.clone();
        let left = self
            .anonymous
            .call(|c: Client| {
                let (tenant, req) = (tenant.clone(), req.clone());
                async move { c.leave(&tenant, &req).await }
            })
            .await?;
        Ok(left.revoked)
    }

    /// Refreshes `ocsp.der` when it is due: at start, after the machine
    /// certificate or the trust state changed, and half-way to the kept
    /// answer's nextUpdate. A responder that cannot be reached is retried in
    /// a minute and leaves the last good file; it never fails the agent's
    /// other work. Runs the identity hook when the file changed.
    pub async fn refresh_staple_if_due(&mut self) {
        let now = self.now();
        if now < self.staple_due {
            return;
        }
        let path = self.state.staple();
        let request = std::fs::read(self.state.chain()).map_err(AgentError::from).and_then(|c| staple::request_for(&c));
        let changed = match request {
            Ok(None) => {
                // The certificate names no responder: nothing to staple.
                self.staple_due = now + 3600;
                staple::remove(&path).unwrap_or(false)
            }
            Ok(Some(request)) => match staple::fetch(&request, now).await {
                Ok((der, next_update)) => {
                    self.staple_due = now + (next_update - now) / 2;
                    let old = std::fs::read(&path).ok();
                    match files::write_atomic(&path, &der, 0o644) {
                        Ok(()) => old.as_deref() != Some(der.as_slice()),
                        Err(e) => {
                            tracing::warn!(file = %path.display(), error = %e, "writing ocsp.der failed");
                            self.staple_due = now + 60;
                            false
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "OCSP staple not refreshed; keeping the last good one");
                    self.staple_due = now + 60;
                    false
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "OCSP staple not refreshed");
                self.staple_due = now + 60;
                false
            }
        };
        if changed && let Some(hook) = &self.config.hooks.on_identity_change {
            hooks::run(hook, self.state.root(), &[path]);
        }
    }

    /// One pass: sync trust, renew if due, rotate the secret if due, refresh the OCSP staple.
    pub async fn once(&mut self) -> Result<(), AgentError> {
        self.catch_up().await?;
        self.renew_due().await?;
        self.rotate_secret_if_due().await?;
        self.refresh_staple_if_due().await;
        Ok(())
    }

    /// Starts the SPIFFE Workload API (unless `workload_socket` is `none`):
    /// its socket and the task that keeps SVIDs current. A socket that
    /// cannot be bound is logged and the agent goes on keeping the host's
    /// own identity and trust current.
    fn start_workload_api(&mut self) {
        if self.config.workload_socket == "none" {
            return;
        }
        let settings = crate::workload::WorkloadSettings {
            socket: self.config.workload_socket.clone().into(),
            connections_per_uid: self.config.workload_connections_per_uid,
        };
        let api = crate::workload::WorkloadApi::new(
            self.state.clone(),
            &self.config,
            self.trust.clone(),
            self.clock.clone(),
            settings,
        );
        tokio::spawn(api.clone().maintain());
        let serving = api.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::workload::serve(serving).await {
                tracing::error!(error = %e, "the SPIFFE Workload API is not served");
            }
        });
        self.workload = Some(api);
    }

    /// Runs until the process is stopped.
    pub async fn run_forever(&mut self) -> Result<(), AgentError> {
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.once().await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "initial sync failed; keeping the last good files");
                    sleep_backoff(&mut backoff).await;
                }
            }
        }
        self.start_workload_api();
        let resync_every = i64::try_from(self.config.resync_interval_secs).unwrap_or(300);
        // The interval counts from the last sync, not from the end of the
        // first pass (which may have renewed, rotated and fetched the staple since).
        let mut next_resync = self.status.last_sync.unwrap_or_else(|| self.now()) + resync_every;
        let mut backoff = Duration::from_secs(1);
        // A failing renewal backs off on its own, so trust changes keep arriving meanwhile.
        let (mut renew_backoff, mut renew_retry) = (Duration::from_secs(1), None::<tokio::time::Instant>);
        let mut watch = self.changes_owned(WATCH_TIMEOUT_SECS);
        loop {
            self.refresh_staple_if_due().await;
            let (now, due) = (self.now(), self.next_due()?);
            // A clock stepped back does not put the next resync further off than its interval.
            next_resync = next_resync.min(now + resync_every);
            let renew_in = match renew_retry {
                Some(at) if now >= due => at.saturating_duration_since(tokio::time::Instant::now()),
                _ => Duration::from_secs(u64::try_from(due - now).unwrap_or(0)),
            };
            if now >= due && renew_in.is_zero() {
                match self.renew_due().await {
                    Ok(()) => (renew_backoff, renew_retry) = (Duration::from_secs(1), None),
                    Err(e) => {
                        tracing::warn!(error = %e, "renewal failed; keeping the last good files and retrying");
                        renew_retry = Some(tokio::time::Instant::now() + jittered(renew_backoff));
                        renew_backoff = (renew_backoff * 2).min(MAX_BACKOFF);
                    }
                }
                continue;
            }
            let mut watched = false;
            let step = if now >= next_resync {
                next_resync = now + resync_every;
                match self.sync_trust().await {
                    Ok(()) => self.rotate_secret_if_due().await,
                    Err(e) => Err(e),
                }
            } else {
                let resync_in = Duration::from_secs(u64::try_from(next_resync - now).unwrap_or(0));
                tokio::select! {
                    answer = &mut watch => {
                        watched = true;
                        match answer {
                            Ok(answer) => self.apply_changes(&answer).await,
                            Err(e) => Err(e),
                        }
                    }
                    // Wakes to read the clock again, leaving the long poll open.
                    _ = tokio::time::sleep(renew_in.min(resync_in).min(self.clock.recheck_interval())) => continue,
                }
            };
            match step {
                Ok(()) => backoff = Duration::from_secs(1),
                Err(e) => {
                    tracing::warn!(error = %e, "agent step failed; keeping the last good files and retrying");
                    sleep_backoff(&mut backoff).await;
                }
            }
            if watched {
                watch = self.changes_owned(WATCH_TIMEOUT_SECS);
            }
        }
    }
}

/// Whether a server refused `GET .../trust/changes` as an unknown route (it
/// predates the change feed; an unknown tenant is `tenant_not_found`).
fn predates_changes(e: &AgentError) -> bool {
    matches!(e, AgentError::Server(e) if e.code() == Some(ErrorCode::NotFound))
}

/// `backoff` with ±50% jitter.
fn jittered(backoff: Duration) -> Duration {
    backoff.mul_f64(0.5 + jitter_fraction())
}

/// Sleeps for the current backoff with ±50% jitter, then doubles it (capped).
async fn sleep_backoff(backoff: &mut Duration) {
    tokio::time::sleep(jittered(*backoff)).await;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
}
