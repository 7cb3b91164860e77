"""nft rendering of the model (``fw4 print``): a ruleset real ``nft -c -f`` accepts."""

from __future__ import annotations

import re

from firewall.model import Firewall
from firewall.syntax import _nft_set


def render_nft(fw: Firewall, *, user_includes: bool = True) -> str:
    """Render the chains as an nftables ruleset in fw4's layout (``table inet fw4``).

    The result can be checked with ``nft -c -f`` and loaded with ``nft -f``.  Rule lines equal
    fw4 23.05's for the modelled features; not rendered: flowtables, ipset definitions, redirect
    (DNAT) rules, mark/dscp/notrack/helper rules.

    Example::

        Path("/tmp/fw4.nft").write_text(render_nft(build(config)))
    """
    out = ["table inet fw4", "flush table inet fw4", "", "table inet fw4 {", "\t#",
           "\t# Defines", "\t#", ""]
    for z in fw.zones:
        ident = re.sub(r"^([0-9])", r"_\1", z.name)
        out.append(f"\tdefine {ident}_devices = {_nft_set(z.devices, force=True)}")
        out.append(f"\tdefine {ident}_subnets = {_nft_set(z.related_subnets, force=True)}")
        out.append("")
    out += ["", "\t#", "\t# User includes", "\t#", ""]
    if user_includes:
        out.append('\tinclude "/etc/nftables.d/*.nft"')
    out += ["", "", "\t#", "\t# Filter rules", "\t#", ""]
    headers = {"dstnat": "NAT rules", "raw_prerouting": "Raw rules (notrack)",
               "mangle_prerouting": "Mangle rules"}
    for name, chain in fw.chains.items():
        for e in chain.entries:
            if any(c.startswith("<ipset ") for c in e.match.conditions):
                raise NotImplementedError(f"render_nft does not render ipsets ({e.comment})")
        if name in headers:
            out += ["", "\t#", f"\t# {headers[name]}", "\t#", ""]
        out.append(f"\tchain {name} {{")
        if chain.hook:
            out.append(f"\t\ttype {chain.type} hook {chain.hook} priority {chain.priority}; "
                       f"policy {chain.policy or 'accept'};")
        for e in chain.entries:
            out.append(f"\t\t{e.nft()}")
        out += ["\t}", ""]
    out.append("}")
    return "\n".join(out) + "\n"
