"""Network-wide fields (``inventories/group_data/all.py``) and the fields of a VPN peer.

Network-wide fields reach every host; they must have the same value on every host (one value
per concept), except ``vpn_keepalive``, which a client host may set for its own peer.
"""

from __future__ import annotations

import datetime
import ipaddress
import re

from deploys.keys import is_valid_key
from deploys.schema.base import REQUIRED, Field

UCI_NAME = r"[A-Za-z0-9_]+"
NETDEV = r"[A-Za-z0-9_.-]{1,15}"
HOST_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = rf"(?=.{{1,253}}$){HOST_LABEL}(\.{HOST_LABEL})*"
MAC = r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}"
LEASETIME = r"infinite|[0-9]+[smhdw]?"
PEER_KINDS = ("macos", "phone", "tablet", "linux", "windows", "other")
PEER_PREFIX = "wgpeer_"
#: Interfaces of a stock OpenWrt router, and the DMZ interface this tool creates.
ROUTER_OWNED = ("lan", "wan", "wan6", "loopback", "dmz")
#: ``access`` destinations: a name (``server``, ``dmz``) or an address, and an optional port.
ACCESS = (r"(server|dmz|[0-9]{1,3}(\.[0-9]{1,3}){3})(:[0-9]{1,5}(-[0-9]{1,5})?)?"
          r"(/(tcp|udp|icmp|esp|gre|all))?")
POLICY_END = r"[A-Za-z0-9_.:/-]{1,64}"


def endpoint_problem(value: str) -> str | None:
    """Why ``value`` is not a DNS name or IP address the peers can dial (None when it is)."""
    if ":" in value:
        try:
            ipaddress.IPv6Address(value)
            return None
        except ValueError:
            return "not a DNS name or IP address"
    labels = value.split(".")
    if all(label.isascii() and label.isdigit() for label in labels):
        try:
            ipaddress.IPv4Address(value)
            return None
        except ValueError:
            return "not a valid IPv4 address (and a DNS name cannot be all digits)"
    if not re.fullmatch(HOSTNAME, value, re.ASCII) or labels[-1].isdigit():
        return "not a DNS name or IP address"
    return None


def mac_problem(value: str) -> str | None:
    """A static lease needs a unicast, non-zero MAC."""
    octets = [int(o, 16) for o in value.split(":")]
    if octets[0] & 1:
        return "a multicast/broadcast MAC cannot be a device's address"
    if not any(octets):
        return "the all-zero MAC is not a device's address"
    return None


def _peer_name(value: str) -> str | None:
    if len(PEER_PREFIX + value) > 64:
        return "too long (at most 57 characters)"
    return None


def _access(value: str) -> str | None:
    target, _, port = value.split("/", 1)[0].partition(":")
    lo, _, hi = port.partition("-")
    if port and not all(1 <= int(p) <= 65535 for p in (lo, hi or lo)):
        return "port out of range 1-65535"
    if hi and int(hi) < int(lo):
        return "port range upside down"
    if target[0].isdigit():
        try:
            ipaddress.IPv4Address(target)
        except ValueError:
            return "not an IPv4 address"
    return None


def _iso_date(value: str) -> str | None:
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return "not a real date"
    return None


def peer_fields(prefix: str, hosts: tuple[str, ...], kind_default: str) -> tuple[Field, ...]:
    """The fields of a peer: ``vpn_<x>`` in a client's host data, ``<x>`` in ``vpn_peers``."""
    p = prefix
    return (
        Field(f"{p}name", "str", "peer name; the router section is wgpeer_<name>",
              REQUIRED if not p else None, hosts, pattern=UCI_NAME,
              hint="peer names must be UCI section names: [A-Za-z0-9_]+", check=_peer_name,
              default_doc="the host name, [A-Za-z0-9_] only" if p else ""),
        Field(f"{p}kind", "enum", "device kind", kind_default, hosts, choices=PEER_KINDS,
              hint="expected one of " + ", ".join(PEER_KINDS)),
        Field(f"{p}address", "ipv4", "its VPN address (a /32 on the router)", None, hosts,
              default_doc="assigned automatically"),
        Field(f"{p}keepalive", "int", "PersistentKeepalive in its config (seconds, 0 = off)",
              None, hosts, lo=0, hi=65535, cli="int", default_doc="vpn_keepalive"),
        Field(f"{p}enabled", "bool", "False keeps it in the inventory but off the router",
              True, hosts, cli="bool"),
        Field(f"{p}public_key", "str", "bring your own key pair: no private key is stored",
              None, hosts, pattern=r"[A-Za-z0-9+/]{43}=",
              hint="not a WireGuard public key (44 chars base64)",
              check=lambda v: None if is_valid_key(v) else
              "not a WireGuard public key (44 chars base64)",
              default_doc="generated"),
        Field(f"{p}access", "list", "what the peer may reach: 'server[:port]', 'dmz[:port]' or "
              "'<DMZ address>[:port]'", None, hosts, cli="csv",
              item=Field("access", "str", "a destination", pattern=ACCESS, check=_access,
                         hint="expected a destination like 'server:11434', 'dmz:443' or "
                              "'192.168.100.20:22'"),
              hint="expected a list of destinations like ['server:11434']",
              default_doc="the server's API port"),
        Field(f"{p}expires", "str", "date after which the peer is off the VPN", None, hosts,
              pattern=r"[0-9]{4}-[0-9]{2}-[0-9]{2}", check=_iso_date,
              hint="expected an ISO date 'YYYY-MM-DD'", convert=datetime.date.fromisoformat),
    )


#: Keys of an entry of ``vpn_peers``.
PEER_RECORD = Field(
    "vpn_peers[]", "record", "a device without SSH", hosts=("peer",),
    fields=peer_fields("", ("peer",), "phone"), unknown_why="unknown peer field",
    hint="expected a dict with at least 'name'",
)

POLICY_TEST = Field(
    "policy_tests[]", "record", "a reachability test", hosts=("all",),
    fields=(
        Field("src", "str", "where the probe starts", REQUIRED, pattern=POLICY_END,
              hint="expected a source like 'vpn', 'dmz', 'lan' or a peer name"),
        Field("dst", "str", "what it tries to reach", REQUIRED, pattern=POLICY_END,
              hint="expected a destination like 'server:11434' or 'lan'"),
        Field("expect", "enum", "the expected verdict", REQUIRED, choices=("accept", "deny")),
        Field("proto", "enum", "protocol", None, choices=("tcp", "udp", "icmp")),
    ),
    hint="expected a dict {'src', 'dst', 'expect'[, 'proto']}",
)

NETWORK: tuple[Field, ...] = (
    Field("vpn_subnet", "ipv4net", "the VPN's IPv4 subnet", "10.10.10.0/24", hi=30),
    Field("vpn_router_address", "ipv4", "the router's address on the VPN interface", None,
          default_doc="first host of vpn_subnet"),
    Field("vpn_port", "int", "WireGuard UDP port, the only port open on the WAN", 51820,
          lo=1, hi=65535, cli="int"),
    Field("vpn_interface", "str", "the router's WireGuard interface (UCI section and netdev)",
          "wg0", pattern=r"[A-Za-z0-9_]{1,15}",
          hint="must be a UCI section name and interface name: 1-15 of [A-Za-z0-9_]"),
    Field("vpn_endpoint", "str", "public DNS name or IP the peers dial (your DDNS name)",
          REQUIRED, check=endpoint_problem, hint="not a DNS name or IP address"),
    Field("vpn_keepalive", "int", "default PersistentKeepalive of peers (seconds, 0 = off)", 25,
          hosts=("all", "clients"), lo=0, hi=65535, cli="int"),
    Field("vpn_peers", "list", "devices without SSH (phones, tablets): peer dicts", [],
          item=PEER_RECORD, cli="json", hint="expected a list of peer dicts"),
    Field("lan_subnet", "ipv4net", "the home LAN (never reachable from VPN or DMZ)",
          "192.168.1.0/24", hi=30),
    Field("dmz_subnet", "ipv4net", "the server's network", "192.168.100.0/24", hi=30),
    Field("dmz_router_address", "ipv4", "the router's address in the DMZ", None,
          default_doc="first host of dmz_subnet"),
    Field("dmz_device", "str", "router port the server is plugged into (taken out of br-lan)",
          "lan4", pattern=NETDEV, hint="not a network device name (1-15 of [A-Za-z0-9_.-])"),
    Field("dmz_dhcp_start", "int", "first host number of the DMZ DHCP pool", 100,
          lo=1, hi=65534, cli="int"),
    Field("dmz_dhcp_limit", "int", "size of the DMZ DHCP pool", 50, lo=1, hi=65534, cli="int"),
    Field("dmz_dhcp_leasetime", "str", "DMZ DHCP lease time", "12h", pattern=LEASETIME,
          hint="expected a lease time like '12h', '3600' or 'infinite'"),
    Field("lan_to_dmz", "bool", "allow LAN -> DMZ (to administer the server from the LAN)",
          False, cli="bool"),
    Field("ollama_port", "int", "the server's API port: Ollama or HAProxy, firewall, clients",
          11434, lo=1, hi=65535, cli="int"),
    Field("secrets_dir", "str", "where keys are kept (relative to the repo root)", "secrets",
          pattern=r"[^\x00-\x1f]{1,1024}", hint="expected a directory path"),
    Field("peer_output_dir", "str", "configs and QR codes of peers without SSH", "out/peers",
          pattern=r"[^\x00-\x1f]{1,1024}", hint="expected a directory path"),
    Field("rotate_peers", "list", "peers whose keys are replaced in this run", [], cli="csv",
          item=Field("rotate_peers", "str", "a peer name", pattern=UCI_NAME,
                     hint="peer names must be UCI section names: [A-Za-z0-9_]+"),
          hint="expected a list of peer names",
          alt=Field("rotate_peers", "str", "comma-separated peer names",
                    pattern=rf"{UCI_NAME}(,{UCI_NAME})*",
                    hint="expected peer names, comma-separated: [A-Za-z0-9_]+",
                    convert=lambda v: v.split(","))),
    Field("policy_tests", "list", "reachability tests {'src', 'dst', 'expect'[, 'proto']}", [],
          item=POLICY_TEST, cli="json", hint="expected a list of policy test dicts"),
    Field("firewall_acknowledge", "list", "firewall sections whose unmodelled constructs you "
          "accept (uci section names)", [], cli="csv",
          item=Field("firewall_acknowledge", "str", "a uci section name", pattern=UCI_NAME,
                     hint="expected a uci section name: [A-Za-z0-9_]+"),
          hint="expected a list of uci section names"),
    # -- options of one run (usually given as --data) --
    Field("forget_peer_files", "list", "phones whose config and QR code the controller deletes "
          "once imported (run option)", [], cli="csv",
          item=Field("forget_peer_files", "str", "a peer name", pattern=UCI_NAME,
                     hint="peer names must be UCI section names: [A-Za-z0-9_]+"),
          hint="expected a list of peer names",
          alt=Field("forget_peer_files", "str", "comma-separated peer names",
                    pattern=rf"{UCI_NAME}(,{UCI_NAME})*",
                    hint="expected peer names, comma-separated: [A-Za-z0-9_]+",
                    convert=lambda v: v.split(","))),
    Field("audit_json", "str", "deploys/audit.py: '1' prints JSON on stdout, a path writes it "
          "there (run option)", None, pattern=r"[^\x00-\x1f]{1,1024}",
          hint="expected 1 or a file path"),
    Field("audit_stale_after", "int", "deploys/audit.py: seconds without a handshake before a "
          "peer is 'not connected' (run option)", 180, lo=1, hi=7 * 86400, cli="int"),
    Field("verify_json", "str", "deploys/verify.py: write the results as JSON to this file "
          "(run option)", None, pattern=r"[^\x00-\x1f]{1,1024}", hint="expected a file path"),
    Field("verify_junit", "str", "deploys/verify.py: write JUnit XML to this file (run option)",
          None, pattern=r"[^\x00-\x1f]{1,1024}", hint="expected a file path"),
)

#: Per-host fields that are not role settings: which hosts are managed.
COMMON: tuple[Field, ...] = (
    Field("configure_host", "bool", "False: the host is in the inventory for its data only",
          True, hosts=("router", "server", "clients"), cli="bool"),
    Field("rollback_seconds", "int", "the router's rollback guard: seconds before an "
          "unconfirmed network/firewall change is restored (0: no guard)", 90,
          hosts=("router",), lo=0, hi=3600, cli="int"),
)

#: A client host's peer fields (``vpn_`` prefix); ``vpn_keepalive`` is in NETWORK.
CLIENT_PEER: tuple[Field, ...] = tuple(
    f for f in peer_fields("vpn_", ("clients",), "macos") if f.name != "vpn_keepalive"
)
