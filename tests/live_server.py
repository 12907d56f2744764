"""A real `policy-qa serve` process on 127.0.0.1 for the API and browser tests.

conftest.py starts one per session over the session's index (`live_server`); tests that need a
differently configured server (no index) start their own.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from assistant.config import PROJECT_ROOT

STARTUP_LIMIT_S = 180.0  # a guard against hanging forever, not a performance check
CORS_TEST_ORIGIN = "http://hotline.example"  # the one origin the session server allows


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**overrides: str) -> dict[str, str]:
    """The environment for a child process: no POLICY_QA_* or LLM settings leak in from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_QA_")}
    env.update({"PYTHONUNBUFFERED": "1", "GRADIO_ANALYTICS_ENABLED": "False"})
    env.update(overrides)
    return env


def cli_command(*args: str) -> list[str]:
    """`policy-qa ARGS` through the installed console script, or the same typer app via -c."""
    script = Path(sys.executable).with_name("policy-qa")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from assistant.serving.cli import app; app()", *args]


class LiveServer:
    """`policy-qa serve --host 127.0.0.1 --port N` in a child process, stopped by `stop()`."""

    def __init__(self, workdir: Path, index_dir: Path, *args: str, **env: str) -> None:
        self.args = args  # extra `serve` options, such as --nginx
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # Each server has its own database (feedback, change history), never the project's; the
        # feedback JSONL is only read, as the legacy file imported once.
        self.db_path = Path(env.get("POLICY_QA_DB_PATH", workdir / "policy_qa.sqlite3"))
        self.feedback_path = workdir / "feedback.jsonl"
        self.log_path = workdir / f"serve-{self.port}.log"
        self.env = clean_env(**{
            "POLICY_QA_INDEX_DIR": str(index_dir),
            "POLICY_QA_FEEDBACK_PATH": str(self.feedback_path),
            "POLICY_QA_DB_PATH": str(self.db_path),
            **env,
        })
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "LiveServer":
        log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            cli_command("serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args),
            cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + STARTUP_LIMIT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"policy-qa serve exited with {self._proc.returncode}:\n{self.output()}")
            try:
                httpx.get(self.base_url + "/healthz", timeout=2.0)  # any answer (200 or 503) means up
                return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"policy-qa serve did not start within {STARTUP_LIMIT_S:.0f}s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None


def chromium_path() -> str | None:
    """Debian's chromium (what .ci/run installs); None when it is not installed."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium") or ""):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@contextmanager
def running_app(app: Any) -> Iterator[str]:
    """A real uvicorn server for an ASGI `app` on a free loopback port, in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # bounded by the thread: uvicorn either starts or the test errors
        thread.join(timeout=0.05)
        assert thread.is_alive(), "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class AskingClients:
    """`count` threads asking `question` over and over while the block runs (a change under load);
    afterwards `failures` holds every non-200 answer and `answered` how many were asked."""

    def __init__(self, base_url: str, question: str, count: int) -> None:
        self.base_url, self.question = base_url, question
        self.failures: list[str] = []
        self.answered = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._ask) for _ in range(count)]

    def _ask(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=60) as http:
            while not self._stop.is_set():
                response = http.post("/api/ask", json={"question": self.question})
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
                self.answered += 1

    def __enter__(self) -> "AskingClients":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)
