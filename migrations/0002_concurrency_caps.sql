-- 0002: per-credential concurrency caps and optional bounded wait queue. Bounds match
-- src/shared/protocol/limits.ts so an out-of-range cap is structurally impossible.
ALTER TABLE credentials ADD COLUMN max_concurrent INTEGER NOT NULL DEFAULT 8
  CHECK (max_concurrent BETWEEN 1 AND 256);
ALTER TABLE credentials ADD COLUMN queue_timeout_ms INTEGER NOT NULL DEFAULT 0
  CHECK (queue_timeout_ms BETWEEN 0 AND 600000);
