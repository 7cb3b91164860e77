"""The shell the server operations run on the Mac, executed for real on this machine:

* the pull / delete / warm-up / check scripts against the Ollama API stand-in (real HTTP,
  streamed NDJSON, ``{"error": ...}`` inside a 200 stream), with the system ``awk`` and with
  ``original-awk`` (the one-true-awk macOS ships) when installed;
* ``operations.ollama.converge_models`` (the FunctionCommand body) with a local host;
* the launchd scripts (``load``/``confirm``/``bootout``) against the ``launchctl`` stand-in,
  which really supervises the job: a job that runs is confirmed, one that crash-loops is
  reported with launchd's view and its log.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyinfra.api import StringCommand
from pyinfra.connectors.util import CommandOutput, OutputLine

from facts.launchd import parse_launchctl_print
from facts.ollama import parse_api_response, parse_loaded, parse_models
from operations import launchd
from operations.ollama import (
    check_script,
    converge_models,
    delete_script,
    is_warm,
    pull_script,
    warm_script,
)
from operations.templates import launchd_plist

REPO = Path(__file__).resolve().parents[1]
STANDINS = REPO / "tests" / "standins"
_spec = importlib.util.spec_from_file_location("ollama_api_standin", STANDINS / "ollama_api.py")
ollama_api = importlib.util.module_from_spec(_spec)
sys.modules["ollama_api_standin"] = ollama_api
_spec.loader.exec_module(ollama_api)

AWKS = ["awk"] + (["original-awk"] if shutil.which("original-awk") else [])


def sh(script: str, path_prepend: str | None = None, timeout: float = 120):
    env = dict(os.environ)
    if path_prepend:
        env["PATH"] = f"{path_prepend}:{env['PATH']}"
    return subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture
def awk_dir(request, tmp_path):
    """A directory whose ``awk`` is the awk under test."""
    d = tmp_path / "awk-bin"
    d.mkdir()
    (d / "awk").symlink_to(shutil.which(request.param))
    return str(d)


@pytest.fixture
def ollama():
    models = {"installed": ["llama3.2"], "registry": []}
    with ollama_api.OllamaStandIn("127.0.0.1", 0, version="0.32.15", models=models) as srv:
        yield srv


def address(srv) -> str:
    return srv.url.split("://", 1)[1].rstrip("/")


def tags(srv) -> set[str]:
    out = sh(f"curl -s -w '\\n%{{http_code}}\\n' http://{address(srv)}/api/tags")
    return {m["name"] for m in parse_models(parse_api_response(out.stdout.splitlines()))}


@pytest.mark.parametrize("awk_dir", AWKS, indirect=True)
def test_pull_shows_progress_reports_error_lines_and_continues(ollama, awk_dir):
    script = pull_script(
        ["qwen2.5-coder:7b", "no-such-model:latest", "llama3.2:1b"], address(ollama)
    )
    result = sh(script, awk_dir)
    lines = result.stdout.splitlines()
    assert result.returncode == 1  # one model failed ...
    assert "qwen2.5-coder:7b: success" in lines and "llama3.2:1b: success" in lines  # ... not all
    assert "qwen2.5-coder:7b: pulling manifest" in lines
    progress = [
        line for line in lines if line.startswith("qwen2.5-coder:7b: pulling ") and "%" in line
    ]
    assert progress and progress[-1].split()[-4] == "100%"
    assert "no-such-model:latest: error: pull model manifest: file does not exist" in lines
    assert "##failed no-such-model:latest pull model manifest: file does not exist" in lines
    assert {"qwen2.5-coder:7b", "llama3.2:1b", "llama3.2:latest"} <= tags(ollama)


@pytest.mark.parametrize("awk_dir", AWKS, indirect=True)
def test_pull_without_server_fails_with_curls_message(awk_dir):
    result = sh(pull_script(["llama3.2:latest"], "127.0.0.1:9"), awk_dir)
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("##failed ")]
    assert failed and "curl" in failed[0]


def test_warm_loads_with_keep_alive_and_context_then_counts_as_warm(ollama):
    result = sh(warm_script(["llama3.2:latest", "nope:latest"], address(ollama), -1, 8192))
    assert result.returncode == 1
    assert "llama3.2:latest: loaded" in result.stdout
    assert "##failed nope:latest" in result.stdout
    out = sh(f"curl -s -w '\\n%{{http_code}}\\n' http://{address(ollama)}/api/ps")
    loaded = {m["name"]: m for m in parse_loaded(parse_api_response(out.stdout.splitlines()))}
    assert is_warm(loaded["llama3.2:latest"], -1, 8192)
    assert not is_warm(loaded["llama3.2:latest"], -1, 32768)  # other num_ctx: reload


def test_delete_and_check(ollama):
    assert sh(delete_script(["llama3.2:latest"], address(ollama))).returncode == 0
    assert "llama3.2:latest" not in tags(ollama)
    failed = sh(delete_script(["llama3.2:latest"], address(ollama)))
    assert failed.returncode == 1 and "##failed llama3.2:latest HTTP 404" in failed.stdout
    ok = sh(check_script(address(ollama), 5, None))
    assert ok.returncode == 0 and ok.stdout.startswith('version {"version":"0.32.15"}')
    down = sh(check_script("127.0.0.1:9", 1, None))
    assert down.returncode == 1 and "no answer" in down.stderr


class LocalHost:
    """Just enough of pyinfra's Host for FunctionCommand bodies: run commands locally."""

    name = "local"
    print_prefix = "[local] "

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.logged: list[str] = []

    def run_shell_command(self, command: StringCommand, print_output: bool = False, **_):
        text = command.get_raw_value()
        self.commands.append(text)
        result = sh(text)
        lines = [OutputLine("stdout", line) for line in result.stdout.splitlines()]
        lines += [OutputLine("stderr", line) for line in result.stderr.splitlines()]
        return result.returncode == 0, CommandOutput(lines)

    def log_styled(self, message: str, **_) -> None:
        self.logged.append(message)


def test_converge_models_pulls_prunes_warms_and_reports(ollama):
    host = LocalHost()
    ok = converge_models(
        None,
        host,
        ["qwen2.5-coder:7b", "broken:latest"],
        address(ollama),
        True,
        0,
        warm=["qwen2.5-coder:7b", "broken:latest"],
        keep_alive="10m",
        num_ctx=4096,
    )
    assert ok is False
    assert tags(ollama) == {"qwen2.5-coder:7b"}  # pulled; llama3.2 pruned
    assert host.logged[-1] == (
        "ollama models failed: broken:latest pull model manifest: file does not exist"
    )
    # second run: nothing missing, nothing extra; only the tags read and the warm-up
    host2 = LocalHost()
    assert converge_models(None, host2, ["qwen2.5-coder:7b"], address(ollama), True, 0) is True
    assert len(host2.commands) == 1


# -- launchd scripts against the launchctl stand-in ------------------------------------------


@pytest.fixture
def macos_state(tmp_path, monkeypatch):
    state = tmp_path / "macos-state"
    state.mkdir(mode=0o1777)
    monkeypatch.setenv("MACOS_STANDIN_STATE", str(state))
    monkeypatch.setenv("PATH", f"{STANDINS / 'macos'}:{os.environ['PATH']}")
    yield state
    subprocess.run(["launchctl", "standin-reset"], capture_output=True)


#: the launchd scripts load LaunchDaemons into the system domain, as the server role does; a
#: normal user has only user/<uid>, which (like macOS') refuses a plist without
#: LimitLoadToSessionType=Background (125), so these tests need root
needs_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root: loads LaunchDaemons into the launchctl stand-in's system domain",
)


def domain() -> str:
    return "system" if os.geteuid() == 0 else f"user/{os.getuid()}"


def write_job(tmp_path: Path, label: str, argv: list[str]) -> tuple[Path, Path]:
    log = tmp_path / f"{label}.log"
    path = tmp_path / f"{label}.plist"
    path.write_text(launchd_plist(label, argv, str(log), str(log)))
    path.chmod(0o644)
    return path, log


@needs_root
def test_load_and_confirm_a_running_job(tmp_path, macos_state):
    path, _ = write_job(tmp_path, "com.test.ok", ["/bin/sleep", "300"])
    loaded = sh(launchd.load_command("com.test.ok", str(path), [domain()]))
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    confirmed = sh(launchd.confirm_command("com.test.ok", [domain()], None, wait=10))
    assert confirmed.returncode == 0, confirmed.stderr
    assert confirmed.stdout.startswith(f"launchd: {domain()}/com.test.ok running: running ")
    printed = sh(f"launchctl print {domain()}/com.test.ok")
    job = parse_launchctl_print(printed.stdout.splitlines(), printed.returncode)
    assert job["state"] == "running" and job["arguments"] == ["/bin/sleep", "300"]
    gone = sh(launchd.wait_gone_command(f"{domain()}/com.test.ok"))
    assert gone.returncode == 0
    assert sh(f"launchctl print {domain()}/com.test.ok").returncode == 113


@needs_root
def test_confirm_reports_a_crash_loop_with_its_log(tmp_path, macos_state):
    path, log = write_job(
        tmp_path,
        "com.test.crash",
        ["/bin/sh", "-c", "echo 'bind: address already in use' >&2; exit 3"],
    )
    assert sh(launchd.load_command("com.test.crash", str(path), [domain()])).returncode == 0
    start = time.monotonic()
    result = sh(launchd.confirm_command("com.test.crash", [domain()], str(log), wait=6))
    assert result.returncode == 1
    assert time.monotonic() - start < 20
    assert f"launchd: {domain()}/com.test.crash is not running:" in result.stderr
    assert "last exit code = 3" in result.stderr
    assert "bind: address already in use" in result.stderr


def test_load_falls_back_when_the_first_domain_refuses(tmp_path, macos_state):
    if os.geteuid() != 0:
        pytest.skip("needs root to address another user's domains")
    path, _ = write_job(tmp_path, "com.test.fallback", ["/bin/sleep", "300"])
    # gui/0 does not exist (nobody at the console): bootstrap fails, the system domain takes it
    result = sh(launchd.load_command("com.test.fallback", str(path), ["gui/0", "system"]))
    assert result.returncode == 0, result.stdout + result.stderr
    confirm = sh(launchd.confirm_command("com.test.fallback", ["gui/0", "system"], None, 10))
    assert confirm.returncode == 0 and "system/com.test.fallback running" in confirm.stdout


@needs_root
def test_bootstrap_is_not_idempotent_but_our_recipe_is(tmp_path, macos_state):
    path, _ = write_job(tmp_path, "com.test.twice", ["/bin/sleep", "300"])
    first = sh(launchd.load_command("com.test.twice", str(path), [domain()]))
    second = sh(launchd.load_command("com.test.twice", str(path), [domain()]))
    assert first.returncode == 0
    assert "Bootstrap failed: 5" in second.stdout  # launchctl's answer: already loaded ...
    assert second.returncode == 0  # ... and the job is loaded: that is what the step checks
    assert (
        json.loads(
            json.dumps(
                parse_launchctl_print(
                    sh(f"launchctl print {domain()}/com.test.twice").stdout.splitlines(), 0
                )
            )
        )["runs"]
        == 1
    )


# -- the detached network change and its rollback ---------------------------------------------


@pytest.fixture
def network_state(macos_state, monkeypatch):
    monkeypatch.setenv("MACOS_STANDIN_EUID", "0")  # the setters need root
    monkeypatch.setenv("MACOS_STANDIN_REAL_NET", "0")  # never touch a real interface
    return macos_state


APPLY = [
    "networksetup -setmanual Ethernet 192.168.100.10 255.255.255.0 192.168.100.1",
    "networksetup -setdnsservers Ethernet 192.168.100.1",
]
RESTORE = ["networksetup -setdhcp Ethernet", "networksetup -setdnsservers Ethernet empty"]


def wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_unconfirmed_network_change_rolls_back(tmp_path, network_state):
    from operations.macos import confirm_network_command, detached_network_command

    work = str(tmp_path / "netapply")
    assert sh(detached_network_command(APPLY, RESTORE, 3, work)).returncode == 0
    assert wait_for(lambda: "Manual" in sh("networksetup -getinfo Ethernet").stdout, 10)
    again = sh(detached_network_command(APPLY, RESTORE, 3, work))
    assert again.returncode == 1 and "still waiting for confirmation" in again.stderr
    # nobody confirms: the Mac puts DHCP back by itself
    assert wait_for(lambda: (tmp_path / "netapply" / "rolled-back").exists(), 15)
    assert sh("networksetup -getinfo Ethernet").stdout.startswith("DHCP Configuration")
    late = sh(confirm_network_command(work))
    assert late.returncode == 1 and "rolled back" in late.stderr


def test_confirmed_network_change_stays(tmp_path, network_state):
    from operations.macos import confirm_network_command, detached_network_command

    work = str(tmp_path / "netapply")
    assert sh(detached_network_command(APPLY, RESTORE, 3, work)).returncode == 0
    assert wait_for(lambda: "Manual" in sh("networksetup -getinfo Ethernet").stdout, 10)
    assert sh(confirm_network_command(work)).returncode == 0
    time.sleep(4)  # past the rollback window
    assert not (tmp_path / "netapply" / "rolled-back").exists()
    assert sh("networksetup -getinfo Ethernet").stdout.startswith("Manual Configuration")
    assert sh("networksetup -getdnsservers Ethernet").stdout.strip() == "192.168.100.1"
