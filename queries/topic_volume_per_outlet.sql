-- Answers: which outlets cover each topic most, and how much of their output is on it?
-- Parameters: days (default 30), counted back by publication date:
--   `monitor sql --param days=7 queries/topic_volume_per_outlet.sql`
-- Columns: topic, outlet, flagged (articles on the topic), articles (all their articles in the window),
--          share (flagged / articles), first_flagged, last_flagged
WITH recent AS (
    SELECT a.*, coalesce(a.site_name, s.name, 'unknown') AS outlet
    FROM articles AS a LEFT JOIN sources AS s ON s.source_id = a.source_id
    WHERE coalesce(a.published_at, a.fetched_at) >= current_date - CAST(coalesce(getvariable('days'), 30) AS INTEGER)
),
totals AS (SELECT outlet, count(*) AS articles FROM recent GROUP BY outlet)
SELECT
    m.topic_id AS topic,
    r.outlet,
    count(*) AS flagged,
    t.articles,
    round(count(*) / t.articles, 3) AS share,
    min(coalesce(r.published_at, r.fetched_at)) AS first_flagged,
    max(coalesce(r.published_at, r.fetched_at)) AS last_flagged
FROM matches AS m
JOIN recent AS r USING (article_id)
JOIN totals AS t USING (outlet)
GROUP BY m.topic_id, r.outlet, t.articles
ORDER BY topic, flagged DESC, outlet;
