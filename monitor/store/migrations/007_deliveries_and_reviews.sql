-- 007: the delivery ledger (one row per alert and channel), channel health, digests, and reviews.

-- Written in the same transaction as the match and its alert. A row is claimed ('sending')
-- before its message goes out and recorded after ('sent', or 'failed' with a back-off); a
-- claim whose process died is resent with the same idempotency key (the alert id).
CREATE TABLE IF NOT EXISTS deliveries (
    alert_id        VARCHAR NOT NULL,
    channel_id      VARCHAR NOT NULL,           -- stable id of the channel's full URL (never stored)
    channel         VARCHAR NOT NULL,           -- the URL with credentials and tokens masked
    mode            VARCHAR NOT NULL,           -- immediate | digest
    status          VARCHAR NOT NULL,           -- pending | sending | sent | failed | gave-up
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      VARCHAR,
    created_at      TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_at      TIMESTAMPTZ,
    claimed_by      VARCHAR,                    -- pid@host of the sender holding the claim
    sent_at         TIMESTAMPTZ,
    digest_id       VARCHAR,                    -- the digest message that carried it
    note            VARCHAR,                    -- e.g. over the daily budget: folded into the digest
    PRIMARY KEY (alert_id, channel_id)
);

-- One row per channel: a channel that fails backs off as a whole, so its backlog goes out
-- oldest first when it returns, and it never delays the other channels.
CREATE TABLE IF NOT EXISTS channel_state (
    channel_id           VARCHAR PRIMARY KEY,
    channel              VARCHAR NOT NULL,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      TIMESTAMPTZ,
    last_error           VARCHAR,
    last_success_at      TIMESTAMPTZ
);

-- A digest message: several alerts of one topic on one channel, sent as one message.
CREATE TABLE IF NOT EXISTS digests (
    digest_id  VARCHAR PRIMARY KEY,             -- idempotency key of the digest message
    topic_id   VARCHAR NOT NULL,
    channel_id VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at    TIMESTAMPTZ,
    stories    INTEGER NOT NULL
);

-- An analyst's verdict on an (article, topic) pair, with what was in force when it was given.
CREATE TABLE IF NOT EXISTS reviews (
    review_id   VARCHAR PRIMARY KEY,
    article_id  VARCHAR NOT NULL,
    topic_id    VARCHAR NOT NULL,
    verdict     VARCHAR NOT NULL,               -- relevant | not-relevant
    note        VARCHAR,
    reviewer    VARCHAR NOT NULL,
    reviewed_at TIMESTAMPTZ NOT NULL,
    score       DOUBLE,                         -- the match's score when reviewed (NULL: not flagged)
    threshold   DOUBLE,                         -- the topic's threshold in force
    model       VARCHAR                         -- the encoder that produced the score
);

-- Alerts queued before the ledger existed went to the JSON-lines file only: carry them over.
INSERT INTO deliveries (alert_id, channel_id, channel, mode, status, attempts, last_error, created_at,
                        next_attempt_at, sent_at)
SELECT alert_id, 'file', coalesce(channel, 'file'), 'immediate',
       CASE WHEN delivered_at IS NULL THEN 'pending' ELSE 'sent' END,
       attempts, last_error, created_at, created_at, delivered_at
FROM alerts
ON CONFLICT DO NOTHING;

CREATE OR REPLACE VIEW review_latest AS
SELECT * FROM reviews
QUALIFY row_number() OVER (PARTITION BY article_id, topic_id ORDER BY reviewed_at DESC, review_id DESC) = 1;
