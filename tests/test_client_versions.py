"""deploys/versions.py: real version comparison, the compatibility table, asking a server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploys import versions
from deploys.versions import Version, check, compare, parse_version, supports

OLLAMA_STANDIN = Path(__file__).parent / "standins" / "ollama_api.py"

# (older, newer): every pair must order strictly, whatever string order says
ORDERED = [
    ("0.9.7", "0.14.0"),  # string order gets this one wrong
    ("0.13.5", "0.14.0"),
    ("0.14.0-rc1", "0.14.0"),
    ("0.14.0-rc1", "0.14.0-rc2"),
    ("0.14.0-rc2", "0.14.0-rc10"),  # numeric pre-release numbers
    ("0.14.0-alpha", "0.14.0-beta.1"),
    ("0.14.0-beta.1", "0.14.0-rc.1"),
    ("0.14.0.dev1", "0.14.0a1"),  # PEP 440 order: dev < alpha
    ("0.14.0rc1", "0.14.0"),  # PEP 440 spelling
    ("0.14.0", "0.14.1"),
    ("0.33.0-rc2", "0.33.0"),
    ("0.32.15", "0.33.0-rc2"),
    ("1.0", "1.0.1"),
    ("2.0.76", "2.1.39"),
    ("0.86.1", "0.86.10"),
]


@pytest.mark.parametrize(("older", "newer"), ORDERED)
def test_order(older: str, newer: str) -> None:
    assert Version.parse(older) < Version.parse(newer)
    assert Version.parse(newer) > Version.parse(older)
    assert compare(older, newer) == -1 and compare(newer, older) == 1


@pytest.mark.parametrize(("a", "b"), [("0.14", "0.14.0"), ("v0.14.0", "0.14.0"),
                                      ("0.14.0+build.5", "0.14.0"), ("1", "1.0.0")])
def test_equal(a: str, b: str) -> None:
    assert Version.parse(a) == Version.parse(b)
    assert hash(Version.parse(a)) == hash(Version.parse(b))
    assert compare(a, b) == 0


@pytest.mark.parametrize(("text", "release", "pre"), [
    ("ollama version is 0.14.0", (0, 14, 0), None),
    ("2.1.39 (Claude Code)", (2, 1, 39), None),
    ("aider 0.86.1", (0, 86, 1), None),
    ("v0.33.0-rc2", (0, 33, 0), (4, 2)),
    ("Warning: client version is 0.13.5\nollama version is 0.14.0", (0, 13, 5), None),
    ("aider_chat-0.86.1.dist-info", (0, 86, 1), None),
])
def test_parse_from_tool_output(text: str, release: tuple, pre: tuple | None) -> None:
    version = parse_version(text)
    assert version is not None
    assert version.release == release and version.pre == pre


@pytest.mark.parametrize("text", [None, "", "unknown", "ollama"])
def test_parse_nothing(text: str | None) -> None:
    assert parse_version(text) is None
    if text:
        with pytest.raises(ValueError, match="not a version"):
            Version.parse(text)


def test_prerelease_flag_and_text() -> None:
    v = Version.parse("v0.14.0-rc1")
    assert v.is_prerelease and str(v) == "0.14.0-rc1"
    assert not Version.parse("0.14.0").is_prerelease


@pytest.mark.parametrize(("server", "offered"), [
    ("0.14.0", True), ("0.14.1", True), ("0.33.0-rc2", True), ("0.14.0-rc1", False),
    ("0.13.5", False), ("0.9.7", False), ("0.0.0", False), (None, False), ("garbage", False),
])
def test_claude_code_gate(server: str | None, offered: bool) -> None:
    assert supports("claude_code", server) is offered


def test_check_mismatch_is_clear() -> None:
    findings = check({"ollama": "0.13.5", "claude_code": "2.1.39 (Claude Code)", "aider": None})
    assert [(f.level, f.tool) for f in findings] == [("mismatch", "claude_code")]
    message = str(findings[0])
    assert message.startswith("mismatch: Claude Code needs Ollama (server) >= 0.14.0, found 0.13.5")
    assert "/v1/messages" in message and "brew upgrade ollama" in message


def test_check_ok_and_untested() -> None:
    assert check({"ollama": "0.14.0", "claude_code": "2.1.39", "aider": "0.86.1"}) == []
    findings = check({"ollama": "0.34.1", "aider": "0.86.1"})
    assert [(f.level, f.tool) for f in findings] == [("untested", "ollama")]
    assert "0.13.3 .. 0.33.0-rc2" in findings[0].message


def test_check_unknown_server_and_dev_build() -> None:
    unknown = check({"ollama": None}, tools=("claude_code",))
    assert [(f.level, f.tool) for f in unknown] == [("unknown", "claude_code")]
    dev = check({"ollama": "0.0.0"}, tools=("aider",))
    assert [f.level for f in dev] == ["unknown"] and "development build" in dev[0].message


def test_every_table_row_parses() -> None:
    for row in versions.REQUIREMENTS:
        assert row.tool in versions.TOOLS and row.component in versions.TOOLS
        assert parse_version(row.minimum) is not None and row.why and row.evidence
    for row in versions.TESTED:
        assert Version.parse(row.low) < Version.parse(row.high)
    assert versions.CLAUDE_CODE_MIN_OLLAMA == "0.14.0"


# -- fetch_server_version against the Ollama API stand-in -----------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ollama_server(tmp_path):
    if not OLLAMA_STANDIN.exists():
        pytest.skip("the Ollama API stand-in is not in this tree")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(OLLAMA_STANDIN), "--version", "0.13.5", "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.skip(f"stand-in did not start: {proc.stderr.read().decode()[-300:]}")
            time.sleep(0.05)
    versions._SERVER_VERSIONS.clear()
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)
    versions._SERVER_VERSIONS.clear()


def test_fetch_server_version(ollama_server: str) -> None:
    assert versions.fetch_server_version(ollama_server) == ("0.13.5", "")
    assert not supports("claude_code", versions.fetch_server_version(ollama_server)[0])


def test_route_source_sends_nothing_and_names_the_local_address() -> None:
    assert versions.route_source("127.0.0.9") == "127.0.0.1"
    assert versions.route_source("not an address") is None


def test_fetch_unreachable_server_is_unknown() -> None:
    versions._SERVER_VERSIONS.clear()
    url = f"http://127.0.0.1:{_free_port()}"
    version, why = versions.fetch_server_version(url, timeout=1)
    assert version is None and "not reachable" in why and url in why
    versions._SERVER_VERSIONS.clear()
