-- A CRL lists a CA's revoked, unexpired certificates: this partial index
-- holds exactly those columns, so signing a CRL reads the index alone
-- instead of every revoked certificate's row and DER.
CREATE INDEX certificates_revoked ON certificates (tenant_id, ca_id, not_after, serial, revoked_at, revocation_reason)
    WHERE revoked_at IS NOT NULL;
