"""Rescoring from stored embeddings agrees with ingest, follows topic edits, and keeps reviews."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pytest

from monitor import cli, store
from monitor.matching.embedding import Encoder
from monitor.matching.reembed import reembed
from monitor.matching.rescore import EncoderMismatch, rescore, score_archive
from monitor.matching.scoring import TopicMatcher
from monitor.matching.topics import load_topics
from tests.conftest import REPO, at_threshold
from tests.rows import SAMPLE_ARTICLES

pytestmark = pytest.mark.slow


@pytest.fixture
def db(sample_db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "m.duckdb"
    shutil.copy(sample_db, copy)
    return copy


def match_rows(db: Path) -> dict[tuple[str, str], tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT article_id, topic_id, round(score, 5), best_passage_seq, exemplar, keyword_hits::VARCHAR, status "
            "FROM matches"
        ).fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def test_rescore_with_unchanged_topics_reproduces_ingest(db: Path, encoder: Encoder, route) -> None:
    before = match_rows(db)
    matcher = route(load_topics(REPO / "topics.yaml"), encoder)
    with store.connect(db) as con:
        summary = rescore(con, matcher)
    assert summary["added"] == summary["removed"] == 0
    assert summary["articles"] == SAMPLE_ARTICLES and summary["matches"] == len(before)
    after = match_rows(db)
    # The same decisions and evidence. The scores agree to within 1e-5, not bit for bit: the run
    # and this test encode the topics' exemplars in batches of their own, and fp32 kernels
    # (OpenVINO without bfloat16) round differently per batch shape.
    assert after.keys() == before.keys()
    assert {k: v[1:] for k, v in after.items()} == {k: v[1:] for k, v in before.items()}
    assert max(abs(after[k][0] - before[k][0]) for k in before) <= 2e-5


def test_rescore_follows_threshold_changes_and_keeps_reviewed_matches(
    db: Path, encoder: Encoder, route
) -> None:
    topics = load_topics(REPO / "topics.yaml")
    with store.connect(db) as con:
        reviewed = con.execute("SELECT article_id, topic_id FROM matches ORDER BY score LIMIT 1").fetchone()
        con.execute(
            "UPDATE matches SET status = 'relevant' WHERE article_id = ? AND topic_id = ?", list(reviewed)
        )
        before = con.execute("SELECT count(*) FROM matches").fetchone()[0]
        strict = route([at_threshold(t, 0.99) for t in topics], encoder)
        gone = rescore(con, strict)
        remaining = con.execute("SELECT article_id, topic_id, status FROM matches").fetchall()
        alerts_left = con.execute("SELECT count(*) FROM alerts WHERE delivered_at IS NULL").fetchone()[0]
    assert before >= 8
    assert gone["matches"] == 0 and gone["removed"] == before - 1  # every match but the reviewed one
    assert remaining == [(*reviewed, "relevant")]
    assert alerts_left == 0

    loose = route([at_threshold(t, 0.3) for t in topics], encoder)
    with store.connect(db) as con:
        # Articles already alerted once (before the strict rescore removed their match) are not alerted again.
        already_alerted = con.execute(
            "SELECT count(*) FROM alerts WHERE delivered_at IS NOT NULL"
        ).fetchone()[0]
        grown = rescore(con, loose, alert=True)
        queued = con.execute("SELECT count(*) FROM alerts WHERE delivered_at IS NULL").fetchone()[0]
        per_pair = con.execute(
            "SELECT max(n) FROM (SELECT count(*) n FROM alerts GROUP BY article_id, topic_id)"
        )
        assert per_pair.fetchone()[0] == 1
    assert grown["added"] > 8
    assert grown["alerts"] == queued == grown["added"] - (already_alerted - 1)  # minus the reviewed match's


def test_explain_prints_the_evidence(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    top = (
        "SELECT m.article_id, m.best_passage FROM matches m JOIN articles a USING (article_id)"
        " WHERE (a.language = 'en') = ? ORDER BY m.score DESC LIMIT 1"
    )
    with duckdb.connect(str(db), read_only=True) as con:
        article_id, passage = con.execute(top, [True]).fetchone()
        foreign_id, foreign_passage = con.execute(top, [False]).fetchone()
    assert cli.main(["explain", "--db", str(db), article_id[:8]]) == 0
    out = capsys.readouterr().out
    assert "flagged: score" in out and "closest exemplar:" in out and "keywords: iran x" in out
    assert passage[:80] in out and "model all-MiniLM-L6-v2-openvino" in out
    assert cli.main(["explain", "--db", str(db), foreign_id[:8]]) == 0
    out = capsys.readouterr().out
    assert (
        "flagged: score" in out
        and "for multilingual-e5-small" in out
        and "model multilingual-e5-small" in out
    )
    assert foreign_passage[:80] in out
    assert cli.main(["explain", "--db", str(db), "nonexistent-id"]) == 1


@pytest.fixture(scope="module")
def other_encoder(tmp_path_factory: pytest.TempPathFactory) -> Encoder:
    """The same weights under another directory name: another encoder name, identical vectors."""
    import shutil

    from monitor.matching.embedding.sentence_transformer import SentenceTransformerEncoder, bundled_model_path

    copy = tmp_path_factory.mktemp("models") / "minilm-copy"
    shutil.copytree(bundled_model_path(), copy)
    return SentenceTransformerEncoder(copy)


def test_rescore_refuses_vectors_from_another_encoder(db: Path, other_encoder: Encoder) -> None:
    matcher = TopicMatcher(load_topics(REPO / "topics.yaml"), other_encoder, strict=False)
    before = match_rows(db)
    with (
        store.connect(db) as con,
        pytest.raises(
            EncoderMismatch, match=r"embedded with all-MiniLM-L6-v2-openvino \(\d+ passages\)"
        ) as info,
    ):
        rescore(con, matcher)
    assert other_encoder.name in str(info.value) and "monitor reembed" in str(info.value)
    assert match_rows(db) == before


def test_cli_rescore_with_another_model_path_exits_with_the_reason(
    db: Path, other_encoder: Encoder, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITOR_MODEL_PATH", str(other_encoder.path))  # type: ignore[attr-defined]
    assert cli.main(["rescore", "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert f"the configured encoder is {other_encoder.name}" in err and "monitor reembed" in err
    monkeypatch.setenv("MONITOR_MODEL_PATH", str(db.parent / "does-not-exist"))
    assert cli.main(["rescore", "--db", str(db)]) == 1
    assert "embedding model directory not found" in capsys.readouterr().err


def test_reembed_moves_the_archive_in_batches_and_resumes(
    db: Path, encoder: Encoder, other_encoder: Encoder, multilingual_encoder: Encoder, route
) -> None:
    """A new English encoder moves the English articles; the others keep the multilingual vectors."""
    connect = lambda: store.connect(db)  # noqa: E731 - the function reembed opens its short windows with
    with duckdb.connect(str(db), read_only=True) as con:
        old = {
            (a, s): np.array(v)
            for a, s, v in con.execute("SELECT article_id, seq, embedding FROM passages").fetchall()
        }
        english = con.execute("SELECT count(*) FROM articles WHERE language = 'en'").fetchone()[0]
    others = SAMPLE_ARTICLES - english
    assert english > 5 and others > 0
    routing = route(load_topics(REPO / "topics.yaml"), other_encoder, strict=False)
    first = reembed(connect, routing, batch_articles=5, max_batches=1)
    assert (first.articles, first.remaining) == (5, english - 5)  # as if killed after one batch
    with duckdb.connect(str(db), read_only=True) as con:
        models = dict(
            con.execute("SELECT model, count(DISTINCT article_id) FROM passages GROUP BY model").fetchall()
        )
    assert models == {other_encoder.name: 5, encoder.name: english - 5, multilingual_encoder.name: others}
    second = reembed(connect, routing, batch_articles=5)
    assert (second.articles, second.remaining) == (english - 5, 0)
    assert reembed(connect, routing).articles == 0  # nothing left: a third run does nothing
    with duckdb.connect(str(db), read_only=True) as con:
        new = {
            (a, s): np.array(v)
            for a, s, v in con.execute("SELECT article_id, seq, embedding FROM passages").fetchall()
        }
        assert sorted(con.execute("SELECT DISTINCT model FROM passages").fetchall()) == sorted(
            [(other_encoder.name,), (multilingual_encoder.name,)]
        )
    assert new.keys() == old.keys()
    # Same weights, same vectors: the archive was embedded on OpenVINO (bfloat16 here), the copy on PyTorch.
    assert max(float(np.abs(new[k] - old[k]).max()) for k in old) < 5e-3
    before = match_rows(db)
    with store.connect(db) as con:
        summary = rescore(con, routing)
    assert summary["added"] == summary["removed"] == 0
    after = match_rows(db)
    assert after.keys() == before.keys()
    # The same decisions and evidence; scores move in the 5th decimal (bfloat16 against fp32).
    assert {k: v[1:4] for k, v in after.items()} == {k: v[1:4] for k, v in before.items()}
    assert max(abs(after[k][0] - before[k][0]) for k in before) < 1e-3


def test_scoring_the_archive_in_small_chunks_gives_the_same_matches(
    db: Path, encoder: Encoder, route
) -> None:
    """Chunks of one article each: the stream must survive the queries made between chunks."""
    matcher = route(load_topics(REPO / "topics.yaml"), encoder)
    with store.connect(db, read_only=True) as con:
        whole = score_archive(con, matcher)
        chunked = score_archive(con, matcher, chunk_articles=1)
    assert (
        (chunked.articles, chunked.passages)
        == (whole.articles, whole.passages)
        == (SAMPLE_ARTICLES, whole.passages)
    )

    def key(m: object) -> tuple[str, str]:
        return (m.article_id, m.topic_id)  # type: ignore[attr-defined]

    from dataclasses import replace

    chunks, wholes = sorted(chunked.matches, key=key), sorted(whole.matches, key=key)

    # Scores agree to the last digit or two, not bit for bit: numpy's matrix kernels block
    # differently per matrix shape, and the rounding to 6 decimals can fall either way.
    def blank(m: object) -> object:
        return replace(m, score=0.0, embedding_score=0.0)  # type: ignore[type-var]

    assert [blank(m) for m in chunks] == [blank(m) for m in wholes]
    pairs = list(zip(chunks, wholes, strict=True))
    assert max(abs(a.score - b.score) for a, b in pairs) <= 2e-6
    assert max(abs(a.embedding_score - b.embedding_score) for a, b in pairs) <= 2e-6
    assert len(whole.matches) >= 8
