//! One principal's LDAP searches cannot stall the server. A bound user
//! (not an administrator) of a tenant with a few thousand entries sends
//! searches built to cost as much CPU as possible: a filter of thousands of
//! terms is refused before any work, an expensive one within the limits
//! runs off the async runtime under a work budget, and a principal has at
//! most four searches in flight. Meanwhile the REST API's `/healthz` keeps
//! answering fast, and afterwards ordinary searches answer correctly.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ldap3_proto::proto::{LdapFilter, LdapOp, LdapResultCode, LdapSearchScope, LdapSubstringFilter};
use lightwell_proto::{CreateGroupRequest, CreateUserRequest};
use lightwell_testkit::TestServer;
use lightwell_testkit::ldap::{RawLdap, search_request};

const T: &str = "corp.example";
const BASE: &str = "dc=corp,dc=example";
const ADMIN_PW: &str = "Corp-Admin-2026!";
const MALLORY_DN: &str = "uid=mallory,cn=Users,dc=corp,dc=example";
const ALICE_DN: &str = "uid=alice,cn=Users,dc=corp,dc=example";
const USER_PW: &str = "Wonderland-42!";
/// Entries seeded into the tenant (groups: no password hashing to slow the seeding).
const GROUPS: usize = 3000;
/// Concurrent writers seeding them (the store commits their writes in groups).
const WRITERS: usize = 64;
/// `/healthz` requests measured during an attack.
const PROBES: usize = 200;
/// What a loaded CI machine meets with a wide margin when nothing starves the API.
const HEALTHZ_P99: Duration = Duration::from_millis(100);

/// A server that accepts simple binds without TLS (so a raw TCP client can
/// bind), with the users mallory and alice and `GROUPS` groups.
async fn seeded_server() -> TestServer {
    let server = TestServer::start_with(&["--ldap-allow-plaintext-bind"]);
    let admin = server.create_tenant(T, ADMIN_PW).await;
    for name in ["mallory", "alice"] {
        let user = CreateUserRequest { name: name.into(), password: Some(USER_PW.into()), ..Default::default() };
        admin.create_principal(T, "users", &user).await.unwrap();
    }
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let admin = admin.clone();
        writers.push(tokio::spawn(async move {
            for i in (w..GROUPS).step_by(WRITERS) {
                let group = CreateGroupRequest { name: format!("group{i}"), display_name: None };
                admin.create_principal(T, "groups", &group).await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    eprintln!("seeded {GROUPS} groups in {:?}", started.elapsed());
    server
}

async fn bound(server: &TestServer, dn: &str) -> RawLdap {
    let mut conn = RawLdap::connect(server.ldap_addr()).await;
    // The old server took minutes over the attack; give it time to say so.
    conn.set_patience(Duration::from_secs(180));
    assert_eq!(conn.simple_bind(dn, USER_PW).await.code, LdapResultCode::Success);
    conn
}

fn subtree(filter: LdapFilter) -> LdapOp {
    search_request(BASE, LdapSearchScope::Subtree, filter, &["1.1"])
}

fn group_dn(i: usize) -> String {
    format!("cn=group{i},cn=Groups,{BASE}")
}

/// The reported attack: an OR of `n` `entryDN=` terms (8,000 make 383 KB).
fn entry_dns(n: usize) -> LdapFilter {
    LdapFilter::Or((0..n).map(|i| LdapFilter::Equality("entryDN".into(), group_dn(i))).collect())
}

/// Within the term limit but as costly as it gets: 500 substring terms that
/// match nothing, so every term is tried on every entry (1.5 million).
fn substrings() -> LdapFilter {
    LdapFilter::Or(
        (0..500)
            .map(|i| {
                let any = vec![format!("zz{i}")];
                LdapFilter::Substring("cn".into(), LdapSubstringFilter { initial: None, any, final_: None })
            })
            .collect(),
    )
}

/// A `/healthz` request that failed or took longer counts as taking this long.
const FAILED: Duration = Duration::from_secs(2);

/// `/healthz` requested `PROBES` times, 20 ms apart, from its own task.
struct Probe {
    done: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Duration>>,
}

impl Probe {
    async fn start(server: &TestServer) -> Self {
        let http = server.raw();
        let url = format!("{}/healthz", server.url());
        // The TLS handshake is not what is measured.
        assert!(http.get(&url).send().await.unwrap().status().is_success());
        let done = Arc::new(AtomicBool::new(false));
        let finished = done.clone();
        let task = tokio::spawn(async move {
            let mut took = Vec::with_capacity(PROBES);
            let mut failed = 0;
            for _ in 0..PROBES {
                let started = Instant::now();
                let answer = http.get(&url).timeout(FAILED).send().await;
                let ok = matches!(answer, Ok(r) if r.status().is_success());
                took.push(if ok { started.elapsed() } else { FAILED });
                failed += usize::from(!ok);
                // More failures than the percentile allows: the verdict is in, stop waiting.
                if failed > PROBES / 100 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            finished.store(true, Ordering::SeqCst);
            took
        });
        Self { done, task }
    }

    fn running(&self) -> bool {
        !self.done.load(Ordering::SeqCst)
    }

    /// Waits for the last request; returns the 99th percentile and the worst.
    async fn p99(self) -> (Duration, Duration) {
        let mut took = self.task.await.unwrap();
        took.sort_unstable();
        // Requests not made because the probe gave up count as failed.
        took.resize(PROBES, FAILED);
        (took[PROBES * 99 / 100 - 1], took[PROBES - 1])
    }
}

/// Ordinary searches still answer, and correctly.
async fn still_answers(server: &TestServer) {
    let mut conn = bound(server, ALICE_DN).await;
    let (found, res) = conn.search(subtree(LdapFilter::Equality("uid".into(), "mallory".into()))).await;
    assert_eq!(res.code, LdapResultCode::Success, "{res:?}");
    assert_eq!(found.iter().map(|e| e.dn.as_str()).collect::<Vec<_>>(), [MALLORY_DN]);
    let (found, res) = conn.search(subtree(entry_dns(3))).await;
    assert_eq!(res.code, LdapResultCode::Success, "{res:?}");
    let mut dns: Vec<_> = found.into_iter().map(|e| e.dn).collect();
    dns.sort();
    assert_eq!(dns, [group_dn(0), group_dn(1), group_dn(2)]);
    let groups = search_request(&format!("cn=Groups,{BASE}"), LdapSearchScope::OneLevel, substrings(), &["1.1"]);
    assert_eq!(conn.search(groups).await.1.code, LdapResultCode::Success);
    let (found, res) =
        conn.search(subtree(LdapFilter::Substring("cn".into(), LdapSubstringFilter::from("group299*")))).await;
    assert_eq!(res.code, LdapResultCode::Success, "{res:?}");
    assert_eq!(found.len(), 11, "group299 and group2990 to group2999");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_or_of_eight_thousand_entry_dns_is_refused_at_once_and_rest_stays_responsive() {
    let server = seeded_server().await;
    let attack = entry_dns(8000);
    let (mut a, mut b) = (bound(&server, MALLORY_DN).await, bound(&server, MALLORY_DN).await);
    let probe = Probe::start(&server).await;
    let (mut rounds, mut slowest) = (0, Duration::ZERO);
    while probe.running() {
        let started = Instant::now();
        let (ra, rb) = tokio::join!(a.search(subtree(attack.clone())), b.search(subtree(attack.clone())));
        let took = started.elapsed();
        if rounds == 0 {
            eprintln!("two concurrent 8,000-term searches answered in {took:?}");
        }
        slowest = slowest.max(took);
        rounds += 1;
        for (found, res) in [ra, rb] {
            assert_eq!(res.code, LdapResultCode::AdminLimitExceeded, "{res:?}");
            assert!(res.message.contains("more than 512 terms"), "{}", res.message);
            assert!(found.is_empty());
        }
    }
    let (p99, worst) = probe.p99().await;
    eprintln!("{rounds} rounds, slowest {slowest:?}; /healthz p99 {p99:?}, worst {worst:?}");
    assert!(slowest < Duration::from_secs(5), "refused before any work, yet took {slowest:?}");
    assert!(p99 < HEALTHZ_P99, "/healthz p99 {p99:?} during the attack");
    still_answers(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expensive_searches_within_the_limits_leave_rest_responsive() {
    let server = seeded_server().await;
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(bound(&server, MALLORY_DN).await);
    }
    // Build the tenant's tree before measuring: that is once per change, not per search.
    assert_eq!(
        conns[0].search(subtree(LdapFilter::Present("objectClass".into()))).await.1.code,
        LdapResultCode::Success
    );
    let probe = Probe::start(&server).await;
    let probe_done = probe.done.clone();
    let mut attackers = Vec::new();
    for mut conn in conns {
        let done = probe_done.clone();
        attackers.push(tokio::spawn(async move {
            let mut took = Vec::new();
            while !done.load(Ordering::SeqCst) {
                let started = Instant::now();
                let (found, res) = conn.search(subtree(substrings())).await;
                took.push(started.elapsed());
                // Four at once is within the principal's bound, and each fits the budget.
                assert_eq!(res.code, LdapResultCode::Success, "{res:?}");
                assert!(found.is_empty());
            }
            took
        }));
    }
    let mut searches = Vec::new();
    for a in attackers {
        searches.extend(a.await.unwrap());
    }
    let (p99, worst) = probe.p99().await;
    searches.sort_unstable();
    eprintln!(
        "{} searches of 500 substring terms over {GROUPS} entries, median {:?}, slowest {:?}; /healthz p99 {p99:?}, worst {worst:?}",
        searches.len(),
        searches[searches.len() / 2],
        searches[searches.len() - 1]
    );
    assert!(p99 < HEALTHZ_P99, "/healthz p99 {p99:?} during the searches");
    still_answers(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_principal_runs_four_searches_at_once_and_the_rest_get_busy() {
    let server = seeded_server().await;
    let mut conns = Vec::new();
    for _ in 0..8 {
        conns.push(bound(&server, MALLORY_DN).await);
    }
    assert_eq!(
        conns[0].search(subtree(LdapFilter::Present("objectClass".into()))).await.1.code,
        LdapResultCode::Success
    );
    // All eight are sent before any is read: only four can be in flight.
    for conn in &mut conns {
        conn.request(subtree(substrings()), vec![]).await;
    }
    // Another principal is not held to mallory's bound.
    let mut alice = bound(&server, ALICE_DN).await;
    let (found, res) = alice.search(subtree(LdapFilter::Equality("uid".into(), "alice".into()))).await;
    assert_eq!((res.code.clone(), found.len()), (LdapResultCode::Success, 1), "{res:?}");

    let mut codes = Vec::new();
    for conn in &mut conns {
        let (found, res) = conn.search_results().await;
        if res.code == LdapResultCode::Busy {
            assert!(res.message.contains("4 searches in progress"), "{}", res.message);
        }
        assert!(found.is_empty());
        codes.push(res.code);
    }
    let busy = codes.iter().filter(|c| **c == LdapResultCode::Busy).count();
    assert_eq!(busy, 4, "{codes:?}");
    assert!(codes.iter().all(|c| matches!(c, LdapResultCode::Busy | LdapResultCode::Success)), "{codes:?}");
    // The slots are free again once the searches have ended.
    for conn in &mut conns {
        let (found, res) = conn.search(subtree(LdapFilter::Equality("uid".into(), "mallory".into()))).await;
        assert_eq!((res.code.clone(), found.len()), (LdapResultCode::Success, 1), "{res:?}");
    }
    still_answers(&server).await;
}
