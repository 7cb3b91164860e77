"""The drift audit in the lab: ``pyinfra inventories/lab.py deploys/audit.py`` against the
converged network (router over real OpenSSH + BusyBox ash + real wireguard-go, fake Macs):
no drift and exit 0, exactly ONE exec per host, nothing written; then drift made by hand on
every host is reported row by row (and exit 1), still without changing anything.

The lab is built and converged once for the module (prefix ``ssola<pid>-``) and removed at
the end.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.harness.lab_session import lab_up, require_lab, run_pyinfra
from tests.lab.lab import LabState
from tests.lab.tunnels import RoleTunnel

pytestmark = [pytest.mark.lab, pytest.mark.ssh]

require_lab()

PREFIX_BASE = "ssola"
PREFIX = f"{PREFIX_BASE}{os.getpid()}-"
HOSTS = ("router", "server", "client1", "client2")
PLIST = "/Users/admin/Library/LaunchAgents/com.ollama.plist"
WG_CONF = "/opt/homebrew/etc/wireguard/wg-ollama.conf"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lab")
    with lab_up(directory, PREFIX_BASE) as state:
        run = run_pyinfra(directory, "deploys/all.py", "-y")
        assert run.returncode == 0, run.stdout + run.stderr
        for client in ("client1", "client2"):
            tunnel = RoleTunnel(state, client)
            tunnel.refresh()
            assert tunnel.wait_handshake()
        yield state


def audit(lab: LabState, tmp_path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path / "audit.json"
    if out.exists():
        out.unlink()
    run = run_pyinfra(lab.dir, "deploys/audit.py", "--data", f"audit_json={out}", *args)
    return run, json.loads(out.read_text()) if out.exists() else {}


def rows(doc: dict, host: str, status: str | None = None) -> list[tuple[str, str, str]]:
    return [(f["area"], f["item"], f["detail"]) for f in doc["hosts"][host]["findings"]
            if status is None or f["status"] == status]


def test_converged_network_has_no_drift_one_read_per_host(lab, tmp_path):
    before = {p: lab.read_config(p) for p in ("network", "firewall", "dhcp")}
    mark = lab.mark()
    run, doc = audit(lab, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert doc["drift"] is False and set(doc["hosts"]) == set(HOSTS)
    for host in HOSTS:
        assert rows(doc, host, "drift") == [], (host, rows(doc, host))
    counts = lab.counts(mark)
    assert {h: (counts[h]["execs"], counts[h]["uploads"]) for h in HOSTS} == {
        h: (1, 0) for h in HOSTS}, counts
    assert {p: lab.read_config(p) for p in before} == before  # reading never writes
    peers = {item: detail for area, item, detail in rows(doc, "router") if area == "peer"}
    assert set(peers) == {"client1", "client2", "phone"}
    assert "handshake" in peers["client1"] and "endpoint 100.64.1.2:" in peers["client1"]
    assert "never connected" in peers["phone"]
    assert ("proof", "invariants", "every invariant holds on the live config") in rows(
        doc, "router", "ok")
    server = {item for area, item, _ in rows(doc, "server", "ok")}
    assert {"com.ollama", "plist", "ollama", "version", "power"} <= server


def test_the_table_and_exit_code(lab):
    run = run_pyinfra(lab.dir, "deploys/audit.py", "--dry")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "router (router): no drift" in run.stdout
    assert run.stdout.strip().endswith("audit: 4 host(s), no drift")


def test_hand_made_drift_on_every_host_is_reported(lab, tmp_path):
    lab.router_run("uci set network.wg0.listen_port=51999; uci commit network; "
                   "uci add firewall rule >/dev/null; uci set firewall.@rule[-1].name=Hole; "
                   "uci set firewall.@rule[-1].src=vpn; uci set firewall.@rule[-1].dest=lan; "
                   "uci set firewall.@rule[-1].target=ACCEPT; uci commit firewall", check=True)
    plist = lab.mac_file("server", PLIST)
    plist.write_text(plist.read_text().replace("<string>24h</string>", "<string>5m</string>"))
    lab.mac_run("client1", f"chmod 644 {WG_CONF}", check=True)
    zshrc = lab.mac_file("client2", lab.data["hosts"]["client2"]["mac_home"] + "/.zshrc")
    text = zshrc.read_text()
    begin, end = "# >>> self-sovereign-ollama >>>", "# <<< self-sovereign-ollama <<<"
    block = text[text.index(begin):text.index(end)] + end + "\n"
    zshrc.write_text(text + block)
    mark = lab.mark()
    run, doc = audit(lab, tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "drift on" in run.stderr and doc["drift"] is True
    assert {h for h in HOSTS if doc["hosts"][h]["drift"]} == set(HOSTS)
    router = rows(doc, "router", "drift")
    assert any(d == "ours: set network.wg0.listen_port='51820'" for _, _, d in router), router
    assert any(a == "config" and d.startswith("foreign: set firewall.") and "enabled='0'" in d
               for a, _, d in router), router
    assert any(a == "proof" and "invariant 3" in d for a, _, d in router), router
    assert ("service", "plist") in {(a, i) for a, i, _ in rows(doc, "server", "drift")}
    c1 = rows(doc, "client1", "drift")
    assert any(i == WG_CONF and "mode -rw-r--r--, plan -rw------- (600)" in d
               for _, i, d in c1), c1
    assert ("env", "~/.zshrc", "env block present 2 times") in rows(doc, "client2", "drift")
    counts = lab.counts(mark)
    assert all(counts[h]["execs"] == 1 and counts[h]["uploads"] == 0 for h in HOSTS), counts
