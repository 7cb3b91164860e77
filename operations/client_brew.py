"""Homebrew operations for the Macs (clients, and the server for ``pin_ollama``).

Homebrew is not on ``PATH`` over SSH and refuses to run as root: these call
``<prefix>/bin/brew`` by absolute path, never with ``_sudo``, and refuse a root login.
Installed formulae and pins are read without starting Homebrew (the Cellar and
``var/homebrew/pinned``, see :mod:`facts.client`), so a no-op costs no Ruby start.

Wiring for the server role (``pin_ollama`` data flag: ``True`` pin, ``False`` unpin, unset:
leave as it is)::

    from facts.client import BrewPinned
    from operations import client_brew

    client_brew.pin(
        name="Homebrew: pin Ollama" if pin else "Homebrew: unpin Ollama",
        formula="ollama",
        pinned=host.data.get("pin_ollama"),
        pinned_now=host.get_fact(BrewPinned, prefix="/opt/homebrew"),
    )
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pyinfra import host
from pyinfra.api import OperationError, QuoteString, StringCommand, operation

#: Environment for unattended brew runs (reference macos-ollama.md §5.2).
BREW_ENV = ("HOMEBREW_NO_AUTO_UPDATE=1", "HOMEBREW_NO_INSTALL_CLEANUP=1",
            "HOMEBREW_NO_ENV_HINTS=1", "HOMEBREW_NO_ANALYTICS=1")


def _brew(prefix: str) -> QuoteString:
    return QuoteString(f"{prefix}/bin/brew")


@operation()
def formulae(
    formulae: Iterable[str],
    installed: Mapping[str, list[str]],
    prefix: str = "/opt/homebrew",
    uid: int | None = None,
    brew_present: bool = True,
):
    """Install Homebrew formulae that are missing (never upgrades, never removes).

    + formulae: names, e.g. ``["wireguard-tools", "bash"]``
    + installed: ``ClientState["formulae"]`` (``{name: [versions]}``)
    + prefix: Homebrew's prefix
    + uid: the SSH user's uid (``ClientState["uid"]``): 0 is refused, brew will not run as root
    + brew_present: ``ClientState["brew"]``; without Homebrew the operation fails clearly

    **Example:**

    .. code:: python

        client_brew.formulae(name="WireGuard", formulae=["wireguard-tools", "bash"],
                             installed=state["formulae"], uid=state["uid"])
    """
    wanted = list(formulae)
    missing = [f for f in wanted if not installed.get(f)]
    if not missing:
        host.noop(f"installed: {', '.join(wanted)}")
        return
    if not brew_present:
        raise OperationError(
            f"Homebrew is not installed at {prefix} (https://brew.sh): install it, or set "
            "homebrew_prefix in the client's data")
    if uid == 0:
        raise OperationError("Homebrew refuses to run as root: connect as the Mac's user "
                             "(ssh_user), not root")
    yield StringCommand(*BREW_ENV, _brew(prefix), "install", *(QuoteString(f) for f in missing))


@operation()
def pin(
    formula: str,
    pinned: bool | None,
    pinned_now: Iterable[str],
    prefix: str = "/opt/homebrew",
):
    """Pin (``brew pin``) or unpin a formula so ``brew upgrade`` leaves it alone.

    + formula: e.g. ``"ollama"``
    + pinned: ``True`` pin, ``False`` unpin, ``None`` leave as it is
    + pinned_now: :class:`facts.client.BrewPinned`
    + prefix: Homebrew's prefix

    **Example:**

    .. code:: python

        client_brew.pin(name="Pin Ollama", formula="ollama", pinned=True,
                        pinned_now=host.get_fact(BrewPinned))
    """
    now = formula in set(pinned_now)
    if pinned is None or pinned == now:
        host.noop(f"{formula} is {'pinned' if now else 'not pinned'}")
        return
    yield StringCommand(*BREW_ENV, _brew(prefix), "pin" if pinned else "unpin",
                        QuoteString(formula))
