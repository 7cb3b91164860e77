"""HAProxy in front of Ollama (the spec's v1 hardening layer), with the real ``haproxy``:

* every rendered ``haproxy.cfg`` passes ``haproxy -c``;
* a live HAProxy on 127.0.0.1 in front of a local HTTP server (standing in for Ollama, also on
  127.0.0.1 only) forwards exactly the allowlist, answers 403 to everything else (the backend
  never sees those requests), streams responses through unbuffered, and its timeouts are
  inactivity timeouts that let a long stream run.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from operations.templates import ALLOWED_PATHS, haproxy_config

HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None
)
if HAPROXY is None:
    if os.environ.get("CI") == "true":
        pytest.fail("haproxy is not installed (apt-get install haproxy)", pytrace=False)
    pytest.skip("haproxy is not installed (apt-get install haproxy)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(config: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    return subprocess.run([HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize(
    "bind, backend, timeout",
    [
        ("192.168.100.10:11434", "127.0.0.1:11434", "10m"),
        ("10.0.0.5:8080", "127.0.0.1:8080", "1h"),
        ("127.0.0.1:11434", "127.0.0.1:11435", "600s"),
    ],
)
def test_rendered_config_passes_haproxy_check(tmp_path, bind, backend, timeout):
    result = check(haproxy_config(bind, backend, timeout=timeout), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration file is valid" in result.stdout + result.stderr


def test_haproxy_check_is_meaningful(tmp_path):
    broken = haproxy_config("127.0.0.1:1", "127.0.0.1:2").replace("mode http", "mode htp")
    assert check(broken, tmp_path).returncode != 0


# -- a live HAProxy in front of a stand-in backend --------------------------------------------


class Backend:
    """An HTTP/1.1 server on 127.0.0.1 that records requests. ``/v1/chat/completions`` streams
    chunks (``data: <i>``): after the first chunk it waits for :attr:`release` (so a test can
    prove the first chunk arrived while the backend was still busy), then sends the rest
    ``gap`` seconds apart."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.release = threading.Event()
        self.gap = 0.0
        self.chunks = 3
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                backend.seen.append((self.command, self.path))
                if self.path == "/v1/chat/completions":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(backend.chunks):
                        if i == 1:
                            backend.release.wait(10)
                        elif i > 1:
                            time.sleep(backend.gap)
                        data = f"data: {i}\n\n".encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    return
                body = f'{{"path":"{self.path}"}}'.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class Proxy:
    def __init__(self, tmp_path: Path, backend_port: int, timeout: str = "10m",
                 api_tokens: tuple = (), extra_paths: tuple = ()) -> None:
        self.port = free_port()
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(
            haproxy_config(f"127.0.0.1:{self.port}", f"127.0.0.1:{backend_port}", timeout=timeout,
                           api_tokens=api_tokens, extra_paths=extra_paths)
        )
        self.log = tmp_path / "haproxy.log"
        self.proc = subprocess.Popen(
            [HAPROXY, "-f", str(cfg), "-db"],
            stdout=open(self.log, "wb"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError("haproxy did not start: " + self.log.read_text())

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None, source: str | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10,
                                          source_address=(source, 0) if source else None)
        try:
            conn.request(method, path, body=body,
                         headers={"Content-Type": "application/json", **(headers or {})})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def backend():
    b = Backend()
    yield b
    b.close()


@pytest.fixture
def proxy(tmp_path, backend):
    p = Proxy(tmp_path, backend.port)
    yield p
    p.close()


ALLOWED = [
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/llama3.2:latest"),
    ("GET", "/v1/models/qwen2.5-coder:32b"),
    ("POST", "/v1/responses"),
    ("POST", "/v1/messages"),
    ("GET", "/api/version"),
    ("GET", "/api/tags"),
    ("POST", "/api/show"),
    ("GET", "/api/tags?verbose=1"),  # a query string is not part of the path
]
BLOCKED = [
    ("POST", "/api/pull"),
    ("DELETE", "/api/delete"),
    ("POST", "/api/create"),
    ("POST", "/api/push"),
    ("POST", "/api/copy"),
    ("POST", "/api/generate"),
    ("POST", "/api/chat"),
    ("POST", "/api/embed"),
    ("GET", "/api/ps"),
    ("POST", "/api/blobs/sha256:00"),
    ("GET", "/"),
    ("POST", "/v1/embeddings"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/messages/count_tokens"),
    ("GET", "/v1/models/"),
    ("GET", "/v1/models/a/b"),
    ("GET", "/v1/models/..%2F..%2Fapi%2Fpull"),
    ("POST", "/api/version/../pull"),
    ("POST", "/API/PULL"),
    ("POST", "//api/pull"),
]


def test_allowlist_matches_the_spec():
    assert set(ALLOWED_PATHS) == {
        "/v1/chat/completions",
        "/v1/models",
        "/v1/responses",
        "/v1/messages",
        "/api/version",
        "/api/tags",
        "/api/show",
    }


@pytest.mark.parametrize("method, path", ALLOWED, ids=[f"{m} {p}" for m, p in ALLOWED])
def test_allowed_paths_reach_ollama(proxy, backend, method, path):
    backend.release.set()
    status, body = proxy.request(method, path, b"{}" if method == "POST" else None)
    assert status == 200
    assert backend.seen[-1] == (method, path)


def test_everything_else_is_403_and_never_reaches_ollama(proxy, backend):
    for method, path in BLOCKED:
        status, body = proxy.request(method, path, b'{"model":"x"}')
        assert status == 403, (method, path, status)
    assert backend.seen == []


def test_the_allowlist_adds_what_the_clients_tools_use_and_nothing_else():
    from deploys.client_tools import proxy_paths
    from deploys.versions import TOOL_ENDPOINTS

    # Aider's native route (ollama_chat/): the two endpoints the real Aider was seen to call
    assert TOOL_ENDPOINTS["aider"] == ("/api/show", "/api/chat")
    assert proxy_paths([{"aider": True}, {"claude_code": True}, {}]) == (
        "/api/chat", "/api/show", "/v1/messages")
    assert proxy_paths([{"aider": False}, {"claude_code": False}]) == ()
    text = haproxy_config("127.0.0.1:1", "127.0.0.1:2", extra_paths=proxy_paths([{"aider": True}]))
    assert [line.split()[-1] for line in text.splitlines() if "acl allowed path " in line] == [
        *ALLOWED_PATHS, "/api/chat"]
    with pytest.raises(ValueError):
        haproxy_config("127.0.0.1:1", "127.0.0.1:2", extra_paths=["/api/pull "])


def test_an_aider_client_passes_and_the_model_store_stays_closed(tmp_path, backend):
    from deploys.client_tools import proxy_paths

    p = Proxy(tmp_path, backend.port, extra_paths=proxy_paths([{"aider": True}]))
    try:
        backend.release.set()
        # what Aider sends (tests/test_agents_lab.py): POST /api/show, then POST /api/chat
        for path, body in (("/api/show", b'{"model": "llama3.2:1b"}'),
                           ("/api/chat", b'{"model": "llama3.2:1b", "messages": [{"role": "user",'
                                         b' "content": "hi"}], "stream": false,'
                                         b' "options": {"num_ctx": 65536}}')):
            assert p.request("POST", path, body)[0] == 200
        assert backend.seen == [("POST", "/api/show"), ("POST", "/api/chat")]
        for method, path in BLOCKED:
            if path != "/api/chat":
                assert p.request(method, path, b'{"model":"x"}')[0] == 403, (method, path)
        assert p.request("POST", "/api/chat/../pull", b"{}")[0] == 403
        assert len(backend.seen) == 2
    finally:
        p.close()


def test_streaming_passes_through_unbuffered(proxy, backend):
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    try:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        received = b""
        start = time.monotonic()
        while b"data: 0" not in received:  # the backend is now blocked until release is set
            chunk = sock.recv(4096)
            assert chunk, "connection closed before the first chunk"
            received += chunk
        first_chunk_after = time.monotonic() - start
        assert not backend.release.is_set()
        backend.release.set()
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    finally:
        sock.close()
    assert first_chunk_after < 3
    assert b"data: 1" in received and b"data: 2" in received and received.endswith(b"0\r\n\r\n")


def test_timeouts_are_inactivity_timeouts(tmp_path, backend):
    """With a 1 s timeout, a 2.5 s stream whose chunks come 0.5 s apart is not cut: a long
    generation survives as long as tokens flow (the real config allows 10 minutes of silence)."""
    proxy = Proxy(tmp_path, backend.port, timeout="1s")
    try:
        backend.release.set()
        backend.gap, backend.chunks = 0.5, 6
        start = time.monotonic()
        status, body = proxy.request("POST", "/v1/chat/completions", b"{}")
        assert status == 200
        assert time.monotonic() - start > 1.5
        assert body.count(b"data: ") == 6
    finally:
        proxy.close()


# -- optional API tokens (deploys/api_tokens.py) ----------------------------------------------


def test_api_tokens_per_client_address(tmp_path, backend):
    """alice (127.0.0.2) has a token: from her address nothing passes without it (a leaked
    tunnel key gives her address, not her token); bob (127.0.0.3) has none and is not asked.
    The config holds only SHA-256 hashes."""
    from deploys.api_tokens import TokenClient, TokenStore, bearer_sha256, token_clients

    store = TokenStore(tmp_path / "secrets", dry=False)
    clients = token_clients([("alice-mac", "127.0.0.2", {"api_token": True}),
                             ("bob-mac", "127.0.0.3", {})], store)
    token = store.token("alice-mac").reveal()
    assert clients == [TokenClient("alice-mac", "127.0.0.2", bearer_sha256(token))]
    path = tmp_path / "secrets" / "api-tokens" / "alice-mac.token"
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert store.token("alice-mac").reveal() == token  # stable: made once
    proxy = Proxy(tmp_path, backend.port, api_tokens=tuple(clients))
    try:
        cfg = (tmp_path / "haproxy.cfg").read_text()
        assert token not in cfg and bearer_sha256(token) in cfg
        assert check(cfg, tmp_path).returncode == 0
        backend.release.set()
        alice = {"source": "127.0.0.2"}
        assert proxy.request("GET", "/api/tags", **alice)[0] == 401
        bad = {"Authorization": "Bearer sso-" + "x" * 43}
        assert proxy.request("GET", "/api/tags", headers=bad, **alice)[0] == 401
        assert proxy.request("GET", "/api/tags", headers={"x-api-key": token}, **alice)[0] == 401
        assert backend.seen == []  # nothing unauthenticated reached Ollama
        good = {"Authorization": f"Bearer {token}"}
        assert proxy.request("GET", "/api/tags", headers=good, **alice)[0] == 200
        assert proxy.request("POST", "/v1/messages", b"{}", headers=good, **alice)[0] == 200
        assert proxy.request("POST", "/api/pull", b"{}", headers=good, **alice)[0] == 403
        assert proxy.request("GET", "/api/tags", source="127.0.0.3")[0] == 200  # bob: no token
        assert proxy.request("GET", "/api/tags", headers=good, source="127.0.0.3")[0] == 200
    finally:
        proxy.close()


def test_dry_run_never_writes_a_token(tmp_path):
    from deploys.api_tokens import TokenStore

    store = TokenStore(tmp_path / "secrets", dry=True)
    token = store.token("alice-mac")
    assert store.token("alice-mac") == token  # the same within one run
    assert not (tmp_path / "secrets").exists()
