"""Log rotation on the server: the rendered ``/etc/newsyslog.d`` file, field by field
(``newsyslog.conf(5)``: logfile, owner:group, mode, count, size in KB, when, flags), and the
``log_rotate`` data that drives it."""

from __future__ import annotations

import pytest

from deploys.server_upkeep import (
    DEFAULT_LOG_ROTATE,
    NEWSYSLOG_CONF,
    log_rotate,
    parse_newsyslog,
    render_newsyslog,
    upkeep_files,
    upkeep_settings,
)

LOGS = ["/tmp/ollama.stdout.log", "/tmp/ollama.stderr.log", "/tmp/ollama.warm.log",
        "/Users/admin/Library/Logs/haproxy.log"]


def test_rendered_fields() -> None:
    text = render_newsyslog(LOGS + ["/tmp/ollama.stderr.log"], "admin", size_kb=2048, count=3)
    assert text.startswith("# Managed by pyinfra (self-sovereign Ollama)")
    entries = parse_newsyslog(text)
    assert [e["logfile"] for e in entries] == LOGS  # each log once, in order
    for e in entries:
        assert e == {"logfile": e["logfile"], "owner_group": "admin:staff", "mode": "644",
                     "count": "3", "size": "2048", "when": "*", "flags": "N"}


def test_defaults_and_place() -> None:
    assert NEWSYSLOG_CONF == "/etc/newsyslog.d/org.self-sovereign-ollama.conf"
    assert log_rotate({}) == ({"size_kb": 10240, "count": 5}, []) == (DEFAULT_LOG_ROTATE, [])
    assert log_rotate({"log_rotate": {"count": 9}}) == ({"size_kb": 10240, "count": 9}, [])
    assert log_rotate({"log_rotate": False}) == (None, [])  # no rotation: the file is removed
    upkeep, errors = upkeep_settings({})
    assert errors == [] and NEWSYSLOG_CONF in upkeep_files(upkeep)


@pytest.mark.parametrize("value, problem", [
    ({"size_kb": 0}, "log_rotate.size_kb: 0 (expected a whole number from 1 to 100000000)"),
    ({"count": "5"}, "log_rotate.count: '5' (expected a whole number from 0 to 1000)"),
    ({"size": 10}, "log_rotate.size: 10 (unknown field: size_kb, count)"),
    ("10M", "log_rotate: '10M' (expected {'size_kb': N, 'count': N} or False)"),
])
def test_bad_log_rotate(value: object, problem: str) -> None:
    assert log_rotate({"log_rotate": value}) == (None, [problem])
    assert upkeep_settings({"log_rotate": value})[1] == [problem]


def test_a_path_newsyslog_cannot_read_is_refused() -> None:
    with pytest.raises(ValueError, match="spaces"):
        render_newsyslog(["/tmp/my logs/ollama.log"], "admin", 10, 1)
