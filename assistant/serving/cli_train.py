"""`policy-qa train …`: mine training pairs, train the learned models (resumable), export them. Never in CI.

    policy-qa train mine RAW.jsonl…                      # page records → training/mined_pairs.jsonl, offdomain_questions.jsonl
    policy-qa train fit --model tower --run training/runs/tower-v1   # the question encoder; rerun to resume
    policy-qa train fit --model relevance --run training/runs/rel-v1 # the cross-encoder
    policy-qa train export --run training/runs/tower-v1 --version 1   # into the bundled models folder
    policy-qa train status --run training/runs/tower-v1

Two models: `tower`, a question encoder fine-tuned against the index's frozen passage vectors
(learning/query_tower.py), and `relevance`, a cross-encoder reading question and clause together
(learning/train.py). `policy-qa build` decides by cross-validation whether each is used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..config import get_settings
from .console import fail, load_assistant

train_app = typer.Typer(help="Train the learned relevance model (needs the `train` extra; never run in CI).",
                        no_args_is_help=True, add_completion=False)

RunOption = Annotated[Path, typer.Option("--run", help="the run directory (created if missing)")]


def _need_training_extra():  # noqa: ANN202
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        fail("训练需要可选依赖：pip install -e '.[train]'")


@train_app.command("mine")
def mine(raw: Annotated[list[Path], typer.Argument(help="JSON-lines search records (see training/README.md)")]) -> None:
    """Label raw page records by the statute text they quote; write the training sets; report the yield."""
    from ..evaluation.training_sets import MINED_PAIRS, OFF_DOMAIN, eval_holdouts
    from ..knowledge.store import load_index
    from ..learning.mining import (
        ClauseMatcher,
        MinedRecord,
        RawDomainRecord,
        domain_questions,
        mine_pairs,
        yield_by_law,
    )

    index = load_index(get_settings())
    records, domain = [], []
    for path in raw:
        for n, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            data = json.loads(line)
            try:
                if "quotes" in data:
                    records.append(MinedRecord.model_validate(data))
                else:
                    domain.append(RawDomainRecord.model_validate(data))
            except ValueError as exc:
                typer.echo(f"{path}:{n}: skipped ({str(exc).splitlines()[0]})", err=True)
    urls, questions = eval_holdouts()
    pairs = mine_pairs(records, ClauseMatcher(index.clauses, index.documents), urls, questions)
    others = domain_questions(domain, urls, questions)
    MINED_PAIRS.parent.mkdir(parents=True, exist_ok=True)
    MINED_PAIRS.write_text("".join(p.model_dump_json() + "\n" for p in pairs), "utf-8")
    OFF_DOMAIN.write_text("".join(q.model_dump_json() + "\n" for q in others), "utf-8")
    typer.echo(f"{len(records)} records → {len(pairs)} pairs ({len({p.question for p in pairs})} questions, "
               f"{len({p.source for p in pairs})} pages); {len(others)} off/near-domain questions")
    for law, row in yield_by_law(pairs, index.documents).items():
        typer.echo(f"  {law}: {row['pairs']} pairs, {row['questions']} questions, {row['clauses']} clauses")


@train_app.command("fit")
def fit(run: RunOption,
        model: Annotated[str, typer.Option(
            help="tower (question encoder), relevance (cross-encoder) or faithfulness (grounding classifier)")] = "tower",
        layers: Annotated[str, typer.Option(help="relevance only: e5 layers the student keeps")] = "0,1,2,3",
        epochs: Annotated[float, typer.Option(help="passes over the training data")] = 6.0) -> None:
    """Train (or resume) a model in RUN; the recipe is fixed when the run starts (RUN/config.json)."""
    _need_training_extra()
    if model not in ("tower", "relevance", "faithfulness"):
        fail("--model 只能是 tower、relevance 或 faithfulness")
    run.mkdir(parents=True, exist_ok=True)
    (run / "kind").write_text(model, "utf-8")
    if model == "tower":
        _fit_tower(run, epochs)
    elif model == "relevance":
        _fit_relevance(run, tuple(int(x) for x in layers.split(",")), epochs)
    else:
        _fit_faithfulness(run, tuple(int(x) for x in layers.split(",")), epochs)


def _progress_bar():  # noqa: ANN202
    from tqdm import tqdm

    bar = tqdm(desc="训练", unit="步")

    def progress(step: int, total: int, loss: float) -> None:
        bar.total, bar.n = total, step
        bar.set_postfix(loss=f"{loss:.3f}")
        bar.refresh()

    return bar, progress


def _fit_tower(run: Path, epochs: float) -> None:
    from ..evaluation.training_sets import load_mined
    from ..knowledge.labels import operator_labels
    from ..knowledge.store import load_index
    from ..learning.query_tower import TowerConfig, tower_examples, train_tower

    config_path = run / "config.json"
    if config_path.is_file():
        config = TowerConfig.model_validate_json(config_path.read_text("utf-8"))
        typer.echo(f"继续训练 {run}（配方见 config.json）", err=True)
    else:
        config = TowerConfig(epochs=epochs)
        config_path.write_text(config.model_dump_json(indent=1), "utf-8")
    index = load_index(get_settings())
    examples = tower_examples(index, load_mined(), operator_labels(get_settings().db_path), config.seed)
    units = index.dense.reconstruct_n(0, index.dense.ntotal)
    bar, progress = _progress_bar()
    with bar:
        train_tower(run, examples, units, index.unit_clause, config, on_progress=progress)
    typer.echo(f"完成：{run / 'model.pt'}；导出：policy-qa train export --run {run} --version N")


def _fit_relevance(run: Path, layers: tuple[int, ...], epochs: float) -> None:
    from ..evaluation.training_sets import load_mined
    from ..knowledge.labels import operator_labels
    from ..learning.dataset import training_groups
    from ..learning.train import TrainConfig, load_groups, save_groups, train

    config_path = run / "config.json"
    if config_path.is_file():
        config = TrainConfig.model_validate_json(config_path.read_text("utf-8"))
        typer.echo(f"继续训练 {run}（配方见 config.json）", err=True)
    else:
        config = TrainConfig(layers=layers, epochs=epochs)
        config_path.write_text(config.model_dump_json(indent=1), "utf-8")
    groups_path, texts_path = run / "groups.jsonl", run / "texts.json"
    if not groups_path.is_file():
        groups, texts = training_groups(load_assistant(), load_mined(), operator_labels(get_settings().db_path),
                                        seed=config.seed)
        save_groups(groups_path, groups)
        texts_path.write_text(json.dumps(texts, ensure_ascii=False), "utf-8")
    groups, texts = load_groups(groups_path), json.loads(texts_path.read_text("utf-8"))
    bar, progress = _progress_bar()
    with bar:
        train(run, groups, texts, config, on_progress=progress)
    typer.echo(f"完成：{run / 'model.pt'}；导出：policy-qa train export --run {run} --version N")


def _fit_faithfulness(run: Path, layers: tuple[int, ...], epochs: float) -> None:
    import random

    from ..knowledge.store import load_index
    from ..learning.faithfulness import corpus_examples
    from ..learning.train import TrainConfig, train_binary

    config_path = run / "config.json"
    if config_path.is_file():
        config = TrainConfig.model_validate_json(config_path.read_text("utf-8"))
        typer.echo(f"继续训练 {run}（配方见 config.json）", err=True)
    else:
        config = TrainConfig(layers=layers, epochs=epochs, max_len=192, max_query_tokens=96, lr=1e-4)
        config_path.write_text(config.model_dump_json(indent=1), "utf-8")
    pairs_path = run / "pairs.jsonl"
    if not pairs_path.is_file():
        examples = corpus_examples(load_index(get_settings()).clauses, random.Random(config.seed))
        pairs_path.write_text("".join(json.dumps([e.claim, e.clause_text, e.faithful, e.kind], ensure_ascii=False)
                                      + "\n" for e in examples), "utf-8")
    pairs = [tuple(json.loads(line)[:3]) for line in pairs_path.read_text("utf-8").splitlines() if line]
    bar, progress = _progress_bar()
    with bar:
        train_binary(run, pairs, config, on_progress=progress)  # type: ignore[arg-type]
    typer.echo(f"完成：{run / 'model.pt'}；导出：policy-qa train export --run {run} --version N")


@train_app.command("export")
def export_command(run: RunOption, version: Annotated[str, typer.Option(help="the artefact's version")],
                   to: Annotated[Path | None, typer.Option(help="another directory than the bundled one")] = None) -> None:
    """Export RUN's model (int8 ONNX + manifest, checked against torch) as the bundled model of its kind."""
    _need_training_extra()
    from ..evaluation.training_sets import load_mined

    kind = (run / "kind").read_text("utf-8").strip() if (run / "kind").is_file() else None
    if kind is None or not (run / "model.pt").is_file():
        fail(f"{run} 还没有训练完成的模型：先运行 policy-qa train fit --run {run}")
    questions = [p.question for p in load_mined()][:64]
    if kind == "tower":
        from ..knowledge.query_tower import BUNDLED_DIR
        from ..learning.export import export_tower

        target = to or BUNDLED_DIR
        target.parent.mkdir(parents=True, exist_ok=True)
        manifest = export_tower(run, target, version, questions)
        typer.echo(f"已导出 query-tower-{version} → {target}（int8 与 fp32 向量余弦均值 "
                   f"{manifest['int8_vs_fp32_cosine']['mean']}）；运行 policy-qa build 以交叉验证是否采用。")
        return
    from ..knowledge.relevance import BUNDLED_DIR, FAITHFULNESS_DIR
    from ..learning.export import export

    if kind == "faithfulness":
        pairs = [json.loads(line) for line in (run / "pairs.jsonl").read_text("utf-8").splitlines()[:64]]
        check = [(claim, clause) for claim, clause, *_ in pairs]
        target = to or FAITHFULNESS_DIR
    else:
        from ..learning.train import load_groups

        groups = load_groups(run / "groups.jsonl")
        texts = json.loads((run / "texts.json").read_text("utf-8"))
        check = [(g.query, texts[(g.positives or g.negatives)[0]]) for g in groups[:64]]
        target = to or BUNDLED_DIR
    target.parent.mkdir(parents=True, exist_ok=True)
    manifest = export(run, target, version, check, kind=kind)
    typer.echo(f"已导出 {kind}-{version} → {target}（int8 与 fp32 分数相关 "
               f"{manifest['int8_vs_fp32_correlation']}）；交叉验证决定是否采用（policy-qa build，或 grounding_eval）。")


@train_app.command("status")
def status(run: RunOption) -> None:
    """Where a run stands: its recipe and the last logged loss."""
    log = run / "log.jsonl"
    if not log.is_file():
        fail(f"{run} 没有训练记录")
    last = json.loads(log.read_text("utf-8").splitlines()[-1])
    typer.echo(f"step {last['step']}/{last['total']}  loss {last['loss']}  "
               f"{'完成' if (run / 'model.pt').is_file() else '进行中或已中断（重新运行 fit 即可继续）'}")
