-- 0001: credentials (secrets encrypted by the vault), policy rules, the hash-chained audit log and settings.
-- Enum-like columns carry CHECK constraints so a bad row cannot exist, whatever writes it.
CREATE TABLE credentials (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  kind        TEXT NOT NULL CHECK (kind IN ('api-key', 'oauth')),
  hosts       TEXT NOT NULL,                 -- JSON array of host globs the secret may be sent to
  header      TEXT,                          -- header to inject when the request carries none
  format      TEXT,                          -- e.g. 'Bearer {}'
  phantom     TEXT NOT NULL UNIQUE,
  secret_iv   BLOB NOT NULL,
  secret_ct   BLOB NOT NULL,
  secret_tag  BLOB NOT NULL,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);

CREATE TABLE rules (
  id          INTEGER PRIMARY KEY,
  verdict     TEXT NOT NULL CHECK (verdict IN ('allow', 'deny', 'ask')),
  host        TEXT NOT NULL,
  port        INTEGER CHECK (port IS NULL OR port BETWEEN 1 AND 65535),
  method      TEXT,
  path        TEXT,
  coalesce    INTEGER NOT NULL DEFAULT 1 CHECK (coalesce IN (0, 1)),
  source      TEXT NOT NULL DEFAULT 'user' CHECK (source IN ('user', 'approval')),
  created_at  TEXT NOT NULL
);
-- One rule per matcher: makes "always allow" from many racing waiters idempotent.
CREATE UNIQUE INDEX rules_matcher ON rules (host, ifnull(port, 0), ifnull(method, ''), ifnull(path, ''));

CREATE TABLE audit_log (
  id          INTEGER PRIMARY KEY,
  ts          TEXT NOT NULL,
  event       TEXT NOT NULL,
  client      TEXT,
  host        TEXT,
  port        INTEGER,
  method      TEXT,
  path        TEXT,
  verdict     TEXT,
  rule_id     INTEGER,
  credential  TEXT,
  status      INTEGER,
  bytes       INTEGER,
  duration_ms REAL,
  detail      TEXT,
  prev_hash   TEXT NOT NULL,
  hash        TEXT NOT NULL
);

CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
