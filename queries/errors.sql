-- Answers: what failed, and which failures are the monitor's own bugs? Pages that could not become
--          articles, feeds whose last poll failed, and feed-list entries that were rejected; bugs
--          (status 'error': an exception nobody anticipated) first, then the most recent.
-- Parameters: none.
-- Columns: kind (page | feed | feed-list entry), status (error | temporary | permanent | invalid), error,
--          url, source (the feed), attempts, first_failed_at, last_failed_at, retried (what happens next)
SELECT * FROM (
SELECT
    'page' AS kind,
    f.status,
    f.error,
    f.url,
    s.name AS source,
    f.attempts,
    f.first_failed_at,
    f.last_failed_at,
    CASE f.status
        WHEN 'error' THEN 'yes, with back-off (5 min doubling to 6 h), until it works'
        WHEN 'temporary' THEN 'yes, on later runs, until the attempt limit'
        ELSE 'no'
    END AS retried
FROM page_failures AS f
LEFT JOIN sources AS s USING (source_id)
UNION ALL
SELECT
    CASE WHEN s.last_status = 'invalid' THEN 'feed-list entry' ELSE 'feed' END AS kind,
    s.last_status AS status,
    s.last_error AS error,
    s.url,
    s.name AS source,
    s.consecutive_failures AS attempts,
    NULL AS first_failed_at,
    s.last_polled_at AS last_failed_at,
    CASE
        WHEN s.last_status = 'invalid' THEN 'no: fix the entry in feeds.yaml'
        WHEN s.dead THEN 'once a day (dead feed)'
        ELSE 'yes, at its next poll (' || coalesce(strftime(s.next_poll_at, '%Y-%m-%d %H:%M'), 'now') || ')'
    END AS retried
FROM sources AS s
WHERE s.last_status IN ('error', 'temporary', 'permanent', 'invalid')
) AS failures
ORDER BY status = 'error' DESC, last_failed_at DESC NULLS LAST, url;
