-- Answers: which events were covered, by how many outlets, and which articles carry each one?
-- Parameters: days (default 7): stories first seen in the last N days:
--   `monitor sql --param days=30 queries/stories.sql`
-- Columns: story_id, first_seen_at, first_outlet, outlets (feeds that carried it, aliases included),
--          articles (stored copies), topics (matched by any copy), title, members (article titles by outlet)
SELECT
    ss.story_id,
    ss.first_seen_at,
    ss.first_outlet,
    ss.n_outlets AS outlets,
    len(ss.member_articles) AS articles,
    (SELECT string_agg(DISTINCT m.topic_id, ', ' ORDER BY m.topic_id) FROM matches m JOIN articles a USING (article_id)
     WHERE a.story_id = ss.story_id) AS topics,
    ss.title,
    (SELECT string_agg(coalesce(a.site_name, s.name, '?') || ': ' || coalesce(a.title, a.url), ' | '
                       ORDER BY a.fetched_at)
     FROM articles a LEFT JOIN sources s ON s.source_id = a.source_id
     WHERE a.story_id = ss.story_id) AS members
FROM story_summary AS ss
WHERE ss.first_seen_at >= now() - to_days(CAST(coalesce(getvariable('days'), 7) AS INTEGER))
ORDER BY outlets DESC, ss.first_seen_at DESC;
