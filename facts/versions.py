"""The one version parser and comparison (Ollama, Claude Code, Aider, Homebrew formulas, macOS).

:func:`parse_version` reads the first version out of a text (a tool's ``--version`` output, a
tag, a Cellar directory name); :class:`Version` orders versions numerically, pre-releases before
the release, semver and PEP 440 spellings alike::

    >>> parse_version("ollama version is 0.14.0") == parse_version("0.14")
    True
    >>> Version.parse("0.9.7") < Version.parse("0.14.0-rc1") < Version.parse("0.14.0")
    True

The rules (``tests/test_versions.py`` has a table of them):

* trailing zeros do not count: ``0.14 == 0.14.0``, ``26 == 26.0`` (macOS), ``1 == 1.0.0``;
* build metadata does not count: ``0.14.0+abc == 0.14.0``, Homebrew's revision too
  (``0.5.7_1 == 0.5.7``, the Cellar directory of a rebuilt bottle);
* in a text the first version counts (``parse_version``); ``exact=True`` (and
  :func:`version_key`) accept only a text that is a version and nothing else;
* ``0.0.0`` is what a development build of Ollama reports: it parses (``is_dev_build``), but
  :func:`version_at_least` answers ``None`` (unknown) for it, never ``False`` or ``True``.

Facts, operations and deploys all use this module (``deploys/versions.py`` holds the table of
versions known to work together).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

#: Pre-release labels and their order (all sort before the release itself).
_PRE_RANK = {"dev": 0, "a": 1, "alpha": 1, "b": 2, "beta": 2, "pre": 3, "preview": 3,
             "c": 4, "rc": 4}
_VERSION_RE = re.compile(
    r"(?<![\w.])v?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[-._~]?(?P<label>dev|alpha|beta|preview|pre|rc|a|b|c)[-._]?(?P<number>\d*))?"
    r"(?P<local>\+[\w.]+|_\d+)?(?![\w])",
    re.IGNORECASE,
)


@total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A parsed version: release numbers plus an optional pre-release.

    Equality and order ignore trailing zeros (``0.14 == 0.14.0``) and build metadata
    (``+abc``, Homebrew's ``_1``). ``text`` is the version as it was written (without a ``v``
    prefix).
    """

    release: tuple[int, ...]
    pre: tuple[int, int] | None  # (rank of the label, number); None = a final release
    text: str

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse a version, or raise ``ValueError``. Only the first version in ``text`` counts
        (``"ollama version is 0.14.0"`` -> ``0.14.0``)."""
        found = parse_version(text)
        if found is None:
            raise ValueError(f"not a version: {text!r}")
        return found

    def key(self) -> tuple:
        """What equality and order compare (trailing zeros dropped, release before pre)."""
        release = list(self.release)
        while len(release) > 1 and release[-1] == 0:
            release.pop()
        return (tuple(release), (1, 0, 0) if self.pre is None else (0, *self.pre))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key() == other.key()

    def __lt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key() < other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __str__(self) -> str:
        return self.text

    @property
    def is_prerelease(self) -> bool:
        return self.pre is not None

    @property
    def is_dev_build(self) -> bool:
        """``0.0.0``: an Ollama built from source (its real version is unknown)."""
        return not any(self.release)


def parse_version(text: str | None, *, exact: bool = False) -> Version | None:
    """The first version found in ``text`` (a tool's ``--version`` output, a tag, a number),
    or ``None``; with ``exact``, only when ``text`` (stripped) is a version and nothing else.
    Example: ``parse_version("2.1.39 (Claude Code)").release == (2, 1, 39)``."""
    if not text:
        return None
    text = str(text).strip()
    match = _VERSION_RE.fullmatch(text) if exact else _VERSION_RE.search(text)
    if match is None:
        return None
    release = tuple(int(part) for part in match["release"].split("."))
    pre = None
    if match["label"]:
        pre = (_PRE_RANK[match["label"].lower()], int(match["number"] or 0))
    written = match.group(0)
    written = written[1:] if written[:1] in "vV" else written
    return Version(release, pre, written)


def version_key(text: str | None) -> tuple | None:
    """A sortable key for a text that is exactly a version, or ``None`` if it is not one.

    >>> version_key("0.14.0-rc1") < version_key("0.14.0") < version_key("0.14.1")
    True
    """
    version = parse_version(text, exact=True)
    return None if version is None else version.key()


def version_tuple(text: str | None) -> tuple[int, ...]:
    """The release numbers of the first version in ``text``, padded with zeros to three
    (``"14.2.1"`` -> ``(14, 2, 1)``, ``"26"`` -> ``(26, 0, 0)``), ``()`` when there is none:
    compares right against a tuple of up to three numbers such as ``(14, 0)``."""
    version = parse_version(text)
    if version is None:
        return ()
    return version.release + (0,) * (3 - len(version.release))


def sort_key(text: str | None) -> tuple:
    """For ``sorted()``: versions in order, anything unparsable first (never an exception)."""
    version = parse_version(text)
    return (0,) if version is None else (1, version.key())


def version_at_least(version: str | None, minimum: str) -> bool | None:
    """``True``/``False``, or ``None`` when ``version`` is unknown, not exactly a version, or a
    dev build (``0.0.0``)."""
    parsed = parse_version(version, exact=True)
    if parsed is None or parsed.is_dev_build:
        return None
    return parsed >= Version.parse(minimum)
