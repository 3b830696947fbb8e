-- One counter per tenant, bumped in the same transaction as every change to
-- what the directory shows (principals, memberships, certificates, CAs, CRLs),
-- so readers can cache a tenant's directory and validate it cheaply.
CREATE TABLE directory_revisions (
    tenant_id  TEXT PRIMARY KEY,
    revision   BIGINT NOT NULL
);
