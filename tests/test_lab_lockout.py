"""The lab can really lock its controller out of the router (issue 10, item 9).

The lab's controller reaches the router's SSH only through the router's own network: the port
the state file publishes (``127.0.0.1:P``, what ``inventories/lab.py`` uses) is carried into the
LAN host's namespace and from there to ``192.168.1.1:22`` over the router's ``lan1``
(``tests/lab/lab.py``, ``tests/lab/router.py``). So (1) taking the LAN address away or dropping
LAN -> router tcp/22 cuts it, and (2) a plan that makes the admin's own port the DMZ
(``dmz_device = "lan1"``) locks the controller out until the router's rollback guard restores
the previous configuration, which the next run reports.

A lab of its own (``--plain``: the router is all that is deployed here), converged once.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from tests.harness.lab_session import lab_up, require_lab, run_pyinfra
from tests.harness.openwrt_host import REPO
from tests.lab import topology as t
from tests.lab.lab import LabState

pytestmark = [pytest.mark.lab, pytest.mark.ssh]

require_lab()

PREFIX_BASE = "ssolk"
WINDOW = 5  # rollback_seconds of the lockout runs
PACKAGES = ("network", "firewall", "dhcp")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with lab_up(tmp_path_factory.mktemp("lab"), PREFIX_BASE, "--plain") as state:
        run = run_pyinfra(state.dir, "deploys/all.py", "--limit", "router", "-y")
        assert run.returncode == 0, output(run)
        yield state


def output(run) -> str:
    return run.stdout + run.stderr


def reachable(lab: LabState, timeout: float = 2.0) -> bool:
    """Does the controller's way to the router's SSH (the inventory's address and port) give
    the SSH banner within ``timeout``?"""
    ssh = lab.data["hosts"]["router"]["ssh"]
    try:
        with socket.create_connection((ssh["ssh_hostname"], ssh["ssh_port"]), timeout) as c:
            c.settimeout(timeout)
            return c.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def router_ssh(lab: LabState, command: str):
    """``python3 -m tests.lab ssh router COMMAND`` (the real OpenSSH client, the inventory's
    port and known_hosts)."""
    return subprocess.run([sys.executable, "-m", "tests.lab", "ssh", "--dir", str(lab.dir),
                           "router", command], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


def test_the_controller_reaches_the_router_only_through_its_lan(lab):
    ssh = lab.data["hosts"]["router"]["ssh"]
    assert ssh["ssh_port"] != lab.data["router"]["sshd_port"]  # never the sshd itself
    key = open(ssh["ssh_known_hosts_file"]).read()
    assert key.startswith(f"[127.0.0.1]:{ssh['ssh_port']} ssh-ed25519 "), key
    run = router_ssh(lab, "uci get network.lan.ipaddr")
    assert run.returncode == 0 and run.stdout.strip() == t.LAN_ROUTER_ADDRESS, output(run)
    assert reachable(lab)
    # the router loses its LAN address: cut
    lab.topology.ip("router", "addr", "del", f"{t.LAN_ROUTER_ADDRESS}/24", "dev", "br-lan")
    try:
        assert not reachable(lab)
    finally:
        lab.topology.ip("router", "addr", "replace", f"{t.LAN_ROUTER_ADDRESS}/24", "dev",
                        "br-lan")
    assert reachable(lab)
    # a firewall drops LAN -> router tcp/22: cut; the rule goes, the way is back
    nft = ("table inet labcut {\n chain input {\n  type filter hook input priority -10;\n"
           '  iifname "br-lan" tcp dport 22 drop\n }\n}\n')
    lab.topology.exec("router", "nft", "-f", "-", input=nft)
    try:
        assert not reachable(lab)
    finally:
        lab.topology.exec("router", "nft", "delete", "table", "inet", "labcut")
    run = router_ssh(lab, "echo back")
    assert run.returncode == 0 and run.stdout == "back\n", output(run)


def test_lockout_is_undone_by_the_guard_and_reported_by_the_next_run(lab, tmp_path):
    before = {p: lab.read_config(p) for p in PACKAGES}
    inventory = str(REPO / "inventories" / "lab.py")
    bad = tmp_path / "lab_lockout.py"
    bad.write_text(textwrap.dedent(f"""\
        # inventories/lab.py with the admin's own LAN port as the DMZ, a short guard window
        import runpy as _runpy
        _inv = _runpy.run_path({inventory!r})
        def _with(hosts, **data):
            return [(n, {{**d, **data}}) for n, d in hosts]
        router = _with(_inv["router"], dmz_device="lan1", rollback_seconds={WINDOW})
        server = _with(_inv["server"], dmz_device="lan1")
        clients = _with(_inv["clients"], dmz_device="lan1")
        """))
    # the converge's guard job still sleeps out its (default, long) window: the new apply's
    # guard must start anyway (BusyBox's start-stop-daemon -x /bin/sh alone refused to)
    ps = lab.router_run("ps w", check=True).stdout
    assert "/job.sh" in ps, ps
    seen_cut = threading.Event()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if "option device 'lan1'" in lab.read_config("network") and not reachable(lab, 1):
                seen_cut.set()
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    try:
        locked_out = run_pyinfra(lab.dir, "deploys/all.py", "--limit", "router", "-y",
                                 inventory=str(bad), timeout=300)
    finally:
        done.set()
        watcher.join(timeout=10)
    said = output(locked_out)
    assert locked_out.returncode != 0, said
    assert seen_cut.is_set(), "the plan never cut the controller off: nothing was tested"
    assert "armed" in said, said
    assert ("too late, the guard of apply" in said or "cannot reconnect" in said
            or "timed out" in said.lower()), said
    assert time.monotonic() - started < WINDOW + 60

    # the guard restored the previous configuration, and with it the way in
    assert "rolled-back-" in lab.router_run("ls /tmp/pyinfra-apply", check=True).stdout
    assert {p: lab.read_config(p) for p in PACKAGES} == before
    assert reachable(lab)

    # the next run (the lab's own inventory) says so prominently and converges
    run = run_pyinfra(lab.dir, "deploys/all.py", "--limit", "router", "-y")
    assert run.returncode == 0, output(run)
    assert "ROLLED BACK: apply" in output(run) and "(timer)" in output(run), output(run)
    again = run_pyinfra(lab.dir, "deploys/all.py", "--limit", "router")
    assert again.returncode == 0 and "No changes" in output(again), output(again)
    assert "ROLLED BACK" not in output(again)
    assert {p: lab.read_config(p) for p in PACKAGES} == before
    assert lab.live_devices()["dmz"] == "lan4" and reachable(lab)
