"""all-MiniLM-L6-v2 on OpenVINO (CPU): the fastest backend here, with PyTorch's vectors.

OpenVINO compiles the same cached fp32 ONNX graph that the ONNX Runtime encoder runs
(:mod:`monitor.matching.embedding.onnx_export`), and this encoder shares that encoder's
tokenisation, length-sorted batching and mean pooling; only the forward pass differs.
On a CPU with bfloat16 units (avx512_bf16, AMX) OpenVINO computes in bfloat16 by
default, which on this project's 2-core machines embeds about 4 times as many passages
a second as PyTorch, with vectors at cosine 0.99997 or more to PyTorch's. Elsewhere it
computes in fp32.

Because the name promises PyTorch's vector space, every load checks it: the compiled
model embeds a few fixed sentences, and unless each vector has cosine at least
:data:`MIN_COSINE` to ONNX Runtime's fp32 vector of the same sentence, the encoder
recompiles in fp32 (and refuses to load if that disagrees too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from monitor.matching.embedding.encoder import DEFAULT_ENCODER, EncoderUnavailable
from monitor.matching.embedding.onnx import OnnxEncoder

OPENVINO_ENCODER = f"{DEFAULT_ENCODER}-openvino"
MIN_COSINE = 0.9999

# Short and long, on and off the topics: what the check embeds with both runtimes.
_CHECK_TEXTS = (
    "Iran tested a ballistic missile, the Revolutionary Guards said on Sunday.",
    "Negotiators met in Vienna to revive the nuclear deal and discuss limits on missiles.",
    "A cake recipe with three eggs.",
    " ".join(["The central bank raised interest rates again as inflation stayed high."] * 30),
)


class OpenVinoEncoder(OnnxEncoder):
    """A sentence-transformers model (mean pooling) compiled by OpenVINO for the CPU.

    Args:
        model_path: a local sentence-transformers model directory; default: the bundled
            all-MiniLM-L6-v2, named ``all-MiniLM-L6-v2-openvino``.
        batch_size: texts per forward pass (length-sorted, as the ONNX encoder does).
        precision: OpenVINO's inference precision, ``"bf16"`` or ``"f32"``; default
            (None): OpenVINO's choice for this CPU, checked against fp32 at load.
        cache_dir: the ONNX export cache, shared with the ONNX encoder.
        threads: inference threads; default: the cores this process may use.

    Raises:
        EncoderUnavailable: openvino, onnxruntime or tokenizers is missing, the model is not
            exportable, or the compiled model's vectors disagree with fp32 ONNX Runtime's.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        batch_size: int = 32,
        *,
        precision: str | None = None,
        cache_dir: Path | None = None,
        threads: int | None = None,
    ) -> None:
        try:
            import openvino
        except ImportError as exc:
            raise EncoderUnavailable(f"the OpenVINO encoder needs the openvino package: {exc}") from exc
        self._openvino = openvino
        self.precision = precision
        self.agreement = 0.0
        self._compiled: Any = None
        super().__init__(model_path, batch_size, cache_dir=cache_dir, threads=threads)

    def _name_suffix(self) -> str:
        return "-openvino"

    def _export_name(self) -> str:
        return self.name.removesuffix("-openvino") + "-onnx"

    def _compile(self, precision: str | None) -> Any:
        core = self._openvino.Core()
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": self.threads}
        if precision is not None:
            config["INFERENCE_PRECISION_HINT"] = precision
        return core.compile_model(core.read_model(str(self.model_file)), "CPU", config)

    def _load_runtime(self) -> None:
        """Compile the graph and check its vectors against ONNX Runtime's fp32 ones."""
        self._compiled = None  # a reload after a refused file starts from the reference again
        super()._load_runtime()  # the reference: ONNX Runtime on the same graph, in fp32
        expected = self._encode(list(_CHECK_TEXTS))
        attempts = [self.precision] if self.precision is not None else [None, "f32"]
        for precision in attempts:
            self._compiled = self._compile(precision)
            self.agreement = float((self._encode(list(_CHECK_TEXTS)) * expected).sum(axis=1).min())
            if self.agreement >= MIN_COSINE:
                self.precision = self._compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
                self._session = None  # checked: the reference's copy of the weights can go
                return
        raise EncoderUnavailable(
            f"OpenVINO's vectors of {self.model_file} disagree with ONNX Runtime's fp32 ones "
            f"(lowest cosine {self.agreement:.6f}, below {MIN_COSINE})"
        )

    def _forward(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        if self._compiled is None:
            return super()._forward(feed)
        return np.asarray(self._compiled(feed)[self._compiled.output(0)])
