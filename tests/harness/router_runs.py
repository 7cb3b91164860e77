"""Run the router deploy with the pyinfra CLI against a fake router (:mod:`openwrt_host`), and
look at the result: the inventory, the runs (blocking or in the background, to interrupt
them), the desired-state check, the apply dir and stand-in faults.

Shared by ``tests/test_router_ssh.py``, ``tests/test_safe_apply.py``,
``tests/test_router_faults.py``, ``tests/test_router_lockout.py``, ``tests/test_keys_cli.py``,
``tests/test_cli_output.py``, ``tests/test_openwrt_host.py`` and the router benchmark; the
background runs and :func:`interrupt_when` also by ``tests/test_mac_faults.py``. The server
and clients of the inventory are unreachable placeholders (127.0.0.9:9), used with
``--limit router``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from deploys.keys import KeyStore
from deploys.plan import materialize, validate
from facts.openwrt import parse_uci_export
from tests.harness.openwrt_host import REPO, OpenWrtHost, requirements_missing

NETWORK = {
    "vpn_subnet": "10.10.10.0/24",
    "vpn_port": 51820,
    "vpn_endpoint": "vpn.example.org",
    "lan_subnet": "192.168.1.0/24",
    "dmz_subnet": "192.168.100.0/24",
    "dmz_device": "lan4",
    "lan_to_dmz": False,
}
SERVER = {"dmz_address": "192.168.100.10", "dmz_mac": "52:54:00:a1:00:10"}
CLIENTS = [("alice-mac", {"vpn_name": "alice_mac"}), ("bob-mac", {})]
PEERS = [{"name": "alice_phone"}]
PACKAGES = ("network", "firewall", "dhcp")
#: a small router image (the deploy installs WireGuard itself)
SMALL_IMAGE = ("base-files", "busybox", "dropbear", "firewall4", "libc", "uci")

INVENTORY = """
from deploys.plan import validate_before_connect
validate_before_connect()
_net = {network!r}
router = [("router", {{**{router!r}, **_net}})]
server = [("ai-server", {{"ssh_hostname": "127.0.0.9", "ssh_port": 9, **_net, **{server!r}}})]
clients = [
    (name, {{"ssh_hostname": "127.0.0.9", "ssh_port": 9, "key_on_mac": False, **_net, **data}})
    for name, data in {clients!r}
]
"""


def require_router() -> None:
    """Skip the calling module when the fake router cannot run here (root, sshd, busybox...);
    under ``CI=true`` fail instead, so that CI never passes by skipping."""
    missing = requirements_missing()
    if missing:
        if os.environ.get("CI") == "true":  # CI runs as root with the tools installed
            pytest.fail(f"fake OpenWrt router unavailable in CI: {missing}", pytrace=False)
        pytest.skip(f"fake OpenWrt router unavailable: {missing}", allow_module_level=True)


def write_inventory(path: Path, router: OpenWrtHost, secrets: Path, clients=None, peers=None,
                    router_data: dict | None = None, network: dict | None = None) -> Path:
    """The test inventory (``NETWORK``, the router, an unreachable server and ``clients``,
    default ``CLIENTS``, whose keys the controller makes unless their data says otherwise)."""
    net = {**NETWORK, **(network or {}), "secrets_dir": str(secrets),
           "peer_output_dir": str(secrets.parent / "peers-out"),
           "vpn_peers": peers if peers is not None else PEERS}
    clients = clients if clients is not None else CLIENTS
    data = {**router.inventory_data(), **(router_data or {})}
    path.write_text(INVENTORY.format(network=net, router=data, server=SERVER, clients=clients))
    return path


def deploy_args(inventory: Path, *args: str) -> list[str]:
    """pyinfra's arguments for the router deploy: ``INVENTORY deploys/all.py --limit router``."""
    return [str(inventory), "deploys/all.py", "--limit", "router", *args]


def pyinfra_argv(inventory: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pyinfra", *deploy_args(inventory, *args)]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


def run_cli(*args: str, input: str | None = None, timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
    """``python -m pyinfra ARGS`` from the repository root, as a user runs it; ``input`` is
    what the user types (``None``: stdin is /dev/null, no terminal at all)."""
    # never ``stdin=`` together with ``input=``, not even None: in a pytest process that imported
    # pyinfra_cli (pyinfra_testing does), subprocess is gevent's, which refuses the pair
    feed: dict[str, object] = ({"stdin": subprocess.DEVNULL} if input is None
                               else {"input": input})
    return subprocess.run([sys.executable, "-m", "pyinfra", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, env=_env(), **feed)


def pyinfra(inventory: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """One run of the router deploy, as a user types it (answers the prompt with Enter)."""
    return run_cli(*deploy_args(inventory, *args), input="\n", timeout=timeout)


def fact(inventory: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``pyinfra INVENTORY --limit router ARGS fact facts.openwrt.OpenWrtState`` (no terminal)."""
    return run_cli(str(inventory), "--limit", "router", *args, "fact",
                   "facts.openwrt.OpenWrtState", timeout=timeout)


def pyinfra_background(inventory: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """Start a run in the background (output to ``log``), to interrupt it."""
    return background(pyinfra_argv(inventory, *args), log)


def background(argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """Start any run (``argv``, from the repository root) in the background, output to
    ``log`` (the Macs' fault tests use it with their own deploys)."""
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(list(argv), cwd=REPO, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=_env())


def interrupt_when(proc: subprocess.Popen[bytes], reached, sig: int, log: Path,
                   after: float = 0.0, timeout: float = 120) -> int:
    """Wait until ``reached()`` (the run must still be running then, and ``after`` seconds
    later), send ``sig``, return the run's exit status (a run still alive 60 s later is
    killed and fails the test)."""
    try:
        hit = wait_for(lambda: reached() or proc.poll() is not None, timeout, interval=0.01)
        assert hit and proc.poll() is None, (
            "the run ended before reaching the point: " + log.read_text(errors="replace"))
        time.sleep(after)
        assert proc.poll() is None, "the run ended before the signal"
        proc.send_signal(sig)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def output(run: subprocess.CompletedProcess[str]) -> str:
    return run.stdout + run.stderr


def plan_for(secrets: Path, clients=None, peers=None):
    spec = validate(
        network={**NETWORK, "vpn_peers": peers if peers is not None else PEERS},
        router=("router", {}), server=("ai-server", SERVER),
        # no Mac to make its own key: the controller makes them
        clients=[(n, {"key_on_mac": False, **d})
                 for n, d in (clients if clients is not None else CLIENTS)],
    )
    return materialize(spec, KeyStore(secrets))


def keys_recorded(secrets: Path, clients=None, peers=None):
    """The plan, with its keys written to the key store as a successful run records them
    (stage + commit): a test that must know the keys before a run starts."""
    plan = plan_for(secrets, clients, peers)
    store = KeyStore(secrets)
    store.stage(plan.key_changes)
    store.commit(plan.key_changes)
    return plan


def router_config(router: OpenWrtHost) -> dict:
    return {p: parse_uci_export(f"package {p}\n" + router.read_config(p))[p] for p in PACKAGES}


def snapshot(router: OpenWrtHost) -> dict[str, str]:
    return {p: router.read_config(p) for p in PACKAGES}


def differences(router: OpenWrtHost, secrets: Path, clients=None, peers=None) -> list[str]:
    """The uci changes still needed to reach the desired state (empty: the router matches)."""
    from deploys.router_config import current_defaults_forward, desired_router_config
    from facts.openwrt import OpenWrtState, parse_state
    from operations.uci import compute_changes

    state = parse_state(router.run(OpenWrtState().command(), check=True).stdout.splitlines())
    config = state["config"]
    plan = plan_for(secrets, clients, peers)
    return compute_changes(
        config, **desired_router_config(plan, current_defaults_forward(config))).summary


def apply_dir(router: OpenWrtHost) -> list[str]:
    """Names in the router's apply dir (guards, markers, leftovers)."""
    return sorted(router.run("ls -A /tmp/pyinfra-apply 2>/dev/null").stdout.split())


def shared_save_dir(router: OpenWrtHost) -> list[str]:
    """Non-empty files in the shared uci save dir (someone's pending changes; ``uci revert``
    leaves an empty file behind, as the real uci does)."""
    listing = router.run('for f in /tmp/.uci/* /tmp/.uci/.[!.]*; do [ -s "$f" ] && '
                         'echo "${f##*/}"; done; true')
    return sorted(listing.stdout.split())


def set_faults(router: OpenWrtHost, lines: Iterable[str]) -> None:
    """Stand-in fault injection: ``"<point> fail [n]"`` / ``"<point> delay <s>"`` lines
    (see tests/standins/openwrt/faults.sh); an empty list removes every fault."""
    lines = list(lines)
    text = "".join(f"{line}\n" for line in lines)
    router.run("rm -f /tmp/standin-faults /tmp/standin-faults.*.count", check=True)
    if lines:
        router.run("cat > /tmp/standin-faults", input=text, check=True)


def secrets_in(secrets: Path) -> list[str]:
    return [p.read_text().strip() for p in secrets.rglob("*") if p.suffix in (".key", ".psk")]


def wait_for(predicate, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def hand_apply_script(router: OpenWrtHost, secrets: Path, seconds: int, token: str,
                      clients=None, peers=None) -> str:
    """Upload (not run) the apply script the deploy would use now, as ``apply-<token>.sh``,
    with a guard of ``seconds``; returns its path. Running it by hand and never confirming is
    what a controller that died right after the apply leaves behind."""
    from deploys.router_config import current_defaults_forward, desired_router_config
    from facts.openwrt import OpenWrtState, parse_state
    from operations.uci import all_reloads, apply_script, compute_changes, needs_rollback_guard

    plan = keys_recorded(secrets, clients, peers)  # the keys the later runs will use
    state = parse_state(router.run(OpenWrtState().command(), check=True).stdout.splitlines())
    changes = compute_changes(
        state["config"], **desired_router_config(plan, current_defaults_forward(state["config"])))
    reloads = all_reloads(changes)
    guard = seconds if needs_rollback_guard(reloads) else 0
    script = apply_script(changes.batch, changes.expected, changes.packages, reloads,
                          state["checksum"], token, rollback_seconds=guard)
    path = f"/tmp/pyinfra-apply/apply-{token}.sh"
    router.run(f"cat > {path}", input=script, check=True)
    return path


def hand_apply(router: OpenWrtHost, secrets: Path, seconds: int, token: str, clients=None,
               peers=None) -> subprocess.CompletedProcess[str]:
    """Apply the desired state by hand with an armed, never-confirmed guard."""
    path = hand_apply_script(router, secrets, seconds, token, clients, peers)
    return router.run(f"sh {path}")
