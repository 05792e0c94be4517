-- Answers: how did each flagged story spread? Who carried it first, who followed, and over how long.
-- Parameters: days (default 14): stories first seen in the last N days; topic (optional): one topic only:
--   `monitor sql --param days=30 --param topic=jcpoa-talks queries/story_timeline.sql`
-- Columns: story_id, title, topics, first_outlet, first_seen_at, outlets, spread_hours (first to last copy),
--          timeline (outlet @ time, in order of arrival)
WITH copies AS (
    SELECT a.story_id, coalesce(a.site_name, s.name, '?') AS outlet,
           coalesce(a.published_at, a.fetched_at) AS at_time
    FROM articles AS a LEFT JOIN sources AS s ON s.source_id = a.source_id
    WHERE a.story_id IS NOT NULL
    UNION ALL  -- feeds that listed a copy under another URL (an alias) carried it too
    SELECT a.story_id, src.name, si.first_seen_at
    FROM sightings AS si JOIN article_aliases AS al ON al.alias_id = si.article_id
    JOIN articles AS a ON a.article_id = al.article_id JOIN sources AS src ON src.source_id = si.source_id
),
flagged AS (
    SELECT a.story_id, string_agg(DISTINCT m.topic_id, ', ' ORDER BY m.topic_id) AS topics
    FROM matches AS m JOIN articles AS a USING (article_id)
    WHERE getvariable('topic') IS NULL OR m.topic_id = getvariable('topic')
    GROUP BY a.story_id
)
SELECT
    st.story_id,
    st.title,
    f.topics,
    (SELECT name FROM sources WHERE source_id = st.first_source_id) AS first_outlet,
    st.first_seen_at,
    count(DISTINCT c.outlet) AS outlets,
    round(date_diff('second', min(c.at_time), max(c.at_time)) / 3600, 1) AS spread_hours,
    string_agg(c.outlet || ' @ ' || strftime(c.at_time, '%Y-%m-%d %H:%M'), ' → ' ORDER BY c.at_time, c.outlet)
        AS timeline
FROM stories AS st
JOIN flagged AS f USING (story_id)
JOIN copies AS c USING (story_id)
WHERE st.first_seen_at >= now() - to_days(CAST(coalesce(getvariable('days'), 14) AS INTEGER))
GROUP BY st.story_id, st.title, f.topics, st.first_source_id, st.first_seen_at
ORDER BY outlets DESC, st.first_seen_at DESC;
