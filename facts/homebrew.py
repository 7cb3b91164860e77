"""Facts about Homebrew on a Mac: formulas (installed, linked, Cellar versions, ``brew info``)
and ``brew services``. Parsers are pure functions of the command's output.

    pyinfra inventories/home.py fact facts.homebrew.Homebrew --limit server
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from typing import Any

from pyinfra.api import FactBase

from facts.macos import SECTION_SEP, split_sections
from facts.versions import sort_key

#: Where Homebrew lives on Apple silicon (``/usr/local`` is Intel).
BREW_PREFIXES = ("/opt/homebrew", "/usr/local")
#: Environment for every brew command run by this project (no surprise self-updates).
BREW_ENV = {
    "HOMEBREW_NO_AUTO_UPDATE": "1",
    "HOMEBREW_NO_INSTALL_CLEANUP": "1",
    "HOMEBREW_NO_ENV_HINTS": "1",
    "HOMEBREW_NO_ANALYTICS": "1",
}


# -- parsers ----------------------------------------------------------------------------------


def parse_brew_versions(opt_target: str | None, cellar: Iterable[str]) -> dict[str, Any]:
    """A formula's state from its ``opt`` link target (``../Cellar/ollama/0.32.3``) and its
    Cellar listing: ``{"installed": bool, "version": <linked>, "versions": [...]}``."""
    versions = sorted((v.strip() for v in cellar if v.strip()), key=sort_key)
    linked = opt_target.rstrip("/").rsplit("/", 1)[-1] if opt_target else None
    return {
        "installed": bool(linked or versions),
        "version": linked or (versions[-1] if versions else None),
        "versions": versions,
    }


def parse_brew_info(text: str) -> dict[str, dict[str, Any]]:
    """``brew info --json=v2 --formula <names>`` -> ``{name: {"stable", "installed",
    "linked_keg", "outdated", "pinned"}}`` (``{}`` when the JSON is unreadable)."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError):
        return {}
    result = {}
    for formula in data.get("formulae", []) if isinstance(data, dict) else []:
        result[formula.get("name")] = {
            "stable": (formula.get("versions") or {}).get("stable"),
            "installed": [i.get("version") for i in formula.get("installed", [])],
            "linked_keg": formula.get("linked_keg"),
            "outdated": bool(formula.get("outdated")),
            "pinned": bool(formula.get("pinned")),
        }
    return result


def parse_brew_services(text: str) -> list[dict[str, Any]]:
    """``brew services list --json`` -> ``[{"name", "status", "user", "file", "exit_code"}]``."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError):
        return []
    keep = ("name", "status", "user", "file", "exit_code")
    return [{k: item.get(k) for k in keep} for item in data if isinstance(item, dict)]


def brew_script(formulas: Sequence[str], info: bool = False, refresh: bool = False) -> str:
    names = " ".join(shlex.quote(f) for f in formulas)
    env = " ".join(f"{k}={v}" for k, v in BREW_ENV.items())
    parts = [
        f"echo '{SECTION_SEP} brew'",
        "p=",
        "for d in " + " ".join(BREW_PREFIXES) + '; do [ -x "$d/bin/brew" ] && { p=$d; break; }; '
        "done",
        'echo "prefix=$p"',
        f'if [ -n "$p" ]; then for f in {names}; do '
        'echo "formula $f $(readlink "$p/opt/$f" 2>/dev/null)"; '
        'ls -1 "$p/Cellar/$f" 2>/dev/null | sed "s/^/cellar $f /"; done; fi',
    ]
    if info:
        refresh_cmd = f'{env} "$p/bin/brew" update --quiet >/dev/null 2>&1; ' if refresh else ""
        parts += [
            f"echo '{SECTION_SEP} brew-info'",
            f'if [ -n "$p" ]; then {refresh_cmd}'
            f'{env} "$p/bin/brew" info --json=v2 --formula {names} 2>/dev/null; fi',
        ]
    return "; ".join(parts)


def parse_brew_block(lines: Iterable[str]) -> dict[str, Any]:
    prefix = None
    opt: dict[str, str | None] = {}
    cellar: dict[str, list[str]] = {}
    for line in lines:
        if line.startswith("prefix="):
            prefix = line[len("prefix=") :].strip() or None
        elif line.startswith("formula "):
            _, name, *rest = line.split(" ", 2)
            opt[name] = rest[0].strip() if rest and rest[0].strip() else None
            cellar.setdefault(name, [])
        elif line.startswith("cellar "):
            _, name, version = line.split(" ", 2)
            cellar.setdefault(name, []).append(version)
    return {
        "prefix": prefix,
        "formulas": {
            name: parse_brew_versions(opt.get(name), cellar.get(name, [])) for name in opt
        },
    }


# -- single facts -----------------------------------------------------------------------------


class Homebrew(FactBase):
    """Homebrew prefix and formula versions, read from the file system (no Ruby start-up):
    ``{"prefix": "/opt/homebrew", "formulas": {"ollama": {"installed": True, "version":
    "0.32.3", "versions": ["0.32.3"]}}}``; ``prefix`` is ``None`` without Homebrew.

    Example::

        pyinfra inventories/home.py fact facts.homebrew.Homebrew formulas='["ollama","haproxy"]'
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, formulas: Sequence[str] = ("ollama", "haproxy")) -> str:
        return brew_script(list(formulas))

    def process(self, output: list[str]) -> dict[str, Any]:
        parts = {words[0]: body for words, body in split_sections(output) if words}
        return parse_brew_block(parts.get("brew", []))


class BrewServices(FactBase):
    """``brew services list --json`` (slow: starts Ruby) -> ``[{"name": "ollama", "status":
    "started", "user": "admin", "file": ".../homebrew.mxcl.ollama.plist", "exit_code": 0}]``.

    Example::

        pyinfra inventories/home.py fact facts.homebrew.BrewServices --limit server
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self) -> str:
        env = " ".join(f"{k}={v}" for k, v in BREW_ENV.items())
        return (
            "for d in " + " ".join(BREW_PREFIXES) + '; do if [ -x "$d/bin/brew" ]; then '
            f'{env} "$d/bin/brew" services list --json 2>/dev/null; break; fi; done; true'
        )

    def process(self, output: list[str]) -> list[dict[str, Any]]:
        return parse_brew_services("\n".join(output))


