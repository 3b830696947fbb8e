//! Service hosts: the machines allowed to hold a service's identity. The
//! agent on such a machine can obtain and renew the service's certificate
//! (`[[certificate]]` in `agent.toml`), as certmonger does for FreeIPA hosts.
//! Stored as membership edges from the service to the machine; only groups
//! confer membership, so hosting a service grants nothing else.

use crate::service::Tenant;
use lightwell_proto::ErrorCode;
use lightwell_store::{PrincipalKind, StoreError, Tx};

use super::Service;
use super::directory::{PrincipalView, find, view_of};
use crate::audit::AuditEvent;
use crate::authz::{self, Actor, Permission};
use crate::{Error, Result};

/// Whether `machine` is a host of `service`.
pub(super) fn hosts_service(tx: &mut dyn Tx, t: &Tenant, service_id: &str, machine_id: &str) -> Result<bool> {
    Ok(tx.memberships_of(&t.id, machine_id)?.iter().any(|m| m.group_id == service_id))
}

impl Service {
    /// Lets `machine` hold the identity of `service` (Administrators).
    pub async fn add_service_host(
        &self,
        actor: &Actor,
        tenant: &str,
        service: &str,
        machine: &str,
    ) -> Result<PrincipalView> {
        self.change_service_host(actor, tenant, service, machine, true).await
    }

    /// Withdraws that permission.
    pub async fn remove_service_host(
        &self,
        actor: &Actor,
        tenant: &str,
        service: &str,
        machine: &str,
    ) -> Result<PrincipalView> {
        self.change_service_host(actor, tenant, service, machine, false).await
    }

    async fn change_service_host(
        &self,
        actor: &Actor,
        tenant: &str,
        service: &str,
        machine: &str,
        add: bool,
    ) -> Result<PrincipalView> {
        authz::check(actor, Some(tenant), Permission::ManageDirectory)?;
        let (actor_name, tenant, service, machine) =
            (actor.audit_name(), tenant.to_string(), service.to_string(), machine.to_string());
        self.blocking(move |inner| {
            inner.tenant_write(&tenant, |tx, t| {
                let s = find(tx, t, PrincipalKind::Service, &service)?;
                let m = find(tx, t, PrincipalKind::Machine, &machine)?;
                if add {
                    tx.add_member(&t.id, &s.id, &m.id).map_err(|e| match e {
                        StoreError::Conflict(_) => {
                            Error::new(ErrorCode::AlreadyExists, format!("{} already hosts {}", m.name, s.name))
                        }
                        other => other.into(),
                    })?;
                } else if !tx.remove_member(&t.id, &s.id, &m.id)? {
                    return Err(Error::new(
                        ErrorCode::PrincipalNotFound,
                        format!("{} does not host {}", m.name, s.name),
                    ));
                }
                let action = if add { "service.add_host" } else { "service.remove_host" };
                let ev = AuditEvent::success(actor_name.clone(), action, s.name.clone()).with_detail(m.name.clone());
                inner.audit(tx, t, ev)?;
                view_of(tx, t, &s, inner.now())
            })
        })
        .await
    }
}
