"""Reading corpus files: YAML front matter plus a verbatim body, validated with a clear error per file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from ..errors import CorpusError
from ..schema import DocumentMeta
from ..text import clean_docx_artefacts

CORPUS_SUFFIXES = (".md", ".txt")
ADDED_DIR = "added"      # documents added with `policy-qa add`
RETIRED_DIR = "retired"  # documents retired with `policy-qa remove`: kept for the record, never indexed
_FENCE = "---"


@dataclass(frozen=True)
class SourceFile:
    """A corpus file read and validated, its body cleaned of docx artefacts but otherwise verbatim."""

    path: Path
    meta: DocumentMeta
    body: str


def corpus_files(corpus_dir: Path) -> list[Path]:
    """Every document under the corpus directory, in a stable order (README.md is documentation)."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus directory not found: {corpus_dir} (set POLICY_QA_CORPUS_DIR)")
    files = sorted(
        p for p in corpus_dir.rglob("*")
        if p.is_file() and p.suffix in CORPUS_SUFFIXES and p.name.lower() != "readme.md"
        and RETIRED_DIR not in p.relative_to(corpus_dir).parts[:-1] and not p.name.startswith(".")
    )
    if not files:
        raise CorpusError(f"no .md or .txt documents in {corpus_dir}")
    return files


def corpus_hash(files: list[Path]) -> str:
    """A fingerprint of the corpus (names and bytes), stored in the index manifest to detect staleness."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def read_source(path: Path) -> SourceFile:
    """Read one document; every failure names the file and what to fix."""
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 text (byte {exc.start}); re-save the file as UTF-8") from None
    raw = raw.removeprefix("\ufeff")
    if not raw.startswith(_FENCE + "\n"):
        raise CorpusError(f"{path}: no YAML front matter; the file must start with a '---' line")
    end = raw.find("\n" + _FENCE + "\n", len(_FENCE))
    if end < 0:
        raise CorpusError(f"{path}: front matter is not closed by a '---' line")
    try:
        fields = yaml.safe_load(raw[len(_FENCE) + 1 : end])
    except yaml.YAMLError as exc:
        raise CorpusError(f"{path}: front matter is not valid YAML: {exc}") from None
    if not isinstance(fields, dict):
        raise CorpusError(f"{path}: front matter must be a YAML mapping of fields")
    body = clean_docx_artefacts(raw[end + len(_FENCE) + 2 :])
    if not body.strip():
        raise CorpusError(f"{path}: the document body after the front matter is empty")
    try:
        meta = DocumentMeta(doc_id=path.stem, **_known_fields(fields))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise CorpusError(f"{path}: front matter fields are invalid: {problems}") from None
    return SourceFile(path=path, meta=meta, body=body)


def _known_fields(fields: dict) -> dict:
    """Keep the fields DocumentMeta knows; fold free-text notes into status_note."""
    known = {k: v for k, v in fields.items() if k in DocumentMeta.model_fields and k != "doc_id"}
    notes = fields.get("notes")
    if notes:
        note = known.get("status_note")
        known["status_note"] = f"{note}；{notes}" if note and note != "见 notes" else notes
    for key in ("promulgated", "effective"):  # YAML reads bare dates as date objects
        if known.get(key) is not None:
            known[key] = str(known[key])
    return known
