-- The thisUpdate of the complete CRL a delta CRL stands on: the next delta
-- lists every revocation from then on (less a margin for replicas' clocks),
-- and the base moves on once it is an hour old or the delta grows large.
ALTER TABLE delta_crls ADD COLUMN base_this_update BIGINT NOT NULL DEFAULT 0;
