-- 003: adaptive polling and validator trust per feed.
ALTER TABLE sources ADD COLUMN poll_interval_s DOUBLE;
ALTER TABLE sources ADD COLUMN content_hash VARCHAR;                  -- sha256 of the last feed body
ALTER TABLE sources ADD COLUMN validators_trusted BOOLEAN DEFAULT true; -- false once ETag/Last-Modified lied
ALTER TABLE sources ADD COLUMN not_modified_streak INTEGER DEFAULT 0;
ALTER TABLE sources ADD COLUMN dead BOOLEAN DEFAULT false;            -- too many failures: polled once a day
-- Keep each entry's feed summary: the extraction fallback when its page is thin, even on a retry.
ALTER TABLE sightings ADD COLUMN summary VARCHAR;
