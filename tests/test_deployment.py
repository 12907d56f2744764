"""`policy-qa serve --nginx`: Debian's nginx in front of uvicorn holds slow clients, so real users
keep being answered (the slow-connection probe of the reliability issue, against the real pair)."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import httpx
import pytest
from live_server import LiveServer

from assistant.config import Settings

SLOW_CLIENTS = 250  # what exhausted a bare uvicorn in the probe
HEADER_TIMEOUT_S = 10  # client_header_timeout in assistant/serving/deploy/nginx.conf
GUARD_S = 60.0  # bounds the wait for nginx to drop the slow clients; not a performance check

pytestmark = pytest.mark.skipif(not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()),
                                reason="needs Debian's nginx (.ci/run installs nginx-light)")


@pytest.fixture(scope="module")
def behind_nginx(index_settings: Settings, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    server = LiveServer(tmp_path_factory.mktemp("nginx"), index_settings.index_dir, "--nginx").start()
    # nginx answers (502) before uvicorn has loaded the index: wait for the app behind it.
    deadline = time.monotonic() + GUARD_S
    while httpx.get(server.base_url + "/healthz", timeout=5).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    yield server
    nginx = nginx_processes(server)
    assert nginx, "the server runs nginx as its child"
    server.stop()
    deadline = time.monotonic() + GUARD_S
    while time.monotonic() < deadline and alive(nginx):
        time.sleep(0.2)
    assert not alive(nginx), "stopping `policy-qa serve --nginx` left nginx running"


def nginx_processes(server: LiveServer) -> set[int]:
    """The nginx processes started by the server process (master and workers), read from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            comm = stat.read_text().split("(", 1)[1].split(")", 1)[0]
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if comm == "nginx" and b"policy-qa-nginx-" in cmdline:
            found.add(int(stat.parent.name))
    return found


def alive(pids: set[int]) -> set[int]:
    living = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.add(pid)
    return living


def open_slow_clients(port: int, count: int) -> list[socket.socket]:
    """Connections that start a request and never finish its headers."""
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        clients.append(client)
    return clients


def closed_by_server(client: socket.socket) -> bool:
    client.settimeout(0.05)
    try:
        data = client.recv(1024)
    except TimeoutError:
        return False
    except OSError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 408")


def test_normal_requests_are_answered_while_slow_clients_hold_connections(behind_nginx: LiveServer) -> None:
    slow = open_slow_clients(behind_nginx.port, SLOW_CLIENTS)
    try:
        with httpx.Client(base_url=behind_nginx.base_url, timeout=30) as client:
            statuses = [client.get("/healthz").status_code for _ in range(5)]
            answers = [client.post("/api/ask", json={"question": "简易注销怎么办理？"}) for _ in range(5)]
        assert statuses == [200] * 5
        assert [a.status_code for a in answers] == [200] * 5
        assert all(a.json()["citations"] for a in answers)
        # nginx, not the app, drops them once they stay silent past its header timeout.
        deadline = time.monotonic() + GUARD_S
        while time.monotonic() < deadline and not all(closed_by_server(c) for c in slow[:20]):
            time.sleep(1)
        assert all(closed_by_server(c) for c in slow[:20]), "nginx kept silent clients open"
    finally:
        for client in slow:
            client.close()


def test_streams_pass_through_unbuffered_and_the_request_id_survives(behind_nginx: LiveServer) -> None:
    with httpx.Client(base_url=behind_nginx.base_url, timeout=30) as client, \
            client.stream("POST", "/api/ask/stream", json={"question": "简易注销怎么办理？"},
                          headers={"X-Request-ID": "nginx-probe-1"}) as response:
        assert response.status_code == 200
        assert response.headers["x-request-id"] == "nginx-probe-1"
        events = [line for line in response.iter_lines() if line.startswith("event:")]
    assert events[0] == "event: sources" and events[-1] == "event: done"
    deadline = time.monotonic() + GUARD_S  # the log line is written once the stream has ended
    while '"request_id": "nginx-probe-1"' not in behind_nginx.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert '"request_id": "nginx-probe-1"' in behind_nginx.output()


def test_an_upload_over_the_limit_is_refused_by_nginx_before_the_app(behind_nginx: LiveServer) -> None:
    too_big = b"x" * (22 * 1024 * 1024)  # over the 20 MB default plus the 1 MB of form overhead
    response = httpx.post(behind_nginx.base_url + "/api/documents", files={"file": ("big.txt", too_big)}, timeout=60)
    assert response.status_code == 413
