"""The Ollama API stand-in (tests/standins/ollama_api.py) against the exchange corpus.

tests/standins/ollama_api.py is a TEST STAND-IN for the Ollama HTTP API, used by the
end-to-end tests in place of a real Ollama; it is never part of the product. Here every
exchange in ``tests/fixtures/ollama-api`` is replayed against it, one case per file, on a
server imitating a release inside the exchange's ``ollama_version_min``/``_max`` range:
status, the headers the exchange lists (and no Content-Type where it lists none), the
exact wire framing (compact Go JSON, trailing newline or not, NDJSON lines, SSE blocks)
and the body, matched by the rules of the corpus README §3-§4: exact literals, ``key?``
optional keys, ``<token>`` patterns, ``$repeat``/``$optional``/``$oneof`` sequences.

Further tests pin what the end-to-end tests rely on: the model list follows pull, copy,
create and delete (and survives a restart with a state dir), a failed pull is an error
line inside a 200 stream, streams really stream, and the version gates.
All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.standins.ollama_api import (
    DEFAULT_VERSION,
    GoJSONError,
    OllamaStandIn,
    go_decode,
    go_json,
    version_key,
)

REPO = Path(__file__).resolve().parents[1]
STANDIN = REPO / "tests" / "standins" / "ollama_api.py"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ollama-api"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json")) if FIXTURES.is_dir() else []

BASE_MODELS: list[Any] = ["llama3.2", "qwen3", "all-minilm"]

# Server set-up an exchange needs besides the base models (by fixture name).
PRESETS: dict[str, dict[str, Any]] = {
    "native-tags-empty": {"models": []},
    "openai-models-empty": {"models": []},
    "native-ps": {"models": {"installed": BASE_MODELS, "loaded": ["llama3.2"]}},
    "native-generate-queue-full": {"max_queue": 0},
    "native-chat-stream-error-midstream": {
        "models": [{"name": "llama3.2", "fail_after": 2}, "qwen3", "all-minilm"]
    },
}

# --------------------------------------------------------------------------- matcher

_INT = r"\d+"
STRING_TOKENS: dict[str, str] = {
    "text": r"(?s:.*)",
    "nonempty-text": r"(?s:.+)",
    "json-text": r"(?s:.*)",
    "path-text": r"[^:]+",
    "rfc3339-utc": r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z",
    "rfc3339": r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})",
    "version": r"\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?",
    "model-name": r"([^/:]+/)*[^/:]+:[^/:]+",
    "digest-hex": r"[0-9a-f]{64}",
    "digest-sha256": r"sha256:[0-9a-f]{64}",
    "short-digest": r"[0-9a-f]{12}",
    "done-reason": r".+",
    "finish-reason": r".+",
    "anthropic-stop-reason": r"end_turn|max_tokens|tool_use|stop_sequence",
    "id:chatcmpl": r"chatcmpl-\d{1,3}",
    "id:cmpl": r"cmpl-\d{1,3}",
    "id:resp": r"resp_\d{1,6}",
    "id:msg_n": r"msg_\d{1,6}(_\d+)?",
    "id:rs_resp": r"rs_resp_\d{1,6}",
    "id:msg_hex": r"msg_[0-9a-f]{24}",
    "id:req_hex": r"req_[0-9a-f]{24}",
    "id:call": r".+",
}


def _is_int(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (
        isinstance(v, float) and v.is_integer()
    )


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


VALUE_TOKENS: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: _is_int(v) and v >= 0,
    "duration-ns": lambda v: _is_int(v) and v > 0,
    "unix": lambda v: _is_int(v) and v > 1_000_000_000,
    "int-array": lambda v: isinstance(v, list) and all(_is_int(x) for x in v),
    "float-array": lambda v: isinstance(v, list) and all(_is_num(x) for x in v),
    "array": lambda v: isinstance(v, list),
    "array|null": lambda v: v is None or isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}
TOKEN_RE = re.compile(r"<([a-z0-9_|:-]+)>")


def _known(name: str) -> bool:
    return name in STRING_TOKENS or name in VALUE_TOKENS


def check_string(exp: str, act: Any, path: str) -> str | None:
    whole = TOKEN_RE.fullmatch(exp)
    if whole and whole[1] in VALUE_TOKENS:
        return None if VALUE_TOKENS[whole[1]](act) else f"{path}: {act!r} is not {exp}"
    if whole and whole[1] in STRING_TOKENS:
        if not isinstance(act, str) or not re.fullmatch(STRING_TOKENS[whole[1]], act):
            return f"{path}: {act!r} is not {exp}"
        if whole[1] == "json-text":
            try:
                json.loads(act)
            except ValueError:
                return f"{path}: {act!r} is not JSON text"
        return None
    if any(_known(m[1]) for m in TOKEN_RE.finditer(exp)):
        regex, pos = "", 0
        for m in TOKEN_RE.finditer(exp):
            if not _known(m[1]):
                continue
            regex += re.escape(exp[pos : m.start()])
            regex += STRING_TOKENS.get(m[1], _INT)
            pos = m.end()
        regex += re.escape(exp[pos:])
        if isinstance(act, str) and re.fullmatch(regex, act):
            return None
        return f"{path}: {act!r} does not match {exp!r}"
    return None if isinstance(act, str) and act == exp else f"{path}: {act!r} != {exp!r}"


def check(exp: Any, act: Any, path: str = "$") -> str | None:
    """First mismatch between a fixture template and an actual value, or None."""
    if isinstance(exp, dict):
        if not isinstance(act, dict):
            return f"{path}: expected an object, got {act!r}"
        fields = {k.rstrip("?"): (v, k.endswith("?")) for k, v in exp.items()}
        extra = sorted(set(act) - set(fields))
        if extra:
            return f"{path}: unexpected key(s) {extra}"
        for name, (sub, optional) in fields.items():
            if name not in act:
                if optional:
                    continue
                return f"{path}: missing key {name!r}"
            error = check(sub, act[name], f"{path}.{name}")
            if error:
                return error
        return None
    if isinstance(exp, list):
        if not isinstance(act, list):
            return f"{path}: expected an array, got {act!r}"
        return check_sequence(exp, act, path)
    if isinstance(exp, str):
        return check_string(exp, act, path)
    if exp is None:
        return None if act is None else f"{path}: {act!r} is not null"
    if isinstance(exp, bool):
        return None if act is exp else f"{path}: {act!r} is not {exp}"
    if _is_num(exp):
        return None if _is_num(act) and act == exp else f"{path}: {act!r} != {exp!r}"
    raise AssertionError(f"unknown template at {path}: {exp!r}")


def _units(t: Any) -> list[Any]:
    return t if isinstance(t, list) else [t]


def _ends(pats: list[Any], items: list[Any], start: int, path: str) -> set[int]:
    positions = {start}
    for pat in pats:
        positions = {e for j in positions for e in _element_ends(pat, items, j, path)}
        if not positions:
            break
    return positions


def _element_ends(pat: Any, items: list[Any], j: int, path: str) -> set[int]:
    if isinstance(pat, dict) and "$repeat" in pat:
        unit = _units(pat["$repeat"])
        low, high = pat.get("min", 0), pat.get("max")
        result = {j} if low == 0 else set()
        frontier, count = {j}, 0
        while frontier and (high is None or count < high) and count <= len(items):
            frontier = {e for f in frontier for e in _ends(unit, items, f, path)}
            count += 1
            if count >= low:
                result |= frontier
        return result
    if isinstance(pat, dict) and "$optional" in pat:
        return {j} | _ends(_units(pat["$optional"]), items, j, path)
    if isinstance(pat, dict) and "$oneof" in pat:
        return {e for alt in pat["$oneof"] for e in _element_ends(alt, items, j, path)}
    if j < len(items) and check(pat, items[j], f"{path}[{j}]") is None:
        return {j + 1}
    return set()


def check_sequence(pats: list[Any], items: list[Any], path: str) -> str | None:
    if len(items) in _ends(pats, items, 0, path):
        return None
    reached = {0}
    for i in range(1, len(pats) + 1):
        reached |= _ends(pats[:i], items, 0, path)
    best = max(reached)
    if best >= len(items):
        return f"{path}: the {len(items)} element(s) end before the template does"
    hints = []
    for pat in pats:
        for candidate in _units(pat.get("$repeat", pat) if isinstance(pat, dict) else pat):
            if isinstance(candidate, dict) and not any(k.startswith("$") for k in candidate):
                hints.append(check(candidate, items[best], f"{path}[{best}]"))
    hint = next((h for h in hints if h), "")
    return f"{path}: element {best} does not fit the template: {items[best]!r} ({hint})"


# --------------------------------------------------------------------------- framing


def assert_go_compact(text: str) -> None:
    """No whitespace outside strings; <, >, & escaped as Go does."""
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        else:
            assert ch not in " \t\r\n", f"not compact JSON: {text[:200]!r}"
    assert not re.search(r"[<>&]", text), f"HTML characters not escaped: {text[:200]!r}"


def _json(text: str) -> Any:
    assert_go_compact(text)
    return json.loads(text)


def parse_body(kind: str, raw: bytes, trailing_newline: bool | None) -> Any:
    text = raw.decode("utf-8")
    if kind == "json":
        if trailing_newline:
            assert text.endswith("\n") and not text.endswith("\n\n"), repr(text[-20:])
            text = text[:-1]
        else:
            assert not text.endswith("\n"), "unexpected trailing newline"
        return _json(text)
    if kind == "ndjson":
        assert text.endswith("\n"), "NDJSON must end with a newline"
        lines = text[:-1].split("\n")
        assert all(lines), "blank NDJSON line"
        return [_json(line) for line in lines]
    if kind in ("sse-data", "sse-event"):
        assert text.endswith("\n\n"), "SSE must end with a blank line"
        elements = []
        for block in text[:-2].split("\n\n"):
            if kind == "sse-event":
                m = re.fullmatch(r"event: ([^\n]+)\ndata: ([^\n]*)", block)
                assert m, f"bad SSE event block {block!r}"
                elements.append({"event": m[1], "data": _json(m[2])})
            else:
                m = re.fullmatch(r"data: ([^\n]*)", block)
                assert m, f"bad SSE data block {block!r}"
                elements.append({"data": "[DONE]" if m[1] == "[DONE]" else _json(m[1])})
        return elements
    raise AssertionError(f"unknown body kind {kind}")


def check_invariants(name: str, kind: str, elements: list[Any], version: str) -> None:
    """Cross-element invariants of the corpus README §3."""
    data = [e["data"] for e in elements if isinstance(e, dict) and isinstance(e.get("data"), dict)]
    chunks = [d for d in data if d.get("object") == "chat.completion.chunk"]
    if chunks:
        assert len({c["id"] for c in chunks}) == 1, "chat chunks must share the id"
        if version_key(version) >= version_key("0.32.6"):
            assert len({c["created"] for c in chunks}) == 1, "chat chunks must share created"
    if name.startswith("openai-responses") and kind == "sse-event":
        assert [d["sequence_number"] for d in data] == list(range(len(data)))
        deltas = "".join(d["delta"] for d in data if d["type"] == "response.output_text.delta")
        done = [d["text"] for d in data if d["type"] == "response.output_text.done"]
        assert done == [deltas]
    if name.startswith("anthropic") and kind == "sse-event":
        open_index, next_index = None, 0
        for d in data:
            if d["type"] == "content_block_start":
                assert open_index is None and d["index"] == next_index
                open_index, next_index = d["index"], next_index + 1
            elif d["type"] == "content_block_delta":
                assert d["index"] == open_index
            elif d["type"] == "content_block_stop":
                assert d["index"] == open_index
                open_index = None
    if kind == "ndjson" and elements and "done" in elements[0]:
        done = [i for i, e in enumerate(elements) if e.get("done") is True]
        if "error" in elements[-1]:
            assert done == []
        else:
            assert done == [len(elements) - 1]


def send(url: str, request: dict[str, Any], **kwargs: Any) -> requests.Response:
    if "body_raw" in request:
        data: bytes | None = request["body_raw"].encode()
    elif request.get("body") is not None:
        data = json.dumps(request["body"]).encode()
    else:
        data = None
    return requests.request(
        request["method"],
        url + request["path"],
        headers=dict(request.get("headers") or {}),
        data=data,
        timeout=30,
        allow_redirects=False,
        **kwargs,
    )


def replay_version(fixture: dict[str, Any]) -> str:
    if fixture.get("ollama_version_max"):
        return fixture["ollama_version_max"]
    return max(DEFAULT_VERSION, fixture["ollama_version_min"], key=version_key)


def verify(fixture: dict[str, Any], resp: requests.Response, version: str) -> None:
    expected = fixture["response"]
    assert resp.status_code == expected["status"], resp.content[:300]
    for key, value in expected["headers"].items():
        assert resp.headers.get(key) == value, (key, resp.headers.get(key))
    if "Content-Type" not in expected["headers"]:
        assert "Content-Type" not in resp.headers
    kind = expected["body_kind"]
    if kind == "text":
        assert resp.content == expected["body"].encode()
        return
    if kind == "empty":
        assert resp.content == b""
        return
    actual = parse_body(kind, resp.content, expected.get("body_trailing_newline"))
    if kind == "json":
        error = check(expected["body"], actual)
    else:
        error = check_sequence(expected["stream"], actual, "$stream")
        check_invariants(fixture["name"], kind, actual, version)
    assert error is None, error


# --------------------------------------------------------------------------- replay


def test_corpus_present() -> None:
    assert FIXTURE_FILES, f"no exchanges in {FIXTURES}"


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_replay_exchange(path: Path) -> None:
    fixture = json.loads(path.read_text())
    version = replay_version(fixture)
    options: dict[str, Any] = {"models": BASE_MODELS, **PRESETS.get(fixture["name"], {})}
    with OllamaStandIn("127.0.0.1", 0, version=version, **options) as server:
        verify(fixture, send(server.url, fixture["request"]), version)


# --------------------------------------------------------------------------- helpers


def _tags(url: str) -> list[str]:
    resp = requests.get(url + "/api/tags", timeout=10)
    assert resp.status_code == 200
    return [m["name"] for m in resp.json()["models"]]


def _ndjson(resp: requests.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in resp.content.decode().splitlines()]


def _post(url: str, path: str, body: Any, **kwargs: Any) -> requests.Response:
    return requests.post(url + path, data=json.dumps(body), timeout=30, **kwargs)


# --------------------------------------------------------------------------- model store


def test_model_list_follows_pull_copy_create_delete() -> None:
    with OllamaStandIn("127.0.0.1", 0) as server:
        url = server.url
        assert _tags(url) == []
        assert requests.get(url + "/v1/models", timeout=10).json() == {
            "object": "list",
            "data": None,
        }
        lines = _ndjson(_post(url, "/api/pull", {"model": "llama3.2"}))
        assert lines[0] == {"status": "pulling manifest"}
        assert lines[-1] == {"status": "success"}
        assert _tags(url) == ["llama3.2:latest"]
        assert [m["id"] for m in requests.get(url + "/v1/models", timeout=10).json()["data"]] == [
            "llama3.2:latest"
        ]
        # pulling again: every layer is already on disk, reported once and complete
        again = [line for line in _ndjson(_post(url, "/api/pull", {"model": "llama3.2"}))]
        layers = [
            line for line in again if line["status"].startswith("pulling ") and "digest" in line
        ]
        assert layers and all(line["completed"] == line["total"] for line in layers)

        assert _post(url, "/api/copy", {"source": "llama3.2", "destination": "claude-3"}).ok
        created = _ndjson(
            _post(url, "/api/create", {"model": "mario", "from": "llama3.2", "system": "Be Mario."})
        )
        assert created[-2:] == [{"status": "writing manifest"}, {"status": "success"}]
        assert any(line["status"].startswith("creating new layer sha256:") for line in created)
        assert sorted(_tags(url)) == ["claude-3:latest", "llama3.2:latest", "mario:latest"]
        show = _post(url, "/api/show", {"model": "mario"}).json()
        assert show["system"] == "Be Mario."

        message = {
            "model": "claude-3",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "Hi"}],
        }
        assert _post(url, "/v1/messages", message).status_code == 200

        resp = requests.delete(
            url + "/api/delete", data=json.dumps({"model": "llama3.2"}), timeout=10
        )
        assert resp.status_code == 200 and resp.content == b""
        assert sorted(_tags(url)) == ["claude-3:latest", "mario:latest"]
        gone = _post(url, "/api/chat", {"model": "llama3.2", "messages": []})
        assert gone.status_code == 404
        assert gone.json() == {"error": "model 'llama3.2' not found"}


def test_state_dir_keeps_models_across_restarts(tmp_path: Path) -> None:
    with OllamaStandIn("127.0.0.1", 0, state_dir=tmp_path) as first:
        assert _ndjson(_post(first.url, "/api/pull", {"model": "all-minilm"}))[-1] == {
            "status": "success"
        }
        assert _post(first.url, "/api/copy", {"source": "all-minilm", "destination": "emb"}).ok
    with OllamaStandIn("127.0.0.1", 0, state_dir=tmp_path) as second:
        assert sorted(_tags(second.url)) == ["all-minilm:latest", "emb:latest"]
        deleted = requests.delete(second.url + "/api/delete", data='{"name":"emb"}', timeout=10)
        assert deleted.status_code == 200
    with OllamaStandIn("127.0.0.1", 0, state_dir=tmp_path) as third:
        assert _tags(third.url) == ["all-minilm:latest"]


def test_failed_pull_is_an_error_line_in_a_200_stream() -> None:
    with OllamaStandIn("127.0.0.1", 0, models=["llama3.2"]) as server:
        resp = _post(server.url, "/api/pull", {"model": "no-such-model-xyz"})
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == "application/x-ndjson"
        assert _ndjson(resp) == [
            {"status": "pulling manifest"},
            {"error": "pull model manifest: file does not exist"},
        ]
        assert _tags(server.url) == ["llama3.2:latest"]
        blocking = _post(server.url, "/api/pull", {"model": "no-such-model-xyz", "stream": False})
        assert blocking.status_code == 500
        assert blocking.headers["Content-Type"] == "application/json"


def test_models_file_registry_and_cli(tmp_path: Path) -> None:
    models = tmp_path / "models.json"
    models.write_text(
        json.dumps(
            {
                "installed": [{"name": "qwen2.5-coder:32b", "response": "def f(): pass"}],
                "registry": [{"name": "team/coder:v1", "capabilities": ["completion"]}],
            }
        )
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, str(STANDIN), "--host", "127.0.0.1", "--port", str(port)]
        + ["--version", "0.14.2", "--models", str(models)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        assert "Listening on 127.0.0.1" in proc.stderr.readline()
        url = f"http://127.0.0.1:{port}"
        assert requests.get(url + "/api/version", timeout=10).json() == {"version": "0.14.2"}
        assert _tags(url) == ["qwen2.5-coder:32b"]
        reply = _post(
            url,
            "/api/generate",
            {"model": "qwen2.5-coder:32b", "prompt": "code", "stream": False},
        ).json()
        assert reply["response"] == "def f(): pass"
        assert _ndjson(_post(url, "/api/pull", {"model": "team/coder:v1"}))[-1] == {
            "status": "success"
        }
        assert sorted(_tags(url)) == ["qwen2.5-coder:32b", "team/coder:v1"]
        owners = {
            m["id"]: m["owned_by"]
            for m in requests.get(url + "/v1/models", timeout=10).json()["data"]
        }
        assert owners == {"qwen2.5-coder:32b": "library", "team/coder:v1": "team"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --------------------------------------------------------------------------- streaming


def _timed_lines(resp: requests.Response, start: float) -> Iterator[tuple[float, bytes]]:
    for line in resp.iter_lines():
        if line:
            yield time.monotonic() - start, line


def test_chat_stream_really_streams() -> None:
    models = [{"name": "llama3.2", "token_delay": 0.15}]
    with OllamaStandIn("127.0.0.1", 0, models=models) as server:
        body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
        start = time.monotonic()
        with _post(server.url, "/api/chat", body, stream=True) as resp:
            arrivals = list(_timed_lines(resp, start))
        assert len(arrivals) >= 5
        first, last = arrivals[0][0], arrivals[-1][0]
        # the first line was on the wire long before the last one was produced
        assert first < 0.1 and last - first >= 0.15 * (len(arrivals) - 2)
        assert json.loads(arrivals[-1][1])["done"] is True


def test_pull_progress_really_streams() -> None:
    models = {"registry": [{"name": "llama3.2", "pull_delay": 0.1}]}
    with OllamaStandIn("127.0.0.1", 0, models=models) as server:
        start = time.monotonic()
        with _post(server.url, "/api/pull", {"model": "llama3.2"}, stream=True) as resp:
            arrivals = list(_timed_lines(resp, start))
        assert json.loads(arrivals[0][1]) == {"status": "pulling manifest"}
        assert json.loads(arrivals[-1][1]) == {"status": "success"}
        assert arrivals[0][0] < 0.08 and arrivals[-1][0] - arrivals[0][0] >= 0.5


def test_queue_limit_answers_503_while_busy() -> None:
    models = [{"name": "llama3.2", "token_delay": 0.1}]
    with OllamaStandIn("127.0.0.1", 0, models=models, max_queue=1) as server:
        body = {"model": "llama3.2", "prompt": "hi"}
        with _post(server.url, "/api/generate", body, stream=True) as slow:
            lines = slow.iter_lines()
            next(lines)  # the first request is generating now
            busy = _post(server.url, "/api/generate", body)
            assert busy.status_code == 503
            assert busy.json() == {
                "error": "server busy, please try again.  maximum pending requests exceeded"
            }
            rest = [json.loads(line) for line in lines if line]
        assert rest[-1]["done"] is True
        assert _post(server.url, "/api/generate", {**body, "stream": False}).status_code == 200


def test_openai_stream_error_midstream() -> None:
    models = [{"name": "llama3.2", "fail_after": 1}]
    with OllamaStandIn("127.0.0.1", 0, models=models) as server:
        body = {
            "model": "llama3.2",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
        }
        resp = _post(server.url, "/v1/chat/completions", body)
        assert resp.status_code == 200
        events = parse_body("sse-data", resp.content, None)
        assert len(events) == 2 and events[-1]["data"]["model"] == ""
        assert events[-1]["data"]["choices"][0]["delta"] == {"content": ""}
        messages = {
            "model": "llama3.2",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
        }
        cut = parse_body("sse-event", _post(server.url, "/v1/messages", messages).content, None)
        assert [e["event"] for e in cut] == [
            "message_start",
            "content_block_start",
            "content_block_delta",
        ]


# --------------------------------------------------------------------------- keep-alive


def test_load_unload_and_keep_alive_drive_ps() -> None:
    with OllamaStandIn("127.0.0.1", 0, models=BASE_MODELS) as server:
        url = server.url
        assert requests.get(url + "/api/ps", timeout=10).json() == {"models": []}
        load = _post(url, "/api/generate", {"model": "qwen3", "keep_alive": -1}).json()
        assert load["done_reason"] == "load"
        _post(url, "/api/chat", {"model": "llama3.2", "messages": [], "keep_alive": "10m"})
        ps = requests.get(url + "/api/ps", timeout=10).json()["models"]
        assert [m["name"] for m in ps] == ["qwen3:latest", "llama3.2:latest"]
        assert int(ps[0]["expires_at"][:4]) >= 2300  # keep_alive -1: ~292 years
        assert ps[0]["size"] == ps[0]["size_vram"] and ps[0]["context_length"] == 4096
        # a request without keep_alive keeps the pinned duration
        _post(url, "/api/generate", {"model": "qwen3", "prompt": "hi", "stream": False})
        ps = requests.get(url + "/api/ps", timeout=10).json()["models"]
        assert int(ps[0]["expires_at"][:4]) >= 2300
        unload = _post(url, "/api/generate", {"model": "qwen3", "keep_alive": 0}).json()
        assert unload["done_reason"] == "unload"
        assert server.running() == ["llama3.2:latest"]
        bad = _post(url, "/api/generate", {"model": "qwen3", "keep_alive": "3600"})
        assert bad.status_code == 400
        assert bad.json() == {"error": 'time: missing unit in duration "3600"'}


def test_tool_call_round_trip() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "required": ["city"],
                    "properties": {"city": {"type": "string"}},
                },
            },
        }
    ]
    with OllamaStandIn("127.0.0.1", 0, models=BASE_MODELS) as server:
        ask = {"role": "user", "content": "What is the weather in Oslo?"}
        first = _post(
            server.url,
            "/v1/chat/completions",
            {"model": "llama3.2", "messages": [ask], "tools": tools},
        ).json()
        call = first["choices"][0]["message"]["tool_calls"][0]
        assert json.loads(call["function"]["arguments"]) == {"city": "Oslo"}
        follow = [
            ask,
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "12 degrees"},
        ]
        second = _post(
            server.url,
            "/v1/chat/completions",
            {"model": "llama3.2", "messages": follow, "tools": tools},
        ).json()
        assert second["choices"][0]["finish_reason"] == "stop"
        assert "12 degrees" in second["choices"][0]["message"]["content"]
        embed = _post(server.url, "/api/chat", {"model": "all-minilm", "messages": [ask]})
        assert embed.json() == {"error": '"all-minilm" does not support chat'}


# --------------------------------------------------------------------------- version gates

MESSAGES = {"model": "llama3.2", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
CHAT_STREAM = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "Hi"}],
    "stream": True,
}


def _request(version: str, method: str, path: str, body: Any = None) -> requests.Response:
    with OllamaStandIn("127.0.0.1", 0, version=version, models=BASE_MODELS) as server:
        data = json.dumps(body) if body is not None else None
        return requests.request(method, server.url + path, data=data, timeout=30)


@pytest.mark.parametrize(
    ("version", "method", "path", "body", "status", "content_type"),
    [
        ("0.13.5", "POST", "/v1/messages", MESSAGES, 404, "text/plain"),
        ("0.14.0", "POST", "/v1/messages", MESSAGES, 200, "application/json"),
        (
            "0.13.2",
            "POST",
            "/v1/responses",
            {"model": "llama3.2", "input": "Hi"},
            404,
            "text/plain",
        ),
        (
            "0.13.3",
            "POST",
            "/v1/responses",
            {"model": "llama3.2", "input": "Hi"},
            200,
            "application/json",
        ),
        ("0.6.8", "GET", "/api/pull", None, 404, "text/plain"),
        ("0.7.0", "GET", "/api/pull", None, 405, "text/plain"),
        ("0.1.37", "GET", "/api/ps", None, 404, "text/plain"),
        ("0.1.38", "GET", "/api/ps", None, 200, "application/json; charset=utf-8"),
        ("0.2.5", "POST", "/api/embed", {"model": "all-minilm", "input": "x"}, 404, "text/plain"),
        ("0.33.0-rc2", "POST", "/v1/messages/count_tokens", MESSAGES, 404, "text/plain"),
    ],
)
def test_route_gates(
    version: str, method: str, path: str, body: Any, status: int, content_type: str
) -> None:
    resp = _request(version, method, path, body)
    assert (resp.status_code, resp.headers["Content-Type"]) == (status, content_type)
    if status == 404 and content_type == "text/plain":
        assert resp.content == b"404 page not found"


def test_version_ordering_and_report() -> None:
    assert version_key("0.33.0-rc2") < version_key("0.33.0") < version_key("0.33.1")
    assert version_key("0.9.0") < version_key("0.10.0")
    assert _request("0.33.0-rc2", "GET", "/api/version").json() == {"version": "0.33.0-rc2"}
    assert _request("0.14.2", "HEAD", "/api/version").content == b""


def test_gate_responses_object_grows_at_0_14_2() -> None:
    body = {"model": "llama3.2", "input": "Hi"}
    legacy = _request("0.14.1", "POST", "/v1/responses", body).json()
    full = _request("0.14.2", "POST", "/v1/responses", body).json()
    assert "completed_at" not in legacy and "annotations" not in legacy["output"][0]["content"][0]
    assert isinstance(full["completed_at"], int) and full["tools"] == []


def test_gate_openai_stream_format_at_0_32_6() -> None:
    old = parse_body(
        "sse-data", _request("0.32.5", "POST", "/v1/chat/completions", CHAT_STREAM).content, None
    )
    new = parse_body(
        "sse-data", _request("0.32.6", "POST", "/v1/chat/completions", CHAT_STREAM).content, None
    )
    assert all(e["data"]["choices"][0]["delta"].get("role") for e in old[:-1])
    assert old[-2]["data"]["choices"][0]["finish_reason"] == "stop"
    assert [bool(e["data"]["choices"][0]["delta"].get("role")) for e in new[:-2]] == [True] + [
        False
    ] * (len(new) - 3)
    assert new[-2]["data"]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}


def test_gate_anthropic_usage_at_0_15_5() -> None:
    stream = {**MESSAGES, "stream": True}
    old = parse_body("sse-event", _request("0.15.4", "POST", "/v1/messages", stream).content, None)
    new = parse_body("sse-event", _request("0.15.5", "POST", "/v1/messages", stream).content, None)
    assert set(old[-2]["data"]["usage"]) == {"output_tokens"}
    assert set(new[-2]["data"]["usage"]) == {"input_tokens", "output_tokens"}
    assert old[0]["data"]["message"]["usage"]["input_tokens"] == 0
    assert new[0]["data"]["message"]["usage"]["input_tokens"] >= 1


def test_gate_tags_show_and_ps_fields() -> None:
    old_tags = _request("0.29.0", "GET", "/api/tags").json()["models"][0]
    new_tags = _request("0.30.0", "GET", "/api/tags").json()["models"][0]
    assert "capabilities" not in old_tags and new_tags["capabilities"] == ["completion", "tools"]
    assert _request("0.29.0", "POST", "/api/show", {"model": "nope"}).json() == {
        "error": "model 'nope' not found"
    }
    assert _request("0.30.0", "POST", "/api/show", {"model": "nope"}).json() == {
        "error": "model 'nope:latest' not found"
    }
    with OllamaStandIn(
        "127.0.0.1", 0, version="0.9.6", models={"installed": BASE_MODELS, "loaded": ["llama3.2"]}
    ) as server:
        old_ps = requests.get(server.url + "/api/ps", timeout=10).json()["models"][0]
    assert "context_length" not in old_ps


# --------------------------------------------------------------------------- Go wire format


def test_go_json_encoding() -> None:
    assert go_json({"a": 1.0, "b": 0.9, "c": 1e-7, "d": 1e21, "e": 1e-5, "f": "<&>"}) == (
        '{"a":1,"b":0.9,"c":1e-7,"d":1e+21,"e":0.00001,"f":"\\u003c\\u0026\\u003e"}'
    )
    assert go_json(["\u2028", "é", "\x01", None, True]) == '["\\u2028","é","\\u0001",null,true]'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "EOF"),
        (b"  \n", "EOF"),
        (b"{bad", "invalid character 'b' looking for beginning of object key string"),
        (b"{invalid json", "invalid character 'i' looking for beginning of object key string"),
        (b"x", "invalid character 'x' looking for beginning of value"),
        (b'{"a" 1}', "invalid character '1' after object key"),
        (b'{"a":1 "b":2}', "invalid character '\"' after object key:value pair"),
        (b'{"a":tru}', "invalid character '}' in literal true (expecting 'e')"),
        (b'{"a":[1,2', "unexpected EOF"),
    ],
)
def test_go_decoder_messages(body: bytes, message: str) -> None:
    with pytest.raises(GoJSONError) as err:
        go_decode(body)
    assert err.value.message == message


def test_bad_bodies_on_the_wire() -> None:
    with OllamaStandIn("127.0.0.1", 0, models=BASE_MODELS) as server:
        resp = requests.post(server.url + "/api/chat", data=b"{bad", timeout=10)
        assert (resp.status_code, resp.content) == (
            400,
            b'{"error":"invalid character \'b\' looking for beginning of object key string"}',
        )
        typed = _post(server.url, "/api/chat", {"model": 3})
        assert typed.json() == {
            "error": "json: cannot unmarshal number into Go struct field "
            "ChatRequest.model of type string"
        }
        redirect = requests.get(server.url + "/api/tags/", timeout=10, allow_redirects=False)
        assert (redirect.status_code, redirect.headers["Location"]) == (301, "/api/tags")
        wrong = requests.post(server.url + "/api/tags", timeout=10)
        assert (wrong.status_code, wrong.headers["Allow"]) == (405, "HEAD, GET")


def test_concurrent_requests() -> None:
    with OllamaStandIn("127.0.0.1", 0, models=BASE_MODELS) as server:
        results: list[int] = []

        def worker() -> None:
            body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
            results.append(_post(server.url, "/api/chat", body).status_code)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert results == [200] * 8
