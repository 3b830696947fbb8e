//! `lightwell audit`: list, verify (also against a checkpoint file), checkpoint.

use std::path::Path;

use anyhow::{Context as _, bail};
use lightwell_client::Client;
use lightwell_proto::{AuditCheckpointLine, AuditVerification};

use crate::args::AuditCommand;
use crate::context::Context;
use crate::output;

pub(crate) async fn audit(ctx: &Context, cmd: AuditCommand, json: bool) -> anyhow::Result<()> {
    let scope = |system: bool| -> anyhow::Result<(Client, Option<String>)> {
        if system {
            Ok((ctx.operator_client()?, None))
        } else {
            let (c, t) = ctx.tenant_client()?;
            Ok((c, Some(t)))
        }
    };
    match cmd {
        AuditCommand::List { system, after, limit } => {
            let (client, tenant) = scope(system)?;
            output::print(json, &client.audit(tenant.as_deref(), after, limit).await?, |l| output::audit(l));
        }
        AuditCommand::Verify { system, checkpoints } => {
            let (client, tenant) = scope(system)?;
            let mut v = client.audit_verify(tenant.as_deref()).await?;
            let mut file_note = String::new();
            if let Some(path) = &checkpoints {
                // Lines name a tenant by its id: a tenant deleted and made
                // again with the same domain has lines of its own.
                let tenant_id = match tenant.as_deref() {
                    Some(d) => Some(client.tenant(d).await?.id),
                    None => None,
                };
                let lines = read_checkpoints(path, tenant_id.as_deref())?;
                if v.valid {
                    check_against(&client, tenant.as_deref(), &lines, &mut v).await?;
                }
                file_note = format!("; matches its {} checkpoint lines in {}", lines.len(), path.display());
            }
            output::print(json, &v, |v| match &v.reason {
                None => {
                    let cp = v.checkpoint.map(|s| format!("; holds its checkpoint at record {s}")).unwrap_or_default();
                    format!("audit chain intact: {} records verified{cp}{file_note}", v.records)
                }
                Some(r) => format!("audit chain BROKEN: {r}"),
            });
            if !v.valid {
                bail!("the audit chain does not verify");
            }
        }
        AuditCommand::Checkpoint => {
            let r = ctx.operator_client()?.audit_checkpoint().await?;
            output::print(json, &r, |r| {
                let mut s = format!("{} tenant chains checkpointed", r.checkpointed);
                for refused in &r.refused {
                    s.push_str(&format!("\nnot checkpointed: {}: {}", refused.chain, refused.reason));
                }
                s
            });
            if !r.refused.is_empty() {
                bail!("some audit chains were not checkpointed");
            }
        }
    }
    Ok(())
}

/// The lines of a checkpoint file about one chain: the tenant with this
/// id, or the system chain.
fn read_checkpoints(path: &Path, tenant_id: Option<&str>) -> anyhow::Result<Vec<AuditCheckpointLine>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = Vec::new();
    for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let line: AuditCheckpointLine = serde_json::from_str(l)
            .with_context(|| format!("{} line {}: not a checkpoint line", path.display(), i + 1))?;
        let ours = match tenant_id {
            Some(id) => line.chain == "tenant" && line.tenant_id == id,
            None => line.chain == "system",
        };
        if ours {
            lines.push(line);
        }
    }
    Ok(lines)
}

/// Marks `v` broken at the first record a checkpoint line names that the
/// chain no longer holds, or holds with another MAC.
async fn check_against(
    client: &Client,
    tenant: Option<&str>,
    lines: &[AuditCheckpointLine],
    v: &mut AuditVerification,
) -> anyhow::Result<()> {
    const PAGE: u32 = 1000;
    let mut wanted: Vec<&AuditCheckpointLine> = lines.iter().collect();
    wanted.sort_by_key(|l| l.seq);
    let mut wanted = wanted.into_iter().peekable();
    let mut after = 0;
    while wanted.peek().is_some() {
        let page = client.audit(tenant, after, PAGE).await?;
        for r in &page {
            while let Some(l) = wanted.next_if(|l| l.seq <= r.seq) {
                if l.seq != r.seq || l.hash != r.hash {
                    broken(v, l.seq, &format!("differs from the checkpoint file's line of {} (rewritten)", l.at));
                    return Ok(());
                }
            }
        }
        after = page.last().map_or(after, |r| r.seq);
        if page.len() < PAGE as usize {
            break;
        }
    }
    if let Some(l) = wanted.next() {
        let reason = format!(
            "the checkpoint file's line of {} names it but the chain ends at record {after} (records deleted)",
            l.at
        );
        broken(v, l.seq, &reason);
    }
    Ok(())
}

fn broken(v: &mut AuditVerification, seq: i64, reason: &str) {
    v.valid = false;
    v.broken_at = Some(seq);
    v.reason = Some(format!("record {seq}: {reason}"));
}
