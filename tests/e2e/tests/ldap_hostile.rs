//! Hostile input on the LDAP listener: every case ends in an LDAP error
//! result, or in a notice of disconnection with `protocolError` and then the
//! close, and the server keeps serving everyone else. Raw bytes over TCP (the StartTLS port needs no TLS for the root
//! DSE), decoded with ldap3_proto's codec.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapFilter, LdapOp, LdapResultCode, LdapSearchScope};
use lightwell_testkit::TestServer;
use lightwell_testkit::ldap::{RawLdap as Conn, encode, search_request};
use tokio::net::{TcpSocket, TcpStream};

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
    let op = search_request("", LdapSearchScope::Base, LdapFilter::Present("objectClass".into()), &["+"]);
    encode(msgid, op, ctrl)
}

/// The server still answers a fresh client.
async fn still_serves(server: &TestServer) {
    let mut c = Conn::connect(server.ldap_addr()).await;
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
        let mut c = Conn::connect(server.ldap_addr()).await;
        c.send(garbage).await;
        assert_eq!(c.expect_disconnect().await, LdapResultCode::ProtocolError, "after {garbage:?}");
    }
    still_serves(&server).await;
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_from_its_header() {
    let server = TestServer::start();
    let mut c = Conn::connect(server.ldap_addr()).await;
    // Announces 2 MiB; the server must not wait for (or buffer) it.
    c.send(&[0x30, 0x84, 0x00, 0x20, 0x00, 0x00]).await;
    c.send(&vec![0x04; 64 * 1024]).await;
    assert_eq!(c.expect_disconnect().await, LdapResultCode::ProtocolError);
    still_serves(&server).await;
}

#[tokio::test]
async fn deeply_nested_filters_are_refused() {
    let server = TestServer::start();
    // Past the filter limit but within BER limits: an LDAP error, connection kept.
    let mut c = Conn::connect(server.ldap_addr()).await;
    c.send(&nested_search(1, 100)).await;
    assert_eq!(c.search_result().await, LdapResultCode::AdminLimitExceeded);
    c.send(&nested_search(2, 10)).await;
    assert_eq!(c.search_result().await, LdapResultCode::Success, "shallow filters still work");
    // 10,000 deep: refused before it is decoded.
    let mut c = Conn::connect(server.ldap_addr()).await;
    c.send(&nested_search(3, 10_000)).await;
    assert_eq!(c.expect_disconnect().await, LdapResultCode::ProtocolError);
    still_serves(&server).await;
}

#[tokio::test]
async fn unknown_operations_and_critical_unknown_controls_get_error_results() {
    let server = TestServer::start();
    let mut c = Conn::connect(server.ldap_addr()).await;
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
    // Connections over the per-address limit (256) are closed at once: wait
    // until they are (a loaded machine may take a while to accept them all).
    let closed = || flood.iter().filter(|s| matches!(s.try_read(&mut [0u8; 1]), Ok(0))).count();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while closed() < 300 - 256 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "after 30 s only {} of the excess connections were refused",
            closed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Another client (another loopback address) is served meanwhile, and the API too.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = Conn::over(socket.connect(addr).await.unwrap());
    other.send(&root_dse(1, vec![])).await;
    assert_eq!(other.search_result().await, LdapResultCode::Success);
    let health = server.raw().get(format!("{}/healthz", server.url())).send().await.unwrap();
    assert!(health.status().is_success());

    // Once the flood ends, its address is served again.
    drop(flood);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = Conn::connect(addr).await;
        c.send(&root_dse(1, vec![])).await;
        match tokio::time::timeout(Duration::from_secs(2), c.recv()).await {
            Ok(Some(_)) => break,
            _ if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => panic!("127.0.0.1 is not served again after the flood"),
        }
    }
}
