-- PostgreSQL flavour of the SQLite migration of the same number.
-- The delegated OCSP responder of each CA (RFC 6960 4.2.2.2): a short-lived
-- certificate with EKU id-kp-OCSPSigning signed by the CA, and its key
-- sealed under the KEK like CA keys. One row per CA, replaced on rotation.
CREATE TABLE ocsp_responders (
    ca_id       TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    cert_der    BYTEA NOT NULL,
    sealed_key  BYTEA NOT NULL,
    not_before  BIGINT NOT NULL,
    not_after   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX ocsp_responders_by_tenant ON ocsp_responders (tenant_id);
