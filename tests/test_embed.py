"""Passages and the real bundled embedding model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.embed import DIMENSION, Embedder, ModelUnavailable, split_passages


@given(
    words=st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=8), min_size=0, max_size=900),
    size=st.integers(min_value=20, max_value=200),
    overlap=st.integers(min_value=0, max_value=19),
)
def test_passages_cover_every_word_within_the_window(words: list[str], size: int, overlap: int) -> None:
    text = " ".join(words)
    passages = split_passages(None, text, size, overlap)
    assert passages
    assert all(len(p.split()) <= size for p in passages)
    covered = [w for p in passages for w in p.split()]
    assert set(covered) == set(words)
    if words:
        assert passages[0].split()[0] == words[0] and passages[-1].split()[-1] == words[-1]


def test_title_leads_the_first_passage_once() -> None:
    assert split_passages("Headline", "Body text here.")[0] == "Headline. Body text here."
    assert split_passages("Headline", "Headline\nBody text here.")[0] == "Headline Body text here."


@pytest.mark.slow
def test_real_model_embeds_unit_vectors_offline(embedder: Embedder) -> None:
    vectors = embedder.encode(
        ["Iran tested a ballistic missile.", "Tehran launched a missile test.", "Cake recipe"]
    )
    assert vectors.shape == (3, DIMENSION) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    assert embedder.encode([]).shape == (0, DIMENSION)
    assert embedder.name == "all-MiniLM-L6-v2"


def test_missing_model_directory_is_a_named_error(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="not found"):
        Embedder(tmp_path / "no-model")
