"""`policy-qa add / remove / documents / history`: the knowledge base for policy staff.

A change writes the corpus file and refreshes the index in one step (only the new text is embedded);
a running `policy-qa serve` notices the new index and swaps to it without failing a request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import get_settings
from ..errors import PolicyQAError
from .console import fail, stop_on_sigterm


def index_rebuilder(settings, embeddings):  # noqa: ANN001, ANN201 - heavy imports stay out of `--help`
    """The `rebuild` a knowledge-base change calls: the fast update (see build_updated_index)."""
    from ..evaluation.tuning import build_updated_index

    return lambda: build_updated_index(settings, embeddings).clauses


def recalibrate(base, settings, embeddings) -> None:  # noqa: ANN001
    """Refit the scope model on the changed corpus, after the change is already served."""
    from ..evaluation.tuning import refit_scope

    typer.echo("正在按新语料重新校准拒答模型（约 10 秒，期间已可正常问答）…")
    try:
        with base.locked():
            scope = refit_scope(settings, embeddings).report["scope"]
    except (PolicyQAError, KeyboardInterrupt) as exc:
        reason = "已中断" if isinstance(exc, KeyboardInterrupt) else str(exc)
        typer.secho(f"拒答模型未重新校准（{reason}），沿用原参数；可稍后运行 policy-qa tune。", fg=typer.colors.YELLOW)
        return
    typer.echo(f"拒答模型已重新校准（交叉验证：低置信比例 {scope['cv_low_confidence_rate']:.3f}，"
               f"拒答召回 {scope['cv_abstention_recall']:.3f}）。")


def load_model(settings):  # noqa: ANN001, ANN201
    from ..knowledge.embeddings import load_embeddings

    return load_embeddings(settings.embedding_model, settings.embedding_batch_size)


def print_preview(preview) -> None:  # noqa: ANN001 - a library.Preview
    rows = [
        ("标题", preview.title), ("编号", preview.doc_id), ("文号", preview.doc_number or "（未识别）"),
        ("发文机关", preview.issuer or "（未识别）"), ("类别", preview.category or "—"),
        ("结构", "条文（第X条）" if preview.kind == "regulation" else "措施（一、（一）1.）"),
        ("发布日期", preview.promulgated or "—"), ("施行日期", preview.effective or "（未识别）"),
        ("有效期至", preview.valid_until or "—"), ("条文数", str(preview.clause_count)),
        ("前三条", "、".join(preview.first_labels)), ("后三条", "、".join(preview.last_labels)),
    ]
    if preview.replaces:
        rows.append(("取代", preview.replaces))
    if preview.superseded_by:
        rows.append(("已被取代（旧版本）", preview.superseded_by))
    for label, value in rows:
        typer.echo(f"  {label}：{value}")
    for warning in preview.warnings:
        typer.secho(f"  提醒：{warning}", fg=typer.colors.YELLOW)


def register_knowledge_commands(app: typer.Typer) -> None:
    """Add the knowledge-base commands to the main CLI."""

    @app.command()
    def add(
        file: Annotated[Path, typer.Argument(help=".docx, .pdf, .html or .txt policy file")],
        doc_id: Annotated[Optional[str], typer.Option("--doc-id", help="id for the new document (default: from the title)")] = None,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="add without asking after the preview")] = False,
    ) -> None:
        """Preview a policy file, then add it to the knowledge base and update the index."""
        from ..knowledge.library import KnowledgeBase

        settings = get_settings()
        base = KnowledgeBase(settings)
        try:
            data = file.read_bytes()
        except OSError as exc:
            fail(f"无法读取文件 {file}：{exc.strerror}")
        try:
            _, preview = base.preview(file.name, data, doc_id)
        except PolicyQAError as exc:
            fail(f"{exc}\n知识库未改动。")
        typer.echo(f"预览：{file.name}")
        print_preview(preview)
        if not yes and not typer.confirm("确认添加到知识库并更新索引？", default=False):
            typer.echo("已取消，知识库未改动。")
            raise typer.Exit(1)
        stop_on_sigterm()
        embeddings = load_model(settings)
        try:
            result = base.add(file.name, data, index_rebuilder(settings, embeddings), doc_id=doc_id, actor=_actor())
        except PolicyQAError as exc:
            fail(f"{exc}\n知识库和索引均未改动。")
        except KeyboardInterrupt:
            fail("已中断，知识库和索引均未改动。", code=130)
        action = "新版本" if result.preview.replaces else "旧版本" if result.preview.superseded_by else "新文件"
        typer.echo(f"已添加{action}《{result.preview.title}》（{result.preview.doc_id}），索引现有 {result.clauses_in_index} 条条文。")
        recalibrate(base, settings, embeddings)

    @app.command()
    def remove(
        doc_id: Annotated[str, typer.Argument(help="the document id (see `policy-qa documents`)")],
        yes: Annotated[bool, typer.Option("--yes", "-y", help="retire without asking")] = False,
    ) -> None:
        """Retire a document: it is no longer cited (the file is kept under corpus/retired/)."""
        from ..knowledge.library import KnowledgeBase

        settings = get_settings()
        base = KnowledgeBase(settings)
        if not yes and not typer.confirm(f"确认下架 {doc_id}？下架后答复不再引用该文件。", default=False):
            typer.echo("已取消，知识库未改动。")
            raise typer.Exit(1)
        stop_on_sigterm()
        embeddings = load_model(settings)
        try:
            result = base.retire(doc_id, index_rebuilder(settings, embeddings), actor=_actor())
        except PolicyQAError as exc:
            fail(f"{exc}\n知识库未改动。")
        except KeyboardInterrupt:
            fail("已中断，知识库和索引均未改动。", code=130)
        typer.echo(f"已下架《{result.change.title}》（{doc_id}），索引现有 {result.clauses_in_index} 条条文。")
        recalibrate(base, settings, embeddings)

    @app.command()
    def documents(
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    ) -> None:
        """List every document with its status, 文号, dates and clause count (retired ones too)."""
        from ..knowledge.library import KnowledgeBase

        try:
            records = KnowledgeBase(get_settings()).documents()
        except PolicyQAError as exc:
            fail(str(exc))
        if as_json:
            typer.echo(json.dumps([r.model_dump(mode="json") for r in records], ensure_ascii=False, indent=1))
            return
        for r in records:
            flag = "" if r.status.value in ("in_force", "draft") else "  ⚠"
            dates = "，".join(x for x in (f"{r.effective}起施行" if r.effective else None,
                                         f"有效期至{r.valid_until}" if r.valid_until else None) if x)
            typer.echo(f"{r.doc_id}  《{r.title}》  {r.status_zh}{flag}  {r.clause_count} 条"
                       + (f"  {r.doc_number}" if r.doc_number else "") + (f"  {dates}" if dates else ""))

    @app.command()
    def history(
        doc_id: Annotated[Optional[str], typer.Argument(help="only this document's changes")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    ) -> None:
        """The knowledge base's change history: who added, replaced or retired what, and when."""
        from ..knowledge.audit import AuditLog

        records = AuditLog(get_settings().db_path).history(doc_id)
        if as_json:
            typer.echo(json.dumps([r.model_dump() for r in records], ensure_ascii=False, indent=1))
            return
        if not records:
            typer.echo("暂无变更记录。")
        actions = {"add": "添加", "version": "添加新版本", "retire": "下架"}
        for r in records:
            extra = f"（取代 {r.replaces}）" if r.replaces else ""
            source = f"  文件 {r.file_name} sha256:{r.sha256[:12]}" if r.sha256 else ""
            typer.echo(f"{r.at}  {r.actor}  {actions.get(r.action, r.action)}  {r.doc_id}《{r.title}》{extra}{source}")


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
