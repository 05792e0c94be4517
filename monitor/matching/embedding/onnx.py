"""all-MiniLM-L6-v2 on ONNX Runtime (CPU), in fp32 or dynamically quantised to int8.

The ONNX graph is exported here from the local sentence-transformers model directory
(no hub, no download) the first time an encoder is built, and cached per user:

    <cache_dir>/<encoder name>/<key>/model.onnx  (+ manifest.json)
    cache_dir default: $XDG_CACHE_HOME/news-coverage-monitor/encoders (~/.cache/...)

``<key>`` digests the source model files, the export recipe and the versions of the
packages that shape the graph (onnxruntime, onnx, torch, transformers), so a stale
export is never loaded: a new key is built beside it and the older keys are pruned.
An export is written into a temporary directory next to its final place and renamed
into it, so two processes exporting at once each write a whole file and one of them
wins. An entry whose model file does not match the digest in its manifest, or that
onnxruntime refuses, is moved aside and rebuilt.

The encoder reproduces the sentence-transformers pipeline of this model (modules.json:
Transformer -> Pooling (mean) -> Normalize): the model's fast tokenizer truncating at
``max_seq_length`` (256 word pieces), mean pooling of the last hidden state over the
attention mask, L2 normalisation.

Loading from the cache needs only ``onnxruntime`` and ``tokenizers``; exporting also
needs ``torch``, ``transformers`` and ``onnx``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.matching.embedding.encoder import DEFAULT_ENCODER, EncoderUnavailable
from monitor.matching.embedding.sentence_transformer import bundled_model_path, model_fingerprint

if TYPE_CHECKING:
    from tokenizers import Tokenizer

ONNX_ENCODER = f"{DEFAULT_ENCODER}-onnx"
ONNX_INT8_ENCODER = f"{DEFAULT_ENCODER}-onnx-int8"

# Bump when the export or quantisation recipe changes, so that old cache entries are rebuilt.
EXPORT_RECIPE = 1
MODEL_FILE = "model.onnx"
MANIFEST = "manifest.json"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_OUTPUT = "last_hidden_state"
_OPSET = 17
_VERSIONED = ("onnxruntime", "onnx", "torch", "transformers")
_ABANDONED_SECONDS = 3600


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/news-coverage-monitor/encoders``, or ``~/.cache/...`` when that is unset."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "news-coverage-monitor" / "encoders"


def default_threads() -> int:
    """Cores this process may run on (2 on the project's machines)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return max(os.cpu_count() or 1, 1)


@dataclass(frozen=True)
class ModelConfig:
    """What a sentence-transformers model directory says about how it encodes."""

    max_seq_length: int
    num_heads: int
    hidden_size: int


def read_model_config(model_dir: Path) -> ModelConfig:
    """Check that ``model_dir`` is Transformer -> mean Pooling [-> Normalize] and read its sizes.

    Raises:
        EncoderUnavailable: the directory is not such a model.
    """
    try:
        config = json.loads((model_dir / "config.json").read_text())
        modules = json.loads((model_dir / "modules.json").read_text())
    except (OSError, ValueError) as exc:
        raise EncoderUnavailable(f"{model_dir}: not a sentence-transformers model directory ({exc})") from exc
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise EncoderUnavailable(
            f"{model_dir}: the ONNX encoder runs Transformer + Pooling [+ Normalize], not {kinds}"
        )
    pooling_dir = model_dir / str(modules[1].get("path", ""))
    try:
        pooling = json.loads((pooling_dir / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise EncoderUnavailable(f"{pooling_dir}: no pooling configuration ({exc})") from exc
    flags = {k for k, v in pooling.items() if k.startswith("pooling_mode_") and v is True}
    if not (flags == {"pooling_mode_mean_tokens"} or (not flags and pooling.get("pooling_mode") == "mean")):
        raise EncoderUnavailable(f"{model_dir}: the ONNX encoder implements mean pooling only ({pooling})")
    max_positions = int(config.get("max_position_embeddings", 512))
    try:
        st_config = json.loads((model_dir / "sentence_bert_config.json").read_text())
    except (OSError, ValueError):
        st_config = {}
    return ModelConfig(
        max_seq_length=min(int(st_config.get("max_seq_length") or max_positions), max_positions),
        num_heads=int(config["num_attention_heads"]),
        hidden_size=int(config["hidden_size"]),
    )


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _reduce_range() -> bool:
    """Whether int8 weights should use 7 bits: on x86 without VNNI, whose u8 x s8 products
    (vpmaddubsw) can saturate at full range. VNNI CPUs (avx512_vnni, avx_vnni) and ARM do not."""
    import platform

    if platform.machine().lower() not in {"x86_64", "amd64", "i386", "i686"}:
        return False
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "").split()
    except OSError:
        return False
    return not ({"avx512_vnni", "avx_vnni"} & set(flags))


def cache_key(model_dir: Path, quantize: bool) -> str:
    """Digest of everything an export depends on: the model files, the recipe, package versions."""
    parts = {
        "model": model_fingerprint(model_dir),
        "recipe": EXPORT_RECIPE,
        "opset": _OPSET,
        "int8": {"weights": "qint8", "per_channel": True, "reduce_range": _reduce_range()}
        if quantize
        else None,
        **{package: _version(package) for package in _VERSIONED},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_valid(entry: Path, key: str) -> bool:
    """Whether ``entry`` is a complete export for ``key`` whose model file matches its digest."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        model = entry / MODEL_FILE
        return bool(
            manifest.get("key") == key
            and model.stat().st_size == manifest.get("size")
            and _sha256(model) == manifest.get("sha256")
        )
    except (OSError, ValueError, AttributeError):
        return False


def _discard(entry: Path) -> None:
    """Move a cache entry aside (one atomic rename, so no reader sees it half deleted), then delete it."""
    aside = entry.parent / f".stale-{uuid.uuid4().hex}"
    try:
        entry.rename(aside)
    except OSError:  # already moved by another process, or never there
        return
    shutil.rmtree(aside, ignore_errors=True)


def _prune_siblings(entry: Path) -> None:
    """Delete what else lies beside ``entry``: other keys' exports (left by older versions),
    and temporary directories of exports that died more than an hour ago."""
    try:
        siblings = list(entry.parent.iterdir())
    except OSError:
        return
    for sibling in siblings:
        if sibling == entry:
            continue
        if not sibling.name.startswith("."):
            if (sibling / MANIFEST).is_file():
                _discard(sibling)
            continue
        try:
            abandoned = time.time() - sibling.stat().st_mtime > _ABANDONED_SECONDS
        except OSError:
            continue
        if abandoned and sibling.name.startswith((".tmp-", ".stale-")):
            shutil.rmtree(sibling, ignore_errors=True)


def _export_fp32(model_dir: Path, config: ModelConfig, target: Path) -> None:
    """Export the transformer of ``model_dir`` to ONNX with dynamic batch and sequence axes, fused for ORT."""
    try:
        import torch
        from onnxruntime.transformers import optimizer
        from transformers import AutoModel
    except ImportError as exc:
        raise EncoderUnavailable(
            f"exporting the ONNX encoder needs torch, transformers and onnx: {exc}"
        ) from exc

    # Eager attention traces to the MatMul/Softmax pattern that onnxruntime fuses into its
    # Attention kernel (the SDPA path does not fuse). The weights and results are the same.
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager")
    model.eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    # eval() on the wrapper too: the exporter puts every module back into the wrapper's
    # mode afterwards, and a new Module is in training mode (dropout on).
    wrapper = LastHiddenState(model).eval()
    sample = torch.ones((2, 16), dtype=torch.long)
    raw = target.with_name("unfused.onnx")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # The TorchScript exporter (dynamo=False) needs no onnxscript and traces this encoder,
        # which has no data-dependent control flow, exactly; the result is checked below.
        torch.onnx.export(
            wrapper,
            (sample, sample, torch.zeros_like(sample)),
            str(raw),
            input_names=list(_INPUTS),
            output_names=[_OUTPUT],
            dynamic_axes={name: {0: "batch", 1: "sequence"} for name in (*_INPUTS, _OUTPUT)},
            opset_version=_OPSET,
            dynamo=False,
        )
        fused = optimizer.optimize_model(
            str(raw), model_type="bert", num_heads=config.num_heads, hidden_size=config.hidden_size
        )
    fused.save_model_to_file(str(target))
    raw.unlink()
    _check_against_torch(model, target)


def _check_against_torch(model: Any, path: Path) -> None:
    """Refuse an export whose hidden states differ from the PyTorch model's on a padded batch."""
    import onnxruntime as ort
    import torch

    ids = torch.tensor([[101, 7592, 2088, 1010, 2129, 2024, 2017, 102], [101, 2748, 102, 0, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    types = torch.zeros_like(ids)
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state.numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": types.numpy()}
    got = session.run([_OUTPUT], feed)[0]
    keep = mask.numpy().astype(bool)
    error = float(np.abs(got[keep] - expected[keep]).max())
    if not error < 1e-3:
        raise EncoderUnavailable(
            f"the ONNX export differs from the PyTorch model (max abs error {error:.2e})"
        )


def _quantize(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation with per-channel weight scales.

    Per-tensor scales cost too much here (mean cosine to fp32 0.94, against 0.994 per
    channel, on 180-word news passages). Weights are signed int8 and activations uint8,
    the u8 x s8 products that VNNI (avx512_vnni) runs; 7-bit weights where there is no
    VNNI (:func:`_reduce_range`). onnxruntime's pre-processing
    (symbolic shape inference; the graph is already optimised) types every tensor first.
    """
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise EncoderUnavailable(f"quantising the ONNX encoder needs onnx: {exc}") from exc
    prepared = target.with_name("prepared.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quant_pre_process(str(source), str(prepared), skip_optimization=True)
        quantize_dynamic(
            str(prepared),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=_reduce_range(),
        )
    prepared.unlink()


def ensure_export(model_dir: Path, name: str, cache_dir: Path, *, quantize: bool = False) -> Path:
    """Path of a valid cached ONNX export of ``model_dir``, exporting it first when missing or broken.

    Args:
        model_dir: a local sentence-transformers model directory (mean pooling).
        name: the encoder name; the entry lives in ``cache_dir / name / <key>``.
        cache_dir: the root of the export cache.
        quantize: build the int8 graph (from the fp32 entry ``name`` without ``-int8``).

    Raises:
        EncoderUnavailable: the model is not exportable, or an export step failed.
    """
    config = read_model_config(model_dir)
    key = cache_key(model_dir, quantize)
    entry = cache_dir / name / key
    if entry.exists():
        if _is_valid(entry, key):
            return entry / MODEL_FILE
        _discard(entry)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=entry.parent))
    except OSError as exc:
        raise EncoderUnavailable(f"cannot write the ONNX export cache {cache_dir}: {exc}") from exc
    try:
        model = tmp / MODEL_FILE
        if quantize:
            fp32 = ensure_export(model_dir, name.removesuffix("-int8"), cache_dir, quantize=False)
            _quantize(fp32, model)
        else:
            _export_fp32(model_dir, config, model)
        manifest = {
            "key": key,
            "encoder": name,
            "source": str(model_dir),
            "size": model.stat().st_size,
            "sha256": _sha256(model),
            "recipe": EXPORT_RECIPE,
            "versions": {package: _version(package) for package in _VERSIONED},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        for _ in range(3):
            try:
                tmp.rename(entry)
                break
            except OSError:
                # Another process got there first: keep its export if it is whole.
                if _is_valid(entry, key):
                    break
                _discard(entry)
        else:
            raise EncoderUnavailable(f"cannot move the ONNX export into {entry}")
    except EncoderUnavailable:
        raise
    except Exception as exc:
        raise EncoderUnavailable(f"exporting {name} from {model_dir} failed: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune_siblings(entry)
    return entry / MODEL_FILE


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
            import onnxruntime as ort
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
        self.name = f"{base}-onnx-int8" if quantize else f"{base}-onnx"
        config = read_model_config(path)
        self.dim = config.hidden_size
        self.max_seq_length = config.max_seq_length
        self.batch_size = max(int(batch_size), 1)
        self.threads = threads if threads is not None else default_threads()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._tokenizer, self._pad_id = _load_tokenizer(path, config.max_seq_length, Tokenizer)

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.model_file = ensure_export(path, self.name, self.cache_dir, quantize=quantize)
        try:
            self._session = ort.InferenceSession(
                str(self.model_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception:  # noqa: BLE001 - onnxruntime's own types; a file it refuses is rebuilt once
            _discard(self.model_file.parent)
            self.model_file = ensure_export(path, self.name, self.cache_dir, quantize=quantize)
            try:
                self._session = ort.InferenceSession(
                    str(self.model_file), options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:
                raise EncoderUnavailable(f"onnxruntime cannot load {self.model_file}: {exc}") from exc
        self._input_names = {i.name for i in self._session.get_inputs()}

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
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            inputs = {k: v for k, v in feed.items() if k in self._input_names}
            hidden = self._session.run([_OUTPUT], inputs)[0]
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
