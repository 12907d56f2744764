"""Latency of POST /api/ask under 1 and 8 concurrent clients, over the eval's dev questions.

    python bench/bench_api.py                        # starts `policy-qa serve` on a free port
    python bench/bench_api.py --url http://127.0.0.1:7860 --requests 2000 --concurrency 1 8
    python bench/bench_api.py --no-query-cache        # every request embeds its question (worst case)
    python bench/bench_api.py --api-key K             # Bearer K on every request (a started server requires it)

Reports p50/p95/p99 latency, throughput and the error count per concurrency level (a table, plus
one JSON object per level with --json). Every request is real HTTP to a real uvicorn server on
this machine; questions cycle through eval/questions.jsonl (split=dev). Exits 1 on any error.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # LiveServer: the same launcher the API tests use

from live_server import LiveServer  # noqa: E402

from assistant.evaluation.report import percentile  # noqa: E402
from assistant.evaluation.sets import load_questions  # noqa: E402


def dev_questions(path: Path) -> list[str]:
    questions = [q.question for q in load_questions(path, split="dev")]
    if not questions:
        raise SystemExit(f"no dev questions in {path}")
    return questions


def run_level(url: str, questions: list[str], concurrency: int, total: int, headers: dict[str, str] | None = None) -> dict:
    """`total` requests spread over `concurrency` client threads, each with its own connection."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=30.0, headers=headers) as client:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                question = questions[i % len(questions)]
                started = time.perf_counter()
                try:
                    response = client.post("/api/ask", json={"question": question})
                    ok = response.status_code == 200 and "answer" in response.json()
                    problem = None if ok else f"{response.status_code}: {response.text[:120]}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                elapsed_ms = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed_ms)
                    if problem:
                        errors.append(problem)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    wall = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall
    return {
        "endpoint": "/api/ask",
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:3],
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
        "max_ms": round(max(latencies), 1),
        "throughput_rps": round(len(latencies) / wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an already running server; default: start `policy-qa serve`")
    parser.add_argument("--index-dir", type=Path, default=ROOT / "index", help="index for the started server")
    parser.add_argument("--requests", type=int, default=1000, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured requests first")
    parser.add_argument("--questions", type=Path, default=ROOT / "eval" / "questions.jsonl")
    parser.add_argument("--json", action="store_true", help="also print one JSON object per level")
    parser.add_argument("--no-query-cache", action="store_true",
                        help="start the server with the query-vector cache off (every request embeds its question)")
    parser.add_argument("--api-key", help="send 'Authorization: Bearer KEY'; a started server then requires this key")
    args = parser.parse_args(argv)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else None

    questions = dev_questions(args.questions)
    server = None
    if args.url is None:
        env = {"POLICY_QA_QUERY_CACHE_SIZE": "0"} if args.no_query_cache else {}
        if args.api_key:
            env["POLICY_QA_API_KEYS"] = args.api_key
        server = LiveServer(Path(tempfile.mkdtemp(prefix="bench-api-")), args.index_dir, **env).start()
        url = server.base_url
    else:
        url = args.url.rstrip("/")
    try:
        health = httpx.get(url + "/healthz", timeout=30.0)
        if health.status_code != 200:
            raise SystemExit(f"server not ready: {health.status_code} {health.text[:200]}")
        run_level(url, questions, 1, args.warmup, headers)
        results = [run_level(url, questions, c, args.requests, headers) for c in args.concurrency]
    finally:
        if server is not None:
            server.stop()

    index = health.json()["index"]
    print(f"POST /api/ask · {len(questions)} dev questions · index {index['corpus_hash']} "
          f"({index['clauses']} clauses, {index['embedding_model']})")
    print(f"{'clients':>7} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'req/s':>6}")
    for r in results:
        print(f"{r['concurrency']:>7} {r['requests']:>8} {r['errors']:>6} {r['p50_ms']:>7} {r['p95_ms']:>7} "
              f"{r['p99_ms']:>7} {r['max_ms']:>7} {r['throughput_rps']:>6}")
    total = sum(r["requests"] for r in results)
    errors = sum(r["errors"] for r in results)
    print(f"total: {total} requests, {errors} errors")
    for r in results:
        for sample in r["error_samples"]:
            print(f"  error (c={r['concurrency']}): {sample}")
    if args.json:
        for r in results:
            print(json.dumps(r, ensure_ascii=False))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
