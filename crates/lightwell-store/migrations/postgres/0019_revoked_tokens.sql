-- PostgreSQL flavour of the SQLite migration of the same number.
-- Access tokens revoked before they expire (RFC 7009), by their `jti`:
-- introspection, Lightwell's API and the Kubernetes token review refuse
-- them. A row is kept until the token would have expired anyway.
CREATE TABLE revoked_tokens (
    tenant_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, jti)
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);
