"""The launchd plists rendered from templates/launchd.plist.j2, parsed with plistlib and checked
key by key against the spec (FUNCTIONALITIES.md "LaunchAgent Configuration") and the launchd
facts of reference/macos-ollama.md §3.7-§3.8."""

from __future__ import annotations

import plistlib

import pytest

from deploys.server_plan import validate_server
from operations.templates import haproxy_plist, ollama_plist


def render(**data) -> dict:
    settings, errors = validate_server(
        "ai-server", {"ssh_user": "admin", "dmz_address": "192.168.100.10", **data}
    )
    assert not errors
    text = ollama_plist(
        settings.environment(),
        mode=settings.service_mode,
        user_name=settings.ollama_user,
        home="/Users/ollama",
        stdout_path=settings.stdout_log,
        stderr_path=settings.stderr_log,
    )
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist')
    return plistlib.loads(text.encode())


def test_launch_agent_matches_the_spec_key_by_key():
    plist = render(ollama_keep_alive="24h", ollama_origins=["http://192.168.100.10:*"])
    assert plist["Label"] == "com.ollama"
    # ProgramArguments: the stable Homebrew path (never a Cellar path), then `serve`
    assert plist["ProgramArguments"] == ["/opt/homebrew/opt/ollama/bin/ollama", "serve"]
    assert plist["EnvironmentVariables"] == {
        "OLLAMA_HOST": "192.168.100.10:11434",  # the DMZ address, always with the port
        "OLLAMA_CONTEXT_LENGTH": "32768",  # always: the one context size (deploys/contexts.py)
        "OLLAMA_KEEP_ALIVE": "24h",
        "OLLAMA_ORIGINS": "http://192.168.100.10:*",
    }
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] is True
    assert plist["StandardOutPath"] == "/tmp/ollama.stdout.log"
    assert plist["StandardErrorPath"] == "/tmp/ollama.stderr.log"
    # loadable from the GUI login and from SSH (user/<uid> is a Background session)
    assert plist["LimitLoadToSessionType"] == ["Aqua", "Background"]
    assert plist["ProcessType"] == "Interactive"
    assert "UserName" not in plist  # a LaunchAgent runs as its user
    assert set(plist) == {
        "Label",
        "ProgramArguments",
        "EnvironmentVariables",
        "RunAtLoad",
        "KeepAlive",
        "LimitLoadToSessionType",
        "ProcessType",
        "StandardOutPath",
        "StandardErrorPath",
    }


def test_unset_settings_are_not_written():
    env = render()["EnvironmentVariables"]
    # OLLAMA_CONTEXT_LENGTH is always written: the one context size (deploys/contexts.py)
    assert env == {"OLLAMA_HOST": "192.168.100.10:11434", "OLLAMA_CONTEXT_LENGTH": "32768"}


@pytest.mark.parametrize(
    "data, host",
    [({"ollama_bind": "all"}, "0.0.0.0:11434"), ({"proxy": "haproxy"}, "127.0.0.1:11434")],
)
def test_bind_modes(data, host):
    assert render(**data)["EnvironmentVariables"]["OLLAMA_HOST"] == host


def test_launch_daemon_runs_as_the_ollama_user_with_home():
    plist = render(ollama_service="daemon", ollama_user="ollama", ollama_context_length=32768)
    assert plist["UserName"] == "ollama"
    assert plist["EnvironmentVariables"] == {
        "HOME": "/Users/ollama",  # launchd does not set HOME for daemons; Ollama needs ~/.ollama
        "OLLAMA_HOST": "192.168.100.10:11434",
        "OLLAMA_CONTEXT_LENGTH": "32768",
    }
    assert "LimitLoadToSessionType" not in plist  # a daemon loads in the system domain
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] is True


def test_configurable_logs_and_xml_escaping():
    plist = render(
        ollama_stdout_log="/Users/admin/Library/Logs/ollama/out.log",
        ollama_stderr_log="/Users/admin/Library/Logs/ollama/err.log",
        ollama_origins="http://a.example/?x=1&y=<2>",
    )
    assert plist["StandardOutPath"] == "/Users/admin/Library/Logs/ollama/out.log"
    assert plist["StandardErrorPath"] == "/Users/admin/Library/Logs/ollama/err.log"
    assert plist["EnvironmentVariables"]["OLLAMA_ORIGINS"] == "http://a.example/?x=1&y=<2>"


def test_haproxy_agent():
    plist = plistlib.loads(haproxy_plist("/Users/admin/.haproxy/haproxy.cfg").encode())
    assert plist == {
        "Label": "com.haproxy",
        "ProgramArguments": [
            "/opt/homebrew/opt/haproxy/bin/haproxy",
            "-f",
            "/Users/admin/.haproxy/haproxy.cfg",
            "-db",
        ],
        "RunAtLoad": True,
        "KeepAlive": True,
        "LimitLoadToSessionType": ["Aqua", "Background"],
        "StandardOutPath": "/tmp/haproxy.log",
        "StandardErrorPath": "/tmp/haproxy.log",
    }
    daemon = plistlib.loads(
        haproxy_plist(
            "/Users/admin/.haproxy/haproxy.cfg", mode="daemon", user_name="ollama"
        ).encode()
    )
    assert daemon["UserName"] == "ollama" and "LimitLoadToSessionType" not in daemon
