//! Running the server: listeners, accept loops, background jobs, shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use lightwell_core::clock::{Clock, SystemClock};
use lightwell_core::{Observer, Service, ServiceConfig};
use lightwell_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::api::{self, AppState};
use crate::config::Settings;
use crate::datadir;
use crate::http_conn::{self, ConnectionCaps, HttpLimits, Peer};
use crate::metrics::Metrics;
use crate::tls::{self, PeerCertificates};
use crate::watch::WatchHub;

const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs the server until SIGTERM or SIGINT.
pub(crate) async fn run(settings: Settings) -> anyhow::Result<()> {
    // Handle SIGTERM from the start, so a stop sent right after start-up is graceful too.
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let dir = &settings.data_dir;
    if settings.dev && !datadir::is_initialized(dir) {
        let init = datadir::initialize(dir, &settings.database, &[]).await?;
        println!("initialized {} (server CA fingerprint {})", dir.display(), init.fingerprint);
    }
    if !datadir::is_initialized(dir) {
        bail!("{} is not initialized; run `lightwelld init --data-dir {}` first", dir.display(), dir.display());
    }
    let kek = datadir::load_kek(&settings.kek_file)?;
    let store: Arc<dyn Store> = settings.database.open_async().await?;
    let clock: Arc<dyn Clock> = match &settings.clock_offset_file {
        Some(path) => Arc::new(crate::clock::FileOffsetClock::new(path.clone())),
        None => Arc::new(SystemClock),
    };
    let tls_config = tls::server_config(&dir.join(datadir::SERVER_CERT_FILE), &dir.join(datadir::SERVER_KEY_FILE))?;
    // Bound before the service is built: the PKI listener's address is the
    // default base of the URLs the service puts into certificates. Nothing
    // is accepted (or printed) before the checks below pass.
    let api_listener =
        TcpListener::bind(settings.listen_api).await.with_context(|| format!("binding {}", settings.listen_api))?;
    let pki_listener =
        TcpListener::bind(settings.listen_pki).await.with_context(|| format!("binding {}", settings.listen_pki))?;
    let ldaps_listener =
        TcpListener::bind(settings.listen_ldaps).await.with_context(|| format!("binding {}", settings.listen_ldaps))?;
    let ldap_listener =
        TcpListener::bind(settings.listen_ldap).await.with_context(|| format!("binding {}", settings.listen_ldap))?;
    let pki_addr = pki_listener.local_addr()?;
    let public_pki_url = settings.public_pki_url.clone().unwrap_or_else(|| base_url("http", pki_addr));
    let api_addr = api_listener.local_addr()?;
    let public_api_url = settings.public_api_url.clone().unwrap_or_else(|| base_url("https", api_addr));
    let checkpoint_sink: Option<Arc<dyn lightwell_core::CheckpointSink>> = match &settings.audit_checkpoint_file {
        Some(path) => Some(Arc::new(crate::checkpoint_file::CheckpointFile::open(path)?)),
        None => None,
    };
    let defaults = ServiceConfig::default();
    let config = ServiceConfig {
        public_pki_url: public_pki_url.clone(),
        public_api_url: public_api_url.clone(),
        crl_sync_limit: settings.crl_sync_limit,
        login_throttle: settings.login_throttle,
        password_hashing_concurrency: settings
            .password_hashing_concurrency
            .unwrap_or(defaults.password_hashing_concurrency),
        checkpoint_sink,
        trust_change_window: settings.trust_change_window,
        trust_change_max_bytes: settings.trust_change_max_bytes,
        ..defaults
    };
    let metrics = Metrics::new();
    let observer: Arc<dyn Observer> = metrics.clone();
    let service = Service::new(store, clock, &kek, observer, config)?;
    drop(kek);
    // A data dir initialized against one database does not make another one
    // initialized: the operator `init` printed would not exist there.
    if !service.is_initialized().await? {
        bail!(
            "the database {} was never initialized (it has no operator); run `lightwelld init --data-dir {} --database URL` against it, or `lightwelld migrate` to move an initialized store there",
            settings.database,
            dir.display()
        );
    }
    // Before anything is written: a wrong KEK would otherwise start a server
    // that fails every audited change and every CA key unsealing.
    service.check_kek().await.with_context(|| format!("{}", settings.kek_file.display()))?;
    let lockout = lightwell_core::policy::LockoutPolicy::default();
    let throttle = settings.login_throttle;
    if throttle.max_failures == 0
        || i64::from(throttle.max_failures) >= lockout.max_failures
        || throttle.window_secs < lockout.window_secs
    {
        tracing::warn!(
            login_throttle_failures = throttle.max_failures,
            login_throttle_window_secs = throttle.window_secs,
            lockout_failures = lockout.max_failures,
            lockout_window_secs = lockout.window_secs,
            "the login throttle no longer stops one address from locking an account (it needs fewer failures than the lockout, over at least its window)"
        );
    }
    seal_audit_heads(&service).await?;

    let watch_hub = WatchHub::new(service.clone(), Duration::from_millis(100));
    let app = api::router(
        AppState { service: service.clone(), metrics: metrics.clone(), watch: watch_hub.clone() },
        settings.max_body_bytes,
        settings.request_timeout,
    );
    let pki = api::pki_router(service.clone());

    println!("api: https://{}", api_listener.local_addr()?);
    println!("pki: http://{}", pki_listener.local_addr()?);
    println!("public pki url: {public_pki_url}");
    println!("public api url: {public_api_url}");
    println!("server CA: {}", dir.join(datadir::SERVER_CA_FILE).display());
    println!("server CA fingerprint: {}", datadir::server_ca_fingerprint(dir)?);
    if settings.dev {
        let pw = std::fs::read_to_string(dir.join(datadir::OPERATOR_PASSWORD_FILE)).unwrap_or_default();
        println!("operator password: {} (user operator; also in {})", pw.trim(), datadir::OPERATOR_PASSWORD_FILE);
    }
    // Last, so scripts that read the lines above by position keep working.
    println!("ldaps: ldaps://{}", ldaps_listener.local_addr()?);
    println!("ldap: ldap://{}", ldap_listener.local_addr()?);
    tracing::info!(store = service.store_backend(), "lightwelld ready");

    let (stop_tx, stop_rx) = watch::channel(false);
    let api = Listener {
        tls: Some(TlsAcceptor::from(tls_config.clone())),
        app,
        limits: settings.http,
        metrics: metrics.clone(),
    };
    let api_task = tokio::spawn(accept_loop(api_listener, api, stop_rx.clone()));
    let pki = Listener { tls: None, app: pki, limits: settings.http, metrics };
    let pki_task = tokio::spawn(accept_loop(pki_listener, pki, stop_rx.clone()));
    let ldap_tasks = crate::ldap::spawn(
        [ldaps_listener, ldap_listener],
        settings.ldap_allow_plaintext_bind,
        &tls_config,
        &service,
        &stop_rx,
    );
    tokio::spawn(purge_sessions(service.clone(), stop_rx.clone()));
    tokio::spawn(watch_hub.run(stop_rx.clone()));
    tokio::spawn(service.clone().run_crl_signer(stop_rx.clone()));
    tokio::spawn(crate::federation::run(service.clone(), settings.federation_allow_loopback, stop_rx.clone()));
    tokio::spawn(audit_checkpoints(service.clone(), settings.audit_checkpoint_interval, stop_rx.clone()));
    tokio::spawn(ca_maintenance(service.clone(), settings.ca_maintenance_interval, stop_rx));

    tokio::select! {
        _ = sigterm.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = tokio::join!(api_task, pki_task, ldap_tasks);
    Ok(())
}

/// What an HTTP listener serves and under which limits.
#[derive(Clone)]
struct Listener {
    /// TLS (the API) or plain HTTP (PKI).
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("tls", &self.tls.is_some())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Accepts connections until told to stop, then lets open requests finish
/// (at most [`SHUTDOWN_GRACE`]). Connections over a cap are closed at once.
async fn accept_loop(listener: TcpListener, config: Listener, mut stop: watch::Receiver<bool>) {
    let caps = ConnectionCaps::new(&config.limits);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(admitted) = caps.admit(peer.ip()) else {
                        tracing::debug!(peer = %peer.ip(), "HTTP connection cap reached; closing a connection");
                        config.metrics.connection_refused();
                        continue;
                    };
                    let (config, stop) = (config.clone(), stop.clone());
                    tokio::spawn(async move {
                        serve_connection(stream, peer, config, stop).await;
                        drop(admitted);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    if !caps.drained(SHUTDOWN_GRACE).await {
        tracing::warn!("connections still open after the grace period; closing them");
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    addr: std::net::SocketAddr,
    config: Listener,
    stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let Listener { tls, app, limits, .. } = config;
    let Some(acceptor) = tls else {
        let peer = Peer { addr, certificates: None, h2: false };
        return http_conn::serve(stream, peer, app, limits, stop).await;
    };
    let tls_stream = match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let session = tls_stream.get_ref().1;
    let certs: Vec<_> =
        session.peer_certificates().map(|c| c.iter().map(|c| c.clone().into_owned()).collect()).unwrap_or_default();
    let h2 = session.alpn_protocol() == Some(b"h2");
    let peer = Peer { addr, certificates: Some(PeerCertificates(Arc::new(certs))), h2 };
    http_conn::serve(tls_stream, peer, app, limits, stop).await;
}

/// Deletes expired sessions every ten minutes.
async fn purge_sessions(service: Service, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(600)) => {
                if let Err(e) = service.purge_expired_sessions().await {
                    tracing::warn!(error = %e, "purging expired sessions");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// The URL of a listener bound at `addr` (`localhost` for a wildcard address).
fn base_url(scheme: &str, addr: std::net::SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() { "localhost".to_string() } else { addr.ip().to_string() };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    format!("{scheme}://{host}:{}", addr.port())
}

/// The CA job (hourly by default): activates root rotations whose overlap
/// elapsed, retires roots whose certificates all expired, and re-signs every
/// CRL so CRLs stay fresh without revocations.
async fn ca_maintenance(service: Service, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {
                match service.ca_maintenance().await {
                    Ok(r) => tracing::info!(
                        crls = r.crls, rotations_activated = r.activated, roots_retired = r.retired, "CA maintenance done"
                    ),
                    Err(e) => tracing::warn!(error = %e, "CA maintenance"),
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Seals audit chain heads written before heads carried a MAC (once, after
/// an upgrade; each sealing is recorded in the system chain). A chain that
/// does not verify stays unsealed, so verify keeps reporting it and appends
/// to it are refused.
async fn seal_audit_heads(service: &Service) -> anyhow::Result<()> {
    let report = service.seal_audit_heads().await.context("sealing audit chain heads")?;
    if report.sealed > 0 {
        tracing::warn!(sealed = report.sealed, "sealed audit chain heads that carried no MAC");
    }
    for (chain, reason) in &report.refused {
        tracing::error!(chain, reason, "audit chain head left unsealed: its chain does not verify");
    }
    Ok(())
}

/// The audit checkpoint job (every five minutes by default): records each
/// tenant chain's head in the system chain and the checkpoint file.
async fn audit_checkpoints(service: Service, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {
                match service.checkpoint_audit().await {
                    Ok(r) => {
                        tracing::debug!(checkpointed = r.checkpointed, "audit checkpoint done");
                        for (chain, reason) in &r.refused {
                            tracing::error!(chain, reason, "audit chain not checkpointed: its head does not verify");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "audit checkpoint"),
                }
            }
            _ = stop.changed() => return,
        }
    }
}
