-- Tenants, principals, group membership, login sessions and the audit chain.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    domain      TEXT NOT NULL UNIQUE,
    policy      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE principals (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    name                 TEXT NOT NULL,
    display_name         TEXT,
    email                TEXT,
    hostnames            TEXT NOT NULL,
    ips                  TEXT NOT NULL,
    enabled              BOOLEAN NOT NULL,
    builtin              BOOLEAN NOT NULL,
    password_hash        TEXT,
    credential_epoch     BIGINT NOT NULL,
    failed_logins        BIGINT NOT NULL,
    failure_window_start BIGINT,
    locked_until         BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
-- Names are unique per tenant and kind regardless of case, as in LDAP.
CREATE UNIQUE INDEX principals_name ON principals (tenant_id, kind, lower(name));

CREATE TABLE memberships (
    tenant_id  TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    member_id  TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX memberships_by_tenant ON memberships (tenant_id);
CREATE INDEX memberships_by_member ON memberships (member_id);

CREATE TABLE sessions (
    token_hash        BYTEA PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    principal_id      TEXT NOT NULL,
    credential_epoch  BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL
);
CREATE INDEX sessions_by_principal ON sessions (tenant_id, principal_id);

CREATE TABLE audit (
    scope      TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    PRIMARY KEY (scope, seq)
);

CREATE TABLE audit_heads (
    scope  TEXT PRIMARY KEY,
    seq    BIGINT NOT NULL,
    hash   TEXT NOT NULL
);
