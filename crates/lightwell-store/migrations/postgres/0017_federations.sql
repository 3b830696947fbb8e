-- PostgreSQL flavour of the SQLite migration of the same number.
-- Federation: the foreign trust domains a tenant trusts. Each is read from
-- its SPIFFE bundle endpoint (https_web) or was given as a static bundle;
-- `bundle` is the last bundle accepted (a SPIFFE bundle document), kept
-- when a later fetch fails, with the error in `last_error`.
CREATE TABLE federations (
    tenant_id        TEXT NOT NULL,
    trust_domain     TEXT NOT NULL,
    endpoint_url     TEXT,
    endpoint_ca_pem  TEXT,
    bundle           TEXT,
    sequence         BIGINT,
    fetched_at       BIGINT,
    next_fetch_at    BIGINT NOT NULL,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, trust_domain)
);
