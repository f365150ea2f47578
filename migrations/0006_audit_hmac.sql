-- 0006: the audit chain becomes keyed and anchored. From here on each row's hash is an HMAC-SHA256 (key derived
-- from the master key; never stored) over its seq, the previous hash and its fields, and `audit_head` holds a
-- signed summary (last seq, last hash, row count) updated in the same transaction as every batch of rows, so a
-- deleted tail or a chain recomputed without the key is found by `audit verify`.
--
-- Rows written before this migration keep their unkeyed SHA-256 hashes. The row inserted here records where
-- that legacy chain ends; its `mac` is empty until the daemon, at its first start after the upgrade, checks
-- the legacy rows with the old rule and signs the head ("re-anchored at row N on <date>").
CREATE TABLE audit_head (
  id               INTEGER PRIMARY KEY CHECK (id = 1),
  last_seq         INTEGER NOT NULL,
  last_hash        TEXT NOT NULL,
  row_count        INTEGER NOT NULL,
  legacy_last_seq  INTEGER NOT NULL,   -- rows with seq <= this are the pre-0006 unkeyed SHA-256 chain (0: none)
  legacy_last_hash TEXT NOT NULL,      -- hash of that last legacy row: the keyed chain continues from it
  anchored_at      TEXT,               -- when the daemon signed the anchor
  reset_at         TEXT,               -- set once, kept forever: the daemon found the head missing or invalid and re-signed it
  reset_reason     TEXT,
  updated_at       TEXT,
  mac              TEXT NOT NULL       -- HMAC over every column above; '' = not signed yet
);

INSERT INTO audit_head (id, last_seq, last_hash, row_count, legacy_last_seq, legacy_last_hash, mac)
SELECT 1, s.last_seq, s.last_hash, s.n, s.last_seq, s.last_hash, ''
FROM (
  SELECT ifnull((SELECT max(id) FROM audit_log), 0) AS last_seq,
         ifnull((SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1), '0000000000000000000000000000000000000000000000000000000000000000') AS last_hash,
         (SELECT count(*) FROM audit_log) AS n
) AS s;
