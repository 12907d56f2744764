"""`/api/documents` changes for maintainers: upload (preview, then confirm), retire, versions, history.

Changes need the operator token (`POLICY_QA_ADMIN_TOKEN`, sent as `X-Admin-Token`; a separate header,
so it works alongside API keys in `Authorization`). Without a configured token these endpoints answer
403 and say how to turn them on; reading the document list stays open.
"""

from __future__ import annotations

import hmac
import logging
import threading
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Depends, File, Header, HTTPException, Query, Request, UploadFile

from ..config import Settings
from ..errors import CorpusError, IngestError
from ..knowledge.audit import ChangeRecord
from ..knowledge.library import ChangeResult, DocumentRecord, KnowledgeBase, Preview
from ..question import clean_text
from .api_errors import ErrorBody
from .deps import AssistantHolder, get_app_settings, get_holder

logger = logging.getLogger(__name__)
UPLOAD_CHUNK = 1 << 20  # read uploads a megabyte at a time, so an oversized one is refused early

RESPONSES = {
    401: {"model": ErrorBody, "description": "运维令牌无效"},
    403: {"model": ErrorBody, "description": "知识库管理未开启（未设置 POLICY_QA_ADMIN_TOKEN）"},
    404: {"model": ErrorBody, "description": "没有该文件"},
    413: {"model": ErrorBody, "description": "文件超过上限"},
    422: {"model": ErrorBody, "description": "文件无法作为政策文件添加（原因见 detail），知识库未改动"},
}
router = APIRouter(prefix="/api/documents", tags=["知识库管理"], responses=RESPONSES)


def require_admin(
    request: Request,
    settings: Annotated[Settings, Depends(get_app_settings)],
    x_admin_token: Annotated[str | None, Header(description="运维令牌（POLICY_QA_ADMIN_TOKEN）")] = None,
    x_operator: Annotated[str | None, Header(max_length=40, description="操作人（记入变更记录，可不填）")] = None,
) -> str:
    """Who makes the change, for the history ("api:<operator>@<address>"), or 403/401 with the reason.
    One token is shared by the office, so the operator's name comes from X-Operator (the tab asks for it)."""
    if not settings.admin_token:
        raise HTTPException(403, "知识库管理未开启：请在服务器上设置 POLICY_QA_ADMIN_TOKEN 后重启服务")
    if not x_admin_token or not hmac.compare_digest(x_admin_token.encode(), settings.admin_token.encode()):
        raise HTTPException(401, "运维令牌无效：请在请求头 X-Admin-Token 中提供正确的令牌")
    operator = clean_text(unquote(x_operator or "")).strip() or "admin"
    return f"api:{operator}@{request.client.host if request.client else 'unknown'}"


def knowledge_base(settings: Annotated[Settings, Depends(get_app_settings)]) -> KnowledgeBase:
    return KnowledgeBase(settings)


def server_embeddings(holder: AssistantHolder, settings: Settings):  # noqa: ANN201 - an ArrayEmbeddings
    """The embedding model the server has loaded (loading another would double its memory)."""
    from ..knowledge.embeddings import load_embeddings

    current = holder.current
    return current.embeddings if current is not None else load_embeddings(settings.embedding_model)


def rebuilder(embeddings, settings: Settings):  # noqa: ANN001, ANN201 - a library.Rebuild
    """The fast index update (see build_updated_index)."""
    from ..evaluation.tuning import build_updated_index

    return lambda: build_updated_index(settings, embeddings).clauses


def recalibrate_in_background(base: KnowledgeBase, settings: Settings, embeddings) -> None:  # noqa: ANN001
    """Refit the scope model on the changed corpus after the change is served (~10 s), under the
    change lock so a second upload waits for it; the server reloads when tuning.json changes."""
    from ..evaluation.tuning import refit_scope

    def run() -> None:
        try:
            with base.locked():
                refit_scope(settings, embeddings)
        except Exception:  # noqa: BLE001 - the previous constants stay; the log says why
            logger.exception("recalibrating the scope model failed; the previous constants stay")

    threading.Thread(target=run, name="scope-refit", daemon=True).start()


async def read_upload(file: UploadFile, max_bytes: int) -> bytes:
    chunks, size = [], 0
    while chunk := await file.read(UPLOAD_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise HTTPException(413, f"文件过大：上限为 {max_bytes / 1048576:.0f} MB（POLICY_QA_MAX_UPLOAD_MB）")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("", summary="上传政策文件：默认只返回预览；confirm=true 时写入知识库并更新索引",
             response_model=ChangeResult | Preview)
async def upload(
    request: Request,
    file: Annotated[UploadFile, File(description=".docx、.pdf、.html 或 .txt")],
    actor: Annotated[str, Depends(require_admin)],
    base: Annotated[KnowledgeBase, Depends(knowledge_base)],
    confirm: Annotated[bool, Query(description="true：确认添加")] = False,
    doc_id: Annotated[str | None, Query(description="新文件编号（默认由标题生成）")] = None,
) -> ChangeResult | Preview:
    from starlette.concurrency import run_in_threadpool

    data = await read_upload(file, base.max_bytes)
    name = file.filename or ""
    try:
        if not confirm:
            return (await run_in_threadpool(base.preview, name, data, doc_id))[1]
        settings = request.app.state.settings
        embeddings = server_embeddings(request.app.state.holder, settings)
        result = await run_in_threadpool(
            lambda: base.add(name, data, rebuilder(embeddings, settings), doc_id=doc_id, actor=actor))
        recalibrate_in_background(base, settings, embeddings)
        return result
    except IngestError as exc:
        raise HTTPException(exc.status, f"{exc}（知识库未改动）") from None
    except CorpusError as exc:
        raise HTTPException(422, f"{exc}（知识库未改动）") from None


@router.delete("/{doc_id}", summary="下架文件：答复不再引用（文件保留在 corpus/retired/）", response_model=ChangeResult)
def retire(
    doc_id: str,
    actor: Annotated[str, Depends(require_admin)],
    base: Annotated[KnowledgeBase, Depends(knowledge_base)],
    holder: Annotated[AssistantHolder, Depends(get_holder)],
    settings: Annotated[Settings, Depends(get_app_settings)],
) -> ChangeResult:
    embeddings = server_embeddings(holder, settings)
    try:
        result = base.retire(doc_id, rebuilder(embeddings, settings), actor=actor)
    except IngestError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    recalibrate_in_background(base, settings, embeddings)
    return result


@router.get("/-/records", summary="知识库中的全部文件（含已取代、已过期、已下架），供维护人员查看",
            response_model=list[DocumentRecord])
def records(base: Annotated[KnowledgeBase, Depends(knowledge_base)]) -> list[DocumentRecord]:
    return base.documents()


@router.get("/{doc_id}/versions", summary="文件的各个版本（从旧到新）", response_model=list[DocumentRecord])
def versions(doc_id: str, base: Annotated[KnowledgeBase, Depends(knowledge_base)]) -> list[DocumentRecord]:
    return base.versions(doc_id)


@router.get("/-/history", summary="知识库变更记录（最新在前）", response_model=list[ChangeRecord])
def history(
    base: Annotated[KnowledgeBase, Depends(knowledge_base)],
    doc_id: Annotated[str | None, Query(description="只看某个文件")] = None,
) -> list[ChangeRecord]:
    return base.history(doc_id)
