"""The Gradio chat app, served together with the API on one port.

    python ui.py [--host 127.0.0.1] [--port 7860]     # same as: policy-qa serve
    uvicorn ui:app                                    # UI at /, API at /api, /v1, /healthz, /docs

`demo` is the Gradio Blocks, `app` the FastAPI app it is mounted on. Importing this module builds
both but loads no index: that happens once, in the app's lifespan (or on the first request).
"""

from __future__ import annotations

import argparse

from assistant.serving.webui import build_server, run_server

_server = build_server()
demo = _server.demo
app = _server.app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="启动政策问答的网页界面和 API（同一端口）")
    parser.add_argument("--host", default="127.0.0.1", help="监听地址（默认 127.0.0.1）")
    parser.add_argument("--port", type=int, default=7860, help="端口（默认 7860）")
    args = parser.parse_args(argv)
    run_server(_server, args.host, args.port)


if __name__ == "__main__":
    main()
