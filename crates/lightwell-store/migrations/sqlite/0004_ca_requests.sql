-- Intermediates waiting for an enterprise CA to sign their CSR. The key is
-- generated and sealed server-side; on install the row becomes a CA with the
-- same id (the sealed key's context).
CREATE TABLE ca_requests (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    csr_der     BLOB NOT NULL,
    sealed_key  BLOB NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX ca_requests_name ON ca_requests (tenant_id, lower(name));
