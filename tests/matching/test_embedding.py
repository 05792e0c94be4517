"""The Encoder seam and the real bundled sentence-transformers model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor.config import Settings
from monitor.matching.embedding import (
    DEFAULT_EMBEDDER,
    DEFAULT_ENCODER,
    Encoder,
    EncoderUnavailable,
    available_encoders,
    load_encoder,
)
from monitor.matching.embedding.sentence_transformer import SentenceTransformerEncoder, bundled_model_path


@pytest.mark.slow
def test_bundled_model_embeds_unit_vectors_offline(encoder: Encoder) -> None:
    assert isinstance(encoder, Encoder)
    vectors = encoder.encode_passages(
        ["Iran tested a ballistic missile.", "Tehran launched a missile test.", "Cake recipe"]
    )
    assert vectors.shape == (3, encoder.dim) and vectors.dtype == np.float32
    assert encoder.dim == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    assert encoder.encode_passages([]).shape == (0, encoder.dim)
    assert encoder.name == DEFAULT_EMBEDDER == "all-MiniLM-L6-v2-openvino"


@pytest.mark.slow
def test_minilm_is_symmetric_so_queries_and_passages_embed_alike(encoder: Encoder) -> None:
    text = ["Negotiators met in Vienna to revive the nuclear deal."]
    assert np.allclose(encoder.encode_queries(text), encoder.encode_passages(text), atol=1e-6)


@pytest.mark.slow
def test_a_copied_model_directory_gets_its_own_fingerprinted_name(tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "my-model"
    shutil.copytree(bundled_model_path(), copy)
    encoder = SentenceTransformerEncoder(copy)
    assert encoder.name.startswith("my-model-") and encoder.name != DEFAULT_ENCODER
    # The same files under another name give the same fingerprint.
    other = tmp_path / "my-model-2"
    shutil.copytree(copy, other)
    assert SentenceTransformerEncoder(other).name.removeprefix("my-model-2-") == encoder.name.removeprefix(
        "my-model-"
    )


def test_missing_model_directory_is_a_named_error(tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailable, match="not found"):
        load_encoder(DEFAULT_ENCODER, tmp_path / "no-model")


def test_unknown_encoder_names_the_available_ones() -> None:
    with pytest.raises(EncoderUnavailable, match=r"unknown encoder 'word2vec'.*all-MiniLM-L6-v2"):
        load_encoder("word2vec")
    assert DEFAULT_ENCODER in available_encoders()


def test_settings_choose_the_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().embedder == DEFAULT_EMBEDDER
    monkeypatch.setenv("MONITOR_EMBEDDER", "minilm")
    assert Settings().embedder == "minilm"
