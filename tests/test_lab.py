"""The lab (DESIGN.md section 6, layer 5): the home network on this machine -- network
namespaces as hosts, real OpenSSH, BusyBox ash as the router's shell, real nftables loaded
from the fw4 model, real wireguard-go tunnels, the server and the clients as fake Macs
(``tests/lab/macs.py``: a non-root user with sudo, Homebrew, launchd and the macOS stand-ins;
the server's Ollama is the Ollama API stand-in run by the server role's launchd job) --
converged with the pyinfra CLI exactly as at home (``pyinfra inventories/lab.py
deploys/all.py``), then checked with real packets.

The lab is built once for the module (``python3 -m tests.lab up`` into a temporary directory,
namespace prefix ``ssolt<pid>-``) and removed at the end. The tests build on each other in file
order (converge, no-op, packets, revocation, drift, --limit), but each can run alone.
"""

from __future__ import annotations

import datetime
import json
import os
import runpy
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deploys.expiry import cutoff
from deploys.keys import KeyStore
from deploys.peers import peer_config
from deploys.plan import NETWORK_DEFAULTS, materialize, validate
from deploys.server_upkeep import NEWSYSLOG_CONF
from facts.openwrt import (
    CRON_MARK,
    CRONTAB,
    EXPIRY_DATA,
    EXPIRY_HOTPLUG,
    EXPIRY_LOG,
    EXPIRY_SCRIPT,
)
from firewall import build
from firewall.proof import check
from operations.expiry_job import CRON_LINE
from tests.harness.lab_session import lab_up, require_lab, run_pyinfra
from tests.harness.openwrt_host import REPO, _tool
from tests.lab.lab import ALL_MANAGED, LabState, cleanup
from tests.lab.probes import PROBE_ALLOWED, catalogue, run_probes, start_listeners
from tests.lab.topology import stale_prefixes
from tests.lab.tunnels import PeerTunnel, RoleTunnel

pytestmark = [pytest.mark.lab, pytest.mark.ssh]

require_lab()

#: per test run, so that concurrent runs (several developers on one machine) never collide;
#: leftovers of crashed runs are found by the dead pid in the name
PREFIX_BASE = "ssolt"
PREFIX = f"{PREFIX_BASE}{os.getpid()}-"
INVENTORY = "inventories/lab.py"
PEERS = ("client1", "client2", "phone")
MACS = ("server", "client1", "client2")
CLIENTS = ("client1", "client2")
OLLAMA = "http://192.168.100.10:11434"
OLLAMA_VERSION = "0.32.15"  # what the Ollama API stand-in reports
PLIST = "/Users/admin/Library/LaunchAgents/com.ollama.plist"
WG_CONF = "/opt/homebrew/etc/wireguard/wg-ollama.conf"


# -- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lab")
    with lab_up(directory, PREFIX_BASE) as state:
        yield state


def pyinfra(lab: LabState, *args: str, inventory: str = INVENTORY
            ) -> subprocess.CompletedProcess[str]:
    """``pyinfra <inventory> deploys/all.py ARGS`` against the lab, as a user runs it."""
    return run_pyinfra(lab.dir, "deploys/all.py", *args, inventory=inventory, timeout=300)


def output(run: subprocess.CompletedProcess[str]) -> str:
    return run.stdout + run.stderr


def changed_operations(run: subprocess.CompletedProcess[str]) -> str:
    """The "Success" column of pyinfra's "Grand total" row(s) ("-" when nothing changed)."""
    totals = [line.split()[3] for line in output(run).splitlines()
              if line.strip().startswith("Grand total")]
    if not totals:
        raise AssertionError(f"no results table in:\n{output(run)}")
    changed = sum(int(x) for x in totals if x != "-")
    return str(changed) if changed else "-"


def http_get(lab: LabState, role: str, url: str) -> tuple[int, str]:
    """GET from inside a role's network namespace: (status, body); status 0: no answer."""
    code = ("import sys, urllib.request\ntry:\n"
            " r = urllib.request.urlopen(sys.argv[1], timeout=3); print(r.status); "
            "print(r.read().decode())\nexcept Exception as e:\n print(0); print(e)\n")
    result = lab.topology.exec(role, sys.executable, "-c", code, url, check=False)
    status, _, body = result.stdout.partition("\n")
    return int(status or 0), body.strip()


def job_state(lab: LabState, host: str, target: str) -> dict[str, str]:
    """``state`` and ``pid`` of a launchd job of a lab Mac (uncounted)."""
    out = lab.mac_run(host, f"launchctl print {target} 2>&1", user=True).stdout
    return {k: v for k, _, v in (line.strip().partition(" = ") for line in out.splitlines())
            if k in ("state", "pid")}


def lab_plan(lab: LabState):
    """The plan of inventories/lab.py, built as deploys/plan.py does (no pyinfra run)."""
    from pyinfra.context import ctx_state

    saved = os.environ.get("SSOL_LAB_DIR")
    os.environ["SSOL_LAB_DIR"] = str(lab.dir)
    try:
        # outside any pyinfra run: other tests may leave a (fake) pyinfra state set
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
    return materialize(spec, KeyStore(spec.secrets_dir))


def wg_peers(lab: LabState) -> set[str]:
    return set(lab.router_run("wg show wg0 peers", check=True).stdout.split())


@pytest.fixture(scope="module")
def converged(lab):
    """The first run, from factory state, and the counts it caused."""
    mark = lab.mark()
    run = pyinfra(lab, "-y")
    return run, lab.counts(mark), lab.events()


@pytest.fixture(scope="module")
def tunnels(lab, converged):
    assert converged[0].returncode == 0
    # the clients: the tunnels their client role brought up (wg-quick up in the fake Mac)
    made: dict = {p: RoleTunnel(lab, p, extra_allowed=PROBE_ALLOWED) for p in CLIENTS}
    for tunnel in made.values():
        tunnel.refresh()
    # the phone: the config the product generated for it, used as is (nothing from secrets)
    phone_conf = lab.dir / "out" / "peers" / "phone.conf"
    assert phone_conf.is_file(), phone_conf
    assert phone_conf.stat().st_mode & 0o777 == 0o600, oct(phone_conf.stat().st_mode)
    made["phone"] = PeerTunnel.from_config(lab.topology, "phone", phone_conf,
                                           extra_allowed=PROBE_ALLOWED).up()
    yield made
    made["phone"].down()


@pytest.fixture(scope="module")
def listeners(lab):
    running = start_listeners(lab.topology, ollama_served=True)
    yield running
    running.stop()


def reconverge(lab: LabState) -> None:
    run = pyinfra(lab, "-y")
    assert run.returncode == 0, output(run)


def tcp_ok(lab: LabState, role: str, dst: str, port: int) -> bool:
    probe = [{"id": "x", "kind": "tcp", "dst": dst, "port": port, "timeout": 1.5}]
    result = lab.topology.exec(role, sys.executable, str(REPO / "tests" / "lab" / "agent.py"),
                               "probe", json.dumps(probe))
    return json.loads(result.stdout)["x"]["ok"]


# -- the tests -----------------------------------------------------------------------------


def test_converge_from_factory_state_on_every_host(lab, converged):
    run, counts, events = converged
    assert run.returncode == 0, output(run)
    for host in ALL_MANAGED:
        assert f"[{host}]" in output(run) and counts[host]["connections"] >= 1, counts
    # the router: one read, one install, one upload + apply, one confirmation; the lab's Macs
    # are fresh (no wireguard-tools before this run), so the keys they make during the run reach
    # the router at its end (deploys/router_late.py): one more read, upload + apply, ifup wg0
    late = "OpenWrt: add the keys made on" in output(run)
    assert late, output(run)
    assert counts["router"]["uploads"] == 2, lab.commands("router")
    assert counts["router"]["execs"] <= 12, lab.commands("router")
    assert events == ["network reload", "dnsmasq reload", "firewall reload", "ifup wg0"]
    # the LaunchAgent advice comes with the service's installation; the summary names each host
    assert output(run).count("Ollama runs as a LaunchAgent of") == 1, output(run)
    assert "--> Per host:" in output(run) and "    server   changed: " in output(run)
    netifd = [line.split("] ", 1)[1] for line in lab.router_file("/tmp/lab-standin.log")
              .read_text().splitlines() if "] interface " in line]
    assert {"interface wg0: up", "interface dmz: up"} <= set(netifd), netifd
    assert not any("restart" in line and "wg0" not in line for line in netifd), netifd  # lan, wan
    assert [line for line in netifd if "restart" in line] == ["interface wg0: restart"], netifd
    # what the stand-ins built from UCI is really there
    assert lab.live_devices() == {"dmz": "lan4", "lan": "br-lan", "loopback": "lo",
                                  "wan": "wan", "wan6": "wan", "wg0": "wg0"}
    bridge = lab.topology.ip("router", "-o", "link", "show", "master", "br-lan").stdout
    assert "lan1" in bridge and "lan4" not in bridge
    addrs = lab.topology.ip("router", "-o", "-4", "addr", "show").stdout
    for cidr in ("192.168.1.1/24", "192.168.100.1/24", "203.0.113.2/24", "10.10.10.1/24"):
        assert cidr in addrs
    plan = lab_plan(lab)
    assert wg_peers(lab) == {p.public_key for p in plan.enabled_peers}
    ruleset = lab.router_run("nft list table inet fw4", check=True).stdout
    assert "masquerade" in ruleset and "192.168.100.10" in ruleset
    assert check(lab.router_config(), plan, lab.live_devices()) == []
    print("\nexecs per host, converge:", {h: counts[h]["execs"] for h in ALL_MANAGED})
    # the Macs: every command ran as the login user (root only through sudo)
    for host in MACS:
        uids = {json.loads(line)["uid"] for line in
                Path(lab.data["hosts"][host]["commands_log"]).read_text().splitlines()}
        assert uids == {501}, (host, uids)
        assert 1 <= counts[host]["execs"] <= 25, (host, lab.commands(host))
    # the server: moved from its DHCP lease to the static address, REALLY (networksetup)
    addrs = lab.topology.ip("server", "-o", "-4", "addr", "show", "dev", "eth0").stdout
    assert " 192.168.100.10/24 " in addrs and "192.168.100.120" not in addrs, addrs
    assert "default via 192.168.100.1 " in lab.topology.ip("server", "route").stdout
    info = lab.mac_run("server", "networksetup -getinfo Ethernet").stdout
    assert info.startswith("Manual Configuration\nIP address: 192.168.100.10\n"), info
    # Ollama: the role's LaunchAgent, serving the DMZ address, the model pulled and warm
    assert job_state(lab, "server", "user/501/com.ollama").get("state") == "running"
    assert "<string>192.168.100.10:11434</string>" in lab.mac_file("server", PLIST).read_text()
    status, body = http_get(lab, "server", f"{OLLAMA}/api/tags")
    assert status == 200 and [m["name"] for m in json.loads(body)["models"]] == ["llama3.2:1b"]
    status, body = http_get(lab, "server", f"{OLLAMA}/api/ps")
    assert [m["name"] for m in json.loads(body)["models"]] == ["llama3.2:1b"]
    pmset = lab.mac_run("server", "pmset -g custom").stdout
    assert " sleep                0" in pmset and " autorestart          1" in pmset
    # log rotation: the newsyslog file in the fake Mac's own /etc (root, 644), every log in it
    rotate = lab.mac_run("server", f"stat -c '%U %a' {NEWSYSLOG_CONF} && cat {NEWSYSLOG_CONF}",
                         check=True).stdout
    assert rotate.startswith("root 644\n"), rotate
    for log in ("/tmp/ollama.stdout.log", "/tmp/ollama.stderr.log", "/tmp/ollama.warm.log"):
        assert f"\n{log} " in rotate, rotate
    # the clients: their own tunnel config (root, 600), the LaunchDaemon, the env file
    for client in ("client1", "client2"):
        conf = lab.mac_run(client, f"stat -c '%U %a' {WG_CONF} && cat {WG_CONF}", check=True)
        owner, _, text = conf.stdout.partition("\n")
        assert owner == "root 600"
        # the controller's config plus the key the Mac made itself (key_on_mac)
        own = lab.mac_file(client, "/opt/homebrew/etc/wireguard/wg-ollama.key").read_text()
        assert text == peer_config(plan, plan.peer(client)).reveal().replace(
            "[Interface]\n", f"[Interface]\nPrivateKey = {own}", 1)
        # wg-quick (the lab's stand-in) REALLY brought the tunnel up in the client's namespace
        dev = lab.mac_file(client, "/var/run/wireguard/wg-ollama.name").read_text().strip()
        assert dev.startswith("utun"), dev
        assert lab.mac_file(client, f"/var/run/wireguard/{dev}.sock").is_socket()
        link = lab.topology.ip(client, "-o", "-4", "addr", "show", "dev", dev).stdout
        assert f" {plan.peer(client).address}/32 " in link, link
        routes = lab.topology.ip(client, "route", "show", "dev", dev).stdout
        assert "10.10.10.0/24" in routes and "192.168.100.10" in routes, routes
        daemon = lab.mac_file(
            client, "/Library/LaunchDaemons/org.self-sovereign-ollama.wireguard.wg-ollama.plist")
        assert daemon.exists()
        user = lab.data["hosts"][client]["mac_home"]
        env = lab.mac_file(client, f"{user}/.config/self-sovereign-ollama/env.sh").read_text()
        assert f"OLLAMA_API_BASE={OLLAMA}\n" in env and "claude-ollama()" in env


def test_second_run_changes_nothing(lab, converged):
    assert converged[0].returncode == 0
    before = {p: lab.read_config(p) for p in ("network", "firewall", "dhcp")}
    wg_pid = lab.router_run("pidof wireguard-go").stdout
    assert wg_pid.strip()
    lab.clear_events()
    mark = lab.mark()
    run = pyinfra(lab)
    assert run.returncode == 0, output(run)
    assert changed_operations(run) == "-", output(run)
    # nothing to confirm, and no advice repeated on a run that changes nothing
    assert "Press enter" not in output(run) and "LaunchAgent" not in output(run), output(run)
    counts = lab.counts(mark)
    print("\nexecs per host, no-op:", {h: counts[h]["execs"] for h in ALL_MANAGED})
    assert counts["router"]["uploads"] == 0 and counts["router"]["execs"] <= 2, counts
    # the server: its one read; a client: its two reads (state, then the tunnel's, with sudo)
    assert counts["server"]["execs"] == 1 and counts["server"]["uploads"] == 0, counts
    for client in ("client1", "client2"):
        assert counts[client]["execs"] == 2 and counts[client]["uploads"] == 0, counts
    assert lab.events() == []
    assert {p: lab.read_config(p) for p in before} == before
    assert lab.router_run("pidof wireguard-go").stdout == wg_pid  # wg0 was not restarted


def test_packets_obey_the_invariants_and_the_fw4_model(lab, tunnels, listeners):
    for name, tunnel in tunnels.items():  # WAN -> router udp/51820: the handshakes
        tunnel.refresh()
        assert tunnel.wait_handshake(), f"{name}: no WireGuard handshake with the router"
    probes = catalogue({name: tunnel.address for name, tunnel in tunnels.items()})
    assert len(probes) >= 20
    results = run_probes(lab.topology, probes)
    fw = build(lab.router_config(), lab.live_devices())
    wrong = []
    for p in probes:
        got = results[p.id]
        model = fw.verdict(p.flow)
        if got["ok"] != p.allowed or model.accepted != got["ok"]:
            wrong.append(f"{p.description}: invariant says {'allowed' if p.allowed else 'denied'}"
                         f", packets {'got through' if got['ok'] else 'did not'} "
                         f"({got['detail']}), fw4 model: {model}")
    assert not wrong, "\n".join(wrong)


def test_vpn_clients_reach_the_real_ollama_and_nothing_else(lab, tunnels, listeners):
    """Through the tunnel (keys of the clients' wg-ollama.conf), the clients get the Ollama
    stand-in that the server role's launchd job serves on 192.168.100.10:11434; everything else
    on the server (ssh, 8080, udp, ping) is denied (the probe catalogue, invariant 2)."""
    job = job_state(lab, "server", "user/501/com.ollama")
    assert job.get("state") == "running", job
    for client in ("client1", "client2"):
        tunnels[client].refresh()
        assert tunnels[client].wait_handshake()
        status, body = http_get(lab, client, f"{OLLAMA}/api/version")
        assert status == 200 and json.loads(body) == {"version": OLLAMA_VERSION}, (status, body)
        # the listener is the launchd job's process, not one of the probes' listeners
        sock = lab.mac_run("server", "ss -Htlnp 'sport = :11434'").stdout  # the Mac's pids
        assert f"pid={job['pid']}," in sock, sock
    probes = [p for p in catalogue({n: t.address for n, t in tunnels.items()})
              if p.src in ("client1", "client2") and p.dst == "192.168.100.10"]
    assert {p.allowed for p in probes} == {True, False}
    results = run_probes(lab.topology, probes)
    assert {p.description: results[p.id]["ok"] for p in probes} == {
        p.description: p.allowed for p in probes}


def test_revoked_peer_loses_its_tunnel(lab, tunnels, listeners, tmp_path):
    revoked = tmp_path / "lab_revoked.py"
    revoked.write_text(textwrap.dedent(f"""\
        # inventories/lab.py with client2 revoked (vpn_enabled False)
        import runpy as _runpy
        _inv = _runpy.run_path({str(REPO / INVENTORY)!r})
        router, server = _inv["router"], _inv["server"]
        clients = [(n, {{**d, "vpn_enabled": False}} if n == "client2" else d)
                   for n, d in _inv["clients"]]
        """))
    c2_key = tunnels["client2"].private_key
    c2_public = subprocess.run([_tool("wg"), "pubkey"], input=c2_key, capture_output=True,
                               text=True, check=True).stdout.strip()
    lab.clear_events()
    run = pyinfra(lab, "-y", inventory=str(revoked))
    assert run.returncode == 0, output(run)
    assert lab.events() == ["ifup wg0"]  # a peer-only change: netifd's reload would not do
    assert c2_public not in wg_peers(lab)
    # the client role took client2's tunnel down (wg-quick down: the interface is gone)
    assert tunnels["client2"].dev is None
    assert "utun" not in lab.topology.ip("client2", "-o", "link").stdout
    for tunnel in tunnels.values():
        tunnel.refresh()
    assert not tunnels["client2"].wait_handshake(timeout=1.5)
    assert not tcp_ok(lab, "client2", "192.168.100.10", 11434)
    assert tunnels["client1"].wait_handshake()
    assert tcp_ok(lab, "client1", "192.168.100.10", 11434)
    # back in the inventory: back on the router, and the role brings the tunnel up again
    reconverge(lab)
    assert tunnels["client2"].dev is not None
    tunnels["client2"].refresh()
    assert tunnels["client2"].wait_handshake()
    assert tcp_ok(lab, "client2", "192.168.100.10", 11434)


def test_drift_is_repaired_by_one_run(lab, tunnels, listeners):
    # by hand on the router: a firewall rule deleted, a peer added (as LuCI would), applied
    intruder_key = subprocess.run([_tool("wg"), "genkey"], capture_output=True, text=True,
                                  check=True).stdout.strip()
    intruder_public = subprocess.run([_tool("wg"), "pubkey"], input=intruder_key,
                                     capture_output=True, text=True, check=True).stdout.strip()
    lab.router_run(
        "uci delete firewall.vpn_ai && uci commit firewall && /etc/init.d/firewall reload && "
        "sid=$(uci add network wireguard_wg0) && "
        f"uci set network.$sid.public_key={intruder_public} && "
        "uci add_list network.$sid.allowed_ips=10.10.10.99/32 && uci commit network && "
        "/etc/init.d/network reload", check=True)
    assert intruder_public not in wg_peers(lab)  # as on 23.05: a reload ignores peer changes
    lab.router_run("ifup wg0", check=True)
    assert intruder_public in wg_peers(lab)
    intruder = PeerTunnel(lab.topology, "phone", lab.dir / "secrets", name="intruder",
                          private_key=intruder_key, address="10.10.10.99", tag="x",
                          extra_allowed=PROBE_ALLOWED)
    try:
        intruder.up()
        assert intruder.wait_handshake(), "the hand-added peer should work before the run"
        tunnels["client1"].refresh()
        assert not tcp_ok(lab, "client1", "192.168.100.10", 11434)

        lab.clear_events()
        run = pyinfra(lab, "-y")
        assert run.returncode == 0, output(run)
        assert sorted(lab.events()) == ["firewall reload", "ifup wg0"]
        assert intruder_public not in wg_peers(lab)
        intruder.refresh()
        assert not intruder.wait_handshake(timeout=1.5)
        tunnels["client1"].refresh()
        assert tcp_ok(lab, "client1", "192.168.100.10", 11434)
        assert check(lab.router_config(), lab_plan(lab), lab.live_devices()) == []
    finally:
        intruder.down()
        tunnels["phone"].up()  # the intruder's routes replaced the phone's
    assert changed_operations(pyinfra(lab)) == "-"


def test_server_plist_edited_by_hand_is_repaired_by_one_run(lab, tunnels):
    plist = lab.mac_file("server", PLIST)
    original = plist.read_text()
    pid = job_state(lab, "server", "user/501/com.ollama")["pid"]
    assert "<string>24h</string>" in original
    plist.write_text(original.replace("<string>24h</string>", "<string>5m</string>"))
    mark = lab.mark()
    run = pyinfra(lab, "-y")
    assert run.returncode == 0, output(run)
    assert changed_operations(run) != "-"
    assert plist.read_text() == original
    job = job_state(lab, "server", "user/501/com.ollama")
    assert job.get("state") == "running" and job.get("pid") != pid, job  # restarted
    counts = lab.counts(mark)
    for host in ("router", "client1", "client2"):
        assert counts[host]["uploads"] == 0, counts  # only the server changed
    tunnels["client1"].refresh()
    assert http_get(lab, "client1", f"{OLLAMA}/api/version")[0] == 200
    assert changed_operations(pyinfra(lab)) == "-"


def test_limit_router_touches_only_the_router(lab, converged):
    assert converged[0].returncode == 0
    mark = lab.mark()
    run = pyinfra(lab, "--limit", "router", "-y")
    assert run.returncode == 0, output(run)
    counts = lab.counts(mark)
    assert counts["router"]["connections"] >= 1 and counts["router"]["execs"] >= 1, counts
    for host in ("server", "client1", "client2"):
        assert counts[host] == {"execs": 0, "uploads": 0, "connections": 0}, counts
    # whereas a whole-lab run connects to every host
    mark = lab.mark()
    assert pyinfra(lab, "-y").returncode == 0
    assert all(c["connections"] >= 1 for c in lab.counts(mark).values())


def test_managed_hosts_are_fake_macs_in_their_namespaces(lab, converged, tmp_path):
    for host, address in (("server", "192.168.100.10"), ("client1", "100.64.1.2"),
                          ("client2", "100.64.2.2")):
        run = subprocess.run([sys.executable, "-m", "tests.lab", "ssh", "--dir", str(lab.dir),
                              host, "ip -4 -o addr show dev eth0; echo HOME=$HOME; id -un;"
                              " sudo -n id -u; uname -s; sw_vers -productVersion; brew --prefix;"
                              " echo dir=$LAB_HOST_DIR; ls /Users"],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0 and f" {address}/24 " in run.stdout, run.stdout + run.stderr
        info = lab.data["hosts"][host]
        assert run.stdout.split("\n", 1)[1].split() == [
            f"HOME={info['mac_home']}", info["user"], "0", "Darwin", "15.5", "/opt/homebrew",
            f"dir={info['dir']}", info["user"]]  # --env expands per host; /Users is private
    # pyinfra's default file transfer (SFTP) works, and is counted as an upload
    src = tmp_path / "hello.txt"
    src.write_text("hello from the controller\n")
    mark = lab.mark()
    put = subprocess.run(
        [sys.executable, "-m", "pyinfra", INVENTORY, "files.put", f"src={src}",
         "dest=hello.txt", "--limit", "server", "-y"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "SSOL_LAB_DIR": str(lab.dir)},
    )
    assert put.returncode == 0, output(put)
    assert lab.mac_file("server", "/Users/admin/hello.txt").read_text() == src.read_text()
    assert lab.counts(mark)["server"]["uploads"] == 1


def test_the_phone_can_be_tried_from_the_command_line(lab, converged):
    """The README's way to try the phone: its generated config and QR code in
    ``<lab dir>/out/peers``, ``tests.lab ssh/exec phone`` in its namespace, ``tests.lab tunnel
    phone up`` brings the tunnel up from that config, and Ollama answers through it."""

    def cli(action: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tests.lab", action, "--dir", str(lab.dir),
                               *args], cwd=REPO, capture_output=True, text=True, timeout=60)

    out = lab.dir / "out" / "peers"
    assert (out / "phone.conf").is_file() and (out / "phone.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "phone.qr.txt").read_text().strip()
    shell = cli("ssh", "phone", "ip -4 -o addr show dev eth0")
    assert shell.returncode == 0 and " 100.64.3.2/24 " in shell.stdout, output(shell)
    assert "phone has no SSH server" in shell.stderr
    up = cli("tunnel", "phone", "up")
    try:
        assert up.returncode == 0 and "handshake with the router: yes" in up.stdout, output(up)
        got = cli("exec", "phone", "curl", "-s", "-m", "5", f"{OLLAMA}/api/version")
        assert got.returncode == 0 and OLLAMA_VERSION in got.stdout, output(got)
    finally:
        down = cli("tunnel", "phone", "down")
    assert down.returncode == 0, output(down)
    gone = cli("exec", "phone", "curl", "-s", "-m", "2", f"{OLLAMA}/api/version")
    assert gone.returncode != 0  # no tunnel, no route to the DMZ


def test_an_expiring_peer_leaves_the_live_interface_between_runs(lab, converged):
    """The router-side expiry job (operations/expiry_job.py), for real on the lab router: a
    router run installs it; run as cron runs it (the time given as its argument), it takes the
    phone off the real wg0 at its cutoff and not a second before, and writes no uci; the audit
    says so; a later date brings the phone back (ifup wg0); without dates the job is gone."""
    assert converged[0].returncode == 0
    plan = lab_plan(lab)
    phone = plan.peer("phone").public_key

    def with_expiry(expires: datetime.date | None, *args: str, deploy: str = "deploys/all.py"):
        peer = {"name": "phone", "kind": "phone", **({"expires": str(expires)} if expires else {})}
        lab.clear_events()
        return run_pyinfra(lab.dir, deploy, "--limit", "router", *args, "--data",
                           f"vpn_peers={json.dumps([peer])}", timeout=300)

    soon = datetime.date.today() + datetime.timedelta(days=2)
    run = with_expiry(soon, "-y")
    assert run.returncode == 0, output(run)
    assert lab.events() == ["cron restart"]  # no uci change: the phone is a peer until then
    assert lab.router_file(EXPIRY_DATA).read_text() == (
        f"interface wg0\npeer phone {phone} {cutoff(soon)}\n")
    assert CRON_LINE in lab.router_file(CRONTAB).read_text()
    everyone = {p.public_key for p in plan.enabled_peers}
    assert wg_peers(lab) == everyone
    network = lab.read_config("network")

    lab.router_run(f"{EXPIRY_SCRIPT} {cutoff(soon) - 1}", check=True)
    assert wg_peers(lab) == everyone  # the last second of its last day
    lab.router_run(f"{EXPIRY_SCRIPT} {cutoff(soon)}", check=True)
    assert wg_peers(lab) == everyone - {phone}
    assert lab.router_file(EXPIRY_LOG).read_text() == f"phone {phone} {cutoff(soon)}\n"
    assert lab.read_config("network") == network  # never uci: the next run is not stopped
    assert lab.router_run("uci changes", check=True).stdout == ""
    lab.router_run(f"{EXPIRY_SCRIPT} {cutoff(soon) + 60}", check=True)  # cron, a minute later
    assert lab.router_file(EXPIRY_LOG).read_text().count("phone") == 1  # nothing to do

    audit = with_expiry(soon, "--dry", deploy="deploys/audit.py")
    assert audit.returncode != 0, output(audit)  # drift: the phone is a peer by today's date
    assert "taken off wg0 by the expiry job at" in output(audit)
    assert "not on the interface (taken off by the router's expiry job at" in output(audit)

    # a reboot or ifup: netifd sets every uci peer again; the hotplug script (sourced as
    # hotplug-call does) runs the job on the real clock, here past a cutoff put in the data
    lab.router_run("ifup wg0", check=True)
    assert wg_peers(lab) == everyone
    lab.router_file(EXPIRY_DATA).write_text(f"interface wg0\npeer phone {phone} 1\n")
    lab.router_run(f"ACTION=ifup INTERFACE=wg0; . {EXPIRY_HOTPLUG}", check=True)
    assert wg_peers(lab) == everyone - {phone}

    later = soon + datetime.timedelta(days=7)
    run = with_expiry(later, "-y")
    assert run.returncode == 0, output(run)
    assert lab.events() == ["ifup wg0"] and wg_peers(lab) == everyone
    assert not lab.router_file(EXPIRY_LOG).exists()
    assert lab.read_config("network") == network

    run = with_expiry(None, "-y")  # the lab's own inventory: no peer expires
    assert run.returncode == 0, output(run)
    assert lab.events() == ["cron restart"]
    assert not lab.router_file(EXPIRY_SCRIPT).exists()
    assert CRON_MARK not in lab.router_file(CRONTAB).read_text()


def test_lab_down_removes_everything_after_a_crash(lab):
    # a leftover namespace with the lab's prefix (as a crashed run would leave) goes away with
    # `down`; the running lab in this module is not touched by a different prefix
    prefix = f"ssolc{os.getpid()}-"
    name = f"{prefix}router"
    subprocess.run([_tool("ip"), "netns", "add", name], check=True)
    down = subprocess.run([sys.executable, "-m", "tests.lab", "down", "--dir",
                           str(lab.dir / "nothing-here"), "--prefix", prefix],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert not Path(f"/run/netns/{name}").exists()
    # a crashed test run's namespaces are found by the dead pid in their prefix
    dead = f"{PREFIX_BASE}9999999-"  # above any pid_max
    subprocess.run([_tool("ip"), "netns", "add", f"{dead}inet"], check=True)
    assert dead in stale_prefixes(PREFIX_BASE)
    cleanup(dead)
    assert not Path(f"/run/netns/{dead}inet").exists()
    assert lab.alive() and Path(f"/run/netns/{PREFIX}router").exists()
    assert (lab.dir / "prefix").read_text() == f"{PREFIX}\n" and lab.data["prefix"] == PREFIX
