"""The README's field tables, generated from the schema (``python3 -m deploys.schema.docs``
prints them; ``tests/test_schema_docs.py`` checks README.md holds exactly this text)."""

from __future__ import annotations

from deploys.schema import CLIENT, CLIENT_PEER, COMMON, NETWORK, PEER_RECORD, REQUIRED, SERVER
from deploys.schema.base import Field

BEGIN, END = "<!-- schema:begin -->", "<!-- schema:end -->"


def _default(f: Field) -> str:
    if f.default_doc:
        return f.default_doc
    if f.default == REQUIRED:
        return "*required*"
    return "unset" if f.default is None else f"`{f.default!r}`"


def _type(f: Field) -> str:
    if f.kind == "int":
        return f"int {f.lo:g}..{f.hi:g}" if f.hi is not None else f"int ≥ {f.lo:g}"
    if f.kind == "enum":
        return " / ".join(repr(c) for c in f.choices)
    return f.kind


def table(fields: tuple[Field, ...]) -> str:
    rows = ["| field | type | default | meaning |", "| --- | --- | --- | --- |"]
    for f in fields:
        doc = f.doc.replace("|", "\\|")
        rows.append(f"| `{f.name}` | {_type(f).replace('|', '/')} | {_default(f)} | {doc} |")
    return "\n".join(rows)


def render() -> str:
    parts = [
        BEGIN,
        "#### Network-wide (`group_data/all.py`)", table(NETWORK),
        "#### Each entry of `vpn_peers`", table(PEER_RECORD.fields),
        "#### The server (group `server`)", table(COMMON + SERVER),
        "#### A client (group `clients`)", table(CLIENT_PEER + CLIENT),
        END,
    ]
    return "\n\n".join(parts)


if __name__ == "__main__":
    print(render())
