-- Names claimed by principals (security review, issue 13): a user's,
-- service's or machine's own name, every DNS name registered to a machine
-- or service and a user's e-mail address, lower case. One owner per name in a tenant, whatever the kind,
-- so no two principals can be given certificates with the same CN or DNS
-- name. Existing rows are claimed oldest first; a later duplicate keeps its
-- row but claims nothing.
CREATE TABLE principal_names (
    tenant_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    principal_id  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
CREATE INDEX principal_names_by_principal ON principal_names (principal_id);
INSERT INTO principal_names (tenant_id, name, principal_id)
    SELECT tenant_id, lower(name), id FROM principals WHERE kind <> 'group' ORDER BY created_at, id
    ON CONFLICT DO NOTHING;
INSERT INTO principal_names (tenant_id, name, principal_id)
    SELECT p.tenant_id, lower(h), p.id FROM principals p, json_array_elements_text(p.hostnames::json) h
    WHERE p.kind <> 'group' ORDER BY p.created_at, p.id
    ON CONFLICT DO NOTHING;
INSERT INTO principal_names (tenant_id, name, principal_id)
    SELECT tenant_id, lower(email), id FROM principals WHERE kind <> 'group' AND email IS NOT NULL
    ORDER BY created_at, id
    ON CONFLICT DO NOTHING;

-- A join token may bind the IP addresses a host may put into its certificate.
ALTER TABLE join_tokens ADD COLUMN ips TEXT NOT NULL DEFAULT '[]';
