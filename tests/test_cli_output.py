"""A run without a terminal, and what a run says per host (``deploys/cli_hooks.py``): the pyinfra
CLI as a user runs it, stdin from /dev/null, against a router over real OpenSSH (BusyBox ash,
the uci stand-in)."""

from __future__ import annotations

import subprocess

import pytest

from deploys.cli_hooks import NO_TERMINAL
from tests.harness.openwrt_host import OpenWrtHost
from tests.harness.router_runs import SMALL_IMAGE, require_router, run_cli, write_inventory

pytestmark = pytest.mark.ssh

require_router()


def pyinfra(inventory, *args: str, limit: tuple[str, ...] = ("--limit", "router")
            ) -> subprocess.CompletedProcess[str]:
    """``pyinfra INVENTORY deploys/all.py --limit router ARGS`` with no terminal at all."""
    return run_cli(str(inventory), "deploys/all.py", *limit, *args)


def per_host(run: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines after ``--> Per host:`` (one per host), without pyinfra's indentation."""
    lines = run.stderr.splitlines()
    start = lines.index("--> Per host:") + 1
    out = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        out.append(line.strip())
    return out


@pytest.fixture
def router(tmp_path):
    with OpenWrtHost(tmp_path, packages=SMALL_IMAGE) as host:
        yield host


def test_no_terminal_no_traceback_no_question_without_changes(tmp_path, router):
    # no client; the server: nothing listens on its port (it fails unless left out, --limit)
    inventory = write_inventory(tmp_path / "inventory.py", router, tmp_path / "secrets",
                                clients=[], peers=[])
    factory = {p: router.read_config(p) for p in ("network", "firewall", "dhcp")}

    # 1. changes to make, no terminal, no -y: one line naming -y, exit 2, nothing changed
    first = pyinfra(inventory)
    assert first.returncode == 2, first.stdout + first.stderr
    both = first.stdout + first.stderr
    assert "Traceback" not in both and "EOFError" not in both and "internal exception" not in both
    assert NO_TERMINAL in first.stderr.splitlines()
    assert {p: router.read_config(p) for p in factory} == factory
    assert "--> Per host:" not in both

    # 2. with -y: applied, and the per-host summary names what changed
    second = pyinfra(inventory, "-y")
    assert second.returncode == 0, second.stdout + second.stderr
    summary = per_host(second)
    assert len(summary) == 1 and summary[0].startswith("router  changed: "), summary
    assert "OpenWrt: WireGuard, DMZ, firewall (uci)" in summary[0]
    assert {p: router.read_config(p) for p in factory} != factory

    # 3. nothing to change, no terminal, no -y: no question at all, exit 0
    third = pyinfra(inventory)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "Press enter" not in third.stderr and NO_TERMINAL not in third.stderr
    assert "--> No changes detected: nothing to confirm." in third.stderr
    assert per_host(third) == ["router  no changes"]

    # 4. a host that cannot be reached: FAILED in the summary, exit 1
    fourth = pyinfra(inventory, "-y", limit=())
    assert fourth.returncode == 1, fourth.stdout + fourth.stderr
    assert per_host(fourth) == ["router     no changes", "ai-server  FAILED (not connected)"]

    # 5. the same without -y and without a terminal: pyinfra's "continue?" is answered no,
    #    without a traceback
    fifth = pyinfra(inventory, limit=())
    assert fifth.returncode == 1, fifth.stdout + fifth.stderr
    assert "No terminal to answer on: not continuing." in fifth.stderr
    assert "Traceback" not in fifth.stderr and "EOFError" not in fifth.stderr
