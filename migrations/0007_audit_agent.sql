-- 0007: audit rows name the `sluicectl run` agent that made the request (its `--name`), or NULL for requests
-- made with the owner's proxy token. The chain hashes the agent only when it is set, so every row written
-- before this migration keeps verifying as it is.
ALTER TABLE audit_log ADD COLUMN agent TEXT;
