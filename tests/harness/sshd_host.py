"""The life of a test host behind a real OpenSSH server (TEST ONLY): keys, a free port (retried
when taken), ``sshd -D`` started by the host's setup script as PID 1 of private mount/PID/UTS
namespaces (everything the host runs dies with it, and with the thread that started it:
``PR_SET_PDEATHSIG``), its readiness read from sshd's own "Server listening" line, and the
client side: inventory data, the ``ssh`` argv, counted execs from the ``ForceCommand``'s
``commands.jsonl``.

Subclasses write the scripts (:meth:`SshdHost._write_scripts`: ``self._setup_script``, which
ends by exec'ing ``sshd -f self.sshd_config_path``, and the config) and may prepare files
(:meth:`SshdHost._prepare`): :class:`tests.harness.fake_mac.FakeMac` and the lab's plain
:class:`tests.lab.hosts.NamespaceHost`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.harness.openwrt_host import HarnessError, _die_with_parent, _free_port, _tool

SFTP_SERVERS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                "/usr/lib/sftp-server")


def sftp_server() -> str:
    """OpenSSH's sftp-server on this machine (the first candidate when none is found)."""
    return next((p for p in SFTP_SERVERS if os.path.exists(p)), SFTP_SERVERS[0])


class SshdHost:
    """A host behind a real ``sshd`` (see the module docstring)."""

    #: the SSH login user (``inventory_data``, ``ssh_argv``)
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
                return True, ""
            if proc.poll() is not None:
                return False, self.sshd_log.read_text(errors="replace")
            time.sleep(0.005)
        proc.kill()
        proc.wait()
        return False, "timed out waiting for sshd:\n" + self.sshd_log.read_text(errors="replace")

    # ---------------------------------------------------------------- for tests

    def inventory_data(self) -> dict[str, object]:
        return {
            "ssh_hostname": "127.0.0.1", "ssh_port": self.port, "ssh_user": self.user,
            "ssh_key": str(self.key_path), "ssh_known_hosts_file": str(self.known_hosts_path),
            "ssh_strict_host_key_checking": "yes", "ssh_allow_agent": False,
            "ssh_look_for_keys": False,
        }

    def ssh_argv(self, command: str | None = None) -> list[str]:
        argv = [_tool("ssh"), "-F", "/dev/null", "-p", str(self.port), "-i", str(self.key_path),
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts_path}",
                "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
                f"{self.user}@127.0.0.1"]
        if command is not None:
            argv += ["--", command]
        return argv

    def ssh(self, command: str, check: bool = False, timeout: float = 60
            ) -> subprocess.CompletedProcess[str]:
        """A command over the real OpenSSH client (logged and counted, like pyinfra's)."""
        return subprocess.run(self.ssh_argv(command), capture_output=True, text=True,
                              check=check, timeout=timeout)

    def entries(self) -> list[dict]:
        """Logged execs since :meth:`reset_counts` (one JSON object each, ``cmd`` and more)."""
        with open(self.commands_log, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        return [json.loads(line) for line in data.splitlines() if line.strip()]

    def commands(self) -> list[str]:
        return [entry["cmd"] for entry in self.entries()]

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
