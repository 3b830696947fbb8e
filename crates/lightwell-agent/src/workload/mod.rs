//! The SPIFFE Workload API on a joined host (DESIGN section 1, item 9).
//!
//! - Which workloads exist is the directory's decision: the agent fetches
//!   the workload entries assigned to its machine
//!   (`GET /v1/tenants/{t}/workload-assignments`, mutual TLS) at start,
//!   after every trust change (deleting an entry or disabling its service
//!   revokes its SVIDs, so it arrives as one), every 30 s, and — at most
//!   every 2 s — when a process matching no entry asks.
//! - For every assigned entry the agent makes a P-256 key in memory (never
//!   on disk) and asks for an X.509-SVID over mutual TLS with its machine
//!   certificate; the server re-checks that this machine may hold the
//!   entry. SVIDs are renewed at half their life, and dropped when their
//!   entry goes or their serial appears in a CRL (then re-issued if the
//!   entry stays).
//! - Processes are recognised by what the kernel says about them
//!   ([`attest`]); each gets the SVIDs of every entry whose selectors all
//!   hold, streamed: a new message whenever an SVID, the bundle or a CRL
//!   changes. A process matching nothing gets `PermissionDenied`.
//! - A pod's namespace, service account and labels come from the kubelet
//!   ([`kubelet`]), asked only for a process with a pod UID and only while
//!   an assigned entry selects by one of them.
//!
//! - JWT-SVIDs: a process asks for audiences; for each entry it matches the
//!   agent asks the server for a token (signed with the tenant's token key,
//!   `sub` the entry's SPIFFE ID) and keeps it until half its life has
//!   passed, per entry and audience set ([`MAX_JWT_CACHE`] at most). The
//!   tenant's JWK Set (`/oidc/{t}/jwks`) is fetched with the assignments
//!   and streamed to `FetchJWTBundles`; `ValidateJWTSVID` checks a token
//!   against it locally.
//! - Federation: the bundles of the tenant's foreign trust domains
//!   (`GET /v1/tenants/{t}/federated-bundles`) are fetched with the JWT
//!   bundle, again on a `federation` trust change, and handed out beside
//!   the tenant's own: `federated_bundles` of `FetchX509SVID`, and in
//!   `FetchX509Bundles` and `FetchJWTBundles`; `ValidateJWTSVID` checks a
//!   foreign token with its own trust domain's keys.

pub mod attest;
mod authority;
mod grpc;
mod kubelet;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use lightwell_ca::clock::Clock;
use lightwell_ca::{KeyAlgorithm, SigningKey};
use lightwell_client::{Client, ClientIdentity, Trust};
use lightwell_proto::{Selector, SvidRequest, parse_selectors};
use zeroize::Zeroizing;

use crate::error::AgentError;
use crate::servers::Servers;
use crate::state::StateDir;

pub use self::grpc::serve;

/// How often assignments are fetched without a reason.
const POLL: Duration = Duration::from_secs(30);
/// How often a process matching nothing may make the agent ask the server again.
const ON_DEMAND: Duration = Duration::from_secs(2);
/// JWT-SVIDs kept at most (entry × audience set); beyond, the soonest due go.
const MAX_JWT_CACHE: usize = 1024;
/// New JWT-SVIDs one uid may have the agent ask for at once, and per second after.
const JWT_BURST: f64 = 16.0;
const JWT_PER_SEC: f64 = 2.0;

/// Why a JWT-SVID was not given.
#[derive(Debug)]
enum JwtSvidError {
    /// The uid asked for too many new tokens.
    Throttled,
    /// The server could not be asked, or refused.
    Agent(AgentError),
}

impl From<AgentError> for JwtSvidError {
    fn from(e: AgentError) -> Self {
        Self::Agent(e)
    }
}

/// Where and how the Workload API listens.
#[derive(Debug, Clone)]
pub struct WorkloadSettings {
    /// The Unix socket.
    pub socket: PathBuf,
    /// Connections one uid may hold open at once (each up to 16 streams).
    pub connections_per_uid: usize,
}

/// An entry assigned to this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    spiffe_id: String,
    selectors: Vec<Selector>,
}

/// An X.509-SVID held in memory.
struct Svid {
    spiffe_id: String,
    /// Leaf first, then intermediates (DER).
    chain: Vec<Vec<u8>>,
    /// PKCS#8 DER.
    key: Zeroizing<Vec<u8>>,
    /// Serial, lower-case hex without leading zeros.
    serial: String,
    not_after: i64,
    /// Half of the life left when it arrived.
    renew_at: i64,
}

impl std::fmt::Debug for Svid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Svid").field("spiffe_id", &self.spiffe_id).field("serial", &self.serial).finish_non_exhaustive()
    }
}

/// The trust bundle and CRLs as workloads receive them.
#[derive(Debug, Clone, Default)]
struct TrustView {
    roots: Vec<Vec<u8>>,
    crls: Vec<Vec<u8>>,
    /// Serials listed in any CRL, normalised like [`Svid::serial`].
    revoked: std::collections::HashSet<String>,
}

/// A JWT-SVID held for reuse.
#[derive(Clone)]
struct JwtSvid {
    spiffe_id: String,
    token: String,
    expires_at: i64,
    /// Half of its life.
    renew_at: i64,
}

impl std::fmt::Debug for JwtSvid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSvid")
            .field("spiffe_id", &self.spiffe_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The tenant's JWT bundle: its published token keys.
#[derive(Debug)]
struct JwtBundle {
    /// The JWK Set as workloads receive it.
    json: Vec<u8>,
    keys: lightwell_jose::Jwks,
}

/// A foreign trust domain's bundle as workloads receive it.
#[derive(Debug)]
struct Foreign {
    /// Its X.509 authorities, DER concatenated.
    x509: Vec<u8>,
    /// Its JWT authorities as a JWK Set document.
    jwt_json: Vec<u8>,
    jwt_keys: lightwell_jose::Jwks,
}

/// The bundles of the tenant's foreign trust domains (SPIFFE federation).
#[derive(Debug, Default)]
struct Federated {
    /// As the server sent them (trust domain, bundle document), to see changes.
    documents: Vec<(String, String)>,
    domains: BTreeMap<String, Foreign>,
}

/// The Workload API's state, shared by the gRPC handlers and the task that
/// keeps SVIDs current.
#[derive(Debug)]
pub struct WorkloadApi {
    tenant: String,
    state: StateDir,
    servers: Vec<String>,
    trust: Trust,
    clock: Arc<dyn Clock>,
    settings: WorkloadSettings,
    /// `None` until the first answer from the server.
    entries: RwLock<Option<Vec<Entry>>>,
    svids: RwLock<BTreeMap<String, Arc<Svid>>>,
    trust_view: RwLock<Arc<TrustView>>,
    /// Moves on every change X.509 streams must hear of.
    generation: tokio::sync::watch::Sender<u64>,
    /// JWT-SVIDs by entry name and sorted audiences.
    jwt_svids: Mutex<std::collections::HashMap<(String, Vec<String>), JwtSvid>>,
    /// `None` until first fetched.
    jwt_bundle: RwLock<Option<Arc<JwtBundle>>>,
    /// Moves when the JWT bundle or a foreign trust domain's bundle changes.
    jwt_generation: tokio::sync::watch::Sender<u64>,
    /// Foreign trust domains' bundles; empty until first fetched.
    federated: RwLock<Arc<Federated>>,
    /// Per uid: places left for new JWT-SVIDs, and when counted.
    jwt_buckets: Mutex<std::collections::HashMap<u32, (f64, Instant)>>,
    /// One refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
    /// When a process matching nothing last made the agent ask the server.
    last_on_demand: Mutex<Option<Instant>>,
    wake: tokio::sync::Notify,
    /// Open connections per uid.
    connections: Mutex<std::collections::HashMap<u32, usize>>,
    /// The kubelets of the clusters this machine is a node of (`[[kubernetes]]`).
    kubelets: Vec<kubelet::Kubelet>,
}

fn normal_serial(hex: &str) -> String {
    let s = hex.trim_start_matches('0').to_ascii_lowercase();
    if s.is_empty() { "0".into() } else { s }
}

impl WorkloadApi {
    /// The Workload API of the agent with this state dir and configuration.
    pub fn new(
        state: StateDir,
        config: &crate::config::AgentConfig,
        trust: Trust,
        clock: Arc<dyn Clock>,
        settings: WorkloadSettings,
    ) -> Arc<Self> {
        let api = Arc::new(Self {
            tenant: config.tenant.clone(),
            servers: config.servers.clone(),
            state,
            trust,
            clock,
            settings,
            entries: RwLock::new(None),
            svids: RwLock::new(BTreeMap::new()),
            trust_view: RwLock::new(Arc::default()),
            generation: tokio::sync::watch::Sender::new(0),
            jwt_svids: Mutex::new(Default::default()),
            jwt_bundle: RwLock::new(None),
            jwt_generation: tokio::sync::watch::Sender::new(0),
            federated: RwLock::new(Arc::default()),
            jwt_buckets: Mutex::new(Default::default()),
            refreshing: tokio::sync::Mutex::new(()),
            last_on_demand: Mutex::new(None),
            wake: tokio::sync::Notify::new(),
            connections: Mutex::new(Default::default()),
            kubelets: config.kubernetes.iter().map(|k| kubelet::Kubelet::new(k, &config.hostname)).collect(),
        });
        if let Ok(files) = api.state.read_trust() {
            api.set_trust(&files.roots, files.crls.iter().map(|c| c.der.clone()).collect());
        }
        api
    }

    /// The trust bundle or a CRL changed (the agent wrote new files):
    /// streams get the new state, SVIDs whose serial a CRL now lists are
    /// dropped, and assignments are fetched again (a revocation may be an
    /// entry deleted or its service disabled).
    pub fn set_trust(&self, roots: &[Vec<u8>], crls: Vec<Vec<u8>>) {
        let mut revoked = std::collections::HashSet::new();
        for der in &crls {
            if let Ok((_, crl)) = x509_parser::parse_x509_crl(der) {
                revoked.extend(crl.iter_revoked_certificates().map(|r| normal_serial(&hex::encode(r.raw_serial()))));
            }
        }
        let view = TrustView { roots: roots.to_vec(), crls, revoked };
        *self.trust_view.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(view);
        self.generation.send_modify(|g| *g += 1);
        self.wake.notify_one();
    }

    /// The tenant's token keys or its foreign trust domains' bundles
    /// changed: refresh now, which fetches the JWT bundle and the federated
    /// bundles again (streams hear of them when they differ).
    pub fn bundles_changed(&self) {
        self.wake.notify_one();
    }

    fn mtls(&self) -> Result<Servers, AgentError> {
        let identity = ClientIdentity {
            chain_pem: std::fs::read_to_string(self.state.chain())?,
            key_pem: Zeroizing::new(std::fs::read_to_string(self.state.key())?),
        };
        Ok(Servers::new(&self.servers, &self.trust, Some(&identity))?)
    }

    /// Keeps assignments and SVIDs current until the process ends.
    pub async fn maintain(self: Arc<Self>) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let wait = match self.refresh().await {
                Ok(next) => {
                    backoff = Duration::from_secs(1);
                    let secs = u64::try_from(next - self.clock.unix()).unwrap_or(0);
                    Duration::from_secs(secs).min(POLL)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "workload assignments or SVIDs could not be refreshed; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    backoff
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait.min(self.clock.recheck_interval())) => {}
            }
        }
    }

    /// Fetches the assignments and issues, renews or drops SVIDs; returns
    /// when the next SVID is due for renewal (Unix seconds).
    async fn refresh(&self) -> Result<i64, AgentError> {
        let _one = self.refreshing.lock().await;
        let servers = self.mtls()?;
        let tenant = self.tenant.clone();
        let assigned = servers
            .call(|c: Client| {
                let tenant = tenant.clone();
                async move { c.assigned_workloads(&tenant).await }
            })
            .await?;
        let mut entries = Vec::new();
        for a in assigned {
            match parse_selectors(&a.selectors) {
                Ok(selectors) => entries.push(Entry { name: a.name, spiffe_id: a.spiffe_id, selectors }),
                Err(e) => {
                    tracing::warn!(entry = %a.name, error = %e, "workload entry skipped: its selectors do not parse")
                }
            }
        }
        let now = self.clock.unix();
        let revoked = self.trust_view.read().unwrap_or_else(|e| e.into_inner()).revoked.clone();
        let mut changed = false;
        {
            let mut svids = self.svids.write().unwrap_or_else(|e| e.into_inner());
            let before = svids.len();
            svids.retain(|name, s| {
                entries.iter().any(|e| &e.name == name && e.spiffe_id == s.spiffe_id)
                    && !revoked.contains(&s.serial)
                    && s.not_after > now
            });
            changed |= svids.len() != before;
        }
        {
            let mut current = self.entries.write().unwrap_or_else(|e| e.into_inner());
            changed |= current.as_ref() != Some(&entries);
            *current = Some(entries.clone());
        }
        let mut next = now + POLL.as_secs() as i64;
        for entry in &entries {
            let due = self.svids.read().unwrap_or_else(|e| e.into_inner()).get(&entry.name).map(|s| s.renew_at);
            if due.is_some_and(|d| d > now) {
                next = next.min(due.unwrap_or(next));
                continue;
            }
            match self.issue(&servers, entry).await {
                Ok(svid) => {
                    next = next.min(svid.renew_at);
                    tracing::info!(entry = %entry.name, spiffe_id = %svid.spiffe_id, serial = %svid.serial, "X.509-SVID issued");
                    self.svids.write().unwrap_or_else(|e| e.into_inner()).insert(entry.name.clone(), Arc::new(svid));
                    changed = true;
                }
                Err(e) => tracing::warn!(entry = %entry.name, error = %e, "X.509-SVID could not be issued"),
            }
        }
        if changed {
            self.generation.send_modify(|g| *g += 1);
        }
        self.jwt_svids.lock().unwrap_or_else(|e| e.into_inner()).retain(|(name, _), s| {
            entries.iter().any(|e| &e.name == name && e.spiffe_id == s.spiffe_id) && s.expires_at > now
        });
        let known = self.jwt_bundle.read().unwrap_or_else(|e| e.into_inner()).is_some()
            || !self.federated().documents.is_empty();
        if known || !entries.is_empty() {
            // Failing to fetch keeps the bundle held: keys are published a day ahead.
            if let Err(e) = self.fetch_jwt_bundle(&servers).await {
                tracing::warn!(error = %e, "the tenant's JWT bundle could not be fetched");
            }
            // Failing to fetch keeps the bundles held, as for the JWT bundle.
            if let Err(e) = self.fetch_federated(&servers).await {
                tracing::warn!(error = %e, "the foreign trust domains' bundles could not be fetched");
            }
        }
        Ok(next)
    }

    /// Fetches the bundles of the tenant's foreign trust domains; streams
    /// hear of them when they changed. A bundle that does not parse, or
    /// claims the tenant's own trust domain, is left out.
    async fn fetch_federated(&self, servers: &Servers) -> Result<(), AgentError> {
        let tenant = self.tenant.clone();
        let list = servers
            .call(|c: Client| {
                let tenant = tenant.clone();
                async move { c.federated_bundles(&tenant).await }
            })
            .await?;
        let documents: Vec<(String, String)> = list.into_iter().map(|b| (b.trust_domain, b.bundle)).collect();
        if self.federated().documents == documents {
            return Ok(());
        }
        let mut domains = BTreeMap::new();
        for (trust_domain, document) in &documents {
            if trust_domain == &self.tenant {
                continue;
            }
            match lightwell_jose::SpiffeBundle::parse(document.as_bytes()) {
                Ok(b) => {
                    let foreign = Foreign { x509: b.x509_der(), jwt_json: b.jwt_json(), jwt_keys: b.jwt_authorities };
                    domains.insert(trust_domain.clone(), foreign);
                }
                Err(e) => tracing::warn!(%trust_domain, error = %e, "a foreign trust domain's bundle is left out"),
            }
        }
        *self.federated.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Federated { documents, domains });
        self.generation.send_modify(|g| *g += 1);
        self.jwt_generation.send_modify(|g| *g += 1);
        Ok(())
    }

    fn federated(&self) -> Arc<Federated> {
        self.federated.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Fetches the tenant's JWK Set; streams hear of it when it changed.
    async fn fetch_jwt_bundle(&self, servers: &Servers) -> Result<Arc<JwtBundle>, AgentError> {
        let tenant = self.tenant.clone();
        let value = servers
            .call(|c: Client| {
                let tenant = tenant.clone();
                async move { c.token_jwks(&tenant).await }
            })
            .await?;
        let json = serde_json::to_vec(&value).map_err(|e| AgentError::Other(format!("JWK Set: {e}")))?;
        let keys = lightwell_jose::Jwks::parse(&json)
            .map_err(|e| AgentError::Other(format!("the server's JWK Set does not parse: {e}")))?;
        let mut held = self.jwt_bundle.write().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = held.as_ref()
            && b.json == json
        {
            return Ok(b.clone());
        }
        let bundle = Arc::new(JwtBundle { json, keys });
        *held = Some(bundle.clone());
        drop(held);
        self.jwt_generation.send_modify(|g| *g += 1);
        Ok(bundle)
    }

    /// The tenant's JWT bundle, fetched now if the agent holds none yet.
    async fn jwt_bundle(&self) -> Result<Arc<JwtBundle>, AgentError> {
        if let Some(b) = self.jwt_bundle.read().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(b);
        }
        self.fetch_jwt_bundle(&self.mtls()?).await
    }

    /// A JWT-SVID of `entry` for `audience` (sorted, deduplicated): the
    /// one held while it has more than half its life left, else a new one.
    /// A new one costs the asking `uid` one of its [`JWT_BURST`] places.
    async fn jwt_svid(&self, entry: &Entry, audience: &[String], uid: u32) -> Result<JwtSvid, JwtSvidError> {
        let key = (entry.name.clone(), audience.to_vec());
        let now = self.clock.unix();
        if let Some(s) = self.jwt_svids.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && s.spiffe_id == entry.spiffe_id
            && s.renew_at > now
        {
            return Ok(s.clone());
        }
        if !self.jwt_allowance(uid) {
            return Err(JwtSvidError::Throttled);
        }
        let servers = self.mtls()?;
        let req = lightwell_proto::JwtSvidRequest { audience: audience.to_vec(), ttl: None };
        let (tenant, name) = (self.tenant.clone(), entry.name.clone());
        let info = servers
            .call(|c: Client| {
                let (tenant, name, req) = (tenant.clone(), name.clone(), req.clone());
                async move { c.issue_jwt_svid(&tenant, &name, &req).await }
            })
            .await
            .map_err(AgentError::from)?;
        let svid = JwtSvid {
            spiffe_id: info.spiffe_id,
            token: info.token,
            expires_at: info.expires_at,
            renew_at: now + (info.expires_at - now) / 2,
        };
        let mut cache = self.jwt_svids.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_JWT_CACHE {
            cache.retain(|_, s| s.renew_at > now);
            while cache.len() >= MAX_JWT_CACHE {
                let Some(soonest) = cache.iter().min_by_key(|(_, s)| s.renew_at).map(|(k, _)| k.clone()) else { break };
                cache.remove(&soonest);
            }
        }
        cache.insert(key, svid.clone());
        Ok(svid)
    }

    /// Takes one place of `uid`'s JWT-SVID bucket: [`JWT_BURST`] at once,
    /// refilled at [`JWT_PER_SEC`]. Each new token is a server write and an
    /// audit record, so one local user cannot make them without bound.
    fn jwt_allowance(&self, uid: u32) -> bool {
        let now = Instant::now();
        let mut buckets = self.jwt_buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 4096 {
            // Full buckets carry nothing: forget them.
            buckets.retain(|_, (places, at)| *places + at.elapsed().as_secs_f64() * JWT_PER_SEC < JWT_BURST);
        }
        let (places, at) = buckets.entry(uid).or_insert((JWT_BURST, now));
        *places = (*places + now.duration_since(*at).as_secs_f64() * JWT_PER_SEC).min(JWT_BURST);
        *at = now;
        if *places < 1.0 {
            return false;
        }
        *places -= 1.0;
        true
    }

    async fn issue(&self, servers: &Servers, entry: &Entry) -> Result<Svid, AgentError> {
        use base64::Engine as _;
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256)?;
        let csr = lightwell_ca::csr::create(&key, "")?;
        let req = SvidRequest { csr: base64::engine::general_purpose::STANDARD.encode(csr) };
        let (tenant, name) = (self.tenant.clone(), entry.name.clone());
        let info = servers
            .call(|c: Client| {
                let (tenant, name, req) = (tenant.clone(), name.clone(), req.clone());
                async move { c.issue_svid(&tenant, &name, &req).await }
            })
            .await?;
        let chain: Vec<Vec<u8>> = x509_parser::pem::Pem::iter_from_buffer(info.chain_pem.as_bytes())
            .filter_map(Result::ok)
            .filter(|p| p.label == "CERTIFICATE")
            .map(|p| p.contents)
            .collect();
        let (_, not_after) = crate::enroll::validity(&info.pem)
            .ok_or_else(|| AgentError::Other("the server's SVID does not parse".into()))?;
        let now = self.clock.unix();
        Ok(Svid {
            spiffe_id: entry.spiffe_id.clone(),
            chain,
            key: key.to_pkcs8_der(),
            serial: normal_serial(&info.serial),
            not_after,
            renew_at: now + (not_after - now) / 2,
        })
    }

    /// The entries `process` matches, asking the server again (at most every
    /// [`ON_DEMAND`]) when it matches none: an entry may have just been
    /// created. The kubelet is asked about the process's pod when an entry
    /// (known before or fetched now) needs it.
    async fn matching(&self, process: &mut attest::Process) -> Vec<Entry> {
        self.describe_pod(process).await;
        let find = |process: &attest::Process| -> Option<Vec<Entry>> {
            let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
            let found: Vec<Entry> =
                entries.as_ref()?.iter().filter(|e| process.matches(&e.selectors)).cloned().collect();
            (!found.is_empty()).then_some(found)
        };
        if let Some(found) = find(process) {
            return found;
        }
        let allowed = {
            let mut last = self.last_on_demand.lock().unwrap_or_else(|e| e.into_inner());
            let allowed = last.is_none_or(|at| at.elapsed() >= ON_DEMAND);
            if allowed {
                *last = Some(Instant::now());
            }
            allowed
        };
        if allowed && let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "workload assignments could not be fetched");
        }
        self.describe_pod(process).await;
        find(process).unwrap_or_default()
    }

    /// Fills in what the kubelet says about the process's pod, if it has a
    /// pod UID, an assigned entry selects by namespace, service account or
    /// pod label, and that was not asked yet.
    async fn describe_pod(&self, process: &mut attest::Process) {
        let Some(uid) = process.pod_uid.as_deref() else { return };
        if process.pod.is_some() || !self.needs_kubelet() {
            return;
        }
        for kubelet in &self.kubelets {
            if let Some(pod) = kubelet.pod(uid).await {
                process.pod = Some(pod);
                return;
            }
        }
    }

    /// Whether any assigned entry selects by what only the kubelet knows.
    fn needs_kubelet(&self) -> bool {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.iter().flatten().flat_map(|e| &e.selectors).any(|s| s.kind().from_kubelet())
    }

    /// Whether any assigned entry selects by executable hash (which costs a read of the binary).
    fn needs_sha256(&self) -> bool {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.iter().flatten().flat_map(|e| &e.selectors).any(|s| s.kind() == lightwell_proto::SelectorKind::Sha256)
    }

    fn svids_for(&self, entries: &[Entry]) -> Vec<(String, Arc<Svid>)> {
        let svids = self.svids.read().unwrap_or_else(|e| e.into_inner());
        entries.iter().filter_map(|e| Some((e.name.clone(), svids.get(&e.name)?.clone()))).collect()
    }

    fn trust(&self) -> Arc<TrustView> {
        self.trust_view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Counts a connection of `uid`; `None` when it holds as many as allowed.
    fn admit(self: &Arc<Self>, uid: u32) -> Option<ConnectionGuard> {
        let mut open = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(uid).or_default();
        if *n >= self.settings.connections_per_uid {
            return None;
        }
        *n += 1;
        Some(ConnectionGuard { api: self.clone(), uid })
    }
}

/// Holds a counted connection; dropping it releases the count.
#[derive(Debug)]
struct ConnectionGuard {
    api: Arc<WorkloadApi>,
    uid: u32,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut open = self.api.connections.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.uid);
            }
        }
    }
}
