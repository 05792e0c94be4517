"""Encoders: texts into unit vectors. One protocol, one module per backend, one registry."""

from monitor.matching.embedding.encoder import (
    DEFAULT_EMBEDDER,
    DEFAULT_ENCODER,
    Encoder,
    EncoderUnavailable,
    available_encoders,
    load_encoder,
)

__all__ = [
    "DEFAULT_EMBEDDER",
    "DEFAULT_ENCODER",
    "Encoder",
    "EncoderUnavailable",
    "available_encoders",
    "load_encoder",
]
