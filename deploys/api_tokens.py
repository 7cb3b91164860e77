"""Optional API tokens (proxy mode): a bearer token per client, so that a leaked tunnel key
alone does not give API access.

A client with ``api_token: True`` (host data; only with the server's ``proxy = "haproxy"``)
gets a random token, generated on the controller the first time and kept like the WireGuard
keys: ``<secrets_dir>/api-tokens/<client>.token`` (directory 700, file 600). The client role
writes it into the client's tool configuration (``OPENAI_API_KEY``, ``OLLAMA_API_KEY`` for
Aider, ``ANTHROPIC_AUTH_TOKEN`` for ``claude-ollama``; the env file lives in a mode-700
directory). HAProxy only ever sees its SHA-256: for each such client, a request from the
client's VPN address without ``Authorization: Bearer <its token>`` is answered 401 (WireGuard
binds a VPN address to its key, so the key alone is not enough). Clients without a token are
not asked for one. With ``--dry`` a missing token is made in memory only (nothing is written).

Example::

    store = TokenStore("secrets")
    token = store.token("alice-mac")              # a Secret, created on first use
    bearer_sha256(token.reveal())                 # what haproxy.cfg holds
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from operations.secret import Secret

TOKEN_DIR = "api-tokens"
TOKEN = re.compile(r"^sso-[A-Za-z0-9_-]{43}$")


def generate_token() -> Secret:
    """A new token: ``sso-`` + 256 random bits (URL-safe base64)."""
    return Secret("sso-" + secrets.token_urlsafe(32))


def bearer_sha256(token: str) -> str:
    """SHA-256 (hex) of the whole header value ``Bearer <token>``: what HAProxy compares."""
    return hashlib.sha256(f"Bearer {token}".encode()).hexdigest()


class TokenStore:
    """``<root>/api-tokens/<client>.token`` (mode 600, directories 700)."""

    def __init__(self, root: str | os.PathLike[str], dry: bool | None = None) -> None:
        self.dir = Path(root) / TOKEN_DIR
        self.root = Path(root)
        self.dry = ("--dry" in sys.argv) if dry is None else dry
        self._memory: dict[str, Secret] = {}

    def path(self, client: str) -> Path:
        if not re.match(r"^[A-Za-z0-9._-]+$", client):
            raise ValueError(f"not a host name usable as a file name: {client!r}")
        return self.dir / f"{client}.token"

    def token(self, client: str) -> Secret:
        """The client's token, created (and written, unless dry) on first use."""
        path = self.path(client)
        if path.exists():
            text = path.read_text().strip()
            if not TOKEN.match(text):
                raise ValueError(f"{path}: not an API token made by this project; delete it "
                                 "to make a new one")
            return Secret(text)
        if client in self._memory:
            return self._memory[client]
        token = generate_token()
        if self.dry:
            self._memory[client] = token
            return token
        for directory in (self.root, self.dir):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token.reveal() + "\n")
        os.replace(tmp, path)
        return token


@dataclass(frozen=True)
class TokenClient:
    """A client HAProxy asks for a token: its name, VPN address, and the token's hash."""

    name: str
    address: str
    sha256: str

    @property
    def acl(self) -> str:
        """An ACL name safe in haproxy.cfg."""
        return re.sub(r"[^A-Za-z0-9_]", "_", self.name)


def wants_token(client_data: Mapping[str, Any]) -> tuple[bool, list[str]]:
    """``api_token`` of a client (default False) and its problems."""
    value = client_data.get("api_token")
    if value is None:
        return False, []
    if not isinstance(value, bool):
        return False, [f"api_token: {value!r} (expected True or False)"]
    return value, []


def token_problems(client: str, client_data: Mapping[str, Any],
                   server_data: Mapping[str, Any] | None) -> list[str]:
    """Why ``api_token`` cannot be honoured (empty: fine)."""
    wanted, problems = wants_token(client_data)
    problems = [f"{client}: {p}" for p in problems]
    if wanted and (server_data or {}).get("proxy") != "haproxy":
        problems.append(f"{client}: api_token: True (needs the server's proxy = 'haproxy': "
                        "Ollama itself checks no token)")
    return problems


def token_clients(peers: Iterable[tuple[str, str, Mapping[str, Any]]],
                  store: TokenStore) -> list[TokenClient]:
    """The clients HAProxy must ask for a token: ``peers`` is ``(host name, VPN address,
    host data)`` of every client peer."""
    return [TokenClient(name, str(address), bearer_sha256(store.token(name).reveal()))
            for name, address, data in peers if wants_token(data)[0]]


def server_api_tokens(plan: Any, proxy: str | None, datas: Iterable[Mapping[str, Any]],
                      dry: bool | None = None) -> tuple[TokenClient, ...]:
    """The :class:`TokenClient` s of the server's HAProxy (none unless ``proxy`` is
    ``"haproxy"``): the client peers of ``plan`` (``datas``: their host data, in order, as
    ``deploys.plan.client_datas`` gives them) that have ``api_token``. ``dry=True`` (the audit)
    reads the tokens there are and makes missing ones in memory only: nothing is written."""
    if proxy != "haproxy":
        return ()
    clients = [p for p in plan.peers if p.host]
    return tuple(token_clients(
        ((p.host, str(p.address), d) for p, d in zip(clients, datas, strict=True)),
        TokenStore(plan.secrets_dir, dry=dry)))
