//! One function per command; each resolves its session and calls the client.

use lightwell_proto::{
    AddMemberRequest, CreateGroupRequest, CreateHostPrincipalRequest, CreateTenantRequest, CreateUserRequest,
    MachineDomains, SetPasswordRequest, UpdatePrincipalRequest,
};

mod audit;
mod ca;
mod join;
mod k8s;
mod oidc;
mod workload;

use crate::args::*;
use crate::context::Context;
use crate::{output, secrets};

/// Runs a parsed command line.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let json = cli.global.output == OutputFormat::Json;
    let mut ctx = Context::load(&cli.global)?;
    match cli.command {
        Command::Login(args) => login(&mut ctx, args, json).await,
        Command::Logout => {
            let client = ctx.current_client()?;
            client.logout().await?;
            ctx.forget_session()?;
            output::done(json, "logged out");
            Ok(())
        }
        Command::Whoami => {
            let id = ctx.current_client()?.whoami().await?;
            output::print(json, &id, |id| match &id.tenant {
                Some(t) => format!("{} {}@{}\ngroups: {}", id.kind, id.name, t, id.groups.join(", ")),
                None => format!("{} (system operator)", id.name),
            });
            Ok(())
        }
        Command::Tenant(cmd) => tenant(&ctx, cmd, json).await,
        Command::User(cmd) => user(&ctx, cmd, json).await,
        Command::Group(cmd) => group(&ctx, cmd, json).await,
        Command::Machine(MachineCommand::Common(cmd)) => host(&ctx, "machines", cmd, json).await,
        Command::Machine(MachineCommand::Domains { domains, clear }) => {
            let (client, tenant) = ctx.tenant_client()?;
            let shown = if clear || !domains.is_empty() {
                client.set_machine_domains(&tenant, &MachineDomains { domains }).await?
            } else {
                client.machine_domains(&tenant).await?
            };
            output::print(json, &shown, |d| {
                let mut all = vec![tenant.clone()];
                all.extend(d.domains.iter().cloned());
                format!("machines are named inside: {}", all.join(", "))
            });
            Ok(())
        }
        Command::Service(ServiceCommand::Create { name, dns, ip }) => {
            let (client, tenant) = ctx.tenant_client()?;
            let req = CreateHostPrincipalRequest { name, hostnames: dns, ips: ip, display_name: None };
            let p = client.create_principal(&tenant, "services", &req).await?;
            output::print(json, &p, output::principal);
            Ok(())
        }
        Command::Service(ServiceCommand::AddHost { service, machine }) => {
            let (client, tenant) = ctx.tenant_client()?;
            output::print(json, &client.add_service_host(&tenant, &service, &machine).await?, output::principal);
            Ok(())
        }
        Command::Service(ServiceCommand::RemoveHost { service, machine }) => {
            let (client, tenant) = ctx.tenant_client()?;
            output::print(json, &client.remove_service_host(&tenant, &service, &machine).await?, output::principal);
            Ok(())
        }
        Command::Service(ServiceCommand::Common(cmd)) => host(&ctx, "services", cmd, json).await,
        Command::Audit(cmd) => audit::audit(&ctx, cmd, json).await,
        Command::Ca(cmd) => ca::ca(&ctx, cmd, json).await,
        Command::Cert(cmd) => ca::cert(&ctx, cmd, json).await,
        Command::Token(cmd) => join::token(&ctx, cmd, json).await,
        Command::Join(args) => join::join_domain(&cli.global, args, json).await,
        Command::Agent(args) => join::agent(args, json).await,
        Command::Leave(args) => join::leave(args, json).await,
        Command::K8s(cmd) => k8s::k8s(&ctx, cmd, json).await,
        Command::Workload(cmd) => workload::workload(&ctx, cmd, json).await,
        Command::Federation(cmd) => workload::federation(&ctx, cmd, json).await,
        Command::Oidc(cmd) => oidc::oidc(&ctx, cmd, json).await,
    }
}

async fn login(ctx: &mut Context, args: LoginArgs, json: bool) -> anyhow::Result<()> {
    let client = ctx.anonymous()?;
    let password = secrets::read(args.password_file.as_deref(), "LIGHTWELL_PASSWORD", "Password: ")?;
    let (tenant, resp) = if args.operator {
        (None, client.operator_login("operator", &password).await?)
    } else {
        let tenant = ctx.tenant()?.to_string();
        let user = args.user.unwrap_or_default();
        let resp = client.login(&tenant, &user, &password).await?;
        (Some(tenant), resp)
    };
    ctx.save_login(tenant.as_deref(), &resp.token)?;
    let who = match &resp.identity.tenant {
        Some(t) => format!("{}@{}", resp.identity.name, t),
        None => "operator".to_string(),
    };
    output::print(json, &resp.identity, |_| format!("logged in as {who} until {}", resp.expires_at));
    Ok(())
}

async fn tenant(ctx: &Context, cmd: TenantCommand, json: bool) -> anyhow::Result<()> {
    let client = ctx.operator_client()?;
    match cmd {
        TenantCommand::Create { domain, admin_password_file, key_type } => {
            let admin_password = secrets::read_file(admin_password_file.as_deref())?.map(|p| p.to_string());
            let resp = client.create_tenant(&CreateTenantRequest { domain, admin_password, key_type }).await?;
            output::print(json, &resp, |r| {
                let mut s = format!(
                    "created tenant {} (base {})\nadministrator: {}",
                    r.tenant.domain, r.tenant.base_dn, r.admin_user
                );
                if let Some(pw) = &r.admin_password {
                    s.push_str(&format!("\nadministrator password (shown once): {pw}"));
                }
                s
            });
        }
        TenantCommand::List => output::print(json, &client.list_tenants().await?, |l| output::tenants(l)),
        TenantCommand::Show { domain } => output::print(json, &client.tenant(&domain).await?, output::tenant),
        TenantCommand::Delete { domain } => {
            client.delete_tenant(&domain).await?;
            output::done(json, &format!("deleted tenant {domain}"));
        }
    }
    Ok(())
}

async fn user(ctx: &Context, cmd: UserCommand, json: bool) -> anyhow::Result<()> {
    let (client, tenant) = ctx.tenant_client()?;
    match cmd {
        UserCommand::Create { name, password_file, email, display_name } => {
            let password = secrets::read_file(password_file.as_deref())?.map(|p| p.to_string());
            let req = CreateUserRequest { name, password, email, display_name };
            output::print(json, &client.create_principal(&tenant, "users", &req).await?, output::principal);
        }
        UserCommand::List => {
            output::print(json, &client.list_principals(&tenant, "users").await?, |l| output::principals(l))
        }
        UserCommand::Show { name } => {
            output::print(json, &client.principal(&tenant, "users", &name).await?, output::principal)
        }
        UserCommand::Update { name, email, display_name } => {
            let req = UpdatePrincipalRequest { email, display_name, ..Default::default() };
            output::print(json, &client.update_principal(&tenant, "users", &name, &req).await?, output::principal);
        }
        UserCommand::Delete { name } => {
            client.delete_principal(&tenant, "users", &name).await?;
            output::done(json, &format!("deleted user {name}"));
        }
        UserCommand::SetPassword { name, password_file, old_password_file } => {
            let me = client.whoami().await?;
            let own = me.kind == "user" && me.name.eq_ignore_ascii_case(&name);
            let old_password = match (own, old_password_file) {
                (_, Some(f)) => Some(secrets::read(Some(&f), "", "")?.to_string()),
                (true, None) => Some(secrets::read(None, "LIGHTWELL_PASSWORD", "Current password: ")?.to_string()),
                (false, None) => None,
            };
            let new_password =
                secrets::read(password_file.as_deref(), "LIGHTWELL_NEW_PASSWORD", "New password: ")?.to_string();
            client.set_password(&tenant, &name, &SetPasswordRequest { new_password, old_password }).await?;
            output::done(json, &format!("password of {name} changed"));
        }
        UserCommand::Disable { name } => action(&client, &tenant, "users", &name, "disable", json).await?,
        UserCommand::Enable { name } => action(&client, &tenant, "users", &name, "enable", json).await?,
        UserCommand::Unlock { name } => action(&client, &tenant, "users", &name, "unlock", json).await?,
    }
    Ok(())
}

async fn action(
    client: &lightwell_client::Client,
    tenant: &str,
    collection: &str,
    name: &str,
    verb: &str,
    json: bool,
) -> anyhow::Result<()> {
    client.principal_action(tenant, collection, name, verb).await?;
    output::done(json, &format!("{verb}d {name}"));
    Ok(())
}

async fn group(ctx: &Context, cmd: GroupCommand, json: bool) -> anyhow::Result<()> {
    let (client, tenant) = ctx.tenant_client()?;
    match cmd {
        GroupCommand::Create { name, display_name } => {
            let req = CreateGroupRequest { name, display_name };
            output::print(json, &client.create_principal(&tenant, "groups", &req).await?, output::principal);
        }
        GroupCommand::List => {
            output::print(json, &client.list_principals(&tenant, "groups").await?, |l| output::principals(l))
        }
        GroupCommand::Show { name } => {
            output::print(json, &client.principal(&tenant, "groups", &name).await?, output::principal)
        }
        GroupCommand::Delete { name } => {
            client.delete_principal(&tenant, "groups", &name).await?;
            output::done(json, &format!("deleted group {name}"));
        }
        GroupCommand::AddMember { group, member, kind } => {
            let p = client.add_member(&tenant, &group, &AddMemberRequest { kind, name: member }).await?;
            output::print(json, &p, output::principal);
        }
        GroupCommand::RemoveMember { group, member, kind } => {
            let p = client.remove_member(&tenant, &group, &kind, &member).await?;
            output::print(json, &p, output::principal);
        }
    }
    Ok(())
}

async fn host(ctx: &Context, collection: &str, cmd: HostCommand, json: bool) -> anyhow::Result<()> {
    let (client, tenant) = ctx.tenant_client()?;
    match cmd {
        HostCommand::List => {
            output::print(json, &client.list_principals(&tenant, collection).await?, |l| output::principals(l))
        }
        HostCommand::Show { name } => {
            output::print(json, &client.principal(&tenant, collection, &name).await?, output::principal)
        }
        HostCommand::Delete { name } => {
            client.delete_principal(&tenant, collection, &name).await?;
            output::done(json, &format!("deleted {name}"));
        }
        HostCommand::Disable { name } => action(&client, &tenant, collection, &name, "disable", json).await?,
        HostCommand::Enable { name } => action(&client, &tenant, collection, &name, "enable", json).await?,
        HostCommand::Update { name, dns, ip, clear_ips } => {
            let req = UpdatePrincipalRequest {
                hostnames: (!dns.is_empty()).then_some(dns),
                ips: (clear_ips || !ip.is_empty()).then_some(ip),
                ..Default::default()
            };
            if req.hostnames.is_none() && req.ips.is_none() {
                anyhow::bail!("nothing to change: give --dns, --ip or --clear-ips");
            }
            output::print(json, &client.update_principal(&tenant, collection, &name, &req).await?, output::principal);
        }
    }
    Ok(())
}
