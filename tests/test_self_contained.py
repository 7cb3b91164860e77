"""The repository is self-contained: no test, harness, stand-in or product module reads a file
outside the clone (the research folder ``shared/`` that sits beside the developers' checkout is
not there on a user's machine, nor in CI's copy of the checkout)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"

# A path built from the repository's parent, or a literal path into the research folder.
ESCAPES = re.compile(
    r"""parents\[\d\]\.parent\b|REPO\.parent\b|\.parent\s*/\s*["']shared["']|/work/shared|"""
    r"""["']\.\./shared"""
)


def _sources() -> list[Path]:
    out = []
    for top in ("deploys", "facts", "firewall", "operations", "inventories", "templates", "tests",
                ".ci"):
        for p in (REPO / top).rglob("*"):
            if p.is_file() and "fixtures" not in p.relative_to(REPO).parts[:2] \
                    and p.suffix in {".py", ".sh", ".j2", ""} and "__pycache__" not in p.parts:
                out.append(p)
    return out


def test_no_source_reaches_outside_the_clone():
    offenders = []
    for path in _sources():
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if ESCAPES.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not offenders, "paths outside the repository:\n" + "\n".join(offenders)


def test_fixture_sets_are_in_the_repository():
    counts = {name: len(list((FIXTURES / name).glob("*.json"))) for name in ("uci", "ollama-api")}
    assert counts["uci"] >= 40, counts
    assert counts["ollama-api"] >= 87, counts
    assert (FIXTURES / "fw4" / "wg_dmz_target.nft").is_file()
    assert (FIXTURES / "fw4" / "factory_2305.nft").is_file()
    for name in ("uci", "fw4", "ollama-api"):
        assert (FIXTURES / name / "README.md").is_file(), f"{name}: provenance README missing"
    assert "where it came from" in (FIXTURES / "README.md").read_text()
