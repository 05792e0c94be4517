"""The OpenVINO encoder: PyTorch's vectors from the cached ONNX graph, checked at every load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor.matching.embedding import Encoder, EncoderUnavailable, available_encoders, load_encoder
from monitor.matching.embedding.openvino import MIN_COSINE, OPENVINO_ENCODER, OpenVinoEncoder

pytest.importorskip("openvino")

SENTENCES = [
    "Iran tested a ballistic missile, the Revolutionary Guards said on Sunday.",
    "Negotiators met in Vienna to revive the nuclear deal.",
    "A cake recipe with three eggs.",
    "",
    " ".join(["The central bank raised interest rates again as inflation stayed high."] * 60),
    "Tehran launched a missile test over the Gulf of Oman, officials reported.",
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("encoders")


@pytest.fixture(scope="module")
def openvino_encoder(cache_dir: Path) -> OpenVinoEncoder:
    return OpenVinoEncoder(cache_dir=cache_dir)


@pytest.mark.slow
def test_is_registered_and_reproduces_the_pytorch_vectors(
    openvino_encoder: OpenVinoEncoder, pytorch_encoder: Encoder, cache_dir: Path
) -> None:
    assert OPENVINO_ENCODER in available_encoders()
    assert isinstance(openvino_encoder, Encoder)
    assert openvino_encoder.name == "all-MiniLM-L6-v2-openvino" and openvino_encoder.dim == 384
    # It runs the ONNX encoder's cached fp32 graph, not an export of its own.
    assert openvino_encoder.model_file.is_relative_to(cache_dir / "all-MiniLM-L6-v2-onnx")
    assert openvino_encoder.agreement >= MIN_COSINE
    assert openvino_encoder.precision in {"bf16", "f32"}
    vectors = openvino_encoder.encode_passages(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    cosines = np.sum(vectors * pytorch_encoder.encode_passages(SENTENCES), axis=1)
    assert cosines.min() > 0.9999, cosines
    assert openvino_encoder.encode_passages([]).shape == (0, 384)


@pytest.mark.slow
def test_keeps_the_input_order_and_embeds_queries_as_passages(openvino_encoder: OpenVinoEncoder) -> None:
    forward = openvino_encoder.encode_passages(SENTENCES)
    backward = openvino_encoder.encode_passages(SENTENCES[::-1])[::-1]
    assert np.sum(forward * backward, axis=1).min() > 0.9999
    queries = openvino_encoder.encode_queries(SENTENCES[:2])
    assert np.sum(queries * forward[:2], axis=1).min() > 0.9999


@pytest.mark.slow
def test_fp32_precision_is_selectable(cache_dir: Path, openvino_encoder: OpenVinoEncoder) -> None:
    fp32 = OpenVinoEncoder(cache_dir=cache_dir, precision="f32")
    assert fp32.precision == "f32" and fp32.agreement > 0.99999


@pytest.mark.slow
def test_a_compiled_model_that_disagrees_is_refused(
    cache_dir: Path, openvino_encoder: OpenVinoEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A model whose forward pass is wrong (here: hidden states reversed along the sequence
    # and negated) must not load under a name that promises PyTorch's vectors.
    real = OpenVinoEncoder._compile

    def broken(self: OpenVinoEncoder, precision: str | None) -> object:
        compiled = real(self, precision)

        class Wrong:
            def output(self, index: int) -> object:
                return compiled.output(index)

            def get_property(self, name: str) -> object:
                return compiled.get_property(name)

            def __call__(self, feed: dict[str, np.ndarray]) -> dict[object, np.ndarray]:
                hidden = compiled(feed)[compiled.output(0)]
                return {compiled.output(0): -hidden[:, ::-1, :]}

        return Wrong()

    monkeypatch.setattr(OpenVinoEncoder, "_compile", broken)
    with pytest.raises(EncoderUnavailable, match="disagree with ONNX Runtime"):
        OpenVinoEncoder(cache_dir=cache_dir)


def test_missing_openvino_is_encoder_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_openvino(name: str, *args: object, **kwargs: object) -> object:
        if name == "openvino" or name.startswith("openvino."):
            raise ImportError("No module named 'openvino'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    with pytest.raises(EncoderUnavailable, match="needs the openvino package"):
        load_encoder(OPENVINO_ENCODER)
