//! `lightwell k8s`: clusters, nodes, kubeadm PKI export and kubeconfigs.
//!
//! Every private key is generated here, on the host that will use it; only
//! CSRs travel. The one exception is `pki export` without `--external-ca`,
//! which fetches the cluster CA's key so the cluster can sign kubelet CSRs.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use lightwell_ca::{KeyAlgorithm, SigningKey};
use lightwell_client::Client;
use lightwell_proto::{
    CertificateInfo, ClusterInfo, ComponentCertificateRequest, CreateClusterRequest, IssueCertificateRequest,
};
use zeroize::Zeroizing;

use super::ca::cert_text;
use crate::args::{
    ClusterCommand, K8sCommand, KubeconfigArgs, NodeCommand, PkiCommand, PkiExportArgs, WebhookConfigArgs,
};
use crate::context::Context;
use crate::output;

/// kubeadm's control-plane certificates: component and file base name.
const COMPONENTS: [(&str, &str); 7] = [
    ("apiserver", "apiserver"),
    ("apiserver-kubelet-client", "apiserver-kubelet-client"),
    ("front-proxy-client", "front-proxy-client"),
    ("etcd-server", "etcd/server"),
    ("etcd-peer", "etcd/peer"),
    ("etcd-healthcheck-client", "etcd/healthcheck-client"),
    ("apiserver-etcd-client", "apiserver-etcd-client"),
];

/// kubeadm's kubeconfig files: component, file name, and the user name in the file.
const KUBECONFIGS: [(&str, &str, &str); 5] = [
    ("admin", "admin.conf", "kubernetes-admin"),
    ("super-admin", "super-admin.conf", "kubernetes-super-admin"),
    ("controller-manager", "controller-manager.conf", "system:kube-controller-manager"),
    ("scheduler", "scheduler.conf", "system:kube-scheduler"),
    ("kubelet", "kubelet.conf", "system:node"),
];

fn cluster_text(c: &ClusterInfo) -> String {
    format!(
        "name: {}\napi server: {}\ndns domain: {}\nservice cidr: {} (kubernetes service {})\nname constraints: {}\ngroup mapping: {}\nca: {} (id {}; key exportable: {})\nfront-proxy ca: {} (id {})\netcd ca: {} (id {})\nnodes: {}\ncreated: {}",
        c.name,
        c.api_server.as_deref().unwrap_or("-"),
        c.dns_domain,
        c.service_cidr,
        c.service_ip,
        if c.name_constraints.is_empty() { "-".into() } else { c.name_constraints.join(", ") },
        if c.group_mapping.is_empty() { "all groups as is".into() } else { c.group_mapping.join(", ") },
        c.ca,
        c.ca_id,
        c.ca_key_exportable,
        c.front_proxy_ca,
        c.front_proxy_ca_id,
        c.etcd_ca,
        c.etcd_ca_id,
        c.nodes.join(", "),
        c.created_at
    )
}

fn clusters_text(list: &Vec<ClusterInfo>) -> String {
    let mut out = vec!["NAME  API SERVER  CA  NODES".to_string()];
    for c in list {
        out.push(format!("{}  {}  {}  {}", c.name, c.api_server.as_deref().unwrap_or("-"), c.ca, c.nodes.len()));
    }
    out.join("\n")
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    lightwell_agent::files::write_atomic(path, bytes, mode).with_context(|| format!("writing {}", path.display()))
}

/// A new P-256 key, made here, and a CSR for it.
fn key_and_csr(cn: &str) -> anyhow::Result<(Zeroizing<String>, String)> {
    Ok(lightwell_agent::enroll::key_and_csr("p256", cn)?)
}

/// Runs `lightwell k8s`.
pub(crate) async fn k8s(ctx: &Context, cmd: K8sCommand, json: bool) -> anyhow::Result<()> {
    let (client, tenant) = ctx.tenant_client()?;
    match cmd {
        K8sCommand::Cluster(ClusterCommand::Create(a)) => {
            let req = CreateClusterRequest {
                name: a.name,
                api_server: a.api_server,
                dns_domain: Some(a.dns_domain),
                service_cidr: Some(a.service_cidr),
                name_constraints: a.name_constraints,
                group_mapping: a.group_mapping,
                allow_ca_key_export: a.allow_ca_key_export,
            };
            output::print(json, &client.create_cluster(&tenant, &req).await?, cluster_text);
        }
        K8sCommand::Cluster(ClusterCommand::List) => {
            output::print(json, &client.list_clusters(&tenant).await?, clusters_text)
        }
        K8sCommand::Cluster(ClusterCommand::Show { name }) => {
            output::print(json, &client.cluster(&tenant, &name).await?, cluster_text)
        }
        K8sCommand::Cluster(ClusterCommand::Delete { name }) => {
            let resp = client.delete_cluster(&tenant, &name).await?;
            output::print(json, &resp, |r| {
                format!("deleted cluster {name}: its CAs and {} certificates are revoked", r.revoked.len())
            });
        }
        K8sCommand::Node(NodeCommand::Add(a)) => {
            output::print(json, &client.add_cluster_node(&tenant, &a.cluster, &a.machine).await?, cluster_text)
        }
        K8sCommand::Node(NodeCommand::Remove(a)) => {
            output::print(json, &client.remove_cluster_node(&tenant, &a.cluster, &a.machine).await?, cluster_text)
        }
        K8sCommand::Pki(PkiCommand::Export(a)) => pki_export(&client, &tenant, a, json).await?,
        K8sCommand::Kubeconfig(a) => kubeconfig(&client, &tenant, a, json).await?,
        K8sCommand::WebhookConfig(a) => webhook_config(ctx, &tenant, a, json)?,
    }
    Ok(())
}

/// The kubeconfig-format webhook configuration: Lightwell's token review
/// endpoint for the tenant, trusted by the API's CA. No user credential:
/// the endpoint needs none.
fn webhook_config_yaml(server: &str, tenant: &str, ca_pem: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let url = format!("{}/k8s/{tenant}/token-review", server.trim_end_matches('/'));
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: \"lightwell\"\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: \"kube-apiserver\"\n  user: {{}}\ncontexts:\n- name: \"webhook\"\n  context:\n    cluster: \"lightwell\"\n    user: \"kube-apiserver\"\ncurrent-context: \"webhook\"\n",
        url = q(&url),
        ca = q(&b64(ca_pem)),
    )
}

/// Writes the webhook configuration for kube-apiserver.
fn webhook_config(ctx: &Context, tenant: &str, a: WebhookConfigArgs, json: bool) -> anyhow::Result<()> {
    let server = ctx.server()?.split(',').next().unwrap_or_default().to_string();
    let ca_pem = match &a.server_ca {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        None => ctx.ca_pem().map(str::to_string).ok_or_else(|| {
            anyhow::anyhow!(
                "this CLI trusts the server by fingerprint: pass --server-ca FILE with the API's CA certificate"
            )
        })?,
    };
    if !ca_pem.contains("-----BEGIN CERTIFICATE-----") {
        bail!("the server CA file holds no PEM certificate");
    }
    write(&a.out, webhook_config_yaml(&server, tenant, &ca_pem).as_bytes(), 0o644)?;
    output::done(json, &format!("wrote {}", a.out.display()));
    Ok(())
}

/// A key made here and the control-plane certificate the server issues for it.
async fn component_certificate(
    client: &Client,
    tenant: &str,
    cluster: &str,
    a: &PkiExportArgs,
    component: &str,
) -> anyhow::Result<(Zeroizing<String>, CertificateInfo)> {
    // No name in the CSR: the server gives each component kubeadm's subject.
    let (key, csr) = key_and_csr("")?;
    let req = ComponentCertificateRequest {
        component: component.into(),
        csr,
        control_plane: a.control_plane.clone(),
        ttl: a.ttl.clone(),
    };
    let cert = client.issue_component(tenant, cluster, &req).await.with_context(|| format!("issuing {component}"))?;
    Ok((key, cert))
}

/// Writes kubeadm's PKI directory: the three CA certificates, every
/// control-plane certificate with a key made here, the service-account key
/// pair (kept if present: replacing it would invalidate every token), and
/// without `--external-ca` the cluster CA key.
async fn pki_export(client: &Client, tenant: &str, a: PkiExportArgs, json: bool) -> anyhow::Result<()> {
    let cluster = client.cluster(tenant, &a.cluster).await?;
    let dir = &a.dir;
    std::fs::create_dir_all(dir.join("etcd")).with_context(|| format!("creating {}", dir.display()))?;
    let mut written: Vec<PathBuf> = Vec::new();
    let put = |written: &mut Vec<PathBuf>, name: &str, bytes: &[u8], mode: u32| -> anyhow::Result<()> {
        let path = dir.join(name);
        write(&path, bytes, mode)?;
        written.push(path);
        Ok(())
    };
    put(&mut written, "ca.crt", cluster.ca_pem.as_bytes(), 0o644)?;
    put(&mut written, "front-proxy-ca.crt", cluster.front_proxy_ca_pem.as_bytes(), 0o644)?;
    put(&mut written, "etcd/ca.crt", cluster.etcd_ca_pem.as_bytes(), 0o644)?;
    // kubeadm's node name, for the user name in kubelet.conf: the first control-plane host name.
    let node_name = a
        .control_plane
        .iter()
        .find(|h| h.parse::<std::net::IpAddr>().is_err())
        .or(a.control_plane.first())
        .map(|h| h.to_ascii_lowercase());
    for (component, base) in COMPONENTS {
        let (key, cert) = component_certificate(client, tenant, &cluster.name, &a, component).await?;
        // Key first: a reader that sees the new certificate also finds its key.
        put(&mut written, &format!("{base}.key"), key.as_bytes(), 0o600)?;
        put(&mut written, &format!("{base}.crt"), cert.pem.as_bytes(), 0o644)?;
    }
    // kubeadm's kubeconfig files, which its external CA mode needs as well.
    let api_server = cluster.api_server.clone();
    let kubeconfig_dir = a.kubeconfig_dir.clone().or_else(|| dir.parent().map(Path::to_path_buf));
    match (&api_server, &kubeconfig_dir) {
        (Some(server), Some(kdir)) => {
            std::fs::create_dir_all(kdir).with_context(|| format!("creating {}", kdir.display()))?;
            for (component, file, user) in KUBECONFIGS {
                if component == "super-admin" && !a.super_admin {
                    continue;
                }
                // The user's name in the file, as kubeadm writes it (the certificate's CN).
                let user = match component {
                    "kubelet" => format!("{user}:{}", node_name.clone().unwrap_or_default()),
                    _ => user.to_string(),
                };
                let (key, cert) = component_certificate(client, tenant, &cluster.name, &a, component).await?;
                let doc = kubeconfig_yaml(&cluster.name, server, &cluster.ca_pem, &user, &cert.pem, &key);
                let path = kdir.join(file);
                write(&path, doc.as_bytes(), 0o600)?;
                written.push(path);
            }
        }
        _ => eprintln!(
            "note: no kubeconfig files written: the cluster has no API server URL (set it with `k8s cluster create --api-server`)"
        ),
    }
    if !dir.join("sa.key").exists() {
        let sa = SigningKey::generate(KeyAlgorithm::EcdsaP256)?;
        put(&mut written, "sa.key", sa.to_pkcs8_pem().as_bytes(), 0o600)?;
        put(&mut written, "sa.pub", lightwell_ca::pem::encode("PUBLIC KEY", &sa.public_key_der()).as_bytes(), 0o644)?;
    }
    if a.external_ca {
        // kubeadm detects external CA mode by a missing ca.key: remove a stale one.
        match std::fs::remove_file(dir.join("ca.key")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", dir.join("ca.key").display()));
            }
            _ => {}
        }
    } else {
        let ca = client.cluster_ca_key(tenant, &cluster.name).await?;
        let key = Zeroizing::new(ca.key);
        put(&mut written, "ca.key", key.as_bytes(), 0o600)?;
    }
    let files: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    output::print(json, &serde_json::json!({ "cluster": cluster.name, "dir": dir, "files": files }), |_| {
        format!(
            "wrote kubeadm's PKI for cluster {} to {} ({}):\n{}",
            cluster.name,
            dir.display(),
            if a.external_ca { "external CA mode, no CA key" } else { "with the cluster CA key" },
            files.join("\n")
        )
    });
    Ok(())
}

/// A double-quoted YAML scalar (JSON string syntax is valid YAML).
fn q(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The kubeconfig document; every scalar is quoted, so no value can change its structure.
fn kubeconfig_yaml(cluster: &str, server: &str, ca_pem: &str, user: &str, chain_pem: &str, key_pem: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let context = format!("{user}@{cluster}");
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {c}\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {ctx}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\ncontexts:\n- name: {ctx}\n  context:\n    cluster: {c}\n    user: {ctx}\ncurrent-context: {ctx}\npreferences: {{}}\n",
        c = q(cluster),
        server = q(server),
        ca = q(&b64(ca_pem)),
        ctx = q(&context),
        cert = q(&b64(chain_pem)),
        key = q(&b64(key_pem)),
    )
}

/// Writes a kubeconfig with a fresh client certificate for the logged-in user.
async fn kubeconfig(client: &Client, tenant: &str, a: KubeconfigArgs, json: bool) -> anyhow::Result<()> {
    let cluster = client.cluster(tenant, &a.cluster).await?;
    let Some(server) = a.api_server.clone().or_else(|| cluster.api_server.clone()) else {
        bail!("cluster {} has no API server URL; give --api-server URL", cluster.name);
    };
    if !server.starts_with("https://") {
        bail!("the API server URL must start with https://");
    }
    let me = client.whoami().await?;
    let (key, csr) = key_and_csr(&me.name)?;
    let req = IssueCertificateRequest {
        csr,
        profile: Some("k8s-user".into()),
        ttl: Some(a.ttl.clone()),
        principal: None,
        cluster: Some(cluster.name.clone()),
    };
    let cert = client.issue_certificate(tenant, &req).await?;
    let doc = kubeconfig_yaml(&cluster.name, &server, &cluster.ca_pem, &me.name, &cert.chain_pem, &key);
    write(&a.out, doc.as_bytes(), 0o600)?;
    output::print(json, &cert, |c| format!("{}\nwrote {}", cert_text(c), a.out.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_values_cannot_break_the_yaml() {
        let doc = kubeconfig_yaml("prod", "https://k8s:6443\nkind: Evil", "CA", "alice", "CERT", "KEY");
        assert!(doc.contains("server: \"https://k8s:6443\\nkind: Evil\""));
        assert_eq!(doc.matches("\nkind:").count(), 1);
    }
}
