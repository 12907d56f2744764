"""`policy-qa`: build the index, ask, search clauses, run the evaluation."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import get_settings
from ..errors import PolicyQAError
from ..question import clean_text
from ..schema import Ask
from .cli_knowledge import register_knowledge_commands
from .cli_train import train_app
from .console import fail, load_assistant, parse_day, stop_on_sigterm

app = typer.Typer(
    help="Cited Q&A over Xiamen's business-environment plan and the national regulations behind it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.add_typer(train_app, name="train")


@app.callback()
def main() -> None:
    """Cited Q&A over Xiamen's business-environment plan and the national regulations behind it."""
    for stream in (sys.stdout, sys.stderr):  # a stray surrogate in a message must not become a traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")


@app.command()
def build(
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Parse the corpus, (re)build index/ atomically and fit its tuned constants by cross-validation.

    Unchanged clauses are not re-embedded. The constants (fusion and ranker, span weights, the scope
    model) depend on the embedding model, so they are fitted on the dev questions before the new index
    is swapped in, and stored in index/tuning.json; unchanged inputs reuse the previous fit.
    """
    from ..evaluation.tuning import build_tuned_index
    from ..knowledge.embeddings import load_embeddings

    settings = get_settings()
    embeddings = load_embeddings(settings.embedding_model, settings.embedding_batch_size)
    say = (lambda step: typer.echo(f"  {step}…" if not step.startswith("调参") else step, err=True)) if progress \
        else (lambda _: None)
    stop_on_sigterm()
    try:
        manifest = build_tuned_index(settings, embeddings, progress, report=say)
    except PolicyQAError as exc:
        fail(f"{exc}\n索引未更新，原有索引仍可使用。")
    except KeyboardInterrupt:
        fail("构建已中断，原有索引仍可使用。", code=130)
    typer.echo(
        f"索引已写入 {settings.index_dir}：{manifest.documents} 个文件，{manifest.clauses} 条条文，"
        f"{manifest.units} 个检索单元、{manifest.spans} 个可引用句（新嵌入 {manifest.embedded_units}，"
        f"复用 {manifest.reused_units}），用时 {manifest.build_seconds} 秒。"
    )
    typer.echo(build_phases(manifest))
    _print_cross_validation(settings.index_dir)


def build_phases(manifest) -> str:  # noqa: ANN001 - an IndexManifest
    """Where a build's time went, and what each newly embedded text is for."""
    from ..knowledge.store import BUILD_PHASES, EMBEDDED_FOR

    phases = "；".join(f"{BUILD_PHASES[k]} {v:.1f} 秒" for k, v in manifest.phases.items() if k in BUILD_PHASES)
    embedded = "；".join(f"{EMBEDDED_FOR[k]} {n} 条" for k, n in manifest.embedded_for.items() if n)
    return f"各阶段：{phases}。" + (f"新嵌入：{embedded}。" if embedded else "没有需要新嵌入的文本。")


def _print_cross_validation(index_dir: Path) -> None:
    from ..answering.fitted import Tuning
    from ..evaluation.floors import ranking_report

    tuning = Tuning.load_if_present(index_dir)
    if tuning is None or "ranker" not in tuning.report:
        return
    ranking, spans = ranking_report(tuning.report), tuning.report["spans"]
    typer.echo(
        f"交叉验证（dev {tuning.report['dev_questions']} 题）：MRR@10 {ranking['cv_mrr@10']:.3f}，"
        f"recall@5 {ranking['cv_recall@5']:.3f}，关键事实 {spans['cv_key_fact_recall']:.3f}"
    )
    real = ((tuning.report.get("scope") or {}).get("cv_by_set") or {}).get("real")
    if real:
        typer.echo(f"置信度（真实问题，交叉验证）：high 正确率 {real['high_precision']}，覆盖 {real['coverage']}，"
                   f"自信答错 {real['confident_wrong']}，低置信 {real['low_confidence_rate']}，拒答召回 {real['abstention_recall']}")
    reranking = tuning.report.get("reranking") or {}
    if reranking.get("reranker"):
        verdict = "采用" if reranking["kept"] else "未采用（交叉验证不支持）"
        typer.echo(f"相关性模型 {reranking['reranker']}：{verdict}；MRR@10 含第二阶段 {reranking.get('cv_mrr@10', 0):.3f}，"
                   f"仅排序模型 {reranking.get('baseline_cv_mrr@10', 0):.3f}")


def fit_tuning(settings, embeddings, progress: bool):  # noqa: ANN001, ANN201 - heavy imports stay lazy
    """Load the index in `settings.index_dir` with default constants and cross-validate new ones."""
    from ..answering.fitted import Tuning
    from ..evaluation.tuning import fingerprint, learned_models, tune
    from ..knowledge.store import load_index
    from ..service import Assistant

    index = load_index(settings)
    report = (lambda step: typer.echo(f"  调参：{step}…", err=True)) if progress else (lambda _: None)
    tuning = tune(Assistant(settings, index, embeddings, tuning=Tuning()), progress=report)
    mark = fingerprint(index.manifest, models=learned_models(settings))
    return tuning.model_copy(update={"report": {**tuning.report, "fingerprint": mark}})


@app.command("tune")
def tune_command(
    write_floors: Annotated[bool, typer.Option(
        help="also rewrite eval/floors.json from the cross-validated estimates (never from test scores)")] = False,
) -> None:
    """Refit the tuned constants of the current index (index/tuning.json) without rebuilding it."""
    from ..knowledge.embeddings import load_embeddings

    settings = get_settings()
    try:
        tuning = fit_tuning(settings, load_embeddings(settings.embedding_model, settings.embedding_batch_size), True)
    except PolicyQAError as exc:
        fail(str(exc))
    tuning.save(settings.index_dir)
    typer.echo(json.dumps(tuning.report, ensure_ascii=False, indent=1))
    if write_floors:
        from ..evaluation.floors import floors
        from ..evaluation.sets import EVAL_DIR

        path = EVAL_DIR / "floors.json"
        current = json.loads(path.read_text()) if path.exists() else {}
        current["extractive"] = floors(tuning.report)
        path.write_text(json.dumps(current, ensure_ascii=False, indent=1) + "\n")
        typer.echo(f"floors written: {path}")


def _print_answer(answer) -> None:  # noqa: ANN001
    typer.echo(answer.answer)
    for notice in answer.notices:
        typer.secho(notice, fg=typer.colors.YELLOW)
    sources = answer.related if answer.abstained else answer.citations
    if sources:
        typer.echo("\n来源：" if answer.confidence.value == "high" else "\n可能相关：")
    for c in sources:
        meta = "，".join(x for x in (c.doc_number, f"{c.effective}起施行" if c.effective else None) if x)
        typer.secho(f"[{c.n}] 《{c.doc_title}》{c.label}" + (f"（{meta}）" if meta else ""), bold=True)
        typer.echo(textwrap.indent(c.text, "    "))


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="the question, or '-' to read one question per line from stdin")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (one object per line with '-')")] = False,
    top_k: Annotated[Optional[int], typer.Option("--top-k", min=1, max=20)] = None,
    mode: Annotated[Optional[str], typer.Option(
        help="extractive or generative; default generative when POLICY_QA_LLM_BASE_URL is set")] = None,
    as_of: Annotated[Optional[str], typer.Option(
        "--as-of", help="answer from the document versions in force on this day (YYYY-MM-DD)")] = None,
) -> None:
    """Answer a question with citations, or say that the corpus does not cover it."""
    day = parse_day(as_of)
    assistant = load_assistant()
    if question != "-":
        try:
            answer = assistant.ask(Ask(question=question, top_k=top_k, mode=mode, as_of=day))
        except PolicyQAError as exc:
            fail(str(exc), code=2)
        if as_json:
            typer.echo(answer.model_dump_json())
        else:
            _print_answer(answer)
        return
    failures = 0
    sys.stdin.reconfigure(errors="replace")  # an undecodable byte spoils its line, not the batch
    for line in sys.stdin:
        line = clean_text(line.rstrip("\n"))
        try:
            answer = assistant.ask(Ask(question=line, top_k=top_k, mode=mode, as_of=day))
        except Exception as exc:  # noqa: BLE001 - one bad line must not end the batch
            failures += 1
            message = str(exc) if isinstance(exc, PolicyQAError) else f"处理该问题时出现内部错误（{type(exc).__name__}）"
            typer.echo(json.dumps({"question": line, "error": message}, ensure_ascii=False))
            continue
        typer.echo(answer.model_dump_json() if as_json else answer.answer)
    if failures:
        raise typer.Exit(2)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="words to look for, or a reference such as 登记条例第33条")],
    doc: Annotated[Optional[str], typer.Option(help="restrict to one document id")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=50)] = 10,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    as_of: Annotated[Optional[str], typer.Option(
        "--as-of", help="only the document versions in force on this day (YYYY-MM-DD)")] = None,
) -> None:
    """Find clauses (no answer composed): for hotline operators."""
    day = parse_day(as_of)
    assistant = load_assistant()
    try:
        hits = assistant.search(query, doc_id=doc, k=k, as_of=day)
    except PolicyQAError as exc:
        fail(str(exc), code=2)
    if as_json:
        typer.echo(json.dumps([h.model_dump(mode="json") for h in hits], ensure_ascii=False))
        return
    for hit in hits:
        c = hit.citation
        typer.secho(f"{hit.rank}. 《{c.doc_title}》{c.label}  [{c.clause_id}]", bold=True)
        typer.echo(textwrap.indent(c.text, "   ") + "\n")


@app.command("eval")
def evaluate(
    split: Annotated[str, typer.Option(help="dev, test or all")] = "test",
    sets: Annotated[str, typer.Option(help="comma-separated eval sets: real, written, rewrites")] = "real,written,rewrites",
    out: Annotated[Path, typer.Option(help="where the JSON and markdown reports go")] = Path("eval/results"),
    update_baseline: Annotated[bool, typer.Option(help="store this run's hybrid metrics as the baseline")] = False,
    mode: Annotated[str, typer.Option(
        help="extractive, or generative: hybrid only, through POLICY_QA_LLM_BASE_URL, adds ALCE citation scores")
    ] = "extractive",
) -> None:
    """Run the evaluation per set for bm25, dense and hybrid; fail when hybrid falls below eval/floors.json."""
    from ..evaluation.report import (
        baseline_of,
        gate,
        load_baseline,
        markdown_table,
        regressions,
        run_eval,
        write_report,
    )
    from ..evaluation.sets import EVAL_DIR, SETS

    chosen = tuple(name.strip() for name in sets.split(",") if name.strip())
    if split not in ("dev", "test", "all"):
        fail("--split must be dev, test or all", code=2)
    if not chosen or set(chosen) - set(SETS):
        fail(f"--sets takes names from {', '.join(SETS)}", code=2)
    if mode not in ("extractive", "generative"):
        fail("--mode must be extractive or generative", code=2)
    if mode == "generative" and update_baseline:
        fail("the baseline holds extractive metrics: run --update-baseline without --mode generative", code=2)
    assistant = load_assistant()
    if mode == "generative" and assistant.generator is None:
        fail("--mode generative needs an OpenAI-compatible endpoint: set POLICY_QA_LLM_BASE_URL "
             "(and POLICY_QA_LLM_MODEL)", code=2)
    report = run_eval(assistant, split=split, mode=mode, sets=chosen)  # type: ignore[arg-type]
    json_path, md_path = write_report(report, out)
    typer.echo(markdown_table(report))
    typer.echo(f"reports: {json_path}, {md_path}")
    baseline_path = EVAL_DIR / "baseline.json"
    if update_baseline:
        baseline_path.write_text(baseline_of(report).model_dump_json(indent=1) + "\n")
        typer.echo(f"baseline updated: {baseline_path}")
    elif mode == "extractive":
        try:
            baseline = load_baseline(baseline_path)
        except ValueError as exc:
            fail(str(exc))
        for line in regressions(report, baseline) if baseline else []:
            typer.secho(f"regression against baseline: {line}", fg=typer.colors.YELLOW)
    if split != "test":
        return  # the floors are a contract on the held-out split only
    failures = gate(report, json.loads((EVAL_DIR / "floors.json").read_text())[mode])
    if failures:
        fail("eval gate failed: " + "; ".join(failures))
    typer.secho("eval gate passed", fg=typer.colors.GREEN)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0 for the LAN)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 7860,
    nginx: Annotated[bool, typer.Option(
        "--nginx", help="put nginx in front (header/body timeouts, connection and rate limits)")] = False,
) -> None:
    """Serve the chat UI (/) and the API (/api, /v1, /healthz, /docs) from one process on one port."""
    try:
        from .webui import serve as run
    except ImportError as exc:
        fail(f"serve needs the 'serve' extra ({exc.name} is missing): pip install -e '.[serve]'")
    from .nginx import NginxError, run_behind_nginx
    from .ratelimit import RateLimitConfigError

    try:
        if nginx:
            run_behind_nginx(host, port, get_settings(), run)
        else:
            run(host, port, get_settings())
    except (NginxError, RateLimitConfigError) as exc:
        fail(str(exc))


@app.command()
def feedback(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object per line")] = False,
) -> None:
    """List the like/dislike feedback given in the UI and API (newest last)."""
    from .feedback import FeedbackStorageError, FeedbackStore

    settings = get_settings()
    try:  # the first use also imports the legacy POLICY_QA_FEEDBACK_PATH file, once
        entries = FeedbackStore(settings.db_path, legacy_path=settings.feedback_path).list()
    except FeedbackStorageError as exc:
        fail(f"无法读取反馈数据库（{settings.db_path}）：{exc.strerror}")
    if as_json:
        for entry in entries:
            typer.echo(entry.model_dump_json())
        return
    if not entries:
        typer.echo(f"还没有反馈（{settings.db_path}）。")
        return
    for entry in entries:
        mark = "👍" if entry.rating == "like" else "👎"
        typer.secho(f"{entry.created_at} {mark} [{entry.source}] {entry.question}", bold=True)
        typer.echo(f"    答：{entry.answer[:120]}{'…' if len(entry.answer) > 120 else ''}")
        if entry.clause_ids:
            typer.echo(f"    引用：{', '.join(entry.clause_ids)}")
        if entry.reason:
            typer.echo(f"    原因：{entry.reason}")
    likes = sum(e.rating == "like" for e in entries)
    typer.echo(f"\n共 {len(entries)} 条：👍 {likes}，👎 {len(entries) - likes}（{settings.db_path}）")


register_knowledge_commands(app)
