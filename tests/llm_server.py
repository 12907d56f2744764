"""A scripted OpenAI-compatible chat server for tests and for CI's generative eval (no real model).

The requested *model name* picks the script, so a test chooses a behaviour through
POLICY_QA_LLM_MODEL alone and the server holds no per-test state besides its request log:

    grounded         copies the first sentence of the first two numbered clauses, citing each ([1], [2])
    out-of-range     grounded, plus markers that point nowhere ([9] alone, and [1][99])
    invented-number  grounded, plus a sentence from clause [1] with an amount and a time limit added
    unsupported      grounded, plus a sentence that no clause says
    ungrounded       only sentences no clause supports
    leak             repeats its system prompt (what a prompt-extraction attack hopes for)
    slow             waits `slow_s` seconds before answering (longer than the tests' client timeout)
    stall            streams the first sentence, then stops sending without closing
    http-error       answers HTTP 500 with an OpenAI-style error body

Condensation requests (no numbered clauses in the prompt) are answered with the last user turn of
the history joined to the follow-up, which is enough to make a follow-up retrievable.

Run a command against it (what CI does; the server stops when the command ends, with its exit code):

    python tests/llm_server.py --model grounded -- policy-qa eval --mode generative

or start it alone and point the assistant at it:

    python tests/llm_server.py --port 8765 &
    POLICY_QA_LLM_BASE_URL=http://127.0.0.1:8765/v1 POLICY_QA_LLM_MODEL=grounded policy-qa eval --mode generative
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CLAUSE_RE = re.compile(r"^\[(\d+)\] 《(.+?)》(.+?)（.*?）\n(.+?)(?=\n\n\[\d+\] |\n\n用户问题|\Z)", re.M | re.S)
SENTENCE_RE = re.compile(r"[^。；！？]+[。；！？]?")
UNSUPPORTED = "此外，外地企业还能额外申请专项财政补贴和银行贷款贴息支持"
INVENTED_TAIL = "，逾期未办理的处八十八万元罚款，办理时限为97个工作日"


def clauses_in(prompt: str) -> list[tuple[int, str, str, str]]:
    """The numbered clauses the assistant put into its prompt: (n, title, label, text)."""
    return [(int(n), title, label, text.strip()) for n, title, label, text in CLAUSE_RE.findall(prompt)]


def first_sentence(text: str) -> str:
    """The clause's first sentence without its closing punctuation, at most 120 characters."""
    for match in SENTENCE_RE.finditer(text.replace("\n", "")):
        sentence = match.group(0).strip().rstrip("。；！？")
        if len(sentence) >= 6:
            return sentence[:120]
    return text.strip()[:120].rstrip("。；！？")


def grounded_sentences(clauses: list[tuple[int, str, str, str]]) -> list[str]:
    out = []
    for i, (n, title, label, text) in enumerate(clauses[:2]):
        lead = f"根据《{title}》{label}，" if i == 0 else ""
        out.append(f"{lead}{first_sentence(text)}[{n}]。")
    return out


def script(model: str, messages: list[dict[str, Any]]) -> str:
    """The reply text for a model name and the request's messages."""
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    user = messages[-1]["content"] if messages else ""
    clauses = clauses_in(user)
    if not clauses:  # a condensation request
        history = re.findall(r"^用户：(.+)$", user, re.M)
        follow_up = re.search(r"最新追问：\s*\n(.+?)\n", user)
        question = follow_up.group(1).strip() if follow_up else ""
        return f"{history[-1]}{question}" if history else question
    good = grounded_sentences(clauses)
    if model == "out-of-range":
        return "".join(good[:1]) + "该事项另有专门规定[9]。" + good[-1].replace("]。", "][99]。")
    if model == "invented-number":
        n, _, _, text = clauses[0]
        return "".join(good) + f"{first_sentence(text)}{INVENTED_TAIL}[{n}]。"
    if model == "unsupported":
        return "".join(good) + f"{UNSUPPORTED}[{clauses[0][0]}]。"
    if model == "ungrounded":
        return f"{UNSUPPORTED}[1]。企业无需提交任何材料即可当场办结[1]。"
    if model == "leak":
        return system or "（无系统提示）"
    return "".join(good)


class ScriptedLLMServer(ThreadingHTTPServer):
    """The server; `requests` logs every chat request body, `url` is the base URL for the client."""

    daemon_threads = True

    def __init__(self, port: int = 0, slow_s: float = 30.0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.slow_s = slow_s
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def start(self) -> ScriptedLLMServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # wakes any handler waiting in a slow/stall script
        self.shutdown()
        self.server_close()

    def chat_requests(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Logged chat requests; kind 'answer' (with clauses) or 'condense' (without)."""
        if kind is None:
            return list(self.requests)
        want = kind == "answer"
        return [r for r in self.requests if bool(clauses_in(r["messages"][-1]["content"])) == want]


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedLLMServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "grounded", "object": "model"}]})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": "not found"}})
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.server.requests.append(body)
        model = str(body.get("model", "grounded"))
        if model == "http-error":
            self._json(500, {"error": {"message": "scripted failure", "type": "server_error"}})
            return
        if model == "slow" and self.server.stopping.wait(self.server.slow_s):
            return
        reply = script(model, body.get("messages", []))
        try:
            if body.get("stream"):
                self._stream(model, reply, stall=model == "stall")
            else:
                self._json(200, _completion(model, reply))
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): fine
            pass

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, model: str, reply: str, *, stall: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        pieces = [reply[i : i + 6] for i in range(0, len(reply), 6)]
        if stall:
            pieces = pieces[: max(1, reply.find("。") // 6 + 1)]
        for piece in pieces:
            self._event(_chunk(model, {"content": piece}, None))
        if stall:
            self.server.stopping.wait(self.server.slow_s)
            return
        self._event(_chunk(model, {}, "stop"))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _event(self, payload: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n")
        self.wfile.flush()


def _completion(model: str, reply: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def _chunk(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": {"role": "assistant", **delta}, "finish_reason": finish}],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=None, help="default 8765 alone, a free port with a command")
    parser.add_argument("--slow-s", type=float, default=30.0)
    parser.add_argument("--model", default="grounded", help="the script a command's requests use")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND...: run it against the server")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    server = ScriptedLLMServer(args.port if args.port is not None else (0 if command else 8765), args.slow_s)
    print(f"scripted LLM server on {server.url}", file=sys.stderr, flush=True)
    if not command:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        return
    server.start()
    env = os.environ | {"POLICY_QA_LLM_BASE_URL": server.url, "POLICY_QA_LLM_MODEL": args.model}
    try:
        code = subprocess.run(command, env=env, check=False).returncode
    finally:
        server.stop()
    print(f"scripted LLM server answered {len(server.requests)} chat requests", file=sys.stderr, flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
