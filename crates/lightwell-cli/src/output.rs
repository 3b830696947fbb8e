//! Printing results: JSON for scripts, plain text for people.

use lightwell_client::ClientError;
use lightwell_proto::{AuditEntry, Principal, Tenant};
use serde::Serialize;

/// Prints `value` as JSON, or as the text `text` renders.
pub(crate) fn print<T: Serialize>(json: bool, value: &T, text: impl FnOnce(&T) -> String) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: cannot encode output: {e}"),
        }
    } else {
        let s = text(value);
        if !s.is_empty() {
            println!("{}", s.trim_end());
        }
    }
}

/// Prints a confirmation (`{"ok": true, ...}` in JSON).
pub(crate) fn done(json: bool, message: &str) {
    print(json, &serde_json::json!({ "ok": true, "message": message }), |_| message.to_string());
}

/// Prints an error to stderr.
pub(crate) fn error(e: &anyhow::Error, json: bool) {
    let api = e.downcast_ref::<ClientError>();
    if json {
        let (code, message) = match api {
            Some(ClientError::Api { code, message, .. }) => (code.as_str().to_string(), message.clone()),
            _ => ("client_error".to_string(), format!("{e:#}")),
        };
        eprintln!("{}", serde_json::json!({ "error": { "code": code, "message": message } }));
    } else {
        eprintln!("error: {e:#}");
    }
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        parts.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(headers.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

pub(crate) fn tenants(list: &[Tenant]) -> String {
    table(
        &["DOMAIN", "BASE DN", "CREATED"],
        list.iter().map(|t| vec![t.domain.clone(), t.base_dn.clone(), t.created_at.clone()]).collect(),
    )
}

pub(crate) fn tenant(t: &Tenant) -> String {
    format!("domain: {}\nid: {}\nbase dn: {}\ncreated: {}", t.domain, t.id, t.base_dn, t.created_at)
}

fn state(p: &Principal) -> String {
    match (p.enabled, p.locked) {
        (false, _) => "disabled".into(),
        (true, true) => "locked".into(),
        (true, false) => "enabled".into(),
    }
}

pub(crate) fn principals(list: &[Principal]) -> String {
    table(
        &["NAME", "STATE", "DISPLAY NAME", "EMAIL", "HOSTNAMES", "MEMBER OF"],
        list.iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    state(p),
                    p.display_name.clone().unwrap_or_default(),
                    p.email.clone().unwrap_or_default(),
                    p.hostnames.join(","),
                    p.member_of.join(","),
                ]
            })
            .collect(),
    )
}

pub(crate) fn principal(p: &Principal) -> String {
    let mut out = vec![format!("{}: {}", p.kind, p.name), format!("state: {}", state(p))];
    if let Some(d) = &p.display_name {
        out.push(format!("display name: {d}"));
    }
    if let Some(e) = &p.email {
        out.push(format!("email: {e}"));
    }
    if !p.hostnames.is_empty() {
        out.push(format!("hostnames: {}", p.hostnames.join(", ")));
    }
    if !p.ips.is_empty() {
        out.push(format!("ips: {}", p.ips.join(", ")));
    }
    if p.builtin {
        out.push("built-in: yes".into());
    }
    out.push(format!("member of: {}", p.member_of.join(", ")));
    if let Some(members) = &p.members {
        let m: Vec<String> = members.iter().map(|m| format!("{}:{}", m.kind, m.name)).collect();
        out.push(format!("members: {}", m.join(", ")));
    }
    out.push(format!("created: {}", p.created_at));
    out.join("\n")
}

pub(crate) fn audit(list: &[AuditEntry]) -> String {
    table(
        &["SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "DETAIL"],
        list.iter()
            .map(|a| {
                vec![
                    a.seq.to_string(),
                    a.at.clone(),
                    a.actor.clone(),
                    a.action.clone(),
                    a.target.clone(),
                    a.outcome.clone(),
                    a.detail.clone(),
                ]
            })
            .collect(),
    )
}
