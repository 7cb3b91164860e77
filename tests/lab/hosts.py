"""Managed lab hosts other than the router (the DMZ server, client1, client2): a real OpenSSH
server each, on the host's 127.0.0.1, whose ``ForceCommand`` runs every command inside that
host's network namespace (TEST ONLY).

Like the fake router (``tests/harness/openwrt_host.py``), each ``sshd -D`` runs as PID 1 of
private mount and PID namespaces (processes a deploy leaves running die with it) and is tied to
the thread that started it (``PR_SET_PDEATHSIG``). The ``ForceCommand`` wrapper logs the command
as one JSON line to ``commands.jsonl`` (counted execs), then runs ``/bin/sh -c "<command>"``
through ``nsenter --net=/run/netns/<prefix><host>`` with a minimal environment: ``HOME`` is the
host's own directory under the lab dir (``hosts/<name>/home``), and ``path_prepend``
directories come first on ``PATH`` (e.g. the macOS stand-ins of ``tests/standins/macos/bin``).
The file system is the Linux host's: these are not chroots. SFTP works (pyinfra's default file
transfer): the subsystem request reaches the wrapper too, which logs it and runs
``sftp-server``.

Example::

    host = NamespaceHost(lab_dir / "hosts", "server", "/run/netns/ssol-1a2b3c-server")
    host.start()
    host.ssh("ip -4 addr show eth0")      # counted, like pyinfra's execs
    host.commands(); host.stop()
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.harness.openwrt_host import (
    _JSON_ESCAPE_BASH,
    HarnessError,
    _cfg_path,
    _die_with_parent,
    _free_port,
    _tool,
)

HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SFTP_SERVERS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                "/usr/lib/sftp-server")


def _q(value: object) -> str:
    return shlex.quote(str(value))


def sftp_server() -> str | None:
    return next((p for p in SFTP_SERVERS if os.path.exists(p)), None)


class NamespaceHost:
    """A managed host of the lab behind a real OpenSSH server (see the module docstring)."""

    def __init__(self, base: str | os.PathLike[str], name: str, netns: str, *,
                 path_prepend: Sequence[str] = (), env: Mapping[str, str] | None = None) -> None:
        if not re.match(r"^[A-Za-z0-9_.-]+$", name):
            raise ValueError(f"bad host name {name!r}")
        self.name = name
        self.netns = netns
        self.path_prepend = [str(p) for p in path_prepend]
        self.env = dict(env or {})
        self.base = Path(base) / name
        self.home = self.base / "home"
        self.ssh_dir = self.base / "ssh"
        self.key_path = self.ssh_dir / "id_ed25519"
        self.host_key_path = self.ssh_dir / "ssh_host_ed25519_key"
        self.known_hosts_path = self.ssh_dir / "known_hosts"
        self.sshd_config_path = self.ssh_dir / "sshd_config"
        self.commands_log = self.base / "commands.jsonl"
        self.sshd_log = self.base / "sshd.log"
        self.port = 0
        self.ns_pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> NamespaceHost:
        if self._proc is not None:
            raise HarnessError("already started")
        if not os.path.exists(self.netns):
            raise HarnessError(f"network namespace {self.netns} does not exist")
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o700)
        if not self.key_path.exists():
            self.ssh_dir.mkdir(mode=0o700, exist_ok=True)
            for path, comment in ((self.host_key_path, f"lab-{self.name}-host"),
                                  (self.key_path, f"lab-{self.name}-client")):
                subprocess.run([_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C",
                                comment, "-f", path], check=True, capture_output=True)
        self._write_scripts()
        last = ""
        for _attempt in range(5):
            self.port = _free_port()
            self._write_sshd_config()
            ok, last = self._start_sshd()
            if ok:
                break
            if "Address already in use" not in last:
                break
        else:
            ok = False
        if not ok:
            raise HarnessError(f"sshd for lab host {self.name} did not start:\n{last}")
        key = self.host_key_path.with_suffix(".pub").read_text().strip()
        self.known_hosts_path.write_text(f"[127.0.0.1]:{self.port} {key}\n")
        self.commands_log.touch()
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            if self.ns_pid:
                try:
                    os.kill(self.ns_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.ns_pid = None

    def _write_scripts(self) -> None:
        bindir = self.base / "bin"
        bindir.mkdir(exist_ok=True)
        setup = bindir / "setup-namespace"
        setup.write_text(
            "#!/bin/bash\n"
            f"# PID 1 of lab host {self.name}'s private mount/PID namespaces; ends by exec'ing"
            " sshd\nset -euo pipefail\n"
            f"export PATH={HOST_PATH}\n"
            "mount -t proc proc /proc\n"
            "[ -d /run/sshd ] || mkdir -m 0755 /run/sshd\n"
            f"exec {_q(_tool('sshd'))} -D -e -f {_q(self.sshd_config_path)}\n")
        path = ":".join([*self.path_prepend, HOST_PATH])
        extra_env = "".join(f" {_q(f'{k}={v}')}" for k, v in sorted(self.env.items()))
        sftp = sftp_server() or "/usr/lib/openssh/sftp-server"
        self._force_command = bindir / "force-command"
        self._force_command.write_text(
            "#!/bin/bash\n"
            f"# sshd ForceCommand of lab host {self.name}: log the command as one JSON line,\n"
            "# then run it inside the host's network namespace.\n"
            "export LC_ALL=C\n"
            + _JSON_ESCAPE_BASH
            + "if [[ -n ${SSH_ORIGINAL_COMMAND+x} ]]; then\n"
            "\tline=\"{\\\"t\\\": $EPOCHREALTIME, \\\"cmd\\\": $(json_string "
            "\"$SSH_ORIGINAL_COMMAND\")}\"\n"
            f"\t{{ {_q(_tool('flock'))} 9; printf '%s\\n' \"$line\" >&9; }}"
            f" 9>>{_q(self.commands_log)}\n"
            "fi\n"
            f"cd {_q(self.home)}\n"
            "case ${SSH_ORIGINAL_COMMAND-} in\n"
            f"\tinternal-sftp|*/sftp-server) exec {_q(sftp)} ;;\n"
            "esac\n"
            "if [[ -n ${SSH_ORIGINAL_COMMAND+x} ]]; then set -- -c \"$SSH_ORIGINAL_COMMAND\";"
            " else set -- -l; fi\n"
            f"exec {_q(_tool('env'))} -i PATH={_q(path)} HOME={_q(self.home)} USER=root"
            " LOGNAME=root SHELL=/bin/sh LC_ALL=C.UTF-8"
            ' ${SSH_CLIENT:+"SSH_CLIENT=$SSH_CLIENT"}'
            ' ${SSH_CONNECTION:+"SSH_CONNECTION=$SSH_CONNECTION"}'
            f"{extra_env}"
            f" {_q(_tool('nsenter'))} --net={_q(self.netns)} /bin/sh \"$@\"\n")
        for script in (setup, self._force_command):
            os.chmod(script, 0o755)
        self._setup_script = setup

    def _write_sshd_config(self) -> None:
        self.sshd_config_path.write_text(f"""\
ListenAddress 127.0.0.1:{self.port}
HostKey {_cfg_path(self.host_key_path)}
PidFile none
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowUsers root
PubkeyAuthentication yes
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile {_cfg_path(self.key_path.with_suffix('.pub'))}
ForceCommand {_cfg_path(self._force_command)}
Subsystem sftp {sftp_server() or '/usr/lib/openssh/sftp-server'}
SetEnv SHLVL=1
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
PrintMotd no
PrintLastLog no
UseDNS no
MaxSessions 64
MaxStartups 64:30:128
LogLevel INFO
""")

    def _start_sshd(self) -> tuple[bool, str]:
        self.sshd_log.write_bytes(b"")
        with open(self.sshd_log, "ab") as log:
            proc = subprocess.Popen(
                [_tool("unshare"), "--mount", "--pid", "--fork", "--kill-child",
                 "--propagation", "private", "--", str(self._setup_script)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_die_with_parent,
                cwd=self.base,
            )
        deadline = time.monotonic() + 15
        needle = f"Server listening on 127.0.0.1 port {self.port}".encode()
        while time.monotonic() < deadline:
            if needle in self.sshd_log.read_bytes():
                self._proc = proc
                self.ns_pid = _child_of(proc.pid)
                return True, ""
            if proc.poll() is not None:
                return False, self.sshd_log.read_text(errors="replace")
            time.sleep(0.003)
        proc.kill()
        proc.wait()
        return False, "timed out waiting for sshd:\n" + self.sshd_log.read_text(errors="replace")

    # ---------------------------------------------------------------- for tests

    def inventory_data(self) -> dict[str, object]:
        return {
            "ssh_hostname": "127.0.0.1",
            "ssh_port": self.port,
            "ssh_user": "root",
            "ssh_key": str(self.key_path),
            "ssh_known_hosts_file": str(self.known_hosts_path),
            "ssh_strict_host_key_checking": "yes",
            "ssh_allow_agent": False,
            "ssh_look_for_keys": False,
        }

    def ssh_argv(self, command: str | None = None) -> list[str]:
        argv = [_tool("ssh"), "-F", "/dev/null", "-p", str(self.port), "-i", str(self.key_path),
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts_path}",
                "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR", "root@127.0.0.1"]
        if command is not None:
            argv += ["--", command]
        return argv

    def ssh(self, command: str, check: bool = False, timeout: float = 60
            ) -> subprocess.CompletedProcess[str]:
        """Run a command through the real OpenSSH client (logged and counted)."""
        return subprocess.run(self.ssh_argv(command), capture_output=True, text=True,
                              check=check, timeout=timeout)


def _child_of(pid: int) -> int | None:
    for _ in range(100):
        try:
            found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            if found:
                return int(found[0])
        except OSError:
            return None
        time.sleep(0.005)
    return None


# -- counting, shared by the router and the other hosts ---------------------------------------


def read_commands(log: str | os.PathLike[str], offset: int = 0) -> list[str]:
    """Commands in a ForceCommand log (``commands.jsonl``) from byte ``offset`` on."""
    try:
        with open(log, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return []
    return [json.loads(line.decode("utf-8", "surrogateescape"))["cmd"]
            for line in data.splitlines() if line.strip()]


def count_connections(sshd_log: str | os.PathLike[str], offset: int = 0) -> int:
    """Accepted SSH logins in an ``sshd -e`` log from byte ``offset`` on."""
    try:
        with open(sshd_log, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return 0
    return data.count(b"Accepted publickey for ")


def is_upload(command: str) -> bool:
    """An scp upload (``scp -t``) or an SFTP session (pyinfra's transfers)."""
    words = command.split()
    if not words:
        return False
    if words[0].endswith("sftp-server") or words[0] == "internal-sftp":
        return True
    if words[0] not in ("scp", "/usr/bin/scp"):
        return False
    for word in words[1:]:
        if not word.startswith("-") or word == "--":
            return False
        if "t" in word[1:] and not word.startswith("--"):
            return True
    return False
