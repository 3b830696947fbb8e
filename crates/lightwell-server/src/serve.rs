//! Running the server: listeners, accept loops, background jobs, shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use lightwell_core::clock::{Clock, SystemClock};
use lightwell_core::{Observer, Service};
use lightwell_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::api::{self, AppState};
use crate::config::ServeArgs;
use crate::datadir;
use crate::metrics::Metrics;
use crate::tls::{self, PeerCertificates};
use crate::watch::WatchHub;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs the server until SIGTERM or SIGINT.
pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.resolve()?;
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
    let metrics = Metrics::new();
    let observer: Arc<dyn Observer> = metrics.clone();
    let service = Service::new(store, clock, &kek, observer)?;
    drop(kek);
    service.set_crl_sync_limit(settings.crl_sync_limit);
    seal_audit_heads(&service).await?;
    if let Some(path) = &settings.audit_checkpoint_file {
        service.set_checkpoint_sink(Arc::new(crate::checkpoint_file::CheckpointFile::open(path)?));
    }

    let tls_config = tls::server_config(&dir.join(datadir::SERVER_CERT_FILE), &dir.join(datadir::SERVER_KEY_FILE))?;
    let api_listener =
        TcpListener::bind(settings.listen_api).await.with_context(|| format!("binding {}", settings.listen_api))?;
    let pki_listener =
        TcpListener::bind(settings.listen_pki).await.with_context(|| format!("binding {}", settings.listen_pki))?;
    let ldaps_listener =
        TcpListener::bind(settings.listen_ldaps).await.with_context(|| format!("binding {}", settings.listen_ldaps))?;
    let ldap_listener =
        TcpListener::bind(settings.listen_ldap).await.with_context(|| format!("binding {}", settings.listen_ldap))?;
    let watch_hub = WatchHub::new(service.clone(), Duration::from_millis(100));
    let app = api::router(
        AppState { service: service.clone(), metrics, watch: watch_hub.clone() },
        settings.max_body_bytes,
        settings.request_timeout,
    );
    let pki_addr = pki_listener.local_addr()?;
    let public_pki_url = settings.public_pki_url.clone().unwrap_or_else(|| {
        let host = if pki_addr.ip().is_unspecified() { "localhost".to_string() } else { pki_addr.ip().to_string() };
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        format!("http://{host}:{}", pki_addr.port())
    });
    service.set_public_pki_url(&public_pki_url);
    let pki = api::pki_router(service.clone());

    println!("api: https://{}", api_listener.local_addr()?);
    println!("pki: http://{}", pki_listener.local_addr()?);
    println!("public pki url: {public_pki_url}");
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
    let api_task =
        tokio::spawn(accept_loop(api_listener, Some(TlsAcceptor::from(tls_config.clone())), app, stop_rx.clone()));
    let pki_task = tokio::spawn(accept_loop(pki_listener, None, pki, stop_rx.clone()));
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

/// Accepts connections until told to stop, then lets open requests finish.
async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, app: Router, mut stop: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    tokio::spawn(serve_connection(stream, tls.clone(), app.clone(), graceful.watcher()));
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
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the grace period; closing them");
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, tls: Option<TlsAcceptor>, app: Router, watcher: Watcher) {
    let _ = stream.set_nodelay(true);
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    match tls {
        Some(acceptor) => {
            let tls_stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let certs: Vec<_> = tls_stream
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default();
            let peer = PeerCertificates(Arc::new(certs));
            let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(peer.clone());
                app.clone().oneshot(req)
            });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
            let _ = watcher.watch(conn.into_owned()).await;
        }
        None => {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| app.clone().oneshot(req));
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let _ = watcher.watch(conn.into_owned()).await;
        }
    }
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
