"""Export a sentence-transformers model to ONNX (fp32, or dynamically quantised to int8) and cache it.

The ONNX graph is exported from the local model directory (no hub, no download) the
first time an encoder is built, and cached per user:

    <cache_dir>/<encoder name>/<key>/model.onnx  (+ manifest.json)
    cache_dir default: $XDG_CACHE_HOME/news-coverage-monitor/encoders (~/.cache/...)

``<key>`` digests the source model files, the export recipe and the versions of the
packages that shape the graph (onnxruntime, onnx, torch, transformers), so a stale
export is never loaded: a new key is built beside it and the older keys are pruned.
An export is written into a temporary directory next to its final place and renamed
into it, so two processes exporting at once each write a whole file and one of them
wins. An entry whose model file does not match the digest in its manifest, or that
onnxruntime refuses, is moved aside and rebuilt. Exporting needs ``torch``,
``transformers`` and ``onnx``; :mod:`monitor.matching.embedding.onnx` loads the result.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monitor.matching.embedding.encoder import EncoderUnavailable
from monitor.matching.embedding.sentence_transformer import model_fingerprint

# Bump when the export or quantisation recipe changes, so that old cache entries are rebuilt.
EXPORT_RECIPE = 1
MODEL_FILE = "model.onnx"
MANIFEST = "manifest.json"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "last_hidden_state"
_OPSET = 17
_VERSIONED = ("onnxruntime", "onnx", "torch", "transformers")
_ABANDONED_SECONDS = 3600


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/news-coverage-monitor/encoders``, or ``~/.cache/...`` when that is unset."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "news-coverage-monitor" / "encoders"


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


def discard(entry: Path) -> None:
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
                discard(sibling)
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
            output_names=[OUTPUT],
            dynamic_axes={name: {0: "batch", 1: "sequence"} for name in (*_INPUTS, OUTPUT)},
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
    got = session.run([OUTPUT], feed)[0]
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
        discard(entry)
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
                discard(entry)
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
