"""Facts about launchd on a Mac: one job (``launchctl print``) and the domains (who is logged
in, which jobs are disabled). Parsers are pure functions of the command's lines.

    pyinfra inventories/home.py fact facts.launchd.LaunchdService target=gui/501/com.ollama
    pyinfra inventories/home.py fact facts.launchd.LaunchdDomains --limit server
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from typing import Any

from pyinfra.api import FactBase, QuoteString, StringCommand

from facts.macos import SECTION_SEP, int_or_none, split_sections

# -- parsers ----------------------------------------------------------------------------------


def parse_launchctl_print(lines: Sequence[str], rc: int | None = None) -> dict[str, Any]:
    """``launchctl print <domain>/<label>`` (+ its exit status) -> the whitelisted top-level
    values: ``{"loaded": True, "state", "pid", "path", "type", "program",
    "arguments", "runs", "last_exit_code", "last_signal", "successive_crashes",
    "properties", "environment_keys"}``.

    The dump is "not API": only top-level ``key = value`` lines (depth 1) are read; nested
    blocks repeat keys. ``last exit code`` is absent when the job died by a signal (then
    ``last_signal`` is set). Environment *values* are never kept (they may hold secrets).
    Exit 113 / ``Could not find service`` = not loaded; 112 / ``Could not find domain`` =
    that domain does not exist (no GUI login for ``gui/<uid>``); both give only
    ``{"loaded": False, "domain_exists": bool}`` (+ ``"error"`` for other failures).
    """
    text = "\n".join(lines)
    if "Could not find domain" in text or rc == 112:
        return {"loaded": False, "domain_exists": False}
    if rc not in (None, 0) or "Could not find service" in text or not text.strip():
        missing: dict[str, Any] = {"loaded": False, "domain_exists": True}
        if rc not in (None, 0, 113) and "Could not find service" not in text:
            missing["error"] = text.strip()[:200] or f"exit status {rc}"
        return missing
    result: dict[str, Any] = {
        "loaded": True,
        "state": None,
        "pid": None,
        "path": None,
        "type": None,
        "program": None,
        "arguments": [],
        "runs": None,
        "last_exit_code": None,
        "last_signal": None,
        "successive_crashes": None,
        "properties": [],
        "environment_keys": [],
    }
    depth = 0
    block: str | None = None
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line.endswith("{"):
            if depth == 1:
                block = line[:-1].strip().rstrip("=").strip()
            depth += 1
            continue
        if line == "}":
            depth -= 1
            if depth <= 1:
                block = None
            continue
        if depth == 2 and block == "arguments":
            result["arguments"].append(line)
            continue
        if depth == 2 and block == "environment":
            result["environment_keys"].append(line.split("=>", 1)[0].strip())
            continue
        if depth != 1:
            continue
        key, sep, value = line.partition(" = ")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key in ("state", "path", "type", "program"):
            result[key] = value
        elif key == "pid":
            result["pid"] = int_or_none(value)
        elif key == "runs":
            result["runs"] = int_or_none(value)
        elif key == "successive crashes":
            result["successive_crashes"] = int_or_none(value)
        elif key == "last exit code":
            result["last_exit_code"] = (
                int_or_none(value.split(":", 1)[0])
                if value[:1].isdigit()
                else (None if value == "(never exited)" else value)
            )
        elif key == "last terminating signal":
            result["last_signal"] = value
        elif key == "properties":
            result["properties"] = [p.strip() for p in value.split("|") if p.strip()]
    return result


def parse_print_disabled(lines: Iterable[str]) -> dict[str, bool]:
    """``launchctl print-disabled <domain>`` -> ``{label: disabled}`` (``=> disabled``/``=>
    enabled`` on current releases, ``=> true`` meaning *disabled* on older ones)."""
    result: dict[str, bool] = {}
    for line in lines:
        m = re.match(r'^\s*"([^"]+)" => (\w+)\s*$', line)
        if m:
            result[m.group(1)] = m.group(2) in ("disabled", "true")
    return result


def launchd_script(labels: Sequence[str]) -> str:
    """Probe gui/<uid> and user/<uid>, then ``print`` every label in gui, user and system."""
    return "; ".join(
        [
            "uid=$(id -u)",
            f"echo '{SECTION_SEP} domains'",
            'launchctl print "gui/$uid" >/dev/null 2>&1; echo "gui/$uid $?"',
            'launchctl print "user/$uid" >/dev/null 2>&1; echo "user/$uid $?"',
            'printf "managername %s\\n" "$(launchctl managername 2>/dev/null)"',
            "printf 'console %s\\n' \"$(ls -ld /dev/console 2>/dev/null | awk '{print $3}')\"",
            "for l in " + " ".join(shlex.quote(label) for label in labels) + "; do "
            'for d in "gui/$uid" "user/$uid" system; do '
            'o=$(launchctl print "$d/$l" 2>&1); r=$?; '
            f'echo "{SECTION_SEP} launchd $d/$l $r"; printf \'%s\\n\' "$o"; done; done',
        ]
    )


def parse_domains(lines: Iterable[str]) -> dict[str, Any]:
    result: dict[str, Any] = {"gui": None, "user": None, "managername": None, "console_user": None}
    for line in lines:
        key, _, value = line.strip().partition(" ")
        if key.startswith("gui/"):
            result["gui"] = int_or_none(value) == 0
        elif key.startswith("user/"):
            result["user"] = int_or_none(value) == 0
        elif key == "managername":
            result["managername"] = value.strip() or None
        elif key == "console":
            result["console_user"] = value.strip() or None
    return result


# -- single facts -----------------------------------------------------------------------------


class LaunchdService(FactBase):
    """One launchd job in one domain (``launchctl print <target>``), see
    :func:`parse_launchctl_print`: ``{"loaded": True, "state": "running", "pid": 4242, ...}``;
    ``{"loaded": False, "domain_exists": False, ...}`` when the domain does not exist.

    Example::

        pyinfra inventories/home.py fact facts.launchd.LaunchdService target=user/501/com.ollama
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, target: str) -> StringCommand:
        return StringCommand(
            "o=$(launchctl",
            "print",
            QuoteString(target),
            "2>&1);",
            "r=$?;",
            "printf",
            "'%s\\n'",
            '"$o";',
            "echo",
            '"##rc $r"',
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        rc = None
        if output and output[-1].startswith("##rc "):
            rc = int_or_none(output[-1][5:])
            output = output[:-1]
        return parse_launchctl_print(output, rc)


class LaunchdDomains(FactBase):
    """Which launchd domains of the SSH user exist, and the session:
    ``{"uid": 501, "user": "admin", "home": "/Users/admin", "domains": {"gui": False, "user":
    True, "managername": "Background", "console_user": "root"}}``. ``gui/<uid>`` exists only
    while that user is logged in at the screen.

    Example::

        host.get_fact(LaunchdDomains)["domains"]["gui"]
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self) -> str:
        return "; ".join(
            [
                f"echo '{SECTION_SEP} id'",
                "id -u",
                "id -un",
                'echo "$HOME"',
                launchd_script(()),
            ]
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        parts = {words[0]: body for words, body in split_sections(output) if words}
        ident = parts.get("id", [])
        return {
            "uid": int_or_none(ident[0]) if ident else None,
            "user": ident[1].strip() if len(ident) > 1 else None,
            "home": ident[2].strip() if len(ident) > 2 else None,
            "domains": parse_domains(parts.get("domains", [])),
        }


