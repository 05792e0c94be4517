-- Answers: which articles contain these words? Full-text search (BM25, DuckDB's fts extension) over
--          titles and texts, best first. The index lives in the read copy and is rebuilt after each run.
-- Parameters: text (required): the search words: `monitor sql --param text="snapback sanctions" queries/search_fulltext.sql`;
--             limit (default 20).
-- Columns: bm25, title, outlet, published_at, url, topics (matched), article_id
SELECT
    round(r.bm25, 4) AS bm25,
    a.title,
    coalesce(a.site_name, s.name) AS outlet,
    a.published_at,
    a.url,
    (SELECT string_agg(m.topic_id, ', ' ORDER BY m.topic_id) FROM matches AS m WHERE m.article_id = a.article_id) AS topics,
    a.article_id
FROM (
    SELECT article_id, fts_main_articles.match_bm25(article_id, getvariable('text')) AS bm25 FROM articles
) AS r
JOIN articles AS a USING (article_id)
LEFT JOIN sources AS s ON s.source_id = a.source_id
WHERE r.bm25 IS NOT NULL
ORDER BY r.bm25 DESC, a.article_id
LIMIT CAST(coalesce(getvariable('limit'), 20) AS INTEGER);
