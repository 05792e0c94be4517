"""all-MiniLM-L6-v2 on ONNX Runtime (CPU), in fp32 or dynamically quantised to int8.

The graph comes from :mod:`monitor.matching.embedding.onnx_export` (exported locally from the
bundled model the first time, then cached per user). The encoder reproduces the
sentence-transformers pipeline of this model (modules.json: Transformer -> Pooling (mean) ->
Normalize): the model's fast tokenizer truncating at ``max_seq_length`` (256 word pieces),
mean pooling of the last hidden state over the attention mask, L2 normalisation.

Loading from the cache needs only ``onnxruntime`` and ``tokenizers``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.matching.embedding.encoder import DEFAULT_ENCODER, EncoderUnavailable
from monitor.matching.embedding.onnx_export import (
    MANIFEST,
    MODEL_FILE,
    OUTPUT,
    ModelConfig,
    default_cache_dir,
    discard,
    ensure_export,
    read_model_config,
)
from monitor.matching.embedding.sentence_transformer import bundled_model_path, model_fingerprint

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = [
    "MANIFEST",
    "MODEL_FILE",
    "ONNX_ENCODER",
    "ONNX_INT8_ENCODER",
    "ModelConfig",
    "OnnxEncoder",
    "default_cache_dir",
    "default_threads",
    "ensure_export",
    "read_model_config",
]

ONNX_ENCODER = f"{DEFAULT_ENCODER}-onnx"
ONNX_INT8_ENCODER = f"{DEFAULT_ENCODER}-onnx-int8"


def default_threads() -> int:
    """Cores this process may run on (2 on the project's machines)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return max(os.cpu_count() or 1, 1)


class OnnxEncoder:
    """A sentence-transformers model (mean pooling) run by ONNX Runtime on the CPU.

    Args:
        model_path: a local sentence-transformers model directory; default: the bundled
            all-MiniLM-L6-v2, named ``all-MiniLM-L6-v2-onnx`` (``...-onnx-int8`` quantised).
            Another directory is named ``<dir name>-<fingerprint>-onnx[-int8]``.
        batch_size: texts per forward pass. A call's texts are sorted by token length so
            that a pass pads little; the output keeps the input order.
        quantize: run the dynamically int8-quantised graph.
        cache_dir: the export cache; default :func:`default_cache_dir`.
        threads: onnxruntime intra-op threads; default :func:`default_threads`.

    Raises:
        EncoderUnavailable: onnxruntime or tokenizers is missing, the model directory is
            missing or not a mean-pooling model, or the export failed.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        batch_size: int = 32,
        *,
        quantize: bool = False,
        cache_dir: Path | None = None,
        threads: int | None = None,
    ) -> None:
        try:
            import onnxruntime  # noqa: F401 - fail here, with a named error, when it is missing
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EncoderUnavailable(f"the ONNX encoder needs onnxruntime and tokenizers: {exc}") from exc
        bundled = bundled_model_path()
        path = Path(model_path) if model_path is not None else bundled
        if not path.is_dir():
            raise EncoderUnavailable(f"embedding model directory not found: {path}")
        self.path = path
        self.quantize = quantize
        base = (
            DEFAULT_ENCODER
            if path.resolve() == bundled.resolve()
            else f"{path.name}-{model_fingerprint(path)}"
        )
        self.name = base + self._name_suffix()
        config = read_model_config(path)
        self.dim = config.hidden_size
        self.max_seq_length = config.max_seq_length
        self.batch_size = max(int(batch_size), 1)
        self.threads = threads if threads is not None else default_threads()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._tokenizer, self._pad_id = _load_tokenizer(path, config.max_seq_length, Tokenizer)

        self.model_file = ensure_export(path, self._export_name(), self.cache_dir, quantize=quantize)
        try:
            self._load_runtime()
        except EncoderUnavailable:
            raise
        except Exception:  # noqa: BLE001 - the runtimes' own types; a file they refuse is rebuilt once
            discard(self.model_file.parent)
            self.model_file = ensure_export(path, self._export_name(), self.cache_dir, quantize=quantize)
            try:
                self._load_runtime()
            except EncoderUnavailable:
                raise
            except Exception as exc:
                raise EncoderUnavailable(f"cannot load {self.model_file}: {exc}") from exc

    def _name_suffix(self) -> str:
        return "-onnx-int8" if self.quantize else "-onnx"

    def _export_name(self) -> str:
        """The cache entry (encoder name) whose graph this encoder runs."""
        return self.name

    def _load_runtime(self) -> None:
        """Open :attr:`model_file` in onnxruntime (raises whatever onnxruntime raises)."""
        self._session = ort_session(self.model_file, self.threads)
        self._input_names = {i.name for i in self._session.get_inputs()}

    def _forward(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """The last hidden state of one padded mini-batch."""
        inputs = {k: v for k, v in feed.items() if k in self._input_names}
        return np.asarray(self._session.run([OUTPUT], inputs)[0])

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(-lengths, kind="stable")  # longest first: each batch pads to little
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            width = int(lengths[index].max())
            ids = np.full((len(index), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(index), width), dtype=np.int64)
            types = np.zeros((len(index), width), dtype=np.int64)
            for row, i in enumerate(index):
                encoding = encodings[i]
                n = len(encoding.ids)
                ids[row, :n] = encoding.ids
                mask[row, :n] = 1
                types[row, :n] = encoding.type_ids
            hidden = self._forward({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
            weights = mask[:, :, None].astype(np.float32)
            out[index] = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        out /= np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return out

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages into unit vectors (each truncated to the model's window)."""
        return self._encode(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries; MiniLM is symmetric, so exactly as passages."""
        return self._encode(texts)


def ort_session(model_file: Path, threads: int) -> Any:
    """An onnxruntime CPU session of ``model_file`` with ``threads`` intra-op threads, run sequentially."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])


def _load_tokenizer(path: Path, max_length: int, tokenizer_cls: type[Tokenizer]) -> tuple[Tokenizer, int]:
    """The model's fast tokenizer truncating at ``max_length`` and not padding, and its pad id."""
    file = path / "tokenizer.json"
    try:
        if file.is_file():
            tokenizer = tokenizer_cls.from_file(str(file))
        else:  # vocabulary files only: transformers builds the fast tokenizer from them
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(
                str(path), local_files_only=True, use_fast=True
            ).backend_tokenizer
    except Exception as exc:  # tokenizers and transformers raise assorted types
        raise EncoderUnavailable(f"cannot load the tokenizer of {path}: {exc}") from exc
    # tokenizer.json carries settings of its own (this model's: truncate and pad to 128);
    # sentence-transformers overrides them with max_seq_length, and so does this. The
    # encoder pads each mini-batch itself.
    padding = tokenizer.padding
    tokenizer.no_padding()
    tokenizer.no_truncation()
    tokenizer.enable_truncation(max_length=max_length)
    pad_id = padding.get("pad_id") if padding else tokenizer.token_to_id("[PAD]")
    return tokenizer, int(pad_id or 0)
