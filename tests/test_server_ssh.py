"""The server deploy end to end: the pyinfra CLI, exactly as a user runs it, over real OpenSSH to
a fake Mac whose macOS commands are the stand-ins of ``tests/standins/macos`` (``launchctl``
really supervises the jobs, ``brew`` really installs kegs, ``ollama serve`` is the Ollama API
stand-in, ``haproxy`` is the real HAProxy).

The fake Mac (:class:`FakeMac`): a real ``sshd`` on 127.0.0.1 running as PID 1 of private mount
and PID namespaces (everything it starts dies with it). In that mount namespace only: an
``admin`` account (uid 501, like the first macOS account) is added to ``/etc/passwd``,
``/etc/group`` and ``/etc/shadow``, ``/etc/sudoers`` lets it sudo without a password, ``/opt`` is
a tmpfs holding ``/opt/homebrew/bin/brew``, and ``/tmp`` is private. Commands run as ``admin``
with the stand-ins first on ``PATH``; every command is logged (counted execs). Ollama's "DMZ"
is 127.0.0.0/24 (the server is 127.0.0.10, on a free port), so nothing touches a real network.

Covered: converge from a fresh Mac (brew services' Ollama running, DHCP, default power
settings), the exact no-op re-run (one exec), a data change (restart only then), the HAProxy
mode with the real haproxy (403 for /api/pull through it), and the uninstall.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.harness.openwrt_host import (
    _JSON_ESCAPE_BASH,
    _die_with_parent,
    _free_port,
    _tool,
    requirements_missing,
)

pytestmark = pytest.mark.ssh

REPO = Path(__file__).resolve().parents[1]
STANDINS = REPO / "tests" / "standins"
MACOS_STANDINS = STANDINS / "macos"
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UID = 501


def _missing() -> str | None:
    why = requirements_missing()
    if why:
        return why
    for tool in ("sudo", "curl", "haproxy", "setpriv"):
        if not shutil.which(tool, path=HOST_PATH):
            return f"{tool} not found"
    if not os.path.exists("/usr/bin/python3"):
        return "/usr/bin/python3 not found (the stand-ins run with the system Python)"
    if not MACOS_STANDINS.is_dir() or not (STANDINS / "ollama_api.py").exists():
        return "the macOS / Ollama API stand-ins are missing"
    try:
        pwd.getpwuid(UID)
        return f"uid {UID} exists on this machine; the fake Mac needs it free"
    except KeyError:
        return None


_MISSING = _missing()
if _MISSING:
    if os.environ.get("CI") == "true":
        pytest.fail(f"fake Mac unavailable in CI: {_MISSING}", pytrace=False)
    pytest.skip(f"fake Mac unavailable: {_MISSING}", allow_module_level=True)


class FakeMac:
    """A Mac reached over real OpenSSH (see the module docstring)."""

    def __init__(
        self, ollama_port: int, brew_service_port: int, lease_ip: str = "192.168.5.4"
    ) -> None:
        # not under /tmp or /var/tmp: the fake Mac gets private ones
        self.base = Path(tempfile.mkdtemp(prefix="fake-mac-", dir="/run"))
        self.lease_ip = lease_ip
        os.chmod(self.base, 0o755)
        self.home = self.base / "home"
        self.state = self.base / "macos-state"
        self.bin = self.base / "bin"
        self.ssh_dir = self.base / "ssh"
        self.key = self.ssh_dir / "id_ed25519"
        self.host_key = self.ssh_dir / "host_ed25519"
        self.known_hosts = self.ssh_dir / "known_hosts"
        self.commands_log = self.base / "commands.jsonl"
        self.sshd_log = self.base / "sshd.log"
        self.ollama_port = ollama_port
        self.brew_service_port = brew_service_port
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._offset = 0

    # ------------------------------------------------------------------ build
    def _build(self) -> None:
        for d in (
            self.home,
            self.state,
            self.bin,
            self.ssh_dir,
            self.base / "etc",
            self.base / "ollama-state",
        ):
            d.mkdir(parents=True, exist_ok=True)
        for d in (self.home, self.base / "ollama-state"):
            os.chown(d, UID, UID)
        os.chmod(self.state, 0o1777)
        for name in (
            "sw_vers",
            "sysctl",
            "networksetup",
            "pmset",
            "launchctl",
            "scutil",
            "ipconfig",
            "system_profiler",
        ):
            # copies, not links: the repository may live under /tmp, which the Mac hides
            shutil.copy2(MACOS_STANDINS / name, self.bin / name)
        shutil.copy2(MACOS_STANDINS / "brew", self.base / "brew")
        shutil.copy2(STANDINS / "ollama_api.py", self.base / "ollama_api.py")
        etc = self.base / "etc"
        (etc / "passwd").write_text(
            Path("/etc/passwd").read_text() + f"admin:x:{UID}:{UID}:Admin:{self.home}:/bin/sh\n"
        )
        (etc / "group").write_text(Path("/etc/group").read_text() + f"admin:x:{UID}:\n")
        (etc / "shadow").write_text(
            Path("/etc/shadow").read_text() + "admin:*:19000:0:99999:7:::\n"
        )
        os.chmod(etc / "shadow", 0o640)
        secure_path = f"{self.bin}:/opt/homebrew/bin:{HOST_PATH}"
        (etc / "sudoers").write_text(
            "Defaults env_reset\n"
            f'Defaults secure_path="{secure_path}"\n'
            'Defaults env_keep += "MACOS_STANDIN_STATE MACOS_STANDIN_REAL_NET"\n'
            "root ALL=(ALL:ALL) ALL\n"
            "admin ALL=(ALL) NOPASSWD: ALL\n"
        )
        os.chmod(etc / "sudoers", 0o440)
        machine = {
            "os": {"product_version": "15.5", "build_version": "24F74"},
            "hardware": {
                "arch": "arm64",
                "memsize": 64 * 2**30,
                "model": "Mac16,11",
                "chip": "Apple M4 Pro",
            },
            "network": {
                "services": [
                    {
                        "name": "Ethernet",
                        "hardware_port": "Ethernet",
                        "device": "en0",
                        "ethernet_address": "14:dd:a9:e8:33:81",
                        "dhcp_lease": {
                            "ip": self.lease_ip,
                            "mask": "255.255.255.0",
                            "router": "192.168.5.1",
                        },
                    },
                    {
                        "name": "Wi-Fi",
                        "hardware_port": "Wi-Fi",
                        "device": "en1",
                        "ethernet_address": "3c:22:fb:ef:dd:1d",
                    },
                ]
            },
            "homebrew": {
                "formulae": {
                    "ollama": {
                        "version": "0.32.15",  # what the Ollama API stand-in reports
                        "files": {
                            "bin/ollama": {
                                "ollama_serve": [
                                    "/usr/bin/python3",
                                    str(self.base / "ollama_api.py"),
                                    "--state-dir",
                                    str(self.base / "ollama-state"),
                                    "--pull-delay",
                                    "0.005",
                                ]
                            }
                        },
                        "service": {
                            "run": ["$HOMEBREW_PREFIX/opt/ollama/bin/ollama", "serve"],
                            "keep_alive": {"always": True},
                            "log_path": "$HOMEBREW_PREFIX/var/log/ollama.log",
                            "error_log_path": "$HOMEBREW_PREFIX/var/log/ollama.log",
                            "environment_variables": {
                                "OLLAMA_HOST": f"127.0.0.1:{self.brew_service_port}",
                            },
                        },
                    },
                    "haproxy": {
                        "files": {"bin/haproxy": [shutil.which("haproxy", path=HOST_PATH)]}
                    },
                }
            },
        }
        (self.state / "machine.json").write_text(json.dumps(machine, indent=1))
        keygen = _tool("ssh-keygen")
        for path in (self.host_key, self.key):
            subprocess.run(
                [keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                check=True,
                capture_output=True,
            )
        (self.ssh_dir / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        os.chmod(self.ssh_dir / "authorized_keys", 0o644)
        self.commands_log.touch()
        os.chmod(self.commands_log, 0o666)
        self._write_scripts()

    def _write_scripts(self) -> None:
        env = {
            "PATH": f"{self.bin}:/opt/homebrew/bin:{HOST_PATH}",
            "HOME": str(self.home),
            "USER": "admin",
            "LOGNAME": "admin",
            "SHELL": "/bin/sh",
            "LC_ALL": "C.UTF-8",
            "MACOS_STANDIN_STATE": str(self.state),
            "MACOS_STANDIN_REAL_NET": "0",
        }
        env_words = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
        sftp = next(
            (
                p
                for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server")
                if os.path.exists(p)
            ),
            "/usr/lib/openssh/sftp-server",
        )
        force = self.base / "force-command"
        force.write_text(
            "#!/bin/bash\n# ForceCommand of the fake Mac: log the command, run it as admin would\n"
            "export LC_ALL=C\n"
            + _JSON_ESCAPE_BASH
            + "if [[ -n ${SSH_ORIGINAL_COMMAND+x} ]]; then\n"
            '\tline="{\\"t\\": $EPOCHREALTIME, \\"conn\\": $(json_string "$SSH_CONNECTION"), '
            '\\"cmd\\": $(json_string "$SSH_ORIGINAL_COMMAND")}"\n'
            f"\t{{ flock 9; printf '%s\\n' \"$line\" >&9; }} "
            f"9>>{shlex.quote(str(self.commands_log))}\n"
            "fi\n"
            f"cd {shlex.quote(str(self.home))}\n"
            f"case ${{SSH_ORIGINAL_COMMAND-}} in internal-sftp|*/sftp-server) exec {sftp};; esac\n"
            'if [[ -n ${SSH_ORIGINAL_COMMAND+x} ]]; then set -- -c "$SSH_ORIGINAL_COMMAND";'
            " else set -- -l; fi\n"
            f"exec env -i {env_words}"
            ' ${SSH_CONNECTION:+"SSH_CONNECTION=$SSH_CONNECTION"} /bin/sh "$@"\n'
        )
        etc = self.base / "etc"
        setup = self.base / "setup-namespace"
        setup.write_text(
            "#!/bin/bash\nset -euo pipefail\n"
            f"export PATH={HOST_PATH}\n"
            "mount -t proc proc /proc\n"
            + "".join(
                f"mount --bind {etc / f} /etc/{f}\n"
                for f in ("passwd", "group", "shadow", "sudoers")
            )
            + "mount -t tmpfs -o mode=0755 tmpfs /opt\n"
            "mkdir -p /opt/homebrew/bin\n"
            f"cp {self.base / 'brew'} /opt/homebrew/bin/brew\n"
            f"chown -R {UID}:{UID} /opt/homebrew\n"
            "mount -t tmpfs -o mode=1777 tmpfs /tmp\n"
            "mount -t tmpfs -o mode=1777 tmpfs /var/tmp\n"
            "[ -d /run/sshd ] || mkdir -m 0755 /run/sshd\n"
            f"exec {_tool('sshd')} -D -e -f {self.base / 'sshd_config'}\n"
        )
        for script in (force, setup):
            os.chmod(script, 0o755)
        self._setup = setup
        self._force = force

    def _write_sshd_config(self) -> None:
        (self.base / "sshd_config").write_text(
            f"ListenAddress 127.0.0.1:{self.port}\nListenAddress 127.0.0.10:{self.port}\n"
            f"HostKey {self.host_key}\nPidFile none\n"
            "UsePAM no\nStrictModes no\nPermitRootLogin no\nAllowUsers admin\n"
            "PubkeyAuthentication yes\nAuthenticationMethods publickey\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            f"AuthorizedKeysFile {self.ssh_dir / 'authorized_keys'}\n"
            f"ForceCommand {self._force}\nSetEnv SHLVL=1\nAllowTcpForwarding no\n"
            "X11Forwarding no\nPrintMotd no\nPrintLastLog no\nUseDNS no\nMaxSessions 64\n"
            "MaxStartups 64:30:128\nLogLevel INFO\n"
        )

    # -------------------------------------------------------------- lifecycle
    def start(self) -> FakeMac:
        self._build()
        for _attempt in range(5):
            self.port = _free_port()
            self._write_sshd_config()
            self.sshd_log.write_bytes(b"")
            with open(self.sshd_log, "ab") as log:
                proc = subprocess.Popen(
                    [
                        _tool("unshare"),
                        "--mount",
                        "--pid",
                        "--fork",
                        "--kill-child",
                        "--propagation",
                        "private",
                        "--",
                        str(self._setup),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    preexec_fn=_die_with_parent,
                )
            needle = f"Server listening on 127.0.0.1 port {self.port}".encode()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and proc.poll() is None:
                if needle in self.sshd_log.read_bytes():
                    self._proc = proc
                    key = self.host_key.with_suffix(".pub").read_text().strip()
                    self.known_hosts.write_text(
                        f"[127.0.0.1]:{self.port} {key}\n[127.0.0.10]:{self.port} {key}\n"
                    )
                    return self
                time.sleep(0.01)
            proc.kill()
            proc.wait()
            if b"Address already in use" not in self.sshd_log.read_bytes():
                break
        raise RuntimeError("fake Mac sshd did not start:\n" + self.sshd_log.read_text())

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            try:  # sshd is PID 1 of the namespace: killing it kills everything the tests started
                for pid in children.read_text().split():
                    os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(self.base, ignore_errors=True)

    # ------------------------------------------------------------------- use
    def inventory_data(self) -> dict[str, object]:
        return {
            "ssh_hostname": "127.0.0.1",
            "ssh_port": self.port,
            "ssh_user": "admin",
            "ssh_key": str(self.key),
            "ssh_known_hosts_file": str(self.known_hosts),
            "ssh_strict_host_key_checking": "yes",
            "ssh_allow_agent": False,
            "ssh_look_for_keys": False,
        }

    def ssh(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A command over the real OpenSSH client (counted like pyinfra's)."""
        argv = [
            _tool("ssh"),
            "-F",
            "/dev/null",
            "-p",
            str(self.port),
            "-i",
            str(self.key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "LogLevel=ERROR",
            "admin@127.0.0.1",
            "--",
            command,
        ]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def entries(self) -> list[dict]:
        """Logged execs since :meth:`reset_counts`: ``{"t", "conn" (SSH_CONNECTION), "cmd"}``."""
        with open(self.commands_log, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        return [json.loads(line) for line in data.splitlines() if line.strip()]

    def commands(self) -> list[str]:
        return [entry["cmd"] for entry in self.entries()]

    def reset_counts(self) -> None:
        self._offset = self.commands_log.stat().st_size


# -- the tests --------------------------------------------------------------------------------

NETWORK = {
    "vpn_endpoint": "vpn.example.org",
    "dmz_subnet": "127.0.0.0/24",  # the fake Mac's "DMZ": loopback addresses only
}


@pytest.fixture(scope="module")
def mac():
    fake = FakeMac(ollama_port=_free_port(), brew_service_port=_free_port()).start()
    yield fake
    fake.stop()


def write_inventory(mac: FakeMac, tmp: Path, **server: object) -> Path:
    network = {**NETWORK, "ollama_port": mac.ollama_port, "secrets_dir": str(tmp / "secrets")}
    data = {
        **mac.inventory_data(),
        **network,
        "dmz_address": "127.0.0.10",
        "log_rotate": False,  # the fake Mac's /etc is this machine's: no /etc/newsyslog.d
        **server,
    }
    path = tmp / "inventory.py"
    path.write_text(
        f"_net = {network!r}\n"
        'router = [("router", {"ssh_hostname": "127.0.0.9", "ssh_port": 9, **_net})]\n'
        f"server = [('ai-server', {data!r})]\n"
    )
    return path


def pyinfra(inventory: Path, deploy: str = "deploys/server.py", *args: str):
    return subprocess.run(
        [sys.executable, "-m", "pyinfra", str(inventory), deploy, "--limit", "ai-server", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        input="\n",
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def get(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, method=method, data=body)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def job(mac: FakeMac, target: str) -> str:
    return mac.ssh(f"launchctl print {target} 2>&1 | awk '/^\\tstate = /{{print $3}}'").stdout


MODELS = ["llama3.2:1b", {"name": "qwen2.5-coder:7b", "warm": True}]


def test_converge_then_nothing_to_do(mac, tmp_path):
    # a competing server first: brew services' Ollama (on another port, not 11434)
    # (as an admin did it in an interactive SSH session: with a TTY, brew picks user/501)
    seed = mac.ssh(
        "brew install ollama >/dev/null 2>&1 && SSH_TTY=/dev/pts/0 brew services start ollama 2>&1"
    )
    assert seed.returncode == 0, seed.stdout + seed.stderr
    assert job(mac, "user/501/homebrew.mxcl.ollama").strip() == "running"

    inventory = write_inventory(
        mac, tmp_path, ollama_models=MODELS, ollama_keep_alive="24h", ollama_context_length=8192
    )
    mac.reset_counts()
    first = pyinfra(inventory)
    assert first.returncode == 0, first.stdout + first.stderr
    api = f"http://127.0.0.10:{mac.ollama_port}"

    # Ollama runs as our LaunchAgent in user/501 (no GUI login), from our plist
    assert job(mac, "user/501/com.ollama").strip() == "running"
    plist = (mac.home / "Library/LaunchAgents/com.ollama.plist").read_text()
    assert f"<string>127.0.0.10:{mac.ollama_port}</string>" in plist
    # brew services' server is gone, and so is its plist
    assert job(mac, "user/501/homebrew.mxcl.ollama").strip() == ""
    assert not (mac.home / "Library/LaunchAgents/homebrew.mxcl.ollama.plist").exists()
    # models pulled, the warm one loaded with the clients' context
    status, body = get(f"{api}/api/tags")
    assert status == 200
    assert {m["name"] for m in json.loads(body)["models"]} == {"llama3.2:1b", "qwen2.5-coder:7b"}
    loaded = json.loads(get(f"{api}/api/ps")[1])["models"]
    assert [(m["name"], m["context_length"]) for m in loaded] == [("qwen2.5-coder:7b", 8192)]
    # power and network, through sudo
    pmset = mac.ssh("pmset -g custom").stdout
    assert " sleep                0" in pmset and " autorestart          1" in pmset
    info = mac.ssh("networksetup -getinfo Ethernet").stdout
    assert info.startswith("Manual Configuration\nIP address: 127.0.0.10\n")
    assert mac.ssh("networksetup -getdnsservers Ethernet").stdout.strip() == "127.0.0.1"
    assert (
        "Ollama 0.32.15: offers /v1/chat/completions, /v1/models, /v1/responses, "
        "/v1/messages" in first.stdout + first.stderr
    )

    # the no-op re-run: the one read, nothing else
    mac.reset_counts()
    second = pyinfra(inventory)
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(mac.commands()) == 1, mac.commands()
    assert "Success" not in second.stdout

    # a data change restarts Ollama (and only then)
    changed = write_inventory(
        mac, tmp_path, ollama_models=MODELS, ollama_keep_alive="1h", ollama_context_length=8192
    )
    pid_before = mac.ssh("launchctl print user/501/com.ollama | awk '/^\\tpid = /{print $3}'")
    mac.reset_counts()
    third = pyinfra(changed)
    assert third.returncode == 0, third.stdout + third.stderr
    pid_after = mac.ssh("launchctl print user/501/com.ollama | awk '/^\\tpid = /{print $3}'")
    assert pid_before.stdout != pid_after.stdout
    assert "<string>1h</string>" in (mac.home / "Library/LaunchAgents/com.ollama.plist").read_text()
    # after the restart the warm model is loaded again
    loaded = json.loads(get(f"{api}/api/ps")[1])["models"]
    assert [m["name"] for m in loaded] == ["qwen2.5-coder:7b"]
    mac.reset_counts()
    assert pyinfra(changed).returncode == 0
    assert len(mac.commands()) == 1

    # a model that cannot be pulled fails the run, with Ollama's message; the others are pulled
    failing = write_inventory(
        mac,
        tmp_path,
        ollama_models=[*MODELS, "no-such-model", "qwen3"],
        ollama_keep_alive="1h",
        ollama_context_length=8192,
    )
    result = pyinfra(failing)
    assert result.returncode != 0
    assert (
        "no-such-model:latest pull model manifest: file does not exist"
        in result.stdout + result.stderr
    )
    assert "qwen3:latest" in {m["name"] for m in json.loads(get(f"{api}/api/tags")[1])["models"]}


def test_haproxy_mode_then_uninstall(mac, tmp_path):
    inventory = write_inventory(mac, tmp_path, proxy="haproxy", ollama_models=["llama3.2:1b"])
    first = pyinfra(inventory)
    assert first.returncode == 0, first.stdout + first.stderr
    assert job(mac, "user/501/com.haproxy").strip() == "running"
    public = f"http://127.0.0.10:{mac.ollama_port}"
    assert get(f"{public}/api/tags")[0] == 200
    assert get(f"{public}/v1/models")[0] == 200
    assert get(f"{public}/api/pull", "POST", b'{"model":"x"}')[0] == 403
    assert get(f"{public}/api/delete", "DELETE", b'{"model":"llama3.2:1b"}')[0] == 403
    # Ollama itself now listens on loopback only
    assert get(f"http://127.0.0.1:{mac.ollama_port}/api/version")[0] == 200
    assert "127.0.0.1:" in (mac.home / "Library/LaunchAgents/com.ollama.plist").read_text()
    cfg = mac.home / ".haproxy/haproxy.cfg"
    assert f"bind 127.0.0.10:{mac.ollama_port}" in cfg.read_text()

    mac.reset_counts()
    again = pyinfra(inventory)
    assert again.returncode == 0 and len(mac.commands()) == 1, mac.commands()

    # uninstall: services and plists gone, binary and models kept; then nothing left to do
    mac.reset_counts()
    gone = pyinfra(inventory, "deploys/uninstall.py")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert job(mac, "user/501/com.ollama").strip() == ""
    assert job(mac, "user/501/com.haproxy").strip() == ""
    assert not (mac.home / "Library/LaunchAgents/com.ollama.plist").exists()
    assert not (mac.home / "Library/LaunchAgents/com.haproxy.plist").exists()
    assert not cfg.exists() and not cfg.parent.exists()
    assert mac.ssh("test -e /tmp/ollama.stdout.log || echo gone").stdout.strip() == "gone"
    assert (
        mac.ssh("test -x /opt/homebrew/opt/ollama/bin/ollama && echo kept").stdout.strip() == "kept"
    )
    assert "llama3.2:1b" in (mac.base / "ollama-state" / "state.json").read_text()
    mac.reset_counts()
    assert pyinfra(inventory, "deploys/uninstall.py").returncode == 0
    assert len(mac.commands()) == 1


def test_static_ip_on_the_link_of_the_ssh_session(tmp_path):
    """The Mac's Ethernet has the address this SSH session uses: refused (nothing changes)
    unless allowed; allowed, it is applied from a detached root job, pyinfra reconnects to the
    new address and confirms there (or the Mac would roll back by itself)."""
    mac = FakeMac(_free_port(), _free_port(), lease_ip="127.0.0.1").start()
    try:
        inventory = write_inventory(mac, tmp_path, pmset={})
        mac.reset_counts()
        refused = pyinfra(inventory)
        assert refused.returncode != 0
        assert (
            "ai-server: static_ip_over_ssh: False (this SSH session runs over Ethernet "
            "(127.0.0.1); giving it 127.0.0.10 would cut it" in refused.stdout + refused.stderr
        )
        assert "nothing was changed" in refused.stdout + refused.stderr
        assert len(mac.commands()) == 1  # the read, nothing else
        assert mac.ssh("networksetup -getinfo Ethernet").stdout.startswith("DHCP Configuration")

        allowed = write_inventory(mac, tmp_path, pmset={}, static_ip_over_ssh=True)
        mac.reset_counts()
        result = pyinfra(allowed)
        entries = mac.entries()
        assert result.returncode == 0, result.stdout + result.stderr
        info = mac.ssh("networksetup -getinfo Ethernet").stdout
        assert info.startswith("Manual Configuration\nIP address: 127.0.0.10\n")
        detached = next(i for i, e in enumerate(entries) if "pyinfra-netapply/job.sh" in e["cmd"])
        confirm = next(
            i
            for i, e in enumerate(entries)
            if "then rm -f /var/tmp/pyinfra-netapply/armed; else" in e["cmd"]
        )
        assert entries[detached]["conn"].split()[2] == "127.0.0.1"
        assert confirm > detached and entries[confirm]["conn"].split()[2] == "127.0.0.10"
        # everything after the change went over the new connection
        assert all(e["conn"].split()[2] == "127.0.0.10" for e in entries[confirm:])
        assert mac.ssh("test -e /var/tmp/pyinfra-netapply/armed || echo confirmed").stdout == (
            "confirmed\n"
        )

        mac.reset_counts()
        again = pyinfra(allowed)
        assert again.returncode == 0 and len(mac.commands()) == 1, mac.commands()
    finally:
        mac.stop()


def test_pin_ollama_from_server_data(mac, tmp_path):
    from facts.client import BrewPinned

    pinned = write_inventory(mac, tmp_path, ollama_models=["llama3.2:1b"], pin_ollama=True)
    first = pyinfra(pinned)
    assert first.returncode == 0, first.stdout + first.stderr
    assert mac.ssh(BrewPinned().command()).stdout.split() == ["ollama"]
    mac.reset_counts()
    again = pyinfra(pinned)
    assert again.returncode == 0 and "Success" not in again.stdout
    assert len(mac.commands()) == 2, mac.commands()  # the state read + the pinned list
    unpinned = write_inventory(mac, tmp_path, ollama_models=["llama3.2:1b"], pin_ollama=False)
    assert pyinfra(unpinned).returncode == 0
    assert mac.ssh(BrewPinned().command()).stdout.split() == []
