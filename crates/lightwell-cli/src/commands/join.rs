//! `lightwell join`, `agent`, `leave` and `token`.

use anyhow::{Context as _, bail};
use lightwell_agent::join::{JoinOptions, ServerTrust, join};
use lightwell_agent::run::{Agent, clock_from_env as agent_clock};
use lightwell_agent::state::StateDir;
use lightwell_agent::status::Status;
use lightwell_client::Client;
use lightwell_proto::CreateJoinTokenRequest;

use crate::args::{AgentArgs, AgentCommand, GlobalArgs, JoinArgs, LeaveArgs, TokenCommand};
use crate::context::Context;
use crate::{output, secrets};

fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_lowercase())
}

/// `lightwell join`.
pub(crate) async fn join_domain(global: &GlobalArgs, args: JoinArgs, json: bool) -> anyhow::Result<()> {
    let servers: Vec<String> = global
        .server
        .as_deref()
        .context("pass --server URL (several, comma-separated, for failover)")?
        .split(',')
        .map(|s| s.trim().trim_end_matches('/').to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let tenant = global.tenant.clone().context("pass --tenant DOMAIN")?;
    let trust = match (&global.ca_file, &global.ca_fingerprint) {
        (Some(f), _) => ServerTrust::CaFile(f.clone()),
        (None, Some(fp)) => ServerTrust::Fingerprint(fp.clone()),
        (None, None) => {
            bail!("the server is not trusted yet: pass --ca-file server-ca.pem or --ca-fingerprint sha256:HEX")
        }
    };
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => Some(secrets::read(Some(f), "", "")?.to_string()),
        (None, None) => None,
    };
    let bearer = match &args.user {
        Some(user) => {
            let password = secrets::read(args.password_file.as_deref(), "LIGHTWELL_PASSWORD", "Password: ")?;
            let urls: Vec<&str> = servers.iter().map(String::as_str).collect();
            let client = Client::with_servers(&urls, &trust.to_trust()?, None)?;
            Some(client.login(&tenant, user, &password).await?.token)
        }
        None => None,
    };
    if token.is_none() && bearer.is_none() {
        bail!("pass --token TOKEN (or --token-file), or --user with an administrator's password");
    }
    let hostname = args.hostname.or_else(host_name).context("cannot tell this host's name: pass --hostname")?;
    let opts = JoinOptions {
        servers,
        tenant,
        token,
        bearer,
        hostname,
        ips: args.ips,
        trust,
        key_type: args.key_type,
        state_dir: args.state.state_dir,
    };
    let outcome = join(&opts, agent_clock()?.as_ref()).await?;
    let summary = serde_json::json!({
        "machine": outcome.machine,
        "state_dir": outcome.state_dir,
        "revision": outcome.revision,
        "unapproved_ips": outcome.unapproved_ips,
    });
    output::print(json, &summary, |_| {
        let mut s = format!("joined {} as {}; state in {}", opts.tenant, outcome.machine, outcome.state_dir.display());
        if !outcome.unapproved_ips.is_empty() {
            s.push_str(&format!(
                "\nnot in the certificate (not approved by the join token): {}; an administrator approves them with \
                 `lightwell machine update {} --ip IP`",
                outcome.unapproved_ips.join(", "),
                outcome.machine
            ));
        }
        s
    });
    Ok(())
}

/// `lightwell agent`.
pub(crate) async fn agent(args: AgentArgs, json: bool) -> anyhow::Result<()> {
    if let Some(AgentCommand::Status) = args.command {
        return status(&args, json);
    }
    let filter =
        tracing_subscriber::EnvFilter::try_new(std::env::var("LIGHTWELL_LOG").unwrap_or_else(|_| "info".into()))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let mut agent = Agent::load_with(&args.state.state_dir, args.settings.clone(), agent_clock()?)?;
    if args.once {
        agent.once().await?;
        output::done(json, &format!("synced; trust revision {}", agent.revision()));
        return Ok(());
    }
    tokio::select! {
        r = agent.run_forever() => r?,
        _ = shutdown() => {}
    }
    Ok(())
}

async fn shutdown() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn status(args: &AgentArgs, json: bool) -> anyhow::Result<()> {
    let state = StateDir::new(&args.state.state_dir);
    let config = lightwell_agent::config::AgentConfig::load(&state.config())?;
    let cert = std::fs::read_to_string(state.cert()).context("reading cert.pem")?;
    let (not_before, not_after) = lightwell_agent::enroll::validity(&cert).context("cert.pem does not parse")?;
    let st = Status::load(&state);
    let fmt = |t: Option<i64>| t.map(lightwell_core_time).unwrap_or_else(|| "never".into());
    let report = serde_json::json!({
        "tenant": config.tenant,
        "machine": config.hostname,
        "servers": config.servers,
        "certificate_not_before": lightwell_core_time(not_before),
        "certificate_not_after": lightwell_core_time(not_after),
        "renewal_due": lightwell_core_time(
            Agent::load_with(&args.state.state_dir, args.settings.clone(), agent_clock()?)?.renewal_due()?
        ),
        "trust_revision": st.revision,
        "last_sync": fmt(st.last_sync),
        "last_renewal": fmt(st.last_renewal),
    });
    output::print(json, &report, |r| {
        format!(
            "machine {} in {}\ncertificate valid until {} (renewal due {})\ntrust revision {}, last sync {}\nlast renewal {}",
            r["machine"].as_str().unwrap_or_default(),
            r["tenant"].as_str().unwrap_or_default(),
            r["certificate_not_after"].as_str().unwrap_or_default(),
            r["renewal_due"].as_str().unwrap_or_default(),
            r["trust_revision"],
            r["last_sync"].as_str().unwrap_or_default(),
            r["last_renewal"].as_str().unwrap_or_default(),
        )
    });
    Ok(())
}

fn lightwell_core_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// `lightwell leave`: revokes this machine's certificates (authenticated by
/// its own certificate) and removes the state dir. The machine account stays
/// until an administrator deletes it.
pub(crate) async fn leave(args: LeaveArgs, json: bool) -> anyhow::Result<()> {
    let agent = Agent::load(&args.state.state_dir, agent_clock()?).context("not joined (no readable state dir)")?;
    // The host's identity must die with its files: unless forced, nothing is
    // removed until the server revoked its certificates and forgot its secret.
    let outcome = match agent.leave().await {
        Ok(revoked) => format!("revoked {} certificate(s); the machine secret no longer works", revoked.len()),
        Err(e) if args.force => {
            eprintln!("warning: the server was not told ({e}); this machine's certificates and secret stay valid");
            "left without telling the server (--force)".to_string()
        }
        Err(e) => bail!(
            "could not leave the domain: {e}\nnothing was removed; try again, or use --force to remove {} anyway",
            args.state.state_dir.display()
        ),
    };
    std::fs::remove_dir_all(&args.state.state_dir)
        .with_context(|| format!("removing {}", args.state.state_dir.display()))?;
    output::done(json, &format!("left the domain: {outcome}; removed {}", args.state.state_dir.display()));
    Ok(())
}

/// `lightwell token`.
pub(crate) async fn token(ctx: &Context, cmd: TokenCommand, json: bool) -> anyhow::Result<()> {
    let (client, tenant) = ctx.tenant_client()?;
    match cmd {
        TokenCommand::Create { ttl, uses, hostname, ip, allow_rejoin } => {
            let req = CreateJoinTokenRequest { ttl: Some(ttl), uses: Some(uses), hostname, ips: ip, allow_rejoin };
            let t = client.create_join_token(&tenant, &req).await?;
            output::print(json, &t, |t| {
                format!(
                    "join token (shown once): {}\nid {}; {} use(s) until {}",
                    t.token.as_deref().unwrap_or_default(),
                    t.id,
                    t.uses_left,
                    t.expires_at
                )
            });
        }
        TokenCommand::List => {
            let tokens = client.list_join_tokens(&tenant).await?;
            output::print(json, &tokens, |l| {
                let mut out = vec!["ID  HOSTNAME  USES LEFT  EXPIRES  REVOKED".to_string()];
                out.extend(l.iter().map(|t| {
                    format!(
                        "{}  {}  {}  {}  {}",
                        t.id,
                        t.hostname.as_deref().unwrap_or("any"),
                        t.uses_left,
                        t.expires_at,
                        if t.revoked { "yes" } else { "no" }
                    )
                }));
                out.join("\n")
            });
        }
        TokenCommand::Revoke { id } => {
            client.revoke_join_token(&tenant, &id).await?;
            output::done(json, &format!("revoked join token {id}"));
        }
    }
    Ok(())
}
