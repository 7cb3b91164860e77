"""A lab for one test module: the one way test modules check that the lab can run, bring it up
under a per-run namespace prefix (``<base><pid>-``: concurrent runs never collide, leftovers of
crashed runs are found by their dead pid), run pyinfra against it and take it down.

Example (a module's fixture)::

    require_lab()  # at import: skip, or fail under CI=true, when the lab cannot run here

    @pytest.fixture(scope="module")
    def lab(tmp_path_factory):
        with lab_up(tmp_path_factory.mktemp("lab"), "ssolx") as state:
            run = run_pyinfra(state.dir, "deploys/all.py", "-y")
            assert run.returncode == 0, run.stdout + run.stderr
            yield state
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.lab import LabState, cleanup, requirements_missing_lab, stop_supervisor
from tests.lab.topology import stale_prefixes

REPO = Path(__file__).resolve().parents[2]
INVENTORY = "inventories/lab.py"


def require_lab() -> None:
    """Skip the calling module when the lab cannot run here (root, netns, packages); under
    ``CI=true`` fail instead, so that CI never passes by skipping the lab."""
    missing = requirements_missing_lab()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the lab cannot run in CI: {missing}", pytrace=False)
        pytest.skip(f"the lab cannot run here: {missing}", allow_module_level=True)


def prefix_for(base: str) -> str:
    """The namespace prefix of this test run: ``<base><pid>-``."""
    return f"{base}{os.getpid()}-"


@contextlib.contextmanager
def lab_up(directory: Path, base: str, *extra: str) -> Iterator[LabState]:
    """``python3 -m tests.lab up`` in ``directory`` under this run's prefix (after removing the
    leftovers of dead runs with the same ``base``); down again on exit."""
    for stale in stale_prefixes(base):
        cleanup(stale)
    prefix = prefix_for(base)
    up = subprocess.run(
        [sys.executable, "-m", "tests.lab", "up", "--dir", str(directory), "--prefix", prefix,
         "--watch-pid", str(os.getpid()), "--env", "LAB_HOST_DIR={dir}", *extra],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield LabState(directory)
    finally:
        stop_supervisor(directory, prefix)


def run_pyinfra(lab_dir: Path | str, *args: str, inventory: str = INVENTORY,
                timeout: float = 600, stdin: str | None = "\n"
                ) -> subprocess.CompletedProcess[str]:
    """``pyinfra <inventory> ARGS`` against the lab at ``lab_dir``, as a user runs it (from the
    repository root; ``stdin=None``: no input at all, as without a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "pyinfra", inventory, *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
        **({"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}),
        env={**os.environ, "SSOL_LAB_DIR": str(lab_dir), "PYTHONDONTWRITEBYTECODE": "1"},
    )
