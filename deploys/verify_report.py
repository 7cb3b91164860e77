"""The acceptance suite's outputs: a readable summary, a JSON document and JUnit XML.

All three are built from the list of :class:`deploys.verify_checks.Result` that
:func:`deploys.verify_checks.run_suite` returns; none of them contains a response body.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

from deploys.verify_checks import Result

MARK = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}


def counts(results: list[Result]) -> dict[str, int]:
    c = Counter(r.status for r in results)
    return {"total": len(results), "passed": c["passed"], "failed": c["failed"],
            "skipped": c["skipped"]}


def line(result: Result) -> str:
    """One line per check: ``PASS openai.chat  chat completion`` (+ `` -- reason``)."""
    text = f"{MARK[result.status]} {result.id:<26} {result.name}"
    return text + (f" -- {result.reason}" if result.reason else "")


def summary(base_url: str, version: str | None, results: list[Result]) -> str:
    n = counts(results)
    return (f"{base_url} (Ollama {version or 'unknown'}): {n['passed']} passed, "
            f"{n['failed']} failed, {n['skipped']} skipped of {n['total']} checks")


def to_json(base_url: str, version: str | None, model: str | None,
            results: list[Result]) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "ollama_version": version,
        "model": model,
        "counts": counts(results),
        "ok": not any(r.status == "failed" for r in results),
        "checks": [{"id": r.id, "group": r.group, "name": r.name, "status": r.status,
                    "reason": r.reason, "seconds": r.seconds} for r in results],
    }


def to_junit(base_url: str, results: list[Result]) -> str:
    """JUnit XML: one ``testsuite`` per group, one ``testcase`` per check."""
    root = ET.Element("testsuites", name="ollama-api-acceptance", tests=str(len(results)))
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(r.group, []).append(r)
    for group, items in groups.items():
        n = counts(items)
        suite = ET.SubElement(root, "testsuite", name=group, tests=str(n["total"]),
                              failures=str(n["failed"]), skipped=str(n["skipped"]), errors="0",
                              time=f"{sum(r.seconds for r in items):.3f}")
        ET.SubElement(ET.SubElement(suite, "properties"), "property", name="base_url",
                      value=base_url)
        for r in items:
            case = ET.SubElement(suite, "testcase", classname=f"ollama.{group}", name=r.id,
                                 time=f"{r.seconds:.3f}")
            if r.status == "failed":
                ET.SubElement(case, "failure", message=r.reason).text = r.name
            elif r.status == "skipped":
                ET.SubElement(case, "skipped", message=r.reason)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def dump_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"
