-- 0005: injection sites. Where a credential's phantom may be swapped for its secret: a comma list of
-- header, query, body, path in that order (src/shared/protocol/inject-sites.ts). Existing credentials get
-- the default, request headers only; a phantom elsewhere then reaches the upstream as the worthless phantom.
-- The CHECK lists every non-empty ordered subset, so a bad value cannot be stored whatever writes it.
ALTER TABLE credentials ADD COLUMN inject TEXT NOT NULL DEFAULT 'header' CHECK (inject IN (
  'header', 'query', 'body', 'path',
  'header,query', 'header,body', 'header,path', 'query,body', 'query,path', 'body,path',
  'header,query,body', 'header,query,path', 'header,body,path', 'query,body,path',
  'header,query,body,path'
));
