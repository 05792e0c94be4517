-- Answers: how much coverage does each topic get per day? Flagged stories and articles per topic per day,
--          with how many outlets carried them, so a spike in coverage stands out.
-- Parameters: days (default 30), counted back by publication date (first-seen when the date is unknown):
--   `monitor sql --param days=90 queries/topic_volume_per_day.sql`
-- Columns: day, topic, stories, articles, outlets, best_score
SELECT
    CAST(coalesce(a.published_at, a.fetched_at) AS DATE) AS day,
    m.topic_id AS topic,
    count(DISTINCT coalesce(a.story_id, a.article_id)) AS stories,
    count(*) AS articles,
    count(DISTINCT a.source_id) AS outlets,
    round(max(m.score), 3) AS best_score
FROM matches AS m
JOIN articles AS a USING (article_id)
WHERE coalesce(a.published_at, a.fetched_at) >= current_date - CAST(coalesce(getvariable('days'), 30) AS INTEGER)
GROUP BY ALL
ORDER BY day DESC, topic;
