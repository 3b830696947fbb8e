//! A raw LDAP connection for tests that need to send exactly the bytes they
//! choose (hostile input) or keep one connection across server-side changes.
//! Plain TCP: use it on the StartTLS port.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use ldap3_proto::LdapCodec;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapExtendedRequest, LdapFilter, LdapMsg, LdapOp, LdapResult,
    LdapResultCode, LdapSearchRequest, LdapSearchResultEntry, LdapSearchScope,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Encoder};

/// OID of the unsolicited notice of disconnection.
pub const NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";

/// One LDAP connection over plain TCP.
#[derive(Debug)]
pub struct RawLdap {
    stream: TcpStream,
    buf: BytesMut,
    next_id: i32,
    /// How long [`RawLdap::recv`] waits for the server (10 s).
    patience: Duration,
}

/// A search request for `base` with `scope` and `filter`, all attributes.
pub fn search_request(base: &str, scope: LdapSearchScope, filter: LdapFilter, attrs: &[&str]) -> LdapOp {
    LdapOp::SearchRequest(LdapSearchRequest {
        base: base.into(),
        scope,
        aliases: LdapDerefAliases::Never,
        sizelimit: 0,
        timelimit: 0,
        typesonly: false,
        filter,
        attrs: attrs.iter().map(|a| a.to_string()).collect(),
    })
}

/// Encodes a message.
pub fn encode(msgid: i32, op: LdapOp, ctrl: Vec<LdapControl>) -> Vec<u8> {
    let mut buf = BytesMut::new();
    LdapCodec::default().encode(LdapMsg { msgid, op, ctrl }, &mut buf).unwrap();
    buf.to_vec()
}

impl RawLdap {
    /// Connects.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::over(TcpStream::connect(addr).await.unwrap())
    }

    /// Wraps a connected stream (for example one bound to another loopback address).
    pub fn over(stream: TcpStream) -> Self {
        Self { stream, buf: BytesMut::new(), next_id: 1, patience: Duration::from_secs(10) }
    }

    /// How long [`RawLdap::recv`] waits before it panics (10 s by default).
    pub fn set_patience(&mut self, patience: Duration) {
        self.patience = patience;
    }

    /// Sends raw bytes; a server that already closed is not an error here.
    pub async fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Sends a request with the next message id; returns the id.
    pub async fn request(&mut self, op: LdapOp, ctrl: Vec<LdapControl>) -> i32 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&encode(id, op, ctrl)).await;
        id
    }

    /// The next message, or `None` once the server has closed the connection.
    /// Panics if the server neither answers nor closes within 10 s (see
    /// [`RawLdap::set_patience`]).
    pub async fn recv(&mut self) -> Option<LdapMsg> {
        let mut codec = LdapCodec::new(Some(1 << 20), None);
        loop {
            if let Some(msg) = codec.decode(&mut self.buf).unwrap() {
                return Some(msg);
            }
            match tokio::time::timeout(self.patience, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(_)) => {}
                Err(_) => panic!("the server neither answered nor closed the connection"),
            }
        }
    }

    /// Reads one search's entries and its final result.
    pub async fn search_results(&mut self) -> (Vec<LdapSearchResultEntry>, LdapResult) {
        let mut entries = Vec::new();
        loop {
            match self.recv().await.expect("connection closed during a search").op {
                LdapOp::SearchResultDone(res) => return (entries, res),
                LdapOp::SearchResultEntry(e) => entries.push(e),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Runs a search and returns its entries and result.
    pub async fn search(&mut self, op: LdapOp) -> (Vec<LdapSearchResultEntry>, LdapResult) {
        self.request(op, vec![]).await;
        self.search_results().await
    }

    /// Reads one search and returns only its result code.
    pub async fn search_result(&mut self) -> LdapResultCode {
        self.search_results().await.1.code
    }

    /// A simple bind; returns the result.
    pub async fn simple_bind(&mut self, dn: &str, password: &str) -> LdapResult {
        let op = LdapOp::BindRequest(LdapBindRequest {
            version: 3,
            dn: dn.into(),
            cred: LdapBindCred::Simple(password.into()),
        });
        self.request(op, vec![]).await;
        match self.recv().await.expect("closed during bind").op {
            LdapOp::BindResponse(r) => r.res,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Who am I? (RFC 4532): the authorization identity.
    pub async fn whoami(&mut self) -> String {
        let op = LdapOp::ExtendedRequest(LdapExtendedRequest { name: "1.3.6.1.4.1.4203.1.11.3".into(), value: None });
        self.request(op, vec![]).await;
        match self.recv().await.expect("closed during whoami").op {
            LdapOp::ExtendedResponse(r) => String::from_utf8(r.value.unwrap_or_default()).unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Expects the unsolicited notice of disconnection (RFC 4511 section
    /// 4.4.1: message id 0, the notice's OID, a result code other than
    /// success), then the close; returns the notice's result code. A close
    /// or reset without the notice, or any other message, fails the test.
    pub async fn expect_disconnect(&mut self) -> LdapResultCode {
        let msg = self.recv().await.expect("the server closed the connection without a notice of disconnection");
        assert_eq!(msg.msgid, 0, "a notice of disconnection has message id 0: {msg:?}");
        let LdapOp::ExtendedResponse(res) = msg.op else { panic!("not a notice of disconnection: {msg:?}") };
        assert_eq!(res.name.as_deref(), Some(NOTICE_OF_DISCONNECTION), "{res:?}");
        assert_ne!(res.res.code, LdapResultCode::Success, "{res:?}");
        assert!(self.recv().await.is_none(), "closed after the notice");
        res.res.code
    }

    /// Non-blocking check: has the server closed this connection?
    pub fn is_closed(&self) -> bool {
        matches!(self.stream.try_read(&mut [0u8; 1]), Ok(0))
    }
}

/// Entries as DN → attribute → values.
pub type Ldif = std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<Vec<u8>>>>;

/// Parses what `ldapsearch -LLL -o ldif-wrap=no` prints: base64 values
/// (`attr:: ...`) decoded, the others as written.
pub fn parse_ldif(text: &str) -> Ldif {
    use base64::Engine as _;
    let mut entries = Ldif::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut dn = String::new();
        let mut attrs = std::collections::BTreeMap::<String, Vec<Vec<u8>>>::new();
        for line in block.lines() {
            let (name, value) = if let Some((n, v)) = line.split_once(":: ") {
                (n, base64::engine::general_purpose::STANDARD.decode(v).expect("LDIF base64"))
            } else if let Some((n, v)) = line.split_once(": ") {
                (n, v.as_bytes().to_vec())
            } else {
                continue;
            };
            if name == "dn" {
                dn = String::from_utf8(value).expect("a UTF-8 DN");
            } else {
                attrs.entry(name.to_string()).or_default().push(value);
            }
        }
        entries.insert(dn, attrs);
    }
    entries
}
