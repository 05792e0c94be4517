-- Answers: which feeds need attention? Health, schedule and validator trust of every feed, worst first.
-- Parameters: none.
-- Columns: feed, health (invalid | dead | failing | ok | never polled), last_status, http, consecutive_failures,
--          last_success_at, next_poll_at, poll_interval_min, validators_trusted, entries_seen,
--          articles, last_error, url
SELECT
    s.name AS feed,
    CASE
        WHEN s.last_status = 'invalid' THEN 'invalid'
        WHEN s.dead THEN 'dead'
        WHEN s.last_status IS NULL THEN 'never polled'
        WHEN s.consecutive_failures > 0 THEN 'failing'
        ELSE 'ok'
    END AS health,
    s.last_status,
    s.last_http_status AS http,
    s.consecutive_failures,
    s.last_success_at,
    s.next_poll_at,
    round(s.poll_interval_s / 60, 1) AS poll_interval_min,
    s.validators_trusted,
    s.entries_seen,
    (SELECT count(*) FROM articles a WHERE a.source_id = s.source_id) AS articles,
    s.last_error,
    s.url
FROM sources AS s
ORDER BY s.last_status = 'invalid' DESC, s.dead DESC, s.consecutive_failures DESC, s.last_success_at NULLS FIRST,
         s.name;
