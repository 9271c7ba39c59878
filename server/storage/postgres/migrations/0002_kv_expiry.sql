-- Connector records may be put with a time to live (idempotency records of finished work): expired ones are no
-- longer read and are deleted in passing, so the table does not grow with every ticket ever routed.
ALTER TABLE kv ADD COLUMN expires_at double precision;
CREATE INDEX kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL;
