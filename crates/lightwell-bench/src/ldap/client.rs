//! The load generator's LDAP client: one LDAPS connection (rustls, the
//! same code for Lightwell and slapd), one request in flight at a time.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapFilter, LdapMsg, LdapOp, LdapResult, LdapResultCode,
    LdapSearchRequest, LdapSearchScope, SaslCredentials,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::codec::{Decoder, Encoder};

/// How the bench's connections trust the servers (both use Lightwell's
/// server certificate) and, for SASL EXTERNAL, which certificate they show.
pub(crate) fn tls_config(ca_pem: &[u8], identity: Option<(&str, &str)>) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert?)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((chain_pem, key_pem)) => {
            let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?)?
        }
    };
    Ok(Arc::new(config))
}

/// One LDAPS connection.
pub(crate) struct Connection {
    stream: TlsStream<TcpStream>,
    buf: BytesMut,
    out: BytesMut,
    next_id: i32,
}

impl Connection {
    /// Connects and completes the TLS handshake.
    pub(crate) async fn connect(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Result<Self> {
        let tcp = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(addr.ip().into());
        let stream = TlsConnector::from(tls).connect(name, tcp).await.context("TLS handshake")?;
        Ok(Self { stream, buf: BytesMut::with_capacity(16 * 1024), out: BytesMut::new(), next_id: 1 })
    }

    /// Sends one request and reads its responses up to the final one;
    /// returns the final result and how many entries came before it.
    async fn request(&mut self, op: LdapOp) -> Result<(LdapResult, usize)> {
        let msgid = self.next_id;
        self.next_id += 1;
        self.out.clear();
        LdapCodec::default().encode(LdapMsg { msgid, op, ctrl: vec![] }, &mut self.out)?;
        self.stream.write_all(&self.out).await?;
        self.stream.flush().await?;
        // Large enough for a page of entries; the server's own limit is 1 MiB per request.
        let mut codec = LdapCodec::new(Some(4 * 1024 * 1024), None);
        let mut entries = 0;
        loop {
            while let Some(msg) = codec.decode(&mut self.buf)? {
                match msg.op {
                    LdapOp::SearchResultEntry(_) => entries += 1,
                    LdapOp::SearchResultDone(res)
                    | LdapOp::BindResponse(ldap3_proto::proto::LdapBindResponse { res, .. }) => {
                        return Ok((res, entries));
                    }
                    _ => {}
                }
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                bail!("the server closed the connection");
            }
        }
    }

    /// A simple bind.
    pub(crate) async fn simple_bind(&mut self, dn: &str, password: &str) -> Result<()> {
        let req = LdapBindRequest { version: 3, dn: dn.into(), cred: LdapBindCred::Simple(password.into()) };
        expect_success(self.request(LdapOp::BindRequest(req)).await?.0, "bind")
    }

    /// A SASL EXTERNAL bind with the connection's client certificate.
    pub(crate) async fn external_bind(&mut self) -> Result<()> {
        let sasl = SaslCredentials { mechanism: "EXTERNAL".into(), credentials: vec![] };
        let req = LdapBindRequest { version: 3, dn: String::new(), cred: LdapBindCred::SASL(sasl) };
        expect_success(self.request(LdapOp::BindRequest(req)).await?.0, "SASL EXTERNAL bind")
    }

    /// A subtree search; returns the number of entries.
    pub(crate) async fn search(&mut self, base: &str, filter: LdapFilter, attrs: &[&str]) -> Result<usize> {
        let req = LdapSearchRequest {
            base: base.into(),
            scope: LdapSearchScope::Subtree,
            aliases: LdapDerefAliases::Never,
            sizelimit: 0,
            timelimit: 0,
            typesonly: false,
            filter,
            attrs: attrs.iter().map(|a| a.to_string()).collect(),
        };
        let (res, entries) = self.request(LdapOp::SearchRequest(req)).await?;
        expect_success(res, "search")?;
        Ok(entries)
    }
}

fn expect_success(res: LdapResult, what: &str) -> Result<()> {
    if res.code != LdapResultCode::Success {
        bail!("{what} failed: {:?} {}", res.code, res.message);
    }
    Ok(())
}
