"""The ONNX Runtime encoders (fp32 and int8) and their export cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from monitor.matching.embedding import Encoder, EncoderUnavailable, available_encoders, load_encoder
from monitor.matching.embedding import onnx_export as onnx_module
from monitor.matching.embedding.onnx import (
    MANIFEST,
    MODEL_FILE,
    ONNX_ENCODER,
    ONNX_INT8_ENCODER,
    OnnxEncoder,
    default_cache_dir,
    ensure_export,
    read_model_config,
)
from monitor.matching.embedding.sentence_transformer import bundled_model_path

REPO = Path(__file__).resolve().parents[2]

SENTENCES = [
    "Iran tested a ballistic missile, the Revolutionary Guards said on Sunday.",
    "Negotiators met in Vienna to revive the nuclear deal.",
    "A cake recipe with three eggs.",
    "Stocks fell.",
    "",
    # Longer than the 256-token window: truncated as sentence-transformers truncates it.
    " ".join(["The central bank raised interest rates again as inflation stayed high."] * 60),
    "Tehran launched a missile test over the Gulf of Oman, officials reported.",
]


class Counter:
    """Counts calls of a wrapped function."""

    def __init__(self, function: Callable[..., None]) -> None:
        self.function = function
        self.calls = 0

    def __call__(self, *args: object) -> None:
        self.calls += 1
        self.function(*args)


@pytest.fixture(scope="module")
def xdg_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An XDG cache home for this module; its encoders cache is filled by the first load."""
    return tmp_path_factory.mktemp("xdg")


@pytest.fixture(scope="module")
def cache_dir(xdg_home: Path) -> Path:
    return xdg_home / "news-coverage-monitor" / "encoders"


@pytest.fixture(scope="module")
def fp32(cache_dir: Path) -> OnnxEncoder:
    pytest.importorskip("onnxruntime")
    return OnnxEncoder(cache_dir=cache_dir)


@pytest.fixture(scope="module")
def int8(cache_dir: Path, fp32: OnnxEncoder) -> OnnxEncoder:
    return OnnxEncoder(cache_dir=cache_dir, quantize=True)


@pytest.fixture
def counters(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Counter, Counter]]:
    """(export, quantise) call counters around the real steps."""
    export = Counter(onnx_module._export_fp32)
    quantize = Counter(onnx_module._quantize)
    monkeypatch.setattr(onnx_module, "_export_fp32", export)
    monkeypatch.setattr(onnx_module, "_quantize", quantize)
    yield export, quantize


def _entry(encoder: OnnxEncoder) -> Path:
    return encoder.model_file.parent


# -- the encoders ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("which", ["fp32", "int8"])
def test_loads_offline_from_the_cache_and_returns_unit_vectors(
    which: str, request: pytest.FixtureRequest, cache_dir: Path
) -> None:
    encoder: OnnxEncoder = request.getfixturevalue(which)
    assert isinstance(encoder, Encoder)
    assert encoder.name == (ONNX_ENCODER if which == "fp32" else ONNX_INT8_ENCODER)
    assert encoder.dim == 384 and encoder.max_seq_length == 256
    assert encoder.model_file.is_relative_to(cache_dir / encoder.name)
    vectors = encoder.encode_passages(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[6] > vectors[0] @ vectors[2] + 0.3
    assert encoder.encode_passages([]).shape == (0, 384)
    queries = encoder.encode_queries(SENTENCES[:2])
    if which == "fp32":
        assert np.allclose(queries, vectors[:2], atol=1e-5)
    else:  # int8 activation scales are computed per batch, so batch-mates move a vector a little
        assert np.all(np.sum(queries * vectors[:2], axis=1) > 0.99)


@pytest.mark.slow
@pytest.mark.parametrize(("which", "least"), [("fp32", 0.999), ("int8", 0.97)])
def test_agrees_with_the_pytorch_encoder(
    which: str, least: float, request: pytest.FixtureRequest, pytorch_encoder: Encoder
) -> None:
    onnx_encoder: OnnxEncoder = request.getfixturevalue(which)
    cosines = np.sum(
        onnx_encoder.encode_passages(SENTENCES) * pytorch_encoder.encode_passages(SENTENCES), axis=1
    )
    assert cosines.min() > least, cosines


@pytest.mark.slow
def test_truncates_at_max_seq_length_and_pads_per_batch(fp32: OnnxEncoder) -> None:
    # tokenizer.json of this model says truncate and pad to 128; sentence-transformers uses 256.
    tokenizer = fp32._tokenizer
    assert tokenizer.truncation is not None and tokenizer.truncation["max_length"] == 256
    assert tokenizer.padding is None
    assert len(tokenizer.encode(SENTENCES[5]).ids) == 256
    assert read_model_config(bundled_model_path()).max_seq_length == 256


@pytest.mark.slow
@pytest.mark.parametrize("which", ["fp32", "int8"])
def test_keeps_the_input_order_despite_length_sorting(which: str, request: pytest.FixtureRequest) -> None:
    encoder: OnnxEncoder = request.getfixturevalue(which)
    one_by_one = np.vstack([encoder.encode_passages([text]) for text in SENTENCES])
    saved = encoder.batch_size
    try:
        encoder.batch_size = 2  # several mini-batches, each sorted by length
        batched = encoder.encode_passages(SENTENCES)
        reversed_ = encoder.encode_passages(SENTENCES[::-1])[::-1]
    finally:
        encoder.batch_size = saved
    # Padding changes nothing but rounding (and int8's dynamic activation scales).
    tolerance = 1e-4 if which == "fp32" else 5e-2
    assert np.allclose(batched, one_by_one, atol=tolerance)
    assert np.allclose(reversed_, batched, atol=tolerance)
    assert np.all(np.sum(batched * one_by_one, axis=1) > 0.99)


@pytest.mark.slow
def test_threads_are_the_cores_by_default_and_configurable(fp32: OnnxEncoder, cache_dir: Path) -> None:
    assert fp32.threads == len(os.sched_getaffinity(0))
    one = OnnxEncoder(cache_dir=cache_dir, threads=1, batch_size=4)
    assert one.threads == 1 and one.batch_size == 4
    assert np.allclose(one.encode_passages(SENTENCES[:3]), fp32.encode_passages(SENTENCES[:3]), atol=1e-5)


# -- the cache ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_load_reuses_the_cached_exports(
    fp32: OnnxEncoder, int8: OnnxEncoder, cache_dir: Path, counters: tuple[Counter, Counter]
) -> None:
    export, quantize = counters
    before = {p: p.stat().st_mtime_ns for p in cache_dir.rglob("*") if p.is_file()}
    again = OnnxEncoder(cache_dir=cache_dir)
    again_int8 = OnnxEncoder(cache_dir=cache_dir, quantize=True)
    assert (export.calls, quantize.calls) == (0, 0)
    assert again.model_file == fp32.model_file and again_int8.model_file == int8.model_file
    assert {p: p.stat().st_mtime_ns for p in cache_dir.rglob("*") if p.is_file()} == before
    manifest = json.loads((_entry(int8) / MANIFEST).read_text())
    assert manifest["encoder"] == ONNX_INT8_ENCODER and manifest["versions"]["onnxruntime"] != "absent"


@pytest.mark.slow
def test_the_registry_builds_both_under_the_xdg_cache(
    fp32: OnnxEncoder, xdg_home: Path, monkeypatch: pytest.MonkeyPatch, counters: tuple[Counter, Counter]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg_home))
    assert {ONNX_ENCODER, ONNX_INT8_ENCODER} <= set(available_encoders())
    assert default_cache_dir() == xdg_home / "news-coverage-monitor" / "encoders"
    for name in (ONNX_ENCODER, ONNX_INT8_ENCODER):
        built = load_encoder(name, batch_size=8)
        assert isinstance(built, OnnxEncoder) and built.name == name and built.batch_size == 8
    assert counters[0].calls == counters[1].calls == 0
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "news-coverage-monitor" / "encoders"


@pytest.mark.slow
def test_a_corrupted_int8_model_is_rebuilt(
    int8: OnnxEncoder, cache_dir: Path, tmp_path: Path, counters: tuple[Counter, Counter]
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(cache_dir, cache)
    model = cache / int8.name / _entry(int8).name / MODEL_FILE
    size = model.stat().st_size
    model.write_bytes(b"\0" * size)  # same size, wrong bytes
    rebuilt = OnnxEncoder(cache_dir=cache, quantize=True)
    export, quantize = counters
    assert (export.calls, quantize.calls) == (0, 1)  # the fp32 entry was whole and reused
    assert rebuilt.model_file == model and model.read_bytes() != b"\0" * size
    assert np.allclose(rebuilt.encode_passages(SENTENCES), int8.encode_passages(SENTENCES), atol=1e-5)
    assert not [p for p in (cache / int8.name).iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_a_corrupted_fp32_export_is_rebuilt(
    fp32: OnnxEncoder, cache_dir: Path, tmp_path: Path, counters: tuple[Counter, Counter]
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(cache_dir / fp32.name, cache / fp32.name)
    entry = cache / fp32.name / _entry(fp32).name
    (entry / MODEL_FILE).write_bytes((entry / MODEL_FILE).read_bytes()[:1000])  # a truncated file
    rebuilt = OnnxEncoder(cache_dir=cache)
    assert counters[0].calls == 1
    assert rebuilt.model_file == entry / MODEL_FILE
    assert np.allclose(rebuilt.encode_passages(SENTENCES), fp32.encode_passages(SENTENCES), atol=1e-5)


@pytest.mark.slow
def test_loading_from_the_cache_does_not_import_torch(fp32: OnnxEncoder, cache_dir: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from monitor.matching.embedding.onnx import OnnxEncoder; "
        f"e = OnnxEncoder(cache_dir=Path({str(cache_dir)!r}), quantize=True); e.encode_passages(['x']); "
        "print(sorted({'torch', 'transformers', 'sentence_transformers'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


# -- the cache's bookkeeping, with a stand-in exporter (fast) ----------------------


@pytest.fixture
def fake_export(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Replace the export with one that writes a small file, counting calls."""

    def write(model_dir: Path, config: object, target: Path) -> None:
        target.write_bytes(b"onnx graph of " + str(model_dir).encode())

    counter = Counter(write)
    monkeypatch.setattr(onnx_module, "_export_fp32", counter)
    return counter


def test_an_export_is_cached_under_name_and_key(tmp_path: Path, fake_export: Counter) -> None:
    path = ensure_export(bundled_model_path(), ONNX_ENCODER, tmp_path)
    assert path.name == MODEL_FILE and path.parent.parent == tmp_path / ONNX_ENCODER
    manifest = json.loads((path.parent / MANIFEST).read_text())
    assert manifest["size"] == path.stat().st_size and manifest["key"] == path.parent.name
    assert ensure_export(bundled_model_path(), ONNX_ENCODER, tmp_path) == path
    assert fake_export.calls == 1
    assert [p.name for p in (tmp_path / ONNX_ENCODER).iterdir()] == [path.parent.name]  # no temp left


def test_a_changed_key_rebuilds_and_prunes_the_stale_export(
    tmp_path: Path, fake_export: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = ensure_export(bundled_model_path(), ONNX_ENCODER, tmp_path)
    versions = {"onnxruntime": "0.0.1"}
    monkeypatch.setattr(onnx_module, "_version", lambda package: versions.get(package, "9"))
    new = ensure_export(bundled_model_path(), ONNX_ENCODER, tmp_path)
    assert new != old and fake_export.calls == 2
    assert not old.parent.exists() and new.is_file()


def test_temporary_directories_of_dead_exports_are_swept(tmp_path: Path, fake_export: Counter) -> None:
    name_dir = tmp_path / ONNX_ENCODER
    dead, live = name_dir / ".tmp-dead", name_dir / ".tmp-live"
    for directory in (dead, live):
        directory.mkdir(parents=True)
        (directory / MODEL_FILE).write_bytes(b"half")
    os.utime(dead, (0, 0))  # abandoned long ago; "live" may belong to a running export
    path = ensure_export(bundled_model_path(), ONNX_ENCODER, tmp_path)
    assert sorted(p.name for p in name_dir.iterdir()) == sorted([".tmp-live", path.parent.name])


def test_a_missing_manifest_or_wrong_digest_is_rebuilt(tmp_path: Path, fake_export: Counter) -> None:
    path = ensure_export(bundled_model_path(), ONNX_ENCODER, tmp_path)
    (path.parent / MANIFEST).unlink()
    assert ensure_export(bundled_model_path(), ONNX_ENCODER, tmp_path) == path
    manifest = json.loads((path.parent / MANIFEST).read_text())
    (path.parent / MANIFEST).write_text(json.dumps({**manifest, "sha256": "0" * 64}))
    assert ensure_export(bundled_model_path(), ONNX_ENCODER, tmp_path) == path
    assert fake_export.calls == 3


def test_concurrent_exports_leave_one_whole_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    barrier = threading.Barrier(2, timeout=30)

    def slow_write(model_dir: Path, config: object, target: Path) -> None:
        target.write_bytes(b"graph")
        barrier.wait()  # both writers are mid-export at once

    monkeypatch.setattr(onnx_module, "_export_fp32", slow_write)
    results: list[Path] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(ensure_export(bundled_model_path(), ONNX_ENCODER, tmp_path))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and len(results) == 2 and results[0] == results[1]
    assert [p.name for p in (tmp_path / ONNX_ENCODER).iterdir()] == [results[0].parent.name]
    assert results[0].read_bytes() == b"graph"


def test_a_failed_export_is_encoder_unavailable_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(model_dir: Path, config: object, target: Path) -> None:
        target.write_bytes(b"half")
        raise RuntimeError("tracing failed")

    monkeypatch.setattr(onnx_module, "_export_fp32", broken)
    with pytest.raises(EncoderUnavailable, match="tracing failed"):
        ensure_export(bundled_model_path(), ONNX_ENCODER, tmp_path)
    assert list((tmp_path / ONNX_ENCODER).iterdir()) == []


def test_missing_onnxruntime_is_encoder_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(EncoderUnavailable, match="onnxruntime"):
        OnnxEncoder(cache_dir=tmp_path)
    with pytest.raises(EncoderUnavailable, match="onnxruntime"):
        load_encoder(ONNX_INT8_ENCODER)


def test_a_model_that_is_not_mean_pooled_is_refused(tmp_path: Path) -> None:
    model = tmp_path / "cls-model"
    shutil.copytree(bundled_model_path(), model)
    config = model / "1_Pooling" / "config.json"
    pooling = json.loads(config.read_text())
    config.write_text(
        json.dumps({**pooling, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True})
    )
    with pytest.raises(EncoderUnavailable, match="mean pooling"):
        read_model_config(model)


def test_a_missing_model_directory_is_a_named_error(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    with pytest.raises(EncoderUnavailable, match="not found"):
        OnnxEncoder(tmp_path / "no-model", cache_dir=tmp_path)
