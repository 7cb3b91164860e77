"""A value that must never be printed: WireGuard private and preshared keys.

pyinfra prints operation arguments (``op_meta.args``), facts at ``-vvv`` and anything that reaches
a command line. Wrapping a key in :class:`Secret` makes every ``str()``/``repr()`` of it (and of
any dict or list holding it) a redacted fingerprint, so a key cannot leak through those paths by
accident. Code that really needs the value (writing an uploaded file) calls :meth:`Secret.reveal`.

Example:
    >>> s = Secret("cAe1UfcuLzF/5J8Vqwn7JHQRXCumzVJlAcMIp4W4+mE=")
    >>> str(s)
    '<secret sha256:e4b5d4c78204>'
    >>> s.reveal()[:4]
    'cAe1'
"""

from __future__ import annotations

import hashlib

#: UCI option names whose values are secrets. The router fact hashes these on the router, so
#: they never travel back in clear either.
SECRET_OPTIONS = frozenset({"private_key", "preshared_key"})


def fingerprint(value: str) -> str:
    """The comparable, printable stand-in for a secret value: ``sha256:<hex of the value>``.

    It is what the router-side fact returns instead of the key, so desired and current secrets
    are compared by fingerprint.
    """
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


class Secret:
    """A string whose text is only available through :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        self._value = value

    def reveal(self) -> str:
        """The secret text itself. Only for writing it into a file that is uploaded."""
        return self._value

    @property
    def fingerprint(self) -> str:
        return fingerprint(self._value)

    def __repr__(self) -> str:
        return f"<secret {self.fingerprint[:19]}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict) -> Secret:
        return self


def reveal(value: object) -> object:
    """``value.reveal()`` for a :class:`Secret`, the value itself otherwise."""
    return value.reveal() if isinstance(value, Secret) else value
