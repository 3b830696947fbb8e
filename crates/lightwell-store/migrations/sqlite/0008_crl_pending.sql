-- CAs whose stored CRL no longer lists every revocation: a revocation of a
-- CA with a large CRL is acknowledged at commit and marks the CA here, in
-- the same transaction; a background signer re-signs the CRL and removes
-- the mark. Each mark increments `generation`, so a signer clears only the
-- generation it read (revocations during its build keep the mark).
CREATE TABLE crl_pending (
    tenant_id   TEXT NOT NULL,
    ca_id       TEXT NOT NULL,
    generation  BIGINT NOT NULL,
    marked_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, ca_id)
);
