-- Answers: how many articles did each outlet publish per day, and how many were flagged?
-- Parameters: days (default 14), counted back from today by publication date:
--   `monitor sql --param days=30 queries/articles_per_outlet_per_day.sql`
-- Columns: day, outlet, articles, flagged (articles with at least one match)
SELECT
    CAST(a.published_at AS DATE) AS day,
    coalesce(a.site_name, s.name, 'unknown') AS outlet,
    count(*) AS articles,
    count(*) FILTER (WHERE EXISTS (SELECT 1 FROM matches m WHERE m.article_id = a.article_id)) AS flagged
FROM articles AS a
LEFT JOIN sources AS s ON s.source_id = a.source_id
WHERE a.published_at >= current_date - CAST(coalesce(getvariable('days'), 14) AS INTEGER)
GROUP BY ALL
ORDER BY day DESC, articles DESC, outlet;
