-- 008: how long each stage of a run took, and which days have been exported to Parquet.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS poll_s DOUBLE;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS fetch_s DOUBLE;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS extract_s DOUBLE;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS embed_s DOUBLE;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS match_s DOUBLE;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS store_s DOUBLE;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS deliver_s DOUBLE;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS publish_s DOUBLE;   -- refreshing the analysts' read copy
ALTER TABLE runs ADD COLUMN IF NOT EXISTS total_s DOUBLE;

-- One row per day and table written to Parquet by the maintenance flow (so a day is exported once).
CREATE TABLE IF NOT EXISTS exports (
    day         DATE NOT NULL,
    table_name  VARCHAR NOT NULL,
    path        VARCHAR NOT NULL,
    rows        BIGINT NOT NULL,
    exported_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (day, table_name)
);
