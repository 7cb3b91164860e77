"""The drift audit without SSH: the router's one read (facts.wireguard.RouterAudit's real
command under BusyBox ash, the uci stand-in on a factory config converged by the router's own
batch, a fake ``wg`` printing a real-format dump) audited against the plan; what each kind of
drift looks like; that no WireGuard key ever comes back or reaches a command line; and the
table/JSON output. The lab test (tests/test_audit_lab.py) runs ``pyinfra ... deploys/audit.py``
against every host for real.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploys.audit_report import HostAudit, document, table
from deploys.audit_router import audit_router
from deploys.keys import KeyStore
from deploys.plan import materialize, validate
from deploys.router_config import current_defaults_forward, desired_router_config
from facts.wireguard import RouterAudit, WireGuardDump, parse_dump
from operations.uci import compute_changes
from tests.harness.openwrt_host import factory_configs

REPO = Path(__file__).resolve().parents[1]
STANDIN = REPO / "tests" / "standins" / "uci"
BUSYBOX = shutil.which("busybox")
pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed")

NETWORK = {
    "vpn_subnet": "10.10.10.0/24", "vpn_endpoint": "vpn.example.org", "vpn_port": 51820,
    "dmz_subnet": "192.168.100.0/24", "lan_subnet": "192.168.1.0/24", "dmz_device": "lan4",
    "vpn_peers": [{"name": "alice_phone", "kind": "phone"}],
}
NOW = 1_800_000_000


def make_plan(tmp_path: Path):
    spec = validate(
        network=NETWORK, router=("router", {}),
        server=("ai-server", {"dmz_address": "192.168.100.10", "dmz_mac": "52:54:00:a1:00:10"}),
        clients=[("alice-mac", {"vpn_name": "alice_mac", "key_on_mac": False}),
                 ("bob-mac", {"vpn_name": "bob_mac", "key_on_mac": False})],
    )
    return materialize(spec, KeyStore(tmp_path / "secrets"))


class FakeRouter:
    """/etc/config driven by the uci stand-in, a fake ``wg`` and a ``sha256sum`` that logs
    its own and its parent's command lines (to prove no key is ever on one)."""

    def __init__(self, tmp_path: Path) -> None:
        self.confdir = tmp_path / "etc" / "config"
        self.savedir = tmp_path / "save"
        self.bin = tmp_path / "bin"
        for d in (self.confdir, self.savedir, self.bin):
            d.mkdir(parents=True)
        for name, text in factory_configs().items():
            (self.confdir / name).write_text(text)
        self._tool("uci", f'UCI_STANDIN_SAVEDIR={self.savedir} exec {sys.executable} '
                          f'{STANDIN} -c {self.confdir} -t {self.savedir} "$@"')
        self.dump = tmp_path / "dump.txt"
        self.argv_log = tmp_path / "argv.log"
        self._tool("wg", f'[ "$1 $2 $3" = "show wg0 dump" ] && cat {self.dump}')
        real = shutil.which("sha256sum")
        self._tool("sha256sum", f'echo "$0 $*" >> {self.argv_log}; '
                                f'tr "\\0" " " < /proc/$PPID/cmdline >> {self.argv_log}; '
                                f'echo >> {self.argv_log}; exec {real} "$@"')
        self._tool("date", f"echo {NOW}")
        self._tool("opkg", '[ "$1" = list-installed ] && printf "kmod-wireguard - 5.15.167-1\\n'
                           'wireguard-tools - 1.0.20210914-2\\n"')

    def _tool(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)

    def uci(self, *args: str, stdin: str | None = None) -> None:
        subprocess.run([str(self.bin / "uci"), *args], input=stdin, text=True, check=True,
                       capture_output=True)

    def converge(self, plan) -> None:
        self.dump.write_text("")
        config = self.read()["state"]["config"]
        changes = compute_changes(config, **desired_router_config(
            plan, current_defaults_forward(config)))
        self.uci("batch", stdin="\n".join(changes.batch) + "\n")
        for package in changes.packages:
            self.uci("commit", package)

    def set_dump(self, plan, peers: dict[str, tuple[int, str]], extra: str = "") -> None:
        """peers: name -> (latest handshake, endpoint); the dump as `wg show wg0 dump`."""
        lines = [f"{plan.router_private_key.reveal()}\t{plan.router_public_key}\t"
                 f"{plan.vpn_port}\toff"]
        for p in plan.enabled_peers:
            hs, endpoint = peers.get(p.name, (0, "(none)"))
            lines.append(f"{p.public_key}\t{p.preshared_key.reveal()}\t{endpoint}\t"
                         f"{p.address}/32\t{hs}\t{1000 if hs else 0}\t{2000 if hs else 0}\t25")
        self.dump.write_text("\n".join(lines) + "\n" + extra)

    def read(self) -> dict:
        """RouterAudit's real command under BusyBox ash: the one read."""
        env = {"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": "/root"}
        fact = RouterAudit()
        out = subprocess.run([BUSYBOX, "ash", "-c", fact.command(interface="wg0")],
                             capture_output=True, text=True, env=env, check=True).stdout
        self.raw = out
        return fact.process(out.splitlines())


@pytest.fixture
def router(tmp_path):
    if not STANDIN.exists():
        pytest.skip("tests/standins/uci is missing")
    plan = make_plan(tmp_path)
    r = FakeRouter(tmp_path)
    r.converge(plan)
    r.plan = plan
    return r


def rows(audit: HostAudit, area: str | None = None) -> dict[str, tuple[str, str]]:
    return {f.item: (f.status, f.detail) for f in audit.findings
            if area is None or f.area == area}


def test_a_converged_router_has_no_drift_and_peers_by_name(router):
    plan = router.plan
    router.set_dump(plan, {"alice_mac": (NOW - 30, "198.51.100.7:40123"),
                           "bob_mac": (NOW - 600, "198.51.100.8:5000")})
    audit = audit_router("router", plan, router.read())
    assert audit.drift == [], table(audit)
    peers = rows(audit, "peer")
    assert peers["alice_mac"] == ("ok", "10.10.10.2: handshake 30s ago; rx 1000 B, tx 2.0 KiB, "
                                        "endpoint 198.51.100.7:40123")
    assert peers["bob_mac"][0] == "warn"
    assert "not connected (last handshake 10m ago)" in peers["bob_mac"][1]
    assert peers["alice_phone"] == ("warn", "10.10.10.4: never connected; rx 0 B, tx 0 B, "
                                            "endpoint -")
    assert rows(audit, "proof")["invariants"][0] == "ok"
    assert rows(audit, "wireguard")["wg0"][0] == "ok"


def _secrets(plan) -> list[str]:
    return [plan.router_private_key.reveal()] + [p.preshared_key.reveal() for p in plan.peers]


def test_no_wireguard_key_comes_back_or_reaches_a_command_line(router):
    """The dump's private key is dropped and its preshared keys hashed on the router; the
    hashing pipes them through builtins only (the logging sha256sum sees its own and its
    parent's command line: no key in either)."""
    plan = router.plan
    router.set_dump(plan, {"alice_mac": (NOW - 5, "198.51.100.7:40123")})
    router.argv_log.write_text("")
    env = {"PATH": f"{router.bin}:/usr/bin:/bin", "HOME": "/root"}
    out = subprocess.run([BUSYBOX, "ash", "-c", WireGuardDump().command("wg0")],
                         capture_output=True, text=True, env=env, check=True).stdout
    fact = WireGuardDump().process(out.splitlines())
    logged = router.argv_log.read_text()
    calls = [line for line in logged.splitlines() if line.startswith(str(router.bin))]
    assert len(calls) == len(plan.enabled_peers)  # the hashing really ran, once per peer
    for secret in _secrets(plan):
        assert secret not in out and secret not in json.dumps(fact) and secret not in logged
    assert [p["preshared_key"] for p in fact["peers"]] == [
        p.preshared_key.fingerprint for p in plan.enabled_peers]


def test_the_router_audit_read_returns_no_key(router):
    plan = router.plan
    router.set_dump(plan, {})
    fact = router.read()
    for secret in _secrets(plan):
        assert secret not in router.raw and secret not in json.dumps(fact)


def test_the_uci_export_part_keeps_keys_off_command_lines(router):
    plan = router.plan
    router.set_dump(plan, {})
    router.argv_log.write_text("")
    router.read()
    logged = router.argv_log.read_text()
    assert not [s for s in _secrets(plan) if s in logged]


def test_each_kind_of_router_drift_is_reported(router):
    plan = router.plan
    router.uci("set", "network.wg0.listen_port=51821")
    router.uci("commit", "network")
    # a foreign rule from the VPN to the LAN, and an uncommitted change
    rule = "set firewall.@rule[-1]"
    router.uci("batch", stdin=f"add firewall rule\n{rule}.name='Hole'\n{rule}.src='vpn'\n"
                              f"{rule}.dest='lan'\n{rule}.target='ACCEPT'\ncommit firewall\n")
    router.uci("set", "dhcp.dmz.limit=7")
    unknown = "a" * 42 + "E="
    router.set_dump(plan, {}, extra=f"{unknown}\t(none)\t203.0.113.9:1\t10.10.10.99/32\t"
                                    f"{NOW}\t1\t1\toff\n")
    audit = audit_router("router", plan, router.read())
    text = table(audit)
    by_area = {}
    for f in audit.drift:
        by_area.setdefault(f.area, []).append(f.detail)
    assert any("ours: set network.wg0.listen_port='51820'" in d for d in by_area["config"]), text
    assert any("foreign: set firewall.cfg" in d and "enabled='0'" in d
               for d in by_area["config"]), text
    assert any("uci change not committed: dhcp.dmz.limit='7'" in d
               for d in by_area["config"]), text
    assert any("invariant 3" in d for d in by_area["proof"]), text
    assert any("not in the inventory" in d and "10.10.10.99/32" in d
               for d in by_area["peer"]), text
    assert "DRIFT" in text and text.startswith("router (router): ")


def test_a_peer_with_the_wrong_preshared_key_or_missing(router):
    plan = router.plan
    router.set_dump(plan, {})
    lines = router.dump.read_text().splitlines()
    alice = next(p for p in plan.peers if p.name == "alice_mac")
    lines = [line.replace(alice.preshared_key.reveal(), "B" * 43 + "=") for line in lines
             if not line.startswith(next(p for p in plan.peers
                                         if p.name == "bob_mac").public_key)]
    router.dump.write_text("\n".join(lines) + "\n")
    peers = rows(audit_router("router", plan, router.read()), "peer")
    assert peers["alice_mac"][0] == "drift"
    assert "preshared key differs from the plan's" in peers["alice_mac"][1]
    assert peers["bob_mac"] == ("drift", "10.10.10.3: not on the interface")


def test_no_interface_and_no_config():
    plan_less = parse_dump(["##pyinfra-wireguard##wireguard wg0", "1", "##pyinfra-wireguard##end"])
    assert plan_less["up"] is False and plan_less["complete"] is True
    audit = audit_router("router", None, {"state": {}, "wireguard": plan_less})
    assert [(f.area, f.status) for f in audit.findings] == [("state", "drift")]


def test_fact_arguments_and_bad_interface():
    assert "wg show wg0 dump" in WireGuardDump().command("wg0")
    with pytest.raises(ValueError):
        WireGuardDump().command("wg0; reboot")


def test_json_document_and_table():
    a = HostAudit("h1", "server")
    a.add("models", "llama3.2:latest", "drift", "declared, not installed")
    b = HostAudit("h2", "client")
    b.add("env", "~/.zshrc", "ok", "env block present once")
    doc = json.loads(json.dumps(document([a, b])))
    assert doc["drift"] is True
    assert doc["hosts"]["h1"]["findings"][0] == {
        "area": "models", "item": "llama3.2:latest", "status": "drift",
        "detail": "declared, not installed"}
    assert table(b).splitlines()[0] == "h2 (client): no drift"
    assert os.linesep not in table(a).splitlines()[-1]


def test_cross_check_of_the_clients_router_key():
    from deploys.audit_report import cross_check

    router = HostAudit("router", "router", values={"wireguard": {"public_key": "LIVE="}})
    good = HostAudit("a", "client", values={"tunnel": {"peer_public_keys": ["LIVE="]}})
    bad = HostAudit("b", "client", values={"tunnel": {"peer_public_keys": ["OLD="]}})
    assert cross_check([router, good, bad]) == [good, bad]
    assert good.drift == [] and good.findings[-1].detail == "= the live router's public key"
    assert bad.drift[0].detail == "OLD= is not the live router's LIVE="
    assert cross_check([good]) == []  # no router in this run: nothing to compare


def test_disabled_expired_and_expiring_peers_show_in_the_audit(router):
    import dataclasses
    import datetime

    plan = router.plan
    today = datetime.date.today()
    peers = {p.name: p for p in plan.peers}
    plan = dataclasses.replace(plan, peers=(
        dataclasses.replace(peers["alice_mac"], expires=today + datetime.timedelta(days=10)),
        dataclasses.replace(peers["bob_mac"], enabled=False),
        dataclasses.replace(peers["alice_phone"], expires=today - datetime.timedelta(days=1)),
    ))
    router.set_dump(router.plan, {"alice_mac": (NOW - 30, "198.51.100.7:40123")})
    audit = audit_router("router", plan, router.read())
    peer_rows = rows(audit, "peer")
    assert peer_rows["alice_mac"][0] == "ok"
    assert peer_rows["alice_mac"][1].endswith(
        f"enabled, expires {today + datetime.timedelta(days=10)} (in 10 days)")
    # bob_mac and alice_phone are still on the interface of the dump: drift, with the reason
    assert peer_rows["bob_mac"] == ("drift", "peer bob_mac: disabled (enabled: False); but on "
                                             "the interface")
    assert peer_rows["alice_phone"][0] == "drift"
    assert f"expired on {today - datetime.timedelta(days=1)}" in peer_rows["alice_phone"][1]


def test_the_expiry_job_and_the_peers_it_took_off_show_in_the_audit(router):
    import dataclasses
    import datetime

    from deploys.expiry import job_entries
    from operations.expiry_job import CRON_LINE, HOTPLUG_SCRIPT, JOB_SCRIPT, _sha, data_lines

    soon = datetime.date.today() + datetime.timedelta(days=3)
    peers = {p.name: p for p in router.plan.peers}
    plan = dataclasses.replace(router.plan, peers=(
        peers["alice_mac"], peers["bob_mac"],
        dataclasses.replace(peers["alice_phone"], expires=soon)))
    # the job took alice_phone off wg0 (its uci section is still there)
    off = dataclasses.replace(plan, peers=plan.peers[:2])
    router.set_dump(off, {"alice_mac": (NOW - 30, "198.51.100.7:40123")})
    fact = router.read()
    assert fact["state"]["expiry"] == {"files": {}, "data": [], "removed": [], "cron": []}
    audit = audit_router("router", plan, fact)
    assert rows(audit, "expiry")["job"][0] == "drift"
    assert rows(audit, "expiry")["job"][1].startswith("not installed; a run would make it watch "
                                                      "alice_phone (from ")

    fact["state"]["expiry"] = {
        "files": {"/etc/self-sovereign-ollama/expire-peers": _sha(JOB_SCRIPT),
                  "/etc/hotplug.d/iface/95-self-sovereign-ollama-expiry": _sha(HOTPLUG_SCRIPT)},
        "data": data_lines("wg0", job_entries(plan.peers)), "cron": [CRON_LINE],
        "removed": [{"name": "alice_phone", "public_key": peers["alice_phone"].public_key,
                     "when": NOW}]}
    audit = audit_router("router", plan, fact)
    expiry, peer = rows(audit, "expiry"), rows(audit, "peer")
    assert expiry["job"][0] == "ok" and expiry["job"][1].startswith(
        "installed (cron every minute, hotplug); takes alice_phone (from ")
    assert str(soon + datetime.timedelta(days=1)) in expiry["job"][1]
    assert expiry["alice_phone"][0] == "info"
    assert expiry["alice_phone"][1].startswith("taken off wg0 by the expiry job at ")
    # not expired by the controller's date: the peer row is drift, with the reason
    assert peer["alice_phone"][0] == "drift"
    assert peer["alice_phone"][1].startswith("10.10.10.") and (
        "not on the interface (taken off by the router's expiry job at " in peer["alice_phone"][1])
    assert peer["alice_phone"][1].endswith(": a run brings it back)")
