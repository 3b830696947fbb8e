//! `lightwell workload`: workload entries.

use lightwell_proto::{CreateWorkloadRequest, WorkloadInfo};

use crate::args::WorkloadCommand;
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
