-- 0008: usage accounting (issue 24). One row per UTC hour, credential, pool, agent and model with the
-- requests and normalised token counts of that hour (see src/shared/protocol/usage.ts for what input,
-- output and cached mean). '' stands for "none/unknown" in the key columns (a NULL would defeat the
-- primary key's upsert). Rows older than 90 days are deleted by the daemon.
CREATE TABLE usage_hourly (
  hour TEXT NOT NULL,
  credential TEXT NOT NULL,
  pool TEXT NOT NULL DEFAULT '',
  agent TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '',
  requests INTEGER NOT NULL DEFAULT 0 CHECK (requests >= 0),
  input_tokens INTEGER NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
  output_tokens INTEGER NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
  cached_tokens INTEGER NOT NULL DEFAULT 0 CHECK (cached_tokens >= 0),
  PRIMARY KEY (hour, credential, pool, agent, model)
) WITHOUT ROWID;
CREATE INDEX usage_hourly_by_credential ON usage_hourly (credential, hour);
