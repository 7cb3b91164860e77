"""WireGuard keys, generated on the controller and kept in the git-ignored ``secrets/`` folder.

Keys are X25519 keys made with ``cryptography``, in exactly the format of ``wg genkey`` /
``wg pubkey`` / ``wg genpsk`` (base64 of the raw 32 bytes; private keys clamped as ``wg genkey``
clamps them). A key is created the first time it is needed and never changes afterwards, unless
it is rotated on purpose.

Layout (directories mode 700, files mode 600)::

    secrets/wireguard/router.key            router private key
    secrets/wireguard/peers/<peer>.key      a peer's private key (unless it brings its own)
    secrets/wireguard/peers/<peer>.psk      the preshared key of the router <-> peer pair
    secrets/wireguard/addresses.json        VPN addresses assigned automatically, by peer name
    secrets/wireguard/archive/<stamp>-<peer>/   keys of rotated or removed peers, never deleted

Example:
    >>> store = KeyStore("/tmp/example-secrets")          # doctest: +SKIP
    >>> private = store.router_private_key()               # created on first use
    >>> public_key(private)                                # what the peers are given
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from operations.secret import Secret

KEY_LENGTH = 32


def _clamp(raw: bytes) -> bytes:
    """Curve25519 clamping, as ``wg genkey`` applies it to a fresh private key."""
    b = bytearray(raw)
    b[0] &= 248
    b[31] = (b[31] & 127) | 64
    return bytes(b)


def generate_private_key() -> Secret:
    """A new private key, byte-for-byte the format of ``wg genkey``."""
    raw = X25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return Secret(base64.b64encode(_clamp(raw)).decode())


def generate_preshared_key() -> Secret:
    """A new preshared key, the format of ``wg genpsk`` (32 random bytes, base64)."""
    return Secret(base64.b64encode(os.urandom(KEY_LENGTH)).decode())


def decode_key(text: str) -> bytes:
    """The 32 raw bytes of a base64 WireGuard key; ``ValueError`` if it is not one."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64") from exc
    if len(raw) != KEY_LENGTH or base64.b64encode(raw).decode() != text.strip():
        raise ValueError("not a 32-byte WireGuard key")
    return raw


def is_valid_key(text: object) -> bool:
    """Whether ``text`` is a well-formed WireGuard key (44 characters of base64, 32 bytes)."""
    if not isinstance(text, str):
        return False
    try:
        decode_key(text)
    except ValueError:
        return False
    return True


def public_key(private: Secret | str) -> str:
    """The public key of a private key, as ``wg pubkey`` prints it."""
    text = private.reveal() if isinstance(private, Secret) else private
    key = X25519PrivateKey.from_private_bytes(decode_key(text))
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


class KeyStore:
    """Keys and automatic address assignments under ``<root>/wireguard``.

    Nothing is written until a key or an address is asked for. Files are created with mode 600
    inside directories with mode 700, atomically (write to a temp file, then rename).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.base = self.root / "wireguard"

    # -- files -------------------------------------------------------------------------------
    def _ensure_dir(self, path: Path) -> None:
        for directory in (self.root, self.base, path):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(directory, 0o700)

    def _write(self, path: Path, text: str) -> None:
        self._ensure_dir(path.parent)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    def _read_or_create(self, path: Path, make) -> Secret:
        if path.exists():
            text = path.read_text().strip()
            decode_key(text)  # a corrupt key file is an error, not something to overwrite
            return Secret(text)
        secret = make()
        self._write(path, secret.reveal() + "\n")
        return secret

    def _peer_path(self, name: str, suffix: str) -> Path:
        return self.base / "peers" / f"{name}.{suffix}"

    # -- keys --------------------------------------------------------------------------------
    def router_private_key(self) -> Secret:
        """The router's private key (``network.<vpn interface>.private_key``)."""
        return self._read_or_create(self.base / "router.key", generate_private_key)

    def peer_private_key(self, name: str) -> Secret:
        """A peer's private key; used in the peer's own config, never sent to the router."""
        return self._read_or_create(self._peer_path(name, "key"), generate_private_key)

    def peer_preshared_key(self, name: str) -> Secret:
        """The preshared key shared by the router and one peer."""
        return self._read_or_create(self._peer_path(name, "psk"), generate_preshared_key)

    def has_peer(self, name: str) -> bool:
        return self._peer_path(name, "psk").exists() or self._peer_path(name, "key").exists()

    def peer_names(self) -> list[str]:
        """Names of the peers that have keys in the store."""
        folder = self.base / "peers"
        if not folder.is_dir():
            return []
        return sorted({p.stem for p in folder.iterdir() if p.suffix in (".key", ".psk")})

    def archive_peer(self, name: str, reason: str = "removed") -> Path | None:
        """Move a peer's keys to ``archive/<stamp>-<name>/`` (rotation, removal); never delete."""
        files = [
            p for p in (self._peer_path(name, "key"), self._peer_path(name, "psk")) if p.exists()
        ]
        if not files:
            return None
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.base / "archive" / f"{stamp}-{name}-{reason}"
        n = 1
        while target.exists():
            n += 1
            target = self.base / "archive" / f"{stamp}-{name}-{reason}-{n}"
        self._ensure_dir(target)
        for path in files:
            os.replace(path, target / path.name)
        return target

    # -- addresses ---------------------------------------------------------------------------
    def _addresses_path(self) -> Path:
        return self.base / "addresses.json"

    def assigned_addresses(self) -> dict[str, str]:
        """Automatic VPN address assignments recorded so far: ``{peer name: "10.10.10.N"}``."""
        path = self._addresses_path()
        if not path.exists():
            return {}
        return {str(k): str(v) for k, v in json.loads(path.read_text()).items()}

    def record_addresses(self, assignments: dict[str, str]) -> None:
        """Persist the automatic assignments (only rewritten when they changed)."""
        if assignments == self.assigned_addresses():
            return
        self._write(
            self._addresses_path(), json.dumps(assignments, indent=2, sort_keys=True) + "\n"
        )
