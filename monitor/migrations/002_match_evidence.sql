-- 002: record the lexical evidence behind each match and the topic settings that produced it.
ALTER TABLE matches ADD COLUMN embedding_score DOUBLE;
ALTER TABLE matches ADD COLUMN keyword_hits JSON;       -- {"keyword": count, ...} for the topic's keywords
ALTER TABLE topics ADD COLUMN keywords VARCHAR[];
ALTER TABLE topics ADD COLUMN keyword_penalty DOUBLE;
ALTER TABLE topics ADD COLUMN language VARCHAR;
