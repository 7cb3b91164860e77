"""Warm at boot: the ``com.ollama.warm`` job, rendered by ``deploys/server_upkeep.py``, run by
the launchctl stand-in (which really supervises plists) next to an Ollama API stand-in run by
the same launchd as ``com.ollama``. Ollama comes up -> the warm models are loaded with their
one context size and keep-alive; Ollama restarted (``kickstart -k``), or stopped and started
again -> loaded again; nothing changes -> the job does nothing and logs nothing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from deploys.contexts import model_contexts
from deploys.server_upkeep import LABEL_WARM, warm_arguments, warm_body_of, warm_plist
from operations.templates import launchd_plist

REPO = Path(__file__).resolve().parents[1]
STANDINS = REPO / "tests" / "standins"
IS_ROOT = os.geteuid() == 0
#: The poll interval of the job under test (seconds): short, the test waits a few of them.
POLL = 0.2
SERVER = {"ollama_context_length": 16384,
          "ollama_models": [{"name": "qwen2.5-coder:7b", "warm": True},
                            {"name": "llama3.2", "warm": True, "context_length": 8192},
                            "qwen3"]}
WARM = ["qwen2.5-coder:7b", "llama3.2:latest", "qwen3:latest"]  # qwen3: not pulled yet


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Launchd:
    def __init__(self, state: Path, home: Path) -> None:
        state.mkdir()
        home.mkdir()
        self.env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "MACOS_STANDIN_STATE": str(state),
                    "MACOS_STANDIN_REAL_NET": "0", "HOME": str(home), "LANG": "C.UTF-8"}
        self.domain = "system" if IS_ROOT else f"user/{os.getuid()}"
        self.mode = "daemon" if IS_ROOT else "agent"

    def __call__(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(STANDINS / "macos" / "launchctl"), *args],
                              capture_output=True, text=True, env=self.env, timeout=timeout)

    def shutdown(self) -> None:
        """Stop every job (``standin-reset``), then SIGKILL whatever of this launchd is still
        alive, however the test ended: its supervisors (their command line names a job dir
        of this state dir) and the process groups of its jobs."""
        state = Path(self.env["MACOS_STANDIN_STATE"])
        groups = set()
        for status in state.rglob("status.json"):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                groups.add(int(json.loads(status.read_text()).get("pid") or 0))
        with contextlib.suppress(subprocess.TimeoutExpired):
            self("standin-reset", timeout=120)
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                if b"__supervise" in argv and any(a.startswith(bytes(state)) for a in argv):
                    os.kill(int(proc.name), signal.SIGKILL)
        for group in groups - {0}:
            with contextlib.suppress(OSError):
                os.killpg(group, signal.SIGKILL)

    def load(self, path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o644)
        result = self("bootstrap", self.domain, str(path))
        assert result.returncode == 0, result.stderr


def _ps(port: int) -> dict[str, int] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/ps", timeout=2) as resp:
            return {m["name"]: m.get("context_length") for m in json.load(resp)["models"]}
    except OSError:
        return None


def _wait(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def lab(tmp_path):
    launchd = Launchd(tmp_path / "state", tmp_path / "home")
    try:
        yield launchd
    finally:  # also when the test failed or was interrupted: no supervisor, no job left
        launchd.shutdown()


def test_warm_job_arguments_are_the_deploys_warm_up() -> None:
    contexts = model_contexts(SERVER)
    args = warm_arguments("127.0.0.1:11434", WARM, -1, contexts, 10)
    assert args[:3] == ["/bin/sh", "-c", args[2]] and args[3:6] == ["warm-models",
                                                                   "127.0.0.1:11434", "10"]
    assert warm_body_of(args, "qwen2.5-coder:7b") == {
        "model": "qwen2.5-coder:7b", "keep_alive": -1, "options": {"num_ctx": 16384}}
    assert warm_body_of(args, "llama3.2:latest")["options"] == {"num_ctx": 8192}


def test_models_are_loaded_whenever_ollama_starts(lab: Launchd, tmp_path: Path) -> None:
    port = _free_port()
    models = tmp_path / "models.json"
    models.write_text(json.dumps(["qwen2.5-coder:7b", "llama3.2"]))  # qwen3: pullable
    ollama_log, warm_log = tmp_path / "ollama.log", tmp_path / "warm.log"
    lab.load(tmp_path / "com.ollama.plist", launchd_plist(
        "com.ollama", [sys.executable, str(STANDINS / "ollama_api.py"), "--port", str(port),
                       "--models", str(models), "--context-length", "16384",
                       "--state-dir", str(tmp_path / "ollama-store")],  # pulls survive restarts
        str(ollama_log), str(ollama_log), throttle_interval=1,
        session_types=() if IS_ROOT else ("Background",)))
    assert _wait(lambda: _ps(port) == {}), "the Ollama stand-in did not come up"
    lab.load(tmp_path / f"{LABEL_WARM}.plist", warm_plist(
        f"127.0.0.1:{port}", WARM, -1, model_contexts(SERVER), mode=lab.mode,
        log_path=str(warm_log), poll=POLL))
    wanted = {"qwen2.5-coder:7b": 16384, "llama3.2:latest": 8192}  # each its one context
    assert _wait(lambda: _ps(port) == wanted), (_ps(port), warm_log.read_text())

    def loaded_lines() -> int:
        return warm_log.read_text().count(" loaded (")

    # qwen3 is not there yet: one FAILED line, retried at every poll without a new line
    assert _wait(lambda: "FAILED (retried): qwen3:latest: " in warm_log.read_text())
    time.sleep(POLL * 8)
    assert loaded_lines() == 2 and warm_log.read_text().count("FAILED") == 1
    pull = urllib.request.Request(f"http://127.0.0.1:{port}/api/pull", method="POST",
                                  data=json.dumps({"model": "qwen3", "stream": False}).encode())
    with urllib.request.urlopen(pull, timeout=30) as resp:
        assert json.load(resp)["status"] == "success"
    wanted["qwen3:latest"] = 16384
    assert _wait(lambda: _ps(port) == wanted), warm_log.read_text()
    # only the one that had failed is logged again (the line follows the load: wait for it)
    assert _wait(lambda: loaded_lines() >= 3), warm_log.read_text()
    assert loaded_lines() == 3
    time.sleep(POLL * 8)  # steady state: nothing to do, nothing logged
    assert loaded_lines() == 3 and warm_log.read_text().count("FAILED") == 1

    # Ollama restarted by launchd: its models are gone, the job loads them again
    result = lab("kickstart", "-k", f"{lab.domain}/com.ollama")
    assert result.returncode == 0, result.stderr
    assert _wait(lambda: loaded_lines() == 6), warm_log.read_text()
    assert _wait(lambda: _ps(port) == wanted)

    # Ollama stopped (nothing answers), then started again: the job waits, then loads
    assert lab("bootout", f"{lab.domain}/com.ollama").returncode == 0
    assert _wait(lambda: "does not answer" in warm_log.read_text()), warm_log.read_text()
    result = lab("bootstrap", lab.domain, str(tmp_path / "com.ollama.plist"))
    assert result.returncode == 0, result.stderr
    assert _wait(lambda: loaded_lines() == 9), warm_log.read_text()
    assert _wait(lambda: _ps(port) == wanted)
    log = warm_log.read_text()
    # three starts, each seen once: as "answers again" or (a restart faster than one poll)
    # as "its models vanished"
    starts = log.count("Ollama answers: loading the warm models")
    assert starts >= 2 and starts + log.count("no model loaded any more") == 3, log
    assert all(" warm-models: " in line for line in log.splitlines())  # timestamped lines
