//! `lightwell workload`: workload entries.

use anyhow::Context as _;
use lightwell_proto::{CreateFederationRequest, CreateWorkloadRequest, FederationInfo, WorkloadInfo};

use crate::args::{FederationCommand, WorkloadCommand};
use crate::context::Context;
use crate::output;

fn workload_text(w: &WorkloadInfo) -> String {
    let or_dash = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(", ") };
    format!(
        "name: {}\nspiffe id: {}\nservice: {}\nhosts: {}\nhost groups: {}\nselectors: {}\nttl: {} s\ndns names: {}\ncreated: {}",
        w.name,
        w.spiffe_id,
        w.service,
        or_dash(&w.hosts),
        or_dash(&w.host_groups),
        w.selectors.join(" "),
        w.ttl_secs,
        or_dash(&w.dns_names),
        w.created_at
    )
}

fn workloads_text(list: &Vec<WorkloadInfo>) -> String {
    let mut out = vec!["NAME  SPIFFE ID  HOSTS  SELECTORS".to_string()];
    for w in list {
        let hosts = w.hosts.iter().chain(w.host_groups.iter().map(|g| g as &String)).count();
        out.push(format!("{}  {}  {}  {}", w.name, w.spiffe_id, hosts, w.selectors.join(" ")));
    }
    out.join("\n")
}

/// Runs `lightwell workload`.
pub(crate) async fn workload(ctx: &Context, cmd: WorkloadCommand, json: bool) -> anyhow::Result<()> {
    let (client, tenant) = ctx.tenant_client()?;
    match cmd {
        WorkloadCommand::Create(a) => {
            let req = CreateWorkloadRequest {
                name: a.name,
                service: a.service,
                path: a.path,
                hosts: a.hosts,
                host_groups: a.host_groups,
                selectors: a.selectors,
                ttl: a.ttl,
                dns_names: a.dns_names,
            };
            output::print(json, &client.create_workload(&tenant, &req).await?, workload_text);
        }
        WorkloadCommand::List => output::print(json, &client.list_workloads(&tenant).await?, workloads_text),
        WorkloadCommand::Show { name } => output::print(json, &client.workload(&tenant, &name).await?, workload_text),
        WorkloadCommand::Delete { name } => {
            let resp = client.delete_workload(&tenant, &name).await?;
            output::print(json, &resp, |r| format!("deleted workload entry {name}; {} SVIDs revoked", r.revoked.len()));
        }
    }
    Ok(())
}

fn federation_text(f: &FederationInfo) -> String {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    format!(
        "trust domain: {}\nbundle endpoint: {}\nendpoint ca: {}\nsequence: {}\nx509 authorities: {}\njwt authorities: {}\nfetched: {}\nnext fetch: {}\nlast error: {}\ncreated: {}",
        f.trust_domain,
        f.bundle_endpoint_url.as_deref().unwrap_or("- (bundle given as it is)"),
        if f.endpoint_ca { "given" } else { "system web roots" },
        f.sequence.map_or("-".into(), |s| s.to_string()),
        f.x509_authorities,
        f.jwt_authorities,
        or_dash(&f.fetched_at),
        or_dash(&f.next_fetch_at),
        or_dash(&f.last_error),
        f.created_at
    )
}

fn federations_text(list: &Vec<FederationInfo>) -> String {
    let mut out = vec!["TRUST DOMAIN  SEQUENCE  AUTHORITIES  SOURCE  LAST ERROR".to_string()];
    for f in list {
        out.push(format!(
            "{}  {}  {}  {}  {}",
            f.trust_domain,
            f.sequence.map_or("-".into(), |s| s.to_string()),
            f.x509_authorities + f.jwt_authorities,
            f.bundle_endpoint_url.as_deref().unwrap_or("given"),
            f.last_error.as_deref().unwrap_or("-")
        ));
    }
    out.join("\n")
}

/// Runs `lightwell federation`.
pub(crate) async fn federation(ctx: &Context, cmd: FederationCommand, json: bool) -> anyhow::Result<()> {
    let (client, tenant) = ctx.tenant_client()?;
    let read =
        |path: &std::path::Path| std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()));
    match cmd {
        FederationCommand::Create(a) => {
            let req = CreateFederationRequest {
                trust_domain: a.trust_domain,
                bundle_endpoint_url: a.bundle_endpoint,
                endpoint_ca_pem: a.endpoint_ca.as_deref().map(read).transpose()?,
                bundle: a.bundle.as_deref().map(read).transpose()?,
            };
            output::print(json, &client.create_federation(&tenant, &req).await?, federation_text);
        }
        FederationCommand::List => output::print(json, &client.list_federations(&tenant).await?, federations_text),
        FederationCommand::Show { trust_domain } => {
            output::print(json, &client.federation(&tenant, &trust_domain).await?, federation_text)
        }
        FederationCommand::Refresh { trust_domain } => {
            output::print(json, &client.refresh_federation(&tenant, &trust_domain).await?, federation_text)
        }
        FederationCommand::Delete { trust_domain } => {
            client.delete_federation(&tenant, &trust_domain).await?;
            output::done(json, &format!("stopped trusting {trust_domain}"));
        }
    }
    Ok(())
}
