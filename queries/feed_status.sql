-- Answers: is every feed healthy? When was each last polled and last successful, and why did it fail?
-- Parameters: none.
-- Columns: feed, last_status (ok | not_modified | temporary | permanent), http, consecutive_failures,
--          last_polled_at, last_success_at, entries_seen, articles (stored from this feed), last_error, url
SELECT
    s.name AS feed,
    coalesce(s.last_status, 'never polled') AS last_status,
    s.last_http_status AS http,
    s.consecutive_failures,
    s.last_polled_at,
    s.last_success_at,
    s.entries_seen,
    (SELECT count(*) FROM articles a WHERE a.source_id = s.source_id) AS articles,
    s.last_error,
    s.url
FROM sources AS s
ORDER BY s.consecutive_failures DESC, s.last_status DESC NULLS FIRST, s.name;
