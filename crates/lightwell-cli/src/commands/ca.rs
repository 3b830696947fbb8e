//! `lightwell ca` and `lightwell cert`.

use anyhow::{Context as _, bail};
use lightwell_ca::{KeyAlgorithm, SigningKey};
use lightwell_proto::{
    CaInfo, CertificateInfo, CreateCaRequestRequest, CreateIntermediateRequest, ImportCaRequest, InstallCaRequest,
    IssueCertificateRequest, RevokeRequest, RotateRequest,
};
use zeroize::Zeroizing;

use crate::args::{CaCommand, CertCommand, CertRequestArgs};
use crate::context::Context;
use crate::output;

fn ca_line(list: &Vec<CaInfo>) -> String {
    let mut out = vec!["NAME  ROLE  STATUS  DEFAULT  KEY  NOT AFTER  ID".to_string()];
    for c in list {
        out.push(format!(
            "{}  {}  {}  {}  {}  {}  {}",
            c.name,
            c.role,
            c.status,
            if c.is_default { "yes" } else { "" },
            c.key_type,
            c.not_after,
            c.id
        ));
    }
    out.join("\n")
}

fn ca_text(c: &CaInfo) -> String {
    format!(
        "name: {}\nid: {}\nrole: {}\nstatus: {}\ndefault: {}\nparent: {}\nkey: {}\nserial: {}\nfingerprint: {}\nvalid: {} .. {}\nname constraints: {}\ncrl: {}\ncertificate: {}",
        c.name,
        c.id,
        c.role,
        c.status,
        c.is_default,
        c.parent.as_deref().unwrap_or("-"),
        c.key_type,
        c.serial,
        c.fingerprint,
        c.not_before,
        c.not_after,
        c.name_constraints.join(", "),
        c.crl_url,
        c.certificate_url
    )
}

pub(crate) fn cert_text(c: &CertificateInfo) -> String {
    let state = match &c.revoked_at {
        Some(at) => format!("revoked at {at} ({})", c.revocation_reason.as_deref().unwrap_or("unspecified")),
        None => "valid".into(),
    };
    format!(
        "serial: {}\nprincipal: {}/{}\nprofile: {}\nca: {}\nvalid: {} .. {}\nstate: {}\nrequester: {}\nfingerprint: {}",
        c.serial,
        c.principal_kind,
        c.principal_name,
        c.profile,
        c.ca,
        c.not_before,
        c.not_after,
        state,
        c.requester,
        c.fingerprint
    )
}

fn certs_text(list: &Vec<CertificateInfo>) -> String {
    let mut out = vec!["SERIAL  PRINCIPAL  PROFILE  CA  NOT AFTER  REVOKED".to_string()];
    for c in list {
        out.push(format!(
            "{}  {}/{}  {}  {}  {}  {}",
            c.serial,
            c.principal_kind,
            c.principal_name,
            c.profile,
            c.ca,
            c.not_after,
            c.revoked_at.as_deref().unwrap_or("")
        ));
    }
    out.join("\n")
}

fn read_text(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn write_or_print(json: bool, pem: &str, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            lightwell_agent::files::write_atomic(path, pem.as_bytes(), 0o644)
                .with_context(|| format!("writing {}", path.display()))?;
            output::done(json, &format!("wrote {}", path.display()));
        }
        None if json => output::print(true, &serde_json::json!({ "pem": pem }), |_| String::new()),
        None => print!("{pem}"),
    }
    Ok(())
}

/// Runs `lightwell ca`.
pub(crate) async fn ca(ctx: &Context, cmd: CaCommand, json: bool) -> anyhow::Result<()> {
    let (client, tenant) = ctx.tenant_client()?;
    match cmd {
        CaCommand::List => output::print(json, &client.list_cas(&tenant).await?, ca_line),
        CaCommand::Show { ca } => output::print(json, &client.ca(&tenant, &ca).await?, ca_text),
        CaCommand::Bundle { out } => {
            if json && out.is_none() {
                output::print(true, &client.trust_bundle(&tenant).await?, |_| String::new());
            } else {
                write_or_print(json, &client.trust_bundle_pem(&tenant).await?, out.as_deref())?;
            }
        }
        CaCommand::Crl { ca, out } => {
            let ca = match ca {
                Some(ca) => ca,
                None => client
                    .list_cas(&tenant)
                    .await?
                    .into_iter()
                    .find(|c| c.is_default)
                    .map(|c| c.id)
                    .context("the tenant has no default issuing CA; name one")?,
            };
            write_or_print(json, &client.ca_crl_pem(&tenant, &ca).await?, out.as_deref())?;
        }
        CaCommand::CreateIntermediate { name, path_len, external: true, csr_out, key_type, .. } => {
            let req = CreateCaRequestRequest { name, path_len, key_type };
            let pending = client.create_ca_request(&tenant, &req).await?;
            match csr_out {
                Some(path) => {
                    lightwell_agent::files::write_atomic(&path, pending.csr_pem.as_bytes(), 0o644)
                        .with_context(|| format!("writing {}", path.display()))?;
                    output::print(json, &pending, |p| {
                        format!(
                            "wrote the CSR of {} to {}; have your CA sign it, then run `lightwell ca install {} --cert FILE`",
                            p.name,
                            path.display(),
                            p.name
                        )
                    });
                }
                None => output::print(json, &pending, |p| p.csr_pem.trim_end().to_string()),
            }
        }
        CaCommand::CreateIntermediate { name, name_constraints, path_len, default, .. } => {
            let req = CreateIntermediateRequest { name, name_constraints, path_len, make_default: default };
            output::print(json, &client.create_intermediate(&tenant, &req).await?, ca_text);
        }
        CaCommand::Install { name, cert, default } => {
            let certificate = read_text(&cert)?;
            let req = InstallCaRequest { certificate, make_default: default };
            output::print(json, &client.install_ca(&tenant, &name, &req).await?, ca_text);
        }
        CaCommand::Import { cert, key, name, default } => {
            let req =
                ImportCaRequest { certificate: read_text(&cert)?, key: read_text(&key)?, name, make_default: default };
            let imported = client.import_ca(&tenant, &req).await;
            // Wipe this process's copy of the key before anything else happens.
            drop(Zeroizing::new(req.key));
            output::print(json, &imported?, ca_text);
        }
        CaCommand::Revoke { ca, reason } => {
            let resp = client.revoke_ca(&tenant, &ca, &RevokeRequest { reason, principal: None }).await?;
            output::print(json, &resp, |r| format!("revoked CA {ca} and {} certificates", r.revoked.len()));
        }
        CaCommand::Rotate { activate, key_type } => {
            let cas = client.rotate_root(&tenant, &RotateRequest { activate, key_type }).await?;
            output::print(json, &cas, ca_line);
        }
    }
    Ok(())
}

/// Runs `lightwell cert`.
pub(crate) async fn cert(ctx: &Context, cmd: CertCommand, json: bool) -> anyhow::Result<()> {
    let (client, tenant) = ctx.tenant_client()?;
    match cmd {
        CertCommand::Request(args) => request(&client, &tenant, args, json).await?,
        CertCommand::List { principal } => {
            output::print(json, &client.list_certificates(&tenant, principal.as_deref()).await?, certs_text)
        }
        CertCommand::Show { serial } => output::print(json, &client.certificate(&tenant, &serial).await?, cert_text),
        CertCommand::Revoke { serial, principal, reason } => {
            let resp = match serial {
                Some(serial) => {
                    client.revoke_certificate(&tenant, &serial, &RevokeRequest { reason, principal: None }).await?
                }
                None => client.revoke_principal_certificates(&tenant, &RevokeRequest { reason, principal }).await?,
            };
            output::print(json, &resp, |r| format!("revoked {} certificates", r.revoked.len()));
        }
    }
    Ok(())
}

async fn request(
    client: &lightwell_client::Client,
    tenant: &str,
    args: CertRequestArgs,
    json: bool,
) -> anyhow::Result<()> {
    let csr_pem = match (&args.csr, &args.key_out) {
        (Some(path), _) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            match String::from_utf8(bytes.clone()) {
                Ok(text) if text.trim_start().starts_with("-----") => text,
                _ => {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                }
            }
        }
        (None, Some(key_out)) => {
            // The key is generated here and never leaves this host; only its CSR is sent.
            let key_type: KeyAlgorithm = args.key_type.parse()?;
            let key = SigningKey::generate(key_type)?;
            let cn = match &args.principal {
                Some(p) => p.split_once('/').map(|(_, n)| n.to_string()).unwrap_or_else(|| p.clone()),
                None => client.whoami().await?.name,
            };
            let der = lightwell_ca::csr::create(&key, &cn)?;
            lightwell_agent::files::write_atomic(key_out, key.to_pkcs8_pem().as_bytes(), 0o600)
                .with_context(|| format!("writing {}", key_out.display()))?;
            lightwell_ca::pem::encode("CERTIFICATE REQUEST", &der)
        }
        (None, None) => bail!("give --csr FILE or --key-out FILE"),
    };
    let req = IssueCertificateRequest {
        csr: csr_pem,
        profile: args.profile,
        ttl: args.ttl,
        principal: args.principal,
        cluster: None,
    };
    let cert = client.issue_certificate(tenant, &req).await?;
    lightwell_agent::files::write_atomic(&args.out, cert.chain_pem.as_bytes(), 0o644)
        .with_context(|| format!("writing {}", args.out.display()))?;
    output::print(json, &cert, |c| format!("{}\nwrote {}", cert_text(c), args.out.display()));
    Ok(())
}
