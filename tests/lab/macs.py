"""The lab's fake Macs: the DMZ server and the VPN clients as macOS hosts over real OpenSSH
(TEST ONLY).

The approach of the roles' own end-to-end tests (``tests/test_client_ssh.py``: a chrooted
``sshd`` in private mount/PID/UTS namespaces, a non-root user with the real ``sudo``; and
``tests/test_server_ssh.py``: ``brew`` at ``/opt/homebrew``, Ollama served by the Ollama API
stand-in through the brew stand-in's ``ollama_serve``), in the lab host's network namespace:

* root file system: a tmpfs per host (``<host dir>/root``) with the Linux ``/usr`` (read-only),
  ``/bin``, ``/lib*``, ``/etc`` and ``/dev`` bound in; private ``/tmp``, ``/var``, ``/run``,
  ``/opt/homebrew`` (owned by the user, the brew stand-in as ``bin/brew``), ``/Library``,
  ``/Users/<user>`` (HOME). Nothing of a host is visible to another or to the Linux host.
* the login user (``admin`` on the server, ``alice``/``bob`` on the clients, uid 501, gid 20
  ``staff``) exists only in that root (``passwd``/``group``/``shadow``/``sudoers`` bound over
  ``/etc``'s): no account is added to the Linux host, so there is nothing to remove at
  ``down`` even after a crash, and concurrent labs never collide. ``sudo`` is NOPASSWD with
  ``secure_path`` = the Mac's ``PATH``.
* ``PATH``: ``/opt/macos-standins`` (copies of ``tests/standins/macos``, a ``uname`` saying
  Darwin/arm64, macOS' one-true-awk when installed) first, then ``/opt/homebrew/bin``.
  ``MACOS_STANDIN_STATE=/var/lib/macos-standin`` (private per host) holds ``machine.json``.
* network: ``sshd`` runs in the host's network namespace (so do the user's commands, ``sudo``
  and the launchd jobs); the controller reaches it through ``forward.py`` on its own
  127.0.0.1 (``SSH_CONNECTION`` shows loopback, never the Mac's Ethernet address).
* the server's Ethernet (``en0``) maps to the namespace's ``eth0``
  (``MACOS_STANDIN_REAL_NET=1``): ``networksetup -setmanual`` REALLY sets the address. Its
  initial state is a DHCP lease from the router's pool (``DHCP_LEASE``, put on ``eth0`` at
  ``up``), like a Mac fresh out of the box on the DMZ cable: the server role must replace it
  by the static 192.168.100.10.
* every command is logged like :class:`~tests.lab.hosts.NamespaceHost`'s (counted execs).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from tests.harness.openwrt_host import _JSON_ESCAPE_BASH, _cfg_path, _die_with_parent, _tool
from tests.lab.hosts import HOST_PATH, NamespaceHost, _child_of, sftp_server
from tests.test_client_ssh import PIPX

REPO = Path(__file__).resolve().parents[2]
MACOS_STANDINS = REPO / "tests" / "standins" / "macos"
OLLAMA_STANDIN = REPO / "tests" / "standins" / "ollama_api.py"
STANDIN_BIN = "/opt/macos-standins"
MAC_PATH = f"{STANDIN_BIN}:/opt/homebrew/bin:/usr/bin:/bin:/usr/sbin:/sbin"
STATE_DIR = "/var/lib/macos-standin"
OLLAMA_STATE = "/var/lib/ollama-standin"
UID, GID = 501, 20
USERS = {"server": "admin", "client1": "alice", "client2": "bob"}
#: the server's address before the server role runs: a lease from the router's DMZ pool
DHCP_LEASE = {"ip": "192.168.100.120", "mask": "255.255.255.0", "router": "192.168.100.1"}
#: Homebrew's wg-quick in the lab's fake Macs: the checks and messages of
#: ``tests.test_client_ssh.WG_QUICK`` (copied), but ``up`` REALLY brings the tunnel up in the
#: Mac's network namespace: ``wireguard-go utunN`` (its UAPI socket in the Mac's private
#: ``/var/run/wireguard``), ``wg setconf`` with wg-quick's own keys stripped, the Address, link
#: up, a route per AllowedIPs; ``down`` deletes the interface. ``strip`` prints the wg(8) config.
WG_QUICK = r"""#!/usr/bin/env bash
# TEST STAND-IN for Homebrew's wg-quick (darwin.bash) in the lab: a real tunnel, Linux tools.
if (( BASH_VERSINFO[0] < 4 )); then
    echo "wg-quick: Version mismatch: bash ${BASH_VERSINFO[0]} detected, when bash 4+ required" >&2
    exit 1
fi
[[ $UID == 0 ]] || { echo "wg-quick must be run as root" >&2; exit 1; }
export PATH="$PATH:/usr/bin:/bin:/usr/sbin:/sbin"
cmd=$1 conf=$2
[[ $conf == */* ]] || conf=/opt/homebrew/etc/wireguard/$conf.conf
iface=${conf##*/}; iface=${iface%.conf}
[[ -e $conf ]] || { echo "wg-quick: \`$conf' does not exist" >&2; exit 1; }
if [[ $cmd != strip && ( $(stat -c '%a' "$conf") != ?00 ||
      $(stat -c '%a' "${conf%/*}") != ?00 ) ]]; then
    echo "Warning: \`$conf' is world accessible" >&2
fi
name=/var/run/wireguard/$iface.name
strip_conf() {  # the config without comments and wg-quick's own keys: what wg(8) takes
    local line key
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%%#*}
        key=${line%%=*}; key=${key//[[:space:]]/}; key=${key,,}
        case $key in
            address|dns|mtu|table|preup|postup|predown|postdown|saveconfig) continue ;;
        esac
        [[ -n ${line//[[:space:]]/} ]] && printf '%s\n' "$line"
    done < "$conf"
}
values() {  # the comma-separated values of key $1, one per line
    local line key
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%%#*}
        key=${line%%=*}; key=${key//[[:space:]]/}
        [[ ${key,,} == "${1,,}" ]] || continue
        line=${line#*=}; line=${line//[[:space:]]/}
        tr ',' '\n' <<< "$line"
    done < "$conf"
}
run() { echo "[#] $*" >&2; "$@"; }
case $cmd in
up)
    if [[ -f $name ]]; then
        echo "wg-quick: \`$iface' already exists as \`$(cat "$name")'" >&2; exit 1
    fi
    mkdir -p /var/run/wireguard
    n=3
    while [[ -e /var/run/wireguard/utun$n.sock ]] || ip link show "utun$n" >/dev/null 2>&1; do
        n=$((n + 1))
    done
    dev=utun$n
    echo "[#] wireguard-go utun" >&2
    wireguard-go "$dev" || { echo "wg-quick: wireguard-go failed" >&2; exit 1; }
    echo "[+] Interface for $iface is $dev" >&2
    fail() { ip link del "$dev" 2>/dev/null; rm -f "/var/run/wireguard/$dev.sock" "$name"; exit 1; }
    run wg setconf "$dev" <(strip_conf) || fail
    for a in $(values Address); do run ip address add "$a" dev "$dev" || fail; done
    run ip link set "$dev" up || fail
    for r in $(values AllowedIPs); do run ip route replace "$r" dev "$dev" || fail; done
    # the signal last, atomically: whoever sees `.name` sees a tunnel that is up
    echo "$dev" > "$name.tmp" && mv "$name.tmp" "$name" || fail
    ;;
down)
    [[ -f $name ]] || { echo "wg-quick: \`$iface' is not a WireGuard interface" >&2; exit 1; }
    dev=$(cat "$name")
    ip link del "$dev" 2>/dev/null
    rm -f "/var/run/wireguard/$dev.sock" "$name"
    echo "[#] rm -f /var/run/wireguard/$dev.sock" >&2
    ;;
strip) strip_conf ;;
*) echo "Usage: wg-quick [ up | down | strip ] [ CONFIG_FILE | INTERFACE ]" >&2; exit 1 ;;
esac
"""
STANDINS = ("sw_vers", "sysctl", "system_profiler", "networksetup", "ipconfig", "scutil",
            "pmset", "launchctl")


def _q(value: object) -> str:
    return shlex.quote(str(value))


def machine(role: str) -> dict:
    """``machine.json`` of a lab Mac."""
    formulae: dict = {
        "ollama": {"version": "0.32.15", "files": {"bin/ollama": {"ollama_serve": [
            "/usr/bin/python3", f"{STANDIN_BIN}/ollama_api.py", "--state-dir", OLLAMA_STATE,
            "--pull-delay", "0.002"]}}},
    }
    if role != "server":
        formulae.update({
            "wireguard-tools": {"files": {"bin/wg-quick": WG_QUICK,
                                          "bin/wg": {"symlink": "/usr/bin/wg"}}},
            "wireguard-go": {"files": {"bin/wireguard-go": {"symlink": "/usr/bin/wireguard-go"}}},
            "bash": {"files": {"bin/bash": {"symlink": "/usr/bin/bash"}}},
            "pipx": {"version": "1.7.1", "files": {"bin/pipx": PIPX}},
            "python@3.12": {"version": "3.12.11",
                            "files": {"bin/python3.12": {"symlink": "/usr/bin/python3"}}},
        })
    ethernet = {"name": "Ethernet", "hardware_port": "Ethernet", "device": "en0",
                "ethernet_address": "14:dd:a9:e8:33:81"}
    if role == "server":
        ethernet.update(linux_ifname="eth0", dhcp_lease=dict(DHCP_LEASE))
        hardware = {"arch": "arm64", "memsize": 64 * 2**30, "model": "Mac16,11",
                    "chip": "Apple M4 Pro"}
    else:
        hardware = {"arch": "arm64", "memsize": 16 * 2**30, "model": "Mac15,12",
                    "model_name": "MacBook Air", "chip": "Apple M3", "laptop": True}
    return {
        "os": {"product_version": "15.5", "build_version": "24F74"},
        "hardware": hardware,
        "hostname": f"lab-{role}",
        "network": {"services": [
            ethernet,
            {"name": "Wi-Fi", "hardware_port": "Wi-Fi", "device": "en1",
             "ethernet_address": "3c:22:fb:ef:dd:1d"},
        ]},
        "homebrew": {"formulae": formulae},
    }


class MacHost(NamespaceHost):
    """A lab host as a fake Mac (see the module docstring)."""

    def __init__(self, base, name, netns, *, path_prepend=(), env=None) -> None:
        super().__init__(base, name, netns, path_prepend=path_prepend, env=env)
        self.user = USERS.get(name, "admin")
        self.mac_home = f"/Users/{self.user}"
        self.root = self.base / "root"
        self.real_net = name == "server"

    # -- build -----------------------------------------------------------------------------

    def _write_etc(self) -> None:
        etc = self.base / "etc"
        etc.mkdir(exist_ok=True)
        passwd = [line for line in Path("/etc/passwd").read_text().splitlines()
                  if line.split(":")[2:3] != [str(UID)]]
        (etc / "passwd").write_text("\n".join(passwd) + f"\n{self.user}:x:{UID}:{GID}:"
                                    f"{self.user}:{self.mac_home}:/bin/sh\n")
        groups = [g for g in Path("/etc/group").read_text().splitlines()
                  if not g.startswith(("staff:", "wheel:")) and g.split(":")[2:3] != [str(GID)]]
        (etc / "group").write_text("\n".join(groups)
                                   + f"\nstaff:x:{GID}:{self.user}\nwheel:x:0:root\n")
        (etc / "shadow").write_text(
            f"root:*:19000:0:99999:7:::\n{self.user}:*:19000:0:99999:7:::\n")
        os.chmod(etc / "shadow", 0o640)
        keep = "MACOS_STANDIN_STATE MACOS_STANDIN_REAL_NET"
        (etc / "sudoers").write_text(
            f"Defaults secure_path=\"{MAC_PATH}\"\nDefaults !lecture\n"
            f"Defaults env_keep += \"{keep}\"\nroot ALL=(ALL:ALL) ALL\n"
            f"{self.user} ALL=(ALL:ALL) NOPASSWD: ALL\n")
        os.chmod(etc / "sudoers", 0o440)
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 lab-{self.name}\n")
        (self.base / "machine.json").write_text(json.dumps(machine(self.name), indent=1))

    def _write_scripts(self) -> None:
        os.chmod(self.base, 0o755)  # bound into the Mac: the user reads its scripts and keys
        self._write_etc()
        bindir = self.base / "bin"
        bindir.mkdir(exist_ok=True)
        os.chmod(bindir, 0o755)
        shutil.copy2(self.key_path.with_suffix(".pub"), self.base / "authorized_keys")
        os.chmod(self.base / "authorized_keys", 0o644)
        self.commands_log.touch()
        os.chmod(self.commands_log, 0o666)
        env = {"PATH": ":".join([*self.path_prepend, MAC_PATH]), "HOME": self.mac_home,
               "USER": self.user, "LOGNAME": self.user, "SHELL": "/bin/sh",
               "LC_ALL": "C.UTF-8", "MACOS_STANDIN_STATE": STATE_DIR,
               "MACOS_STANDIN_REAL_NET": "1" if self.real_net else "0", **self.env}
        words = " ".join(_q(f"{k}={v}") for k, v in env.items())
        sftp = sftp_server() or "/usr/lib/openssh/sftp-server"
        self._force_command = bindir / "force-command"
        self._force_command.write_text(
            "#!/bin/bash\n"
            f"# sshd ForceCommand of lab Mac {self.name}: log the command, run it as the user\n"
            "export LC_ALL=C\n"
            + _JSON_ESCAPE_BASH
            + "if [[ -n ${SSH_ORIGINAL_COMMAND+x} ]]; then\n"
            "\tline=\"{\\\"t\\\": $EPOCHREALTIME, \\\"uid\\\": $(id -u), \\\"cmd\\\": "
            "$(json_string \"$SSH_ORIGINAL_COMMAND\")}\"\n"
            f"\t{{ flock 9; printf '%s\\n' \"$line\" >&9; }} 9>>{_q(self.commands_log)}\n"
            "fi\n"
            f"cd {_q(self.mac_home)}\n"
            "case ${SSH_ORIGINAL_COMMAND-} in\n"
            f"\tinternal-sftp|*/sftp-server) exec {_q(sftp)} ;;\n"
            "esac\n"
            "if [[ -n ${SSH_ORIGINAL_COMMAND+x} ]]; then set -- -c \"$SSH_ORIGINAL_COMMAND\";"
            " else set -- -l; fi\n"
            f"exec env -i {words}"
            ' ${SSH_CLIENT:+"SSH_CLIENT=$SSH_CLIENT"}'
            ' ${SSH_CONNECTION:+"SSH_CONNECTION=$SSH_CONNECTION"} /bin/sh "$@"\n')
        r = str(self.root)
        awk = shutil.which("original-awk", path=HOST_PATH)
        uname = ("#!/bin/sh\ncase \"$1\" in -s|\"\") echo Darwin;; -m) echo arm64;;"
                 " *) /usr/bin/uname \"$@\";; esac\n")
        (self.base / "uname").write_text(uname)
        etc = self.base / "etc"
        lines = [
            "#!/bin/bash",
            f"# PID 1 of lab Mac {self.name}'s private mount/PID/UTS namespaces; ends as sshd",
            "set -euo pipefail",
            f"export PATH={HOST_PATH}",
            "mount -t proc proc /proc",
            f"hostname lab-{self.name}",
            f"mkdir -p {r} && mount -t tmpfs -o mode=755 tmpfs {r}",
            f"cd {r} && mkdir -p usr etc dev proc sys tmp run var/lib var/log var/tmp "
            f"opt/homebrew/bin {STANDIN_BIN.lstrip('/')} Library/LaunchDaemons "
            f"Library/LaunchAgents Library/Preferences .{self.mac_home} .{self.base}",
            f"for l in bin lib lib32 lib64 libx32 sbin; do if [ -L /$l ]; then "
            f"ln -s $(readlink /$l) {r}/$l; elif [ -d /$l ]; then mkdir -p {r}/$l && "
            f"mount --rbind /$l {r}/$l; fi; done",
            f"mount --rbind /usr {r}/usr && mount -o remount,bind,ro {r}/usr || true",
            f"mount --bind /etc {r}/etc",
            *[f"mount --bind {etc / f} {r}/etc/{f}"
              for f in ("passwd", "group", "shadow", "sudoers", "hosts")],
            f"mount --rbind /dev {r}/dev",
            f"mount -t proc proc {r}/proc",
            f"mount --bind {self.base} {r}{self.base}",
            f"chmod 1777 {r}/tmp {r}/var/tmp && ln -s ../run {r}/var/run && mkdir -p {r}/run/sshd",
            f"mkdir -p {r}{STATE_DIR} {r}{OLLAMA_STATE} && chmod 1777 {r}{STATE_DIR}",
            f"cp {self.base / 'machine.json'} {r}{STATE_DIR}/machine.json",
            f"chmod 666 {r}{STATE_DIR}/machine.json",
            *[f"cp {MACOS_STANDINS / s} {r}{STANDIN_BIN}/{s}" for s in STANDINS],
            f"cp {OLLAMA_STANDIN} {r}{STANDIN_BIN}/ollama_api.py",
            f"cp {self.base / 'uname'} {r}{STANDIN_BIN}/uname",
            *([f"ln -s {awk} {r}{STANDIN_BIN}/awk"] if awk and self.name != "server" else []),
            f"chmod 755 {r}{STANDIN_BIN}/*",
            f"cp {MACOS_STANDINS / 'brew'} {r}/opt/homebrew/bin/brew",
            f"chown -R {UID}:{GID} {r}/opt/homebrew {r}{self.mac_home} {r}{OLLAMA_STATE}",
            f"chmod 755 {r}{self.mac_home}",
            # the controller's side of the SSH port, then sshd in the host's network namespace
            f"rm -f {self.base / 'forward.ready'}",
            f"/usr/bin/python3 {REPO / 'tests' / 'lab' / 'forward.py'} {self.port} "
            f"{_q(self.netns)} {self.base / 'forward.ready'} &",
            "fwd=$!",
            f"while [ ! -e {self.base / 'forward.ready'} ]; do kill -0 $fwd 2>/dev/null || "
            "exit 1; sleep 0.01; done",
            f"exec {_tool('nsenter')} --net={_q(self.netns)} chroot {r} "
            f"{_tool('sshd')} -D -e -f {self.sshd_config_path}",
        ]
        setup = bindir / "setup-namespace"
        setup.write_text("\n".join(lines) + "\n")
        for script in (setup, self._force_command):
            os.chmod(script, 0o755)
        self._setup_script = setup

    def _write_sshd_config(self) -> None:
        super()._write_sshd_config()
        text = self.sshd_config_path.read_text()
        text = (text.replace("PermitRootLogin prohibit-password", "PermitRootLogin no")
                .replace("AllowUsers root", f"AllowUsers {self.user}")
                .replace(f"AuthorizedKeysFile {_cfg_path(self.key_path.with_suffix('.pub'))}",
                         f"AuthorizedKeysFile {_cfg_path(self.base / 'authorized_keys')}"))
        self.sshd_config_path.write_text(text)
        # the setup script embeds the port (the forwarder's): rewrite it for this attempt
        self._write_scripts()

    def _start_sshd(self) -> tuple[bool, str]:
        self.sshd_log.write_bytes(b"")
        with open(self.sshd_log, "ab") as log:
            proc = subprocess.Popen(
                [_tool("unshare"), "--mount", "--pid", "--uts", "--fork", "--kill-child",
                 "--propagation", "private", "--", str(self._setup_script)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_die_with_parent,
                cwd=self.base,
            )
        deadline = time.monotonic() + 20
        needle = f"Server listening on 127.0.0.1 port {self.port}".encode()
        while time.monotonic() < deadline:
            if needle in self.sshd_log.read_bytes():
                self._proc = proc
                self.ns_pid = _child_of(proc.pid)
                return True, ""
            if proc.poll() is not None:
                return False, self.sshd_log.read_text(errors="replace")
            time.sleep(0.005)
        proc.kill()
        proc.wait()
        return False, "timed out waiting for sshd:\n" + self.sshd_log.read_text(errors="replace")

    # -- for tests -------------------------------------------------------------------------

    def inventory_data(self) -> dict[str, object]:
        return {**super().inventory_data(), "ssh_user": self.user}

    def ssh_argv(self, command: str | None = None) -> list[str]:
        argv = super().ssh_argv(command)
        return [f"{self.user}@127.0.0.1" if a == "root@127.0.0.1" else a for a in argv]
