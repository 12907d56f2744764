"""Build, save and load `index/`: a manifest plus one file per component, written atomically.

    index/
      manifest.json     schema version, corpus hash, embedding model, dimensions, counts
      documents.json    document metadata
      clauses.jsonl     one Clause per line
      units.jsonl       retrieval units: clause index and content hash (the embedding cache key)
      dense.faiss       unit vectors, inner product over normalised vectors
      spans.jsonl       every quotable span's content hash, in the row order of spans.faiss
      spans.faiss       span vectors: which sentence of a clause answers (the composer reads them)
      bm25/             bm25s sparse matrices (JSON + .npy, no pickle)
      user_dict.txt     the corpus's policy vocabulary for jieba

A build writes a sibling temp directory and swaps it in only when complete, so a failed or interrupted
build leaves the previous index usable. Vectors of an unchanged text (unit or span) are reused from the
previous index instead of being embedded again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, Field
from tqdm import tqdm

from ..config import Settings
from ..errors import IndexError_, IndexStaleError
from ..schema import Clause, DocumentMeta
from ..text import load_user_words, tokenize
from .corpus import corpus_files, corpus_hash, read_source
from .embeddings import ArrayEmbeddings
from .parsing import parse_document
from .units import policy_vocabulary, quotable_spans, text_key, units_for

SCHEMA_VERSION = 2  # 2: spans.faiss
REUSABLE_SCHEMAS = (1, 2)  # versions whose vectors a build may reuse
T = TypeVar("T")
BUILD_HINT = "run `policy-qa build`"


class IndexManifest(BaseModel):
    schema_version: int
    corpus_hash: str
    embedding_setting: str
    embedding_model: str
    dim: int
    documents: int
    clauses: int
    units: int
    spans: int = 0
    embedded_units: int
    reused_units: int
    built_at: str
    build_seconds: float
    # Where the time went, and which new texts were embedded for what (see BUILD_PHASES, EMBEDDED_FOR).
    phases: dict[str, float] = Field(default_factory=dict)
    embedded_for: dict[str, int] = Field(default_factory=dict)


BUILD_PHASES = {"parse": "解析语料", "embed": "嵌入", "index": "写入 FAISS 与 BM25", "tune": "交叉验证调参"}
EMBEDDED_FOR = {
    "units": "检索单元（稠密检索逐条比对问题：短条文整条，长条文按款，行动方案按句）",
    "spans": "可引用句（答案挑选与问题最相近的原句，排序模型读取条文中最相近的一句）",
}


@dataclass
class ClauseIndex:
    """A loaded index: what retrieval and answering read, never write."""

    manifest: IndexManifest
    documents: dict[str, DocumentMeta]
    clauses: list[Clause]
    unit_clause: np.ndarray      # unit row → clause index
    dense: faiss.Index           # noqa: F821 - imported lazily; faiss has no stubs
    bm25: bm25s.BM25             # noqa: F821 - imported lazily
    vocabulary: list[str]        # the corpus's policy vocabulary (quoted plan terms, document names)
    span_vectors: np.ndarray     # one row per quotable span (see span_row)
    span_keys: list[str]

    def __post_init__(self) -> None:
        self.by_id = {c.clause_id: i for i, c in enumerate(self.clauses)}
        self.span_row = {key: row for row, key in enumerate(self.span_keys)}
        self._replaces = {m.superseded_by: m.doc_id for m in self.documents.values() if m.superseded_by}

    def lineage(self, doc_id: str) -> list[str]:
        """`doc_id` and every version linked to it through `superseded_by`, newest first."""
        newest, seen = doc_id, {doc_id}
        while (later := self.documents[newest].superseded_by) in self.documents and later not in seen:
            newest = later
            seen.add(later)
        chain = [newest]
        while (earlier := self._replaces.get(chain[-1])) is not None and earlier not in chain:
            chain.append(earlier)
        return chain


# --- build -------------------------------------------------------------------------------------

def build_index(settings: Settings, embeddings: ArrayEmbeddings, progress: bool = True,
                finalize: Callable[[Path], None] | None = None) -> IndexManifest:
    """Parse the corpus, embed what changed, and atomically replace `settings.index_dir`.

    `finalize(staging_dir)` runs on the complete new index before it is swapped in (the CLI fits the
    tuned constants there); if it fails, the previous index stays in place.
    """
    import bm25s
    import faiss

    started = time.perf_counter()
    phases: dict[str, float] = {}
    files = corpus_files(settings.corpus_dir)
    documents = [parse_document(read_source(path)) for path in files]
    metas = with_replacement_dates([d.meta for d in documents])
    clauses = [clause for d in documents for clause in d.clauses]
    meta_by_id = {m.doc_id: m for m in metas}
    units = [u for i, c in enumerate(clauses) for u in units_for(i, c, meta_by_id[c.doc_id])]

    span_texts = sorted({span for clause in clauses for span in quotable_spans(clause)})
    vocabulary = policy_vocabulary(metas, clauses)
    load_user_words(vocabulary)
    texts = {u.key: u.text for u in units} | {text_key(t): t for t in span_texts}
    phases["parse"] = round(time.perf_counter() - started, 2)
    previous = set(_previous_vectors(settings.index_dir, embeddings.model_id))
    cached, reused = _embed_with_cache(texts, embeddings, settings, progress)
    embedded_for = {"units": len({u.key for u in units} - previous),
                    "spans": len({text_key(t) for t in span_texts} - previous - {u.key for u in units})}
    phases["embed"] = round(time.perf_counter() - started - phases["parse"], 2)
    vectors = np.stack([cached[u.key] for u in units]).astype(np.float32)
    span_keys = [text_key(t) for t in span_texts]
    span_index = faiss.IndexFlatIP(vectors.shape[1])
    span_index.add(np.stack([cached[k] for k in span_keys]).astype(np.float32))

    dense = faiss.IndexFlatIP(vectors.shape[1])
    dense.add(vectors)
    bm25 = bm25s.BM25()
    bm25.index([list(tokenize(u.text)) for u in units], show_progress=False)

    manifest = IndexManifest(
        schema_version=SCHEMA_VERSION,
        corpus_hash=corpus_hash(files),
        embedding_setting=settings.embedding_model,
        embedding_model=embeddings.model_id,
        dim=int(vectors.shape[1]),
        documents=len(metas),
        clauses=len(clauses),
        units=len(units),
        spans=len(span_keys),
        embedded_units=len(texts) - reused,
        reused_units=reused,
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        build_seconds=0.0,
        embedded_for=embedded_for,
    )
    target = settings.index_dir
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_debris(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-{os.getpid()}-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the index is read by the serving user too
    try:
        _write_json(staging / "documents.json", [m.model_dump(mode="json") for m in metas])
        _write_lines(staging / "clauses.jsonl", (c.model_dump_json() for c in clauses))
        _write_lines(
            staging / "units.jsonl",
            (json.dumps({"clause": u.clause_index, "key": u.key}) for u in units),
        )
        faiss.write_index(dense, str(staging / "dense.faiss"))
        faiss.write_index(span_index, str(staging / "spans.faiss"))
        _write_lines(staging / "spans.jsonl", (json.dumps({"key": key}) for key in span_keys))
        bm25.save(str(staging / "bm25"), allow_pickle=False)
        (staging / "user_dict.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
        manifest.build_seconds = round(time.perf_counter() - started, 2)
        phases["index"] = round(manifest.build_seconds - phases["parse"] - phases["embed"], 2)
        manifest.phases = dict(phases)
        _write_json(staging / "manifest.json", manifest.model_dump())
        if finalize is not None:
            finalize(staging)
            phases["tune"] = round(time.perf_counter() - started - manifest.build_seconds, 2)
        manifest.build_seconds = round(time.perf_counter() - started, 2)
        manifest.phases = phases
        _write_json(staging / "manifest.json", manifest.model_dump())
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def with_replacement_dates(metas: list[DocumentMeta]) -> list[DocumentMeta]:
    """Fill a superseded version's missing `superseded_on` with its successor's effective date, so
    "in force on a day" (`--as-of`) is decidable for files written before the field existed."""
    effective = {m.doc_id: m.effective_date() for m in metas}
    return [
        m.model_copy(update={"superseded_on": effective.get(m.superseded_by)})
        if m.superseded_by and not m.superseded_on and effective.get(m.superseded_by) else m
        for m in metas
    ]


def _embed_with_cache(
    texts: dict[str, str], embeddings: ArrayEmbeddings, settings: Settings, progress: bool
) -> tuple[dict[str, np.ndarray], int]:
    """Vectors for every text (by content hash), reusing the previous index's vectors; also how many were reused."""
    cached = _previous_vectors(settings.index_dir, embeddings.model_id)
    missing = sorted((key, text) for key, text in texts.items() if key not in cached)
    batch = settings.embedding_batch_size
    with tqdm(
        total=len(missing), desc="embedding clauses", unit="text", disable=not progress or not missing
    ) as bar:
        for start in range(0, len(missing), batch):
            chunk = missing[start : start + batch]
            for (key, _), vector in zip(chunk, embeddings.embed_documents_array([t for _, t in chunk])):
                cached[key] = vector
            bar.update(len(chunk))
    return cached, len(texts) - len(missing)


def _previous_vectors(index_dir: Path, model_id: str) -> dict[str, np.ndarray]:
    """Unit and span vectors of the current index, keyed by content hash, if it used the same model."""
    try:
        manifest = _read_manifest(index_dir)
        if manifest.embedding_model != model_id or manifest.schema_version not in REUSABLE_SCHEMAS:
            return {}
        import faiss

        vectors: dict[str, np.ndarray] = {}
        for faiss_name, keys_name in (("dense.faiss", "units.jsonl"), ("spans.faiss", "spans.jsonl")):
            if not (index_dir / faiss_name).exists():
                continue
            index = faiss.read_index(str(index_dir / faiss_name))
            keys = [json.loads(line)["key"] for line in _read_lines(index_dir / keys_name)]
            vectors.update(zip(keys, index.reconstruct_n(0, index.ntotal)))
        return vectors
    except (OSError, ValueError, KeyError, RuntimeError, IndexError_):
        return {}  # no usable previous index: embed everything


def remove_stale_debris(target: Path) -> list[Path]:
    """Remove what killed builds left beside `target`: staging directories whose build process is gone,
    and retired indexes a kill interrupted before their removal. Returns what was removed.

    A staging directory carries its builder's pid (`.index.building-<pid>-<random>`), so a build
    running concurrently keeps its own. Names without a pid come from older versions: stale.
    """
    removed = []
    for path in target.parent.glob(f".{target.name}.*"):
        match = re.fullmatch(rf"\.{re.escape(target.name)}\.(building|old)-(\d+)?.*", path.name)
        if not match or not path.is_dir():
            continue
        kind, pid = match.group(1), match.group(2)
        if kind == "building" and pid is not None and _process_alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def _swap_in(staging: Path, target: Path) -> None:
    """Replace `target` with the complete `staging` directory; the old index survives until then."""
    retired = None
    if target.exists():
        retired = target.with_name(f".{target.name}.old-{int(time.time() * 1000)}")
        target.rename(retired)
    staging.rename(target)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


# --- load --------------------------------------------------------------------------------------

def load_index(settings: Settings, check_corpus: bool = True) -> ClauseIndex:
    """Load a built index, refusing one that is missing, from another schema, corpus or model."""
    import bm25s
    import faiss

    index_dir = settings.index_dir
    manifest = _read_manifest(index_dir)
    if manifest.schema_version != SCHEMA_VERSION:
        raise IndexStaleError(
            f"the index in {index_dir.name}/ has schema version {manifest.schema_version}, this program "
            f"reads version {SCHEMA_VERSION}: {BUILD_HINT} again"
        )
    if manifest.embedding_setting != settings.embedding_model:
        raise IndexStaleError(
            f"the index was built with the embedding model {manifest.embedding_setting!r} but "
            f"POLICY_QA_EMBEDDING_MODEL is {settings.embedding_model!r}: {BUILD_HINT} again"
        )
    if check_corpus and manifest.corpus_hash != corpus_hash(corpus_files(settings.corpus_dir)):
        raise IndexStaleError(
            f"the corpus in {settings.corpus_dir.name}/ changed since the index was built: {BUILD_HINT} again"
        )
    documents = _load_component(index_dir, "documents.json", _read_documents)
    clauses = _load_component(index_dir, "clauses.jsonl", _read_clauses)
    unit_clause = _load_component(index_dir, "units.jsonl", _read_unit_clauses)
    dense = _load_component(index_dir, "dense.faiss", lambda p: faiss.read_index(str(p)))
    bm25 = _load_component(index_dir, "bm25", lambda p: bm25s.BM25.load(str(p), allow_pickle=False))
    vocabulary = _load_component(index_dir, "user_dict.txt", lambda p: p.read_text(encoding="utf-8").split())
    span_vectors = _load_component(index_dir, "spans.faiss", lambda p: _all_vectors(faiss.read_index(str(p))))
    span_keys = _load_component(index_dir, "spans.jsonl", lambda p: [json.loads(line)["key"] for line in _read_lines(p)])
    problem = _inconsistency(manifest, documents, clauses, unit_clause, dense, bm25) or (
        "span vectors and keys differ in number" if len(span_keys) != len(span_vectors) else None)
    if problem:
        raise IndexError_(f"the index in {index_dir.name}/ is inconsistent ({problem}): {BUILD_HINT} again")
    load_user_words(vocabulary)
    return ClauseIndex(manifest, documents, clauses, unit_clause, dense, bm25, vocabulary, span_vectors, span_keys)


def _load_component(index_dir: Path, name: str, read: Callable[[Path], T]) -> T:
    """Read one index file; any failure becomes one line naming the file (no absolute path, no C++ trace)."""
    try:
        return read(index_dir / name)
    except FileNotFoundError:
        raise IndexError_(f"the index file {index_dir.name}/{name} is missing: {BUILD_HINT} again") from None
    except Exception as exc:  # noqa: BLE001 - FAISS, bm25s, json and pydantic each raise their own kinds
        kind = type(exc).__name__
        raise IndexError_(f"the index file {index_dir.name}/{name} is damaged ({kind}): {BUILD_HINT} again") from None


def _all_vectors(index) -> np.ndarray:  # noqa: ANN001 - a faiss index
    return index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), dtype=np.float32)


def _read_documents(path: Path) -> dict[str, DocumentMeta]:
    metas = [DocumentMeta.model_validate(m) for m in json.loads(path.read_text(encoding="utf-8"))]
    return {m.doc_id: m for m in metas}


def _read_clauses(path: Path) -> list[Clause]:
    return [Clause.model_validate_json(line) for line in _read_lines(path)]


def _read_unit_clauses(path: Path) -> np.ndarray:
    rows = [json.loads(line)["clause"] for line in _read_lines(path)]
    if not all(type(row) is int for row in rows):
        raise ValueError("a unit's clause is not an integer")
    return np.array(rows, dtype=np.int64)


def _inconsistency(manifest: IndexManifest, documents: dict[str, DocumentMeta], clauses: list[Clause],
                   unit_clause: np.ndarray, dense: faiss.Index, bm25: bm25s.BM25) -> str | None:  # noqa: F821
    """What makes the loaded files disagree with each other, or None when they fit together."""
    if len(clauses) != manifest.clauses or len(documents) != manifest.documents:
        return "clause or document count differs from the manifest"
    if any(c.doc_id not in documents for c in clauses):
        return "a clause belongs to no listed document"
    if len(unit_clause) != manifest.units or dense.ntotal != len(unit_clause) or dense.d != manifest.dim:
        return "unit count or vector size differs from the manifest"
    if len(unit_clause) and (unit_clause.min() < 0 or unit_clause.max() >= len(clauses)):
        return "a unit points to a clause that does not exist"
    if getattr(bm25, "scores", {}).get("num_docs", len(unit_clause)) != len(unit_clause):
        return "the BM25 index has another number of units"
    return None


def _read_manifest(index_dir: Path) -> IndexManifest:
    path = index_dir / "manifest.json"
    if not path.is_file():
        raise IndexError_(f"no index found in {index_dir.name}/: {BUILD_HINT} first")
    try:
        return IndexManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError:
        raise IndexError_(f"the index manifest {index_dir.name}/manifest.json is unreadable: {BUILD_HINT} again") from None


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")


def _write_lines(path: Path, lines) -> None:  # noqa: ANN001 - any iterable of str
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")


def _read_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]
