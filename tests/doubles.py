"""A test double for the Encoder seam: every query embeds to one fixed direction.

Passages are stored with vectors built to have a chosen cosine to that direction, so a
test decides each article's embedding score exactly (topics without keywords or negatives
then score exactly that).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DIM = 8
AXIS = np.eye(DIM, dtype=np.float32)[0]
OTHER = np.eye(DIM, dtype=np.float32)[1]


class PlantedEncoder:
    """Implements the Encoder protocol; queries all embed to ``AXIS``."""

    name = "planted-test"
    dim = DIM

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.tile(AXIS, (len(texts), 1))

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return np.tile(OTHER, (len(texts), 1))


def vector_with_score(score: float) -> np.ndarray:
    """A unit vector whose cosine to every query of :class:`PlantedEncoder` is ``score``."""
    v = score * AXIS + np.sqrt(max(1.0 - score * score, 0.0)) * OTHER
    return (v / np.linalg.norm(v)).astype(np.float32)
