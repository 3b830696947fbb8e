//! A Kubernetes node as the agent sees it, without Kubernetes: a stub
//! kubelet serving a recorded pod list on its authenticated port, and pods'
//! cgroups to run workload processes in.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the stub saw and serves, shared with its connections.
#[derive(Debug, Default)]
struct Shared {
    pods: Mutex<Vec<u8>>,
    /// The leaf certificate (DER) of every client served.
    clients: Mutex<Vec<Vec<u8>>>,
    /// Handshakes refused (no client certificate, or one the CA did not sign).
    refused: AtomicUsize,
}

/// HTTPS on `127.0.0.1:<port>` answering `GET /pods` with a pod list, as the
/// kubelet's port 10250 does: its serving certificate is given, and it
/// serves only clients whose certificate chains to the given CA (kubelet's
/// `clientCAFile`); everything else is 404.
#[derive(Debug)]
pub struct StubKubelet {
    port: u16,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl StubKubelet {
    /// Serves `pods` on `port` with the certificate chain and key in the PEM
    /// files `cert` and `key`, to clients verified against the PEM `client_ca`.
    pub async fn start(port: u16, cert: &Path, key: &Path, client_ca: &Path, pods: Vec<u8>) -> Self {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(cert).unwrap().collect::<Result<_, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(client_ca).unwrap() {
            roots.add(ca.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .unwrap();
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let shared = Arc::new(Shared { pods: Mutex::new(pods), ..Default::default() });
        let mut stub = Self { port, tls: Arc::new(tls), shared, task: None };
        stub.restart().await;
        stub
    }

    /// `https://127.0.0.1:<port>`, the agent's `kubelet_url`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Stops listening: connections are refused, as with a kubelet that is down.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut listener = TcpListener::bind(("127.0.0.1", self.port)).await;
        for _ in 0..50 {
            if listener.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            listener = TcpListener::bind(("127.0.0.1", self.port)).await;
        }
        let listener = listener.unwrap();
        let (tls, shared) = (tokio_rustls::TlsAcceptor::from(self.tls.clone()), self.shared.clone());
        self.task = Some(tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tls.clone(), tcp, shared.clone()));
            }
        }));
    }

    /// Serves `pods` from now on.
    pub fn set_pods(&self, pods: Vec<u8>) {
        *self.shared.pods.lock().unwrap() = pods;
    }

    /// The leaf certificates (DER) of the clients it served, in order.
    pub fn clients(&self) -> Vec<Vec<u8>> {
        self.shared.clients.lock().unwrap().clone()
    }

    /// How many TLS handshakes it refused.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }
}

impl Drop for StubKubelet {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// One connection: one request, then close.
async fn serve(tls: tokio_rustls::TlsAcceptor, tcp: tokio::net::TcpStream, shared: Arc<Shared>) {
    let mut stream = match tls.accept(tcp).await {
        Ok(s) => s,
        Err(_) => {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    if let Some(leaf) = stream.get_ref().1.peer_certificates().and_then(|c| c.first()) {
        shared.clients.lock().unwrap().push(leaf.to_vec());
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let (status, body) = match head.starts_with(b"GET /pods ") {
        true => ("200 OK", shared.pods.lock().unwrap().clone()),
        false => ("404 Not Found", b"404 page not found\n".to_vec()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}

/// A container's cgroup in a pod, laid out as the kubelet's cgroupfs driver
/// does (`kubepods/besteffort/pod<UID>/<container id>`), in the cgroup v1
/// `pids` hierarchy (or the unified one on cgroup v2 hosts): a process run
/// in it has that pod UID for the agent. Needs root; panics saying so
/// otherwise. Removed when dropped (once its processes have exited).
#[derive(Debug)]
pub struct PodCgroup {
    /// The hierarchy's root.
    root: PathBuf,
    /// The container's directory.
    dir: PathBuf,
}

impl PodCgroup {
    /// A new container of the pod `pod_uid`.
    pub fn new(pod_uid: &str) -> Self {
        let root = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]
            .into_iter()
            .map(PathBuf::from)
            .find(|r| r.join("cgroup.procs").exists())
            .expect("no cgroup hierarchy at /sys/fs/cgroup/pids (v1) or /sys/fs/cgroup (v2)");
        let uuid = || std::fs::read_to_string("/proc/sys/kernel/random/uuid").unwrap().trim().replace('-', "");
        let container = format!("{}{}", uuid(), uuid());
        let dir = root.join(format!("kubepods/besteffort/pod{pod_uid}/{container}"));
        // Another test may be removing a shared (empty) parent at this moment: try again.
        let mut made = std::fs::create_dir_all(&dir);
        for _ in 0..20 {
            if made.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            made = std::fs::create_dir_all(&dir);
        }
        if let Err(e) = made {
            panic!("cannot make the cgroup {} ({e}): moving a process into a pod's cgroup needs root", dir.display());
        }
        let cgroup = Self { root, dir };
        let out = cgroup.command("cat", &["/proc/self/cgroup"]).output().unwrap();
        let seen = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && seen.contains(&format!("/kubepods/besteffort/pod{pod_uid}/{container}")),
            "a process moved into {} is not there: {seen}{}",
            cgroup.dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        cgroup
    }

    /// The container id (64 hex digits), as `cgroup:container-id` selects it.
    pub fn container_id(&self) -> String {
        self.dir.file_name().unwrap().to_string_lossy().into_owned()
    }

    /// `program args...` to be run in this cgroup: a shell moves itself in,
    /// then becomes the program.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\""]).arg(&self.dir).arg(program).args(args);
        cmd
    }
}

impl Drop for PodCgroup {
    fn drop(&mut self) {
        // The container, then its parents while empty (another test may still use them).
        let mut dir = self.dir.as_path();
        while dir.starts_with(self.root.join("kubepods")) && std::fs::remove_dir(dir).is_ok() {
            let Some(parent) = dir.parent() else { break };
            dir = parent;
        }
    }
}
