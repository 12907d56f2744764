"""`policy-qa train` machinery on a toy scale: the loss goes down, an interrupted run resumes where its
checkpoint left it, and the exported ONNX model embeds as the trained one does. (Real runs take an hour
and never run in CI; these take seconds.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnx")

from assistant.learning.query_tower import Example, TowerConfig, train_tower  # noqa: E402

pytestmark = pytest.mark.slow  # trains and exports small models (torch)

TINY = TowerConfig(layers=(0, 1), trainable_from=0, batch=4, epochs=2.0, lr=3e-4, warmup=0.0, anchor=0.0,
                   checkpoint_every=2, threads=1)


@pytest.fixture(scope="module")
def toy(assistant):  # noqa: ANN001, ANN201
    """Four questions with their answering clauses, against the index's real passage vectors."""
    index = assistant.index
    by_id = index.by_id
    examples = [Example(query=q, positives=[by_id[c]], kind="mined") for q, c in [
        ("营业执照丢了怎么办", "shichang-zhuti-dengji-guanli-tiaoli#37"),
        ("公司破产了工资怎么办", "qiye-pochan-fa#113"),
        ("串标怎么处罚", "zhaobiao-toubiao-fa-shishi-tiaoli#67"),
        ("股东能查公司的账吗", "gongsi-fa#57"),
    ]]
    return examples, index.dense.reconstruct_n(0, index.dense.ntotal), index.unit_clause


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_from_its_checkpoint_and_learns(tmp_path: Path, toy) -> None:  # noqa: ANN001
    examples, units, unit_clause = toy
    config = TINY.model_copy(update={"mined_repeat": 2})  # 8 items a pass: 2 steps an epoch, 4 in all

    def stop_at_three(step: int, total: int, loss: float) -> None:
        if step == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_tower(tmp_path, examples, units, unit_clause, config, on_progress=stop_at_three)
    assert (tmp_path / "checkpoint.pt").is_file() and not (tmp_path / "model.pt").exists()

    steps: list[int] = []
    train_tower(tmp_path, examples, units, unit_clause, config, on_progress=lambda s, t, l: steps.append(s))
    assert steps == [3, 4]  # resumed after the checkpoint at step 2, not from the start
    losses = [json.loads(line)["loss"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert losses and (tmp_path / "model.pt").is_file()


def test_the_loss_goes_down_on_what_it_trains_on(tmp_path: Path, toy) -> None:  # noqa: ANN001
    examples, units, unit_clause = toy
    losses: list[float] = []
    config = TINY.model_copy(update={"epochs": 8.0, "mined_repeat": 1})
    train_tower(tmp_path, examples, units, unit_clause, config, on_progress=lambda s, t, l: losses.append(l))
    assert len(losses) == 8 and np.mean(losses[-2:]) < np.mean(losses[:2])


def test_the_exported_model_embeds_as_the_trained_one(tmp_path: Path, toy) -> None:  # noqa: ANN001
    import torch

    from assistant.knowledge.e5 import E5File
    from assistant.knowledge.query_tower import QueryTower
    from assistant.learning.export import export_tower
    from assistant.learning.query_tower import QueryBatcher, build_tower

    examples, units, unit_clause = toy
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(TINY.model_dump_json())
    train_tower(run, examples, units, unit_clause, TINY)
    manifest = export_tower(run, tmp_path / "tower", "test", [e.query for e in examples])
    assert manifest["version"] == "test" and manifest["int8_vs_fp32_cosine"]["mean"] >= 0.97
    served = QueryTower(tmp_path / "tower").load()
    assert served.name == "query-tower-test"
    tower = build_tower(TINY, E5File())
    tower.load_state_dict(torch.load(run / "model.pt", weights_only=True))
    tower.eval()
    with torch.no_grad():
        reference = tower(*map(torch.from_numpy, QueryBatcher(E5File(), TINY.max_tokens).batch(["串标怎么处罚"]))).numpy()[0]
    vector = served.embed("串标怎么处罚")
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3
    assert float(vector @ reference) > 0.97
