"""Try a topic edit before it goes live: which matches it would add or remove, and its effect on reviewed items."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from monitor.matching.rescore import RescorePlan
from monitor.store import reviews


@dataclass(frozen=True)
class DryRun:
    """The difference a rescore would make."""

    added: list[tuple[str, str, float, str | None]]  # (article_id, topic_id, score, title)
    removed: list[tuple[str, str, float, str | None]]  # unreviewed matches that would go
    kept_reviewed: int  # reviewed matches that no longer qualify but are kept (reviews are never undone)
    reviewed: int
    before: dict[str, float]  # precision and recall on reviewed pairs, now
    after: dict[str, float]  # ... with the edit


def compare(con: duckdb.DuckDBPyConnection, plan: RescorePlan) -> DryRun:
    """Compare a fresh scoring with the stored matches, without writing anything."""
    stored = {
        (a, t): (s, status, title)
        for a, t, s, status, title in con.execute(
            "SELECT m.article_id, m.topic_id, m.score, m.status, a.title FROM matches m JOIN articles a USING (article_id)"
        ).fetchall()
    }
    titles = dict(con.execute("SELECT article_id, title FROM articles").fetchall())
    fresh = {(m.article_id, m.topic_id): m.score for m in plan.matches}
    added = sorted(
        ((a, t, s, titles.get(a)) for (a, t), s in fresh.items() if (a, t) not in stored),
        key=lambda r: (r[1], -r[2]),
    )
    gone = [(k, v) for k, v in stored.items() if k not in fresh]
    removed = sorted(
        ((a, t, s, title) for (a, t), (s, st, title) in gone if st == "new"), key=lambda r: (r[1], -r[2])
    )
    verdicts = reviews.latest_reviews(con)
    before = _on_reviewed(set(stored), verdicts)
    after = _on_reviewed(set(fresh), verdicts)
    return DryRun(
        added, removed, sum(1 for _, (_, st, _) in gone if st != "new"), len(verdicts), before, after
    )


def _on_reviewed(flagged: set[tuple[str, str]], verdicts: dict[tuple[str, str], str]) -> dict[str, float]:
    relevant = {k for k, v in verdicts.items() if v == "relevant"}
    judged = flagged & set(verdicts)
    hits = len(judged & relevant)
    precision = hits / len(judged) if judged else 0.0
    recall = hits / len(relevant) if relevant else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "flagged_reviewed": float(len(judged)),
    }
