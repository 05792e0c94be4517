-- Answers: what was delivered where, and what is stuck? One row per alert and channel, newest first,
--          with attempts, the last error and the channel's health; digests show the stories they carried.
-- Parameters: days (default 7): alerts queued in the last N days:
--   `monitor sql --param days=30 queries/alert_log.sql`
-- Columns: queued_at, topic, title, channel (credentials masked), mode (immediate | digest), status
--          (pending | sending | sent | failed | gave-up), attempts, sent_at, next_attempt_at, last_error,
--          note, digest_stories, channel_failures, alert_id
SELECT
    d.created_at AS queued_at,
    a.topic_id AS topic,
    ar.title,
    d.channel,
    d.mode,
    d.status,
    d.attempts,
    d.sent_at,
    CASE WHEN d.status IN ('pending', 'failed') THEN greatest(d.next_attempt_at, cs.next_attempt_at) END
        AS next_attempt_at,
    d.last_error,
    d.note,
    g.stories AS digest_stories,
    coalesce(cs.consecutive_failures, 0) AS channel_failures,
    d.alert_id
FROM deliveries AS d
JOIN alerts AS a USING (alert_id)
JOIN articles AS ar ON ar.article_id = a.article_id
LEFT JOIN digests AS g ON g.digest_id = d.digest_id
LEFT JOIN channel_state AS cs ON cs.channel_id = d.channel_id
WHERE d.created_at >= now() - to_days(CAST(coalesce(getvariable('days'), 7) AS INTEGER))
ORDER BY d.created_at DESC, d.channel, d.alert_id;
