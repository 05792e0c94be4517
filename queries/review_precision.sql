-- Answers: how precise is each topic, by analysts' verdicts? Per topic: how many flagged matches were
--          judged, how many were relevant, the precision of what was flagged, and relevant stories the
--          topic missed (reviewed relevant but not flagged). Each pair counts with its latest verdict.
-- Parameters: days (default 90): verdicts given in the last N days:
--   `monitor sql --param days=30 queries/review_precision.sql`
-- Columns: topic, threshold, reviewed, flagged_reviewed, relevant, not_relevant, precision (relevant share of
--          flagged reviewed pairs), missed (relevant, not flagged), reviewers, last_review
SELECT
    t.topic_id AS topic,
    t.threshold,
    count(r.review_id) AS reviewed,
    count(r.review_id) FILTER (WHERE m.article_id IS NOT NULL) AS flagged_reviewed,
    count(r.review_id) FILTER (WHERE r.verdict = 'relevant') AS relevant,
    count(r.review_id) FILTER (WHERE r.verdict = 'not-relevant') AS not_relevant,
    round(
        count(r.review_id) FILTER (WHERE r.verdict = 'relevant' AND m.article_id IS NOT NULL)
        / nullif(count(r.review_id) FILTER (WHERE m.article_id IS NOT NULL), 0), 3
    ) AS precision,
    count(r.review_id) FILTER (WHERE r.verdict = 'relevant' AND m.article_id IS NULL) AS missed,
    string_agg(DISTINCT r.reviewer, ', ' ORDER BY r.reviewer) AS reviewers,
    max(r.reviewed_at) AS last_review
FROM topics AS t
LEFT JOIN review_latest AS r
    ON r.topic_id = t.topic_id
   AND r.reviewed_at >= now() - to_days(CAST(coalesce(getvariable('days'), 90) AS INTEGER))
LEFT JOIN matches AS m ON m.article_id = r.article_id AND m.topic_id = r.topic_id
GROUP BY t.topic_id, t.threshold
ORDER BY t.topic_id;
