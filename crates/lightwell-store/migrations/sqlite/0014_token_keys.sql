-- Token keys: each tenant's JWT signing keys (JWT-SVIDs, OpenID tokens).
-- A key is published from created_at, signs from activates_at until
-- retires_at, and stays published until expires_at, so verifiers that cache
-- the JWKS see a key before any token it signs and after the last one
-- expires. The private key is sealed under the KEK (context: the key id).
CREATE TABLE token_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    algorithm     TEXT NOT NULL,
    public_jwk    TEXT NOT NULL,
    sealed_key    BLOB NOT NULL,
    created_at    BIGINT NOT NULL,
    activates_at  BIGINT NOT NULL,
    retires_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX token_keys_tenant ON token_keys (tenant_id, activates_at);
