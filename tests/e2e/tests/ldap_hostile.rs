//! Hostile input on the LDAP listener: every case ends in an LDAP error
//! result or a closed connection, and the server keeps serving everyone
//! else. Raw bytes over TCP (the StartTLS port needs no TLS for the root
//! DSE), decoded with ldap3_proto's codec.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use ldap3_proto::LdapCodec;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapDerefAliases, LdapFilter, LdapMsg, LdapOp, LdapResultCode, LdapSearchRequest, LdapSearchScope,
};
use lightwell_testkit::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::codec::{Decoder, Encoder};

const NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";

/// A BER TLV with a definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A search of the root DSE whose filter is `(objectClass=*)` inside `depth` NOTs.
fn nested_search(msgid: u8, depth: usize) -> Vec<u8> {
    let mut filter = tlv(0x87, b"objectClass");
    for _ in 0..depth {
        filter = tlv(0xa2, &filter);
    }
    let mut body = tlv(0x04, b"");
    for t in [tlv(0x0a, &[0]), tlv(0x0a, &[0]), tlv(0x02, &[0]), tlv(0x02, &[0]), tlv(0x01, &[0])] {
        body.extend(t);
    }
    body.extend(filter);
    body.extend(tlv(0x30, b""));
    let mut msg = tlv(0x02, &[msgid]);
    msg.extend(tlv(0x63, &body));
    tlv(0x30, &msg)
}

fn root_dse(msgid: i32, ctrl: Vec<LdapControl>) -> Vec<u8> {
    let op = LdapOp::SearchRequest(LdapSearchRequest {
        base: String::new(),
        scope: LdapSearchScope::Base,
        aliases: LdapDerefAliases::Never,
        sizelimit: 0,
        timelimit: 0,
        typesonly: false,
        filter: LdapFilter::Present("objectClass".into()),
        attrs: vec!["+".into()],
    });
    let mut buf = BytesMut::new();
    LdapCodec::default().encode(LdapMsg { msgid, op, ctrl }, &mut buf).unwrap();
    buf.to_vec()
}

struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Self {
        Self { stream: TcpStream::connect(addr).await.unwrap(), buf: BytesMut::new() }
    }

    async fn send(&mut self, bytes: &[u8]) {
        // The server may close before reading everything; that is an allowed outcome.
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next message, or `None` once the server has closed the connection.
    async fn recv(&mut self) -> Option<LdapMsg> {
        let mut codec = LdapCodec::new(Some(1 << 20), None);
        loop {
            if let Some(msg) = codec.decode(&mut self.buf).unwrap() {
                return Some(msg);
            }
            match tokio::time::timeout(Duration::from_secs(10), self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(_)) => {}
                Err(_) => panic!("the server neither answered nor closed the connection"),
            }
        }
    }

    /// Reads to the end of one search; returns its result code.
    async fn search_result(&mut self) -> LdapResultCode {
        loop {
            match self.recv().await.expect("connection closed during a search").op {
                LdapOp::SearchResultDone(res) => return res.code,
                LdapOp::SearchResultEntry(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Expects a notice of disconnection (or a plain close), then the close.
    async fn expect_disconnect(&mut self) {
        if let Some(msg) = self.recv().await {
            assert_eq!(msg.msgid, 0, "{msg:?}");
            let LdapOp::ExtendedResponse(res) = msg.op else { panic!("{msg:?}") };
            assert_eq!(res.name.as_deref(), Some(NOTICE_OF_DISCONNECTION));
            assert_ne!(res.res.code, LdapResultCode::Success);
            assert!(self.recv().await.is_none(), "closed after the notice");
        }
    }
}

/// The server still answers a fresh client.
async fn still_serves(server: &TestServer) {
    let mut c = Conn::open(server.ldap_addr()).await;
    c.send(&root_dse(1, vec![])).await;
    assert_eq!(c.search_result().await, LdapResultCode::Success);
    let health = server.raw().get(format!("{}/healthz", server.url())).send().await.unwrap();
    assert!(health.status().is_success());
}

#[tokio::test]
async fn malformed_ber_gets_a_notice_of_disconnection() {
    let server = TestServer::start();
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0x30, 0x06, 0x04, 0x09, 0xff, 0xff, 0xff, 0xff],
        &[0x30, 0x80, 0, 0],
    ] {
        let mut c = Conn::open(server.ldap_addr()).await;
        c.send(garbage).await;
        c.expect_disconnect().await;
    }
    still_serves(&server).await;
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_from_its_header() {
    let server = TestServer::start();
    let mut c = Conn::open(server.ldap_addr()).await;
    // Announces 2 MiB; the server must not wait for (or buffer) it.
    c.send(&[0x30, 0x84, 0x00, 0x20, 0x00, 0x00]).await;
    c.send(&vec![0x04; 64 * 1024]).await;
    c.expect_disconnect().await;
    still_serves(&server).await;
}

#[tokio::test]
async fn deeply_nested_filters_are_refused() {
    let server = TestServer::start();
    // Past the filter limit but within BER limits: an LDAP error, connection kept.
    let mut c = Conn::open(server.ldap_addr()).await;
    c.send(&nested_search(1, 100)).await;
    assert_eq!(c.search_result().await, LdapResultCode::AdminLimitExceeded);
    c.send(&nested_search(2, 10)).await;
    assert_eq!(c.search_result().await, LdapResultCode::Success, "shallow filters still work");
    // 10,000 deep: refused before it is decoded.
    let mut c = Conn::open(server.ldap_addr()).await;
    c.send(&nested_search(3, 10_000)).await;
    c.expect_disconnect().await;
    still_serves(&server).await;
}

#[tokio::test]
async fn unknown_operations_and_critical_unknown_controls_get_error_results() {
    let server = TestServer::start();
    let mut c = Conn::open(server.ldap_addr()).await;
    // [APPLICATION 30], which LDAP does not define.
    c.send(&[0x30, 0x05, 0x02, 0x01, 0x07, 0x7e, 0x00]).await;
    let msg = c.recv().await.unwrap();
    assert_eq!(msg.msgid, 7);
    let LdapOp::ExtendedResponse(res) = msg.op else { panic!("{msg:?}") };
    assert_eq!(res.res.code, LdapResultCode::ProtocolError);

    let critical = LdapControl::Unknown { oid: "1.3.6.1.4.1.99999.1".into(), criticality: true, value: None };
    c.send(&root_dse(8, vec![critical])).await;
    assert_eq!(c.search_result().await, LdapResultCode::UnavailableCriticalExtension);
    let optional = LdapControl::Unknown { oid: "1.3.6.1.4.1.99999.1".into(), criticality: false, value: None };
    c.send(&root_dse(9, vec![optional])).await;
    assert_eq!(c.search_result().await, LdapResultCode::Success, "a non-critical unknown control is ignored");

    // A known operation with a malformed body: protocolError in its own response type.
    c.send(&tlv(0x30, &[tlv(0x02, &[10]), tlv(0x63, &tlv(0x04, b""))].concat())).await;
    assert_eq!(c.search_result().await, LdapResultCode::ProtocolError);
    still_serves(&server).await;
}

#[tokio::test]
async fn a_connection_flood_from_one_address_does_not_starve_others() {
    let server = TestServer::start();
    let addr = server.ldap_addr();
    let mut flood = Vec::new();
    for _ in 0..300 {
        flood.push(TcpStream::connect(addr).await.unwrap());
    }
    // Connections over the per-address limit (256) are closed at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let closed = flood.iter().filter(|s| matches!(s.try_read(&mut [0u8; 1]), Ok(0))).count();
    assert!(closed >= 300 - 256, "only {closed} of the excess connections were refused");

    // Another client (another loopback address) is served meanwhile, and the API too.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = Conn { stream: socket.connect(addr).await.unwrap(), buf: BytesMut::new() };
    other.send(&root_dse(1, vec![])).await;
    assert_eq!(other.search_result().await, LdapResultCode::Success);
    let health = server.raw().get(format!("{}/healthz", server.url())).send().await.unwrap();
    assert!(health.status().is_success());

    // Once the flood ends, its address is served again.
    drop(flood);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = Conn::open(addr).await;
        c.send(&root_dse(1, vec![])).await;
        match tokio::time::timeout(Duration::from_secs(2), c.recv()).await {
            Ok(Some(_)) => break,
            _ if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => panic!("127.0.0.1 is not served again after the flood"),
        }
    }
}
