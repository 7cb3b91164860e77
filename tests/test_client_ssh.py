"""End to end: the client role through the pyinfra CLI, over real OpenSSH, into a fake Mac.

The fake Mac (:class:`FakeMac`) is a root file system of its own (tmpfs, the host's ``/usr``
and ``/etc`` bound read-only, our ``passwd``/``group``/``shadow``/``sudoers``/``hosts`` on top)
in private mount, PID and UTS namespaces; ``sshd`` is chrooted into it. The SSH user ``alice``
(uid 501, home ``/Users/alice``) is not root and uses the real ``sudo`` (NOPASSWD); Homebrew
at ``/opt/homebrew`` is the project's ``brew`` stand-in (``tests/standins/macos/brew``), with
``wg-quick`` (bash >= 4 and root required, ``/var/run/wireguard/<name>.name`` + the utun socket
as darwin.bash), ``pipx`` and ``python@3.12`` configured as small stand-ins; ``launchctl``,
``sw_vers`` are the project's stand-ins, ``uname -s`` says Darwin and ``awk`` is the
one-true-awk (macOS' awk) when installed. Every SSH exec is logged (``commands.jsonl``).

Checked: a first run from a Mac that had the original installer (blocks, a key in
``~/Downloads``), a second run that changes nothing in exactly two execs, no key on any
command line or in pyinfra's output, a disabled peer, uninstall, and the Claude Code gate
asking a real HTTP server (the Ollama API stand-in) for its version.

Needs root, OpenSSH (``sshd``, ``ssh-keygen``), ``sudo``, util-linux; skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from deploys.keys import KeyStore
from deploys.peers import parse_wg_quick, peer_config
from deploys.plan import materialize, validate
from tests.harness.openwrt_host import _die_with_parent, _free_port

pytestmark = pytest.mark.ssh

REPO = Path(__file__).resolve().parents[1]
MACOS_STANDINS = REPO / "tests" / "standins" / "macos"
OLLAMA_STANDIN = REPO / "tests" / "standins" / "ollama_api.py"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
STANDIN_BIN = "/opt/macos-standins"  # inside the fake Mac, first on PATH
MAC_PATH = f"{STANDIN_BIN}:/usr/bin:/bin:/usr/sbin:/sbin"  # like a non-login SSH shell's

WG_QUICK = r"""#!/usr/bin/env bash
# TEST STAND-IN for Homebrew's wg-quick (darwin.bash): only what the client role relies on.
if (( BASH_VERSINFO[0] < 4 )); then
    echo "wg-quick: Version mismatch: bash ${BASH_VERSINFO[0]} detected, when bash 4+ required" >&2
    exit 1
fi
[[ $UID == 0 ]] || { echo "wg-quick must be run as root" >&2; exit 1; }
cmd=$1 conf=$2
[[ $conf == */* ]] || conf=/opt/homebrew/etc/wireguard/$conf.conf
iface=${conf##*/}; iface=${iface%.conf}
[[ -e $conf ]] || { echo "wg-quick: \`$conf' does not exist" >&2; exit 1; }
if [[ $(stat -c '%a' "$conf") != ?00 || $(stat -c '%a' "${conf%/*}") != ?00 ]]; then
    echo "Warning: \`$conf' is world accessible" >&2
fi
name=/var/run/wireguard/$iface.name
case $cmd in
up)
    if [[ -f $name ]]; then
        echo "wg-quick: \`$iface' already exists as \`$(cat "$name")'" >&2; exit 1
    fi
    mkdir -p /var/run/wireguard
    n=3; while [[ -e /var/run/wireguard/utun$n.sock ]]; do n=$((n + 1)); done
    echo "[#] wireguard-go utun" >&2
    python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
        "/var/run/wireguard/utun$n.sock"
    echo "utun$n" > "$name"
    cp "$conf" "/var/run/wireguard/utun$n.applied"   # what `wg setconf` was given (tests)
    echo "[+] Interface for $iface is utun$n" >&2
    ;;
down)
    [[ -f $name ]] || { echo "wg-quick: \`$iface' is not a WireGuard interface" >&2; exit 1; }
    dev=$(cat "$name")
    rm -f "/var/run/wireguard/$dev.sock" "/var/run/wireguard/$dev.applied" "$name"
    echo "[#] rm -f /var/run/wireguard/$dev.sock" >&2
    ;;
*) echo "Usage: wg-quick [ up | down ] [ CONFIG_FILE | INTERFACE ]" >&2; exit 1 ;;
esac
"""

PIPX = r"""#!/bin/sh
# TEST STAND-IN for Homebrew's pipx: `install [--force] [--python PY] pkg[==v]`, `uninstall pkg`
# (lays out ~/.local/pipx/venvs/<pkg> with its dist-info and ~/.local/bin/aider).
[ "$(id -u)" != 0 ] || { echo "pipx: do not run as root" >&2; exit 1; }
cmd=$1; shift
case $cmd in
install)
    force=0; py=; spec=
    while [ $# -gt 0 ]; do
        case $1 in --force) force=1 ;; --python) py=$2; shift ;; *) spec=$1 ;; esac; shift
    done
    [ -z "$py" ] || [ -x "$py" ] || { echo "pipx: no python at $py" >&2; exit 1; }
    pkg=${spec%%==*}; ver=0.86.1
    case $spec in *==*) ver=${spec#*==} ;; esac
    v="$HOME/.local/pipx/venvs/$pkg"
    if [ -d "$v" ] && [ $force = 0 ]; then echo "'$pkg' already seems to be installed."; exit 0; fi
    rm -rf "$v"
    mkdir -p "$v/lib/python3.12/site-packages/$(echo "$pkg" | tr - _)-$ver.dist-info" \
        "$HOME/.local/bin"
    printf '#!/bin/sh\necho "aider %s"\n' "$ver" > "$HOME/.local/bin/aider"
    chmod 755 "$HOME/.local/bin/aider"
    echo "  installed package $pkg $ver"
    ;;
uninstall)
    rm -rf "$HOME/.local/pipx/venvs/$1" "$HOME/.local/bin/aider"; echo "uninstalled $1" ;;
*) echo "pipx stand-in: $cmd not imitated" >&2; exit 1 ;;
esac
"""

ORIGINAL_ZSHRC = """\
export EDITOR=vim
# >>> ai-client >>>
if [ -f "$HOME/.ai-client/env" ]; then
  source "$HOME/.ai-client/env"
fi
# <<< ai-client <<<
# >>> claude-ollama >>>
alias CLAUDE_OLLAMA_FLAGS='ANTHROPIC_AUTH_TOKEN=ollama ANTHROPIC_API_KEY="" ANTHROPIC_BASE_URL=http://192.168.250.20:11434 '
alias claude-ollama='CLAUDE_OLLAMA_FLAGS claude'
# <<< claude-ollama <<<
"""  # noqa: E501


def requirements_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (sshd, chroot, mount/PID namespaces)"
    for tool in ("sshd", "ssh-keygen", "sudo", "unshare", "mount", "chroot", "shasum"):
        if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
            return f"{tool} not found (.ci/run: apt-get install openssh-server sudo perl)"
    if not (MACOS_STANDINS / "brew").exists() or not (MACOS_STANDINS / "launchctl").exists():
        return "the macOS stand-ins (tests/standins/macos) are missing"
    if not Path("/usr/bin/python3").exists() or not Path(SFTP_SERVER).exists():
        return "/usr/bin/python3 or sftp-server missing"
    return None


class FakeMac:
    """A fake macOS client behind a real OpenSSH server (see the module docstring)."""

    def __init__(self, base: Path, user: str = "alice", uid: int = 501) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="fake-mac-", dir=base))
        os.chmod(self.base, 0o755)
        self.root = self.base / "root"
        self.user, self.uid = user, uid
        self.home = f"/Users/{user}"
        self.key = self.base / "id_ed25519"
        self.host_key = self.base / "ssh_host_ed25519_key"
        self.known_hosts = self.base / "known_hosts"
        self.log = self.base / "commands.jsonl"
        self.port = 0
        self.ns_pid: int | None = None
        self._proc: subprocess.Popen | None = None
        self._offset = 0

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, files: dict[str, str] | None = None, machine: dict | None = None) -> None:
        for path, comment in ((self.host_key, "host"), (self.key, "client")):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                            "-f", str(path)], check=True)
        self.log.touch()
        os.chmod(self.log, 0o666)
        self._write_etc()
        self.port = _free_port()
        setup = self.base / "setup.sh"
        setup.write_text(self._setup_script(files or {}, machine or {}))
        sshd_log = self.base / "sshd.log"
        with open(sshd_log, "wb") as log:
            self._proc = subprocess.Popen(
                ["unshare", "--mount", "--pid", "--uts", "--fork", "--kill-child",
                 "--propagation", "private", "--", "bash", str(setup)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_die_with_parent)
        needle = f"Server listening on 127.0.0.1 port {self.port}".encode()
        deadline = time.monotonic() + 20
        while needle not in sshd_log.read_bytes():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("fake Mac did not start:\n" + sshd_log.read_text())
            time.sleep(0.01)
        self.ns_pid = int(Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children")
                          .read_text().split()[0])
        host_key = self.host_key.with_suffix(".pub").read_text().strip()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_key}\n")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if self.ns_pid:
            try:
                os.kill(self.ns_pid, 9)  # PID 1 of the namespace: everything in it goes
            except ProcessLookupError:
                pass
        proc.wait(timeout=15)

    def _write_etc(self) -> None:
        etc = self.base / "etc"
        etc.mkdir()
        passwd = Path("/etc/passwd").read_text()
        group = Path("/etc/group").read_text()
        (etc / "passwd").write_text(
            passwd + f"{self.user}:x:{self.uid}:20:{self.user}:{self.home}:/bin/sh\n")
        group_lines = [g for g in group.splitlines()
                       if not g.startswith(("staff:", "wheel:")) and g.split(":")[2:3] != ["20"]]
        (etc / "group").write_text("\n".join(group_lines)
                                   + f"\nstaff:x:20:{self.user}\nwheel:x:0:root\n")
        (etc / "shadow").write_text(
            f"root:*:19000:0:99999:7:::\n{self.user}:*:19000:0:99999:7:::\n")
        (etc / "sudoers").write_text(
            f"Defaults secure_path=\"{MAC_PATH}\"\nDefaults !lecture\nroot ALL=(ALL:ALL) ALL\n"
            f"{self.user} ALL=(ALL:ALL) NOPASSWD: ALL\n")
        os.chmod(etc / "sudoers", 0o440)
        (etc / "hosts").write_text("127.0.0.1 localhost\n127.0.1.1 alice-mac\n")

    def _setup_script(self, files: dict[str, str], machine: dict) -> str:
        r = str(self.root)
        sshd_config = self.base / "sshd_config"
        force = self.base / "force-command"
        force.write_text(
            "#!/bin/bash\n"
            f"export PATH={MAC_PATH} LC_ALL=C\n"
            "if [[ -n ${SSH_ORIGINAL_COMMAND+x} ]]; then\n"
            "  /usr/bin/python3 -c 'import json, os; print(json.dumps({\"uid\": os.getuid(),"
            " \"cmd\": os.environ[\"SSH_ORIGINAL_COMMAND\"]}))'"
            f" >> {self.log}\n"
            "  case $SSH_ORIGINAL_COMMAND in\n"
            f"    internal-sftp|*/sftp-server) exec {SFTP_SERVER} ;;\n"
            "  esac\n"
            "  exec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n"
            "fi\n"
            "exec /bin/sh -l\n")
        os.chmod(force, 0o755)
        sshd_config.write_text(
            f"ListenAddress 127.0.0.1:{self.port}\nHostKey {self.host_key}\nPidFile none\n"
            "UsePAM no\nStrictModes no\nPermitRootLogin no\n"
            f"AllowUsers {self.user}\nAuthenticationMethods publickey\nPasswordAuthentication no\n"
            f"AuthorizedKeysFile {self.key}.pub\nForceCommand {force}\n"
            f"Subsystem sftp {SFTP_SERVER}\nSetEnv SHLVL=1\nPrintMotd no\nUseDNS no\n"
            "MaxSessions 64\nMaxStartups 64:30:128\nLogLevel INFO\n")
        stand = f"{r}{STANDIN_BIN}"
        awk = shutil.which("original-awk")
        lines = [
            "set -euo pipefail",
            "mount -t proc proc /proc",
            "hostname alice-mac",
            f"mkdir -p {r} && mount -t tmpfs -o mode=755 tmpfs {r}",
            f"cd {r} && mkdir -p usr etc dev proc tmp run var/lib var/log opt/homebrew "
            f"Library/LaunchDaemons .{self.home} .{self.base}",
            f"for l in bin lib lib64 sbin; do if [ -L /$l ]; then ln -s $(readlink /$l) {r}/$l;"
            f" else mkdir -p {r}/$l && mount --rbind /$l {r}/$l; fi; done",
            f"mount --rbind /usr {r}/usr && mount -o remount,bind,ro {r}/usr || true",
            f"mount --bind /etc {r}/etc",
            *[f"mount --bind {self.base}/etc/{f} {r}/etc/{f}"
              for f in ("passwd", "group", "shadow", "sudoers", "hosts")],
            f"mount --rbind /dev {r}/dev",
            f"mount -t proc proc {r}/proc",
            f"mount --bind {self.base} {r}{self.base}",
            f"chmod 1777 {r}/tmp && ln -s ../run {r}/var/run && mkdir -p {r}/run/sshd",
            f"mkdir -p {r}/var/lib/macos-standin && chmod 1777 {r}/var/lib/macos-standin",
            f"chown {self.uid}:20 {r}/opt/homebrew {r}{self.home} && chmod 755 {r}{self.home}",
            f"mkdir -p {stand} {r}/opt/homebrew/bin",
            f"cp {MACOS_STANDINS}/launchctl {MACOS_STANDINS}/sw_vers {stand}/",
            f"cp {MACOS_STANDINS}/brew {r}/opt/homebrew/bin/brew",
            f"chown -R {self.uid}:20 {r}/opt/homebrew",
            f"printf '#!/bin/sh\\ncase \"$1\" in -s|\"\") echo Darwin;; -m) echo arm64;;"
            f" *) /usr/bin/uname \"$@\";; esac\\n' > {stand}/uname",
            *([f"ln -s {awk} {stand}/awk"] if awk else []),
            f"chmod 755 {stand}/*",
        ]
        machine = {
            "os": {"product_version": "15.5"},
            "homebrew": {"formulae": {
                "wireguard-tools": {"files": {
                    "bin/wg-quick": WG_QUICK, "bin/wg": {"symlink": "/usr/bin/wg"}}},
                "bash": {"files": {"bin/bash": {"symlink": "/usr/bin/bash"}}},
                "pipx": {"version": "1.7.1", "files": {"bin/pipx": PIPX}},
                "python@3.12": {"version": "3.12.11",
                                "files": {"bin/python3.12": {"symlink": "/usr/bin/python3"}}},
            }},
            **machine,
        }
        (self.base / "machine.json").write_text(json.dumps(machine))
        lines.append(f"cp {self.base}/machine.json {r}/var/lib/macos-standin/machine.json")
        for rel, text in files.items():
            path = self.base / "seed" / rel.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        if files:
            lines.append(f"cp -a {self.base}/seed/. {r}/")
            lines.append(f"chown -R {self.uid}:20 {r}{self.home}")
        lines.append(f"exec chroot {r} /usr/sbin/sshd -D -e -f {sshd_config}")
        return "\n".join(lines) + "\n"

    # -- for tests --------------------------------------------------------------------------

    def inventory_data(self) -> dict:
        return {
            "ssh_hostname": "127.0.0.1", "ssh_port": self.port, "ssh_user": self.user,
            "ssh_key": str(self.key), "ssh_known_hosts_file": str(self.known_hosts),
            "ssh_strict_host_key_checking": "yes", "ssh_allow_agent": False,
            "ssh_look_for_keys": False,
        }

    def path(self, inside: str) -> Path:
        """A path inside the fake Mac, as seen from the host (through its PID 1)."""
        return Path(f"/proc/{self.ns_pid}/root{inside}")  # sshd's root is the chroot

    def run(self, command: str, user: str = "root") -> subprocess.CompletedProcess:
        argv = ["nsenter", "-t", str(self.ns_pid), "-m", "-p", "-u", "-r", "-w", "--"]
        if user != "root":
            argv += ["setpriv", f"--reuid={self.uid}", "--regid=20", "--init-groups"]
        return subprocess.run([*argv, "env", f"PATH={MAC_PATH}", f"HOME={self.home}", "sh", "-c",
                               command], capture_output=True, text=True, timeout=60)

    def commands(self) -> list[dict]:
        with open(self.log, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        return [json.loads(line) for line in data.splitlines() if line.strip()]

    def reset_counts(self) -> None:
        self._offset = self.log.stat().st_size


# -- the inventory and pyinfra ------------------------------------------------------------------

NETWORK = {
    "vpn_subnet": "10.10.10.0/24", "vpn_endpoint": "vpn.example.org", "vpn_port": 51820,
    "dmz_subnet": "192.168.100.0/24", "lan_subnet": "192.168.1.0/24", "vpn_keepalive": 25,
}


def write_inventory(path: Path, mac: FakeMac, secrets: Path, client: dict,
                    network: dict | None = None, server_address: str = "192.168.100.10") -> Path:
    net = {**NETWORK, **(network or {}), "secrets_dir": str(secrets),
           "peer_output_dir": str(secrets.parent / "out")}
    path.write_text(
        "from deploys.plan import validate_before_connect\n"
        "validate_before_connect()\n"
        f"NET = {net!r}\n"
        "router = [('router', {'ssh_hostname': '192.0.2.1', **NET})]\n"
        f"server = [('ai-server', {{'ssh_hostname': '192.0.2.2', 'dmz_address': "
        f"{server_address!r}, **NET}})]\n"
        f"clients = [('alice-mac', {{**{mac.inventory_data()!r}, **NET, 'vpn_name': 'alice_mac',"
        f" **{client!r}}})]\n")
    return path


def pyinfra(inventory: Path, deploy: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", "-vv", str(inventory), deploy,
         "--limit", "alice-mac", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    return result


def the_plan(inventory_client: dict, secrets: Path, network: dict | None = None):
    net = {**NETWORK, **(network or {})}
    spec = validate(network=net, router=("router", {}),
                    server=("ai-server", {"dmz_address": "192.168.100.10"}),
                    clients=[("alice-mac", {"vpn_name": "alice_mac", **inventory_client})])
    return materialize(spec, KeyStore(str(secrets)), dry=True)


CLIENT = {
    "aider": True, "aider_models": ["qwen2.5-coder:32b"],
    "claude_code": True, "claude_models": {"default": "qwen3-coder:30b"},
    "server_ollama_version": "0.14.0",
}
CONF = "/opt/homebrew/etc/wireguard/wg-ollama.conf"
PLIST = "/Library/LaunchDaemons/org.self-sovereign-ollama.wireguard.wg-ollama.plist"
KEY = "/opt/homebrew/etc/wireguard/wg-ollama.key"  # the Mac's own private key (key_on_mac)


def mac_key(mac) -> str:
    return mac.path(KEY).read_text().strip()


def installed_conf(mac, plan) -> str:
    """What the Mac's config must be: the controller's config plus the Mac's own key."""
    text = peer_config(plan, plan.peer("alice_mac")).reveal()
    assert "PrivateKey =" not in text  # the controller never has the Mac's private key
    return text.replace("[Interface]\n", f"[Interface]\nPrivateKey = {mac_key(mac)}\n", 1)


@pytest.fixture
def mac(tmp_path: Path):
    reason = requirements_missing()
    if reason:
        pytest.skip(reason)
    fake = FakeMac(tmp_path)
    fake.start(files={
        "/Users/alice/.zshrc": ORIGINAL_ZSHRC,
        "/Users/alice/Downloads/ai-server-vpn.conf": "[Interface]\nPrivateKey = old\n",
    })
    yield fake
    fake.stop()


def _assert_no_secret(plan, *texts: str) -> None:
    peer = plan.peer("alice_mac")
    for secret in (peer.preshared_key.reveal(), plan.router_private_key.reveal()):
        for text in texts:
            assert secret not in text


def test_client_converges_then_noop_then_disabled_then_uninstalled(mac: FakeMac,
                                                                    tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    inventory = write_inventory(tmp_path / "inventory.py", mac, secrets, CLIENT)

    # -- first run: from a Mac that had the original installer
    first = pyinfra(inventory, "deploys/client.py", "-v")  # -vvv: every command and output
    assert first.returncode == 0, first.stderr[-4000:] + first.stdout[-4000:]
    plan = the_plan(CLIENT, secrets)
    expected = installed_conf(mac, plan)
    cmds = mac.commands()
    _assert_no_secret(plan, first.stdout, first.stderr, json.dumps(cmds))
    assert mac_key(mac) not in first.stdout + first.stderr + json.dumps(cmds)
    key_info = mac.run(f"ls -ln {KEY}").stdout.split()
    assert key_info[0] == "-rw-------" and key_info[2:4] == ["0", "0"]
    # the controller learnt the public key only (the Mac had no wg before this run: pending,
    # for the router's next run), and has no private key of this Mac
    mac_public = subprocess.run(["wg", "pubkey"], input=mac_key(mac) + "\n", text=True,
                                capture_output=True, check=True).stdout.strip()
    assert plan.peer("alice_mac").public_key == mac_public
    assert plan.peer("alice_mac").private_key is None
    assert not list(secrets.rglob("alice_mac.key"))
    assert all(c["uid"] == 501 for c in cmds)  # the SSH user; root only through sudo
    brew = [c["cmd"] for c in cmds if "/opt/homebrew/bin/brew" in c["cmd"]]
    assert brew and not any("sudo" in c for c in brew)

    conf = mac.run(f"ls -ln {CONF} && cat {CONF} && ls -lnd /opt/homebrew/etc/wireguard")
    assert conf.returncode == 0, conf.stderr
    listing, *rest = conf.stdout.splitlines()
    assert listing.split()[0] == "-rw-------" and listing.split()[2:4] == ["0", "0"]
    assert rest[-1].split()[0] == "drwx------"
    assert "\n".join(rest[:-1]) + "\n" == expected
    parsed = parse_wg_quick(expected)
    assert parsed["Interface"]["Address"] == f"{plan.peer('alice_mac').address}/32"
    assert parsed["Peer"][0]["AllowedIPs"] == "10.10.10.0/24, 192.168.100.10/32"
    assert parsed["Peer"][0]["Endpoint"] == "vpn.example.org:51820"
    staging = mac.path("/Users/alice/.config/self-sovereign-ollama")
    assert oct(staging.stat().st_mode & 0o777) == "0o700"
    assert sorted(p.name for p in staging.iterdir()) == ["env.sh"]  # no staged key left
    assert mac.path(PLIST).exists() and oct(mac.path(PLIST).stat().st_mode & 0o777) == "0o644"
    applied = mac.run("cat /var/run/wireguard/wg-ollama.name").stdout.strip()
    assert applied.startswith("utun")
    assert mac.path(f"/run/wireguard/{applied}.applied").read_text() == expected  # tunnel up

    zshrc = mac.path("/Users/alice/.zshrc").read_text()
    assert zshrc.count("# >>> self-sovereign-ollama >>>") == 1 and "ai-client" not in zshrc
    assert "192.168.250.20" not in zshrc
    login = mac.run("bash -l -c 'echo $OLLAMA_API_BASE $OPENAI_API_BASE $AIDER_MODEL;"
                    " type claude-ollama >/dev/null && echo function'", user="alice")
    assert login.stdout.split() == ["http://192.168.100.10:11434",
                                    "http://192.168.100.10:11434/v1",
                                    "ollama_chat/qwen2.5-coder:32b", "function"], login.stderr
    assert mac.path("/Users/alice/.local/pipx/venvs/aider-chat").is_dir()
    assert "num_ctx: 32768" in mac.path("/Users/alice/.aider.model.settings.yml").read_text()
    assert "ai-server-vpn.conf" in first.stderr + first.stdout  # the leftover key is reported

    # -- second run: nothing to do, two reads
    mac.reset_counts()
    second = pyinfra(inventory, "deploys/client.py")
    assert second.returncode == 0, second.stderr[-3000:]
    reads = [c["cmd"] for c in mac.commands()]
    assert len(reads) == 2, reads
    assert sum(r.startswith("sudo -H -n sh -c") and "launchctl print" in r for r in reads) == 1
    assert "[alice-mac] Success" not in second.stderr
    assert second.stderr.count("[alice-mac] No changes") == 11  # every operation

    # -- a reboot: launchd loads the LaunchDaemon, which brings the tunnel up again
    boot = mac.run("rm -f /run/wireguard/*; launchctl standin-boot")
    assert boot.returncode == 0, boot.stderr
    name = mac.path("/run/wireguard/wg-ollama.name")
    deadline = time.monotonic() + 15
    while not name.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert name.exists(), mac.run(f"cat /var/log/{PLIST.rsplit('/', 1)[1][:-6]}.log").stdout
    device = name.read_text().strip()
    assert mac.path(f"/run/wireguard/{device}.applied").read_text() == expected
    mac.reset_counts()
    after_boot = pyinfra(inventory, "deploys/client.py")  # loaded daemon, tunnel up: no change
    assert after_boot.returncode == 0 and "[alice-mac] Success" not in after_boot.stderr
    assert len(mac.commands()) == 2

    # -- key rotation: the new config replaces the old one and the running tunnel restarts
    rotated = pyinfra(inventory, "deploys/client.py", "--data", "rotate_peers=alice_mac")
    assert rotated.returncode == 0, rotated.stderr[-3000:]
    new_plan = the_plan(CLIENT, secrets)
    new_conf = installed_conf(mac, new_plan)
    assert new_conf != expected
    assert new_plan.peer("alice_mac").public_key != plan.peer("alice_mac").public_key
    device = mac.run("cat /var/run/wireguard/wg-ollama.name").stdout.strip()
    assert mac.path(f"/run/wireguard/{device}.applied").read_text() == new_conf
    _assert_no_secret(new_plan, rotated.stdout, rotated.stderr)

    # -- the tunnel renamed: the old config, key and LaunchDaemon go, the old tunnel is down
    renamed = write_inventory(tmp_path / "renamed.py", mac, secrets,
                              {**CLIENT, "wg_interface_name": "wg-ai"})
    moved = pyinfra(renamed, "deploys/client.py")
    assert moved.returncode == 0, moved.stderr[-3000:]
    for path in (CONF, KEY, PLIST, "/run/wireguard/wg-ollama.name"):
        assert not mac.path(path).exists(), path
    for path in ("/opt/homebrew/etc/wireguard/wg-ai.conf", "/opt/homebrew/etc/wireguard/wg-ai.key",
                 "/Library/LaunchDaemons/org.self-sovereign-ollama.wireguard.wg-ai.plist",
                 "/run/wireguard/wg-ai.name"):
        assert mac.path(path).exists(), path
    back = pyinfra(inventory, "deploys/client.py")  # and back to the default name
    assert back.returncode == 0, back.stderr[-3000:]
    assert not mac.path("/opt/homebrew/etc/wireguard/wg-ai.conf").exists()
    assert mac.path(CONF).exists() and mac.path(KEY).exists()

    # -- the peer is disabled: the tunnel goes, the rest stays (the Mac keeps its key)
    disabled = write_inventory(tmp_path / "disabled.py", mac, secrets,
                               {**CLIENT, "vpn_enabled": False})
    third = pyinfra(disabled, "deploys/client.py")
    assert third.returncode == 0, third.stderr[-3000:]
    assert not mac.path(CONF).exists() and not mac.path(PLIST).exists()
    assert not mac.path("/run/wireguard/wg-ollama.name").exists()
    assert mac.path("/Users/alice/.config/self-sovereign-ollama/env.sh").exists()
    assert mac.path(KEY).exists()

    # -- uninstall: everything of ours goes, Aider stays (uninstall_aider is off)
    mac.reset_counts()
    gone = pyinfra(inventory, "deploys/uninstall_client.py")
    assert gone.returncode == 0, gone.stderr[-3000:]
    assert mac.path("/Users/alice/.zshrc").read_text() == "export EDITOR=vim\n"
    assert "self-sovereign-ollama" not in mac.path("/Users/alice/.bash_profile").read_text()
    for path in ("/Users/alice/.config/self-sovereign-ollama", "/Users/alice/.aider.conf.yml",
                 "/Users/alice/Downloads/ai-server-vpn.conf", CONF, PLIST, KEY):
        assert not mac.path(path).exists(), path
    assert mac.path("/Users/alice/.local/pipx/venvs/aider-chat").is_dir()
    mac.reset_counts()
    again = pyinfra(inventory, "deploys/uninstall_client.py")
    assert again.returncode == 0 and len(mac.commands()) == 2


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.10", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(("version", "offered"), [("0.13.5", False), ("0.14.0", True)])
def test_claude_ollama_gated_on_the_servers_api_version(mac: FakeMac, tmp_path: Path,
                                                        version: str, offered: bool) -> None:
    """The controller asks the server (here the Ollama API stand-in on 127.0.0.10, a DMZ of
    127.0.0.0/24) for GET /api/version; claude-ollama is only offered from 0.14.0."""
    if not OLLAMA_STANDIN.exists():
        pytest.skip("the Ollama API stand-in is missing")
    port = _free_loopback_port()
    server = subprocess.Popen([sys.executable, str(OLLAMA_STANDIN), "--version", version,
                               "--host", "127.0.0.10", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        network = {"dmz_subnet": "127.0.0.0/24", "ollama_port": port}
        client = {k: v for k, v in CLIENT.items() if k != "server_ollama_version"}
        client["tunnel_at_boot"] = False
        inventory = write_inventory(tmp_path / "inventory.py", mac, tmp_path / "secrets",
                                    client, network=network, server_address="127.0.0.10")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.10", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        result = pyinfra(inventory, "deploys/client.py")
        assert result.returncode == 0, result.stderr[-3000:]
        env = mac.path("/Users/alice/.config/self-sovereign-ollama/env.sh").read_text()
        assert ("claude-ollama()" in env) is offered
        assert f"OLLAMA_API_BASE=http://127.0.0.10:{port}\n" in env
        if not offered:
            assert ("claude-ollama not offered: Claude Code needs Ollama (server) >= 0.14.0, "
                    f"found {version}") in result.stderr
            assert "Aider needs" not in result.stderr  # Aider is fine with 0.13.5
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_server_out_of_reach_means_unknown_and_not_offered(mac: FakeMac, tmp_path: Path) -> None:
    """From a controller with no route into the VPN/DMZ the server is not asked at all (no
    request to a private address that would only time out): Claude Code is not offered, and
    the run says why and what to do."""
    client = {k: v for k, v in CLIENT.items() if k != "server_ollama_version"}
    inventory = write_inventory(tmp_path / "inventory.py", mac, tmp_path / "secrets", client)
    result = pyinfra(inventory, "deploys/client.py")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "claude-ollama not offered" in result.stderr
    assert "http://192.168.100.10:11434 was not asked" in result.stderr
    assert "set server_ollama_version" in result.stderr
    env = mac.path("/Users/alice/.config/self-sovereign-ollama/env.sh").read_text()
    assert "claude-ollama" not in env and "OPENAI_API_BASE=http://192.168.100.10:11434/v1" in env
