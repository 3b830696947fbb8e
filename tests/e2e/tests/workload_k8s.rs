//! The `k8s:ns`, `k8s:sa` and `k8s:pod-label` selectors end to end, without
//! Kubernetes: a host joins and becomes a node of a cluster (`lightwell k8s
//! node add`), so its agent keeps a kubelet client and serving identity; a
//! stub kubelet on loopback serves the recorded pod list
//! (`crates/lightwell-agent/tests/fixtures/kubelet-pods.json`) with that
//! serving certificate to clients whose certificate the cluster CA signed;
//! py-spiffe runs inside a pod's cgroup, so the agent reads that pod's UID
//! from the kernel and asks the kubelet what the pod is.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lightwell_proto::CreateJoinTokenRequest;
use lightwell_testkit::kubelet::{PodCgroup, StubKubelet};
use lightwell_testkit::node::{Node, free_port, wait_until};
use lightwell_testkit::pki;
use lightwell_testkit::{Cli, TestServer};

const T: &str = "corp.example";
const NODE1: &str = "node1.corp.example";
/// What the kubelet is stubbed to say (4 pods).
const PODS: &[u8] = include_bytes!("../../../crates/lightwell-agent/tests/fixtures/kubelet-pods.json");
/// Namespace payments, service account worker, labels app=payments and
/// app.kubernetes.io/name=payments-api.
const PAYMENTS_POD: &str = "3f1c2a9e-7b4d-4e5f-9a8b-1c2d3e4f5a6b";
/// Namespace default, service account default, no labels.
const DEBUG_POD: &str = "c4d5e6f7-0819-4a2b-b3c4-d5e6f7081920";
/// Not in the kubelet's list.
const ABSENT_POD: &str = "5e5e5e5e-0000-4000-8000-00000000abcd";

const PAYMENTS: &str = "spiffe://corp.example/service/payments";
const PAYMENTS_LABEL: &str = "spiffe://corp.example/service/payments/label";
const ORDERS: &str = "spiffe://corp.example/service/orders";

/// py-spiffe: every SPIFFE ID the process gets, or the error and exit 3.
const PY_FETCH: &str = r#"
import os, sys
from spiffe import WorkloadApiClient
client = WorkloadApiClient(os.environ["SPIFFE_ENDPOINT_SOCKET"], default_timeout=20)
try:
    ctx = client.fetch_x509_context()
except Exception as e:
    print("ERROR", type(e).__name__, e)
    sys.exit(3)
for svid in ctx.x509_svids:
    print("SPIFFE_ID", svid.spiffe_id)
client.close()
"#;

/// A joined host that is a node of cluster `prod`, its agent running and
/// asking `kubelet` for pods.
struct K8sNode {
    _server: TestServer,
    cli: Cli,
    node: Node,
    kubelet: StubKubelet,
    /// Where the agent keeps the kubelet's identities.
    kubelet_dir: PathBuf,
}

/// The node; the stub kubelet serves with the node's own kubelet serving
/// certificate, or with `serving` (certificate, key) if given.
async fn k8s_node(serving: Option<(PathBuf, PathBuf)>) -> K8sNode {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    pki::host(&admin, T, "services", "payments", &[], &[]).await;
    pki::host(&admin, T, "services", "orders", &[], &[]).await;
    let cli = pki::admin_cli(&server, T);
    cli.json(&["k8s", "cluster", "create", "prod", "--api-server", "https://k8s.corp.example:6443"]);
    let hosts = server.scratch().join("hosts");
    std::fs::create_dir_all(&hosts).unwrap();
    // The token approves 127.0.0.1 (testkit joins with it), as in k8s_nodes.rs.
    let req =
        CreateJoinTokenRequest { hostname: Some(NODE1.into()), ips: vec!["127.0.0.1".into()], ..Default::default() };
    let token = admin.create_join_token(T, &req).await.unwrap().token.unwrap();
    let mut node = Node::new(&hosts, NODE1);
    let out = node.join(&server, T, Some(&token));
    assert!(out.status.success(), "join: {}", String::from_utf8_lossy(&out.stderr));
    cli.ok(&["k8s", "node", "add", "--cluster", "prod", "--machine", NODE1]);

    let port = free_port();
    let kubelet_dir = hosts.join("kubelet");
    let toml = node.state.join("agent.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str(&format!(
        "\n[[kubernetes]]\ncluster = \"prod\"\nclient_cert = \"{c}\"\nserving_cert = \"{s}\"\nserving_key = \"{k}\"\nca_file = \"{ca}\"\nkubelet_url = \"https://127.0.0.1:{port}\"\n",
        c = kubelet_dir.join("kubelet-client-current.pem").display(),
        s = kubelet_dir.join("kubelet.crt").display(),
        k = kubelet_dir.join("kubelet.key").display(),
        ca = kubelet_dir.join("ca.crt").display(),
    ));
    std::fs::write(&toml, text).unwrap();
    let out = node.agent_once();
    assert!(out.status.success(), "agent --once: {}", String::from_utf8_lossy(&out.stderr));
    let (cert, key) = serving.unwrap_or((kubelet_dir.join("kubelet.crt"), kubelet_dir.join("kubelet.key")));
    let kubelet = StubKubelet::start(port, &cert, &key, &kubelet_dir.join("ca.crt"), PODS.to_vec()).await;
    assert_eq!(kubelet.url(), format!("https://127.0.0.1:{port}"));

    node.start_agent();
    let socket = node.workload_socket();
    assert!(
        wait_until(Duration::from_secs(20), || socket.exists()),
        "the agent serves no socket: {}",
        std::fs::read_to_string(node.agent_log()).unwrap_or_default()
    );
    K8sNode { _server: server, cli, node, kubelet, kubelet_dir }
}

impl K8sNode {
    fn entry(&self, name: &str, service: &str, path: Option<&str>, selectors: &[&str]) {
        let mut args = vec!["workload", "create", name, "--service", service, "--host", NODE1];
        for s in selectors {
            args.extend(["--selector", s]);
        }
        if let Some(p) = path {
            args.extend(["--path", p]);
        }
        self.cli.ok(&args);
    }

    /// py-spiffe in a new container of pod `pod_uid` (`None`: in no pod):
    /// its SPIFFE IDs, sorted, or what it printed on failure.
    fn fetch(&self, pod_uid: Option<&str>) -> Result<Vec<String>, String> {
        let socket = format!("unix://{}", self.node.workload_socket().display());
        let cgroup = pod_uid.map(PodCgroup::new);
        let mut cmd = match &cgroup {
            Some(c) => c.command("python3", &["-c", PY_FETCH]),
            None => {
                let mut cmd = std::process::Command::new("python3");
                cmd.args(["-c", PY_FETCH]);
                cmd
            }
        };
        let out = cmd.env("SPIFFE_ENDPOINT_SOCKET", socket).output().unwrap();
        drop(cgroup);
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            return Err(said);
        }
        let mut ids: Vec<String> =
            said.lines().filter_map(|l| l.strip_prefix("SPIFFE_ID ")).map(str::to_string).collect();
        ids.sort();
        Ok(ids)
    }

    /// [`K8sNode::fetch`] until it gives `want` (the agent learns of new
    /// entries within seconds), at most 20 s; the last answer.
    fn fetch_until(&self, pod_uid: Option<&str>, want: &[&str]) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.fetch(pod_uid);
            if got.as_ref().is_ok_and(|ids| ids == want) || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.node.agent_log()).unwrap_or_default()
    }

    fn assert_denied(&self, pod_uid: Option<&str>, what: &str) {
        match self.fetch(pod_uid) {
            Err(said) => assert!(said.contains("no identity issued"), "{what}: {said}"),
            Ok(ids) => panic!("{what}: got {ids:?}\n{}", self.log()),
        }
    }
}

/// The uid this test (and the Python it starts) runs as.
fn my_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

fn subject_of(der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.subject().to_string()
}

/// A client of the stub trusting the cluster CA, with the PEM `identity` or none.
fn kubelet_client(ca: &Path, identity: Option<&Path>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder().tls_certs_only([ca]).no_proxy();
    if let Some(id) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(&std::fs::read(id).unwrap()).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_gets_the_svids_of_entries_that_select_its_namespace_service_account_and_labels() {
    let k = k8s_node(None).await;
    k.entry("payments-worker", "payments", None, &["k8s:ns:payments", "k8s:sa:worker"]);
    k.entry(
        "payments-label",
        "payments",
        Some("label"),
        &["k8s:pod-label:app:payments", "k8s:pod-label:app.kubernetes.io/name:payments-api"],
    );
    k.entry("other-ns", "orders", None, &["k8s:ns:other"]);

    // The payments pod: namespace and service account, and labels (one key
    // with '.' and '/'); not the entry of another namespace.
    let got = k.fetch_until(Some(PAYMENTS_POD), &[PAYMENTS, PAYMENTS_LABEL]);
    assert_eq!(got, Ok(vec![PAYMENTS.to_string(), PAYMENTS_LABEL.to_string()]), "{}", k.log());

    // The agent authenticated to the kubelet as the node.
    let clients = k.kubelet.clients();
    assert!(!clients.is_empty(), "the stub served the agent");
    let subject = subject_of(&clients[0]);
    assert!(subject.contains("CN=system:node:node1.corp.example") && subject.contains("O=system:nodes"), "{subject}");

    // A pod of another namespace with no labels matches none of them; a pod
    // the kubelet does not list gets nothing either.
    k.assert_denied(Some(DEBUG_POD), "the default namespace's pod");
    k.assert_denied(Some(ABSENT_POD), "a pod UID the kubelet does not list");
    assert!(k.log().contains("the pod is not in the kubelet's list"), "{}", k.log());

    // A process in no pod: denied, and the kubelet is not asked.
    let asked = k.kubelet.clients().len();
    k.assert_denied(None, "a process outside any pod");
    assert_eq!(k.kubelet.clients().len(), asked, "the kubelet is asked only for processes in a pod");

    // The stub, like the kubelet, serves only clients the cluster CA signed.
    let ca = k.kubelet_dir.join("ca.crt");
    let refused = k.kubelet.refused();
    let anonymous = kubelet_client(&ca, None).get(format!("{}/pods", k.kubelet.url())).send().await;
    assert!(anonymous.is_err(), "a client without a certificate is refused: {anonymous:?}");
    // The stub counts the refusal once its side of the handshake ends, maybe after the client's.
    for _ in 0..50 {
        if k.kubelet.refused() > refused {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(k.kubelet.refused(), refused + 1, "the stub refused the handshake");
    let as_node = kubelet_client(&ca, Some(&k.kubelet_dir.join("kubelet-client-current.pem")));
    let resp = as_node.get(format!("{}/pods", k.kubelet.url())).send().await.unwrap();
    assert_eq!(resp.status(), 200, "the same client with the node's certificate is served");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_kubelet_down_or_talking_nonsense_k8s_entries_are_denied_and_a_unix_entry_still_works() {
    let mut k = k8s_node(None).await;
    k.entry("payments-ns", "payments", None, &["k8s:ns:payments"]);
    let got = k.fetch_until(Some(PAYMENTS_POD), &[PAYMENTS]);
    assert_eq!(got, Ok(vec![PAYMENTS.to_string()]), "{}", k.log());

    // Down: once the list the agent holds is stale (2 s), no k8s selectors.
    k.kubelet.stop().await;
    std::thread::sleep(Duration::from_millis(2500));
    k.assert_denied(Some(PAYMENTS_POD), "the kubelet is down");
    assert!(k.log().contains("the kubelet's pods could not be read"), "{}", k.log());

    // An entry by uid still matches the same process.
    let uid = format!("unix:uid:{}", my_uid());
    k.entry("orders-uid", "orders", None, &[&uid]);
    let got = k.fetch_until(Some(PAYMENTS_POD), &[ORDERS]);
    assert_eq!(got, Ok(vec![ORDERS.to_string()]), "{}", k.log());

    // Back: both again.
    k.kubelet.restart().await;
    let got = k.fetch_until(Some(PAYMENTS_POD), &[ORDERS, PAYMENTS]);
    assert_eq!(got, Ok(vec![ORDERS.to_string(), PAYMENTS.to_string()]), "{}", k.log());

    // A kubelet answering something that is not a pod list is no better than none.
    k.kubelet.set_pods(br#"{"kind":"PodList","items":{"uid":"3f1c2a9e-7b4d-4e5f-9a8b-1c2d3e4f5a6b"}}"#.to_vec());
    std::thread::sleep(Duration::from_millis(2500));
    let got = k.fetch(Some(PAYMENTS_POD));
    assert_eq!(got, Ok(vec![ORDERS.to_string()]), "{}", k.log());
    assert!(k.log().contains("the kubelet's pod list does not parse"), "{}", k.log());
    assert!(!k.log().contains("PRIVATE KEY"), "no key material in the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kubelet_whose_certificate_the_cluster_ca_did_not_sign_is_not_believed() {
    let files = pki::Files::new();
    let impostor = files.openssl_self_signed("impostor", "/CN=system:node:node1.corp.example", false);
    let k = k8s_node(Some(impostor)).await;
    k.entry("payments-ns", "payments", None, &["k8s:ns:payments"]);
    let uid = format!("unix:uid:{}", my_uid());
    k.entry("orders-uid", "orders", None, &[&uid]);
    let got = k.fetch_until(Some(PAYMENTS_POD), &[ORDERS]);
    assert_eq!(got, Ok(vec![ORDERS.to_string()]), "only the uid entry matches: {}", k.log());
    assert!(k.kubelet.clients().is_empty(), "the agent never completed a request to it");
    assert!(k.log().contains("the kubelet's pods could not be read"), "{}", k.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_k8s_selectors_are_refused_over_rest_and_the_cli() {
    let server = TestServer::start();
    let admin = pki::tenant(&server, T, None).await;
    pki::host(&admin, T, "services", "orders", &[], &[]).await;
    pki::host(&admin, T, "machines", NODE1, &[NODE1], &[]).await;
    let cli = pki::admin_cli(&server, T);
    for (selector, why) in [
        ("k8s:ns:Payments", "a namespace is"),
        ("k8s:sa:", "the value is empty"),
        ("k8s:sa:a_b", "a service account name"),
        ("k8s:pod-label:app", "k8s:pod-label:KEY:VALUE"),
        ("k8s:pod-label:a/b/c:x", "a label key"),
        ("k8s:pod-label:app:x y", "a label value"),
    ] {
        let out =
            cli.run(&["workload", "create", "bad", "--service", "orders", "--host", NODE1, "--selector", selector]);
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success() && said.contains(why), "{selector}: {said}");
    }
    let out = cli.run(&[
        "workload",
        "create",
        "bad",
        "--service",
        "orders",
        "--host",
        NODE1,
        "--selector",
        "k8s:pod-label:app:a",
        "--selector",
        "k8s:pod-label:app:b",
    ]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success() && said.contains("one value of label app"), "{said}");

    let token = server.client().login(T, "administrator", pki::ADMIN_PASSWORD).await.unwrap().token;
    let resp = server
        .raw()
        .post(format!("{}/v1/tenants/{T}/workloads", server.url()))
        .bearer_auth(token)
        .json(&serde_json::json!({"name": "bad", "service": "orders", "hosts": [NODE1], "selectors": ["k8s:ns:-payments"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("a namespace is"), "{body}");
    assert!(admin.list_workloads(T).await.unwrap().is_empty(), "nothing was created");

    // Well-formed ones are kept as given.
    cli.ok(&[
        "workload",
        "create",
        "good",
        "--service",
        "orders",
        "--host",
        NODE1,
        "--selector",
        "k8s:ns:payments",
        "--selector",
        "k8s:pod-label:app.kubernetes.io/name:payments-api",
    ]);
    let shown = cli.json(&["workload", "show", "good"]);
    assert_eq!(
        shown["selectors"],
        serde_json::json!(["k8s:ns:payments", "k8s:pod-label:app.kubernetes.io/name:payments-api"])
    );
}
