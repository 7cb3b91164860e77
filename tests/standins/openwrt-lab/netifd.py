"""TEST STAND-IN for OpenWrt's netifd (what ``/etc/init.d/network`` and ``ifup``/``ifdown``
drive), for the lab router. NOT netifd: it configures the router's network namespace from
``uci -n export network`` with the host's real ``ip``, ``wireguard-go`` and ``wg``.

Imitated (OpenWrt 23.05, reference/openwrt.md D.1 and D.3):

* ``config device`` sections of ``type bridge``: the bridge exists with exactly its ``ports``
  (a port removed from ``ports`` leaves the bridge, e.g. ``lan4`` for the DMZ);
* ``config interface``: ``proto static`` (``ipaddr`` + ``netmask`` or CIDR, lists, ``gateway``),
  ``proto dhcp`` (the "lease" is the file ``/etc/lab/dhcp/<device>`` written by the lab:
  ``ip=A/P``, ``router=G``; no DHCP client runs), ``proto wireguard`` (``wireguard-go <if>``, then
  ``wg setconf`` with ``private_key`` -- ``generate`` makes and commits one, like the proto
  handler --, ``listen_port``, ``fwmark``, and every ``wireguard_<if>`` peer section that has a
  ``public_key`` and is not ``disabled``: ``public_key``, ``preshared_key``, ``allowed_ips``,
  ``endpoint_host``/``endpoint_port``, ``persistent_keepalive``; ``addresses``, ``mtu``,
  ``route_allowed_ips``), ``proto none``; ``dhcpv6``/``static`` IPv6 details are ignored; ``auto
  '0'`` interfaces only come up with ``ifup``;
* ``reload``: only interfaces whose own section changed (or that are new) restart, removed ones
  go down, bridge membership is synced. **Peer-only changes are not applied** -- as on 23.05 the
  running ``wg0`` keeps its old peers until ``ifup wg0``;
* ``ifup <if>``: ``network reload`` first (as the real script), then that interface restarts
  with its current config (peers included); ``ifdown <if>`` takes it down; both print
  ``Interface <if> not found`` for an unknown name;
* the hotplug reaction of fw4 (``/etc/hotplug.d/iface/20-firewall``): when the live
  interface -> device map changed and the firewall is running, the ruleset is rebuilt.

What was configured is recorded in ``/var/run/lab-standin/netifd.json`` (the live state that
``ubus call network.interface dump`` would give); ``status`` prints the interface -> device map.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from labcommon import (  # noqa: E402
    IP,
    WG,
    WIREGUARD_GO,
    as_list,
    clear_state,
    ip,
    link_exists,
    load_state,
    log,
    main_guard,
    run,
    save_state,
    uci_export,
)

LEASE_DIR = "/etc/lab/dhcp"


# -- config --------------------------------------------------------------------------------


def read_config() -> dict:
    net = uci_export("network")
    bridges = {}
    interfaces = {}
    for s in net:
        o = s["options"]
        if s["type"] == "device" and o.get("type") == "bridge" and isinstance(o.get("name"), str):
            bridges[o["name"]] = as_list(o.get("ports"))
        elif s["type"] == "interface" and s["name"]:
            interfaces[s["name"]] = o
    peers: dict[str, list[dict]] = {}
    for s in net:
        if s["type"].startswith("wireguard_"):
            peers.setdefault(s["type"][len("wireguard_"):], []).append(s)
    return {"bridges": bridges, "interfaces": interfaces, "peers": peers}


def signature(options: dict) -> str:
    return json.dumps(options, sort_keys=True)


def l3_device(name: str, interfaces: dict) -> str | None:
    o = interfaces.get(name) or {}
    if o.get("proto") == "wireguard":
        return name
    dev = o.get("device") or o.get("ifname")
    if isinstance(dev, list):
        dev = dev[0] if dev else None
    if isinstance(dev, str) and dev.startswith("@"):
        return l3_device(dev[1:], interfaces)
    return dev


def _cidr(address: str, netmask: str | None, default_prefix: int = 32) -> str:
    if "/" in address:
        return address
    if netmask:
        bits = sum(bin(int(x)).count("1") for x in netmask.split("."))
        return f"{address}/{bits}"
    return f"{address}/{default_prefix}"


# -- devices -------------------------------------------------------------------------------


def bridge_ports(bridge: str) -> list[str]:
    out = run([IP, "-j", "link", "show", "master", bridge], check=False, quiet=True).stdout
    try:
        return [link["ifname"] for link in json.loads(out or "[]")]
    except ValueError:
        return []


def sync_bridges(bridges: dict[str, list[str]], old: dict[str, list[str]]) -> None:
    for name, ports in bridges.items():
        if not link_exists(name):
            ip("link", "add", name, "type", "bridge")
        ip("link", "set", name, "up")
        current = bridge_ports(name)
        for port in current:
            if port not in ports:
                ip("link", "set", port, "nomaster")
        for port in ports:
            if port not in current and link_exists(port):
                ip("link", "set", port, "master", name)
                ip("link", "set", port, "up")
    for name in old:
        if name not in bridges and link_exists(name):
            ip("link", "del", name)


# -- interfaces ----------------------------------------------------------------------------


def setup(name: str, cfg: dict) -> dict:
    """Bring an interface up; return what was configured (for teardown)."""
    o = cfg["interfaces"][name]
    proto = o.get("proto", "none")
    dev = l3_device(name, cfg["interfaces"])
    rec = {"sig": signature(o), "device": dev, "proto": proto, "addresses": [], "routes": [],
           "up": True}
    if proto == "wireguard":
        _setup_wireguard(name, o, cfg["peers"].get(name, []), rec)
        return rec
    if not dev:
        rec["up"] = False
        return rec
    if not link_exists(dev):
        log(f"interface {name}: device {dev} missing, interface stays down")
        rec["up"] = False
        return rec
    ip("link", "set", dev, "up")
    if proto == "static" and name != "loopback" and dev != "lo":
        netmask = o.get("netmask") if isinstance(o.get("netmask"), str) else None
        for addr in as_list(o.get("ipaddr")):
            if ":" in addr:
                continue
            cidr = _cidr(addr, netmask)
            ip("addr", "replace", cidr, "dev", dev)
            rec["addresses"].append(cidr)
        gw = o.get("gateway")
        if isinstance(gw, str) and gw and gw != "0.0.0.0":
            ip("route", "replace", "default", "via", gw, "dev", dev)
            rec["routes"].append("default")
    elif proto == "dhcp":
        lease = _lease(dev)
        if lease.get("ip"):
            ip("addr", "replace", lease["ip"], "dev", dev)
            rec["addresses"].append(lease["ip"])
        if lease.get("router") and o.get("defaultroute", "1") != "0":
            ip("route", "replace", "default", "via", lease["router"], "dev", dev)
            rec["routes"].append("default")
    return rec


def _lease(dev: str) -> dict[str, str]:
    try:
        with open(f"{LEASE_DIR}/{dev}", encoding="utf-8") as f:
            return dict(line.strip().split("=", 1) for line in f if "=" in line)
    except OSError:
        log(f"no DHCP lease for {dev} in {LEASE_DIR}")
        return {}


def _wg_config(o: dict, peers: list[dict], private_key: str) -> str:
    lines = ["[Interface]", f"PrivateKey = {private_key}"]
    if o.get("listen_port"):
        lines.append(f"ListenPort = {o['listen_port']}")
    if o.get("fwmark"):
        lines.append(f"FwMark = {o['fwmark']}")
    for s in peers:
        p = s["options"]
        if p.get("disabled") == "1" or not p.get("public_key"):
            continue
        lines += ["", "[Peer]", f"PublicKey = {p['public_key']}"]
        if p.get("preshared_key"):
            lines.append(f"PresharedKey = {p['preshared_key']}")
        allowed = as_list(p.get("allowed_ips"))
        if allowed:
            lines.append(f"AllowedIPs = {', '.join(allowed)}")
        if p.get("endpoint_host"):
            host = p["endpoint_host"]
            host = f"[{host}]" if ":" in host else host
            lines.append(f"Endpoint = {host}:{p.get('endpoint_port') or '51820'}")
        if p.get("persistent_keepalive"):
            lines.append(f"PersistentKeepalive = {p['persistent_keepalive']}")
    return "\n".join(lines) + "\n"


def _setup_wireguard(name: str, o: dict, peers: list[dict], rec: dict) -> None:
    key = o.get("private_key")
    if not key or key == "generate":  # the proto handler generates and commits a key
        key = run([WG, "genkey"]).stdout.strip()
        run(["uci", "set", f"network.{name}.private_key={key}"])
        run(["uci", "commit", "network"])
    _stop_wireguard(name)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run([WIREGUARD_GO, name], env=env, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    for _ in range(200):
        if os.path.exists(f"/var/run/wireguard/{name}.sock") and link_exists(name):
            break
        time.sleep(0.01)
    else:
        raise RuntimeError(f"wireguard-go did not create {name}")
    os.makedirs("/var/run/lab-standin", mode=0o700, exist_ok=True)
    conf = f"/var/run/lab-standin/{name}.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(_wg_config(o, peers, key))
    try:
        run([WG, "setconf", name, conf])
    finally:
        os.unlink(conf)
    if o.get("mtu"):
        ip("link", "set", name, "mtu", o["mtu"])
    for addr in as_list(o.get("addresses")):
        if ":" in addr:
            continue
        cidr = _cidr(addr, None)
        ip("addr", "replace", cidr, "dev", name)
        rec["addresses"].append(cidr)
    ip("link", "set", name, "up")
    for s in peers:
        p = s["options"]
        if p.get("route_allowed_ips") == "1" and p.get("disabled") != "1":
            for allowed in as_list(p.get("allowed_ips")):
                if ":" not in allowed:
                    ip("route", "replace", allowed, "dev", name)
                    rec["routes"].append(allowed)
    rec["peers"] = sorted(s["options"]["public_key"] for s in peers
                          if s["options"].get("public_key")
                          and s["options"].get("disabled") != "1")


def _wireguard_pids(name: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) >= 2 and argv[0].endswith(b"wireguard-go") and argv[1] == name.encode():
            pids.append(int(entry))
    return pids


def _stop_wireguard(name: str) -> None:
    if link_exists(name):
        ip("link", "del", name, check=False)
    for _ in range(100):
        pids = _wireguard_pids(name)
        if not pids:
            break
        if _ >= 50:  # wireguard-go exits when its TUN device goes; help it if it does not
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
        time.sleep(0.01)
    try:
        os.unlink(f"/var/run/wireguard/{name}.sock")
    except OSError:
        pass


def teardown(name: str, rec: dict) -> None:
    if rec.get("proto") == "wireguard":
        _stop_wireguard(name)
        return
    dev = rec.get("device")
    if not dev or not link_exists(dev):
        return
    if "default" in rec.get("routes", []):
        ip("route", "del", "default", "dev", dev, check=False)
    for cidr in rec.get("addresses", []):
        ip("addr", "del", cidr, "dev", dev, check=False)


# -- actions -------------------------------------------------------------------------------


def live_devices(state: dict) -> dict[str, str]:
    return {n: r["device"] for n, r in sorted(state.get("interfaces", {}).items())
            if r.get("up") and r.get("device") and link_exists(r["device"])}


def reload(restart: tuple[str, ...] = (), boot: bool = False) -> dict:
    cfg = read_config()
    state = load_state("netifd") or {"interfaces": {}, "bridges": {}}
    before = live_devices(state)
    ifaces = state["interfaces"]
    for name in list(ifaces):
        if name not in cfg["interfaces"]:
            log(f"interface {name}: removed")
            teardown(name, ifaces.pop(name))
    changed = []
    for name, o in cfg["interfaces"].items():
        rec = ifaces.get(name)
        if name in restart:
            changed.append(name)
        elif rec is None:
            if boot or o.get("auto", "1") != "0":
                changed.append(name)
        elif rec.get("sig") != signature(o):
            changed.append(name)
    for name in changed:  # down first: a device may move from one interface to another
        if name in ifaces:
            teardown(name, ifaces[name])
    sync_bridges(cfg["bridges"], state.get("bridges", {}))
    state["bridges"] = cfg["bridges"]
    for name in changed:
        o = cfg["interfaces"][name]
        if o.get("disabled") == "1" or (o.get("auto") == "0" and name not in restart):
            ifaces[name] = {"sig": signature(o), "device": l3_device(name, cfg["interfaces"]),
                            "proto": o.get("proto"), "up": False}
            continue
        log(f"interface {name}: {'restart' if name in ifaces else 'up'}")
        ifaces[name] = setup(name, cfg)
    save_state("netifd", state)
    if live_devices(state) != before:
        hotplug_firewall()
    return state


def hotplug_firewall() -> None:
    """fw4's hotplug reaction to interfaces coming up or going down."""
    if not load_state("firewall"):
        return
    here = os.path.dirname(os.path.abspath(__file__))
    run([sys.executable, "-S", "-s", "-E", "-B", os.path.join(here, "firewall.py"), "hotplug"],
        check=False)


def ifdown(name: str) -> None:
    state = load_state("netifd") or {"interfaces": {}, "bridges": {}}
    rec = state["interfaces"].get(name)
    if rec:
        before = live_devices(state)
        teardown(name, rec)
        rec["up"] = False
        save_state("netifd", state)
        if live_devices(state) != before:
            hotplug_firewall()


def stop() -> None:
    state = load_state("netifd") or {}
    for name, rec in state.get("interfaces", {}).items():
        teardown(name, rec)
    for bridge in state.get("bridges", {}):
        if link_exists(bridge):
            ip("link", "del", bridge, check=False)
    clear_state("netifd")


def main(argv: list[str]) -> int:
    action = argv[0] if argv else "help"
    if action in ("start", "boot"):
        reload(boot=True)
    elif action == "reload":
        reload()
    elif action == "restart":
        stop()
        reload(boot=True)
    elif action == "stop":
        stop()
    elif action in ("ifup", "ifdown"):
        if len(argv) < 2:
            print(f"Usage: {action} [-a] [-w] [interface]", file=sys.stderr)
            return 1
        name = argv[1]
        if name not in read_config()["interfaces"]:
            print(f"Interface {name} not found")
            return 0
        if action == "ifup":
            reload(restart=(name,))
        else:
            ifdown(name)
    elif action == "status":
        print(json.dumps(live_devices(load_state("netifd")), sort_keys=True))
    else:
        print("usage: netifd.py start|boot|reload|restart|stop|status|ifup IF|ifdown IF",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    main_guard(main)
