-- PostgreSQL flavour of the SQLite migration of the same number.
-- The tenant's OpenID provider: its registered clients. Each acts as one
-- directory principal (a service or a machine) for the client credentials
-- grant; `secret_hash` is the SHA-256 of its secret (256 random bits, so a
-- fast hash suffices, as for machine secrets), none for a client that
-- authenticates with its TLS certificate; `spec` is owned by the service
-- layer (authentication method, grants, audience, token lifetime).
CREATE TABLE oidc_clients (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    secret_hash  TEXT,
    spec         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX oidc_clients_name ON oidc_clients (tenant_id, lower(name));
