-- Answers: which articles were newly flagged for a topic in the last N hours, best first?
-- Parameters: hours (default 24): `monitor sql --param hours=48 queries/new_matches_24h.sql`
-- Columns: matched_at, topic, score, title, outlet, published_at, url, passage (the best-matching passage)
SELECT
    m.matched_at,
    m.topic_id AS topic,
    round(m.score, 3) AS score,
    a.title,
    coalesce(a.site_name, s.name) AS outlet,
    a.published_at,
    a.url,
    m.best_passage AS passage
FROM matches AS m
JOIN articles AS a USING (article_id)
LEFT JOIN sources AS s ON s.source_id = a.source_id
WHERE m.status = 'new'
  AND m.matched_at >= now() - to_hours(CAST(coalesce(getvariable('hours'), 24) AS INTEGER))
ORDER BY m.topic_id, m.score DESC;
