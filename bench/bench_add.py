"""Benchmark of a knowledge-base change (a script, not a test): `policy-qa add FILE --yes` end to end.

    .venv/bin/python bench/bench_add.py [--runs 5]

Each run copies corpus/ and index/ to a temporary directory and adds a 30-article regulation as a .docx:
the first 30 articles of 优化营商环境条例, every sentence localised ("（本市施行）" before its full stop)
so that no sentence or unit is in the embedding cache: all of its text is embedded, as for a new
regulation. Two times: until the document is served (process start, parse, preview, write, embed,
BM25, index swap; target on the 2-core machine ≤ 15 s) and until the command ends (after the scope
model's recalibration, which runs while the new index already serves). Writes bench/results/add.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.evaluation.report import percentile  # noqa: E402

SOURCE = ROOT / "corpus" / "regulations" / "youhua-yingshang-huanjing-tiaoli.md"
ARTICLES = 30


def regulation_lines() -> list[str]:
    body = SOURCE.read_text("utf-8").split("<!-- INFO END -->", 1)[1]
    lines = [line.strip() for line in body.splitlines() if line.strip() and not line.startswith("#")]
    start = next(i for i, line in enumerate(lines) if line.startswith("第一条"))
    end = next(i for i, line in enumerate(lines) if line.startswith(f"第{'三十一'}条"))
    articles = [line.replace("。", "（本市施行）。") for line in lines[start:end]]
    return ["厦门经济特区营商环境促进条例", "厦门市人民代表大会常务委员会公告〔2026〕1号", *articles]


def write_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    for line in regulation_lines():
        document.add_paragraph(line)
    document.save(path)
    return path


def one_run(work: Path) -> tuple[float, float]:
    """Seconds until the new document is served (the command prints 已添加 once the new index is in
    place), and until the command ends (after the scope model's recalibration)."""
    shutil.copytree(ROOT / "corpus", work / "corpus")
    shutil.copytree(ROOT / "index", work / "index")
    file = write_docx(work / "条例.docx")
    env = {**os.environ, "POLICY_QA_CORPUS_DIR": str(work / "corpus"), "POLICY_QA_INDEX_DIR": str(work / "index"),
           "POLICY_QA_DB_PATH": str(work / "kb.sqlite3"), "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    served = None
    with subprocess.Popen([str(Path(sys.executable).with_name("policy-qa")), "add", str(file), "--yes"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        for line in process.stdout:
            if line.startswith("已添加") and served is None:
                served = time.perf_counter() - started
        stderr = process.stderr.read()
    total = time.perf_counter() - started
    if process.returncode != 0 or served is None:
        raise SystemExit(f"add failed: {stderr}")
    manifest = json.loads((work / "index" / "manifest.json").read_text())
    print(f"  served after {served:.2f} s, command done after {total:.2f} s "
          f"(embedded {manifest['embedded_units']}, reused {manifest['reused_units']})")
    return served, total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    served, total = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            until_served, until_done = one_run(Path(tmp))
            served.append(until_served)
            total.append(until_done)
    result = {"runs": runs, "articles": ARTICLES,
              "served_median_s": round(statistics.median(served), 2), "served_p95_s": round(percentile(served, 95), 2),
              "command_median_s": round(statistics.median(total), 2), "command_p95_s": round(percentile(total, 95), 2)}
    print(json.dumps(result, ensure_ascii=False))
    out = ROOT / "bench" / "results" / "add.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
