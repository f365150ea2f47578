-- 0009: pool options and daily budgets (issue 24).
-- rotate_below: move off a member whose rate-limit headroom fell below this percentage (NULL: off).
-- plan_limits_only: a member whose account moved to paid overage counts as exhausted (never a fallback).
ALTER TABLE credential_pools ADD COLUMN rotate_below INTEGER CHECK (rotate_below IS NULL OR (rotate_below BETWEEN 1 AND 99));
ALTER TABLE credential_pools ADD COLUMN plan_limits_only INTEGER NOT NULL DEFAULT 0 CHECK (plan_limits_only IN (0, 1));

-- Daily budgets belong to the credential (removed with it). NULL: no budget of that kind.
CREATE TABLE credential_budgets (
  credential_id  INTEGER PRIMARY KEY REFERENCES credentials (id) ON DELETE CASCADE,
  daily_tokens   INTEGER CHECK (daily_tokens IS NULL OR daily_tokens >= 1),
  daily_requests INTEGER CHECK (daily_requests IS NULL OR daily_requests >= 1),
  updated_at     TEXT NOT NULL
);
