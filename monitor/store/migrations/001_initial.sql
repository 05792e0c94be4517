-- 001: the first schema. Ids are derived from URLs (see monitor/urls.py), so
-- re-running any stage upserts the same rows instead of adding new ones.

CREATE TABLE IF NOT EXISTS sources (
    source_id            VARCHAR PRIMARY KEY,   -- stable_id(feed url)
    name                 VARCHAR NOT NULL,
    url                  VARCHAR NOT NULL,
    language             VARCHAR,
    tags                 VARCHAR[],
    added_at             TIMESTAMPTZ NOT NULL,
    etag                 VARCHAR,
    last_modified        VARCHAR,
    last_polled_at       TIMESTAMPTZ,
    last_status          VARCHAR,               -- FetchStatus of the last poll
    last_http_status     INTEGER,
    last_error           VARCHAR,
    last_success_at      TIMESTAMPTZ,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    entries_seen         BIGINT NOT NULL DEFAULT 0,
    next_poll_at         TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS articles (
    article_id      VARCHAR PRIMARY KEY,        -- stable_id(canonical_url)
    canonical_url   VARCHAR NOT NULL UNIQUE,
    url             VARCHAR NOT NULL,
    source_id       VARCHAR NOT NULL,           -- first feed that carried it
    title           VARCHAR,
    author          VARCHAR,
    published_at    TIMESTAMPTZ,
    date_method     VARCHAR NOT NULL,           -- feed | page-metadata | first-seen
    language        VARCHAR,
    site_name       VARCHAR,
    text            VARCHAR NOT NULL,
    word_count      INTEGER NOT NULL,
    extract_method  VARCHAR NOT NULL,           -- trafilatura | trafilatura-recall | feed-summary
    fetched_at      TIMESTAMPTZ NOT NULL,
    run_id          VARCHAR NOT NULL
);

-- Every feed that listed an article, so syndication and reach stay visible.
CREATE TABLE IF NOT EXISTS sightings (
    article_id    VARCHAR NOT NULL,
    source_id     VARCHAR NOT NULL,
    url           VARCHAR NOT NULL,
    title         VARCHAR,
    feed_published_at TIMESTAMPTZ,
    first_seen_at TIMESTAMPTZ NOT NULL,
    run_id        VARCHAR NOT NULL,
    PRIMARY KEY (article_id, source_id)
);

-- Pages that could not become articles. Temporary failures are retried on
-- later runs until attempts reaches the configured maximum.
CREATE TABLE IF NOT EXISTS page_failures (
    article_id      VARCHAR PRIMARY KEY,
    canonical_url   VARCHAR NOT NULL,
    url             VARCHAR NOT NULL,
    source_id       VARCHAR NOT NULL,
    status          VARCHAR NOT NULL,           -- temporary | permanent
    http_status     INTEGER,
    error           VARCHAR NOT NULL,
    attempts        INTEGER NOT NULL,
    first_failed_at TIMESTAMPTZ NOT NULL,
    last_failed_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS passages (
    article_id  VARCHAR NOT NULL,
    seq         INTEGER NOT NULL,               -- 0 = lead (with title)
    text        VARCHAR NOT NULL,
    embedding   FLOAT[384] NOT NULL,            -- unit length
    model       VARCHAR NOT NULL,
    PRIMARY KEY (article_id, seq)
);

CREATE TABLE IF NOT EXISTS topics (
    topic_id    VARCHAR PRIMARY KEY,
    name        VARCHAR NOT NULL,
    description VARCHAR NOT NULL,
    threshold   DOUBLE NOT NULL,
    exemplars   VARCHAR[] NOT NULL,
    negatives   VARCHAR[] NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS matches (
    article_id       VARCHAR NOT NULL,
    topic_id         VARCHAR NOT NULL,
    score            DOUBLE NOT NULL,
    threshold        DOUBLE NOT NULL,           -- the threshold in force when matched
    best_passage_seq INTEGER NOT NULL,
    best_passage     VARCHAR NOT NULL,
    exemplar         VARCHAR NOT NULL,          -- the topic exemplar closest to that passage
    model            VARCHAR NOT NULL,
    status           VARCHAR NOT NULL DEFAULT 'new',   -- new | relevant | not-relevant
    matched_at       TIMESTAMPTZ NOT NULL,
    run_id           VARCHAR NOT NULL,
    PRIMARY KEY (article_id, topic_id)
);

-- Outbox: written in the same transaction as its match, delivered afterwards.
CREATE TABLE IF NOT EXISTS alerts (
    alert_id     VARCHAR PRIMARY KEY,           -- stable_id(article_id:topic_id): idempotency key
    article_id   VARCHAR NOT NULL,
    topic_id     VARCHAR NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    delivered_at TIMESTAMPTZ,
    channel      VARCHAR,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   VARCHAR
);

CREATE TABLE IF NOT EXISTS runs (
    run_id           VARCHAR PRIMARY KEY,
    flow_run_id      VARCHAR,
    started_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ,
    status           VARCHAR NOT NULL,          -- running | completed | failed | abandoned
    feeds_total      INTEGER,
    feeds_ok         INTEGER,
    feeds_not_modified INTEGER,
    feeds_failed     INTEGER,
    entries_seen     INTEGER,
    entries_new      INTEGER,
    pages_fetched    INTEGER,
    pages_failed     INTEGER,
    articles_stored  INTEGER,
    passages_stored  INTEGER,
    matches_new      INTEGER,
    alerts_new       INTEGER,
    alerts_delivered INTEGER,
    error            VARCHAR
);
