-- What changed at each trust revision of a tenant (a CA added or changed,
-- a CRL re-signed, as a delta from the CRL before it), written in the
-- transaction that bumps the revision. Agents catch up from it with one
-- small answer; only the most recent revisions are kept (older callers
-- are told to fetch the whole trust state).
CREATE TABLE trust_changes (
    tenant_id  TEXT NOT NULL,
    revision   BIGINT NOT NULL,
    body       BLOB NOT NULL,
    PRIMARY KEY (tenant_id, revision)
);
