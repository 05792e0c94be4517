-- 003: adaptive polling and validator trust per feed.
ALTER TABLE sources ADD COLUMN IF NOT EXISTS poll_interval_s DOUBLE;
ALTER TABLE sources ADD COLUMN IF NOT EXISTS content_hash VARCHAR;                  -- sha256 of the last feed body
ALTER TABLE sources ADD COLUMN IF NOT EXISTS validators_trusted BOOLEAN DEFAULT true; -- false once ETag/Last-Modified lied
ALTER TABLE sources ADD COLUMN IF NOT EXISTS not_modified_streak INTEGER DEFAULT 0;
ALTER TABLE sources ADD COLUMN IF NOT EXISTS dead BOOLEAN DEFAULT false;            -- too many failures: polled once a day
-- Keep each entry's feed summary: the extraction fallback when its page is thin, even on a retry.
ALTER TABLE sightings ADD COLUMN IF NOT EXISTS summary VARCHAR;
