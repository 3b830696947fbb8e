//! The Workload API's gRPC front end on a Unix socket: translates between
//! the SPIFFE messages and [`WorkloadApi`]; attestation and identities are
//! decided there and in the server, not here.

use std::collections::HashMap;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status};

use super::attest::{self, Process};
use super::authority::AuthorityRewriter;
use super::{ConnectionGuard, JwtSvidError, WorkloadApi};
use crate::error::AgentError;

/// The generated messages and server of `proto/workload.proto`.
#[allow(missing_docs, unreachable_pub, missing_debug_implementations, unused_qualifications, clippy::all)]
mod pb {
    tonic::include_proto!("_");
}

use pb::spiffe_workload_api_server::{SpiffeWorkloadApi, SpiffeWorkloadApiServer};

/// Each answer carries a copy of the workload's private key: wiped when the
/// message goes (once tonic encoded it, or when a stream drops it). The
/// encoded frame in tonic's buffer is not this crate's to wipe.
impl Drop for pb::X509svid {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.x509_svid_key);
    }
}

/// Largest request accepted: every Workload API request is a few bytes.
const MAX_REQUEST: usize = 64 * 1024;
/// Clock skew tolerated when validating a JWT-SVID's `exp` and `nbf`.
const LEEWAY: i64 = 30;
/// Concurrent streams on one connection.
const STREAMS_PER_CONNECTION: u32 = 16;

/// A connection with what the kernel said about its peer when it was accepted.
struct PeerStream {
    inner: UnixStream,
    info: PeerInfo,
    rewriter: AuthorityRewriter,
    /// Rewritten bytes not yet read by h2.
    out: Vec<u8>,
}

/// The peer of a connection: its credentials and when it was accepted
/// (seconds since boot), for attestation to tell a reused pid.
#[derive(Debug, Clone)]
struct PeerInfo {
    pid: Option<i32>,
    uid: u32,
    gid: u32,
    accepted_uptime: f64,
    /// A pidfd of the process that connected (`SO_PEERPIDFD`), if the kernel gives one.
    pidfd: Option<Arc<std::os::fd::OwnedFd>>,
    _guard: Arc<ConnectionGuard>,
}

impl Connected for PeerStream {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl AsyncRead for PeerStream {
    /// Reads through the [`AuthorityRewriter`].
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.out.is_empty() {
                let n = buf.remaining().min(this.out.len());
                buf.put_slice(&this.out[..n]);
                this.out.drain(..n);
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                this.out = this.rewriter.finish();
                if this.out.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            this.out = this.rewriter.feed(read.filled());
        }
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Binds the socket: mode 0666 in a 0755 directory, since identity comes
/// from attestation, not from who may open the file (as SPIRE's agent). A
/// leftover socket nobody answers on is replaced; one another agent
/// serves is not.
fn bind(path: &Path) -> Result<UnixListener, AgentError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(AgentError::Other(format!("{} is served by another process", path.display())));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

/// Serves the Workload API on its socket until the process ends.
pub async fn serve(api: Arc<WorkloadApi>) -> Result<(), AgentError> {
    let listener = bind(&api.settings.socket)?;
    tracing::info!(socket = %api.settings.socket.display(), "SPIFFE Workload API listening");
    let (tx, rx) = mpsc::channel::<std::io::Result<PeerStream>>(64);
    let accepting = api.clone();
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of descriptors, typically: wait rather than spin.
                    tracing::warn!(error = %e, "Workload API accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(cred) = stream.peer_cred() else { continue };
            let Some(guard) = accepting.admit(cred.uid()) else {
                tracing::warn!(uid = cred.uid(), "Workload API connection refused: too many from this uid");
                continue;
            };
            let info = PeerInfo {
                pid: cred.pid(),
                uid: cred.uid(),
                gid: cred.gid(),
                // Unknown: every process looks started after it, so attestation fails closed.
                accepted_uptime: attest::uptime(Path::new("/proc")).unwrap_or(0.0),
                // Linux 6.5 and later; older kernels keep the start-time check alone.
                pidfd: nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerPidfd).ok().map(Arc::new),
                _guard: Arc::new(guard),
            };
            let peer = PeerStream { inner: stream, info, rewriter: AuthorityRewriter::default(), out: Vec::new() };
            if tx.send(Ok(peer)).await.is_err() {
                return;
            }
        }
    });
    let service = SpiffeWorkloadApiServer::new(Handler { api }).max_decoding_message_size(MAX_REQUEST);
    tonic::transport::Server::builder()
        .max_concurrent_streams(Some(STREAMS_PER_CONNECTION))
        .add_service(service)
        .serve_with_incoming(ReceiverStream::new(rx))
        .await
        .map_err(|e| AgentError::Other(format!("Workload API: {e}")))
}

#[derive(Debug)]
struct Handler {
    api: Arc<WorkloadApi>,
}

/// Refuses a request without the `workload.spiffe.io: true` header, which
/// the specification requires so that a browser or proxy cannot be made to
/// call the socket on someone's behalf.
fn check_header<T>(req: &Request<T>) -> Result<(), Status> {
    match req.metadata().get("workload.spiffe.io").and_then(|v| v.to_str().ok()) {
        Some("true") => Ok(()),
        _ => Err(Status::invalid_argument("security header missing from request")),
    }
}

impl Handler {
    async fn attest<T>(&self, req: &Request<T>) -> Result<Process, Status> {
        let peer =
            req.extensions().get::<PeerInfo>().cloned().ok_or_else(|| Status::internal("no peer information"))?;
        let with_sha256 = self.api.needs_sha256();
        let pid = peer.pid.ok_or_else(|| Status::permission_denied("the kernel gave no pid for the caller"))?;
        let attested = tokio::task::spawn_blocking(move || {
            let pidfd = peer.pidfd.as_deref();
            attest::attest(Path::new("/proc"), pid, peer.uid, peer.gid, peer.accepted_uptime, pidfd, with_sha256)
        })
        .await
        .map_err(|_| Status::internal("attestation failed"))?;
        attested.map_err(|e| {
            tracing::warn!(pid, error = %e, "workload attestation failed");
            Status::permission_denied(e.to_string())
        })
    }

    /// The X.509-SVID answer for `process` now, or why it gets none.
    fn x509_response(&self, entries: &[super::Entry]) -> Result<pb::X509svidResponse, Status> {
        if entries.is_empty() {
            return Err(Status::permission_denied("no identity issued"));
        }
        let trust = self.api.trust();
        let bundle: Vec<u8> = trust.roots.concat();
        let svids: Vec<pb::X509svid> = self
            .api
            .svids_for(entries)
            .into_iter()
            .map(|(name, s)| pb::X509svid {
                spiffe_id: s.spiffe_id.clone(),
                x509_svid: s.chain.concat(),
                x509_svid_key: s.key.to_vec(),
                bundle: bundle.clone(),
                hint: name,
            })
            .collect();
        if svids.is_empty() {
            return Err(Status::unavailable("the identity is being issued; retry shortly"));
        }
        let federated_bundles = self
            .api
            .federated()
            .domains
            .iter()
            .filter(|(_, f)| !f.x509.is_empty())
            .map(|(td, f)| (td.clone(), f.x509.clone()))
            .collect();
        Ok(pb::X509svidResponse { svids, crl: trust.crls.clone(), federated_bundles })
    }

    /// The tenant's JWT bundle, fetched if the agent holds none yet.
    async fn jwt_bundle(&self) -> Result<Arc<super::JwtBundle>, Status> {
        self.api.jwt_bundle().await.map_err(|e| {
            tracing::warn!(error = %e, "the tenant's JWT bundle could not be fetched");
            Status::unavailable("the JWT bundle is not available")
        })
    }

    /// The tenant's JWT bundle and every foreign trust domain's that has JWT authorities.
    fn jwt_bundles_response(&self, bundle: &super::JwtBundle) -> pb::JwtBundlesResponse {
        let mut bundles = HashMap::from([(self.api.tenant.clone(), bundle.json.clone())]);
        for (td, f) in &self.api.federated().domains {
            if !f.jwt_keys.keys.is_empty() {
                bundles.insert(td.clone(), f.jwt_json.clone());
            }
        }
        pb::JwtBundlesResponse { bundles }
    }

    /// The tenant's X.509 bundle and every foreign trust domain's that has X.509 authorities.
    fn bundles_response(&self) -> pb::X509BundlesResponse {
        let trust = self.api.trust();
        let mut bundles = HashMap::from([(self.api.tenant.clone(), trust.roots.concat())]);
        for (td, f) in &self.api.federated().domains {
            if !f.x509.is_empty() {
                bundles.insert(td.clone(), f.x509.clone());
            }
        }
        pb::X509BundlesResponse { crl: trust.crls.clone(), bundles }
    }
}

/// A JSON value as a protobuf `Value`, for the claims `ValidateJWTSVID` returns.
fn prost_value(v: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    use serde_json::Value;
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue { values: a.into_iter().map(prost_value).collect() }),
        Value::Object(o) => {
            Kind::StructValue(prost_types::Struct { fields: o.into_iter().map(|(k, v)| (k, prost_value(v))).collect() })
        }
    };
    prost_types::Value { kind: Some(kind) }
}

type Stream<T> = ReceiverStream<Result<T, Status>>;

/// Streams `answer()` now and after every change, until the client goes
/// away or the answer becomes an error (sent, then the stream ends).
fn stream<T: Send + 'static>(
    mut changes: tokio::sync::watch::Receiver<u64>,
    first: T,
    mut answer: impl FnMut() -> Result<T, Status> + Send + 'static,
) -> Stream<T> {
    let (tx, rx) = mpsc::channel(2);
    changes.borrow_and_update();
    tokio::spawn(async move {
        if tx.send(Ok(first)).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                changed = changes.changed() => if changed.is_err() { return },
            }
            let next = answer();
            let end = next.is_err();
            if tx.send(next).await.is_err() || end {
                return;
            }
        }
    });
    ReceiverStream::new(rx)
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for Handler {
    type FetchX509SVIDStream = Stream<pb::X509svidResponse>;
    type FetchX509BundlesStream = Stream<pb::X509BundlesResponse>;
    type FetchJWTBundlesStream = Stream<pb::JwtBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        req: Request<pb::X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        check_header(&req)?;
        let mut process = self.attest(&req).await?;
        let entries = self.api.matching(&mut process).await;
        let first = self.x509_response(&entries)?;
        tracing::info!(pid = process.pid, uid = process.uid, svids = first.svids.len(), "X.509-SVIDs served");
        let handler = Handler { api: self.api.clone() };
        let answer = move || {
            // The entries may have changed: match again (without asking the server).
            let entries = handler.api.entries.read().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default();
            let mine: Vec<super::Entry> = entries.into_iter().filter(|e| process.matches(&e.selectors)).collect();
            handler.x509_response(&mine)
        };
        Ok(Response::new(stream(self.api.generation.subscribe(), first, answer)))
    }

    async fn fetch_x509_bundles(
        &self,
        req: Request<pb::X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        check_header(&req)?;
        let handler = Handler { api: self.api.clone() };
        let first = handler.bundles_response();
        Ok(Response::new(stream(self.api.generation.subscribe(), first, move || Ok(handler.bundles_response()))))
    }

    async fn fetch_jwtsvid(&self, req: Request<pb::JwtsvidRequest>) -> Result<Response<pb::JwtsvidResponse>, Status> {
        check_header(&req)?;
        let audience = lightwell_proto::jwt_audiences(&req.get_ref().audience).map_err(Status::invalid_argument)?;
        let mut process = self.attest(&req).await?;
        let wanted = &req.get_ref().spiffe_id;
        let entries: Vec<super::Entry> = self
            .api
            .matching(&mut process)
            .await
            .into_iter()
            .filter(|e| wanted.is_empty() || &e.spiffe_id == wanted)
            .collect();
        if entries.is_empty() {
            return Err(Status::permission_denied("no identity issued"));
        }
        let mut svids = Vec::with_capacity(entries.len());
        for entry in &entries {
            match self.api.jwt_svid(entry, &audience, process.uid).await {
                Ok(s) => svids.push(pb::Jwtsvid { spiffe_id: s.spiffe_id, svid: s.token, hint: entry.name.clone() }),
                Err(JwtSvidError::Throttled) => {
                    tracing::warn!(uid = process.uid, "JWT-SVID refused: too many new tokens asked for by this uid");
                    return Err(Status::resource_exhausted("too many new JWT-SVIDs asked for; retry in a few seconds"));
                }
                Err(JwtSvidError::Agent(e)) => {
                    tracing::warn!(entry = %entry.name, error = %e, "JWT-SVID could not be issued")
                }
            }
        }
        if svids.is_empty() {
            return Err(Status::unavailable("the JWT-SVID could not be issued; retry shortly"));
        }
        tracing::info!(pid = process.pid, uid = process.uid, svids = svids.len(), "JWT-SVIDs served");
        Ok(Response::new(pb::JwtsvidResponse { svids }))
    }

    async fn fetch_jwt_bundles(
        &self,
        req: Request<pb::JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        check_header(&req)?;
        let handler = Handler { api: self.api.clone() };
        let bundle = handler.jwt_bundle().await?;
        let first = handler.jwt_bundles_response(&bundle);
        let changes = self.api.jwt_generation.subscribe();
        let answer = move || {
            // Once held, the bundle is only ever replaced.
            let held = handler.api.jwt_bundle.read().unwrap_or_else(|e| e.into_inner()).clone();
            let bundle = held.ok_or_else(|| Status::unavailable("the JWT bundle is not available"))?;
            Ok(handler.jwt_bundles_response(&bundle))
        };
        Ok(Response::new(stream(changes, first, answer)))
    }

    async fn validate_jwtsvid(
        &self,
        req: Request<pb::ValidateJwtsvidRequest>,
    ) -> Result<Response<pb::ValidateJwtsvidResponse>, Status> {
        check_header(&req)?;
        let pb::ValidateJwtsvidRequest { audience, svid } = req.into_inner();
        if audience.is_empty() {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        if svid.is_empty() {
            return Err(Status::invalid_argument("svid must be specified"));
        }
        let invalid = |e: lightwell_jose::Error| Status::invalid_argument(format!("invalid JWT-SVID: {e}"));
        // The subject names the trust domain whose keys must have signed it;
        // read unverified only to choose them, and checked once verified.
        let claimed = lightwell_jose::jwt::unverified_subject(&svid).map_err(invalid)?;
        let trust_domain = claimed
            .parse::<lightwell_ca::SpiffeId>()
            .map(|id| id.trust_domain().to_string())
            .map_err(|_| Status::invalid_argument("invalid JWT-SVID: its subject is not a SPIFFE ID"))?;
        let validation = lightwell_jose::Validation { audience: &audience, now: self.api.clock.unix(), leeway: LEEWAY };
        let verified = if trust_domain == self.api.tenant {
            let bundle = self.jwt_bundle().await?;
            lightwell_jose::jwt::verify(&svid, &bundle.keys, &validation).map_err(invalid)?
        } else {
            let federated = self.api.federated();
            let foreign = federated.domains.get(&trust_domain).ok_or_else(|| {
                Status::invalid_argument("invalid JWT-SVID: its trust domain is neither this one nor a federated one")
            })?;
            lightwell_jose::jwt::verify(&svid, &foreign.jwt_keys, &validation).map_err(invalid)?
        };
        let prefix = format!("spiffe://{trust_domain}/");
        if !verified.subject.starts_with(&prefix) || verified.subject.len() == prefix.len() {
            return Err(Status::invalid_argument(
                "invalid JWT-SVID: its subject is not a SPIFFE ID of the trust domain whose key signed it",
            ));
        }
        let claims =
            prost_types::Struct { fields: verified.claims.into_iter().map(|(k, v)| (k, prost_value(v))).collect() };
        Ok(Response::new(pb::ValidateJwtsvidResponse { spiffe_id: verified.subject, claims: Some(claims) }))
    }
}
