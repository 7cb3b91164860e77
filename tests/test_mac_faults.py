"""Interrupting the Mac deploys while they write on a Mac (issue 10, item 8): the controller's
pyinfra is killed with SIGINT, SIGTERM or SIGKILL at points held open by stand-in faults
(``FakeMac.set_faults``): on the server, with the Ollama plist's temp file written but not yet
renamed (``plutil -lint`` held), between the new plist and Ollama's restart (``launchctl
bootstrap`` held), with HAProxy's config written but not renamed (its ``haproxy -c`` held); on a
client, with the old tunnel down and the new config not installed (``wg-quick down`` held),
with the new config installed and the tunnel not up (``wg-quick up`` held), and with the env
file (600: it may hold the API token) uploaded but not renamed.

Each run changes what its point writes (the Mac's state flips between two values of the
inventory data that file depends on), so after the kill every managed file must be byte for
byte the old or the new one, never empty or partial, whatever the Mac went on to do by itself;
the interrupted run exits non-zero (Ctrl-C: 130); the next run converges (exit 0): the files
are the new ones, what runs runs from them (Ollama and HAProxy started after their files were
written, the tunnel up with the installed config), no temp file or restart marker of ours is
left; and the run after that changes nothing. Holds last ``HOLD`` seconds; the test waits them
out before the next run (the Mac finishes a held command on its own, as it would a slow one).
"""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import fake_mac
from tests.harness.fake_mac import STATE_DIR, FakeMac, ServerMac
from tests.harness.lab_session import run_pyinfra
from tests.harness.router_runs import background, interrupt_when
from tests.harness.sshd_host import _free_port

pytestmark = pytest.mark.ssh

_MISSING = fake_mac.missing() or (
    None if shutil.which("haproxy", path=fake_mac.HOST_PATH) else "haproxy not found")
if _MISSING:
    if os.environ.get("CI") == "true":
        pytest.fail(f"fake Mac unavailable in CI: {_MISSING}", pytrace=False)
    pytest.skip(f"fake Mac unavailable: {_MISSING}", allow_module_level=True)

HOLD = 0.8  # seconds a fault holds its point open
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
#: ``SSOL_FULL_MATRIX=1``: every point with every signal (18 runs); by default (CI time) every
#: point once, the signals taking turns so that each is sent once per role
#: (6 runs): server INT/TERM/KILL, client TERM/KILL/INT
FULL_MATRIX = os.environ.get("SSOL_FULL_MATRIX") == "1"


def _cases(points: list[str], shift: int) -> list[tuple[str, str]]:
    """(point, signal) pairs: the whole matrix, or each point once with the signals in turn."""
    names = list(SIGNALS)
    if FULL_MATRIX:
        return [(p, n) for p in points for n in names]
    return [(p, names[(i + shift) % len(names)]) for i, p in enumerate(points)]
#: temp files of ours (a killed run may leave one; the next run that writes must not)
TEMPS = ("*.pyinfra-tmp", ".*.pyinfra-tmp", "*.ssollama-new", ".*.ssollama-new", "*.new",
         ".*.new", ".pyinfra-restart-*")


class Side:
    """One fake Mac and its deploy. Its state is a string of 0/1, one per dimension of the
    inventory data (``inventory(state)`` writes it); ``files`` maps each managed file to the
    dimension its content depends on (``None``: none). The files' content for every value is
    recorded from the states 00.. and 11.. (:meth:`setup`)."""

    def __init__(self, mac: FakeMac, host: str, deploy: str,
                 inventory: Callable[[str], Path], files: dict[str, int | None],
                 temp_dirs: list[str], live: Callable[[FakeMac], None], workdir: Path) -> None:
        self.mac, self.host, self.deploy, self.inventory = mac, host, deploy, inventory
        self.files, self.temp_dirs, self.live, self.workdir = files, temp_dirs, live, workdir
        self.values: dict[str, dict[str, bytes | None]] = {}  # file -> "0"/"1" -> content
        self.state, self.dims = "", 0

    def argv(self, state: str) -> list[str]:
        return [sys.executable, "-m", "pyinfra", str(self.inventory(state)), self.deploy,
                "--limit", self.host, "-y"]

    def run(self, state: str):
        return run_pyinfra(self.workdir, self.deploy, "--limit", self.host, "-y",
                           inventory=str(self.inventory(state)))

    def read(self) -> dict[str, bytes | None]:
        return {name: (self.mac.path(name).read_bytes() if self.mac.path(name).exists() else None)
                for name in self.files}

    def expected(self, state: str) -> dict[str, bytes | None]:
        return {name: self.values[name]["0" if dim is None else state[dim]]
                for name, dim in self.files.items()}

    def temps(self) -> list[str]:
        return sorted(str(p) for d in self.temp_dirs for pattern in TEMPS
                      for p in self.mac.path(d).glob(pattern))

    def setup(self, dims: int) -> None:
        self.dims = dims
        for value in "01":
            run = self.run(value * dims)
            assert run.returncode == 0, _output(run)[-4000:]
            now = self.read()
            for name in self.files:
                self.values.setdefault(name, {})[value] = now[name]
        for name, dim in self.files.items():  # a file of a dimension differs between values
            assert (self.values[name]["0"] != self.values[name]["1"]) == (dim is not None), name
        self.state = "1" * dims


def _output(run) -> str:
    return run.stdout + run.stderr


def _interrupt_and_rerun(side: Side, dim: int, faults: list[str], trigger, after: float,
                         signame: str, tmp_path: Path) -> None:
    if not side.state:  # an earlier test failed half-way: back to a known state first
        known = "1" * side.dims
        assert side.run(known).returncode == 0
        side.state = known
    before = side.state
    target = before[:dim] + ("0" if before[dim] == "1" else "1") + before[dim + 1:]
    side.mac.set_faults([f.format(hold=HOLD) for f in faults])
    side.mac.reset_counts()
    log = tmp_path / "killed.log"
    proc = background(side.argv(target), log)
    try:
        code = interrupt_when(proc, trigger(side.mac, side.expected(target)),
                              SIGNALS[signame], log, after)
    finally:
        time.sleep(HOLD + 0.2)  # the Mac finishes what it was holding, on its own
        side.mac.set_faults([])
    text = log.read_text(errors="replace")
    assert code != 0, f"an interrupted run must not exit 0:\n{text}"
    if signame == "SIGINT":
        assert code == 130, text

    # every managed file is the old or the new one, complete
    old, new = side.expected(before), side.expected(target)
    for name, content in side.read().items():
        assert content in (old[name], new[name]), f"{name}: neither old nor new:\n{content!r}"
        if name.endswith(".plist") and content is not None:
            plistlib.loads(content)

    # the next run converges (files, what runs from them, no temp file); the next: no changes
    side.state = ""
    run = side.run(target)
    assert run.returncode == 0, _output(run)[-4000:]
    assert side.read() == new
    assert side.temps() == []
    side.live(side.mac)
    again = side.run(target)
    assert again.returncode == 0 and f"{side.host}  no changes" in _output(again), \
        _output(again)[-3000:]
    side.state = target


def _exists(mac: FakeMac, path: str):
    return lambda: mac.path(path).exists()


def _has(mac: FakeMac, path: str, content: bytes | None):
    return lambda: mac.path(path).exists() and mac.path(path).read_bytes() == content


def _exec_logged(mac: FakeMac, text: str):
    return lambda: any(text in c for c in mac.commands())


# -- the server -----------------------------------------------------------------------------

#: Homebrew's haproxy: the real one, its config check (``-c``) held at point haproxy-check
HAPROXY = """#!/bin/sh
# TEST wrapper around the real haproxy: its config check is fault point haproxy-check
case " $* " in *" -c "*) . /opt/macos-standins/faults.sh && standin_fault haproxy-check ;; esac
exec {haproxy} "$@"
"""
HOME_S = "/Users/admin"
OLLAMA_PLIST = f"{HOME_S}/Library/LaunchAgents/com.ollama.plist"
HAPROXY_PLIST = f"{HOME_S}/Library/LaunchAgents/com.haproxy.plist"
HAPROXY_CFG = f"{HOME_S}/.haproxy/haproxy.cfg"
#: dimension 0: Ollama's environment (its plist); 1: HAProxy's timeout (its config)
SERVER_DATA = ({"0": {"ollama_keep_alive": "24h"}, "1": {"ollama_keep_alive": "1h"}},
               {"0": {"haproxy_timeout": "10m"}, "1": {"haproxy_timeout": "11m"}})


def _started_after(mac: FakeMac, label: str, *paths: str) -> None:
    """The job ``label`` runs, in a process started after ``paths`` were last written."""
    status = next(mac.path(STATE_DIR).glob(f"launchd/domains/**/jobs/{label}/status.json"))
    pid = json.loads(status.read_text())["pid"]
    assert pid, f"{label} is not running"
    ticks = int(mac.path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    boot = time.time() - float(Path("/proc/uptime").read_text().split()[0])
    started = boot + ticks / os.sysconf("SC_CLK_TCK")
    for path in paths:
        assert started >= mac.path(path).stat().st_mtime - 0.05, \
            f"{label} runs from before {path} was written"


def _server_live(mac: FakeMac) -> None:
    _started_after(mac, "com.ollama", OLLAMA_PLIST)
    _started_after(mac, "com.haproxy", HAPROXY_PLIST, HAPROXY_CFG)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    real = shutil.which("haproxy", path=fake_mac.HOST_PATH)
    mac = ServerMac(_free_port(), _free_port(), haproxy=HAPROXY.format(haproxy=real)).start()
    work = tmp_path_factory.mktemp("server")
    network = {"vpn_endpoint": "vpn.example.org", "dmz_subnet": "127.0.0.0/24",
               "ollama_port": mac.ollama_port, "secrets_dir": str(work / "secrets")}

    def inventory(state: str) -> Path:
        data = {**mac.inventory_data(), **network, "dmz_address": "127.0.0.10",
                "proxy": "haproxy", "log_rotate": False, "ollama_models": []}
        for dim, value in enumerate(state):
            data.update(SERVER_DATA[dim][value])
        path = work / f"inventory_{state}.py"
        path.write_text(
            f"_net = {network!r}\n"
            'router = [("router", {"ssh_hostname": "127.0.0.9", "ssh_port": 9, **_net})]\n'
            f"server = [('ai-server', {data!r})]\n")
        return path

    try:
        side = Side(mac, "ai-server", "deploys/server.py", inventory,
                    {OLLAMA_PLIST: 0, HAPROXY_CFG: 1, HAPROXY_PLIST: None},
                    [f"{HOME_S}/Library/LaunchAgents", f"{HOME_S}/.haproxy", HOME_S],
                    _server_live,
                    work)
        side.setup(2)
        yield side
    finally:
        mac.stop()


#: point -> (dimension it changes, faults, trigger(mac, the new files' content),
#: seconds after the trigger)
SERVER_POINTS = {
    "plist-written-not-renamed": (0, ["plutil-lint delay {hold}"],
                                  lambda m, new: _exists(m, OLLAMA_PLIST + ".pyinfra-tmp"), 0.1),
    "plist-renamed-not-loaded": (0, ["exec:launchctl*bootstrap delay {hold}"],
                                 lambda m, new: _exec_logged(m, "launchctl bootstrap"), 0.1),
    "haproxy-cfg-written-not-renamed": (
        1, ["haproxy-check delay {hold}"],
        lambda m, new: _exists(m, HAPROXY_CFG + ".pyinfra-tmp"), 0.1),
}


@pytest.mark.parametrize(("point", "signame"), _cases(list(SERVER_POINTS), 0))
def test_server_interrupted_while_writing(server, point, signame, tmp_path):
    dim, faults, trigger, after = SERVER_POINTS[point]
    _interrupt_and_rerun(server, dim, faults, trigger, after, signame, tmp_path)


# -- a client -------------------------------------------------------------------------------

HOME_C = "/Users/alice"
CONF = "/opt/homebrew/etc/wireguard/wg-ollama.conf"
KEY = "/opt/homebrew/etc/wireguard/wg-ollama.key"
DAEMON = "/Library/LaunchDaemons/org.self-sovereign-ollama.wireguard.wg-ollama.plist"
ENV = f"{HOME_C}/.config/self-sovereign-ollama/env.sh"
#: dimension 0: the tunnel's keepalive and the server's address (the config, the env file)
CLIENT_DATA = {"0": ({"vpn_keepalive": 25}, "192.168.100.10"),
               "1": ({"vpn_keepalive": 26}, "192.168.100.11")}


def _client_live(mac: FakeMac) -> None:
    """The tunnel is up with the installed config; the env file is 600."""
    device = mac.path("/run/wireguard/wg-ollama.name").read_text().strip()
    assert mac.path(f"/run/wireguard/{device}.applied").read_bytes() == mac.path(CONF).read_bytes()
    assert mac.path(ENV).stat().st_mode & 0o777 == 0o600


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    work = tmp_path_factory.mktemp("client")
    mac = FakeMac(work / "mac", user="alice", files={f"{HOME_C}/.zshrc": "export EDITOR=vi\n"},
                  machine={"os": {"product_version": "15.5"},
                           "homebrew": {"formulae": fake_mac.client_formulae()}}).start()

    def inventory(state: str) -> Path:
        extra, server_address = CLIENT_DATA[state]
        return fake_mac.write_client_inventory(
            work / f"inventory_{state}.py", mac, work / "secrets",
            {"aider": True, "aider_models": ["qwen2.5-coder:32b"]}, network=extra,
            server_address=server_address)

    try:
        side = Side(mac, "alice-mac", "deploys/client.py", inventory,
                    {CONF: 0, ENV: 0, f"{HOME_C}/.aider.conf.yml": 0, KEY: None, DAEMON: None,
                     f"{HOME_C}/.zshrc": None},
                    ["/opt/homebrew/etc/wireguard", "/Library/LaunchDaemons",
                     f"{HOME_C}/.config/self-sovereign-ollama", HOME_C], _client_live, work)
        side.setup(1)
        yield side
    finally:
        mac.stop()


def _env_uploaded(mac: FakeMac, new):
    def reached() -> bool:
        if not any("mv -f" in c and "env.sh.ssollama-new" in c for c in mac.commands()):
            return False
        new = mac.path(ENV + ".ssollama-new")  # the secret is 600 from its creation on
        assert new.stat().st_mode & 0o777 == 0o600
        return True
    return reached


CLIENT_POINTS = {
    "tunnel-down-config-not-installed": (0, ["wg-quick-down delay {hold}"],
                                         lambda m, new: _exec_logged(m, "wg-quick down"), 0.3),
    "config-installed-tunnel-not-up": (0, ["wg-quick-up delay {hold}"],
                                       lambda m, new: _has(m, CONF, new[CONF]), 0.1),
    "env-file-uploaded-not-renamed": (0, ["exec:mv*env.sh.ssollama-new delay {hold}"],
                                      _env_uploaded, 0.0),
}


@pytest.mark.parametrize(("point", "signame"), _cases(list(CLIENT_POINTS), 1))
def test_client_interrupted_while_writing(client, point, signame, tmp_path):
    dim, faults, trigger, after = CLIENT_POINTS[point]
    _interrupt_and_rerun(client, dim, faults, trigger, after, signame, tmp_path)
