"""Ctrl-C in a pyinfra run's first fraction of a second (issue 10, item 8): pyinfra's CLI
(``pyinfra_cli/main.py``) installs a SIGINT handler that prints "Exiting upon user request!"
and exits 0 before it parses the command line; ours (``deploys/interrupt.py``: exit 130) is
installed by ``config.py``, the first of the project's code pyinfra runs. Between the two, a
Ctrl-C still ends the run with status 0 (nothing has been read or contacted yet): the known
limit the README's "Reliability" section gives in milliseconds, measured here.

The moments: right at the start (Python's own handler: killed by SIGINT), in that window
(landed deterministically by sending the signal from inside the process the moment pyinfra
installs its handler), right after ours is installed, once the inventory is loading, and while
connecting to a host that never answers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.router_runs import background, interrupt_when

REPO = Path(__file__).resolve().parents[1]

#: pyinfra's CLI with ``signal.signal`` watched: every SIGINT handler installed is recorded
#: (time since start, name); ``argv[1]`` names the handler after whose installation the process
#: sends itself SIGINT ("-": never), ``argv[2]`` where the record goes, the rest is pyinfra's.
SPY = r"""
import json, os, signal, sys, time
t0 = time.perf_counter()
when, out = sys.argv[1], sys.argv[2]
marks = []
_signal = signal.signal
def spy(num, handler):
    previous = _signal(num, handler)
    if num == signal.SIGINT:
        name = getattr(handler, "__qualname__", str(handler))
        marks.append([name, time.perf_counter() - t0])
        with open(out, "w") as f:
            json.dump(marks, f)
        if when in name:
            os.kill(os.getpid(), signal.SIGINT)
    return previous
signal.signal = spy
import pyinfra_cli.cli as cli
_make = cli.make_inventory
def make_inventory(*args, **kwargs):
    marks.append(["make_inventory", time.perf_counter() - t0])
    with open(out, "w") as f:
        json.dump(marks, f)
    if when == "make_inventory":
        os._exit(0)
    return _make(*args, **kwargs)
cli.make_inventory = make_inventory
from pyinfra_cli.main import main
sys.argv = ["pyinfra", *sys.argv[3:]]
main()
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    return tmp_path / "inventory.py"


@pytest.fixture
def silent_port():
    """A local port that accepts and never says a word (an SSH connect to it hangs)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server
    server.close()


def _write(inventory: Path, port: int) -> Path:
    inventory.write_text(f"hosts = [('silent', {{'ssh_hostname': '127.0.0.1', 'ssh_port': {port},"
                         " 'ssh_connect_timeout': 30})]\n")
    return inventory


def _spy(when: str, inventory: Path, record: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SPY, when, str(record), str(inventory),
                           "exec", "--", "true"], cwd=REPO, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, env=_env())


def test_window_between_pyinfras_handler_and_ours_is_measured(inventory, silent_port, tmp_path):
    """Ours is installed before the inventory is loaded, a few milliseconds after pyinfra's
    (the figures: ``pytest -s``)."""
    _write(inventory, silent_port.getsockname()[1])
    windows = []
    for i in range(5):
        record = tmp_path / f"marks{i}.json"
        run = _spy("make_inventory", inventory, record)
        assert run.returncode == 0, run.stdout + run.stderr
        marks = json.loads(record.read_text())
        names = [name for name, _ in marks]
        assert names == ["main.<locals>._handle_interrupt", "_interrupted", "make_inventory"], marks
        windows.append(marks[1][1] - marks[0][1])
    print(f"\npyinfra's handler -> ours: {', '.join(f'{w * 1000:.1f}' for w in windows)} ms "
          f"(pyinfra's installed {marks[0][1] * 1000:.0f} ms after start)")
    assert max(windows) < 0.25


def test_ctrl_c_right_at_the_start_is_not_success(inventory, silent_port, tmp_path):
    _write(inventory, silent_port.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-m", "pyinfra", str(inventory), "exec", "--",
                             "true"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=_env())
    proc.send_signal(signal.SIGINT)  # long before pyinfra's imports are done (~0.3 s)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0 and b"Exiting upon user request" not in out, out


def test_known_limit_ctrl_c_before_config_py_exits_0(inventory, silent_port, tmp_path):
    """The documented limit: in the window, pyinfra's own handler answers (exit 0)."""
    _write(inventory, silent_port.getsockname()[1])
    run = _spy("_handle_interrupt", inventory, tmp_path / "marks.json")
    assert run.returncode == 0 and "Exiting upon user request!" in run.stdout, \
        run.stdout + run.stderr


def test_ctrl_c_once_ours_is_installed_exits_130(inventory, silent_port, tmp_path):
    _write(inventory, silent_port.getsockname()[1])
    run = _spy("_interrupted", inventory, tmp_path / "marks.json")
    assert run.returncode == 130, run.stdout + run.stderr
    assert "Interrupted: exiting with status 130" in run.stderr


@pytest.mark.parametrize("moment", ["loading the inventory", "connecting"])
def test_ctrl_c_later_exits_130(inventory, silent_port, tmp_path, moment):
    _write(inventory, silent_port.getsockname()[1])
    accepted: list[socket.socket] = []
    silent_port.settimeout(0.01)

    def reached() -> bool:
        if moment == "loading the inventory":
            return "Loading inventory" in log.read_text(errors="replace")
        try:
            accepted.append(silent_port.accept()[0])  # the SSH connect is waiting for a banner
        except TimeoutError:
            return False
        return True

    log = tmp_path / "run.log"
    proc = background([sys.executable, "-m", "pyinfra", str(inventory), "exec", "--", "true"],
                      log)
    try:
        code = interrupt_when(proc, reached, signal.SIGINT, log, timeout=30)
    finally:
        for conn in accepted:
            conn.close()
    assert code == 130, log.read_text(errors="replace")
