//! One LDAP connection: reads requests, runs them one at a time (responses
//! go out in request order, so abandon has nothing to cancel), and keeps
//! the connection's state — TLS, the bound identity, paged-search cookies.
//!
//! A bind is a login: the service layer returns a session token that the
//! connection keeps and re-validates before every operation, so a password
//! change, a disable or a delete ends an LDAP connection's rights exactly
//! as it ends a REST session. The token is logged out when the connection
//! closes or binds again.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bytes::BytesMut;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapExtendedResponse, LdapMsg, LdapOp, LdapResult, LdapResultCode};
use lightwell_core::authz::Actor;
use lightwell_core::{DirectoryVersion, Service, SessionCheck};
use lightwell_proto::ErrorCode;
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::server::TlsStream;
use zeroize::Zeroizing;

use crate::codec::{self, Frame};
use crate::result::{LdapError, OpResult};
use crate::search::Paging;
use crate::{LdapConfig, bind, extended, search, stopped, write};

/// OID of the unsolicited notice of disconnection (RFC 4511 section 4.4.1).
const OID_NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";

/// The byte stream under a connection; plain until StartTLS.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Cleartext (the StartTLS listener before StartTLS).
    Plain(TcpStream),
    /// TLS (LDAPS, or after StartTLS).
    Tls(Box<TlsStream<TcpStream>>),
    /// Between the two during an upgrade.
    Gone,
}

impl Stream {
    async fn read(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.read_buf(buf).await,
            Self::Tls(s) => s.read_buf(buf).await,
            Self::Gone => Ok(0),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Plain(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Self::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Self::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

/// Who the connection is bound as.
pub(crate) struct Bound {
    /// What authenticates the connection, re-checked before every operation.
    pub(crate) credential: Credential,
    /// The DN bound as.
    pub(crate) dn: String,
    /// The last full check of a session bind, kept while the tenant's
    /// directory version is unchanged (see `Session::checked_actor`).
    pub(crate) checked: Option<SessionCheck>,
}

/// How a connection is bound.
pub(crate) enum Credential {
    /// A simple bind: the service-layer session token (never logged).
    Session(Zeroizing<String>),
    /// SASL EXTERNAL: the TLS client certificate chain, leaf first.
    Certificate(Vec<Vec<u8>>),
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token: it is a credential.
        f.debug_struct("Bound").field("dn", &self.dn).finish_non_exhaustive()
    }
}

/// What the connection does after a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Read the next request.
    Continue,
    /// Upgrade to TLS, then continue.
    StartTls,
    /// Close the connection.
    Close,
}

/// One connection's state.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) service: Service,
    pub(crate) config: Arc<LdapConfig>,
    stream: Stream,
    tls: Arc<rustls::ServerConfig>,
    /// Whether the connection is encrypted.
    pub(crate) secure: bool,
    /// The client's certificate chain, leaf first (empty without one).
    pub(crate) peer_certificates: Vec<CertificateDer<'static>>,
    /// The client's address, for the service layer's failed-login throttle.
    pub(crate) peer: IpAddr,
    pub(crate) bound: Option<Bound>,
    pub(crate) paging: Paging,
    inbuf: BytesMut,
    outbuf: BytesMut,
}

impl Session {
    pub(crate) fn new(
        service: Service,
        config: Arc<LdapConfig>,
        stream: Stream,
        tls: Arc<rustls::ServerConfig>,
    ) -> Self {
        let (secure, peer_certificates) = match &stream {
            Stream::Tls(s) => (true, peer_certificates(s)),
            _ => (false, vec![]),
        };
        let peer = match &stream {
            Stream::Plain(s) => s.peer_addr(),
            Stream::Tls(s) => s.get_ref().0.peer_addr(),
            Stream::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        };
        // A connection already gone has no address; it binds nothing either.
        let peer = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        Self {
            service,
            config,
            stream,
            tls,
            secure,
            peer_certificates,
            peer,
            bound: None,
            paging: Paging::default(),
            inbuf: BytesMut::with_capacity(4096),
            outbuf: BytesMut::with_capacity(4096),
        }
    }

    /// The tenants' trees shared by the listener's connections.
    pub(crate) fn cache(&self) -> &crate::cache::DirectoryCache {
        &self.config.cache
    }

    /// Serves the connection until the client leaves, a fatal error, idle
    /// timeout, or server shutdown.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let limits = self.config.limits;
        loop {
            match codec::decode(&mut self.inbuf, limits.max_message_bytes) {
                Frame::Message(msg) => {
                    let flow = self.handle(msg).await;
                    if !self.flush().await {
                        break;
                    }
                    match flow {
                        Flow::Continue => {}
                        Flow::Close => break,
                        Flow::StartTls => {
                            if !self.start_tls().await {
                                break;
                            }
                        }
                    }
                }
                Frame::Rejected { msgid, op, reason } => {
                    if op == Some(2) {
                        break; // a malformed unbind is still a goodbye
                    }
                    let result = LdapError::new(LdapResultCode::ProtocolError, reason).into_result();
                    if let Some(op) = op.and_then(|op| response_for(op, result.clone())) {
                        self.queue(LdapMsg { msgid, op, ctrl: vec![] });
                    }
                    if !self.flush().await {
                        break;
                    }
                }
                Frame::Fatal(why) => {
                    tracing::debug!(reason = why, "closing LDAP connection");
                    codec::discard(&mut self.inbuf);
                    self.notice_of_disconnection(LdapResultCode::ProtocolError, why).await;
                    break;
                }
                Frame::Incomplete => {
                    let read = tokio::select! {
                        r = tokio::time::timeout(limits.idle_timeout, self.stream.read(&mut self.inbuf)) => r,
                        () = stopped(&mut stop) => {
                            self.notice_of_disconnection(LdapResultCode::Unavailable, "the server is shutting down").await;
                            break;
                        }
                    };
                    match read {
                        Ok(Ok(n)) if n > 0 => {}
                        Ok(_) => break,
                        Err(_) => {
                            self.notice_of_disconnection(LdapResultCode::Unavailable, "idle timeout").await;
                            break;
                        }
                    }
                }
            }
        }
        self.unbind().await;
    }

    async fn handle(&mut self, msg: LdapMsg) -> Flow {
        let LdapMsg { msgid, op, ctrl } = msg;
        let tag = request_tag(&op);
        if let Some(oid) = unsupported_critical(&ctrl) {
            let res = LdapError::new(
                LdapResultCode::UnavailableCriticalExtension,
                format!("critical control {oid} is not supported"),
            )
            .into_result();
            if let Some(op) = tag.and_then(|t| response_for(t, res)) {
                self.queue(LdapMsg { msgid, op, ctrl: vec![] });
            }
            return if matches!(op, LdapOp::UnbindRequest) { Flow::Close } else { Flow::Continue };
        }
        let (response, flow) = match op {
            LdapOp::BindRequest(req) => (vec![LdapOp::BindResponse(bind::bind(self, req).await)], Flow::Continue),
            LdapOp::UnbindRequest => return Flow::Close,
            LdapOp::SearchRequest(req) => {
                let (ops, ctrl) = search::search(self, req, &ctrl).await;
                for op in ops {
                    let last = matches!(op, LdapOp::SearchResultDone(_));
                    self.queue(LdapMsg { msgid, op, ctrl: if last { ctrl.clone() } else { vec![] } });
                    if self.outbuf.len() > 256 * 1024 && !self.flush().await {
                        return Flow::Close;
                    }
                }
                return Flow::Continue;
            }
            LdapOp::AddRequest(req) => (vec![LdapOp::AddResponse(write::add(self, req).await)], Flow::Continue),
            LdapOp::ModifyRequest(req) => {
                (vec![LdapOp::ModifyResponse(write::modify(self, req).await)], Flow::Continue)
            }
            LdapOp::DelRequest(dn) => (vec![LdapOp::DelResponse(write::delete(self, &dn).await)], Flow::Continue),
            LdapOp::ModifyDNRequest(_) => (
                vec![LdapOp::ModifyDNResponse(
                    LdapError::new(LdapResultCode::UnwillingToPerform, "renaming entries is not supported")
                        .into_result(),
                )],
                Flow::Continue,
            ),
            LdapOp::CompareRequest(req) => {
                (vec![LdapOp::CompareResult(search::compare(self, req).await)], Flow::Continue)
            }
            LdapOp::AbandonRequest(_) => return Flow::Continue,
            LdapOp::ExtendedRequest(req) => {
                let (res, flow) = extended::handle(self, req).await;
                (vec![LdapOp::ExtendedResponse(res)], flow)
            }
            _ => (
                vec![LdapOp::ExtendedResponse(LdapExtendedResponse {
                    res: LdapError::new(LdapResultCode::ProtocolError, "not a request").into_result(),
                    name: None,
                    value: None,
                })],
                Flow::Continue,
            ),
        };
        for op in response {
            self.queue(LdapMsg { msgid, op, ctrl: vec![] });
        }
        flow
    }

    fn queue(&mut self, msg: LdapMsg) {
        codec::encode(msg, &mut self.outbuf);
    }

    async fn flush(&mut self) -> bool {
        if self.outbuf.is_empty() {
            return true;
        }
        let out = self.outbuf.split();
        self.stream.write(&out).await.is_ok()
    }

    async fn notice_of_disconnection(&mut self, code: LdapResultCode, why: &str) {
        let op = LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: LdapError::new(code, why).into_result(),
            name: Some(OID_NOTICE_OF_DISCONNECTION.into()),
            value: None,
        });
        self.queue(LdapMsg { msgid: 0, op, ctrl: vec![] });
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.flush()).await;
    }

    async fn start_tls(&mut self) -> bool {
        if !self.inbuf.is_empty() {
            return false; // the client sent more before the handshake: a protocol violation
        }
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else { return false };
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.clone());
        match tokio::time::timeout(crate::HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                self.peer_certificates = peer_certificates(&tls);
                self.stream = Stream::Tls(Box::new(tls));
                self.secure = true;
                true
            }
            _ => false,
        }
    }

    /// The bound principal, re-validated now; `None` when anonymous.
    pub(crate) async fn actor(&mut self) -> OpResult<Option<Actor>> {
        Ok(self.checked_actor().await?.0)
    }

    /// The bound principal, re-validated now, and its tenant's directory
    /// version when the check read it (with the permission to read the
    /// directory checked).
    ///
    /// A session bind is fully checked (`Service::check_session`) once; after
    /// that one small read of the directory version suffices while it is
    /// unchanged and the session has not expired, because every change that
    /// can end a session (password, disable, delete, groups) bumps it.
    /// Certificate binds are fully checked every time.
    pub(crate) async fn checked_actor(&mut self) -> OpResult<(Option<Actor>, Option<DirectoryVersion>)> {
        let Some(bound) = &self.bound else { return Ok((None, None)) };
        if let Some(SessionCheck { actor: actor @ Actor::Principal(p), version: Some(known), expires_at }) =
            &bound.checked
            && self.service.clock().unix() < *expires_at
        {
            match self.service.directory_version(actor, &p.tenant).await {
                Ok(now) if now == *known => return Ok((Some(actor.clone()), Some(now))),
                // Changed (or the tenant is gone): check the bind in full.
                Ok(_) => {}
                Err(e) if e.code == ErrorCode::TenantNotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        let checked = match &bound.credential {
            Credential::Session(token) => self.service.check_session(token.clone()).await.map(Some),
            Credential::Certificate(chain) => self
                .service
                .authenticate_certificate(chain.clone())
                .await
                .map(|actor| Some(SessionCheck { actor, version: None, expires_at: i64::MIN })),
        };
        match checked {
            Ok(check) => {
                let actor = check.as_ref().map(|c| c.actor.clone());
                if let Some(bound) = &mut self.bound {
                    bound.checked = check.filter(|c| c.version.is_some());
                }
                Ok((actor, None))
            }
            Err(e) if matches!(e.code, ErrorCode::InvalidToken | ErrorCode::InvalidClientCertificate) => {
                self.bound = None;
                Err(LdapError::new(
                    LdapResultCode::InsufficentAccessRights,
                    "the bind is no longer valid (password changed, account disabled, certificate revoked or session expired); bind again",
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The bound principal, or `insufficientAccessRights` for anonymous.
    pub(crate) async fn require_actor(&mut self) -> OpResult<Actor> {
        self.actor().await?.ok_or_else(anonymous)
    }

    /// Drops the bound identity and ends its service-layer session.
    pub(crate) async fn unbind(&mut self) {
        if let Some(Bound { credential: Credential::Session(token), .. }) = self.bound.take() {
            let _ = self.service.logout(token).await;
        }
    }
}

/// The answer to an anonymous caller outside the root DSE.
pub(crate) fn anonymous() -> LdapError {
    LdapError::new(LdapResultCode::InsufficentAccessRights, "anonymous access is limited to the root DSE; bind first")
}

fn peer_certificates(tls: &TlsStream<TcpStream>) -> Vec<CertificateDer<'static>> {
    tls.get_ref().1.peer_certificates().map(|c| c.iter().map(|c| c.clone().into_owned()).collect()).unwrap_or_default()
}

/// The APPLICATION tag of a request.
fn request_tag(op: &LdapOp) -> Option<u64> {
    Some(match op {
        LdapOp::BindRequest(_) => 0,
        LdapOp::UnbindRequest => 2,
        LdapOp::SearchRequest(_) => 3,
        LdapOp::ModifyRequest(_) => 6,
        LdapOp::AddRequest(_) => 8,
        LdapOp::DelRequest(_) => 10,
        LdapOp::ModifyDNRequest(_) => 12,
        LdapOp::CompareRequest(_) => 14,
        LdapOp::AbandonRequest(_) => 16,
        LdapOp::ExtendedRequest(_) => 23,
        _ => return None,
    })
}

/// The response carrying `res` for a request with APPLICATION tag `op`
/// (`None` for unbind and abandon, which have none; an extended response
/// for operations the server does not know).
fn response_for(op: u64, res: LdapResult) -> Option<LdapOp> {
    Some(match op {
        0 => LdapOp::BindResponse(ldap3_proto::proto::LdapBindResponse { res, saslcreds: None }),
        2 | 16 => return None,
        3 => LdapOp::SearchResultDone(res),
        6 => LdapOp::ModifyResponse(res),
        8 => LdapOp::AddResponse(res),
        10 => LdapOp::DelResponse(res),
        12 => LdapOp::ModifyDNResponse(res),
        14 => LdapOp::CompareResult(res),
        _ => LdapOp::ExtendedResponse(LdapExtendedResponse { res, name: None, value: None }),
    })
}

/// The OID of the first critical control the server does not implement.
fn unsupported_critical(ctrl: &[LdapControl]) -> Option<String> {
    ctrl.iter().find_map(|c| match c {
        LdapControl::Unknown { oid, criticality: true, .. } => Some(oid.clone()),
        LdapControl::SyncRequest { criticality: true, .. } => Some("1.3.6.1.4.1.4203.1.9.1.1".into()),
        LdapControl::PasswordPolicyRequest { criticality: true } => Some("1.3.6.1.4.1.42.2.27.8.5.1".into()),
        LdapControl::SearchOptions { criticality: true, .. } => Some("1.2.840.113556.1.4.1340".into()),
        LdapControl::ShowDeleted { criticality: true } => Some("1.2.840.113556.1.4.417".into()),
        LdapControl::SdFlags { criticality: true, .. } => Some("1.2.840.113556.1.4.801".into()),
        LdapControl::ExtendedDn { criticality: true, .. } => Some("1.2.840.113556.1.4.529".into()),
        _ => None,
    })
}
