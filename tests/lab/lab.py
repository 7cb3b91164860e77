"""The lab as a whole: topology + router + managed hosts, and its state file (TEST ONLY).

:class:`Lab` builds everything in-process (:meth:`Lab.up`) and writes ``<lab dir>/state.json``,
which ``inventories/lab.py`` reads (SSH ports, keys, known_hosts of the running lab) and
:class:`LabState` turns back into handles for tests and benchmarks: counted execs per host,
uncounted commands inside the router, the router's committed config and events.

The controller reaches the router's SSH only through the router's own network, as an admin on
the LAN does: ``127.0.0.1:<port in the state file>`` on the host is carried (``tests/harness/
forward.py``) into the ``lan`` namespace (the LAN host on the router's ``lan1``) and from there
to ``192.168.1.1:22``, where the router serves its SSH (:class:`~tests.lab.router.LabRouter`).
So a deploy that takes the LAN address away, moves ``lan1`` out of ``br-lan`` or drops LAN ->
router tcp/22 really locks the lab's controller out. The other hosts' SSH is on the host's
loopback (their forwarders live in ``tests/harness/fake_mac.py``).

``python3 -m tests.lab up`` runs a :class:`Lab` in a detached supervisor process (the SSH
servers die with the process that started them), see ``tests/lab/__main__.py``.

Names are derived from the prefix only (namespaces ``<prefix><role>``), so :func:`cleanup`
removes a crashed lab's leftovers without any state. Each lab directory owns its prefix: by
default ``ssol-<6 hex of the directory's path>-`` (:func:`default_prefix`), recorded in
``<dir>/prefix`` when the lab starts and in the state file; ``down`` removes that prefix's
namespaces only, so labs of two clones (or two directories) run side by side.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.harness.forward import Forwarder
from tests.harness.openwrt_host import REPO, _tool, requirements_missing
from tests.lab import topology as t
from tests.lab.hosts import NamespaceHost, count_connections, is_upload, read_commands
from tests.lab.macs import DHCP_LEASE, MacHost
from tests.lab.router import HOST_TOOLS, SSH_PORT, LabRouter

DEFAULT_DIR = REPO / ".lab"
STATE_FILE = "state.json"
PREFIX_FILE = "prefix"
#: managed hosts other than the router (their inventory names are the topology roles)
MANAGED = ("server", "client1", "client2")
ALL_MANAGED = ("router", *MANAGED)
WAN_LEASE = {"ip": f"{t.ROUTER_WAN_ADDRESS}/{t.WAN_PREFIX}", "router": t.INET_ADDRESS,
             "dns": t.INET_ADDRESS}


def lab_dir() -> Path:
    """``$SSOL_LAB_DIR`` or ``<repo>/.lab``."""
    return Path(os.environ.get("SSOL_LAB_DIR") or DEFAULT_DIR).resolve()


def default_prefix(directory: str | os.PathLike[str]) -> str:
    """``ssol-<6 hex of sha1(the directory's resolved path)>-``: the namespace prefix a lab
    directory owns unless one is given."""
    digest = hashlib.sha1(str(Path(directory).resolve()).encode()).hexdigest()[:6]
    return f"ssol-{digest}-"


def lab_prefix(directory: str | os.PathLike[str], explicit: str | None = None) -> str:
    """The prefix of the lab in ``directory``: ``explicit``, else the one recorded there
    (``<dir>/prefix``, written by ``up``), else :func:`default_prefix`."""
    if explicit:
        return explicit
    try:
        recorded = (Path(directory) / PREFIX_FILE).read_text().strip()
    except OSError:
        recorded = ""
    return recorded or default_prefix(directory)


def record_prefix(directory: str | os.PathLike[str], prefix: str) -> None:
    """Remember which namespaces this lab directory owns (before any is made)."""
    path = Path(directory) / PREFIX_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(prefix + "\n")
    os.replace(tmp, path)


def requirements_missing_lab() -> str | None:
    """Why the lab cannot run here (``None`` if it can); for ``pytest.skip``."""
    reason = requirements_missing()
    if reason:
        return reason
    for name in HOST_TOOLS + ("ping",):
        if _tool(name) is None:
            return f"{name} not found (needs iproute2, wireguard-tools, wireguard-go, " \
                   "nftables, iputils-ping)"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun missing (wireguard-go needs TUN)"
    name = f"ssol-probe{os.getpid()}"
    probe = subprocess.run([_tool("ip"), "netns", "add", name], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create network namespaces: {probe.stderr.strip()}"
    try:
        nft = subprocess.run([_tool("ip"), "netns", "exec", name, _tool("nft"), "-f", "-"],
                             input="table inet ssolprobe {\n chain c {\n  type nat hook "
                             "postrouting priority srcnat;\n  masquerade\n }\n}\n",
                             capture_output=True, text=True)
        if nft.returncode != 0:
            return f"nftables (with NAT) unusable in a namespace: {nft.stderr.strip()}"
    finally:
        subprocess.run([_tool("ip"), "netns", "del", name], capture_output=True)
    return None


class Lab:
    """Build and run the whole lab in this process (see the module docstring).

    ``path_prepend`` puts directories first on ``PATH`` of the server and clients (e.g. the
    macOS stand-ins); ``env`` adds environment variables to their commands, with ``{name}``
    (the host), ``{dir}`` (its directory in the lab) and ``{home}`` (its ``HOME``) expanded per
    host, e.g. ``{"MACOS_STANDIN_STATE": "{dir}/macos"}``; ``server_address=False`` leaves the
    server without its DMZ address (the factory state, for a server deploy that configures it).
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None,
                 prefix: str | None = None, *, path_prepend: Sequence[str] = (),
                 env: dict[str, str] | None = None, server_address: bool = True,
                 macs: bool = True) -> None:
        self.dir = Path(directory).resolve() if directory else lab_dir()
        self.prefix = lab_prefix(self.dir, prefix)
        self.path_prepend = [str(Path(p).resolve()) for p in path_prepend]
        self.env = dict(env or {})
        self.macs = macs
        self.topology = t.Topology(prefix, server_address=server_address and not macs)
        self.router: LabRouter | None = None
        self.router_path: Forwarder | None = None  # the controller's way in, through the LAN
        self.hosts: dict[str, NamespaceHost] = {}
        self.run_dir: Path | None = None

    def up(self, supervisor_pid: int | None = None) -> Lab:
        reason = requirements_missing_lab()
        if reason:
            raise RuntimeError(f"the lab cannot run here: {reason}")
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        (self.dir / STATE_FILE).unlink(missing_ok=True)
        record_prefix(self.dir, self.prefix)
        self.topology.down()  # leftovers of a crashed lab with this prefix
        try:
            self.topology.up()
            self.run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=self.dir))
            self.router = LabRouter(self.run_dir, self.topology.ns_path("router"), WAN_LEASE)
            self.router.start()
            self.router.boot()
            self._router_path()
            if self.macs:  # the Mac's Ethernet on DHCP: a lease from the router's pool
                mask = sum(bin(int(x)).count("1") for x in DHCP_LEASE["mask"].split("."))
                self.topology.ip("server", "addr", "replace", f"{DHCP_LEASE['ip']}/{mask}",
                                 "dev", "eth0")
                self.topology.ip("server", "route", "replace", "default", "via",
                                 DHCP_LEASE["router"])
            for name in MANAGED:
                hosts_dir = self.run_dir / "hosts"
                fields = {"name": name, "dir": hosts_dir / name, "home": hosts_dir / name / "home"}
                kind = MacHost if self.macs else NamespaceHost
                host = kind(hosts_dir, name, self.topology.ns_path(name),
                            path_prepend=self.path_prepend,
                            env={k: v.format(**fields) for k, v in self.env.items()})
                self.hosts[name] = host
                host.start()
            self._write_state(supervisor_pid)
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        (self.dir / STATE_FILE).unlink(missing_ok=True)
        for host in self.hosts.values():
            host.stop()
        self.hosts = {}
        if self.router_path is not None:
            self.router_path.stop()
            self.router_path = None
        if self.router is not None:
            self.router.stop()
            self.router = None
        self.topology.down()
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    def _router_path(self) -> None:
        """The controller's SSH to the router: host ``127.0.0.1:<free port>`` -> from the LAN
        host's namespace to the router's LAN address, port 22; and its known_hosts."""
        assert self.router is not None and self.run_dir is not None
        self.router_path = Forwarder(
            (None, "127.0.0.1", 0), (self.topology.ns_path("lan"), t.LAN_ROUTER_ADDRESS, SSH_PORT),
            self.run_dir / "router-path.ready").start()
        key = self.router.host_key_path.with_suffix(".pub").read_text().strip()
        (self.run_dir / "router_known_hosts").write_text(
            f"[127.0.0.1]:{self.router_path.port} {key}\n")

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def state(self, supervisor_pid: int | None = None) -> dict:
        assert self.router is not None
        r = self.router
        assert self.router_path is not None and self.run_dir is not None
        ssh = {**r.inventory_data(), "ssh_port": self.router_path.port,
               "ssh_known_hosts_file": str(self.run_dir / "router_known_hosts")}
        hosts = {"router": {
            "ssh": ssh, "commands_log": str(r.commands_log),
            "sshd_log": str(r.sshd_log), "netns": self.topology.ns("router"),
        }}
        for name, h in self.hosts.items():
            hosts[name] = {"ssh": h.inventory_data(), "commands_log": str(h.commands_log),
                           "sshd_log": str(h.sshd_log), "netns": self.topology.ns(name),
                           "home": str(h.home), "dir": str(h.base), "env": h.env,
                           "ns_pid": h.ns_pid}
            if isinstance(h, MacHost):
                hosts[name].update(user=h.user, mac_home=h.mac_home, root=str(h.root))
        return {
            "version": 1,
            "prefix": self.prefix,
            "dir": str(self.dir),
            "pid": supervisor_pid or os.getpid(),
            "started": time.time(),
            "namespaces": {role: self.topology.ns(role) for role in t.ROLES},
            "addresses": {
                "router_wan": t.ROUTER_WAN_ADDRESS, "inet": t.INET_ADDRESS,
                "web": t.WEB_ADDRESS, "lan_host": t.LAN_HOST_ADDRESS,
                "router_lan": t.LAN_ROUTER_ADDRESS, "server": t.SERVER_ADDRESS,
                "server_mac": t.SERVER_MAC, "router_dmz": t.DMZ_ROUTER_ADDRESS,
                "remote": {p: a for p, (a, _gw) in t.REMOTE_ADDRESSES.items()},
            },
            # sshd_port: the harness's sshd behind the router's :22 (never the controller's way)
            "router": {"root": str(r.root), "ns_pid": r.ns_pid,
                       "enter": str(r._enter_script), "sshd_port": r.port},
            "hosts": hosts,
            "path_prepend": self.path_prepend,
            "env": self.env,
            "macs": self.macs,
        }

    def _write_state(self, supervisor_pid: int | None) -> None:
        path = self.dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state(supervisor_pid), indent=1))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)


def cleanup(prefix: str) -> None:
    """Remove a lab's namespaces (and every process in them), even after a crash."""
    t.Topology(prefix).down()


class LabState:
    """A running lab, seen through its state file (for tests, benchmarks, the CLI)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.dir = Path(directory).resolve() if directory else lab_dir()
        path = self.dir / STATE_FILE
        if not path.exists():
            raise FileNotFoundError(f"no running lab: {path} is missing "
                                    "(start one with `python3 -m tests.lab up`)")
        self.data = json.loads(path.read_text())
        self.topology = t.Topology(self.data["prefix"])

    @property
    def hosts(self) -> list[str]:
        return list(self.data["hosts"])

    def alive(self) -> bool:
        try:
            os.kill(self.data["pid"], 0)
        except OSError:
            return False
        return True

    # -- counting ------------------------------------------------------------------------------

    def mark(self) -> dict[str, tuple[int, int]]:
        """Current sizes of every host's command and sshd logs (pass to :meth:`counts`)."""
        marks = {}
        for name, h in self.data["hosts"].items():
            marks[name] = tuple(os.path.getsize(h[k]) if os.path.exists(h[k]) else 0
                                for k in ("commands_log", "sshd_log"))
        return marks

    def commands(self, host: str, since: dict[str, tuple[int, int]] | None = None
                 ) -> list[str]:
        offset = since[host][0] if since else 0
        return read_commands(self.data["hosts"][host]["commands_log"], offset)

    def counts(self, since: dict[str, tuple[int, int]] | None = None
               ) -> dict[str, dict[str, int]]:
        """Per host: ``execs`` (counted by its SSH server), ``uploads``, ``connections``."""
        out = {}
        for name, h in self.data["hosts"].items():
            cmds = self.commands(name, since)
            conns = count_connections(h["sshd_log"], since[name][1] if since else 0)
            out[name] = {"execs": len(cmds), "uploads": sum(map(is_upload, cmds)),
                         "connections": conns}
        return out

    # -- the fake Macs --------------------------------------------------------------------------

    def mac_run(self, host: str, command: str, user: bool = False, check: bool = False,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a shell command inside a lab Mac (as root, or its user), NOT counted."""
        from tests.harness.fake_mac import run_in

        h = self.data["hosts"][host]
        result = run_in(h["ns_pid"], command, user=user, home=h["mac_home"], net=True,
                        timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"{host}: {command}: {result.stdout}{result.stderr}")
        return result

    def mac_file(self, host: str, path: str) -> Path:
        """A file inside a lab Mac, as seen from the Linux host."""
        return Path(f"/proc/{self.data['hosts'][host]['ns_pid']}/root") / path.lstrip("/")

    # -- the router ----------------------------------------------------------------------------

    def router_run(self, command: str, check: bool = False, timeout: float = 60
                   ) -> subprocess.CompletedProcess[str]:
        """Run a shell command inside the router like an SSH exec, but NOT counted."""
        r = self.data["router"]
        argv = [_tool("nsenter"), "-t", str(r["ns_pid"]), "-m", "-p", "-u", "--", r["enter"],
                command]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"router: {command}: {result.stdout}{result.stderr}")
        return result

    def router_file(self, path: str) -> Path:
        return Path(self.data["router"]["root"]) / path.lstrip("/")

    def read_config(self, package: str) -> str:
        return self.router_file(f"/etc/config/{package}").read_text()

    def router_config(self) -> dict:
        """The router's committed network/firewall/dhcp, parsed (fw4 model input)."""
        from facts.openwrt import parse_uci_export

        return {p: parse_uci_export(f"package {p}\n" + self.read_config(p))[p]
                for p in ("network", "firewall", "dhcp")}

    def events(self) -> list[str]:
        path = self.router_file("/tmp/standin-events.log")
        return [x for x in path.read_text().splitlines() if x] if path.exists() else []

    def clear_events(self) -> None:
        self.router_file("/tmp/standin-events.log").write_text("")

    def live_devices(self) -> dict[str, str]:
        return json.loads(self.router_run("/etc/init.d/network status").stdout or "{}")


def stop_supervisor(directory: str | os.PathLike[str] | None = None,
                    prefix: str | None = None, timeout: float = 20) -> bool:
    """Stop a lab started by ``python3 -m tests.lab up`` and remove every trace of it.

    Returns whether a running lab was found. Works after a crash: namespaces are derived from
    the prefix (``prefix``, else the state file's, else the one recorded in the directory, else
    the directory's default). Only that prefix's namespaces are removed.
    """
    d = Path(directory).resolve() if directory else lab_dir()
    found = False
    try:
        state = LabState(d)
    except (FileNotFoundError, ValueError):
        state = None
    if state is not None:
        prefix = prefix or state.data["prefix"]
        pid = state.data.get("pid")
        if pid and state.alive() and pid != os.getpid():
            found = True
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and state.alive():
                time.sleep(0.05)
            if state.alive():
                os.kill(pid, signal.SIGKILL)
        (d / STATE_FILE).unlink(missing_ok=True)
    cleanup(lab_prefix(d, prefix))
    for run in d.glob("run-*") if d.exists() else ():
        shutil.rmtree(run, ignore_errors=True)
    (d / PREFIX_FILE).unlink(missing_ok=True)
    return found
