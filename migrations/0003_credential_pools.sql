-- 0003: credential pools. A pool has one pool-scoped phantom and an ordered list of member credentials;
-- credential_health remembers cooldowns across restarts. A credential that is a pool member cannot be
-- deleted while it is one (RESTRICT); deleting a pool leaves its members intact (CASCADE on the link).
CREATE TABLE credential_pools (
  id            INTEGER PRIMARY KEY,
  name          TEXT NOT NULL UNIQUE,
  phantom       TEXT NOT NULL UNIQUE,
  active_member TEXT,
  created_at    TEXT NOT NULL
);

CREATE TABLE credential_pool_members (
  pool_id       INTEGER NOT NULL REFERENCES credential_pools (id) ON DELETE CASCADE,
  credential_id INTEGER NOT NULL REFERENCES credentials (id) ON DELETE RESTRICT,
  position      INTEGER NOT NULL CHECK (position >= 0),
  PRIMARY KEY (pool_id, credential_id),
  UNIQUE (pool_id, position)
);

CREATE TABLE credential_health (
  credential_id  INTEGER PRIMARY KEY REFERENCES credentials (id) ON DELETE CASCADE,
  status         TEXT NOT NULL CHECK (status IN ('healthy', 'cooling')),
  cooldown_until TEXT,
  reason         TEXT,
  updated_at     TEXT NOT NULL
);
