//! Rows as the store keeps them. Times are Unix seconds (UTC).

use serde::{Deserialize, Serialize};

/// The id of a tenant, or the system scope (operator, system audit chain).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TenantId(String);

impl TenantId {
    /// The system scope. Never the id of a real tenant (those are UUIDs).
    pub fn system() -> Self {
        Self(String::new())
    }

    /// Wraps a stored tenant id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// Whether this is the system scope.
    pub fn is_system(&self) -> bool {
        self.0.is_empty()
    }

    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_system() { f.write_str("system") } else { f.write_str(&self.0) }
    }
}

/// A tenant: an isolated domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    /// Stable id (UUID).
    pub id: TenantId,
    /// The DNS domain naming the tenant, lower case.
    pub domain: String,
    /// Tenant policy as JSON (the service layer owns its schema).
    pub policy: String,
    /// Creation time.
    pub created_at: i64,
}

/// The kinds of principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    /// A person.
    User,
    /// A group of principals.
    Group,
    /// A joined host.
    Machine,
    /// A workload or service account.
    Service,
}

impl PrincipalKind {
    /// Every kind, in listing order.
    pub const ALL: [PrincipalKind; 4] = [Self::User, Self::Group, Self::Machine, Self::Service];

    /// The stored (and API) name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Group => "group",
            Self::Machine => "machine",
            Self::Service => "service",
        }
    }

    /// Parses a stored kind name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A principal: user, group, machine or service.
#[derive(Clone, PartialEq, Eq)]
pub struct PrincipalRecord {
    /// Stable id (UUID).
    pub id: String,
    /// Owning tenant (the system scope for the operator).
    pub tenant_id: TenantId,
    /// Kind of principal.
    pub kind: PrincipalKind,
    /// Name, unique per tenant and kind.
    pub name: String,
    /// Display name.
    pub display_name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Host names (machines and services).
    pub hostnames: Vec<String>,
    /// IP addresses (machines and services).
    pub ips: Vec<String>,
    /// Disabled principals cannot authenticate.
    pub enabled: bool,
    /// Built-in objects cannot be deleted.
    pub builtin: bool,
    /// Argon2id PHC string, if the principal has a password.
    pub password_hash: Option<String>,
    /// Bumped by every credential change; sessions and certificates issued
    /// under an older epoch are no longer valid.
    pub credential_epoch: i64,
    /// Failed logins in the current window.
    pub failed_logins: i64,
    /// Start of the current failure window.
    pub failure_window_start: Option<i64>,
    /// Locked until this time, if locked.
    pub locked_until: Option<i64>,
    /// Creation time.
    pub created_at: i64,
    /// Last modification time.
    pub updated_at: i64,
}

impl std::fmt::Debug for PrincipalRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password hash (or machine secret digest) is left out of logs.
        f.debug_struct("PrincipalRecord")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("hostnames", &self.hostnames)
            .field("ips", &self.ips)
            .field("enabled", &self.enabled)
            .field("credential_epoch", &self.credential_epoch)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

impl PrincipalRecord {
    /// The names this principal claims in its tenant, lower case: its own
    /// name (groups claim none: they hold no certificates), every DNS name
    /// registered to it and its e-mail address. The store keeps one owner per name and tenant across
    /// every kind (`Conflict` otherwise), so no two principals can be given
    /// certificates with the same CN or DNS name.
    pub fn claimed_names(&self) -> std::collections::BTreeSet<String> {
        if self.kind == PrincipalKind::Group {
            return Default::default();
        }
        std::iter::once(&self.name).chain(&self.hostnames).chain(&self.email).map(|n| n.to_ascii_lowercase()).collect()
    }
}

/// A group membership edge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Membership {
    /// The group.
    pub group_id: String,
    /// The member (any kind of principal).
    pub member_id: String,
}

/// A login session: a bearer token, of which only the SHA-256 is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// Tenant of the principal (system scope for the operator).
    pub tenant_id: TenantId,
    /// The authenticated principal.
    pub principal_id: String,
    /// The principal's credential epoch at login.
    pub credential_epoch: i64,
    /// Login time.
    pub created_at: i64,
    /// Expiry time.
    pub expires_at: i64,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token's hash is its lookup key: left out of logs.
        f.debug_struct("SessionRecord")
            .field("tenant_id", &self.tenant_id)
            .field("principal_id", &self.principal_id)
            .field("credential_epoch", &self.credential_epoch)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// One record of a hash-chained audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Chain: a tenant, or the system scope.
    pub scope: TenantId,
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// Time of the event.
    pub at: i64,
    /// Who acted (`operator`, `user:alice`, `anonymous`, ...).
    pub actor: String,
    /// What was done (`user.create`, `login`, ...).
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Extra detail (never a secret).
    pub detail: String,
    /// MAC of the previous record (hex), empty for the first.
    pub prev_hash: String,
    /// MAC of this record including `prev_hash` (hex).
    pub hash: String,
}

/// The head of an audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    /// Sequence number of the last record.
    pub seq: i64,
    /// MAC of the last record.
    pub hash: String,
    /// MAC of this head (scope, `seq`, `hash`) under the audit head key;
    /// empty for a head written before heads carried one.
    pub mac: String,
}
