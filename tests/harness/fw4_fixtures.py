"""Firewall test helpers: the uci fixture configs as export sections, small config editors,
and a parser of real ``fw4 print`` rulesets (tests/fixtures/fw4). Used by tests/test_firewall_*.py.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any

from firewall import Firewall, Flow

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DEVICES = {"lan": "br-lan", "wan": "wan", "wan6": "wan", "wg0": "wg0", "dmz": "lan4",
           "loopback": "lo"}
AI = "192.168.100.10"


def parse_uci_config(text: str) -> list[dict[str, Any]]:
    """Parse a uci config file (``config``/``option``/``list`` lines) into export sections."""
    sections: list[dict[str, Any]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line)
        if words[0] == "config":
            name = words[2] if len(words) > 2 else None
            sections.append({"name": name, "type": words[1], "options": {}})
        elif words[0] == "option":
            sections[-1]["options"][words[1]] = words[2]
        elif words[0] == "list":
            sections[-1]["options"].setdefault(words[1], []).append(words[2])
        else:
            raise ValueError(f"unexpected line {raw!r}")
    return sections


def load_config(fixture: str, which: str) -> dict[str, list[dict[str, Any]]]:
    data = json.loads((FIXTURES / "uci" / fixture).read_text())
    return {pkg: parse_uci_config(text) for pkg, text in data[which].items()}


def target_config() -> dict[str, list[dict[str, Any]]]:
    return load_config("wg_dmz_named_batch_first_apply.json", "final_config")


def factory_config() -> dict[str, list[dict[str, Any]]]:
    return load_config("wg_dmz_named_batch_first_apply.json", "initial_config")


def apply_uci_set(config: dict[str, list[dict[str, Any]]], argv: list[str]) -> None:
    """Apply one ``uci set pkg.section[.option]=value`` command (named sections only)."""
    assert argv[:2] == ["uci", "set"], argv
    path, value = argv[2].split("=", 1)
    pkg, sec, *opt = path.split(".")
    sections = config[pkg]
    if not opt:
        sections.append({"name": sec, "type": value, "options": {}})
        return
    target = next(s for s in sections if s["name"] == sec)
    target["options"][opt[0]] = value


def with_sections(config: dict[str, Any], *sections: dict[str, Any], before: str | None = None,
                  pkg: str = "firewall") -> dict[str, Any]:
    """A copy of ``config`` with sections added (before the first section of type ``before``)."""
    cfg = copy.deepcopy(config)
    pos = len(cfg[pkg])
    if before is not None:
        pos = next(i for i, s in enumerate(cfg[pkg]) if s["type"] == before)
    cfg[pkg][pos:pos] = [copy.deepcopy(s) for s in sections]
    return cfg


def sec(type_: str, section_name: str | None = None, /, **options: Any) -> dict[str, Any]:
    """A uci section in export form; ``options`` are its uci options (``name=`` included)."""
    return {"name": section_name, "type": type_, "options": options}


def set_option(config: dict[str, Any], pkg: str, type_: str, where: dict[str, str],
               **options: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(config)
    s = next(s for s in cfg[pkg] if s["type"] == type_
             and all(s["options"].get(k) == v for k, v in where.items()))
    s["options"].update(options)
    return cfg


def parse_real_ruleset(text: str) -> dict[str, dict[str, Any]]:
    """Chains of an ``fw4 print`` ruleset: hook, policy and the ordered rule lines."""
    chains: dict[str, dict[str, Any]] = {}
    cur: dict[str, Any] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        m = re.fullmatch(r"chain (\S+) \{", line)
        if m:
            cur = chains[m[1]] = {"hook": None, "type": None, "priority": None,
                                  "policy": None, "rules": []}
            continue
        if cur is None or not line:
            continue
        if line == "}":
            cur = None
            continue
        m = re.fullmatch(r"type (\w+) hook (\w+) priority (\w+); policy (\w+);", line)
        if m:
            cur.update(type=m[1], hook=m[2], priority=m[3], policy=m[4])
        else:
            cur["rules"].append(line)
    return chains


def verdict_token(rule_line: str) -> str:
    """The verdict of a rendered rule line: ``accept``, ``jump x``, ``reject``... or ``""``."""
    body = re.sub(r' comment "[^"]*"$', "", rule_line)
    m = re.search(r"\b(jump|goto) (\S+)$", body)
    if m:
        return f"{m[1]} {m[2]}"
    m = re.search(r"\b(accept|drop|return|masquerade)$", body)
    if m:
        return m[1]
    if re.search(r"\breject( with .*)?$", body):
        return "reject" + (re.search(r"\breject( with .*)?$", body)[1] or "")  # type: ignore
    return ""


def real_devices(text: str) -> dict[str, list[str]]:
    return {m[1]: re.findall(r'"([^"]+)"', m[2])
            for m in re.finditer(r"define (\S+)_devices = \{([^}]*)\}", text)}


def verdict(fw: Firewall, *args: Any, **kw: Any) -> str:
    return fw.verdict(Flow(*args, **kw)).action


def fixture_plan(**overrides: Any) -> Any:
    """A stand-in for ``deploys.plan.Plan`` matching :func:`target_config` (the attributes the
    proof reads): peers alice (10.10.10.2) and bob (10.10.10.3), server 192.168.100.10.

    ``peers`` overrides take ``{name: {"address": ..., "access": [...]}}``; other keywords
    replace plan attributes (``lan_to_dmz=True``, ``policy_tests=[...]``...).
    """
    import ipaddress
    from types import SimpleNamespace

    cfg = target_config()
    keys = {s["options"]["description"].split("-")[0]: s["options"]["public_key"]
            for s in cfg["network"] if s["type"] == "wireguard_wg0"}
    peers = overrides.pop("peers", {"alice": {"address": "10.10.10.2"},
                                     "bob": {"address": "10.10.10.3"}})
    plan = SimpleNamespace(
        lan_subnet=ipaddress.ip_network("192.168.1.0/24"),
        dmz_subnet=ipaddress.ip_network("192.168.100.0/24"),
        vpn_subnet=ipaddress.ip_network("10.10.10.0/24"),
        vpn_router_address=ipaddress.ip_address("10.10.10.1"),
        dmz_router_address=ipaddress.ip_address("192.168.100.1"),
        server_address=ipaddress.ip_address(AI), ollama_port=11434, vpn_port=51820,
        vpn_interface="wg0", lan_to_dmz=False,
        enabled_peers=[SimpleNamespace(name=n, address=ipaddress.ip_address(p["address"]),
                                       public_key=keys.get(n, f"key-{n}"), preshared_key="psk",
                                       section=f"wgpeer_{n}", **{k: v for k, v in p.items()
                                                                 if k != "address"})
                       for n, p in peers.items()],
    )
    for k, v in overrides.items():
        setattr(plan, k, v)
    return plan


def with_psk(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with a preshared key on every peer section (invariant 7 then holds)."""
    cfg = copy.deepcopy(config)
    for s in cfg["network"]:
        if s["type"] == "wireguard_wg0":
            s["options"].setdefault("preshared_key", "sha256:00")
    return cfg
