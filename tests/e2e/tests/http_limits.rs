//! The API and PKI listeners against clients that hold connections: half
//! sent request heads, silent connections, TLS handshakes never started,
//! and more connections than the caps allow — while others are served.
//! Each test sets short limits; the margins are several times the limits.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lightwell_testkit::TestServer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far longer than any limit set here: a connection still open after it is not being closed.
const PATIENCE: Duration = Duration::from_secs(20);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Whether the server closed the connection within `within` (end of stream or reset).
async fn closed_by_server(stream: &mut (impl AsyncRead + Unpin), within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Whether a connection nobody writes to is still open now.
fn still_open(stream: &TcpStream) -> bool {
    matches!(stream.try_read(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// `GET /healthz` on a fresh connection closed after the answer; the status line.
async fn healthz(mut stream: impl AsyncRead + AsyncWrite + Unpin) -> String {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: lightwell\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Until the server closes (a TLS peer may end without close_notify: the answer is in by then).
    while let Ok(Ok(n @ 1..)) = tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await {
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string()
}

/// Both listeners: where they are and how to reach them from an address.
#[derive(Clone, Copy, Debug)]
enum Listener {
    Api,
    Pki,
}

impl Listener {
    fn addr(self, server: &TestServer) -> SocketAddr {
        match self {
            Self::Api => server.api_addr(),
            Self::Pki => server.pki_addr(),
        }
    }

    async fn healthz_from(self, server: &TestServer, source: &str) -> String {
        match self {
            Self::Api => healthz(server.api_tls_from(ip(source)).await).await,
            Self::Pki => healthz(TestServer::tcp_from(ip(source), server.pki_addr()).await).await,
        }
    }
}

#[tokio::test]
async fn half_sent_request_heads_and_silent_connections_are_closed_after_the_header_timeout() {
    let server = TestServer::start_with(&["--http-header-read-timeout-secs", "1", "--tls-handshake-timeout-secs", "1"]);
    let half = b"GET /healthz HTTP/1.1\r\nHost: lightwell\r\nX-Slow: ";

    let mut pki = TestServer::tcp_from(ip("127.0.0.2"), server.pki_addr()).await;
    pki.write_all(half).await.unwrap();
    let mut api = server.api_tls_from(ip("127.0.0.2")).await;
    api.write_all(half).await.unwrap();
    api.flush().await.unwrap();
    // Connected, then nothing at all: no request head, no TLS handshake.
    let mut silent_pki = TestServer::tcp_from(ip("127.0.0.3"), server.pki_addr()).await;
    let mut silent_api = TestServer::tcp_from(ip("127.0.0.3"), server.api_addr()).await;

    // Meanwhile (the limits are 1 s) others, and the same addresses, are served.
    for listener in [Listener::Pki, Listener::Api] {
        assert_eq!(listener.healthz_from(&server, "127.0.0.2").await, "HTTP/1.1 200 OK", "{listener:?}");
    }
    assert!(closed_by_server(&mut pki, PATIENCE).await, "PKI: half a request head");
    assert!(closed_by_server(&mut api, PATIENCE).await, "API: half a request head");
    assert!(closed_by_server(&mut silent_pki, PATIENCE).await, "PKI: no request head");
    assert!(closed_by_server(&mut silent_api, PATIENCE).await, "API: no TLS handshake");
}

#[tokio::test]
async fn a_kept_alive_connection_outlives_the_header_timeout_and_closes_when_idle() {
    let server = TestServer::start_with(&["--http-header-read-timeout-secs", "1", "--http-idle-timeout-secs", "6"]);
    let mut conn = TestServer::tcp_from(ip("127.0.0.2"), server.pki_addr()).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: lightwell\r\n\r\n";
    let mut buf = [0u8; 4096];
    for round in 0..2 {
        conn.write_all(request).await.unwrap();
        let n = tokio::time::timeout(PATIENCE, conn.read(&mut buf)).await.unwrap().unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"), "round {round}: {:?}", String::from_utf8_lossy(&buf[..n]));
        if round == 0 {
            // Three header timeouts, half the idle timeout: kept alive, not cut.
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }
    assert!(closed_by_server(&mut conn, PATIENCE).await, "closed once idle");
}

#[tokio::test]
async fn connections_over_the_caps_are_closed_while_other_callers_are_served() {
    let server = TestServer::start_with(&[
        "--http-max-connections",
        "12",
        "--http-max-connections-per-ip",
        "4",
        // Held connections must outlive the test.
        "--http-header-read-timeout-secs",
        "120",
        "--tls-handshake-timeout-secs",
        "120",
    ]);
    for listener in [Listener::Pki, Listener::Api] {
        let addr = listener.addr(&server);
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(TestServer::tcp_from(ip("127.0.0.3"), addr).await);
        }
        let mut fifth = TestServer::tcp_from(ip("127.0.0.3"), addr).await;
        assert!(closed_by_server(&mut fifth, PATIENCE).await, "{listener:?}: a fifth connection from one address");
        // (No other request yet: a just-closed connection may still hold a
        // slot for a moment, and the listener's cap is counted next.)

        for source in ["127.0.0.4", "127.0.0.5"] {
            for _ in 0..4 {
                held.push(TestServer::tcp_from(ip(source), addr).await);
            }
        }
        let mut thirteenth = TestServer::tcp_from(ip("127.0.0.6"), addr).await;
        assert!(closed_by_server(&mut thirteenth, PATIENCE).await, "{listener:?}: over the listener's cap");
        assert!(held.iter().all(still_open), "{listener:?}: the connections within the caps stay");

        // Once some close, new callers are served again.
        held.truncate(4);
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let mut probe = TestServer::tcp_from(ip("127.0.0.6"), addr).await;
            if !closed_by_server(&mut probe, Duration::from_millis(300)).await {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{listener:?}: still refused after connections closed");
        }
        assert_eq!(listener.healthz_from(&server, "127.0.0.6").await, "HTTP/1.1 200 OK", "{listener:?}");
        // Others are served while 127.0.0.3 still holds its four.
        assert_eq!(listener.healthz_from(&server, "127.0.0.1").await, "HTTP/1.1 200 OK", "{listener:?}");
    }
    let metrics = server.raw().get(format!("{}/metrics", server.url())).send().await.unwrap().text().await.unwrap();
    let refused = metrics.lines().find(|l| l.starts_with("lightwell_http_connections_refused_total ")).unwrap();
    let refused: u64 = refused.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(refused >= 4, "{refused}: two refusals per listener");
}
