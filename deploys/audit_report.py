"""The drift audit's findings and how they are shown: a table per host, JSON for machines.

A :class:`HostAudit` is one host's list of :class:`Finding` (``ok``, ``drift`` -- differs from
the plan, makes the run exit non-zero --, ``warn`` -- worth a look, not drift: a peer not
connected, a foreign section kept disabled -- or ``info``) and the raw ``values`` the findings
come from (the facts' values, secrets already removed by the facts).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("drift", "warn", "ok", "info")


@dataclass
class Finding:
    area: str  # config, proof, peer, wireguard, service, models, tunnel, ...
    item: str  # the section, peer, file, model ... it is about
    status: str  # drift | warn | ok | info
    detail: str = ""


@dataclass
class HostAudit:
    host: str
    role: str
    findings: list[Finding] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def add(self, area: str, item: str, status: str, detail: str = "") -> None:
        assert status in STATUSES, status
        self.findings.append(Finding(area, item, status, detail))

    @property
    def drift(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "drift"]

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "role": self.role, "drift": bool(self.drift),
                "findings": [asdict(f) for f in self.findings], "values": self.values}


#: host name -> its audit, filled by ``deploys/audit.py`` as each host is read (one run).
RESULTS: dict[str, HostAudit] = {}


def table(audit: HostAudit) -> str:
    """The human table of one host: a header line, then ``AREA ITEM STATUS DETAIL`` rows."""
    n = len(audit.drift)
    head = f"{audit.host} ({audit.role}): " + (f"{n} drift" if n else "no drift")
    rows = [(f.area, f.item, f.status.upper() if f.status == "drift" else f.status, f.detail)
            for f in audit.findings]
    if not rows:
        return head
    widths = [max(len(r[i]) for r in rows + [("AREA", "ITEM", "STATUS", "")]) for i in range(3)]
    lines = [head, "  " + "  ".join(h.ljust(w) for h, w in zip(("AREA", "ITEM", "STATUS"),
                                                               widths, strict=True)) + "  DETAIL"]
    for r in rows:
        lines.append(("  " + "  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True))
                      + "  " + r[3]).rstrip())
    return "\n".join(lines)


def cross_check(audits: list[HostAudit]) -> list[HostAudit]:
    """Checks between hosts read in the same run: each client's tunnel config names the
    public key the LIVE router's interface has. Adds the finding to the client's audit and
    returns the audits it changed."""
    router = next((a for a in audits if a.role == "router"), None)
    live = ((router.values.get("wireguard") or {}).get("public_key")
            if router is not None else None)
    changed = []
    for a in audits:
        keys = (a.values.get("tunnel") or {}).get("peer_public_keys") if a.role == "client" \
            else None
        if not live or not keys:
            continue
        ok = keys == [live]
        a.add("tunnel", "router key", "ok" if ok else "drift",
              "= the live router's public key" if ok else
              f"{', '.join(keys)} is not the live router's {live}")
        changed.append(a)
    return changed


def document(audits: list[HostAudit]) -> dict[str, Any]:
    """The JSON document of a whole audit run."""
    return {"drift": any(a.drift for a in audits),
            "hosts": {a.host: a.to_json() for a in audits}}


def dumps(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=False, default=str)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def human_age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
