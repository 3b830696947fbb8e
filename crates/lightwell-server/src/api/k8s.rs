//! Kubernetes clusters: their CAs, nodes, control-plane certificates and CA key.

use axum::extract::State;
use axum::http::StatusCode;
use lightwell_core::clock::rfc3339;
use lightwell_core::{ClusterView, Component, ComponentRequest, NewCluster};
use lightwell_proto::{
    AddNodeRequest, CertificateInfo, ClusterCaKey, ClusterInfo, ComponentCertificateRequest, CreateClusterRequest,
    ErrorBody, RevokeResponse,
};

use super::AppState;
use super::auth::Auth;
use super::ca::{certificate_info, decode_csr};
use super::error::{ApiJson, ApiPath, ApiResult};

fn cluster_info(v: &ClusterView) -> ClusterInfo {
    ClusterInfo {
        name: v.name.clone(),
        api_server: v.api_server.clone(),
        dns_domain: v.dns_domain.clone(),
        service_cidr: v.service_cidr.clone(),
        service_ip: v.service_ip.clone(),
        name_constraints: v.name_constraints.clone(),
        group_mapping: v.group_mapping.clone(),
        ca: v.ca.info.name.clone(),
        ca_id: v.ca.info.id.to_string(),
        front_proxy_ca_id: v.front_proxy_ca.info.id.to_string(),
        etcd_ca_id: v.etcd_ca.info.id.to_string(),
        front_proxy_ca: v.front_proxy_ca.info.name.clone(),
        etcd_ca: v.etcd_ca.info.name.clone(),
        ca_pem: v.ca.certificate.to_pem(),
        front_proxy_ca_pem: v.front_proxy_ca.certificate.to_pem(),
        etcd_ca_pem: v.etcd_ca.certificate.to_pem(),
        nodes: v.nodes.clone(),
        ca_key_exportable: v.ca_key_exportable,
        created_at: rfc3339(v.created_at),
    }
}

/// Create a cluster: its CA, front-proxy CA and etcd CA under the tenant root.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/k8s/clusters", tag = "kubernetes", params(("tenant" = String, Path)),
    request_body = CreateClusterRequest,
    responses((status = 201, body = ClusterInfo), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<CreateClusterRequest>,
) -> ApiResult<(StatusCode, axum::Json<ClusterInfo>)> {
    let new = NewCluster {
        name: req.name,
        api_server: req.api_server,
        dns_domain: req.dns_domain,
        service_cidr: req.service_cidr,
        name_constraints: req.name_constraints,
        group_mapping: req.group_mapping,
        allow_ca_key_export: req.allow_ca_key_export,
    };
    let v = state.service.create_cluster(&actor, &tenant, new).await?;
    Ok((StatusCode::CREATED, axum::Json(cluster_info(&v))))
}

/// List the tenant's clusters.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/k8s/clusters", tag = "kubernetes", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<ClusterInfo>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<axum::Json<Vec<ClusterInfo>>> {
    Ok(axum::Json(state.service.list_clusters(&actor, &tenant).await?.iter().map(cluster_info).collect()))
}

/// Show a cluster.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/k8s/clusters/{cluster}", tag = "kubernetes",
    params(("tenant" = String, Path), ("cluster" = String, Path)),
    responses((status = 200, body = ClusterInfo), (status = 404, body = ErrorBody)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, cluster)): ApiPath<(String, String)>,
) -> ApiResult<axum::Json<ClusterInfo>> {
    Ok(axum::Json(cluster_info(&state.service.cluster(&actor, &tenant, &cluster).await?)))
}

/// Delete a cluster: its CAs are revoked, so every certificate they issued stops verifying.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/k8s/clusters/{cluster}", tag = "kubernetes",
    params(("tenant" = String, Path), ("cluster" = String, Path)),
    responses((status = 200, body = RevokeResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, cluster)): ApiPath<(String, String)>,
) -> ApiResult<axum::Json<RevokeResponse>> {
    let revoked = state.service.delete_cluster(&actor, &tenant, &cluster).await?;
    Ok(axum::Json(RevokeResponse { revoked }))
}

/// Make a joined machine a node of the cluster (it may then obtain kubelet identities).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/k8s/clusters/{cluster}/nodes", tag = "kubernetes",
    params(("tenant" = String, Path), ("cluster" = String, Path)), request_body = AddNodeRequest,
    responses((status = 200, body = ClusterInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn add_node(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, cluster)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<AddNodeRequest>,
) -> ApiResult<axum::Json<ClusterInfo>> {
    Ok(axum::Json(cluster_info(&state.service.add_cluster_node(&actor, &tenant, &cluster, &req.machine).await?)))
}

/// Withdraw a node; its kubelet certificates are revoked.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/k8s/clusters/{cluster}/nodes/{machine}", tag = "kubernetes",
    params(("tenant" = String, Path), ("cluster" = String, Path), ("machine" = String, Path)),
    responses((status = 200, body = ClusterInfo), (status = 404, body = ErrorBody)))]
pub(crate) async fn remove_node(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, cluster, machine)): ApiPath<(String, String, String)>,
) -> ApiResult<axum::Json<ClusterInfo>> {
    Ok(axum::Json(cluster_info(&state.service.remove_cluster_node(&actor, &tenant, &cluster, &machine).await?)))
}

/// Issue a control-plane certificate as kubeadm lays it out (CA administrators).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/k8s/clusters/{cluster}/components", tag = "kubernetes",
    params(("tenant" = String, Path), ("cluster" = String, Path)), request_body = ComponentCertificateRequest,
    responses((status = 201, body = CertificateInfo), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn issue_component(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, cluster)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<ComponentCertificateRequest>,
) -> ApiResult<(StatusCode, axum::Json<CertificateInfo>)> {
    let component: Component = req.component.parse()?;
    let ttl_secs = req.ttl.as_deref().map(lightwell_core::parse_ttl).transpose()?;
    let req = ComponentRequest { component, csr: decode_csr(req.csr)?, control_plane: req.control_plane, ttl_secs };
    let v = state.service.issue_component(&actor, &tenant, &cluster, req).await?;
    Ok((StatusCode::CREATED, axum::Json(certificate_info(&v))))
}

/// The cluster CA's private key, for clusters that sign kubelet CSRs themselves (audited).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/k8s/clusters/{cluster}/ca-key", tag = "kubernetes",
    params(("tenant" = String, Path), ("cluster" = String, Path)),
    responses((status = 200, body = ClusterCaKey), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn ca_key(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, cluster)): ApiPath<(String, String)>,
) -> ApiResult<axum::Json<ClusterCaKey>> {
    let (certificate, key) = state.service.cluster_ca_key(&actor, &tenant, &cluster).await?;
    Ok(axum::Json(ClusterCaKey { certificate, key: key.to_string() }))
}
