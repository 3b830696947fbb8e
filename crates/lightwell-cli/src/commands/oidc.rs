//! `lightwell oidc`: the tenant's OpenID provider.

use lightwell_proto::{CreateOidcClientRequest, OidcClientInfo};

use crate::args::{OidcClientCommand, OidcCommand};
use crate::context::Context;
use crate::output;

fn client_text(c: &OidcClientInfo) -> String {
    let or_dash = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(" ") };
    let mut out = format!(
        "name: {}\nclient id: {}\nprincipal: {}\nauthentication: {}\ngrants: {}\naudience: {}\nscopes: {}\naccess token ttl: {} s\ncreated: {}",
        c.name,
        c.client_id,
        c.principal,
        c.auth_method,
        or_dash(&c.grants),
        or_dash(&c.audience),
        or_dash(&c.scopes),
        c.access_token_ttl_secs,
        c.created_at
    );
    if let Some(secret) = &c.client_secret {
        out.push_str(&format!("\nclient secret: {secret}\n(shown once: store it now)"));
    }
    out
}

fn clients_text(list: &[OidcClientInfo]) -> String {
    let mut out = vec!["NAME  CLIENT ID  PRINCIPAL  AUTHENTICATION".to_string()];
    out.extend(list.iter().map(|c| format!("{}  {}  {}  {}", c.name, c.client_id, c.principal, c.auth_method)));
    out.join("\n")
}

/// Runs `lightwell oidc`.
pub(crate) async fn oidc(ctx: &Context, cmd: OidcCommand, json: bool) -> anyhow::Result<()> {
    let (client, tenant) = ctx.tenant_client()?;
    let OidcCommand::Client(cmd) = cmd;
    match cmd {
        OidcClientCommand::Create(a) => {
            let req = CreateOidcClientRequest {
                name: a.name,
                principal: a.principal,
                auth_method: Some(a.auth_method),
                audience: a.audience,
                scopes: a.scopes,
                access_token_ttl: a.access_token_ttl,
            };
            output::print(json, &client.create_oidc_client(&tenant, &req).await?, client_text);
        }
        OidcClientCommand::List => output::print(json, &client.list_oidc_clients(&tenant).await?, |l| clients_text(l)),
        OidcClientCommand::Show { name } => {
            output::print(json, &client.oidc_client(&tenant, &name).await?, client_text)
        }
        OidcClientCommand::Delete { name } => {
            client.delete_oidc_client(&tenant, &name).await?;
            output::done(json, &format!("deleted OpenID client {name}"));
        }
        OidcClientCommand::RotateSecret { name } => {
            output::print(json, &client.rotate_oidc_client_secret(&tenant, &name).await?, client_text)
        }
    }
    Ok(())
}
