-- Answers: which stored articles are most like a given text? Semantic search: every passage ranked by
--          cosine similarity to the text, embedded with the configured encoder; one row per article.
-- Parameters: text (required): `monitor sql --param text="Iran tests a new missile" queries/similar_articles.sql`
--             (monitor sql embeds it and sets text_vector and text_model); limit (default 20).
-- Columns: similarity, title, outlet, published_at, url, best_passage, topics (matched), article_id
WITH scored AS (
    SELECT p.article_id, p.text,
           list_cosine_similarity(p.embedding, getvariable('text_vector')) AS similarity
    FROM passages AS p
    WHERE p.model = getvariable('text_model')
),
best AS (
    SELECT article_id, max(similarity) AS similarity, arg_max(text, similarity) AS best_passage
    FROM scored GROUP BY article_id
)
SELECT
    round(b.similarity, 3) AS similarity,
    a.title,
    coalesce(a.site_name, s.name) AS outlet,
    a.published_at,
    a.url,
    b.best_passage,
    (SELECT string_agg(m.topic_id, ', ' ORDER BY m.topic_id) FROM matches AS m WHERE m.article_id = a.article_id) AS topics,
    a.article_id
FROM best AS b
JOIN articles AS a USING (article_id)
LEFT JOIN sources AS s ON s.source_id = a.source_id
ORDER BY b.similarity DESC
LIMIT CAST(coalesce(getvariable('limit'), 20) AS INTEGER);
