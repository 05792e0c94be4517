-- Answers: which outlets started carrying a topic this week? Outlets with a flagged article in the last
--          N days and none before, with their first flagged article.
-- Parameters: days (default 7): `monitor sql --param days=14 queries/new_outlets.sql`
-- Columns: topic, outlet, first_flagged_at, flagged (in the window), first_title, first_url
WITH flagged AS (
    SELECT m.topic_id, coalesce(a.site_name, s.name, 'unknown') AS outlet, a.title, a.url,
           coalesce(a.published_at, a.fetched_at) AS at_time
    FROM matches AS m JOIN articles AS a USING (article_id) LEFT JOIN sources AS s ON s.source_id = a.source_id
),
firsts AS (
    -- Ordering by (time, url) makes the first article one row, the same on every run: articles
    -- published in the same minute would otherwise tie, and each column could pick another.
    SELECT topic_id, outlet, min(at_time) AS first_flagged_at, count(*) AS flagged,
           arg_min(title, (at_time, url)) AS first_title, arg_min(url, (at_time, url)) AS first_url
    FROM flagged GROUP BY topic_id, outlet
)
SELECT topic_id AS topic, outlet, first_flagged_at, flagged, first_title, first_url
FROM firsts
WHERE first_flagged_at >= now() - to_days(CAST(coalesce(getvariable('days'), 7) AS INTEGER))
ORDER BY topic, first_flagged_at DESC, outlet;
