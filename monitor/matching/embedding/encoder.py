"""The Encoder protocol and the registry that builds the configured one.

Every stored vector records the ``name`` of the encoder that produced it, and vectors
from different encoders are never compared: each name is one vector space.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
# What MONITOR_EMBEDDER is by default: the fastest backend of DEFAULT_ENCODER here (about
# 4x PyTorch's passages/s on 2 cores, the same dev-set AP and F1; README, Benchmarks).
DEFAULT_EMBEDDER = f"{DEFAULT_ENCODER}-openvino"
# The backends that reproduce DEFAULT_ENCODER's vectors (cosine >= 0.9999 to PyTorch's; the
# OpenVINO encoder checks it at every load). Topics' ``threshold`` applies to them all; the
# int8 graph (cosine about 0.99) and other models need ``thresholds`` entries of their own.
DEFAULT_ENCODER_BACKENDS = frozenset(
    {DEFAULT_ENCODER, f"{DEFAULT_ENCODER}-onnx", f"{DEFAULT_ENCODER}-openvino"}
)


class EncoderUnavailable(RuntimeError):
    """Raised when an encoder is unknown or its model cannot be loaded from local files."""


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into unit-length float32 vectors of one vector space.

    Attributes:
        name: identity of the vector space, stored beside every vector it produces.
        dim: length of its vectors.
    """

    name: str
    dim: int

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents (article passages); returns ``(len(texts), dim)`` unit vectors."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries (topic exemplars, search text); returns ``(len(texts), dim)`` unit vectors.

        Models trained with roles (e5: ``query:`` / ``passage:``) embed these differently
        from passages; symmetric models embed both alike.
        """
        ...


def _sentence_transformer(model_path: Path | None, batch_size: int) -> Encoder:
    from monitor.matching.embedding.sentence_transformer import SentenceTransformerEncoder

    return SentenceTransformerEncoder(model_path, batch_size)


def _multilingual_e5(model_path: Path | None, batch_size: int) -> Encoder:
    from monitor.matching.embedding.e5 import E5Encoder

    return E5Encoder()


def _onnx(model_path: Path | None, batch_size: int) -> Encoder:
    from monitor.matching.embedding.onnx import OnnxEncoder

    return OnnxEncoder(model_path, batch_size)


def _onnx_int8(model_path: Path | None, batch_size: int) -> Encoder:
    from monitor.matching.embedding.onnx import OnnxEncoder

    return OnnxEncoder(model_path, batch_size, quantize=True)


def _openvino(model_path: Path | None, batch_size: int) -> Encoder:
    from monitor.matching.embedding.openvino import OpenVinoEncoder

    return OpenVinoEncoder(model_path, batch_size)


# name -> factory(model_path, batch_size). Names are what MONITOR_EMBEDDER accepts.
_FACTORIES: dict[str, Callable[[Path | None, int], Encoder]] = {
    DEFAULT_ENCODER: _sentence_transformer,
    f"{DEFAULT_ENCODER}-onnx": _onnx,
    f"{DEFAULT_ENCODER}-onnx-int8": _onnx_int8,
    f"{DEFAULT_ENCODER}-openvino": _openvino,
    "multilingual-e5-small": _multilingual_e5,
}
_ALIASES = {"minilm": DEFAULT_ENCODER, "all-minilm-l6-v2": DEFAULT_ENCODER}


def resolve_name(name: str) -> str:
    """The registered name an encoder name or alias stands for."""
    return _ALIASES.get(name.lower(), name)


def available_encoders() -> list[str]:
    """Names ``MONITOR_EMBEDDER`` accepts."""
    return sorted(_FACTORIES)


def load_encoder(
    name: str = DEFAULT_EMBEDDER, model_path: Path | None = None, batch_size: int = 32
) -> Encoder:
    """Build an encoder by name, from local files only.

    Args:
        name: a name from :func:`available_encoders` (case-insensitive aliases such as ``minilm`` work).
        model_path: a local sentence-transformers model directory to use instead of the
            bundled all-MiniLM-L6-v2 (only for the sentence-transformers backend).
        batch_size: texts per forward pass.

    Returns:
        The encoder.

    Raises:
        EncoderUnavailable: the name is unknown, or the model cannot be loaded.
    """
    key = _ALIASES.get(name.lower(), name)
    factory = _FACTORIES.get(key)
    if factory is None:
        raise EncoderUnavailable(f"unknown encoder {name!r}; available: {', '.join(available_encoders())}")
    return factory(model_path, batch_size)
