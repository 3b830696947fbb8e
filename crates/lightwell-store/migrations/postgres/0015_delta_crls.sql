-- PostgreSQL flavour of the SQLite migration of the same number.
-- Each CA's latest delta CRL (RFC 5280 5.2.4): the revocations since its
-- latest complete CRL (`crls`), whose CRL Number is `base_number`. Its own
-- `number` comes from the CA's one CRL sequence (`cas.next_crl_number`), so
-- it is above the base's and never reused. Replaced by each new delta; a new
-- base makes the next delta start again from it.
CREATE TABLE delta_crls (
    ca_id        TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    number       BIGINT NOT NULL,
    base_number  BIGINT NOT NULL,
    der          BYTEA NOT NULL,
    this_update  BIGINT NOT NULL,
    next_update  BIGINT NOT NULL
);
CREATE INDEX delta_crls_by_tenant ON delta_crls (tenant_id);
