-- Domain join: join tokens (only their SHA-256 is stored) and the per-tenant
-- trust revision that agents watch (bumped whenever the bundle or a CRL changes).
CREATE TABLE join_tokens (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    token_hash    BLOB NOT NULL UNIQUE,
    hostname      TEXT,
    uses_left     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked       INTEGER NOT NULL,
    allow_rejoin  INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX join_tokens_by_tenant ON join_tokens (tenant_id);

CREATE TABLE trust_revisions (
    tenant_id  TEXT PRIMARY KEY,
    revision   BIGINT NOT NULL
);
