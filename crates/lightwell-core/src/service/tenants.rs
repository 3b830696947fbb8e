//! Tenants and the system operator.

use lightwell_proto::ErrorCode;
use lightwell_store::{PrincipalKind, PrincipalRecord, StoreExt, TenantId, TenantRecord};
use zeroize::Zeroizing;

use super::{Service, short, tenant_by_domain};
use crate::audit::AuditEvent;
use crate::authz::{self, ADMINISTRATORS, Actor, BUILTIN_GROUPS, FIRST_ADMIN, OPERATOR, Permission, USERS};
use crate::names::DomainName;
use crate::policy::TenantPolicy;
use crate::{Error, Result, password};

/// A tenant as the service works with it: its policy parsed once, where it
/// is read from the store (the stored row keeps it as JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Stable id (UUID).
    pub id: TenantId,
    /// The DNS domain naming the tenant, lower case.
    pub domain: String,
    /// Its policy.
    pub policy: TenantPolicy,
    /// Creation time.
    pub created_at: i64,
}

impl From<&TenantRecord> for Tenant {
    fn from(r: &TenantRecord) -> Self {
        Self {
            id: r.id.clone(),
            domain: r.domain.clone(),
            policy: TenantPolicy::from_json(&r.policy),
            created_at: r.created_at,
        }
    }
}

/// A new principal record with defaults.
pub(super) fn new_principal(tenant: &TenantId, kind: PrincipalKind, name: &str, now: i64) -> PrincipalRecord {
    PrincipalRecord {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant.clone(),
        kind,
        name: name.to_string(),
        display_name: None,
        email: None,
        hostnames: vec![],
        ips: vec![],
        enabled: true,
        builtin: false,
        password_hash: None,
        credential_epoch: 1,
        failed_logins: 0,
        failure_window_start: None,
        locked_until: None,
        created_at: now,
        updated_at: now,
    }
}

impl Service {
    /// Creates the system operator with `password` unless it exists; returns
    /// whether it was created. Used by `lightwelld init`.
    pub async fn bootstrap_operator(&self, password: Zeroizing<String>) -> Result<bool> {
        let permit = self.hash_permit().await?;
        self.blocking(move |inner| {
            let hash = permit.hash(&password)?;
            drop(permit);
            let now = inner.now();
            inner.store.write(|tx| {
                let sys = TenantId::system();
                if tx.principal(&sys, PrincipalKind::User, OPERATOR)?.is_some() {
                    return Ok(false);
                }
                let mut op = new_principal(&sys, PrincipalKind::User, OPERATOR, now);
                op.builtin = true;
                op.password_hash = Some(hash.clone());
                tx.insert_principal(&op)?;
                inner.audit.append(tx, &sys, now, AuditEvent::success("system", "operator.create", OPERATOR))?;
                Ok(true)
            })
        })
        .await
    }

    /// Whether the store was initialized: it holds the system operator
    /// (`lightwelld init`, or a `migrate` from an initialized store).
    pub async fn is_initialized(&self) -> Result<bool> {
        self.blocking(|inner| {
            inner.store.read(|tx| Ok(tx.principal(&TenantId::system(), PrincipalKind::User, OPERATOR)?.is_some()))
        })
        .await
    }

    /// Creates a tenant with its built-in groups and first administrator
    /// (`administrator`). Returns the tenant and the generated password when
    /// none was given.
    pub async fn create_tenant(
        &self,
        actor: &Actor,
        domain: &str,
        admin_password: Option<Zeroizing<String>>,
        key_type: Option<&str>,
    ) -> Result<(Tenant, Option<Zeroizing<String>>)> {
        authz::check(actor, None, Permission::ManageTenants)?;
        let domain = DomainName::parse(domain)?;
        let key_type = super::parse_key_type(key_type)?;
        let policy = TenantPolicy::default();
        let (password, generated) = match admin_password {
            Some(p) => {
                password::check_policy(&policy.password, FIRST_ADMIN, &p)?;
                (p, false)
            }
            None => (password::generate()?, true),
        };
        let actor_name = actor.audit_name();
        let permit = self.hash_permit().await?;
        let tenant = self
            .blocking(move |inner| {
                let hash = permit.hash(&password)?;
                drop(permit);
                let now = inner.now();
                let tenant = TenantRecord {
                    id: TenantId::new(uuid::Uuid::new_v4().to_string()),
                    domain: domain.as_str().to_string(),
                    policy: policy.to_json(),
                    created_at: now,
                };
                let t = Tenant::from(&tenant);
                // The tenant's root and default issuing CA, stored in the same transaction.
                let cas = inner.build_tenant_hierarchy(&t, key_type)?;
                inner.store.write(|tx| {
                    if tx.tenant_by_domain(&tenant.domain)?.is_some() {
                        return Err(Error::new(ErrorCode::AlreadyExists, format!("tenant {} exists", tenant.domain)));
                    }
                    tx.insert_tenant(&tenant)?;
                    inner.store_cas(tx, &t, &cas)?;
                    let mut groups = Vec::new();
                    for name in BUILTIN_GROUPS {
                        let mut g = new_principal(&tenant.id, PrincipalKind::Group, name, now);
                        g.builtin = true;
                        tx.insert_principal(&g)?;
                        groups.push(g);
                    }
                    let mut admin = new_principal(&tenant.id, PrincipalKind::User, FIRST_ADMIN, now);
                    admin.password_hash = Some(hash.clone());
                    admin.display_name = Some("Administrator".into());
                    tx.insert_principal(&admin)?;
                    for g in groups.iter().filter(|g| g.name == ADMINISTRATORS || g.name == USERS) {
                        tx.add_member(&tenant.id, &g.id, &admin.id)?;
                    }
                    let ev = AuditEvent::success(actor_name.clone(), "tenant.create", tenant.domain.clone());
                    inner.audit.append(tx, &TenantId::system(), now, ev)?;
                    let ev = AuditEvent::success(actor_name.clone(), "tenant.create", tenant.domain.clone());
                    inner.audit.append(tx, &tenant.id, now, ev)?;
                    Ok(())
                })?;
                Ok((tenant, password, generated))
            })
            .await?;
        let (record, password, generated) = tenant;
        Ok((Tenant::from(&record), generated.then_some(password)))
    }

    /// Lists tenants (operator only).
    pub async fn list_tenants(&self, actor: &Actor) -> Result<Vec<Tenant>> {
        authz::check(actor, None, Permission::ManageTenants)?;
        self.blocking(|inner| inner.store.read(|tx| Ok(tx.list_tenants()?.iter().map(Tenant::from).collect()))).await
    }

    /// Shows one tenant: to the operator, and to the tenant's own principals.
    pub async fn tenant(&self, actor: &Actor, domain: &str) -> Result<Tenant> {
        if authz::check(actor, Some(domain), Permission::ManageTenants).is_err() {
            authz::check(actor, Some(domain), Permission::ReadDirectory)?;
        }
        let domain = domain.to_string();
        self.blocking(move |inner| inner.store.read(|tx| tenant_by_domain(tx, &domain))).await
    }

    /// The DNS domains, besides the tenant's own, inside which machines'
    /// host names may lie (any principal of the tenant may read them).
    pub async fn machine_domains(&self, actor: &Actor, tenant: &str) -> Result<Vec<String>> {
        authz::check(actor, Some(tenant), Permission::ReadDirectory)?;
        let tenant = tenant.to_string();
        self.blocking(move |inner| inner.tenant_read(&tenant, |_, t| Ok(t.policy.machine_domains.clone()))).await
    }

    /// Replaces those domains (Administrators). Machines already joined keep
    /// their names; new joins and machine accounts must fit.
    pub async fn set_machine_domains(&self, actor: &Actor, tenant: &str, domains: Vec<String>) -> Result<Vec<String>> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        let mut parsed: Vec<String> = Vec::new();
        for d in &domains {
            let d = DomainName::parse(d)?.as_str().to_string();
            if !parsed.contains(&d) {
                parsed.push(d);
            }
        }
        if parsed.len() > 64 {
            return Err(Error::invalid("at most 64 machine domains"));
        }
        let (actor_name, tenant) = (actor.audit_name(), tenant.to_string());
        self.blocking(move |inner| {
            inner.tenant_write(&tenant, |tx, t| {
                let mut policy = t.policy.clone();
                policy.machine_domains = parsed.clone();
                tx.update_tenant_policy(&t.id, &policy.to_json())?;
                let ev = AuditEvent::success(actor_name.clone(), "tenant.machine_domains", t.domain.clone())
                    .with_detail(format!("[{}]", parsed.join(" ")));
                inner.audit(tx, t, ev)?;
                Ok(parsed.clone())
            })
        })
        .await
    }

    /// Deletes a tenant and all of its data (operator only).
    pub async fn delete_tenant(&self, actor: &Actor, domain: &str) -> Result<()> {
        authz::check(actor, Some(domain), Permission::ManageTenants)?;
        let domain = domain.to_string();
        let actor_name = actor.audit_name();
        self.blocking(move |inner| {
            inner.store.write(|tx| {
                let t = tenant_by_domain(tx, &domain)?;
                if !tx.delete_tenant(&t.id)? {
                    return Err(Error::new(ErrorCode::TenantNotFound, format!("no tenant {:?}", short(&domain))));
                }
                let ev = AuditEvent::success(actor_name.clone(), "tenant.delete", t.domain.clone());
                inner.audit.append(tx, &TenantId::system(), inner.now(), ev)?;
                Ok(())
            })
        })
        .await
    }
}
