"""Interrupting the Mac deploys while they write on a Mac (issue 10, item 8): the controller's
pyinfra is killed with SIGINT, SIGTERM or SIGKILL at points held open by stand-in faults
(``FakeMac.set_faults``): on the server, with the Ollama plist's temp file written but not yet
renamed (``plutil -lint`` held), between the plist's rename and ``launchctl bootstrap`` (the job
booted out, not loaded again), with HAProxy's config written but not renamed (its ``haproxy
-c`` held); on a client, with the old tunnel down and the new config not installed
(``wg-quick down`` held), with the new config installed and the tunnel not up yet (``wg-quick
up`` held), and with the env file (the API's contract, 600) uploaded but not renamed.

Each run goes from one desired state to the other (A <-> B: every file above differs), so
after the kill every managed file must be byte for byte the old or the new one (never empty
or partial), whatever the Mac went on to do by itself; the interrupted run exits non-zero
(Ctrl-C: 130); the next run converges (exit 0), leaves no temp file of ours, and the one after
changes nothing. Holds are ``HOLD`` seconds; the test waits them out before the next run (the
Mac finishes a held command on its own, as it would a slow one).
"""

from __future__ import annotations

import os
import plistlib
import signal
import time
from pathlib import Path

import pytest

from tests.harness import fake_mac
from tests.harness.fake_mac import FakeMac, ServerMac
from tests.harness.lab_session import run_pyinfra
from tests.harness.openwrt_host import _free_port
from tests.harness.router_runs import background, interrupt_when

pytestmark = pytest.mark.ssh

_MISSING = fake_mac.missing()
if _MISSING:
    if os.environ.get("CI") == "true":
        pytest.fail(f"fake Mac unavailable in CI: {_MISSING}", pytrace=False)
    pytest.skip(f"fake Mac unavailable: {_MISSING}", allow_module_level=True)

HOLD = 1.5  # seconds a fault holds its point open
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
#: temp files of ours (a killed run may leave one; the next run that writes must not)
TEMPS = ("*.pyinfra-tmp", "*.ssollama-new", "*.new")


class Side:
    """One fake Mac, its two inventories (A, B), the managed files' content in each, and the
    state it is in now."""

    def __init__(self, mac: FakeMac, host: str, deploy: str, inventories: dict[str, Path],
                 files: list[str], temp_dirs: list[str], workdir: Path) -> None:
        self.mac, self.host, self.deploy = mac, host, deploy
        self.inventories, self.files, self.temp_dirs = inventories, files, temp_dirs
        self.workdir = workdir
        self.snapshots: dict[str, dict[str, bytes | None]] = {}
        self.current = ""

    def run(self, state: str, *args: str):
        t = time.monotonic()
        r = run_pyinfra(self.workdir, self.deploy, "--limit", self.host, "-y", *args,
                           inventory=str(self.inventories[state]))
        with open("/tmp/mackill-scratch/times.log", "a") as f:
            f.write(f"{self.host} {state} {time.monotonic()-t:.2f}\n")
        return r

    def argv(self, state: str) -> list[str]:
        import sys

        return [sys.executable, "-m", "pyinfra", str(self.inventories[state]), self.deploy,
                "--limit", self.host, "-y"]

    def read(self) -> dict[str, bytes | None]:
        out = {}
        for name in self.files:
            path = self.mac.path(name)
            out[name] = path.read_bytes() if path.exists() else None
        return out

    def temps(self) -> list[str]:
        found = []
        for d in self.temp_dirs:
            for pattern in TEMPS:
                found += [str(p) for p in self.mac.path(d).glob(pattern)]
                found += [str(p) for p in self.mac.path(d).glob("." + pattern)]
        return sorted(found)

    def converge(self, state: str) -> None:
        run = self.run(state)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        again = self.run(state)
        out = again.stdout + again.stderr
        assert again.returncode == 0 and f"{self.host}  no changes" in out, out[-3000:]
        assert self.temps() == []
        self.snapshots[state] = self.read()
        self.current = state


def _output(run) -> str:
    return run.stdout + run.stderr


# -- the server -----------------------------------------------------------------------------

#: Homebrew's haproxy: the real one, its config check (``-c``) held by point haproxy-check
HAPROXY = """#!/bin/sh
# TEST wrapper around the real haproxy: its config check is fault point haproxy-check
case " $* " in *" -c "*) . /opt/macos-standins/faults.sh && standin_fault haproxy-check ;; esac
exec {haproxy} "$@"
"""
SERVER_STATES = {"A": {"ollama_keep_alive": "24h", "haproxy_timeout": "10m"},
                 "B": {"ollama_keep_alive": "1h", "haproxy_timeout": "11m"}}
HOME_S = "/Users/admin"
OLLAMA_PLIST = f"{HOME_S}/Library/LaunchAgents/com.ollama.plist"
HAPROXY_PLIST = f"{HOME_S}/Library/LaunchAgents/com.haproxy.plist"
HAPROXY_CFG = f"{HOME_S}/.haproxy/haproxy.cfg"


def _server_inventory(mac: ServerMac, path: Path, state: str) -> Path:
    network = {"vpn_endpoint": "vpn.example.org", "dmz_subnet": "127.0.0.0/24",
               "ollama_port": mac.ollama_port, "secrets_dir": str(path.parent / "secrets")}
    data = {**mac.inventory_data(), **network, "dmz_address": "127.0.0.10", "proxy": "haproxy",
            "log_rotate": False, "ollama_models": [], **SERVER_STATES[state]}
    path.write_text(
        f"_net = {network!r}\n"
        'router = [("router", {"ssh_hostname": "127.0.0.9", "ssh_port": 9, **_net})]\n'
        f"server = [('ai-server', {data!r})]\n")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import shutil

    real = shutil.which("haproxy", path=fake_mac.HOST_PATH)
    if real is None:
        pytest.skip("haproxy not found")
    mac = ServerMac(_free_port(), _free_port(), haproxy=HAPROXY.format(haproxy=real)).start()
    try:
        work = tmp_path_factory.mktemp("server")
        side = Side(mac, "ai-server", "deploys/server.py",
                    {s: _server_inventory(mac, work / f"inventory_{s}.py", s) for s in "AB"},
                    [OLLAMA_PLIST, HAPROXY_PLIST, HAPROXY_CFG],
                    [f"{HOME_S}/Library/LaunchAgents", f"{HOME_S}/.haproxy"], work)
        side.converge("A")
        side.converge("B")
        yield side
    finally:
        mac.stop()


def _exists(mac: FakeMac, path: str):
    return lambda: mac.path(path).exists()


def _exec_logged(mac: FakeMac, text: str):
    return lambda: any(text in c for c in mac.commands())


#: point -> (faults, trigger(mac), seconds after the trigger)
SERVER_POINTS = {
    "plist-written-not-renamed": (["plutil-lint delay {hold}"],
                                  lambda m: _exists(m, OLLAMA_PLIST + ".pyinfra-tmp"), 0.1),
    "plist-renamed-not-loaded": (["exec:launchctl*bootstrap delay {hold}"],
                                 lambda m: _exec_logged(m, "launchctl bootstrap"), 0.1),
    "haproxy-cfg-written-not-renamed": (["haproxy-check delay {hold}"],
                                        lambda m: _exists(m, HAPROXY_CFG + ".pyinfra-tmp"), 0.1),
}


# -- a client -------------------------------------------------------------------------------

HOME_C = "/Users/alice"
CONF = "/opt/homebrew/etc/wireguard/wg-ollama.conf"
KEY = "/opt/homebrew/etc/wireguard/wg-ollama.key"
DAEMON = "/Library/LaunchDaemons/org.self-sovereign-ollama.wireguard.wg-ollama.plist"
ENV = f"{HOME_C}/.config/self-sovereign-ollama/env.sh"
CLIENT_STATES = {"A": ({"vpn_keepalive": 25}, "192.168.100.10"),
                 "B": ({"vpn_keepalive": 26}, "192.168.100.11")}


def _client_inventory(mac: FakeMac, path: Path, state: str) -> Path:
    extra, server_address = CLIENT_STATES[state]
    net = {"vpn_subnet": "10.10.10.0/24", "vpn_endpoint": "vpn.example.org", "vpn_port": 51820,
           "dmz_subnet": "192.168.100.0/24", "lan_subnet": "192.168.1.0/24", **extra,
           "secrets_dir": str(path.parent / "secrets"),
           "peer_output_dir": str(path.parent / "out")}
    client = {"aider": True, "aider_models": ["qwen2.5-coder:32b"]}
    path.write_text(
        "from deploys.plan import validate_before_connect\n"
        "validate_before_connect()\n"
        f"NET = {net!r}\n"
        "router = [('router', {'ssh_hostname': '192.0.2.1', **NET})]\n"
        f"server = [('ai-server', {{'ssh_hostname': '192.0.2.2', 'dmz_address': "
        f"{server_address!r}, **NET}})]\n"
        f"clients = [('alice-mac', {{**{mac.inventory_data()!r}, **NET, 'vpn_name': 'alice_mac',"
        f" **{client!r}}})]\n")
    return path


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    work = tmp_path_factory.mktemp("client")
    mac = FakeMac(work / "mac", user="alice", files={f"{HOME_C}/.zshrc": "export EDITOR=vi\n"},
                  machine={"os": {"product_version": "15.5"},
                           "homebrew": {"formulae": fake_mac.client_formulae()}}).start()
    try:
        side = Side(mac, "alice-mac", "deploys/client.py",
                    {s: _client_inventory(mac, work / f"inventory_{s}.py", s) for s in "AB"},
                    [CONF, KEY, DAEMON, ENV, f"{HOME_C}/.zshrc", f"{HOME_C}/.aider.conf.yml"],
                    ["/opt/homebrew/etc/wireguard", "/Library/LaunchDaemons",
                     f"{HOME_C}/.config/self-sovereign-ollama", HOME_C], work)
        side.converge("A")
        side.converge("B")
        assert side.snapshots["A"][CONF] != side.snapshots["B"][CONF]
        assert side.snapshots["A"][ENV] != side.snapshots["B"][ENV]
        yield side
    finally:
        mac.stop()


def _env_uploaded(mac: FakeMac):
    def reached() -> bool:
        if not any("mv -f" in c and "env.sh.ssollama-new" in c for c in mac.commands()):
            return False
        new = mac.path(ENV + ".ssollama-new")  # the secret is 600 from its creation on
        assert new.stat().st_mode & 0o777 == 0o600
        return True
    return reached


CLIENT_POINTS = {
    "tunnel-down-config-not-installed": (["wg-quick-down delay {hold}"],
                                         lambda m: _exec_logged(m, "wg-quick down"), 0.4),
    "config-installed-tunnel-not-up": (["wg-quick-up delay {hold}"],
                                       lambda m: _exec_logged(m, "wg-quick up"), 0.4),
    "env-file-uploaded-not-renamed": (["exec:mv*env.sh.ssollama-new delay {hold}"],
                                      _env_uploaded, 0.0),
}


# -- the runs -------------------------------------------------------------------------------

def _interrupt_and_rerun(side: Side, faults: list[str], trigger, after: float, signame: str,
                         tmp_path: Path) -> None:
    target = "A" if side.current == "B" else "B"
    before = side.current
    side.mac.set_faults([f.format(hold=HOLD) for f in faults])
    side.mac.reset_counts()
    log = tmp_path / "killed.log"
    proc = background(side.argv(target), log)
    try:
        code = interrupt_when(proc, trigger(side.mac), SIGNALS[signame], log, after)
    finally:
        time.sleep(HOLD + 0.5)  # the Mac finishes what it was holding, on its own
        side.mac.set_faults([])
    text = log.read_text(errors="replace")
    assert code != 0, f"an interrupted run must not exit 0:\n{text}"
    if signame == "SIGINT":
        assert code == 130, text

    # every managed file is the old or the new one, complete
    now = side.read()
    for name, content in now.items():
        allowed = {side.snapshots[before][name], side.snapshots[target][name]}
        assert content in allowed, f"{name} is neither the old nor the new one:\n{content!r}"
        if name.endswith(".plist") and content is not None:
            plistlib.loads(content)

    # the next run converges, leaves no temp file; the one after changes nothing
    side.current = ""
    run = side.run(target)
    assert run.returncode == 0, _output(run)[-4000:]
    assert side.read() == side.snapshots[target]
    assert side.temps() == []
    again = side.run(target)
    assert again.returncode == 0 and f"{side.host}  no changes" in _output(again), \
        _output(again)[-3000:]
    side.current = target


@pytest.mark.parametrize("signame", list(SIGNALS))
@pytest.mark.parametrize("point", list(SERVER_POINTS))
def test_server_interrupted_while_writing(server, point, signame, tmp_path):
    faults, trigger, after = SERVER_POINTS[point]
    _interrupt_and_rerun(server, faults, trigger, after, signame, tmp_path)


@pytest.mark.parametrize("signame", list(SIGNALS))
@pytest.mark.parametrize("point", list(CLIENT_POINTS))
def test_client_interrupted_while_writing(client, point, signame, tmp_path):
    faults, trigger, after = CLIENT_POINTS[point]
    _interrupt_and_rerun(client, faults, trigger, after, signame, tmp_path)
