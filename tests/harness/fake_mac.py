"""A fake Mac behind a real OpenSSH server (TEST ONLY): the one used by the client and server
roles' end-to-end tests (``tests/test_client_ssh.py``, ``tests/test_server_ssh.py``, the server
Mac of both: :class:`ServerMac`), their interruption tests (``tests/test_mac_faults.py``) and by
the lab (``tests/lab/macs.py``).

* root file system: a tmpfs of its own (``<base>/root``) with the Linux ``/usr`` (read-only),
  ``/bin``, ``/lib*`` and ``/dev`` bound in, and an ``/etc`` that is a **copy** of the host's
  taken at start, with the Mac's own ``passwd``/``group``/``shadow``/``sudoers``/``hosts``:
  nothing of the host's ``/etc`` is bound, so replacing the host's ``/etc/passwd`` while the Mac
  runs changes nothing in it. Private ``/tmp``, ``/var``, ``/run``, ``/opt/homebrew`` (owned by
  the user, the brew stand-in as ``bin/brew``), ``/Library``, ``/Users/<user>`` (HOME).
* the login user (uid 501, gid 20 ``staff``, like the first macOS account) exists only in that
  root: no account is added to the Linux host. ``sudo`` is NOPASSWD with ``secure_path`` = the
  Mac's ``PATH``.
* ``sshd`` runs chrooted into that root as PID 1 of private mount/PID/UTS namespaces (everything
  a deploy starts dies with it, and with the thread that started it). Its network is the host's
  (listening on ``listen`` addresses) or, with ``netns``, that network namespace's: ``sshd``
  listens there and ``tests/harness/forward.py`` carries the host's 127.0.0.1 port into it.
* ``PATH``: ``/opt/macos-standins`` (copies of ``tests/standins/macos``, a ``uname`` saying
  Darwin/arm64, macOS' one-true-awk when installed) first, then ``/opt/homebrew/bin``.
  ``MACOS_STANDIN_STATE=/var/lib/macos-standin`` holds ``machine.json`` (the ``machine``
  argument; see ``tests/standins/macos/README.md``).
* every SSH exec is logged by the ``ForceCommand`` as one JSON line in ``commands.jsonl``
  (``t``, ``uid``, ``conn`` = ``SSH_CONNECTION``, ``cmd``): counted execs.
* stand-in faults (:meth:`FakeMac.set_faults`, the router's format: ``<point> delay <s>`` lines
  in the Mac's ``/tmp/standin-faults``): the stand-ins that source
  ``/opt/macos-standins/faults.sh`` (``tests/standins/openwrt/faults.sh``: ``plutil``,
  ``wg-quick``) hold their point open; a point ``exec:<glob>`` holds every SSH exec whose
  command matches ``*<glob>*`` (e.g. ``exec:mv*.ssollama-new``; logged first, then held, then
  run).

Example::

    mac = FakeMac(tmp_path / "mac", user="alice", machine=client_machine()).start()
    mac.inventory_data()           # for a pyinfra inventory
    mac.ssh("sw_vers")             # counted, like pyinfra's execs
    mac.run("cat /etc/hosts")      # inside, as root, not counted
    mac.path("/Users/alice/.zshrc").read_text()
    mac.stop()
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.harness.openwrt_host import requirements_missing
from tests.harness.sshd_host import (
    HarnessError,
    SshdHost,
    _tool,
    log_command_bash,
    sftp_server,
    shell_args_bash,
)

REPO = Path(__file__).resolve().parents[2]
MACOS_STANDINS = REPO / "tests" / "standins" / "macos"
OLLAMA_STANDIN = REPO / "tests" / "standins" / "ollama_api.py"
#: the one shell implementation of stand-in faults (the router's), sourced by Mac stand-ins too
FAULTS_SH = REPO / "tests" / "standins" / "openwrt" / "faults.sh"
FAULTS = "/tmp/standin-faults"
FORWARD = REPO / "tests" / "harness" / "forward.py"
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STANDIN_BIN = "/opt/macos-standins"  # inside the fake Mac, first on PATH
MAC_PATH = f"{STANDIN_BIN}:/opt/homebrew/bin:/usr/bin:/bin:/usr/sbin:/sbin"
STATE_DIR = "/var/lib/macos-standin"
OLLAMA_STATE = "/var/lib/ollama-standin"
UID, GID = 501, 20
#: the macOS stand-ins copied to /opt/macos-standins (brew goes to /opt/homebrew/bin)
STANDINS = ("sw_vers", "sysctl", "system_profiler", "networksetup", "ipconfig", "scutil",
            "pmset", "launchctl", "plutil")
#: the Mac's own files over its copy of /etc
OWN_ETC = ("passwd", "group", "shadow", "sudoers", "hosts")
#: a ~/.zshrc the original installer left (its blocks, verbatim shape) around the user's lines
ORIGINAL_ZSHRC = """\
export EDITOR=vim
# >>> ai-client >>>
# Source ai-client environment
if [ -f "$HOME/.ai-client/env" ]; then
  source "$HOME/.ai-client/env"
fi
# <<< ai-client <<<
# >>> claude-ollama >>>
alias CLAUDE_OLLAMA_FLAGS='ANTHROPIC_AUTH_TOKEN=ollama ANTHROPIC_API_KEY="" ANTHROPIC_BASE_URL=http://192.168.250.20:11434 '
alias claude-ollama='CLAUDE_OLLAMA_FLAGS claude'
# <<< claude-ollama <<<
alias ll='ls -l'
"""  # noqa: E501

UNAME = ("#!/bin/sh\ncase \"$1\" in -s|\"\") echo Darwin;; -m) echo arm64;;"
         " *) /usr/bin/uname \"$@\";; esac\n")


def _q(value: object) -> str:
    return shlex.quote(str(value))


def wg_quick(tunnel: bool = False) -> str:
    """The wg-quick stand-in (``tests/standins/macos/wg-quick``): ``tunnel`` brings a real
    WireGuard tunnel up (needs the Mac in a network namespace of its own), else it records."""
    text = (MACOS_STANDINS / "wg-quick").read_text()
    return text.replace("\nTUNNEL=0\n", "\nTUNNEL=1\n", 1) if tunnel else text


def pipx() -> str:
    """The pipx stand-in (``tests/standins/macos/pipx``)."""
    return (MACOS_STANDINS / "pipx").read_text()


def client_formulae(tunnel: bool = False) -> dict:
    """Homebrew formulae a client Mac needs (``machine.json``'s ``homebrew.formulae``)."""
    # a real wg: the Mac makes its own key (wg genkey/pubkey, key_on_mac)
    wg: dict = {"bin/wg-quick": wg_quick(tunnel), "bin/wg": {"symlink": "/usr/bin/wg"}}
    formulae: dict = {
        "wireguard-tools": {"files": wg},
        "bash": {"files": {"bin/bash": {"symlink": "/usr/bin/bash"}}},
        "pipx": {"version": "1.7.1", "files": {"bin/pipx": pipx()}},
        "python@3.12": {"version": "3.12.11",
                        "files": {"bin/python3.12": {"symlink": "/usr/bin/python3"}}},
    }
    if tunnel:
        formulae["wireguard-go"] = {
            "files": {"bin/wireguard-go": {"symlink": "/usr/bin/wireguard-go"}}}
    return formulae


def ollama_formula(version: str = "0.32.15", pull_delay: float = 0.002,
                   service: Mapping | None = None, *, verbose: bool = False) -> dict:
    """Homebrew's ollama served by the Ollama API stand-in (state in /var/lib/ollama-standin);
    ``verbose``: every request in Ollama's log (the lab counts requests per tool run)."""
    formula: dict = {"version": version, "files": {"bin/ollama": {"ollama_serve": [
        "/usr/bin/python3", f"{STANDIN_BIN}/ollama_api.py", "--state-dir", OLLAMA_STATE,
        "--pull-delay", str(pull_delay), *(["--verbose"] if verbose else [])]}}}
    if service is not None:
        formula["service"] = dict(service)
    return formula


def missing() -> str | None:
    """Why a fake Mac cannot run here (``None`` if it can); for ``pytest.skip``."""
    why = requirements_missing()
    if why:
        return why
    for tool in ("sudo", "setpriv", "chroot", "flock"):
        if not _tool(tool):
            return f"{tool} not found (.ci/run: apt-get install sudo util-linux)"
    if not os.path.exists("/usr/bin/python3"):
        return "/usr/bin/python3 not found (the stand-ins run with the system Python)"
    if not os.path.exists(sftp_server()):
        return "sftp-server not found (openssh-sftp-server)"
    if not (MACOS_STANDINS / "brew").exists() or not OLLAMA_STANDIN.exists():
        return "the macOS / Ollama API stand-ins are missing"
    return None


class FakeMac(SshdHost):
    """A fake Mac behind a real OpenSSH server (see the module docstring).

    ``base`` is the Mac's directory on the host (created; keys, logs, scripts, the root's
    mount point). ``machine`` is ``machine.json``; ``files`` maps paths inside the Mac to text
    placed there before ``sshd`` starts (owned by the user when under its home). ``env`` and
    ``path_prepend`` extend the environment of the user's commands.
    """

    def __init__(self, base: str | os.PathLike[str], name: str = "mac", *, user: str = "admin",
                 hostname: str | None = None, netns: str | None = None,
                 listen: Sequence[str] = ("127.0.0.1",), machine: Mapping | None = None,
                 files: Mapping[str, str] | None = None, path_prepend: Sequence[str] = (),
                 env: Mapping[str, str] | None = None, real_net: bool = False,
                 awk: bool = True) -> None:
        self.hostname = hostname or f"{user}-mac"
        super().__init__(base, f"fake Mac {self.hostname}",
                         tuple(listen) if netns is None else ("127.0.0.1",))
        self.name = name
        self.user, self.uid, self.gid = user, UID, GID
        self.netns = netns
        self.machine = dict(machine or {"os": {"product_version": "15.5"}})
        self.files = dict(files or {})
        self.path_prepend = [str(p) for p in path_prepend]
        self.env = dict(env or {})
        self.real_net = real_net
        self.awk = awk
        self.root = self.base / "root"
        self.mac_home = self.home = f"/Users/{user}"

    #: ``<base>/ssh`` is read by the login user (authorized_keys); the private keys stay 600
    ssh_dir_mode = 0o755

    def start(self) -> FakeMac:
        if self.netns is not None and not os.path.exists(self.netns):
            raise HarnessError(f"network namespace {self.netns} does not exist")
        return super().start()

    def _prepare(self) -> None:
        os.chmod(self.base, 0o755)  # bound into the Mac: the user reads its scripts and keys
        shutil.copy2(self.key_path.with_suffix(".pub"), self.ssh_dir / "authorized_keys")
        os.chmod(self.ssh_dir / "authorized_keys", 0o644)
        os.chmod(self.commands_log, 0o666)
        self._write_files()

    # ---------------------------------------------------------------- building

    def _write_files(self) -> None:
        """The Mac's own /etc files, machine.json, uname and the seeded files (on the host,
        copied into the root by the setup script)."""
        etc = self.base / "etc"
        etc.mkdir(exist_ok=True)
        passwd = [line for line in Path("/etc/passwd").read_text().splitlines()
                  if line.split(":")[2:3] != [str(self.uid)]]
        (etc / "passwd").write_text("\n".join(passwd) + f"\n{self.user}:x:{self.uid}:{self.gid}:"
                                    f"{self.user}:{self.mac_home}:/bin/sh\n")
        groups = [g for g in Path("/etc/group").read_text().splitlines()
                  if not g.startswith(("staff:", "wheel:"))
                  and g.split(":")[2:3] != [str(self.gid)]]
        (etc / "group").write_text("\n".join(groups)
                                   + f"\nstaff:x:{self.gid}:{self.user}\nwheel:x:0:root\n")
        (etc / "shadow").write_text(
            f"root:*:19000:0:99999:7:::\n{self.user}:*:19000:0:99999:7:::\n")
        os.chmod(etc / "shadow", 0o640)
        keep = "MACOS_STANDIN_STATE MACOS_STANDIN_REAL_NET"
        (etc / "sudoers").write_text(
            f"Defaults secure_path=\"{self._path()}\"\nDefaults !lecture\n"
            f"Defaults env_keep += \"{keep}\"\nroot ALL=(ALL:ALL) ALL\n"
            f"{self.user} ALL=(ALL:ALL) NOPASSWD: ALL\n")
        os.chmod(etc / "sudoers", 0o440)
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {self.hostname}\n")
        (self.base / "machine.json").write_text(json.dumps(self.machine, indent=1))
        (self.base / "uname").write_text(UNAME)
        seed = self.base / "seed"
        shutil.rmtree(seed, ignore_errors=True)
        for rel, text in self.files.items():
            path = seed / rel.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def _path(self) -> str:
        return ":".join([*self.path_prepend, MAC_PATH])

    def _write_scripts(self) -> None:
        bindir = self.base / "bin"
        bindir.mkdir(exist_ok=True)
        os.chmod(bindir, 0o755)
        env = {"PATH": self._path(), "HOME": self.mac_home, "USER": self.user,
               "LOGNAME": self.user, "SHELL": "/bin/sh", "LC_ALL": "C.UTF-8",
               "MACOS_STANDIN_STATE": STATE_DIR,
               "MACOS_STANDIN_REAL_NET": "1" if self.real_net else "0", **self.env}
        words = " ".join(_q(f"{k}={v}") for k, v in env.items())
        force = bindir / "force-command"
        force.write_text(
            "#!/bin/bash\n"
            f"# sshd ForceCommand of fake Mac {self.hostname}: log the command, run it as the"
            " user\nexport LC_ALL=C\n"
            + log_command_bash(self.commands_log, (
                ("uid", "$(id -u)"), ("conn", '$(json_string "${SSH_CONNECTION-}")')))
            # stand-in faults: hold an exec whose command contains the text after "exec:"
            + f"if [[ -f {FAULTS} && -n ${{SSH_ORIGINAL_COMMAND+x}} ]]; then\n"
            "\twhile read -r point action arg; do\n"
            "\t\t[[ $point == exec:?* && $action == delay &&"
            " $SSH_ORIGINAL_COMMAND == *${point#exec:}* ]] && sleep \"$arg\"\n"
            f"\tdone < {FAULTS}\n"
            "fi\n"
            + shell_args_bash(self.mac_home, sftp=True)
            + f"exec env -i {words}"
            ' ${SSH_CLIENT:+"SSH_CLIENT=$SSH_CLIENT"}'
            ' ${SSH_CONNECTION:+"SSH_CONNECTION=$SSH_CONNECTION"} /bin/sh "$@"\n')
        self._force_command = force
        self._write_sshd_config(force, sftp=True,
                                authorized_keys=self.ssh_dir / "authorized_keys")
        r = str(self.root)
        base = self.base
        etc = base / "etc"
        awk = shutil.which("original-awk", path=HOST_PATH) if self.awk else None
        lines = [
            "#!/bin/bash",
            f"# PID 1 of fake Mac {self.hostname}'s private mount/PID/UTS namespaces; ends as"
            " sshd",
            "set -euo pipefail",
            f"export PATH={HOST_PATH}",
            "mount -t proc proc /proc",
            f"hostname {_q(self.hostname)}",
            f"mkdir -p {r} && mount -t tmpfs -o mode=755 tmpfs {r}",
            f"cd {r} && mkdir -p usr etc dev proc sys tmp run var/lib var/log var/tmp "
            f"opt/homebrew/bin {STANDIN_BIN.lstrip('/')} Library/LaunchDaemons "
            f"Library/LaunchAgents Library/Preferences .{self.mac_home} .{base}",
            f"for l in bin lib lib32 lib64 libx32 sbin; do if [ -L /$l ]; then "
            f"ln -s $(readlink /$l) {r}/$l; elif [ -d /$l ]; then mkdir -p {r}/$l && "
            f"mount --rbind /$l {r}/$l; fi; done",
            f"mount --rbind /usr {r}/usr && mount -o remount,bind,ro {r}/usr || true",
            # a copy of the host's /etc, not a bind: the host may replace its files meanwhile
            f"cp -a /etc/. {r}/etc/",
            *[f"rm -f {r}/etc/{f} && cp -p {etc / f} {r}/etc/{f}" for f in OWN_ETC],
            f"mount --rbind /dev {r}/dev",
            f"mount -t proc proc {r}/proc",
            f"mount --bind {base} {r}{base}",
            f"chmod 1777 {r}/tmp {r}/var/tmp && ln -s ../run {r}/var/run && mkdir -p {r}/run/sshd",
            f"mkdir -p {r}{STATE_DIR} {r}{OLLAMA_STATE} && chmod 1777 {r}{STATE_DIR}",
            f"cp {base / 'machine.json'} {r}{STATE_DIR}/machine.json",
            f"chmod 666 {r}{STATE_DIR}/machine.json",
            *[f"cp {MACOS_STANDINS / s} {r}{STANDIN_BIN}/{s}" for s in STANDINS],
            f"cp {OLLAMA_STANDIN} {r}{STANDIN_BIN}/ollama_api.py",
            f"cp {base / 'uname'} {r}{STANDIN_BIN}/uname",
            f"cp {FAULTS_SH} {r}{STANDIN_BIN}/faults.sh",
            *([f"ln -s {awk} {r}{STANDIN_BIN}/awk"] if awk else []),
            f"chmod 755 {r}{STANDIN_BIN}/*",
            f"cp {MACOS_STANDINS / 'brew'} {r}/opt/homebrew/bin/brew",
            *([f"cp -a {base / 'seed'}/. {r}/"] if self.files else []),
            f"chown -R {self.uid}:{self.gid} {r}/opt/homebrew {r}{self.mac_home} "
            f"{r}{OLLAMA_STATE}",
            f"chmod 755 {r}{self.mac_home}",
        ]
        sshd = f"chroot {r} {_tool('sshd')} -D -e -f {_q(self.sshd_config_path)}"
        if self.netns is None:
            lines.append(f"exec {sshd}")
        else:  # the controller's side of the SSH port, then sshd in the network namespace
            ready = base / "forward.ready"
            lines += [
                f"rm -f {ready}",
                f"/usr/bin/python3 {FORWARD} - 127.0.0.1 {self.port} {_q(self.netns)} 127.0.0.1 "
                f"{self.port} {ready} &",
                "fwd=$!",
                f"while [ ! -e {ready} ]; do kill -0 $fwd 2>/dev/null || exit 1; sleep 0.01;"
                " done",
                f"exec {_tool('nsenter')} --net={_q(self.netns)} {sshd}",
            ]
        setup = bindir / "setup-namespace"
        setup.write_text("\n".join(lines) + "\n")
        for script in (setup, force):
            os.chmod(script, 0o755)
        self._setup_script = setup

    # ---------------------------------------------------------------- for tests

    def run(self, command: str, user: str = "root", timeout: float = 60
            ) -> subprocess.CompletedProcess[str]:
        """A shell command inside the Mac, as root or (any other ``user``) the login user,
        NOT counted."""
        return run_in(self.ns_pid, command, user=user != "root", home=self.mac_home,
                      net=self.netns is not None, timeout=timeout)

    def path(self, inside: str) -> Path:
        """A path inside the fake Mac, as seen from the host (through its PID 1)."""
        return Path(f"/proc/{self.ns_pid}/root") / inside.lstrip("/")

    def set_faults(self, lines: Sequence[str]) -> None:
        """Stand-in faults (see the module docstring); an empty list removes every fault."""
        faults = self.path(FAULTS)
        for old in [faults, *faults.parent.glob("standin-faults.*.count")]:
            old.unlink(missing_ok=True)
        if lines:
            faults.write_text("".join(f"{line}\n" for line in lines))
            os.chmod(faults, 0o644)


def run_in(ns_pid: int | None, command: str, *, user: bool = False, home: str = "/",
           net: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``command`` inside the fake Mac whose PID 1 is ``ns_pid``, as root or its login
    user (uid 501), with the Mac's ``PATH``: not counted."""
    if not ns_pid:
        raise HarnessError("the fake Mac is not running")
    argv = [_tool("nsenter"), "-t", str(ns_pid), "-m", "-p", "-u", *(["-n"] if net else []),
            "-r", "-w", "--"]
    if user:
        argv += ["setpriv", f"--reuid={UID}", f"--regid={GID}", "--init-groups"]
    return subprocess.run(
        [*argv, "env", "-i", f"PATH={MAC_PATH}", f"HOME={home if user else '/'}",
         f"MACOS_STANDIN_STATE={STATE_DIR}", "LC_ALL=C.UTF-8", "sh", "-c", command],
        capture_output=True, text=True, timeout=timeout)


class ServerMac(FakeMac):
    """The Mac server of the server role's tests: Homebrew's ollama (served by the Ollama API
    stand-in, its brew service on ``brew_service_port``) and haproxy (the real one, or
    ``haproxy``: the keg file's spec, e.g. a wrapper script), Ethernet on a DHCP lease; reached
    on 127.0.0.1 and on its "DMZ address" 127.0.0.10. Its directory is removed at :meth:`stop`.
    """

    def __init__(self, ollama_port: int, brew_service_port: int,
                 lease_ip: str = "192.168.5.4", haproxy: str | list | None = None) -> None:
        self.ollama_port = ollama_port
        self.brew_service_port = brew_service_port
        self.tmp = Path(tempfile.mkdtemp(prefix="fake-mac-"))
        service = {
            "run": ["$HOMEBREW_PREFIX/opt/ollama/bin/ollama", "serve"],
            "keep_alive": {"always": True},
            "log_path": "$HOMEBREW_PREFIX/var/log/ollama.log",
            "error_log_path": "$HOMEBREW_PREFIX/var/log/ollama.log",
            "environment_variables": {"OLLAMA_HOST": f"127.0.0.1:{brew_service_port}"},
        }
        machine = {
            "os": {"product_version": "15.5", "build_version": "24F74"},
            "hardware": {"arch": "arm64", "memsize": 64 * 2**30, "model": "Mac16,11",
                         "chip": "Apple M4 Pro"},
            "network": {"services": [
                {"name": "Ethernet", "hardware_port": "Ethernet", "device": "en0",
                 "ethernet_address": "14:dd:a9:e8:33:81",
                 "dhcp_lease": {"ip": lease_ip, "mask": "255.255.255.0",
                                "router": "192.168.5.1"}},
                {"name": "Wi-Fi", "hardware_port": "Wi-Fi", "device": "en1",
                 "ethernet_address": "3c:22:fb:ef:dd:1d"},
            ]},
            "homebrew": {"formulae": {
                # 0.32.15: what the Ollama API stand-in reports
                "ollama": ollama_formula("0.32.15", 0.005, service),
                "haproxy": {"files": {"bin/haproxy": haproxy if haproxy is not None
                                      else [shutil.which("haproxy", path=HOST_PATH)]}},
            }},
        }
        super().__init__(self.tmp / "mac", "server", user="admin", hostname="ai-server",
                         listen=("127.0.0.1", "127.0.0.10"), machine=machine, awk=False)

    @property
    def host_home(self) -> Path:
        """The login user's HOME, as seen from the host."""
        return self.path(self.home)

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- an inventory around one fake Mac client ---------------------------------------------

#: the network data of :func:`write_client_inventory`
CLIENT_NETWORK = {
    "vpn_subnet": "10.10.10.0/24", "vpn_endpoint": "vpn.example.org", "vpn_port": 51820,
    "dmz_subnet": "192.168.100.0/24", "lan_subnet": "192.168.1.0/24", "vpn_keepalive": 25,
}


def write_client_inventory(path: Path, mac: FakeMac, secrets: Path, client: dict,
                    network: dict | None = None, server_address: str = "192.168.100.10") -> Path:
    """An inventory of one router and one server (unreachable placeholders, used with
    ``--limit alice-mac``) and the client ``alice-mac`` on ``mac`` with ``client`` data; the
    server's context is 64k (enough for Claude Code)."""
    net = {**CLIENT_NETWORK, **(network or {}), "secrets_dir": str(secrets),
           "peer_output_dir": str(secrets.parent / "out")}
    path.write_text(
        "from deploys.plan import validate_before_connect\n"
        "validate_before_connect()\n"
        f"NET = {net!r}\n"
        "router = [('router', {'ssh_hostname': '192.0.2.1', **NET})]\n"
        f"server = [('ai-server', {{'ssh_hostname': '192.0.2.2', 'dmz_address': "
        f"{server_address!r}, 'ollama_context_length': 65536, **NET}})]\n"  # Claude: >= 64k
        f"clients = [('alice-mac', {{**{mac.inventory_data()!r}, **NET, 'vpn_name': 'alice_mac',"
        f" **{client!r}}})]\n")
    return path
