"""WireGuard keys made on the controller, kept in the git-ignored ``secrets/`` folder.

Keys are X25519 keys made with ``cryptography``, in exactly the format of ``wg genkey`` /
``wg pubkey`` / ``wg genpsk`` (base64 of the raw 32 bytes; private keys clamped as ``wg genkey``
clamps them). Macs managed over SSH make their own private key (``key_on_mac``, see
``deploys/client.py``): the store then only holds the pair's preshared key.

Layout (directories mode 700, files mode 600)::

    secrets/wireguard/router.key            router private key
    secrets/wireguard/peers/<peer>.key      a peer's private key (phones; Macs with key_on_mac off)
    secrets/wireguard/peers/<peer>.psk      the preshared key of the router <-> peer pair
    secrets/wireguard/peers/<peer>.pub      a Mac's public key (its private key stays on it)
    secrets/wireguard/addresses.json        VPN addresses assigned automatically, by peer name
    secrets/wireguard/pending/...           keys made for a run that has not succeeded yet
    secrets/wireguard/archive/<stamp>-<peer>-<why>/   keys of rotated or removed peers, kept

**Reading never writes.** :func:`resolve` (called when the plan is built: inventory load, ``fact``
runs, ``--dry``) only reads the store; keys that do not exist yet are made in memory and
returned with a :class:`KeyChanges` describing what a successful run must record. A deploy then
calls :meth:`KeyStore.stage` (an operation, at execution time, *before* any new key is uploaded:
new keys go to ``pending/`` so that a key a host may already have is never lost) and
:meth:`KeyStore.commit` (an operation after the router's apply succeeded: pending keys replace
the stored ones, replaced and removed peers' keys are archived, addresses recorded). A run that
fails in between leaves ``pending/``; the next run uses the pending keys (they may already be on
the router) and commits them when it succeeds.

Example:
    >>> keys = resolve(store=KeyStore("secrets"), peers=[...], rotate=[], ...)   # doctest: +SKIP
    >>> keys.changes.describe()          # e.g. "new: router key, alice_phone; archive: bob"
"""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
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


def private_dir_problems(path: str | os.PathLike[str], field_name: str) -> list[str]:
    """Why an existing directory cannot hold secrets (empty when it is fine or absent).

    A directory that holds keys must be owned by the user running the deploy and closed to group
    and others (mode 700). The tool never changes the mode of a directory it did not create: it
    refuses instead, so that the user decides (``chmod 700 <dir>`` or another path).
    """
    p = Path(path)
    try:
        info = p.lstat()
    except FileNotFoundError:
        return []
    except OSError as exc:
        return [f"network: {field_name}: {str(path)!r} (cannot be read: {exc.strerror})"]
    if not stat.S_ISDIR(info.st_mode):
        return [f"network: {field_name}: {str(path)!r} (exists and is not a directory)"]
    problems = []
    if info.st_uid != os.geteuid():
        problems.append(f"owned by uid {info.st_uid}, not by you (uid {os.geteuid()})")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        problems.append(f"mode {mode:o} lets group or others in (expected 700: "
                        f"chmod 700 {str(path)!r})")
    if not problems:
        return []
    return [f"network: {field_name}: {str(path)!r} ({'; '.join(problems)}; it holds private "
            "keys, so it is left as it is and the run stops: fix it or choose another "
            "directory)"]


def _reason_of(rel: str) -> str:
    return rel.rsplit("/", 1)[-1].split(".", 1)[0]


@dataclass
class KeyChanges:
    """What a successful run records in the store (see the module docstring).

    ``new``: keys made or taken from ``pending/`` that the store does not hold yet, by path under
    ``wireguard/`` (``router.key``, ``peers/<name>.key``, ``peers/<name>.psk``); a stored key they
    replace is archived. ``removed``: peers no longer in the inventory (their keys are archived).
    ``dropped_private``: peers whose private key is no longer the controller's (made on the Mac,
    or brought by the device): the controller's old copy is archived. ``addresses``: automatic
    address assignments to record (``None``: unchanged).
    """

    new: dict[str, Secret] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    dropped_private: list[str] = field(default_factory=list)
    addresses: dict[str, str] | None = None

    def __bool__(self) -> bool:
        return bool(self.new or self.removed or self.dropped_private
                    or self.addresses is not None)

    def describe(self) -> str:
        """One line for the run's output (names only, never a key)."""
        parts = []
        if self.new:
            parts.append("new keys: " + ", ".join(sorted(self.new)))
        if self.removed:
            parts.append("archive keys of removed peers: " + ", ".join(sorted(self.removed)))
        if self.dropped_private:
            parts.append("archive the controller's copy of private keys now kept elsewhere: "
                         + ", ".join(sorted(self.dropped_private)))
        if self.addresses is not None:
            parts.append("record automatic VPN addresses")
        return "; ".join(parts) or "nothing"

    __repr__ = __str__ = describe

    def __copy__(self) -> KeyChanges:
        return self

    def __deepcopy__(self, memo: dict) -> KeyChanges:
        return self


class KeyStoreError(ValueError):
    """The key store cannot be used (unsafe directory, corrupt key). ``errors``: one per line."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class KeyStore:
    """Keys and automatic address assignments under ``<root>/wireguard``.

    Reading (:meth:`read`, :meth:`assigned_addresses`, :meth:`problems`) never creates anything.
    Writing happens in :meth:`stage`, :meth:`commit` and the explicit create-on-first-use helpers
    (:meth:`router_private_key` ...): files mode 600, written atomically (temp file, rename),
    directories created mode 700; an existing directory with a looser mode is refused, never
    changed.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.base = self.root / "wireguard"
        self.pending = self.base / "pending"

    # -- safety ------------------------------------------------------------------------------
    def problems(self, field_name: str = "secrets_dir") -> list[str]:
        """Unsafe directories or key files in the store, as input-error lines (read only)."""
        errors = []
        for directory in (self.root, self.base, self.base / "peers", self.pending,
                          self.pending / "peers"):
            errors += private_dir_problems(directory, field_name)
        # earlier versions created archive/ with mode 755 (its entries 700): ours, so it is
        # tightened by the next run that writes (commit), not refused
        archive = self.base / "archive"
        if archive.is_dir() and archive.lstat().st_uid != os.geteuid():
            errors += private_dir_problems(archive, field_name)
        if errors:
            return errors
        for path in self._key_files():
            info = path.lstat()
            if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
                errors.append(
                    f"network: {field_name}: {str(self.root)!r} ({path} has mode "
                    f"{stat.S_IMODE(info.st_mode):o}, owner uid {info.st_uid}; expected 600 "
                    f"owned by you: chmod 600 {str(path)!r})")
        return errors

    def _key_files(self) -> list[Path]:
        found = []
        for folder in (self.base, self.base / "peers", self.pending, self.pending / "peers"):
            if folder.is_dir():
                found += [p for p in folder.iterdir() if p.suffix in (".key", ".psk")]
        return sorted(found)

    # -- files -------------------------------------------------------------------------------
    def _ensure_dir(self, path: Path) -> None:
        chain = [self.root, self.base]
        rel = path.relative_to(self.base) if path != self.base else Path()
        current = self.base
        for part in rel.parts:
            current = current / part
            chain.append(current)
        for directory in chain:
            if directory == self.base / "archive" and directory.is_dir() \
                    and directory.lstat().st_uid == os.geteuid():
                os.chmod(directory, 0o700)  # ours (earlier versions made it 755)
                continue
            if directory.is_dir():
                errors = private_dir_problems(directory, "secrets_dir")
                if errors:
                    raise KeyStoreError(errors)
                continue
            directory.mkdir(mode=0o700)
            os.chmod(directory, 0o700)  # ours, just made: the umask may have narrowed it

    def _write(self, path: Path, text: str) -> None:
        self._ensure_dir(path.parent)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    @staticmethod
    def _load(path: Path) -> Secret | None:
        if not path.exists():
            return None
        text = path.read_text().strip()
        try:
            decode_key(text)  # a corrupt key file is an error, not something to overwrite
        except ValueError as exc:
            raise KeyStoreError([f"network: secrets_dir: {str(path)!r} ({exc}: restore it "
                                 "from a backup or move it away to make a new key)"]) from None
        return Secret(text)

    def read(self, rel: str) -> Secret | None:
        """The key at ``wireguard/<rel>``: the pending one if a run left one, else the stored
        one, else ``None``. Never writes."""
        return self._load(self.pending / rel) or self._load(self.base / rel)

    def stored(self, rel: str) -> Secret | None:
        """The committed key at ``wireguard/<rel>`` (ignores ``pending/``)."""
        return self._load(self.base / rel)

    def _read_or_create(self, path: Path, make) -> Secret:
        secret = self._load(path)
        if secret is not None:
            return secret
        secret = make()
        self._write(path, secret.reveal() + "\n")
        return secret

    def _peer_path(self, name: str, suffix: str) -> Path:
        return self.base / "peers" / f"{name}.{suffix}"

    # -- explicit create-on-first-use (tests, tools; the deploy goes through resolve/commit) --
    def router_private_key(self) -> Secret:
        """The router's private key, created (and written) on first use."""
        return self._read_or_create(self.base / "router.key", generate_private_key)

    def peer_private_key(self, name: str) -> Secret:
        """A peer's private key, created (and written) on first use."""
        return self._read_or_create(self._peer_path(name, "key"), generate_private_key)

    def peer_preshared_key(self, name: str) -> Secret:
        """The preshared key of the router <-> ``name`` pair, created on first use."""
        return self._read_or_create(self._peer_path(name, "psk"), generate_preshared_key)

    def has_peer(self, name: str) -> bool:
        return self._peer_path(name, "psk").exists() or self._peer_path(name, "key").exists()

    def peer_names(self) -> list[str]:
        """Names of the peers that have keys in the store (committed or pending)."""
        names: set[str] = set()
        for folder in (self.base / "peers", self.pending / "peers"):
            if folder.is_dir():
                names |= {p.stem for p in folder.iterdir() if p.suffix in (".key", ".psk")}
        return sorted(names)

    def _archive(self, name: str, reason: str, files: list[Path]) -> Path | None:
        files = [p for p in files if p.exists()]
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
            dest = target / path.name
            if dest.exists():  # a pending and a stored key of the same name
                dest = target / f"pending-{path.name}"
            os.replace(path, dest)
        return target

    def archive_peer(self, name: str, reason: str = "removed") -> Path | None:
        """Move a peer's keys (stored and pending) to ``archive/<stamp>-<name>-<reason>/``."""
        return self._archive(name, reason, [
            folder / f"{name}.{suffix}" for folder in (self.base / "peers", self.pending / "peers")
            for suffix in ("key", "psk", "pub")])

    # -- the run's transaction ---------------------------------------------------------------
    def staged(self, changes: KeyChanges) -> bool:
        """Whether every new key of ``changes`` is in ``pending/`` already."""
        return all(self._load(self.pending / rel) == key for rel, key in changes.new.items())

    def stage(self, changes: KeyChanges) -> None:
        """Write the run's new keys to ``pending/`` (before they are uploaded anywhere); a
        different pending key (a rotation asked for again) is archived, never overwritten."""
        for rel, key in sorted(changes.new.items()):
            path = self.pending / rel
            current = self._load(path)
            if current == key:
                continue
            if current is not None:
                self._archive(_reason_of(rel), "superseded", [path])
            self._write(path, key.reveal() + "\n")

    def commit(self, changes: KeyChanges) -> None:
        """Record a successful run: pending keys replace stored ones (which are archived),
        removed peers' keys and dropped private keys are archived, addresses recorded."""
        replaced: dict[str, list[Path]] = {}
        for rel, key in changes.new.items():
            current = self.stored(rel)
            if current is not None and current != key:
                replaced.setdefault(_reason_of(rel), []).append(self.base / rel)
        for name, files in sorted(replaced.items()):
            self._archive(name, "rotated", files)
        for rel, key in sorted(changes.new.items()):
            target, pending = self.base / rel, self.pending / rel
            if self._load(pending) == key:
                self._ensure_dir(target.parent)
                os.replace(pending, target)
            elif self._load(target) != key:
                self._write(target, key.reveal() + "\n")
        for name in changes.removed:
            self.archive_peer(name, reason="removed")
        for name in changes.dropped_private:
            self._archive(name, "key-moved", [self._peer_path(name, "key")])
        if changes.addresses is not None:
            self.record_addresses(changes.addresses)
        archive = self.base / "archive"
        if archive.is_dir() and stat.S_IMODE(archive.lstat().st_mode) != 0o700:
            self._ensure_dir(archive)  # an archive/ made 755 by an earlier version: 700
        for folder in (self.pending / "peers", self.pending):
            try:
                folder.rmdir()  # only when empty
            except OSError:
                pass

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


@dataclass(frozen=True)
class ResolvedKeys:
    """The keys of one run (see :func:`resolve`): what the plan uses, and what to record."""

    router_private_key: Secret
    private_keys: dict[str, Secret | None]  # None: the device or the Mac holds its own key
    preshared_keys: dict[str, Secret]
    public_keys: dict[str, str]  # last known public keys of peers that make their own key
    addresses: dict[str, str]  # automatic assignments, by peer name
    changes: KeyChanges


def resolve(
    store: KeyStore,
    peers: Iterable,
    vpn_subnet,
    taken: Iterable = (),
    rotate: Iterable[str] = (),
    own_key: Iterable[str] = (),
    output_dir: str | None = None,
) -> ResolvedKeys:
    """The run's keys and automatic addresses, read from ``store``; never writes.

    ``peers``: objects with ``name``, ``address`` (``None``: automatic) and ``public_key``
    (``None`` unless the device brings its own key). ``taken``: addresses not to hand out (the
    router's). ``rotate``: peers that get new keys in this run (a rotation left pending by a
    failed run is continued, not started again). ``own_key``: peers whose private key is made
    where it is used (a Mac with ``key_on_mac``): no private key here. ``output_dir``: the
    folder for phone configs (``peer_output_dir``), checked like the store.
    Raises :class:`KeyStoreError` for an unsafe or corrupt store.
    """
    import ipaddress

    errors = store.problems()
    if output_dir:
        errors += private_dir_problems(output_dir, "peer_output_dir")
    if errors:
        raise KeyStoreError(errors)
    peers = list(peers)
    rotate, own_key = set(rotate), set(own_key)
    changes = KeyChanges()

    def key(rel: str, make, fresh: bool) -> Secret:
        pending = None if fresh else store._load(store.pending / rel)
        if pending is not None:  # made by a run that did not finish: maybe on a host already
            changes.new[rel] = pending
            return pending
        stored = None if fresh else store.stored(rel)
        if stored is not None:
            return stored
        changes.new[rel] = make()
        return changes.new[rel]

    router = key("router.key", generate_private_key, False)
    private: dict[str, Secret | None] = {}
    psk: dict[str, Secret] = {}
    public: dict[str, str] = {}
    for p in peers:
        fresh = p.name in rotate
        if p.public_key or p.name in own_key:
            private[p.name] = None
            if not p.public_key:
                rel = f"peers/{p.name}.pub"
                known = store._load(store.pending / rel)
                if known is not None:
                    changes.new[rel] = known
                known = known or store.stored(rel)
                if known is not None:
                    public[p.name] = known.reveal()
            if store.stored(f"peers/{p.name}.key") is not None \
                    or store._load(store.pending / f"peers/{p.name}.key") is not None:
                changes.dropped_private.append(p.name)
        else:
            private[p.name] = key(f"peers/{p.name}.key", generate_private_key, fresh)
        psk[p.name] = key(f"peers/{p.name}.psk", generate_preshared_key, fresh)
    names = {p.name for p in peers}
    changes.removed = [n for n in store.peer_names() if n not in names]

    recorded = store.assigned_addresses()
    used = {a for a in taken} | {p.address for p in peers if p.address is not None}
    assigned: dict[str, str] = {}
    for p in peers:  # keep earlier automatic assignments that are still free
        if p.address is None and p.name in recorded:
            addr = ipaddress.ip_address(recorded[p.name])
            if addr in vpn_subnet and addr not in used:
                assigned[p.name] = str(addr)
                used.add(addr)
    free = (a for a in vpn_subnet.hosts() if a not in used)
    for p in peers:
        if p.address is None and p.name not in assigned:
            addr = next(free, None)
            if addr is None:
                raise KeyStoreError([f"{p.host or 'peer ' + p.name}: address: None "
                                     f"(no free address left in vpn_subnet {vpn_subnet})"])
            assigned[p.name] = str(addr)
            used.add(addr)
    if assigned != recorded:
        changes.addresses = dict(assigned)
    return ResolvedKeys(router_private_key=router, private_keys=private, preshared_keys=psk,
                        public_keys=public, addresses=assigned, changes=changes)
