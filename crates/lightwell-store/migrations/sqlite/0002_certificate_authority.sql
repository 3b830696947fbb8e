-- The certificate authority: per-tenant CA hierarchies, issued certificates
-- and the latest CRL of each CA. Portable SQL (SQLite and PostgreSQL).
CREATE TABLE cas (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    name               TEXT NOT NULL,
    parent_id          TEXT,
    role               TEXT NOT NULL,
    cert_der           BLOB NOT NULL,
    -- PKCS#8 private key sealed under the KEK with the CA id as context.
    sealed_key         BLOB NOT NULL,
    status             TEXT NOT NULL,
    is_default         INTEGER NOT NULL,
    next_crl_number    BIGINT NOT NULL,
    revoked_at         BIGINT,
    revocation_reason  TEXT,
    created_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX cas_name ON cas (tenant_id, lower(name));

CREATE TABLE certificates (
    -- Lower-case hex; unique across all tenants so no serial is ever reused.
    serial             TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    ca_id              TEXT NOT NULL,
    principal_id       TEXT NOT NULL,
    principal_kind     TEXT NOT NULL,
    principal_name     TEXT NOT NULL,
    profile            TEXT NOT NULL,
    der                BLOB NOT NULL,
    not_before         BIGINT NOT NULL,
    not_after          BIGINT NOT NULL,
    requester          TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    revoked_at         BIGINT,
    revocation_reason  TEXT
);
CREATE INDEX certificates_by_ca ON certificates (tenant_id, ca_id);
CREATE INDEX certificates_by_principal ON certificates (tenant_id, principal_id);

CREATE TABLE crls (
    ca_id        TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    number       BIGINT NOT NULL,
    der          BLOB NOT NULL,
    this_update  BIGINT NOT NULL,
    next_update  BIGINT NOT NULL
);
CREATE INDEX crls_by_tenant ON crls (tenant_id);
