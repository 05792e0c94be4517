-- 004: exact duplicates, canonical aliases, and stories (one per event, however many outlets carry it).

-- Another URL for an article already stored: a feed-proxy or tracking URL whose page names a
-- canonical link, or a copy whose normalised text is identical. Sightings of an alias count
-- for the article; pending work skips them.
CREATE TABLE IF NOT EXISTS article_aliases (
    alias_id    VARCHAR PRIMARY KEY,      -- stable_id of the URL the feed gave
    article_id  VARCHAR NOT NULL,         -- the article it turned out to be
    url         VARCHAR NOT NULL,
    reason      VARCHAR NOT NULL,         -- canonical-link | same-text
    created_at  TIMESTAMPTZ NOT NULL
);

ALTER TABLE articles ADD COLUMN IF NOT EXISTS text_hash VARCHAR;   -- sha256 of the normalised text
ALTER TABLE articles ADD COLUMN IF NOT EXISTS story_id VARCHAR;    -- stories.story_id

-- MinHash signatures of word 5-shingles (see monitor/stories.py), kept so that clustering
-- survives restarts.
CREATE TABLE IF NOT EXISTS article_signatures (
    article_id  VARCHAR PRIMARY KEY,
    shingles    INTEGER NOT NULL,
    minhash     UINTEGER[128] NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS stories (
    story_id         VARCHAR PRIMARY KEY,   -- id of the story's first article: stable once assigned
    first_seen_at    TIMESTAMPTZ NOT NULL,
    first_article_id VARCHAR NOT NULL,
    first_source_id  VARCHAR NOT NULL,
    title            VARCHAR
);
