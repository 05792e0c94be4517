-- 009: how long a run waited for downloads (the part not hidden behind processing), and a hash of
-- each passage's text, so a syndicated copy's identical passages reuse the stored vectors.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS fetch_wait_s DOUBLE;
ALTER TABLE passages ADD COLUMN IF NOT EXISTS text_hash VARCHAR;   -- sha1 of the passage text (model is its own column)
ALTER TABLE runs ADD COLUMN IF NOT EXISTS passages_reused INTEGER;     -- passages whose vectors came from stored copies
