-- Answers: which articles best answer a query, by words and by meaning together? Hybrid search: the BM25
--          rank (full-text) and the vector rank (best passage's cosine to the embedded query) fused by
--          reciprocal-rank fusion, 1/(60 + rank) summed over both lists.
-- Parameters: text (required): `monitor sql --param text="talks on reviving the nuclear deal" queries/search_hybrid.sql`
--             (monitor sql embeds it: text_vector, text_model); limit (default 20).
-- Columns: rrf, title, outlet, published_at, bm25_rank, vector_rank, best_passage, url, article_id
WITH lexical AS (
    SELECT article_id, row_number() OVER (ORDER BY bm25 DESC, article_id) AS bm25_rank
    FROM (SELECT article_id, fts_main_articles.match_bm25(article_id, getvariable('text')) AS bm25 FROM articles)
    WHERE bm25 IS NOT NULL
),
passage_scores AS (
    SELECT article_id, text, list_cosine_similarity(embedding, getvariable('text_vector')) AS similarity
    FROM passages WHERE model = getvariable('text_model')
),
semantic AS (
    SELECT article_id, best_passage, row_number() OVER (ORDER BY similarity DESC, article_id) AS vector_rank
    FROM (SELECT article_id, max(similarity) AS similarity, arg_max(text, similarity) AS best_passage
          FROM passage_scores GROUP BY article_id)
),
fused AS (
    SELECT coalesce(l.article_id, v.article_id) AS article_id, l.bm25_rank, v.vector_rank, v.best_passage,
           coalesce(1.0 / (60 + l.bm25_rank), 0) + coalesce(1.0 / (60 + v.vector_rank), 0) AS rrf
    FROM lexical AS l FULL OUTER JOIN semantic AS v USING (article_id)
)
SELECT
    round(f.rrf, 5) AS rrf,
    a.title,
    coalesce(a.site_name, s.name) AS outlet,
    a.published_at,
    f.bm25_rank,
    f.vector_rank,
    f.best_passage,
    a.url,
    a.article_id
FROM fused AS f
JOIN articles AS a USING (article_id)
LEFT JOIN sources AS s ON s.source_id = a.source_id
ORDER BY f.rrf DESC, a.article_id
LIMIT CAST(coalesce(getvariable('limit'), 20) AS INTEGER);
