-- Answers: in which languages does coverage arrive, overall and on the topics?
-- Parameters: days (default 30), counted back by publication date:
--   `monitor sql --param days=7 queries/language_mix.sql`
-- Columns: language, articles, share, flagged (articles with a match), outlets, encoders (that embedded them)
WITH recent AS (
    SELECT * FROM articles
    WHERE coalesce(published_at, fetched_at) >= current_date - CAST(coalesce(getvariable('days'), 30) AS INTEGER)
)
SELECT
    coalesce(r.language, 'unknown') AS language,
    count(*) AS articles,
    round(count(*) / sum(count(*)) OVER (), 3) AS share,
    count(*) FILTER (WHERE EXISTS (SELECT 1 FROM matches AS m WHERE m.article_id = r.article_id)) AS flagged,
    count(DISTINCT r.source_id) AS outlets,
    (SELECT string_agg(DISTINCT p.model, ', ' ORDER BY p.model) FROM passages AS p JOIN recent AS x USING (article_id)
     WHERE coalesce(x.language, 'unknown') = coalesce(r.language, 'unknown')) AS encoders
FROM recent AS r
GROUP BY ALL
ORDER BY articles DESC, language;
