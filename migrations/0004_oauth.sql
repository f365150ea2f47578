-- 0004: OAuth credentials. The vault's sealed secret for an oauth credential is a JSON document
-- {access_token, refresh_token, expires_at, id_token, client_id}; the agent holds two phantoms, one for the
-- access token (`phantom`, JWT-shaped) and one for the refresh token (`phantom_refresh`). A pool of OAuth
-- members has its own stable pair. `token_url` is where refreshes go (JSON or form bodies).
ALTER TABLE credentials ADD COLUMN token_url TEXT;
ALTER TABLE credentials ADD COLUMN phantom_refresh TEXT;
CREATE UNIQUE INDEX credentials_phantom_refresh ON credentials (phantom_refresh) WHERE phantom_refresh IS NOT NULL;
ALTER TABLE credential_pools ADD COLUMN phantom_refresh TEXT;
CREATE UNIQUE INDEX pools_phantom_refresh ON credential_pools (phantom_refresh) WHERE phantom_refresh IS NOT NULL;
