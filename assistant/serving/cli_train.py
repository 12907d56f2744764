"""`policy-qa train …`: mine training pairs, train the relevance model (resumable), export it. Never in CI.

    policy-qa train mine RAW.jsonl…            # search records → training/mined_pairs.jsonl, offdomain_questions.jsonl
    policy-qa train fit --run training/runs/rel-v2   # groups built once, then trains; rerun to resume
    policy-qa train export --run training/runs/rel-v2 --version 2
    policy-qa train status --run training/runs/rel-v2
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..config import get_settings
from .console import fail

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
        layers: Annotated[str, typer.Option(help="e5 layers the student keeps, e.g. 0,1,2,3")] = "0,1,2,3",
        epochs: Annotated[float, typer.Option(help="passes over the groups")] = 2.0) -> None:
    """Train (or resume) the relevance model in RUN; the recipe is fixed when the run starts."""
    _need_training_extra()
    from ..evaluation.training_sets import load_mined
    from ..knowledge.labels import operator_labels
    from ..learning.dataset import training_groups
    from ..learning.train import TrainConfig, load_groups, save_groups, train
    from .cli import load_assistant

    run.mkdir(parents=True, exist_ok=True)
    config_path = run / "config.json"
    if config_path.is_file():
        config = TrainConfig.model_validate_json(config_path.read_text("utf-8"))
        typer.echo(f"继续训练 {run}（配方见 config.json）", err=True)
    else:
        config = TrainConfig(layers=tuple(int(x) for x in layers.split(",")), epochs=epochs)
        config_path.write_text(config.model_dump_json(indent=1), "utf-8")
    groups_path, texts_path = run / "groups.jsonl", run / "texts.json"
    if not groups_path.is_file():
        assistant = load_assistant()
        labels = operator_labels(get_settings().db_path)
        groups, texts = training_groups(assistant, load_mined(), labels, seed=config.seed)
        save_groups(groups_path, groups)
        texts_path.write_text(json.dumps(texts, ensure_ascii=False), "utf-8")
        kinds = {k: sum(g.kind == k for g in groups) for k in ("mined", "operator", "unanswerable", "ict")}
        typer.echo(f"训练组：{kinds}", err=True)
    groups, texts = load_groups(groups_path), json.loads(texts_path.read_text("utf-8"))

    from tqdm import tqdm

    with tqdm(desc="训练", unit="步") as bar:
        def progress(step: int, total: int, loss: float) -> None:
            bar.total = total
            bar.n = step
            bar.set_postfix(loss=f"{loss:.3f}")
            bar.refresh()

        train(run, groups, texts, config, on_progress=progress)
    typer.echo(f"完成：{run / 'model.pt'}；导出：policy-qa train export --run {run} --version N")


@train_app.command("export")
def export_command(run: RunOption, version: Annotated[str, typer.Option(help="the artefact's version")]) -> None:
    """Export RUN's model as the bundled relevance model (int8 ONNX + manifest), checked against torch."""
    _need_training_extra()
    from ..knowledge.relevance import BUNDLED_DIR
    from ..learning.export import export
    from ..learning.train import load_groups

    if not (run / "model.pt").is_file():
        fail(f"{run} 还没有训练完成的模型（model.pt）：先运行 policy-qa train fit --run {run}")
    groups = load_groups(run / "groups.jsonl")
    texts = json.loads((run / "texts.json").read_text("utf-8"))
    check = [(g.query, texts[(g.positives or g.negatives)[0]]) for g in groups[:64]]
    kinds = {k: sum(g.kind == k for g in groups) for k in ("mined", "operator", "unanswerable", "ict")}
    BUNDLED_DIR.parent.mkdir(parents=True, exist_ok=True)
    manifest = export(run, BUNDLED_DIR, version, check, extra={"training_groups": kinds})
    typer.echo(f"已导出 relevance-{version} → {BUNDLED_DIR}（int8 与 fp32 分数相关 "
               f"{manifest['int8_vs_fp32_correlation']}）；运行 policy-qa build 以交叉验证是否采用。")


@train_app.command("status")
def status(run: RunOption) -> None:
    """Where a run stands: its recipe and the last logged loss."""
    log = run / "log.jsonl"
    if not log.is_file():
        fail(f"{run} 没有训练记录")
    last = json.loads(log.read_text("utf-8").splitlines()[-1])
    typer.echo(f"step {last['step']}/{last['total']}  loss {last['loss']}  "
               f"{'完成' if (run / 'model.pt').is_file() else '进行中或已中断（重新运行 fit 即可继续）'}")
