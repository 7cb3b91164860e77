"""End to end: the client role through the pyinfra CLI, over real OpenSSH, into a fake Mac.

The fake Mac is the harness's (``tests/harness/fake_mac.py``): a root file system of its own in
private mount, PID and UTS namespaces, ``sshd`` chrooted into it, the SSH user ``alice``
(uid 501, home ``/Users/alice``) not root and using the real ``sudo`` (NOPASSWD); Homebrew at
``/opt/homebrew`` is the project's ``brew`` stand-in, with ``wg-quick`` (the stand-in in record
mode: bash >= 4 and root required, ``/var/run/wireguard/<name>.name`` + the utun socket as
darwin.bash, the config it was given in ``utunN.applied``), ``pipx`` and ``python@3.12``;
``launchctl``, ``sw_vers`` are the project's stand-ins, ``uname -s`` says Darwin and ``awk`` is
the one-true-awk (macOS' awk) when installed. Every SSH exec is logged (``commands.jsonl``).

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
import time
from pathlib import Path

import pytest

from deploys.keys import KeyStore
from deploys.peers import parse_wg_quick, peer_config
from deploys.plan import materialize, validate
from tests.harness import fake_mac
from tests.harness.fake_mac import (
    CLIENT_NETWORK,
    ORIGINAL_ZSHRC,
    FakeMac,
    write_client_inventory,
)

pytestmark = pytest.mark.ssh

REPO = Path(__file__).resolve().parents[1]
OLLAMA_STANDIN = REPO / "tests" / "standins" / "ollama_api.py"



def requirements_missing() -> str | None:
    why = fake_mac.missing()
    if why:
        return why
    if shutil.which("shasum", path=os.environ.get("PATH", "") + ":/usr/bin") is None:
        return "shasum not found (.ci/run: apt-get install perl)"
    return None


def client_mac(base: Path, files: dict[str, str]) -> FakeMac:
    """alice's MacBook: the client formulae, wg-quick recording what it was given."""
    return FakeMac(base / "mac", user="alice", files=files, machine={
        "os": {"product_version": "15.5"},
        "homebrew": {"formulae": fake_mac.client_formulae(tunnel=False)},
    })


# -- the inventory and pyinfra ------------------------------------------------------------------

def pyinfra(inventory: Path, deploy: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", "-vv", str(inventory), deploy,
         "--limit", "alice-mac", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    return result


def the_plan(inventory_client: dict, secrets: Path, network: dict | None = None):
    net = {**CLIENT_NETWORK, **(network or {})}
    spec = validate(network=net, router=("router", {}),
                    server=("ai-server", {"dmz_address": "192.168.100.10",
                                          "ollama_context_length": 65536}),  # Claude: >= 64k
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
    fake = client_mac(tmp_path, files={
        "/Users/alice/.zshrc": ORIGINAL_ZSHRC,
        "/Users/alice/Downloads/ai-server-vpn.conf": "[Interface]\nPrivateKey = old\n",
    }).start()
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
    inventory = write_client_inventory(tmp_path / "inventory.py", mac, secrets, CLIENT)

    # -- first run: from a Mac that had the original installer
    first = pyinfra(inventory, "deploys/client.py", "-v")  # -vvv: every command and output
    assert first.returncode == 0, first.stderr[-4000:] + first.stdout[-4000:]
    plan = the_plan(CLIENT, secrets)
    expected = installed_conf(mac, plan)
    cmds = mac.entries()
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
    assert "num_ctx: 65536" in mac.path("/Users/alice/.aider.model.settings.yml").read_text()
    assert "ai-server-vpn.conf" in first.stderr + first.stdout  # the leftover key is reported

    # -- second run: nothing to do, two reads
    mac.reset_counts()
    second = pyinfra(inventory, "deploys/client.py")
    assert second.returncode == 0, second.stderr[-3000:]
    reads = mac.commands()
    assert len(reads) == 2, reads
    assert sum(r.startswith("sudo -H -n sh -c") and "launchctl print" in r for r in reads) == 1
    assert "[alice-mac] Success" not in second.stderr
    assert second.stderr.count("[alice-mac] No changes") == 12  # every operation

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
    renamed = write_client_inventory(tmp_path / "renamed.py", mac, secrets,
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
    disabled = write_client_inventory(tmp_path / "disabled.py", mac, secrets,
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
    assert mac.path("/Users/alice/.zshrc").read_text() == "export EDITOR=vim\nalias ll='ls -l'\n"
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
        inventory = write_client_inventory(tmp_path / "inventory.py", mac, tmp_path / "secrets",
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
    inventory = write_client_inventory(tmp_path / "inventory.py", mac, tmp_path / "secrets", client)
    result = pyinfra(inventory, "deploys/client.py")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "claude-ollama not offered" in result.stderr
    assert "http://192.168.100.10:11434 was not asked" in result.stderr
    assert "set server_ollama_version" in result.stderr
    env = mac.path("/Users/alice/.config/self-sovereign-ollama/env.sh").read_text()
    assert "claude-ollama" not in env and "OPENAI_API_BASE=http://192.168.100.10:11434/v1" in env


def test_the_mac_owns_its_etc(mac: FakeMac) -> None:
    """The login user lives in the Mac's own /etc (a copy in its tmpfs root, nothing bound
    from the host's /etc): the host replacing its /etc/passwd cannot take the user away."""
    assert mac.run("id -u alice").stdout.strip() == "501"
    mounts = [line.split()[4] for line in
              Path(f"/proc/{mac.ns_pid}/mountinfo").read_text().splitlines()]
    assert "/" in mounts and "/usr" in mounts  # the chroot's view: its own mounts are listed
    assert not [m for m in mounts if m == "/etc" or m.startswith("/etc/")], mounts
    for name in ("passwd", "group", "shadow", "sudoers"):
        inside, host = mac.path(f"/etc/{name}").stat(), Path(f"/etc/{name}").stat()
        assert (inside.st_dev, inside.st_ino) != (host.st_dev, host.st_ino), name
