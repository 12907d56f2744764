"""`policy-qa serve --nginx`: Debian's nginx in front of uvicorn, the way a government desk would run it.

uvicorn has no timeout for a client that sends its request headers slowly, so a few hundred slow
connections exhaust its file descriptors; nginx holds those instead (see deploy/nginx.conf for each
limit and why). uvicorn listens on a private loopback port and trusts nginx's X-Forwarded-For (uvicorn's
default trusts 127.0.0.1), so per-client limits and logs still see the real client address.

One uvicorn worker: every worker would load its own index and embedding model (~360 MB each), and one
worker already keeps both cores busy (the query embedding runs multi-threaded); a second worker on this
2-core machine adds memory, not throughput.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from string import Template

from ..config import Settings

NGINX_START_WAIT_S = 10.0  # nginx validates and binds in milliseconds; this only bounds a hang
BODY_OVERHEAD_MB = 1  # multipart framing around an uploaded file


class NginxError(RuntimeError):
    """nginx is missing or would not start; the message says what to do."""


def render_config(prefix: Path, listen: str, upstream_port: int, max_upload_mb: float) -> str:
    template = Template(resources.files(__package__).joinpath("deploy/nginx.conf").read_text(encoding="utf-8"))
    return template.substitute(prefix=prefix, listen=listen, upstream_port=upstream_port,
                               max_body_mb=int(max_upload_mb) + BODY_OVERHEAD_MB)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_nginx(host: str, port: int, upstream_port: int, settings: Settings) -> tuple[subprocess.Popen, Path]:
    """Write the configuration into a private directory and start nginx in the foreground."""
    binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if binary is None:
        raise NginxError("未找到 nginx：请先安装（Debian/Ubuntu：apt-get install nginx-light），或去掉 --nginx 直接运行")
    prefix = Path(tempfile.mkdtemp(prefix="policy-qa-nginx-"))
    listen = f"{'[' + host + ']' if ':' in host else host}:{port}"
    (prefix / "nginx.conf").write_text(render_config(prefix, listen, upstream_port, settings.max_upload_mb), "utf-8")
    command = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log"),
               "-g", "daemon off;"]
    checked = subprocess.run([*command[:-2], "-t"], capture_output=True, text=True, check=False)
    if checked.returncode != 0:
        raise NginxError(f"nginx 配置检查失败：{checked.stderr.strip()}")
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    deadline = time.monotonic() + NGINX_START_WAIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (prefix / "error.log").read_text(encoding="utf-8", errors="replace")[-500:]
            raise NginxError(f"nginx 未能启动（端口 {port} 可能已被占用）：{log.strip()}")
        if _accepts(host, port):
            return process, prefix
        time.sleep(0.05)
    process.kill()
    raise NginxError("nginx 启动超时")


def run_behind_nginx(host: str, port: int, settings: Settings, serve) -> None:  # noqa: ANN001 - serve(host, port, settings)
    """nginx on host:port, the app on a private loopback port; stopping either stops both."""
    # uvicorn re-raises the SIGTERM it handled once it has shut down; with the default handler the
    # process would die right there and leave nginx running. This handler turns it into SystemExit,
    # so the `finally` below stops nginx.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    upstream_port = free_loopback_port()
    nginx, prefix = start_nginx(host, port, upstream_port, settings)
    print(f"nginx 已在 http://{host}:{port}/ 前置（请求头/请求体超时 10 秒，单地址并发与频率限制）；"
          f"以下为应用的内部地址 127.0.0.1:{upstream_port}，请通过 {port} 端口访问：", flush=True)
    try:
        serve("127.0.0.1", upstream_port, settings)  # uvicorn handles SIGINT/SIGTERM and returns
    finally:
        nginx.send_signal(signal.SIGQUIT)  # graceful: finish requests in flight
        try:
            nginx.wait(NGINX_START_WAIT_S)
        except subprocess.TimeoutExpired:
            nginx.kill()
        shutil.rmtree(prefix, ignore_errors=True)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _die_with_parent() -> None:
    """In the nginx child before exec (Linux): a parent killed with SIGKILL, which runs no cleanup,
    still takes nginx down with it (PR_SET_PDEATHSIG). Elsewhere this is a no-op."""
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1" if host in ("0.0.0.0", "") else host, port), timeout=0.2):
            return True
    except OSError:
        return False
