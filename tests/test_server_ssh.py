"""The server deploy end to end: the pyinfra CLI, exactly as a user runs it, over real OpenSSH to
a fake Mac whose macOS commands are the stand-ins of ``tests/standins/macos`` (``launchctl``
really supervises the jobs, ``brew`` really installs kegs, ``ollama serve`` is the Ollama API
stand-in, ``haproxy`` is the real HAProxy).

The fake Mac is the harness's (``tests/harness/fake_mac.py``): a real ``sshd`` chrooted into a
root of its own, PID 1 of private mount/PID/UTS namespaces (everything it starts dies with it),
listening on 127.0.0.1 and 127.0.0.10; the login user ``admin`` (uid 501, like the first macOS
account) exists only in that root and sudoes without a password; Homebrew at ``/opt/homebrew``
is the brew stand-in. Every command is logged (counted execs). Ollama's "DMZ" is 127.0.0.0/24
(the server is 127.0.0.10, on a free port), so nothing touches a real network.

Covered: converge from a fresh Mac (brew services' Ollama running, DHCP, default power
settings), the exact no-op re-run (one exec), a data change (restart only then), the HAProxy
mode with the real haproxy (403 for /api/pull through it), and the uninstall.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.harness import fake_mac
from tests.harness.fake_mac import OLLAMA_STATE, ServerMac
from tests.harness.sshd_host import _free_port

pytestmark = pytest.mark.ssh

REPO = Path(__file__).resolve().parents[1]
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _missing() -> str | None:
    why = fake_mac.missing()
    if why:
        return why
    for tool in ("curl", "haproxy"):
        if not shutil.which(tool, path=HOST_PATH):
            return f"{tool} not found"
    return None


_MISSING = _missing()
if _MISSING:
    if os.environ.get("CI") == "true":
        pytest.fail(f"fake Mac unavailable in CI: {_MISSING}", pytrace=False)
    pytest.skip(f"fake Mac unavailable: {_MISSING}", allow_module_level=True)


# -- the tests --------------------------------------------------------------------------------

NETWORK = {
    "vpn_endpoint": "vpn.example.org",
    "dmz_subnet": "127.0.0.0/24",  # the fake Mac's "DMZ": loopback addresses only
}


@pytest.fixture(scope="module")
def mac():
    fake = ServerMac(ollama_port=_free_port(), brew_service_port=_free_port()).start()
    yield fake
    fake.stop()


def write_inventory(mac: ServerMac, tmp: Path, **server: object) -> Path:
    network = {**NETWORK, "ollama_port": mac.ollama_port, "secrets_dir": str(tmp / "secrets")}
    data = {
        **mac.inventory_data(),
        **network,
        "dmz_address": "127.0.0.10",
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


def job(mac: ServerMac, target: str) -> str:
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
    plist = (mac.host_home / "Library/LaunchAgents/com.ollama.plist").read_text()
    assert f"<string>127.0.0.10:{mac.ollama_port}</string>" in plist
    # brew services' server is gone, and so is its plist
    assert job(mac, "user/501/homebrew.mxcl.ollama").strip() == ""
    assert not (mac.host_home / "Library/LaunchAgents/homebrew.mxcl.ollama.plist").exists()
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
    plist = (mac.host_home / "Library/LaunchAgents/com.ollama.plist").read_text()
    assert "<string>1h</string>" in plist
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
    plist = (mac.host_home / "Library/LaunchAgents/com.ollama.plist").read_text()
    assert "127.0.0.1:" in plist
    cfg = mac.host_home / ".haproxy/haproxy.cfg"
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
    assert not (mac.host_home / "Library/LaunchAgents/com.ollama.plist").exists()
    assert not (mac.host_home / "Library/LaunchAgents/com.haproxy.plist").exists()
    assert not cfg.exists() and not cfg.parent.exists()
    assert mac.ssh("test -e /tmp/ollama.stdout.log || echo gone").stdout.strip() == "gone"
    assert (
        mac.ssh("test -x /opt/homebrew/opt/ollama/bin/ollama && echo kept").stdout.strip() == "kept"
    )
    assert "llama3.2:1b" in (mac.path(OLLAMA_STATE) / "state.json").read_text()
    mac.reset_counts()
    assert pyinfra(inventory, "deploys/uninstall.py").returncode == 0
    assert len(mac.commands()) == 1


def test_static_ip_on_the_link_of_the_ssh_session(tmp_path):
    """The Mac's Ethernet has the address this SSH session uses: refused (nothing changes)
    unless allowed; allowed, it is applied from a detached root job, pyinfra reconnects to the
    new address and confirms there (or the Mac would roll back by itself)."""
    mac = ServerMac(_free_port(), _free_port(), lease_ip="127.0.0.1").start()
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
