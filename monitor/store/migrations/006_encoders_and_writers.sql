-- 006: the encoder seam and the writer lease.
-- Vectors of any dimension: each passage records the encoder that produced it (`model`), and
-- vectors of different encoders are never compared. Queries that need DuckDB's fixed-size
-- array functions cast: embedding::FLOAT[384].
ALTER TABLE passages ALTER embedding TYPE FLOAT[];
-- The process behind each run, so that only a run whose process is gone is marked abandoned.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS pid INTEGER;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS hostname VARCHAR;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS command VARCHAR;
