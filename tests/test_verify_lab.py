"""The API acceptance suite in the lab: from a VPN client, through the WireGuard tunnel its
client role brought up, against the server role's Ollama (the Ollama API stand-in under the
fake Mac's launchd), with the isolation checks aimed at listeners that really answer (LAN host,
router, another peer, the internet), and a control from the LAN that shows those checks fail
when a target is reachable.

The lab is built and converged once for the module (``python3 -m tests.lab up``, prefix
``ssolv<pid>-``, ``pyinfra inventories/lab.py deploys/all.py -y``) and removed at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.harness.lab_session import lab_up, require_lab, run_pyinfra
from tests.harness.openwrt_host import REPO
from tests.lab import topology as t
from tests.lab.lab import LabState
from tests.lab.probes import PROBE_ALLOWED, VPN_ROUTER, start_listeners
from tests.lab.tunnels import RoleTunnel

pytestmark = [pytest.mark.lab, pytest.mark.ssh]

require_lab()

PREFIX_BASE = "ssolv"
PREFIX = f"{PREFIX_BASE}{os.getpid()}-"
OLLAMA = f"http://{t.SERVER_ADDRESS}:11434"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lab")
    with lab_up(directory, PREFIX_BASE) as state:
        run = run_pyinfra(directory, "deploys/all.py", "-y")
        assert run.returncode == 0, run.stdout + run.stderr
        yield state


@pytest.fixture(scope="module")
def tunnels(lab):
    made = {p: RoleTunnel(lab, p, extra_allowed=PROBE_ALLOWED) for p in ("client1", "client2")}
    for tunnel in made.values():
        tunnel.refresh()
        assert tunnel.wait_handshake()
    listeners = start_listeners(lab.topology, ollama_served=True)
    yield made
    listeners.stop()


def verify_from(lab: LabState, role: str, *args: str) -> subprocess.CompletedProcess[str]:
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from deploys.verify import main; "
            "sys.exit(main(sys.argv[1:]))")
    return lab.topology.exec(role, sys.executable, "-c", code, *args, check=False, timeout=300)


def isolation_args(other_peer: str) -> list[str]:
    return ["--isolate", f"lan={t.LAN_HOST_ADDRESS}:22",
            "--isolate", f"lan={t.LAN_HOST_ADDRESS}:80",
            "--isolate", f"router={VPN_ROUTER}:22",
            "--isolate", f"router={t.LAN_ROUTER_ADDRESS}:22",
            "--isolate", f"router={t.DMZ_ROUTER_ADDRESS}:22",
            "--isolate", f"peer={other_peer}:22",
            "--isolate", f"internet={t.INET_ADDRESS}:443",
            "--isolate", f"internet={t.WEB_ADDRESS}:80"]


def test_suite_through_the_tunnel_from_a_vpn_client(lab, tunnels, tmp_path):
    out = tmp_path / "verify.json"
    run = verify_from(lab, "client1", OLLAMA, "--json", str(out), "--junit",
                      str(tmp_path / "verify.xml"), *isolation_args(tunnels["client2"].address))
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads(out.read_text())
    status = {c["id"]: c["status"] for c in doc["checks"]}
    assert doc["ollama_version"] == "0.32.15"
    assert [i for i, s in status.items() if s == "failed"] == []
    assert {i for i, s in status.items() if s == "skipped"} == {
        "proxy.blocked_1", "proxy.blocked_2", "proxy.blocked_3", "proxy.allowed"}
    assert all(status[f"isolation.{x}"] == "passed" for x in ("lan", "router", "peer",
                                                              "internet"))
    assert doc["counts"]["passed"] == 30


def test_isolation_checks_fail_where_the_target_is_reachable(lab, tunnels):
    """Control: the same targets from the LAN (the LAN host and the router's LAN address
    answer there), so a pass through the tunnel is the firewall's doing."""
    run = verify_from(lab, "lan", OLLAMA, "--only", "isolation", "--quiet",
                      "--isolate", f"lan={t.LAN_HOST_ADDRESS}:22",
                      "--isolate", f"internet={t.INET_ADDRESS}:443")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "0 passed, 2 failed, 2 skipped of 4 checks" in run.stdout


def test_the_pyinfra_deploy_queues_the_suite_for_the_plans_server(lab):
    run = subprocess.run(
        [sys.executable, "-m", "pyinfra", "inventories/lab.py", "deploys/verify.py", "--dry"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "SSOL_LAB_DIR": str(lab.dir), "PYTHONDONTWRITEBYTECODE": "1"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"API acceptance suite against {OLLAMA}" in run.stdout + run.stderr
