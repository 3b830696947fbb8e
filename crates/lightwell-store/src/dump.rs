//! A backend-neutral copy of a whole store, for `lightwelld migrate`: every
//! table, row by row, values typed by the shared schema below, so a dump
//! read from SQLite loads into PostgreSQL (and back) unchanged. Nothing is
//! re-derived on the way: certificates, CRLs, sealed keys and audit MACs are
//! the same bytes afterwards, which is what keeps the audit chain verifying.

/// How a column is stored, common to both backends (SQLite keeps booleans as
/// integers, PostgreSQL as `BOOLEAN`; BLOB is `BYTEA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnType {
    Int,
    Text,
    Bytes,
    Bool,
}

/// One table of the schema: its name and columns in a fixed order.
#[derive(Debug)]
pub(crate) struct TableSpec {
    pub(crate) name: &'static str,
    pub(crate) columns: &'static [(&'static str, ColumnType)],
    /// Rows are dumped in this order, so two dumps of equal data are equal.
    pub(crate) order_by: &'static str,
}

use ColumnType::{Bool, Bytes, Int, Text};

/// Every table holding data (not `schema_migrations`: the target records its
/// own), parents before children: tenants, then what belongs to a tenant, CAs
/// before the certificates and CRLs they signed.
pub(crate) const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "tenants",
        columns: &[("id", Text), ("domain", Text), ("policy", Text), ("created_at", Int)],
        order_by: "id",
    },
    TableSpec {
        name: "principals",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("kind", Text),
            ("name", Text),
            ("display_name", Text),
            ("email", Text),
            ("hostnames", Text),
            ("ips", Text),
            ("enabled", Bool),
            ("builtin", Bool),
            ("password_hash", Text),
            ("credential_epoch", Int),
            ("failed_logins", Int),
            ("failure_window_start", Int),
            ("locked_until", Int),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        order_by: "id",
    },
    TableSpec {
        name: "principal_names",
        columns: &[("tenant_id", Text), ("name", Text), ("principal_id", Text)],
        order_by: "tenant_id, name",
    },
    TableSpec {
        name: "memberships",
        columns: &[("tenant_id", Text), ("group_id", Text), ("member_id", Text)],
        order_by: "group_id, member_id",
    },
    TableSpec {
        name: "sessions",
        columns: &[
            ("token_hash", Bytes),
            ("tenant_id", Text),
            ("principal_id", Text),
            ("credential_epoch", Int),
            ("created_at", Int),
            ("expires_at", Int),
        ],
        order_by: "token_hash",
    },
    TableSpec {
        name: "audit",
        columns: &[
            ("scope", Text),
            ("seq", Int),
            ("at", Int),
            ("actor", Text),
            ("action", Text),
            ("target", Text),
            ("outcome", Text),
            ("detail", Text),
            ("prev_hash", Text),
            ("hash", Text),
        ],
        order_by: "scope, seq",
    },
    TableSpec {
        name: "audit_heads",
        columns: &[("scope", Text), ("seq", Int), ("hash", Text), ("mac", Text)],
        order_by: "scope",
    },
    TableSpec {
        name: "cas",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("name", Text),
            ("parent_id", Text),
            ("role", Text),
            ("cert_der", Bytes),
            ("sealed_key", Bytes),
            ("status", Text),
            ("is_default", Bool),
            ("next_crl_number", Int),
            ("revoked_at", Int),
            ("revocation_reason", Text),
            ("created_at", Int),
        ],
        order_by: "id",
    },
    TableSpec {
        name: "certificates",
        columns: &[
            ("serial", Text),
            ("tenant_id", Text),
            ("ca_id", Text),
            ("principal_id", Text),
            ("principal_kind", Text),
            ("principal_name", Text),
            ("profile", Text),
            ("der", Bytes),
            ("not_before", Int),
            ("not_after", Int),
            ("requester", Text),
            ("created_at", Int),
            ("revoked_at", Int),
            ("revocation_reason", Text),
        ],
        order_by: "serial",
    },
    TableSpec {
        name: "crls",
        columns: &[
            ("ca_id", Text),
            ("tenant_id", Text),
            ("number", Int),
            ("der", Bytes),
            ("this_update", Int),
            ("next_update", Int),
        ],
        order_by: "ca_id",
    },
    TableSpec {
        name: "delta_crls",
        columns: &[
            ("ca_id", Text),
            ("tenant_id", Text),
            ("number", Int),
            ("base_number", Int),
            ("der", Bytes),
            ("this_update", Int),
            ("next_update", Int),
            ("base_this_update", Int),
        ],
        order_by: "ca_id",
    },
    TableSpec {
        name: "ocsp_responders",
        columns: &[
            ("ca_id", Text),
            ("tenant_id", Text),
            ("cert_der", Bytes),
            ("sealed_key", Bytes),
            ("not_before", Int),
            ("not_after", Int),
            ("created_at", Int),
        ],
        order_by: "ca_id",
    },
    TableSpec {
        name: "crl_pending",
        columns: &[("tenant_id", Text), ("ca_id", Text), ("generation", Int), ("marked_at", Int)],
        order_by: "tenant_id, ca_id",
    },
    TableSpec {
        name: "trust_changes",
        columns: &[("tenant_id", Text), ("revision", Int), ("body", Bytes)],
        order_by: "tenant_id, revision",
    },
    TableSpec {
        name: "join_tokens",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("token_hash", Bytes),
            ("hostname", Text),
            ("uses_left", Int),
            ("expires_at", Int),
            ("revoked", Bool),
            ("allow_rejoin", Bool),
            ("created_by", Text),
            ("created_at", Int),
            ("ips", Text),
        ],
        order_by: "id",
    },
    TableSpec { name: "trust_revisions", columns: &[("tenant_id", Text), ("revision", Int)], order_by: "tenant_id" },
    TableSpec {
        name: "directory_revisions",
        columns: &[("tenant_id", Text), ("revision", Int)],
        order_by: "tenant_id",
    },
    TableSpec {
        name: "ca_requests",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("name", Text),
            ("csr_der", Bytes),
            ("sealed_key", Bytes),
            ("created_at", Int),
        ],
        order_by: "id",
    },
    TableSpec {
        name: "k8s_clusters",
        columns: &[("id", Text), ("tenant_id", Text), ("name", Text), ("spec", Text), ("created_at", Int)],
        order_by: "id",
    },
    TableSpec {
        name: "workload_entries",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("name", Text),
            ("service_id", Text),
            ("spec", Text),
            ("created_at", Int),
        ],
        order_by: "id",
    },
    TableSpec {
        name: "oidc_clients",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("name", Text),
            ("principal_id", Text),
            ("secret_hash", Text),
            ("spec", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        order_by: "id",
    },
    TableSpec {
        name: "revoked_tokens",
        columns: &[("tenant_id", Text), ("jti", Text), ("expires_at", Int), ("revoked_at", Int)],
        order_by: "tenant_id, jti",
    },
    TableSpec {
        name: "token_keys",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("algorithm", Text),
            ("public_jwk", Text),
            ("sealed_key", Bytes),
            ("created_at", Int),
            ("activates_at", Int),
            ("retires_at", Int),
            ("expires_at", Int),
        ],
        order_by: "id",
    },
    TableSpec {
        name: "federations",
        columns: &[
            ("tenant_id", Text),
            ("trust_domain", Text),
            ("endpoint_url", Text),
            ("endpoint_ca_pem", Text),
            ("bundle", Text),
            ("sequence", Int),
            ("fetched_at", Int),
            ("next_fetch_at", Int),
            ("last_error", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        order_by: "tenant_id, trust_domain",
    },
];

/// Every table holding data, parents first, with its columns in schema
/// order: what `lightwelld migrate` copies and what deleting a tenant must
/// empty of its rows (tests walk it table by table).
pub fn tables() -> impl Iterator<Item = (&'static str, Vec<&'static str>)> {
    TABLES.iter().map(|t| (t.name, t.columns.iter().map(|(c, _)| *c).collect()))
}

impl TableSpec {
    /// `a, b, c` for a SELECT or INSERT.
    pub(crate) fn column_list(&self) -> String {
        self.columns.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
    }
}

/// One value of a dumped row.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer column.
    Int(i64),
    /// A text column.
    Text(String),
    /// A binary column.
    Bytes(Vec<u8>),
    /// A boolean column.
    Bool(bool),
}

/// The rows of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDump {
    /// Table name.
    pub table: String,
    /// Rows, each with the table's columns in schema order.
    pub rows: Vec<Vec<Value>>,
}

/// Every table of a store, parents first, read in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    /// The schema version of the store it came from.
    pub schema_version: i64,
    /// One entry per table.
    pub tables: Vec<TableDump>,
}

impl Dump {
    /// Rows per table, for reporting.
    pub fn counts(&self) -> Vec<(&str, usize)> {
        self.tables.iter().map(|t| (t.table.as_str(), t.rows.len())).collect()
    }

    /// Checks the dump has exactly this build's tables and column counts.
    pub(crate) fn check_shape(&self, schema_version: i64) -> Result<(), crate::StoreError> {
        if self.schema_version != schema_version {
            return Err(crate::StoreError::Corrupt(format!(
                "the dump has schema version {} but the target has {schema_version}",
                self.schema_version
            )));
        }
        let names: Vec<&str> = self.tables.iter().map(|t| t.table.as_str()).collect();
        let expected: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        if names != expected {
            return Err(crate::StoreError::Corrupt(format!("the dump's tables {names:?} are not {expected:?}")));
        }
        for (t, spec) in self.tables.iter().zip(TABLES) {
            if let Some(row) = t.rows.iter().find(|r| r.len() != spec.columns.len()) {
                return Err(crate::StoreError::Corrupt(format!(
                    "a row of {} has {} values, expected {}",
                    t.table,
                    row.len(),
                    spec.columns.len()
                )));
            }
        }
        Ok(())
    }
}
