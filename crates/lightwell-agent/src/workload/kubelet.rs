//! The kubelet's view of this node's pods, for the `k8s:ns`, `k8s:sa` and
//! `k8s:pod-label` selectors (as SPIRE's k8s workload attestor).
//!
//! The pod UID comes from the cgroup path ([`super::attest`]); what the pod
//! is (namespace, service account, labels) only the kubelet knows. The
//! agent asks it, `GET <kubelet_url>/pods` (a `v1.PodList`), with the
//! kubelet client identity it keeps for the cluster (`client_cert` of the
//! `[[kubernetes]]` entry) and believes only a kubelet whose serving
//! certificate chains to the cluster CA (`ca_file`) and names this machine
//! (`hostname`), as SPIRE checks the host name when it reaches the kubelet
//! on 127.0.0.1.
//!
//! The list is asked for only when a workload has a pod UID and an entry
//! selects by one of these kinds; it is kept [`FRESH`] (pods come and go,
//! labels change), and asked for again when a UID is not in it, at most
//! every [`REFETCH_AFTER`]. A kubelet that is down or slow (more than
//! [`TIMEOUT`]), an answer over [`MAX_BODY`] or one that does not parse,
//! and a pod not in the list all mean the same: no k8s facts, so entries
//! that need them do not match. Each is logged, without the credentials.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::attest::Pod;
use crate::config::KubeletIdentity;

/// Longest the kubelet may take to answer.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Largest pod list read: a node runs at most a few hundred pods, each a
/// few KiB of JSON.
const MAX_BODY: usize = 16 << 20;
/// How long a pod list is believed.
const FRESH: Duration = Duration::from_secs(2);
/// How soon a UID missing from the list makes the agent ask again.
const REFETCH_AFTER: Duration = Duration::from_millis(500);

/// Why the pod list could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KubeletError {
    /// The client certificate or the cluster CA could not be read or used.
    #[error("{0}")]
    Credentials(String),
    /// The kubelet could not be reached, or the TLS handshake failed.
    #[error("{0}")]
    Transport(String),
    /// The kubelet answered with another status than 200.
    #[error("the kubelet answered HTTP {status}{hint}", status = .0, hint = status_hint(*.0))]
    Status(u16),
    /// The answer is larger than [`MAX_BODY`].
    #[error("the kubelet's answer is over {} MiB", MAX_BODY >> 20)]
    TooLarge,
    /// The answer is not a pod list.
    #[error("the kubelet's pod list does not parse: {0}")]
    Malformed(String),
}

/// What a refusal usually means: the kubelet authorises `/pods` as
/// `nodes/pods` (`nodes/proxy` before Kubernetes 1.36), which the Node
/// authorizer does not grant to node identities.
fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => " (the node's client certificate needs get on nodes/pods, nodes/proxy before Kubernetes 1.36)",
        _ => "",
    }
}

/// The fields of a `v1.PodList` that selectors use; everything else is ignored.
#[derive(Deserialize)]
struct PodList {
    /// `null` when the node runs no pod (Go marshals an empty slice so).
    items: Option<Vec<PodItem>>,
}

#[derive(Deserialize)]
struct PodItem {
    metadata: Metadata,
    #[serde(default)]
    spec: Option<Spec>,
}

#[derive(Deserialize)]
struct Metadata {
    uid: String,
    namespace: String,
    #[serde(default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Spec {
    #[serde(default, rename = "serviceAccountName")]
    service_account_name: Option<String>,
}

/// The pods of a `GET /pods` answer by UID (lower case). A list that does
/// not parse, or names one UID twice, is refused whole: it is not what a
/// kubelet sends.
pub(crate) fn parse_pods(body: &[u8]) -> Result<HashMap<String, Pod>, KubeletError> {
    if body.len() > MAX_BODY {
        return Err(KubeletError::TooLarge);
    }
    let list: PodList = serde_json::from_slice(body).map_err(|e| KubeletError::Malformed(e.to_string()))?;
    let mut pods = HashMap::new();
    for item in list.items.unwrap_or_default() {
        let uid = item.metadata.uid.to_ascii_lowercase();
        let pod = Pod {
            namespace: item.metadata.namespace,
            service_account: item.spec.and_then(|s| s.service_account_name).filter(|s| !s.is_empty()),
            labels: item.metadata.labels.unwrap_or_default(),
        };
        if pods.insert(uid.clone(), pod).is_some() {
            return Err(KubeletError::Malformed(format!("two pods have the UID {uid:?}")));
        }
    }
    Ok(pods)
}

/// A pod list and when it was read.
#[derive(Debug)]
struct Cached {
    at: Instant,
    pods: Arc<HashMap<String, Pod>>,
}

impl Cached {
    /// What the list held at `now` says about `uid`: `Some(Some(pod))` it
    /// is there and the list fresh, `Some(None)` it was not there in a list
    /// read too recently to ask again, `None` ask the kubelet.
    fn answer(&self, uid: &str, now: Instant) -> Option<Option<Pod>> {
        let age = now.saturating_duration_since(self.at);
        match self.pods.get(uid) {
            Some(pod) if age < FRESH => Some(Some(pod.clone())),
            None if age < REFETCH_AFTER => Some(None),
            _ => None,
        }
    }
}

/// One cluster's kubelet on this host.
#[derive(Debug)]
pub(crate) struct Kubelet {
    cluster: String,
    pods_url: String,
    client_cert: PathBuf,
    ca_file: PathBuf,
    hostname: String,
    /// One request at a time; callers waiting meanwhile get its answer.
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl Kubelet {
    /// The kubelet of `identity`'s cluster, whose serving certificate must
    /// name `hostname`.
    pub(crate) fn new(identity: &KubeletIdentity, hostname: &str) -> Self {
        Self {
            cluster: identity.cluster.clone(),
            pods_url: format!("{}/pods", identity.kubelet_url.trim_end_matches('/')),
            client_cert: identity.client_cert.clone(),
            ca_file: identity.ca_file.clone(),
            hostname: hostname.to_string(),
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// The pod with UID `uid` (lower case), if the kubelet runs it.
    pub(crate) async fn pod(&self, uid: &str) -> Option<Pod> {
        let mut cache = self.cache.lock().await;
        if let Some(known) = cache.as_ref().and_then(|c| c.answer(uid, Instant::now())) {
            return known;
        }
        let pods = match self.fetch().await {
            Ok(pods) => pods,
            Err(e) => {
                tracing::warn!(
                    cluster = %self.cluster, kubelet = %self.pods_url, error = %e,
                    "the kubelet's pods could not be read: workloads get no k8s:ns, k8s:sa or k8s:pod-label selectors"
                );
                HashMap::new()
            }
        };
        let found = pods.get(uid).cloned();
        if found.is_none() && !pods.is_empty() {
            tracing::warn!(cluster = %self.cluster, pod_uid = uid, "the pod is not in the kubelet's list: no k8s selectors");
        }
        *cache = Some(Cached { at: Instant::now(), pods: Arc::new(pods) });
        found
    }

    async fn fetch(&self) -> Result<HashMap<String, Pod>, KubeletError> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(self.tls()?)
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            // The kubelet is on this host: never through a proxy, never elsewhere.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| KubeletError::Transport(chain(&e)))?;
        let resp = http.get(&self.pods_url).send().await.map_err(|e| KubeletError::Transport(chain(&e)))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(KubeletError::Status(resp.status().as_u16()));
        }
        parse_pods(&read_bounded(resp).await?)
    }

    /// Mutual TLS as the kubelet client identity, read afresh on every
    /// request (the agent renews it), trusting only the cluster CA.
    fn tls(&self) -> Result<rustls::ClientConfig, KubeletError> {
        let bad = |path: &PathBuf, why: &dyn std::fmt::Display| {
            KubeletError::Credentials(format!("{}: {why}", path.display()))
        };
        let identity = Zeroizing::new(std::fs::read(&self.client_cert).map_err(|e| bad(&self.client_cert, &e))?);
        let ca = std::fs::read(&self.ca_file).map_err(|e| bad(&self.ca_file, &e))?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&ca) {
            roots.add(cert.map_err(|e| bad(&self.ca_file, &e))?).map_err(|e| bad(&self.ca_file, &e))?;
        }
        if roots.is_empty() {
            return Err(bad(&self.ca_file, &"no CA certificate"));
        }
        let chain = CertificateDer::pem_slice_iter(&identity)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(&self.client_cert, &e))?;
        // Named by its file only: the message must not quote the key.
        let key =
            PrivateKeyDer::from_pem_slice(&identity).map_err(|_| bad(&self.client_cert, &"no usable private key"))?;
        let name = ServerName::try_from(self.hostname.clone()).map_err(|_| {
            KubeletError::Credentials(format!("host name {:?} cannot name a TLS server", self.hostname))
        })?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| bad(&self.ca_file, &e))?;
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| KubeletError::Credentials(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ThisHost { webpki, name }))
            .with_client_auth_cert(chain, key)
            .map_err(|e| bad(&self.client_cert, &e))
    }
}

/// The whole error chain: the TLS reason is deep inside reqwest's error.
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

/// The body, refused once it passes [`MAX_BODY`] (announced or streamed).
async fn read_bounded(mut resp: reqwest::Response) -> Result<Vec<u8>, KubeletError> {
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(KubeletError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| KubeletError::Transport(chain(&e)))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(KubeletError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Verifies the kubelet's chain against the cluster CA, for this machine's
/// name whatever address `kubelet_url` names (127.0.0.1 by default).
#[derive(Debug)]
struct ThisHost {
    webpki: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for ThisHost {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _url_host: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.webpki.verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A `GET /pods` answer in the kubelet's format: a Deployment's pod, a
    /// static (mirror) pod without a service account, a pod with no labels,
    /// a DaemonSet's pod with prefixed label keys.
    const RECORDED: &[u8] = include_bytes!("../../tests/fixtures/kubelet-pods.json");
    const PAYMENTS: &str = "3f1c2a9e-7b4d-4e5f-9a8b-1c2d3e4f5a6b";
    const ETCD: &str = "0b7e6c52-94a1-4d3b-8f0e-5a6b7c8d9e0f";

    #[test]
    fn the_recorded_pod_list_gives_namespace_service_account_and_labels() {
        let pods = parse_pods(RECORDED).unwrap();
        assert_eq!(pods.len(), 4);
        let p = &pods[PAYMENTS];
        assert_eq!(p.namespace, "payments");
        assert_eq!(p.service_account.as_deref(), Some("worker"));
        assert_eq!(p.labels["app"], "payments");
        assert_eq!(p.labels["app.kubernetes.io/name"], "payments-api");
        assert_eq!(p.labels["pod-template-hash"], "7d9f8b6c5d");
        let etcd = &pods[ETCD];
        assert_eq!(etcd.namespace, "kube-system");
        assert_eq!(etcd.service_account, None, "a static pod has no service account");
        assert_eq!(etcd.labels["component"], "etcd");
        let bare = pods.values().find(|p| p.namespace == "default").unwrap();
        assert!(bare.labels.is_empty());
        assert_eq!(bare.service_account.as_deref(), Some("default"));
        let ds = pods.values().find(|p| p.namespace == "monitoring").unwrap();
        assert_eq!(ds.labels["controller-revision-hash"], "6b8f9c7d4e");
        assert_eq!(ds.labels["app.kubernetes.io/component"], "exporter");
    }

    #[test]
    fn an_empty_node_and_unknown_fields_are_fine() {
        assert!(parse_pods(br#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":null}"#).unwrap().is_empty());
        assert!(parse_pods(br#"{"items":[]}"#).unwrap().is_empty());
        let one = br#"{"items":[{"metadata":{"uid":"ABC","namespace":"n","new":1},"spec":{"x":[1]},"status":{}}]}"#;
        let pods = parse_pods(one).unwrap();
        assert_eq!(pods["abc"].namespace, "n", "UIDs are kept in lower case, as the cgroup path gives them");
        assert_eq!(pods["abc"].service_account, None);
    }

    #[test]
    fn hostile_pod_lists_are_refused_whole() {
        for (body, why) in [
            (&b"not json"[..], "does not parse"),
            (b"", "does not parse"),
            (b"[]", "does not parse"),
            (br#"{"items":{}}"#, "does not parse"),
            (br#"{"items":[{"metadata":{"uid":1,"namespace":"n"}}]}"#, "does not parse"),
            (br#"{"items":[{"metadata":{"uid":"u"}}]}"#, "does not parse"),
            (br#"{"items":[{"metadata":{"uid":"u","namespace":"n","labels":{"a":1}}}]}"#, "does not parse"),
            (br#"{"items":[{"metadata":{"uid":"u","namespace":"n","labels":["a"]}}]}"#, "does not parse"),
            (
                br#"{"items":[{"metadata":{"uid":"u","namespace":"n"},"spec":{"serviceAccountName":7}}]}"#,
                "does not parse",
            ),
            (
                br#"{"items":[{"metadata":{"uid":"u","namespace":"a"}},{"metadata":{"uid":"U","namespace":"b"}}]}"#,
                "two pods",
            ),
            (br#"{"items":[{"metadata":{"uid":"u","namespace":"n"}}"#, "does not parse"),
        ] {
            let err = parse_pods(body).unwrap_err().to_string();
            assert!(err.contains(why), "{}: {err}", String::from_utf8_lossy(body));
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_pods(deep.as_bytes()).is_err(), "nesting is bounded by serde_json");
        let huge = vec![b' '; MAX_BODY + 1];
        assert!(matches!(parse_pods(&huge), Err(KubeletError::TooLarge)));
        assert!(KubeletError::Status(403).to_string().contains("get on nodes/pods"), "a refusal says what is missing");
        assert_eq!(KubeletError::Status(500).to_string(), "the kubelet answered HTTP 500");
    }

    #[test]
    fn a_list_is_believed_briefly_and_a_missing_uid_asked_for_again_soon() {
        let at = Instant::now();
        let pods = parse_pods(RECORDED).unwrap();
        let cached = Cached { at, pods: Arc::new(pods) };
        assert_eq!(cached.answer(PAYMENTS, at).unwrap().unwrap().namespace, "payments");
        assert_eq!(cached.answer(PAYMENTS, at + FRESH), None, "a stale list is asked for again");
        assert_eq!(cached.answer("absent", at), Some(None), "just asked: not again at once");
        assert_eq!(cached.answer("absent", at + REFETCH_AFTER), None, "then asked again");
    }

    /// Serves `head` then `body_len` bytes of `x` over plain HTTP once.
    async fn serve_once(head: String, body_len: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/pods", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(head.as_bytes()).await;
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = body_len;
            while left > 0 {
                let n = left.min(chunk.len());
                if s.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
                left -= n;
            }
        });
        url
    }

    #[tokio::test]
    async fn a_huge_answer_is_refused_whether_announced_or_streamed() {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let announced = serve_once(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", MAX_BODY + 1), 0).await;
        let resp = client.get(&announced).send().await.unwrap();
        assert!(matches!(read_bounded(resp).await, Err(KubeletError::TooLarge)));
        let streamed = serve_once("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".into(), MAX_BODY + 1).await;
        let resp = client.get(&streamed).send().await.unwrap();
        assert!(matches!(read_bounded(resp).await, Err(KubeletError::TooLarge)));
        let small = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n".into(), 3).await;
        let resp = client.get(&small).send().await.unwrap();
        assert_eq!(read_bounded(resp).await.unwrap(), b"xxx");
    }
}
