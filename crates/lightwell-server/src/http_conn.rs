//! The limits of the HTTP listeners (API and PKI) and the driver of one
//! connection under them, so that a slow, silent or greedy client cannot
//! hold the server's connections for as long as it likes:
//!
//! - **caps** ([`ConnectionCaps`]): at most `max_connections` open
//!   connections per listener and `max_connections_per_ip` per client
//!   address (IPv6: per /64, the block one host usually has); a connection
//!   over a cap is closed at accept, before TLS. The LDAP listeners have
//!   the same two caps (`lightwell_ldap::Limits`).
//! - **TLS handshake timeout** (API): applied by the accept loop.
//! - **header read timeout**: a connection must complete a request head
//!   within `header_read_timeout` of its first byte — and a new connection
//!   within that time of being accepted — or it is closed. Counted only
//!   while no request of the connection is being answered, so request
//!   bodies and long polls are not cut (the request timeout bounds those).
//! - **idle timeout**: a connection with no request being answered and no
//!   byte read or written for `idle_timeout` is shut down gracefully (the
//!   keep-alive timeout of HTTP/1.1, GOAWAY on HTTP/2); one that does not
//!   finish closing within [`CLOSE_GRACE`] is dropped.
//!
//! hyper's own HTTP/1 header timer would also run while a kept-alive
//! connection waits for its next request, making every idle connection
//! close after the header timeout; so the connection's bytes are watched
//! here instead (`Tracked`), the way Go's `ReadHeaderTimeout` and
//! `IdleTimeout` split the two. On HTTP/2 (ALPN `h2`) frames arrive between
//! requests (PING, WINDOW_UPDATE), so there the header timer runs only for
//! the first request and the idle timeout does the rest.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

use crate::tls::PeerCertificates;

/// How long a connection told to close (idle, or the server stopping) may
/// take to finish what it is sending before it is dropped. Server shutdown
/// bounds the whole drain separately.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The limits of one HTTP listener. The defaults are those of common
/// reverse proxies (nginx, HAProxy, Go's `http.Server` as usually set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HttpLimits {
    /// Time to send a complete request head (10 s).
    pub(crate) header_read_timeout: Duration,
    /// Time a connection may sit with no request and no traffic (60 s).
    pub(crate) idle_timeout: Duration,
    /// Time to complete the TLS handshake, API listener (10 s).
    pub(crate) tls_handshake_timeout: Duration,
    /// Open connections per listener (4,096).
    pub(crate) max_connections: usize,
    /// Open connections per client address (IPv6: per /64) and listener (256).
    pub(crate) max_connections_per_ip: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_connections_per_ip: 256,
        }
    }
}

/// The connection caps of one listener. Cheap to clone; clones share counts.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionCaps {
    slots: Arc<Semaphore>,
    max: usize,
    per_source: Arc<Mutex<HashMap<String, usize>>>,
    max_per_source: usize,
}

/// An admitted connection's place under the caps, given back on drop.
#[derive(Debug)]
pub(crate) struct Admitted {
    _slot: OwnedSemaphorePermit,
    per_source: Arc<Mutex<HashMap<String, usize>>>,
    source: String,
}

impl ConnectionCaps {
    pub(crate) fn new(limits: &HttpLimits) -> Self {
        let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            per_source: Arc::default(),
            max_per_source: limits.max_connections_per_ip.max(1),
        }
    }

    /// A place for a connection from `ip`, or `None` if a cap is reached.
    pub(crate) fn admit(&self, ip: IpAddr) -> Option<Admitted> {
        let slot = self.slots.clone().try_acquire_owned().ok()?;
        let source = lightwell_core::throttle::address_key(ip);
        let mut counts = self.per_source.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = counts.entry(source.clone()).or_insert(0);
        if *n >= self.max_per_source {
            return None;
        }
        *n += 1;
        Some(Admitted { _slot: slot, per_source: self.per_source.clone(), source })
    }

    /// Waits until every admitted connection has closed, at most `grace`;
    /// whether they all did.
    pub(crate) async fn drained(&self, grace: Duration) -> bool {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        tokio::time::timeout(grace, self.slots.acquire_many(all)).await.is_ok()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self.per_source.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.source);
            }
        }
    }
}

/// What the driver knows of a connection's traffic, in milliseconds since
/// it was accepted.
#[derive(Debug)]
struct Activity {
    start: Instant,
    /// Last byte read or written, or the end of the last answer.
    last_io: AtomicU64,
    /// 1 + when the client started a request head not yet complete; 0: none.
    waiting_since: AtomicU64,
    /// Requests being answered.
    in_flight: AtomicUsize,
    /// Whether bytes read between requests start the header timer (HTTP/1).
    reads_start_requests: bool,
}

/// What to do with a connection now.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Nothing; look again after this long.
    Keep(Duration),
    /// A request head took longer than the header read timeout: drop it.
    HeaderTimeout,
    /// Idle for the idle timeout: close it gracefully.
    Idle,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Activity {
    fn new(reads_start_requests: bool) -> Self {
        Self {
            start: Instant::now(),
            last_io: AtomicU64::new(0),
            // A new connection owes its first request head from the start.
            waiting_since: AtomicU64::new(1),
            in_flight: AtomicUsize::new(0),
            reads_start_requests,
        }
    }

    fn now(&self) -> u64 {
        millis(self.start.elapsed())
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.reads_start_requests && self.in_flight.load(Ordering::Acquire) == 0 {
            let _ = self.waiting_since.compare_exchange(0, now + 1, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    fn judge(&self, limits: &HttpLimits) -> Verdict {
        let (header, idle) = (millis(limits.header_read_timeout), millis(limits.idle_timeout));
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Verdict::Keep(Duration::from_millis(header.min(idle)));
        }
        let now = self.now();
        let mut next = u64::MAX;
        let waiting = self.waiting_since.load(Ordering::Acquire);
        if waiting != 0 {
            let deadline = (waiting - 1).saturating_add(header);
            if now >= deadline {
                return Verdict::HeaderTimeout;
            }
            next = deadline - now;
        }
        let idle_deadline = self.last_io.load(Ordering::Relaxed).saturating_add(idle);
        if now >= idle_deadline {
            return Verdict::Idle;
        }
        Verdict::Keep(Duration::from_millis(next.min(idle_deadline - now).max(10)))
    }
}

/// A request being answered; the connection counts as busy meanwhile.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.waiting_since.store(0, Ordering::Release);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.wrote();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A byte stream whose reads and writes are noted in its [`Activity`].
#[derive(Debug)]
struct Tracked<S> {
    io: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read();
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote();
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// What a request of a connection learns about it.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    /// The TCP peer (the caller's address: no forwarding header is trusted).
    pub(crate) addr: SocketAddr,
    /// The TLS client certificate chain (API listener).
    pub(crate) certificates: Option<PeerCertificates>,
    /// Whether the connection negotiated HTTP/2 by ALPN.
    pub(crate) h2: bool,
}

/// Serves HTTP on one accepted (and, for the API, TLS-established)
/// connection under `limits` until the client leaves, a timeout closes it,
/// or `stop` turns true (then requests in progress finish first).
pub(crate) async fn serve<S>(io: S, peer: Peer, app: Router, limits: HttpLimits, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new(!peer.h2));
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            let busy = InFlight::start(&activity);
            req.extensions_mut().insert(ConnectInfo(peer.addr));
            if let Some(certs) = &peer.certificates {
                req.extensions_mut().insert(certs.clone());
            }
            let answer = app.clone().oneshot(req);
            async move {
                let res = answer.await;
                drop(busy);
                res
            }
        })
    };
    // No timer on purpose: hyper's own HTTP/1 header timer (which would also
    // cut kept-alive connections waiting for their next request) stays off.
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn =
        builder.serve_connection_with_upgrades(TokioIo::new(Tracked { io, activity: activity.clone() }), service);
    tokio::pin!(conn);
    let mut closing = Closing::No;
    loop {
        let look_again = match (activity.judge(&limits), closing) {
            (_, Closing::Idle(since)) if since.elapsed() >= CLOSE_GRACE => return,
            (Verdict::HeaderTimeout, _) => {
                tracing::debug!(peer = %peer.addr, "request head not complete in time; closing the connection");
                return;
            }
            (Verdict::Idle, Closing::No) => {
                conn.as_mut().graceful_shutdown();
                closing = Closing::Idle(Instant::now());
                CLOSE_GRACE
            }
            (Verdict::Idle, _) => CLOSE_GRACE,
            (Verdict::Keep(after), _) => after,
        };
        tokio::select! {
            _ = conn.as_mut() => return,
            () = tokio::time::sleep(look_again) => {}
            _ = stop.wait_for(|stopped| *stopped), if closing == Closing::No => {
                conn.as_mut().graceful_shutdown();
                closing = Closing::Stopping;
            }
        }
    }
}

/// Whether a connection was told to close, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    No,
    /// Idle since this instant: dropped after [`CLOSE_GRACE`].
    Idle(Instant),
    /// The server is stopping: requests in progress may finish (the
    /// server's drain bounds how long).
    Stopping,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(header_ms: u64, idle_ms: u64) -> HttpLimits {
        HttpLimits {
            header_read_timeout: Duration::from_millis(header_ms),
            idle_timeout: Duration::from_millis(idle_ms),
            ..HttpLimits::default()
        }
    }

    #[test]
    fn a_new_connection_owes_a_request_head_within_the_header_timeout() {
        // Verdicts before a deadline use long limits, after it short ones: nothing depends on speed.
        let a = Activity::new(true);
        assert!(matches!(a.judge(&limits(10_000, 100_000)), Verdict::Keep(d) if d <= Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(a.judge(&limits(50, 100_000)), Verdict::HeaderTimeout);
    }

    #[test]
    fn an_answered_connection_waits_for_the_idle_timeout_then_a_new_head_restarts_the_header_timer() {
        let a = Arc::new(Activity::new(true));
        drop(InFlight::start(&a));
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(a.judge(&limits(50, 100_000)), Verdict::Keep(_)), "kept alive past the header timeout");
        a.read();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(a.judge(&limits(50, 100_000)), Verdict::HeaderTimeout);
    }

    #[test]
    fn requests_being_answered_stop_both_timers() {
        let a = Arc::new(Activity::new(true));
        let busy = InFlight::start(&a);
        a.read();
        std::thread::sleep(Duration::from_millis(30));
        assert!(matches!(a.judge(&limits(10, 10)), Verdict::Keep(_)));
        drop(busy);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(a.judge(&limits(10_000, 10)), Verdict::Idle);
    }

    #[test]
    fn on_http2_frames_between_requests_do_not_start_the_header_timer() {
        let a = Arc::new(Activity::new(false));
        drop(InFlight::start(&a));
        a.read();
        std::thread::sleep(Duration::from_millis(30));
        assert!(matches!(a.judge(&limits(10, 100_000)), Verdict::Keep(_)));
    }

    #[test]
    fn caps_count_per_listener_and_per_address() {
        let caps =
            ConnectionCaps::new(&HttpLimits { max_connections: 3, max_connections_per_ip: 2, ..Default::default() });
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let a = caps.admit(one).unwrap();
        let _b = caps.admit(one).unwrap();
        assert!(caps.admit(one).is_none(), "per address");
        let c = caps.admit("192.0.2.2".parse().unwrap()).unwrap();
        assert!(caps.admit("192.0.2.3".parse().unwrap()).is_none(), "per listener");
        drop(a);
        drop(c);
        caps.admit(one).unwrap();
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let caps = ConnectionCaps::new(&HttpLimits { max_connections_per_ip: 1, ..Default::default() });
        let _x = caps.admit(v6("2001:db8::1")).unwrap();
        assert!(caps.admit(v6("2001:db8::2")).is_none(), "one /64 is one address");
        caps.admit(v6("2001:db8:0:1::1")).unwrap();
    }
}
