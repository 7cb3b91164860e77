"""Peers: rendered configs parsed back field by field, QR codes decoded by a real decoder,
the key lifecycle, and a real WireGuard tunnel (wireguard-go + wg) between two namespaces built
from the generated client config and the router side it pairs with."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from deploys.keys import KeyStore, public_key
from deploys.peers import allowed_ips, parse_wg_quick, peer_config, router_wg_setconf
from deploys.plan import materialize, validate
from operations import peer_files
from operations.secret import Secret

NETWORK = {
    "vpn_subnet": "10.10.10.0/24",
    "vpn_endpoint": "vpn.example.org",
    "vpn_port": 51820,
    "vpn_keepalive": 25,
    "dmz_subnet": "192.168.100.0/24",
    "lan_subnet": "192.168.1.0/24",
    "vpn_peers": [{"name": "alice_phone"}, {"name": "bob_tablet", "kind": "tablet",
                                            "keepalive": 0}],
}
SERVER = ("ai-server", {"dmz_address": "192.168.100.10"})


def make_plan(store: KeyStore, dry: bool = False, key_on_mac: bool = False, **network):
    spec = validate(network={**NETWORK, **network}, router=("router", {}), server=SERVER,
                    clients=[("alice-mac", {"vpn_name": "alice_mac", "key_on_mac": key_on_mac})])
    return materialize(spec, store, dry=dry)


@pytest.fixture
def store(tmp_path):
    return KeyStore(tmp_path / "secrets")


def test_peer_config_fields(store):
    plan = make_plan(store)
    peer = plan.peer("alice_phone")
    text = peer_config(plan, peer).reveal()
    conf = parse_wg_quick(text)
    assert conf["Interface"] == {"PrivateKey": peer.private_key.reveal(),
                                 "Address": f"{peer.address}/32"}
    assert public_key(conf["Interface"]["PrivateKey"]) == peer.public_key
    assert conf["Peer"] == [{
        "PublicKey": plan.router_public_key,
        "PresharedKey": peer.preshared_key.reveal(),
        "Endpoint": "vpn.example.org:51820",
        "AllowedIPs": "10.10.10.0/24, 192.168.100.10/32",
        "PersistentKeepalive": "25",
    }]
    assert "0.0.0.0/0" not in text and "DNS" not in text  # split tunnel, no internet
    tablet = parse_wg_quick(peer_config(plan, plan.peer("bob_tablet")).reveal())
    assert "PersistentKeepalive" not in tablet["Peer"][0]
    assert str(peer_config(plan, peer)).startswith("<secret")


def test_router_side_lists_enabled_peers_only(store):
    plan = make_plan(store, vpn_peers=[{"name": "alice_phone"},
                                      {"name": "bob_tablet", "enabled": False}])
    conf = parse_wg_quick(router_wg_setconf(plan).reveal())
    assert conf["Interface"] == {"PrivateKey": plan.router_private_key.reveal(),
                                 "ListenPort": "51820"}
    assert [p["AllowedIPs"] for p in conf["Peer"]] == [f"{p.address}/32"
                                                       for p in plan.enabled_peers]
    assert {p["PublicKey"] for p in conf["Peer"]} == {p.public_key for p in plan.enabled_peers}


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbar-tools (zbarimg) missing")
def test_png_qr_code_decodes_to_exactly_the_config(store):
    plan = make_plan(store)
    text = peer_config(plan, plan.peer("alice_phone")).reveal()
    png = peer_files.qr_png(text)
    path = Path(store.root).parent / "qr.png"
    path.write_bytes(png)
    decoded = subprocess.run(["zbarimg", "--raw", "-q", str(path)], capture_output=True,
                             check=True).stdout.decode()
    assert decoded == text + "\n"  # zbarimg ends every symbol with a newline
    assert "\u2588" in peer_files.qr_terminal(text).decode() or \
        "\u2580" in peer_files.qr_terminal(text).decode()


def test_peer_files_written_once_with_private_modes(tmp_path, store):
    from pyinfra.context import ctx_host, ctx_state
    from pyinfra_testing.util import FakeState, create_host

    plan = make_plan(store)
    configs = {"alice_phone": peer_config(plan, plan.peer("alice_phone"))}
    out = tmp_path / "out" / "peers"

    def run():
        state = FakeState()
        host = create_host(state, facts={})
        with ctx_state.use(state), ctx_host.use(host):
            commands = list(peer_files.write._inner(configs=configs, directory=str(out)))
        return host, commands

    host, commands = run()
    assert len(commands) == 1 and not out.exists()  # nothing written before execution
    command = commands[0]
    command.function(*command.args, **command.kwargs)
    names = sorted(p.name for p in out.iterdir())
    assert names == [peer_files.MANIFEST, "alice_phone.conf", "alice_phone.png",
                     "alice_phone.qr.txt"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.iterdir())
    assert (out / "alice_phone.conf").read_text() == configs["alice_phone"].reveal()
    host, commands = run()
    assert commands == [] and "up to date" in host.noop_description
    # the private key is not in the op's printable arguments
    assert configs["alice_phone"].reveal() not in repr(configs)


def run(store: KeyStore, key_on_mac: bool = False, **network):
    """A plan and a successful run: what the deploy's key store operations record."""
    plan = make_plan(store, key_on_mac=key_on_mac, **network)
    store.stage(plan.key_changes)
    store.commit(plan.key_changes)
    return plan


def test_rotation_archives_old_keys_only_after_a_successful_run(store):
    plan = run(store)
    old = plan.peer("alice_phone")
    dry = make_plan(store, dry=True, rotate_peers=["alice_phone"])
    assert dry.peer("alice_phone").public_key != old.public_key
    assert not (store.base / "archive").exists()
    assert make_plan(store).peer("alice_phone").public_key == old.public_key

    rotated = make_plan(store, rotate_peers="alice_phone")
    assert not (store.base / "archive").exists()  # planned, not yet applied
    store.stage(rotated.key_changes)  # the run uploads the new key: kept first
    assert not (store.base / "archive").exists()
    # a run that failed after staging: the next run continues with the same new keys
    again = make_plan(store)
    assert again.peer("alice_phone").public_key == rotated.peer("alice_phone").public_key
    store.commit(again.key_changes)
    new = again.peer("alice_phone")
    assert new.public_key != old.public_key and new.preshared_key != old.preshared_key
    assert new.address == old.address
    archived = list((store.base / "archive").iterdir())
    assert len(archived) == 1 and archived[0].name.endswith("-alice_phone-rotated")
    assert (archived[0] / "alice_phone.key").read_text().strip() == old.private_key.reveal()
    assert stat.S_IMODE(archived[0].stat().st_mode) == 0o700
    assert stat.S_IMODE((store.base / "archive").stat().st_mode) == 0o700
    assert not store.pending.exists()
    # the next run without the flag keeps the new keys and has nothing to record
    later = make_plan(store)
    assert later.peer("alice_phone").public_key == new.public_key and not later.key_changes
    # other peers untouched
    assert again.peer("alice_mac").public_key == plan.peer("alice_mac").public_key


def test_removed_peer_secrets_are_archived_not_deleted(store):
    plan = run(store)
    bob = plan.peer("bob_tablet")
    make_plan(store, vpn_peers=[{"name": "alice_phone"}])
    assert store.has_peer("bob_tablet")  # building the plan archives nothing
    run(store, vpn_peers=[{"name": "alice_phone"}])
    assert not store.has_peer("bob_tablet")
    archived = [p for p in (store.base / "archive").iterdir() if "bob_tablet" in p.name]
    assert (archived[0] / "bob_tablet.key").read_text().strip() == bob.private_key.reveal()


def test_a_rotation_asked_again_archives_the_staged_key_never_drops_it(store):
    run(store)
    first = make_plan(store, rotate_peers="alice_phone")
    store.stage(first.key_changes)
    second = make_plan(store, rotate_peers="alice_phone")  # asked again before any success
    assert second.peer("alice_phone").public_key != first.peer("alice_phone").public_key
    store.stage(second.key_changes)
    kept = [p for p in (store.base / "archive").iterdir() if p.name.endswith("-superseded")]
    assert len(kept) == 1
    assert (kept[0] / "alice_phone.key").read_text().strip() == \
        first.peer("alice_phone").private_key.reveal()


def test_building_plans_never_writes(tmp_path):
    store = KeyStore(tmp_path / "secrets")
    make_plan(store, rotate_peers=["alice_phone"])
    assert not (tmp_path / "secrets").exists()
    run(store)
    snapshot = {p: p.read_bytes() for p in (tmp_path / "secrets").rglob("*") if p.is_file()}
    make_plan(store, rotate_peers=["alice_phone"], vpn_peers=[{"name": "alice_phone"}])
    after = {p: p.read_bytes() for p in (tmp_path / "secrets").rglob("*") if p.is_file()}
    assert after == snapshot


def test_unknown_rotation_target_is_an_input_error(store):
    from deploys.plan import PlanError

    with pytest.raises(PlanError) as info:
        make_plan(store, rotate_peers=["carol"])
    assert info.value.errors == ["network: rotate_peers: 'carol' (no such peer in the inventory)"]


# -- a real tunnel -------------------------------------------------------------------------

def _can_netns() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("ip", "wg", "wireguard-go", "ping"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing"
    return None


class Namespaces:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.tag = tag
        self.router, self.client = f"ssot-r-{tag}", f"ssot-c-{tag}"
        # wireguard-go's control sockets live in /var/run/wireguard/<ifname>.sock, shared by all
        # namespaces: every interface needs a name unique on the machine
        self.ifaces: list[tuple[str, str]] = []

    def sh(self, ns: str, command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", command],
                              capture_output=True, text=True, check=check, timeout=30)

    def up(self) -> None:
        for ns in (self.router, self.client):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            self.sh(ns, "ip link set lo up")
        # the "internet" between them: a veth pair
        subprocess.run(["ip", "link", "add", "ssot-wan", "netns", self.router, "type", "veth",
                        "peer", "name", "ssot-wan", "netns", self.client], check=True)
        self.sh(self.router, "ip addr add 198.51.100.1/24 dev ssot-wan; ip link set ssot-wan up")
        self.sh(self.client, "ip addr add 198.51.100.2/24 dev ssot-wan; ip link set ssot-wan up")

    def wg_up(self, ns: str, conf: str, address: str, routes: list[str] = ()) -> str:
        ifname = f"wg{len(self.ifaces)}{self.tag}"
        self.ifaces.append((ns, ifname))
        path = f"/tmp/{ifname}.conf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(conf)
        try:
            self.sh(ns, f"wireguard-go {ifname}")
            self.sh(ns, f"wg setconf {ifname} {path}; ip addr add {address} dev {ifname}; "
                        f"ip link set {ifname} up")
        finally:
            os.unlink(path)
        for route in routes:
            self.sh(ns, f"ip route replace {route} dev {ifname}")
        return ifname

    def down(self) -> None:
        for ns, ifname in self.ifaces:
            self.sh(ns, f"ip link del {ifname} 2>/dev/null; true", check=False)
        for ns in (self.router, self.client):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture
def namespaces():
    reason = _can_netns()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"WireGuard tunnel test cannot run in CI: {reason}")
        pytest.skip(reason)
    ns = Namespaces()
    try:
        ns.up()
        yield ns
    finally:
        ns.down()


def client_setconf(text: str) -> tuple[str, str, list[str]]:
    """wg-quick config -> (``wg setconf`` text, Address, AllowedIPs): what wg-quick does."""
    conf = parse_wg_quick(text)
    iface, peer = conf["Interface"], conf["Peer"][0]
    lines = ["[Interface]", f"PrivateKey = {iface['PrivateKey']}", "", "[Peer]"]
    lines += [f"{k} = {v}" for k, v in peer.items()]
    return "\n".join(lines) + "\n", iface["Address"], [
        ip.strip() for ip in peer["AllowedIPs"].split(",")]


def test_generated_configs_bring_up_a_real_tunnel(store, namespaces):
    plan = make_plan(store, vpn_endpoint="198.51.100.1")
    peer = plan.peer("alice_phone")
    # router side: what OpenWrt's proto handler feeds wg, plus the wg0 address
    router_if = namespaces.wg_up(namespaces.router, router_wg_setconf(plan).reveal(),
                                 f"{plan.vpn_router_address}/{plan.vpn_subnet.prefixlen}")
    namespaces.sh(namespaces.router, "ip addr add 192.168.100.10/32 dev lo")  # "the server"
    conf, address, routes = client_setconf(peer_config(plan, peer).reveal())
    assert routes == allowed_ips(plan)
    client_if = namespaces.wg_up(namespaces.client, conf, address, routes)

    ping = namespaces.sh(namespaces.client, f"ping -c 2 -W 2 {plan.vpn_router_address}",
                         check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    ping = namespaces.sh(namespaces.client, "ping -c 1 -W 2 192.168.100.10", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    shown = namespaces.sh(namespaces.router, f"wg show {router_if} dump").stdout.splitlines()
    row = next(line.split("\t") for line in shown[1:] if line.startswith(peer.public_key))
    assert row[1] == peer.preshared_key.reveal() and row[3] == f"{peer.address}/32"
    assert int(row[4]) > 0  # latest handshake

    # a tunnel with the wrong preshared key never completes a handshake
    namespaces.sh(namespaces.client, f"ip link del {client_if}")
    time.sleep(0.2)
    bad = conf.replace(peer.preshared_key.reveal(), Secret("A" * 43 + "=").reveal())
    namespaces.wg_up(namespaces.client, bad, address, routes)
    ping = namespaces.sh(namespaces.client, f"ping -c 2 -W 1 {plan.vpn_router_address}",
                         check=False)
    assert ping.returncode != 0


# -- peers that expire -----------------------------------------------------------------------

def test_expired_peers_leave_the_router_and_keep_their_keys(store):
    import datetime

    from deploys.expiry import describe
    from deploys.router_config import desired_router_config

    today = datetime.date.today()
    yesterday, tomorrow = today - datetime.timedelta(days=1), today + datetime.timedelta(days=1)
    plan = run(store, vpn_peers=[{"name": "alice_phone", "expires": today.isoformat()},
                                 {"name": "bob_tablet", "expires": str(yesterday)},
                                 {"name": "guest", "expires": str(tomorrow)}])
    assert [p.name for p in plan.enabled_peers] == ["alice_mac", "alice_phone", "guest"]
    assert plan.peer("bob_tablet").expired and not plan.peer("alice_phone").expired
    sections = {s["name"] for s in desired_router_config(plan)["sections"]}
    assert "wgpeer_guest" in sections and "wgpeer_bob_tablet" not in sections
    assert store.has_peer("bob_tablet")  # keys kept: a new date brings it back unchanged
    assert "expired on" in describe("bob_tablet", yesterday, True)
    assert "expires" in describe("guest", tomorrow, True) and "in 1 days" in \
        describe("guest", tomorrow, True)
    later = run(store, vpn_peers=[{"name": "alice_phone"}, {"name": "guest"},
                                  {"name": "bob_tablet", "expires": str(tomorrow)}])
    assert later.peer("bob_tablet").public_key == plan.peer("bob_tablet").public_key
    assert "bob_tablet" in [p.name for p in later.enabled_peers]


def test_bad_expiry_dates_are_input_errors(store):
    from deploys.plan import PlanError

    with pytest.raises(PlanError) as info:
        make_plan(store, vpn_peers=[{"name": "guest", "expires": "31.12.2026"}])
    assert info.value.errors == [
        "peer guest: expires: '31.12.2026' (expected an ISO date 'YYYY-MM-DD')"]
    spec_error = None
    try:
        validate(network=NETWORK, router=("router", {}), server=SERVER,
                 clients=[("alice-mac", {"vpn_name": "alice_mac", "vpn_expires": 2026})])
    except PlanError as exc:
        spec_error = exc.errors
    assert spec_error == ["alice-mac: vpn_expires: 2026 (expected an ISO date 'YYYY-MM-DD')"]


# -- Macs that make their own key (key_on_mac) ---------------------------------------------

def test_a_mac_with_its_own_key_gets_no_controller_key_and_migrates_in_one_run(store):
    import dataclasses

    from deploys.mac_keys import with_mac_keys

    old = run(store)  # controller-made key for alice_mac (key_on_mac off)
    controller_key = old.peer("alice_mac").private_key
    assert controller_key is not None

    plan = make_plan(store, key_on_mac=True)
    mac = plan.peer("alice_mac")
    assert mac.own_key and mac.private_key is None
    # until the deploy has read the Mac's public key, the plan has none to give the router
    assert mac.public_key == "" and "alice_mac" not in [p.name for p in plan.enabled_peers]
    text = peer_config(plan, mac).reveal()
    assert "PrivateKey =" not in text and "[Interface]\nAddress = " in text
    assert plan.key_changes.dropped_private == ["alice_mac"]
    assert with_mac_keys(plan, state=None).peer("alice_mac") == mac  # no pyinfra run: as is

    # what the deploy does when it read the Mac's public key (deploys/mac_keys.py)
    mac_public = public_key(generate_private_key_for_test())
    changes = dataclasses.replace(plan.key_changes, new={**plan.key_changes.new,
                                                         "peers/alice_mac.pub": Secret(mac_public)})
    store.stage(changes)
    store.commit(changes)
    archived = [p for p in (store.base / "archive").iterdir() if p.name.endswith("key-moved")]
    assert (archived[0] / "alice_mac.key").read_text().strip() == controller_key.reveal()
    assert not (store.base / "peers" / "alice_mac.key").exists()

    later = make_plan(store, key_on_mac=True)
    assert later.peer("alice_mac").public_key == mac_public
    assert "alice_mac" in [p.name for p in later.enabled_peers]
    assert later.peer("alice_mac").preshared_key == old.peer("alice_mac").preshared_key
    assert not later.key_changes  # nothing left to record


def generate_private_key_for_test():
    from deploys.keys import generate_private_key

    return generate_private_key()


def test_only_macs_the_tool_configures_make_their_own_key(store):
    spec = validate(network=NETWORK, router=("router", {}), server=SERVER,
                    clients=[("a-mac", {"vpn_name": "a_mac"}),
                             ("b-mac", {"vpn_name": "b_mac", "configure_host": False}),
                             ("c-mac", {"vpn_name": "c_mac", "key_on_mac": False})])
    plan = materialize(spec, store)
    assert plan.peer("a_mac").own_key and plan.peer("a_mac").private_key is None
    for name in ("b_mac", "c_mac"):
        assert not plan.peer(name).own_key and plan.peer(name).private_key is not None
    from deploys.plan import PlanError

    with pytest.raises(PlanError, match="a-mac: key_on_mac: 'yes' \\(expected True or False"):
        validate(network=NETWORK, router=("router", {}), server=SERVER,
                 clients=[("a-mac", {"key_on_mac": "yes"})])
