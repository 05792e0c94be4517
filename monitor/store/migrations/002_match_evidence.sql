-- 002: record the lexical evidence behind each match and the topic settings that produced it.
ALTER TABLE matches ADD COLUMN IF NOT EXISTS embedding_score DOUBLE;
ALTER TABLE matches ADD COLUMN IF NOT EXISTS keyword_hits JSON;       -- {"keyword": count, ...} for the topic's keywords
ALTER TABLE topics ADD COLUMN IF NOT EXISTS keywords VARCHAR[];
ALTER TABLE topics ADD COLUMN IF NOT EXISTS keyword_penalty DOUBLE;
ALTER TABLE topics ADD COLUMN IF NOT EXISTS language VARCHAR;
