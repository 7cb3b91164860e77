"""Managed lab hosts other than the router (the DMZ server, client1, client2): a real OpenSSH
server each, on the host's 127.0.0.1, whose ``ForceCommand`` runs every command inside that
host's network namespace (TEST ONLY).

Like the fake router (``tests/harness/openwrt_host.py``) and the fake Macs, each ``sshd -D``
runs as PID 1 of private mount and PID namespaces (processes a deploy leaves running die with
it) and is tied to the thread that started it (``PR_SET_PDEATHSIG``): the life of
:class:`tests.harness.sshd_host.SshdHost`, which :class:`NamespaceHost` is. The
``ForceCommand`` wrapper logs the command as one JSON line to ``commands.jsonl`` (counted
execs), then runs ``/bin/sh -c "<command>"`` through ``nsenter --net=/run/netns/<prefix><host>``
with a minimal environment: ``HOME`` is the host's own directory under the lab dir
(``hosts/<name>/home``), and ``path_prepend`` directories come first on ``PATH`` (e.g. the
macOS stand-ins). The file system is the Linux host's: these are not chroots. SFTP works
(pyinfra's default file transfer): the subsystem request reaches the wrapper too, which logs it
and runs ``sftp-server``.

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
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.harness.sshd_host import (
    HarnessError,
    SshdHost,
    _tool,
    log_command_bash,
    shell_args_bash,
)

HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _q(value: object) -> str:
    return shlex.quote(str(value))


class NamespaceHost(SshdHost):
    """A managed host of the lab behind a real OpenSSH server (see the module docstring)."""

    def __init__(self, base: str | os.PathLike[str], name: str, netns: str, *,
                 path_prepend: Sequence[str] = (), env: Mapping[str, str] | None = None) -> None:
        if not re.match(r"^[A-Za-z0-9_.-]+$", name):
            raise ValueError(f"bad host name {name!r}")
        super().__init__(Path(base) / name, f"lab-{name}")
        self.name = name
        self.netns = netns
        self.path_prepend = [str(p) for p in path_prepend]
        self.env = dict(env or {})
        self.home = self.base / "home"

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> NamespaceHost:
        if not os.path.exists(self.netns):
            raise HarnessError(f"network namespace {self.netns} does not exist")
        return super().start()

    def _prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o700)

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
        self._force_command = bindir / "force-command"
        self._force_command.write_text(
            "#!/bin/bash\n"
            f"# sshd ForceCommand of lab host {self.name}: log the command as one JSON line,\n"
            "# then run it inside the host's network namespace.\n"
            "export LC_ALL=C\n"
            + log_command_bash(self.commands_log) + shell_args_bash(self.home, sftp=True)
            + f"exec {_q(_tool('env'))} -i PATH={_q(path)} HOME={_q(self.home)}"
            " USER=root LOGNAME=root SHELL=/bin/sh LC_ALL=C.UTF-8"
            ' ${SSH_CLIENT:+"SSH_CLIENT=$SSH_CLIENT"}'
            ' ${SSH_CONNECTION:+"SSH_CONNECTION=$SSH_CONNECTION"}'
            f"{extra_env}"
            f" {_q(_tool('nsenter'))} --net={_q(self.netns)} /bin/sh \"$@\"\n")
        for script in (setup, self._force_command):
            os.chmod(script, 0o755)
        self._setup_script = setup
        self._write_sshd_config(self._force_command, sftp=True)


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
