"""``python3 -m tests.lab``: bad arguments get a usage line and exit 2, a missing lab one clear
line and exit 1 (never a traceback); each lab directory owns its namespace prefix, and ``down``
removes that prefix's namespaces only. No root needed: nothing here builds a lab."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tests.lab.lab as lab_module
from tests.lab.lab import default_prefix, lab_prefix, record_prefix, stop_supervisor

REPO = Path(__file__).resolve().parents[1]


def lab_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.lab", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args", [
    (), ("frobnicate",), ("ssh",), ("ssh", "laptop"), ("exec", "phone"), ("exec", "nowhere", "id"),
    ("tunnel", "phone"), ("tunnel", "phone", "sideways"), ("tunnel", "laptop", "up"),
    ("up", "--prefix", "a/b"), ("up", "--env", "NOEQUALS"), ("up", "--watch-pid", "x"),
    ("up", "--path-prepend", "/nonexistent/dir"), ("down", "--bogus"), ("status", "extra"),
])
def test_bad_arguments_get_usage_and_exit_2(args: tuple[str, ...], tmp_path: Path) -> None:
    result = lab_cli(*args[:1], "--dir", str(tmp_path), *args[1:]) if args else lab_cli()
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("usage: python3 -m tests.lab"), result.stderr
    assert "error:" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [("ssh", "phone"), ("ssh", "router", "true"), ("status",),
                                  ("exec", "phone", "true"), ("tunnel", "phone", "up")])
def test_no_running_lab_is_one_line_and_exit_1(args: tuple[str, ...], tmp_path: Path) -> None:
    result = lab_cli(args[0], "--dir", str(tmp_path), *args[1:])
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"no running lab: {tmp_path}/state.json is missing" in result.stderr


def test_each_directory_owns_its_prefix(tmp_path: Path) -> None:
    one, two = tmp_path / "clone1" / ".lab", tmp_path / "clone2" / ".lab"
    assert default_prefix(one) != default_prefix(two)
    assert default_prefix(one) == default_prefix(str(one) + "/.")  # the resolved path
    assert default_prefix(one).startswith("ssol-") and len(default_prefix(one)) == 12
    assert lab_prefix(one) == default_prefix(one)
    one.mkdir(parents=True)
    record_prefix(one, "mine-")
    assert lab_prefix(one) == "mine-" and lab_prefix(one, "given-") == "given-"


def test_down_removes_only_its_own_namespaces(tmp_path: Path, monkeypatch) -> None:
    removed: list[str] = []
    monkeypatch.setattr(lab_module, "cleanup", removed.append)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    record_prefix(two, "ssol-other-")
    assert stop_supervisor(one) is False  # nothing was running
    assert stop_supervisor(two) is False
    assert removed == [default_prefix(one), "ssol-other-"]
    assert not (two / "prefix").exists()  # down forgets what it removed
