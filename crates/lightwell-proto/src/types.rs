//! Request and response bodies of REST API v1. Times are RFC 3339 strings (UTC).

use serde::{Deserialize, Serialize};

request_type! {
    /// `POST /v1/login` (operator) and `POST /v1/tenants/{tenant}/login`.
    pub struct LoginRequest {
        /// User name.
        pub user: String,
        /// Password.
        pub password: String,
    }
}

api_type! {
    /// A bearer token and what it authenticates.
    pub struct LoginResponse {
        /// Opaque bearer token for the `Authorization: Bearer` header.
        pub token: String,
        /// When the token expires.
        pub expires_at: String,
        /// Who logged in.
        pub identity: Identity,
    }
}

api_type! {
    /// The authenticated caller (`GET /v1/whoami`).
    pub struct Identity {
        /// Tenant domain; absent for the system operator.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub tenant: Option<String>,
        /// Principal kind (`user`, `machine`, `service`), or `operator`.
        pub kind: String,
        /// Principal name.
        pub name: String,
        /// Resolved group memberships (including nested).
        #[serde(default)]
        pub groups: Vec<String>,
        /// SHA-256 fingerprint (`sha256:HEX`) of the TLS client certificate on this connection, if any.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub tls_client_certificate: Option<String>,
    }
}

request_type! {
    /// `POST /v1/tenants`.
    pub struct CreateTenantRequest {
        /// DNS domain naming the tenant, e.g. `corp.example`.
        pub domain: String,
        /// Password of the first administrator (`administrator`); generated when absent.
        #[serde(default)]
        pub admin_password: Option<String>,
        /// Key algorithm of the tenant's CAs: `p256` (default), `p384`, `ed25519`, `rsa3072`, `rsa4096`.
        #[serde(default)]
        pub key_type: Option<String>,
    }
}

api_type! {
    /// A tenant.
    pub struct Tenant {
        /// The tenant's DNS domain.
        pub domain: String,
        /// Stable id.
        pub id: String,
        /// LDAP base DN of the tenant's tree.
        pub base_dn: String,
        /// Creation time.
        pub created_at: String,
    }
}

api_type! {
    /// The result of creating a tenant.
    pub struct CreateTenantResponse {
        /// The new tenant.
        pub tenant: Tenant,
        /// Name of the first administrator.
        pub admin_user: String,
        /// The generated administrator password, shown once; absent when one was given.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub admin_password: Option<String>,
    }
}

api_type! {
    /// A reference to a principal by kind and name.
    pub struct PrincipalRef {
        /// `user`, `group`, `machine` or `service`.
        pub kind: String,
        /// Name.
        pub name: String,
    }
}

api_type! {
    /// A user, group, machine or service.
    pub struct Principal {
        /// `user`, `group`, `machine` or `service`.
        pub kind: String,
        /// Name, unique per tenant and kind.
        pub name: String,
        /// Display name.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub display_name: Option<String>,
        /// E-mail address.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub email: Option<String>,
        /// Host names (machines and services).
        #[serde(default)]
        pub hostnames: Vec<String>,
        /// IP addresses (machines and services).
        #[serde(default)]
        pub ips: Vec<String>,
        /// Disabled principals cannot authenticate.
        pub enabled: bool,
        /// Whether the account is locked after failed logins.
        pub locked: bool,
        /// Built-in objects cannot be deleted.
        pub builtin: bool,
        /// Groups this principal belongs to, directly or through nesting.
        #[serde(default)]
        pub member_of: Vec<String>,
        /// Direct members of a group; for a service, the machines that may hold its identity.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub members: Option<Vec<PrincipalRef>>,
        /// Creation time.
        pub created_at: String,
        /// Last modification time.
        pub updated_at: String,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/users`.
    pub struct CreateUserRequest {
        /// User name.
        pub name: String,
        /// Initial password; without one the user cannot log in until an administrator sets it.
        #[serde(default)]
        pub password: Option<String>,
        /// E-mail address.
        #[serde(default)]
        pub email: Option<String>,
        /// Display name.
        #[serde(default)]
        pub display_name: Option<String>,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/groups`.
    pub struct CreateGroupRequest {
        /// Group name.
        pub name: String,
        /// Display name.
        #[serde(default)]
        pub display_name: Option<String>,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/machines` and `POST /v1/tenants/{tenant}/services`.
    pub struct CreateHostPrincipalRequest {
        /// Machine host name (fully qualified) or service name.
        pub name: String,
        /// DNS names (a machine's own name is always included).
        #[serde(default)]
        pub hostnames: Vec<String>,
        /// IP addresses.
        #[serde(default)]
        pub ips: Vec<String>,
        /// Display name.
        #[serde(default)]
        pub display_name: Option<String>,
    }
}

request_type! {
    /// `PATCH` of a principal: fields present are set; an empty string clears a text field.
    pub struct UpdatePrincipalRequest {
        /// New display name.
        #[serde(default)]
        pub display_name: Option<String>,
        /// New e-mail address.
        #[serde(default)]
        pub email: Option<String>,
        /// New host names (machines and services).
        #[serde(default)]
        pub hostnames: Option<Vec<String>>,
        /// New IP addresses (machines and services).
        #[serde(default)]
        pub ips: Option<Vec<String>>,
    }
}

request_type! {
    /// `PUT /v1/tenants/{tenant}/users/{name}/password`: a change by the user
    /// (old password required) or a reset by an administrator.
    pub struct SetPasswordRequest {
        /// The new password.
        pub new_password: String,
        /// The current password (required when users change their own).
        #[serde(default)]
        pub old_password: Option<String>,
    }
}

request_type! {
    /// `POST /v1/tenants/{tenant}/groups/{name}/members`.
    pub struct AddMemberRequest {
        /// Kind of the member.
        pub kind: String,
        /// Name of the member.
        pub name: String,
    }
}

api_type! {
    /// One audit record.
    pub struct AuditEntry {
        /// Position in the chain.
        pub seq: i64,
        /// When.
        pub at: String,
        /// Who.
        pub actor: String,
        /// What.
        pub action: String,
        /// On what.
        pub target: String,
        /// `success` or `failure`.
        pub outcome: String,
        /// Extra detail.
        pub detail: String,
        /// The record's chain MAC (hex).
        pub hash: String,
    }
}

api_type! {
    /// The result of verifying an audit chain.
    pub struct AuditVerification {
        /// Whether the whole chain is intact.
        pub valid: bool,
        /// Records checked.
        pub records: i64,
        /// The first sequence number where the chain breaks.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub broken_at: Option<i64>,
        /// Why it is broken.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub reason: Option<String>,
        /// The sequence number named by the tenant chain's newest checkpoint
        /// in the system chain, which the chain was checked to hold.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pub checkpoint: Option<i64>,
    }
}

api_type! {
    /// `POST /v1/audit/checkpoint`: what one checkpoint run did.
    pub struct AuditCheckpointReport {
        /// Tenant chains newly checkpointed into the system chain.
        pub checkpointed: usize,
        /// Chains whose head did not verify and were not checkpointed.
        pub refused: Vec<AuditCheckpointRefusal>,
    }
}

api_type! {
    /// One line (JSON) of the server's audit checkpoint file: a chain's head
    /// as a checkpoint run verified it. `lightwell audit verify --checkpoints`
    /// checks a chain still holds every record its lines name.
    pub struct AuditCheckpointLine {
        /// When the run took it.
        pub at: String,
        /// `tenant` or `system`.
        pub chain: String,
        /// The tenant's id (empty for the system chain).
        pub tenant_id: String,
        /// The tenant's domain (empty for the system chain).
        pub domain: String,
        /// Sequence number of the chain's last record.
        pub seq: i64,
        /// That record's MAC (hex).
        pub hash: String,
    }
}

api_type! {
    /// A chain left out of a checkpoint run.
    pub struct AuditCheckpointRefusal {
        /// The tenant's domain, or `system`.
        pub chain: String,
        /// Why its head did not verify.
        pub reason: String,
    }
}

api_type! {
    /// `GET /healthz` and `GET /readyz`.
    pub struct Health {
        /// `ok` or `unavailable`.
        pub status: String,
        /// Store backend in use.
        pub store: String,
    }
}
