"""The life of a test host behind a real OpenSSH server (TEST ONLY): keys, a free port (retried
when taken), ``sshd -D`` started by the host's setup script as PID 1 of private mount/PID/UTS
namespaces (everything the host runs dies with it, and with the thread that started it:
``PR_SET_PDEATHSIG``), its readiness read from sshd's own "Server listening" line, and the
client side: inventory data, the ``ssh`` argv, counted execs from the ``ForceCommand``'s
``commands.jsonl``.

Subclasses write the scripts (:meth:`SshdHost._write_scripts`: ``self._setup_script``, which
ends by exec'ing ``sshd -f self.sshd_config_path``, the ``ForceCommand`` (its logging part is
:func:`log_command_bash`) and the config (:meth:`SshdHost._write_sshd_config`)) and may prepare
files (:meth:`SshdHost._prepare`): :class:`tests.harness.openwrt_host.OpenWrtHost`,
:class:`tests.harness.fake_mac.FakeMac` and the lab's plain :class:`tests.lab.hosts.NamespaceHost`.
The small helpers they share (:func:`_tool`, :class:`HarnessError`, quoting) live here too.
"""

from __future__ import annotations

import ctypes
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

SFTP_SERVERS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                "/usr/lib/sftp-server")
_TOOL_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin",
     "/sbin", "/bin"]
)


class HarnessError(RuntimeError):
    """A test host (fake router, fake Mac, lab host) could not be built or started."""


def _tool(name: str) -> str | None:
    """The host's ``name`` program (``PATH`` and the usual sbin/bin directories), or None."""
    return shutil.which(name, path=_TOOL_PATH)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _q(value: object) -> str:
    return shlex.quote(str(value))


def _cfg_path(path: Path) -> str:
    return f'"{path}"' if " " in str(path) else str(path)


def sftp_server() -> str:
    """OpenSSH's sftp-server on this machine (the first candidate when none is found)."""
    return next((p for p in SFTP_SERVERS if os.path.exists(p)), SFTP_SERVERS[0])


_JSON_ESCAPE_BASH = r"""
json_string() {
	local s=$1 i c u
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\r'/\\r}
	s=${s//$'\t'/\\t}
	if [[ $s == *[$'\x01'-$'\x1f']* ]]; then
		for ((i = 1; i < 32; i++)); do
			printf -v c "\\$(printf '%03o' "$i")"
			printf -v u '\\u%04x' "$i"
			s=${s//"$c"/$u}
		done
	fi
	printf '"%s"' "$s"
}
"""


def log_command_bash(commands_log: Path, fields: Sequence[tuple[str, str]] = ()) -> str:
    """bash for a ``ForceCommand``: log ``$SSH_ORIGINAL_COMMAND`` (when there is one) as one
    JSON line ``{"t": <epoch>, <fields>, "cmd": ...}`` to ``commands_log`` under ``flock``;
    ``fields`` are (name, bash expression of a JSON value)."""
    extra = "".join(f'\\"{name}\\": {expr}, ' for name, expr in fields)
    return (
        _JSON_ESCAPE_BASH
        + "if [[ -n ${SSH_ORIGINAL_COMMAND+x} ]]; then\n"
        f'\tline="{{\\"t\\": $EPOCHREALTIME, {extra}\\"cmd\\": '
        '$(json_string "$SSH_ORIGINAL_COMMAND")}"\n'
        f"\t{{ {_q(_tool('flock'))} 9; printf '%s\\n' \"$line\" >&9; }} 9>>{_q(commands_log)}\n"
        "fi\n"
    )


def shell_args_bash(cwd: str | os.PathLike[str] | None = None, sftp: bool = False) -> str:
    """bash for a ``ForceCommand``: optionally ``cd`` to ``cwd`` and serve SFTP sessions with
    ``sftp-server``; then set ``"$@"`` to ``-c "$SSH_ORIGINAL_COMMAND"`` (or ``-l``)."""
    text = f"cd {_q(cwd)}\n" if cwd is not None else ""
    if sftp:
        text += ("case ${SSH_ORIGINAL_COMMAND-} in\n"
                 f"\tinternal-sftp|*/sftp-server) exec {_q(sftp_server())} ;;\n"
                 "esac\n")
    return text + ("if [[ -n ${SSH_ORIGINAL_COMMAND+x} ]]; then set -- -c "
                   "\"$SSH_ORIGINAL_COMMAND\"; else set -- -l; fi\n")


class SshdHost:
    """A host behind a real ``sshd`` (see the module docstring)."""

    #: the SSH login user (``inventory_data``, ``ssh_argv``, ``sshd_config``)
    user = "root"
    #: mode of ``<base>/ssh`` (the keys' directory)
    ssh_dir_mode = 0o700

    def __init__(self, base: str | os.PathLike[str], label: str,
                 listen: tuple[str, ...] = ("127.0.0.1",)) -> None:
        self.base = Path(base)
        self.label = label
        self.listen = listen
        self.ssh_dir = self.base / "ssh"
        self.key_path = self.ssh_dir / "id_ed25519"
        self.host_key_path = self.ssh_dir / "ssh_host_ed25519_key"
        self.known_hosts_path = self.ssh_dir / "known_hosts"
        self.sshd_config_path = self.ssh_dir / "sshd_config"
        self.commands_log = self.base / "commands.jsonl"
        self.sshd_log = self.base / "sshd.log"
        self.port = 0
        self.ns_pid: int | None = None  # PID 1 of the host's namespaces (sshd)
        self._proc: subprocess.Popen[bytes] | None = None
        self._setup_script: Path | None = None
        self._offset = 0

    # aliases of the tests' older fake hosts
    key = property(lambda self: self.key_path)
    known_hosts = property(lambda self: self.known_hosts_path)

    # ---------------------------------------------------------------- for subclasses

    def _prepare(self) -> None:
        """Files the host needs before its scripts are written (keys exist by then)."""

    def _write_scripts(self) -> None:
        """Write ``self._setup_script`` and ``self.sshd_config_path`` for ``self.port``."""
        raise NotImplementedError

    def _write_sshd_config(self, force_command: Path, *, sftp: bool,
                           authorized_keys: Path | None = None) -> None:
        """``sshd_config`` for ``self.port`` on ``self.listen``: public-key logins of
        ``self.user`` only (``authorized_keys``, default the client key's ``.pub``), every
        session through ``force_command``, SFTP served when ``sftp``, no forwarding."""
        keys = authorized_keys or self.key_path.with_suffix(".pub")
        permit_root = "prohibit-password" if self.user == "root" else "no"
        self.sshd_config_path.write_text(
            "".join(f"ListenAddress {a}:{self.port}\n" for a in self.listen)
            + f"HostKey {_cfg_path(self.host_key_path)}\nPidFile none\nUsePAM no\n"
            f"StrictModes no\nPermitRootLogin {permit_root}\nAllowUsers {self.user}\n"
            "PubkeyAuthentication yes\nAuthenticationMethods publickey\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            f"AuthorizedKeysFile {_cfg_path(keys)}\nForceCommand {_cfg_path(force_command)}\n"
            + (f"Subsystem sftp {sftp_server()}\n" if sftp else "")
            # sshd runs ForceCommand through the user's login shell; SHLVL=1 stops bash from
            # sourcing the host's ~/.bashrc for every exec (Debian's bash does for sshd sessions)
            + "SetEnv SHLVL=1\nAllowTcpForwarding no\nAllowAgentForwarding no\n"
            "X11Forwarding no\nPermitTunnel no\nPrintMotd no\nPrintLastLog no\nUseDNS no\n"
            "MaxSessions 64\nMaxStartups 64:30:128\nLogLevel INFO\n")

    # ---------------------------------------------------------------- lifecycle

    def start(self):
        if self._proc is not None:
            raise HarnessError("already started")
        self.base.mkdir(parents=True, exist_ok=True)
        if not self.key_path.exists():
            self.ssh_dir.mkdir(mode=self.ssh_dir_mode, exist_ok=True)
            for path, comment in ((self.host_key_path, f"{self.label}-host"),
                                  (self.key_path, f"{self.label}-client")):
                subprocess.run([_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C",
                                comment, "-f", path], check=True, capture_output=True)
        self.commands_log.touch()
        self._prepare()
        last = ""
        for _attempt in range(5):
            self.port = _free_port()
            self._write_scripts()
            ok, last = self._start_sshd()
            if ok:
                break
            if "Address already in use" not in last:
                break
        else:
            ok = False
        if not ok:
            raise HarnessError(f"sshd of {self.label} did not start:\n{last}")
        key = self.host_key_path.with_suffix(".pub").read_text().strip()
        self.known_hosts_path.write_text(
            "".join(f"[{a}]:{self.port} {key}\n" for a in self.listen))
        return self

    def stop(self) -> None:
        """Kill sshd and, with it, every process in the host's namespaces."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            if self.ns_pid:
                try:
                    os.kill(self.ns_pid, signal.SIGKILL)  # PID 1 of the namespace
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.ns_pid = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_sshd(self) -> tuple[bool, str]:
        self.sshd_log.write_bytes(b"")
        with open(self.sshd_log, "ab") as log:
            proc = subprocess.Popen(
                [_tool("unshare"), "--mount", "--pid", "--uts", "--fork", "--kill-child",
                 "--propagation", "private", "--", str(self._setup_script)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_die_with_parent,
                cwd=self.base)
        deadline = time.monotonic() + 20
        needle = f"Server listening on {self.listen[0]} port {self.port}".encode()
        while time.monotonic() < deadline:
            if needle in self.sshd_log.read_bytes():
                self._proc = proc
                self.ns_pid = child_of(proc.pid)
                if self.ns_pid is None:
                    self.stop()
                    return False, "could not find sshd inside the namespace"
                return True, ""
            if proc.poll() is not None:
                return False, self.sshd_log.read_text(errors="replace")
            time.sleep(0.005)
        proc.kill()
        proc.wait()
        return False, "timed out waiting for sshd:\n" + self.sshd_log.read_text(errors="replace")

    # ---------------------------------------------------------------- for tests

    def inventory_data(self) -> dict[str, object]:
        """pyinfra host data to reach the host over SSH (its key, strict host key check)."""
        return {
            "ssh_hostname": "127.0.0.1", "ssh_port": self.port, "ssh_user": self.user,
            "ssh_key": str(self.key_path), "ssh_known_hosts_file": str(self.known_hosts_path),
            "ssh_strict_host_key_checking": "yes", "ssh_allow_agent": False,
            "ssh_look_for_keys": False,
        }

    def ssh_argv(self, command: str | None = None) -> list[str]:
        """argv for the OpenSSH client to reach the host (counted like any exec)."""
        argv = [_tool("ssh"), "-F", "/dev/null", "-p", str(self.port), "-i", str(self.key_path),
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts_path}",
                "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
                f"{self.user}@127.0.0.1"]
        if command is not None:
            argv += ["--", command]
        return argv

    def ssh(self, command: str, input: str | None = None, check: bool = False,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A command over the real OpenSSH client (logged and counted, like pyinfra's)."""
        return subprocess.run(self.ssh_argv(command), input=input, capture_output=True,
                              text=True, check=check, timeout=timeout)

    def entries(self, *, all: bool = False) -> list[dict]:
        """Logged execs since :meth:`reset_counts` (or ever, with ``all``): one JSON object
        each, ``cmd`` and more."""
        with open(self.commands_log, "rb") as f:
            if not all:
                f.seek(self._offset)
            data = f.read()
        return [json.loads(line.decode("utf-8", "surrogateescape"))
                for line in data.splitlines() if line.strip()]

    def commands(self, *, all: bool = False) -> list[str]:
        """Commands executed over SSH since the last :meth:`reset_counts` (or ever)."""
        return [entry["cmd"] for entry in self.entries(all=all)]

    def reset_counts(self) -> None:
        self._offset = self.commands_log.stat().st_size


def child_of(pid: int) -> int | None:
    """The first child of ``pid`` (PID 1 of the namespaces ``unshare --fork`` made)."""
    for _ in range(100):
        try:
            found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            if found:
                return int(found[0])
        except OSError:
            return None
        time.sleep(0.005)
    return None
