"""fw4 23.05's constant tables: ICMP types, DSCP classes, ct helpers, protocol numbers."""

from __future__ import annotations

import re

# ---------------------------------------------------------------------------------------------

_ANY = 0xFF
# name: (type, code_min, code_max)
ICMP4_TYPES: dict[str, tuple[int, int, int]] = {
    "any": (0xFF, 0, _ANY), "echo-reply": (0, 0, _ANY), "pong": (0, 0, _ANY),
    "destination-unreachable": (3, 0, _ANY), "network-unreachable": (3, 0, 0),
    "host-unreachable": (3, 1, 1), "protocol-unreachable": (3, 2, 2),
    "port-unreachable": (3, 3, 3), "fragmentation-needed": (3, 4, 4),
    "source-route-failed": (3, 5, 5), "network-unknown": (3, 6, 6), "host-unknown": (3, 7, 7),
    "network-prohibited": (3, 9, 9), "host-prohibited": (3, 10, 10),
    "TOS-network-unreachable": (3, 11, 11), "TOS-host-unreachable": (3, 12, 12),
    "communication-prohibited": (3, 13, 13), "host-precedence-violation": (3, 14, 14),
    "precedence-cutoff": (3, 15, 15), "source-quench": (4, 0, _ANY), "redirect": (5, 0, _ANY),
    "network-redirect": (5, 0, 0), "host-redirect": (5, 1, 1), "TOS-network-redirect": (5, 2, 2),
    "TOS-host-redirect": (5, 3, 3), "echo-request": (8, 0, _ANY), "ping": (8, 0, _ANY),
    "router-advertisement": (9, 0, _ANY), "router-solicitation": (10, 0, _ANY),
    "time-exceeded": (11, 0, _ANY), "ttl-exceeded": (11, 0, _ANY),
    "ttl-zero-during-transit": (11, 0, 0), "ttl-zero-during-reassembly": (11, 1, 1),
    "parameter-problem": (12, 0, _ANY), "ip-header-bad": (12, 0, 0),
    "required-option-missing": (12, 1, 1), "timestamp-request": (13, 0, _ANY),
    "timestamp-reply": (14, 0, _ANY), "address-mask-request": (17, 0, _ANY),
    "address-mask-reply": (18, 0, _ANY),
}
# 23.05 (598d9fb) treats packet-too-big and neighbour solicitation/advertisement as code 0 only:
# the real fixture renders them as "2 . 0", "135 . 0", "136 . 0".
ICMP6_TYPES: dict[str, tuple[int, int, int]] = {
    "destination-unreachable": (1, 0, _ANY), "no-route": (1, 0, 0),
    "communication-prohibited": (1, 1, 1), "address-unreachable": (1, 3, 3),
    "port-unreachable": (1, 4, 4), "packet-too-big": (2, 0, 0), "time-exceeded": (3, 0, _ANY),
    "ttl-exceeded": (3, 0, _ANY), "ttl-zero-during-transit": (3, 0, 0),
    "ttl-zero-during-reassembly": (3, 1, 1), "parameter-problem": (4, 0, _ANY),
    "bad-header": (4, 0, 0), "unknown-header-type": (4, 1, 1), "unknown-option": (4, 2, 2),
    "echo-request": (128, 0, _ANY), "ping": (128, 0, _ANY), "echo-reply": (129, 0, _ANY),
    "pong": (129, 0, _ANY), "multicast-listener-query": (130, 0, _ANY),
    "multicast-listener-report": (131, 0, _ANY), "multicast-listener-done": (132, 0, _ANY),
    "router-solicitation": (133, 0, _ANY), "router-advertisement": (134, 0, _ANY),
    "neighbour-solicitation": (135, 0, 0), "neighbor-solicitation": (135, 0, 0),
    "neighbour-advertisement": (136, 0, 0), "neighbor-advertisement": (136, 0, 0),
    "redirect": (137, 0, _ANY), "router-renumbering": (138, 0, _ANY),
    "node-info-query": (139, 0, _ANY), "node-info-response": (140, 0, _ANY),
    "v2-multicast-listener-report": (143, 0, _ANY),
}

_DSCP_CLASSES = {
    "CS0": 0x00, "CS1": 0x08, "CS2": 0x10, "CS3": 0x18, "CS4": 0x20, "CS5": 0x28, "CS6": 0x30,
    "CS7": 0x38, "BE": 0x00, "LE": 0x01, "AF11": 0x0A, "AF12": 0x0C, "AF13": 0x0E, "AF21": 0x12,
    "AF22": 0x14, "AF23": 0x16, "AF31": 0x1A, "AF32": 0x1C, "AF33": 0x1E, "AF41": 0x22,
    "AF42": 0x24, "AF43": 0x26, "EF": 0x2E,
}

# /usr/share/firewall4/helpers; none is "available" on a default image (no nf_conntrack_* module)
_CT_HELPERS = {"amanda", "ftp", "RAS", "Q.931", "irc", "netbios-ns", "pptp", "sane", "sip",
               "snmp", "tftp", "rtsp"}

# protocol names -> numbers (subset of /etc/protocols), to compare "esp" with "50"
PROTO_NUMBERS = {
    "icmp": 1, "igmp": 2, "ipencap": 4, "tcp": 6, "egp": 8, "udp": 17, "ipv6": 41, "rsvp": 46,
    "gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58, "eigrp": 88, "ospf": 89, "ipip": 94,
    "etherip": 97, "pim": 103, "vrrp": 112, "l2tp": 115, "sctp": 132, "udplite": 136,
    "mpls-in-ip": 137,
}
_PROTO_ALIASES = {"icmpv6": "ipv6-icmp", "icmp6": "ipv6-icmp", "ipv6-icmp": "ipv6-icmp"}

_ZONE_NAME_RE = re.compile(r"^[A-Za-z_.][A-Za-z0-9/_.-]*$")
_HOOK_CHAINS = ("input", "forward", "output")
_VERDICTS = ("accept", "reject", "drop")

# netifd protocols whose L3 device is "<proto>-<interface>" (approximation of netifd naming)
_PREFIXED_L3 = {"pppoe", "pppoa", "ppp", "3g", "l2tp", "pptp", "6in4", "6to4", "6rd", "dslite",
                "464xlat", "map", "gre", "gretap", "grev6", "vti", "vtiv6", "xfrm", "qmi",
                "ncm", "mbim", "modemmanager"}
_NAME_IS_L3 = {"wireguard", "openvpn", "vxlan", "vxlan6", "relay"}
