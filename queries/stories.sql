-- Answers: which events were covered, by how many outlets, and which articles carry each one?
-- Parameters: days (default 7): stories first seen in the last N days:
--   `monitor sql --param days=30 queries/stories.sql`
-- Columns: story_id, first_seen_at, first_outlet, outlets (feeds that carried it, aliases included),
--          articles (stored copies), topics (matched by any copy), title, members (article titles by outlet)
WITH carriers AS (
    SELECT a.story_id, si.source_id
    FROM sightings si
    LEFT JOIN article_aliases al ON al.alias_id = si.article_id
    JOIN articles a ON a.article_id = coalesce(al.article_id, si.article_id)
)
SELECT
    st.story_id,
    st.first_seen_at,
    first_src.name AS first_outlet,
    (SELECT count(DISTINCT c.source_id) FROM carriers c WHERE c.story_id = st.story_id) AS outlets,
    (SELECT count(*) FROM articles a WHERE a.story_id = st.story_id) AS articles,
    (SELECT string_agg(DISTINCT m.topic_id, ', ') FROM matches m JOIN articles a USING (article_id)
     WHERE a.story_id = st.story_id) AS topics,
    st.title,
    (SELECT string_agg(coalesce(a.site_name, s.name, '?') || ': ' || coalesce(a.title, a.url), ' | '
                       ORDER BY a.fetched_at)
     FROM articles a LEFT JOIN sources s ON s.source_id = a.source_id
     WHERE a.story_id = st.story_id) AS members
FROM stories AS st
LEFT JOIN sources AS first_src ON first_src.source_id = st.first_source_id
WHERE st.first_seen_at >= now() - to_days(CAST(coalesce(getvariable('days'), 7) AS INTEGER))
ORDER BY outlets DESC, st.first_seen_at DESC;
