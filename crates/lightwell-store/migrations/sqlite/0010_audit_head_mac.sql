-- The head of each audit chain carries a MAC (under a key derived from the
-- KEK) over its scope, sequence number and record MAC, so moving the head
-- back after deleting the newest records no longer verifies. Heads written
-- before this migration have an empty MAC until the server seals them at
-- start (after verifying their chain).
ALTER TABLE audit_heads ADD COLUMN mac TEXT NOT NULL DEFAULT '';

-- Checkpoints of tenant chains are records of the system chain (scope '');
-- verify looks up a tenant's newest one by target. The condition must stay
-- the literal of lightwell_store::AUDIT_CHECKPOINT_ACTION.
CREATE INDEX audit_checkpoints ON audit (target, seq) WHERE scope = '' AND action = 'audit.checkpoint';
