"""Labelled articles for evaluation: one JSON object per line.

A labels file has one JSON object per line: ``{"id", "title", "text", "label"}``
(``title`` may be null; ``label`` 1 means an analyst wants the item flagged for
some topic; an optional ``topic`` gives per-topic recall, and an optional ``lang``
the item's language, which is otherwise detected as at ingest; other keys are ignored).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path


class LabelsError(ValueError):
    """Raised when a labels file is missing or a line is not a valid labelled item."""


@dataclass(frozen=True)
class LabelledItem:
    """One labelled article."""

    item_id: str
    title: str | None
    text: str
    label: int
    topic: str | None = None
    lang: str | None = None  # the item's language when the file gives it

    @property
    def full_text(self) -> str:
        """Title and text, as the keyword-rule baseline reads them."""
        return f"{self.title}\n{self.text}" if self.title else self.text

    @property
    def half(self) -> str:
        """``calibration`` or ``holdout``, decided by a hash of the id (stable across runs)."""
        return "calibration" if hashlib.sha256(self.item_id.encode()).digest()[0] % 2 == 0 else "holdout"


def load_labels(path: Path) -> list[LabelledItem]:
    """Read a labels file.

    Raises:
        LabelsError: the file is missing, or a line lacks ``id``, ``text`` or a 0/1 ``label``.
    """
    items: list[LabelledItem] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise LabelsError(f"labels file not found: {path}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            label = raw["label"]
            if label not in (0, 1) or isinstance(label, bool):
                raise ValueError(f"label must be 0 or 1, got {label!r}")
            if not isinstance(raw["text"], str):
                raise ValueError("text must be a string")
            title = raw.get("title")
            lang = raw.get("lang")
            items.append(
                LabelledItem(str(raw["id"]), title if isinstance(title, str) else None, raw["text"], int(label),
                             raw.get("topic") or None, lang if isinstance(lang, str) and lang else None)
            )  # fmt: skip
        except (json.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
            raise LabelsError(f"{path}:{number}: {exc}") from exc
    if not items:
        raise LabelsError(f"{path}: no labelled items")
    return items
