-- 005: views over stories. A feed carried a story when it listed any of its articles, directly
-- or under an alias URL; counts are live because copies keep arriving.
CREATE OR REPLACE VIEW story_carriers AS
SELECT DISTINCT a.story_id, si.source_id, src.name
FROM sightings si
LEFT JOIN article_aliases al ON al.alias_id = si.article_id
JOIN articles a ON a.article_id = coalesce(al.article_id, si.article_id)
JOIN sources src ON src.source_id = si.source_id;

CREATE OR REPLACE VIEW story_summary AS
SELECT
    st.story_id,
    st.first_seen_at,
    st.first_source_id,
    (SELECT s.name FROM sources s WHERE s.source_id = st.first_source_id) AS first_outlet,
    (SELECT count(*) FROM story_carriers c WHERE c.story_id = st.story_id) AS n_outlets,
    (SELECT list(a.article_id ORDER BY a.fetched_at) FROM articles a WHERE a.story_id = st.story_id) AS member_articles,
    st.title
FROM stories st;
