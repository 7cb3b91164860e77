"""Your own policy with real packets (issue 12 item 3): a per-peer ``access`` rule and the
user's ``policy_tests``, proved by the firewall proof AND checked with packets in the lab.

The lab is converged with the pyinfra CLI as at home; then the per-peer rules that
``deploys/router_config.access_rules`` renders for ``client1: access ["server:11434",
"server:22"]`` (client2 keeps the default, the server's API) replace ``vpn_ai`` on the router
(uci + ``/etc/init.d/firewall reload``: the lab's fw4 stand-in loads the model's rendering with
the real nft). The proof must accept that config with the policy tests, and real packets from
each peer's tunnel must agree with every expectation. (The inventory schema that carries
``access``/``policy_tests`` is another change; this test hands them to the plan directly.)
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from deploys.keys import KeyStore
from deploys.plan import NETWORK_DEFAULTS, materialize, validate
from deploys.router_config import access_rules
from firewall import Flow, build
from firewall.proof import prove
from tests.harness.lab_session import lab_up, require_lab
from tests.harness.openwrt_host import REPO
from tests.lab import topology as t
from tests.lab.lab import LabState
from tests.lab.probes import PROBE_ALLOWED, start_listeners
from tests.lab.tunnels import RoleTunnel

pytestmark = [pytest.mark.lab, pytest.mark.ssh]

require_lab()

PREFIX_BASE = "ssolp"
PREFIX = f"{PREFIX_BASE}{os.getpid()}-"
INVENTORY = "inventories/lab.py"
ACCESS = {"client1": ["server:11434", "server:22"]}
POLICY_TESTS = [
    {"src": "client1", "dst": "server:22", "expect": "accept"},
    {"src": "client2", "dst": "server:22", "expect": "deny"},
    {"src": "client2", "dst": "server:11434", "expect": "accept"},
    {"src": "vpn", "dst": "lan:22", "expect": "deny"},
    {"src": "vpn", "dst": "server:8080", "expect": "deny"},
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lab")
    with lab_up(directory, PREFIX_BASE) as state:
        yield state


def lab_plan(lab: LabState) -> Any:
    """The plan of inventories/lab.py (as deploys/plan.py builds it), with ``access`` and
    ``policy_tests`` added the way the inventory schema will carry them."""
    from pyinfra.context import ctx_state

    saved = os.environ.get("SSOL_LAB_DIR")
    os.environ["SSOL_LAB_DIR"] = str(lab.dir)
    try:
        with ctx_state.use(None):
            inv = runpy.run_path(str(REPO / INVENTORY))
    finally:
        if saved is None:
            del os.environ["SSOL_LAB_DIR"]
        else:
            os.environ["SSOL_LAB_DIR"] = saved
    router_data = inv["router"][0][1]
    spec = validate(
        network={k: router_data[k] for k in NETWORK_DEFAULTS if router_data.get(k) is not None},
        router=inv["router"][0], server=inv["server"][0], clients=inv["clients"],
    )
    plan = materialize(spec, KeyStore(spec.secrets_dir))

    class WithPolicy:
        def __getattr__(self, name: str) -> Any:
            return getattr(plan, name)

    view = WithPolicy()
    view.enabled_peers = [SimpleNamespace(**{f: getattr(p, f) for f in (
        "name", "address", "public_key", "preshared_key", "section")},
        **({"access": ACCESS[p.name]} if p.name in ACCESS else {}))
        for p in plan.enabled_peers]
    view.policy_tests = POLICY_TESTS
    return view


@pytest.fixture(scope="module")
def policy_lab(lab):
    """Converged, then the per-peer access rules in place of vpn_ai, the firewall reloaded."""
    run = subprocess.run(
        [sys.executable, "-m", "pyinfra", INVENTORY, "deploys/all.py", "-y"],
        cwd=REPO, capture_output=True, text=True, timeout=300, input="\n",
        env={**os.environ, "SSOL_LAB_DIR": str(lab.dir), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    plan = lab_plan(lab)
    batch = ["delete firewall.vpn_ai"]
    for rule in access_rules(plan):
        batch.append(f"set firewall.{rule['name']}=rule")
        batch += [f"set firewall.{rule['name']}.{k}='{v}'" for k, v in rule["options"].items()]
    script = "uci batch <<'EOF'\n" + "\n".join(batch) + "\nEOF\n" \
        "uci commit firewall && /etc/init.d/firewall reload"
    lab.router_run(script, check=True)
    tunnels = {p: RoleTunnel(lab, p, extra_allowed=PROBE_ALLOWED) for p in ("client1", "client2")}
    for tunnel in tunnels.values():
        tunnel.refresh()
        assert tunnel.wait_handshake(), "no WireGuard handshake"
    listeners = start_listeners(lab.topology, ("server", "lan"), ollama_served=True)
    try:
        yield plan, tunnels
    finally:
        listeners.stop()


def tcp(lab: LabState, role: str, dst: str, port: int) -> bool:
    probe = [{"id": "x", "kind": "tcp", "dst": dst, "port": port, "timeout": 1.5}]
    result = lab.topology.exec(role, sys.executable, str(REPO / "tests" / "lab" / "agent.py"),
                               "probe", json.dumps(probe))
    return json.loads(result.stdout)["x"]["ok"]


def test_the_proof_accepts_the_policy_config(lab, policy_lab):
    plan, _ = policy_lab
    config = lab.router_config()
    names = [s["name"] for s in config["firewall"]]
    assert "vpn_ai" not in names and {"acc_client1_1", "acc_client1_2", "acc_client2_1"} <= \
        set(names)
    report = prove(config, plan, lab.live_devices())
    assert report.ok, report.lines()
    assert report.checked > 1000


def test_access_and_policy_tests_hold_with_real_packets(lab, policy_lab):
    plan, _ = policy_lab
    devices = lab.live_devices()
    fw = build(lab.router_config(), devices)
    where = {"server": t.SERVER_ADDRESS, "lan": t.LAN_HOST_ADDRESS}
    seen = []
    for test in POLICY_TESTS:
        srcs = ["client1", "client2"] if test["src"] == "vpn" else [test["src"]]
        host, _, port = test["dst"].partition(":")
        for src in srcs:
            got = tcp(lab, src, where[host], int(port))
            peer = next(p for p in plan.enabled_peers if p.name == src)
            model = fw.verdict(Flow(devices["wg0"], devices["dmz" if host == "server" else "lan"],
                                    "tcp", int(port), src_ip=str(peer.address),
                                    dest_ip=where[host]))
            seen.append((src, test["dst"], got))
            assert got == (test["expect"] == "accept"), (test, src, "packets", got)
            assert model.accepted == got, (test, src, model)
    # the per-peer rule is what makes the difference between the two peers
    assert ("client1", "server:22", True) in seen and ("client2", "server:22", False) in seen
