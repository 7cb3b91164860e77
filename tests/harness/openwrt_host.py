"""A fake OpenWrt router reachable over a real OpenSSH server, for end-to-end tests.

``OpenWrtHost`` builds a router root filesystem (BusyBox only: ``/bin/sh`` is BusyBox ash, no
bash, python or sudo on ``PATH``), starts a dedicated ``sshd`` on 127.0.0.1 and a free port and
runs every SSH command inside that root, the way dropbear runs it on a router (``ash -c
"<command>"``). Every command is logged before it runs, so tests can count round trips.

How the root is entered
    ``sshd -D -e`` is started as PID 1 of private mount, PID and UTS namespaces
    (``unshare --mount --pid --uts --fork``). Before it execs sshd, a setup script bind-mounts the
    host's shared-library directories, the Python prefix (for the uci stand-in) and the
    stand-ins directory read-only into the root, binds ``/dev/null`` & co., mounts a ``/proc``
    for the namespace, sets the hostname and creates a persistent, empty network namespace (only
    ``lo``) for the router. The ``ForceCommand`` wrapper logs ``$SSH_ORIGINAL_COMMAND`` as one JSON
    line to ``commands.jsonl`` (outside the root), then ``nsenter --net --root --wd`` runs
    ``ash -c "$SSH_ORIGINAL_COMMAND"`` with a minimal environment. The mounts exist only in the
    namespace: nothing is ever mounted on the host, and killing sshd (PID 1) makes the kernel kill
    every process left in the namespace (for example a detached rollback job) and drop the
    mounts. The unshare process is also tied to the thread that started the router
    (``PR_SET_PDEATHSIG``), so an aborted test run does not leave an sshd behind (start it from a
    thread that outlives it, e.g. pytest's main thread).

The SSH side (keys, port, sshd's life, counted execs) is
:class:`tests.harness.sshd_host.SshdHost`'s; releases and package databases are
:mod:`tests.harness.openwrt_release`'s.

Stand-ins (``tests/standins/openwrt/``, copied into the root; ``standins=`` replaces or adds
files, so a lab version that really configures WireGuard/nftables is a drop-in):
``/etc/rc.common`` + ``/etc/init.d/{network,firewall,dnsmasq,cron}`` and ``/sbin/ifup`` (``ifdown``)
append ``"<service> <action>"`` lines to ``/tmp/standin-events.log``; ``/bin/opkg`` (opkg
releases) or ``/usr/bin/apk`` (apk releases) keep a real-format package database; ``/sbin/uci``
runs ``tests/standins/uci`` with the host's Python. The release revisions are real; package
versions are plausible illustrations, not measured on a router. BusyBox is Debian's (1.35), whose
applet set differs a little from OpenWrt's (e.g. no ``flock``/``nohup``).

Needs root, OpenSSH's ``sshd``/``ssh-keygen``/``scp``, ``busybox`` and util-linux
(``unshare``, ``nsenter``, ``mount``); see :func:`requirements_missing`.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.harness.openwrt_release import factory_configs, get_release, package_db
from tests.harness.sshd_host import (
    HarnessError,
    SshdHost,
    _q,
    _tool,
    log_command_bash,
    shell_args_bash,
)

REPO = Path(__file__).resolve().parents[2]
STANDINS_DIR = REPO / "tests" / "standins"
OPENWRT_STANDINS_DIR = STANDINS_DIR / "openwrt"
UCI_STANDIN = STANDINS_DIR / "uci"

ROUTER_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
EVENT_LOG = "tmp/standin-events.log"  # relative to the router root
HOST_MOUNT_DIR = "/usr/lib/test-standin"  # where host things appear inside the router


# --------------------------------------------------------------------------------------------
# Host requirements and what must be mounted into the root
# --------------------------------------------------------------------------------------------


_TOOLS = ("sshd", "ssh", "ssh-keygen", "scp", "busybox", "unshare", "nsenter", "mount", "bash",
          "ldd", "flock", "env")


@functools.lru_cache(maxsize=1)
def requirements_missing() -> str | None:
    """Why the fake router cannot run here (``None`` if it can); for ``pytest.skip``."""
    if os.geteuid() != 0:
        return "needs root (sshd as root, chroot and mount/PID namespaces)"
    for name in _TOOLS:
        if _tool(name) is None:
            return f"{name} not found (needs openssh-server/-client, busybox and util-linux)"
    probe = subprocess.run(
        [_tool("unshare"), "--mount", "--uts", "--pid", "--net", "--fork", "--propagation",
         "private", "--", _tool("mount"), "-t", "proc", "proc", "/proc"],
        capture_output=True, text=True, timeout=30,
    )
    if probe.returncode != 0:
        return f"cannot create mount/PID/UTS/network namespaces: {probe.stderr.strip()}"
    return None


def _ldd_paths(binary: str) -> list[str]:
    out = subprocess.run([_tool("ldd"), binary], capture_output=True, text=True).stdout
    paths = []
    for line in out.splitlines():
        m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if m:
            paths.append(m.group(1))
    return paths


_PROTECTED = {"/", "/bin", "/sbin", "/lib", "/usr", "/usr/bin", "/usr/sbin", "/usr/lib", "/etc",
              "/tmp", "/var", "/root", "/dev", "/proc"}


def _python() -> tuple[str, str | None]:
    """(interpreter path, prefix to mount at the same path or None for a system Python)."""
    exe = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    prefix = os.path.realpath(sys.base_prefix)
    if prefix in _PROTECTED or prefix in ("/usr/local", "/opt"):
        return exe, None
    return exe, prefix


@functools.lru_cache(maxsize=1)
def _host_mounts() -> tuple[tuple[tuple[str, str], ...], str]:
    """Read-only bind mounts (host source, path inside the root) and the in-root Python path."""
    mounts: dict[str, str] = {}  # target -> source
    python_exe, prefix = _python()
    if prefix is not None:
        mounts[prefix] = prefix
        python_in_root = python_exe
    else:
        for key in ("stdlib", "platstdlib"):
            d = os.path.realpath(sysconfig.get_paths()[key])
            mounts[d] = d
        python_in_root = f"{HOST_MOUNT_DIR}/python3"
        mounts[python_in_root] = python_exe
    for binary in (_tool("busybox"), _tool("scp"), python_exe):
        for path in _ldd_paths(binary):
            for d in {os.path.dirname(path), os.path.dirname(os.path.realpath(path))}:
                if prefix is not None and (d == prefix or d.startswith(prefix + "/")):
                    continue
                if d in _PROTECTED:  # never hide the router's own /lib or /usr/lib: bind the file
                    mounts[os.path.join(d, os.path.basename(path))] = os.path.realpath(path)
                else:
                    mounts[d] = os.path.realpath(d)
    return tuple((src, dst) for dst, src in sorted(mounts.items())), python_in_root


def _enter_exec(root: Path, netns: Path, args: str) -> str:
    """bash line that runs ash inside the router with dropbear's minimal environment."""
    return (
        f"exec {_q(_tool('env'))} -i PATH={ROUTER_PATH} HOME=/root USER=root LOGNAME=root"
        ' SHELL=/bin/ash ${TERM:+"TERM=$TERM"} ${SSH_CLIENT:+"SSH_CLIENT=$SSH_CLIENT"}'
        ' ${SSH_CONNECTION:+"SSH_CONNECTION=$SSH_CONNECTION"} ${SSH_TTY:+"SSH_TTY=$SSH_TTY"}'
        f" {_q(_tool('nsenter'))} --net={_q(netns)} --root={_q(root)} --wd={_q(root / 'root')}"
        f" ash {args}\n"
    )


# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# The fake router
# --------------------------------------------------------------------------------------------


class OpenWrtHost(SshdHost):
    """A fake OpenWrt router behind a real OpenSSH server (see the module docstring).

    ``configs`` maps ``/etc/config`` file names to their text (default: :func:`factory_configs`).
    ``packages`` are the installed package names (default: the release's base image set); a
    mapping gives explicit versions. ``standins`` maps router paths (e.g. ``"/etc/init.d/network"``)
    to host files that replace or add stand-ins, or to ``None`` to have no file at that path.
    ``uci_standin`` defaults to ``tests/standins/uci``. ``netns`` is an existing network
    namespace file (e.g. ``/run/netns/<name>``) the router joins instead of a fresh empty one.
    """

    def __init__(
        self,
        tmp_path: str | os.PathLike[str],
        release: str = "23.05.5",
        configs: Mapping[str, str] | None = None,
        packages: Sequence[str] | Mapping[str, str] | None = None,
        *,
        standins: Mapping[str, str | os.PathLike[str] | None] | None = None,
        uci_standin: str | os.PathLike[str] | None = None,
        hostname: str = "OpenWrt",
        netns: str | os.PathLike[str] | None = None,
    ) -> None:
        self.release = get_release(release)
        self.configs = dict(factory_configs() if configs is None else configs)
        if packages is None:
            packages = self.release.default_packages
        if isinstance(packages, Mapping):
            self.packages = dict(packages)
        else:
            self.packages = {name: self.release.version_of(name) for name in packages}
        self.standin_overrides = dict(standins or {})
        self.uci_standin = Path(uci_standin) if uci_standin else UCI_STANDIN
        self.hostname = hostname
        self.join_netns = str(netns) if netns is not None else None

        Path(tmp_path).mkdir(parents=True, exist_ok=True)
        super().__init__(tempfile.mkdtemp(prefix="openwrt-", dir=tmp_path), "openwrt-test")
        self.root = self.base / "root"
        self.netns_path = self.base / "netns"

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> OpenWrtHost:
        reason = requirements_missing()
        if reason:
            raise HarnessError(f"cannot start the fake OpenWrt router: {reason}")
        return super().start()

    # ---------------------------------------------------------------- building

    def _prepare(self) -> None:
        self._build_root()

    def _build_root(self) -> None:
        r = self.root
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "usr/lib", "usr/share/test-standin",
                  "lib", "etc/config", "etc/init.d", "etc/rc.d", "root", "tmp/run", "tmp/lock",
                  "tmp/log", "tmp/.uci", "proc", "dev", "mnt", "overlay", "www"):
            (r / d).mkdir(parents=True, exist_ok=True)
        os.chmod(r / "tmp", 0o1777)
        (r / "var").symlink_to("tmp")

        shutil.copy2(_tool("busybox"), r / "bin" / "busybox")
        listing = subprocess.run([r / "bin" / "busybox", "--list-full"], capture_output=True,
                                 text=True, check=True).stdout
        for applet in listing.split():
            link = r / applet
            if link.name == "busybox" or link.exists() or link.is_symlink():
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(r / "bin" / "busybox", link.parent))
        for name in ("sh", "ash"):
            if not (r / "bin" / name).is_symlink():
                (r / "bin" / name).symlink_to("busybox")
        shutil.copy2(_tool("scp"), r / "usr" / "bin" / "scp")  # dropbear's scp on OpenWrt

        rel = self.release
        self._write("etc/openwrt_release", rel.openwrt_release())
        self._write("usr/lib/os-release", rel.os_release())
        (r / "etc" / "os-release").symlink_to("../usr/lib/os-release")
        self._write("etc/openwrt_version", rel.revision + "\n")
        self._write("etc/hostname", self.hostname + "\n")
        self._write("etc/passwd", "root:x:0:0:root:/root:/bin/ash\n"
                    "daemon:*:1:1:daemon:/var:/bin/false\n"
                    "network:*:101:101:network:/var:/bin/false\n"
                    "dnsmasq:x:453:453:dnsmasq:/var/run/dnsmasq:/bin/false\n"
                    "nobody:*:65534:65534:nobody:/var:/bin/false\n")
        self._write("etc/group", "root:x:0:\ndaemon:x:1:\nnetwork:x:101:\n"
                    "dnsmasq:x:453:dnsmasq\nnogroup:x:65534:\n")
        self._write("etc/shadow", "root:::0:99999:7:::\n", mode=0o600)
        self._write("etc/shells", "/bin/ash\n")
        self._write("etc/hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
        self._write("etc/profile", "export PS1='\\u@\\h:\\w\\$ '\n")
        self._write("etc/banner", f" OpenWrt {rel.version} (fake router for tests)\n")
        for name, text in self.configs.items():
            if "/" in name or not name:
                raise ValueError(f"bad config name {name!r}")
            self._write(f"etc/config/{name}", text)

        # stand-ins
        pm = rel.package_manager
        standins: dict[str, Path | None] = {
            "/etc/rc.common": OPENWRT_STANDINS_DIR / "rc.common",
            "/etc/init.d/network": OPENWRT_STANDINS_DIR / "init.d" / "network",
            "/etc/init.d/firewall": OPENWRT_STANDINS_DIR / "init.d" / "firewall",
            "/etc/init.d/dnsmasq": OPENWRT_STANDINS_DIR / "init.d" / "dnsmasq",
            "/etc/init.d/cron": OPENWRT_STANDINS_DIR / "init.d" / "cron",
            "/sbin/ifup": OPENWRT_STANDINS_DIR / "ifup",
            "/lib/standin-faults.sh": OPENWRT_STANDINS_DIR / "faults.sh",  # fault injection
            ("/bin/opkg" if pm == "opkg" else "/usr/bin/apk"): OPENWRT_STANDINS_DIR / pm,
        }
        for path, src in self.standin_overrides.items():
            standins["/" + path.lstrip("/")] = Path(src) if src is not None else None
        for path, src in standins.items():
            dest = r / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_symlink() or dest.exists():
                dest.unlink()  # e.g. BusyBox's own ifup applet
            if src is None:
                continue
            shutil.copyfile(src, dest)
            os.chmod(dest, 0o755)
        if standins.get("/sbin/ifup") is not None:
            ifdown = r / "sbin" / "ifdown"
            if ifdown.is_symlink() or ifdown.exists():
                ifdown.unlink()
            ifdown.symlink_to("ifup")
        for link, target in (("S19firewall", "firewall"), ("S19dnsmasq", "dnsmasq"),
                             ("S20network", "network"), ("S50cron", "cron"),
                             ("K85dnsmasq", "dnsmasq"),
                             ("K90network", "network")):
            (r / "etc" / "rc.d" / link).symlink_to(f"../init.d/{target}")

        _, python_in_root = _host_mounts()
        uci_in_root = f"{HOST_MOUNT_DIR}/standins/{self.uci_standin.name}"
        self._write("sbin/uci", f"""\
#!/bin/sh
# TEST STAND-IN for OpenWrt's /sbin/uci (the uci CLI, package "uci"): runs the project's Python
# imitation ({self.uci_standin}) with the host's Python, which the test harness bind-mounts
# read-only into the router. Python is NOT on the router's PATH. -S (no site import, stdlib
# only) keeps a call at ~15 ms instead of ~80 ms.
if [ ! -e {_q(uci_in_root)} ]; then
	echo "uci: test stand-in {self.uci_standin} is missing" >&2
	exit 127
fi
exec {_q(python_in_root)} -S -s -E -B -X utf8 {_q(uci_in_root)} "$@"
""", mode=0o755)

        self._write_package_db()

    def _write_package_db(self) -> None:
        for path, text in package_db(self.release, self.packages).items():
            self._write(path, text)

    def _write(self, rel_path: str, text: str, mode: int = 0o644) -> None:
        path = self.root / rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        os.chmod(path, mode)

    def _write_scripts(self) -> None:
        bindir = self.base / "bin"
        bindir.mkdir(exist_ok=True)
        root, netns = self.root, self.netns_path
        mounts, _ = _host_mounts()
        setup = ["#!/bin/bash",
                 "# PID 1 of the router's private mount/PID/UTS namespaces; ends by exec'ing sshd",
                 "set -euo pipefail",
                 "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                 "mount -t proc proc /proc",
                 f"{_q(_tool('busybox'))} hostname {_q(self.hostname)}",
                 f"mount -t proc proc {_q(root / 'proc')}"]
        for src, dst in mounts:
            target = root / dst.lstrip("/")
            if os.path.isdir(src):
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
            setup.append(f"mount --bind -o ro {_q(src)} {_q(target)}")
        standins_target = root / HOST_MOUNT_DIR.lstrip("/") / "standins"
        standins_target.mkdir(parents=True, exist_ok=True)
        if self.uci_standin.parent.is_dir():
            setup.append(f"mount --bind -o ro {_q(self.uci_standin.parent)} {_q(standins_target)}")
        for dev in ("null", "zero", "full", "random", "urandom", "tty"):
            (root / "dev" / dev).touch()
            setup.append(f"mount --bind /dev/{dev} {_q(root / 'dev' / dev)}")
        for src, target in self._extra_mounts():
            if os.path.isdir(src):
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
            ro = "" if src.startswith("/dev/") else "-o ro "
            setup.append(f"mount --bind {ro}{_q(src)} {_q(target)}")
        netns.touch()
        setup += [
            f"unshare --net={_q(netns)} true" if self.join_netns is None
            else f"mount --bind {_q(self.join_netns)} {_q(netns)}",
            f"PATH={ROUTER_PATH} {_q(_tool('nsenter'))} --net={_q(netns)} --root={_q(root)}"
            " ip link set lo up",
            "[ -d /run/sshd ] || mkdir -m 0755 /run/sshd",
            f"exec {_q(_tool('sshd'))} -D -e -f {_q(self.sshd_config_path)}",
        ]
        self._setup_script = bindir / "setup-namespace"
        self._setup_script.write_text("\n".join(setup) + "\n")

        self._force_command = bindir / "force-command"
        self._force_command.write_text(
            "#!/bin/bash\n"
            "# sshd ForceCommand of the fake OpenWrt router: log the command as one JSON line\n"
            "# (outside the router), then run it the way dropbear does: ash -c \"<command>\".\n"
            "export LC_ALL=C\n"
            + log_command_bash(self.commands_log) + shell_args_bash()
            + _enter_exec(root, netns, '"$@"')
        )
        self._enter_script = bindir / "enter-router"
        self._enter_script.write_text(
            "#!/bin/bash\n"
            "# Run \"$1\" inside the fake router without logging it (OpenWrtHost.run).\n"
            + _enter_exec(root, netns, '-c "$1"')
        )
        for script in (self._setup_script, self._force_command, self._enter_script):
            os.chmod(script, 0o755)
        self._write_sshd_config(self._force_command, sftp=False)

    def _extra_mounts(self) -> list[tuple[str, Path]]:
        """(host source, target in the root) bound into the router (read-only, except
        ``/dev/*``) by its setup script; none here, for subclasses."""
        return []

    # ---------------------------------------------------------------- for tests

    def inventory_data(self) -> dict[str, object]:
        """pyinfra host data to reach the router over SSH (scp transfers, strict host key)."""
        self._require_started()
        return {**super().inventory_data(), "ssh_file_transfer_protocol": "scp"}

    def write_inventory(self, path: str | os.PathLike[str] | None = None, name: str = "router",
                        group: str = "router", **data: object) -> Path:
        """Write a pyinfra inventory file ``<group> = [(name, {...})]`` for the CLI."""
        path = Path(path) if path else self.base / "inventory.py"
        host_data = {**self.inventory_data(), **data}
        path.write_text(f"{group} = [({name!r}, {host_data!r})]\n")
        return path

    def ssh_argv(self, command: str | None = None) -> list[str]:
        """argv for the OpenSSH client to reach the router (counted like any exec)."""
        self._require_started()
        return super().ssh_argv(command)

    def run(self, command: str, input: str | None = None, check: bool = False,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a shell command inside the router like an SSH exec would, but NOT counted."""
        self._require_started()
        argv = [_tool("nsenter"), "-t", str(self.ns_pid), "-m", "-p", "-u", "--",
                str(self._enter_script), command]
        return subprocess.run(argv, input=input, capture_output=True, text=True, check=check,
                              timeout=timeout)

    def exec_count(self) -> int:
        return len(self.commands())

    def upload_count(self) -> int:
        """Commands that were scp uploads (``scp -t <dest>``)."""
        return sum(1 for cmd in self.commands() if _is_scp_upload(cmd))

    def read_config(self, package: str) -> str:
        return (self.root / "etc" / "config" / package).read_text(encoding="utf-8")

    def write_config(self, package: str, text: str) -> None:
        self._write(f"etc/config/{package}", text)

    def events(self) -> list[str]:
        """Lines the init.d/ifup stand-ins appended, e.g. ``"network reload"``, ``"ifup wg0"``."""
        path = self.root / EVENT_LOG
        if not path.exists():
            return []
        return [line for line in path.read_text().splitlines() if line]

    def clear_events(self) -> None:
        (self.root / EVENT_LOG).write_text("")

    def _require_started(self) -> None:
        if self._proc is None:
            raise HarnessError("the fake OpenWrt router is not running (use start() or `with`)")


def _is_scp_upload(command: str) -> bool:
    words = command.split()
    if not words or words[0] not in ("scp", "/usr/bin/scp"):
        return False
    for word in words[1:]:
        if not word.startswith("-"):
            return False
        if word == "--":
            return False
        if "t" in word[1:] and not word.startswith("--"):
            return True
    return False
