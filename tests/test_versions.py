"""facts/versions.py, the one version parser: the cases where the three former parsers
(``facts.ollama.version_key``, ``facts.macos.version_tuple``, ``deploys.versions.Version``)
disagreed, each with the answer every caller now gets."""

from __future__ import annotations

import pytest

from deploys import versions as deploy_versions
from facts import ollama
from facts.homebrew import parse_brew_versions
from facts.versions import (
    Version,
    parse_version,
    sort_key,
    version_at_least,
    version_key,
    version_tuple,
)
from operations.macos import brew_actions


@pytest.mark.parametrize(("a", "b"), [
    ("0.14", "0.14.0"),        # trailing zeros: version_tuple said (0, 14) < (0, 14, 0)
    ("26", "26.0"),            # a macOS major release as `sw_vers` may print it
    ("1", "1.0.0"),
    ("0.5.7_1", "0.5.7"),      # Homebrew's revision (a rebuilt bottle) is not a new version
    ("0.14.0+build.5", "0.14.0"),
    ("v0.14.0", "0.14.0"),
])
def test_trailing_zeros_and_build_metadata_do_not_count(a, b):
    assert parse_version(a) == parse_version(b)
    assert version_key(a) == version_key(b) is not None
    assert version_tuple(a) == version_tuple(b)
    assert sort_key(a) == sort_key(b)


@pytest.mark.parametrize(("text", "first", "exact"), [
    ("ollama version is 0.14.0", "0.14.0", None),  # version_key: None; Version: 0.14.0
    ("2.1.39 (Claude Code)", "2.1.39", None),
    ("15.5 (24F74)", "15.5", None),
    ("0.14.0-rc1", "0.14.0-rc1", "0.14.0-rc1"),
    ("  0.33.0\n", "0.33.0", "0.33.0"),
    ("unknown", None, None),
])
def test_a_version_inside_text(text, first, exact):
    found = parse_version(text)
    assert (found and str(found)) == first
    whole = parse_version(text, exact=True)
    assert (whole and str(whole)) == exact
    assert (version_key(text) is None) == (exact is None)


@pytest.mark.parametrize("dev", ["0.0.0", "0.0", "v0.0.0"])
def test_the_dev_build_is_unknown_not_old(dev):
    version = Version.parse(dev)
    assert version.is_dev_build and not Version.parse("0.0.1").is_dev_build
    assert version_at_least(dev, "0.14.0") is None
    assert version_at_least(dev, "0.0.1") is None
    assert ollama.api_support(dev)["/v1/messages"] is None
    assert deploy_versions.supports("claude_code", dev) is False


def test_at_least_and_unknown():
    assert version_at_least("0.14.0", "0.14.0") is True
    assert version_at_least("0.14", "0.14.0") is True
    assert version_at_least("0.14.0-rc1", "0.14.0") is False
    assert version_at_least("0.9.7", "0.14.0") is False  # not string order
    assert version_at_least(None, "0.14.0") is None
    assert version_at_least("ollama version is 0.14.0", "0.14.0") is None  # not exactly one


def test_tuples_and_sorting():
    assert version_tuple("14.2.1") == (14, 2, 1) and version_tuple("26") == (26, 0, 0)
    assert version_tuple("26.0") > version_tuple("15.5") >= (14, 0)
    assert version_tuple("13.6.7") < (14, 0) and version_tuple("nope") == ()
    assert sorted(["0.10.0", "junk", "0.9.7", "0.14.0-rc1", "0.14.0"], key=sort_key) == \
        ["junk", "0.9.7", "0.10.0", "0.14.0-rc1", "0.14.0"]


def test_every_caller_uses_the_one_parser():
    assert deploy_versions.Version is Version and deploy_versions.parse_version is parse_version
    assert ollama.version_at_least is version_at_least
    # Homebrew: the Cellar's versions in numeric order, revisions included
    state = parse_brew_versions(None, ["0.9.7", "0.10.0_1", "0.10.0"])
    assert state["version"] in ("0.10.0_1", "0.10.0") and state["versions"][0] == "0.9.7"
    # an upgrade only when the stable version is really newer than the installed one
    installed = {"formulas": {"ollama": {"installed": True, "version": "0.14.0_1"}}}
    same = brew_actions(["ollama"], installed, {"ollama": {"stable": "0.14.0"}}, upgrade=True)
    newer = brew_actions(["ollama"], installed, {"ollama": {"stable": "0.14.1"}}, upgrade=True)
    assert same["upgrade"] == [] and newer["upgrade"] == ["ollama"]
