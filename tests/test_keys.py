"""Keys: the format of the real `wg` tool, and the key store's files and modes."""

from __future__ import annotations

import shutil
import stat
import subprocess

import pytest

from deploys.keys import (
    KeyStore,
    decode_key,
    generate_preshared_key,
    generate_private_key,
    is_valid_key,
    public_key,
)
from operations.secret import Secret

needs_wg = pytest.mark.skipif(shutil.which("wg") is None, reason="wireguard-tools (wg) missing")


def wg(*args: str, stdin: str | None = None) -> str:
    return subprocess.run(["wg", *args], input=stdin, capture_output=True, text=True,
                          check=True).stdout.strip()


@needs_wg
@pytest.mark.parametrize("attempt", range(5))
def test_our_keys_match_wg_pubkey(attempt):
    private = generate_private_key()
    assert wg("pubkey", stdin=private.reveal() + "\n") == public_key(private)


@needs_wg
@pytest.mark.parametrize("attempt", range(5))
def test_wg_genkey_keys_give_the_same_public_key(attempt):
    private = wg("genkey")
    assert public_key(private) == wg("pubkey", stdin=private + "\n")


@needs_wg
def test_private_keys_are_clamped_like_wg_genkey():
    for _ in range(20):
        raw = decode_key(generate_private_key().reveal())
        assert raw[0] & 7 == 0 and raw[31] & 128 == 0 and raw[31] & 64 == 64
    # wg accepts our preshared key format in a config
    psk = generate_preshared_key().reveal()
    assert len(psk) == 44 and is_valid_key(psk)
    assert len(wg("genpsk")) == len(psk)


def test_is_valid_key():
    assert is_valid_key(public_key(generate_private_key()))
    assert not is_valid_key("abc")
    assert not is_valid_key("A" * 42 + "B=")  # 44 chars, but not a canonical encoding of 32 bytes
    assert not is_valid_key(None)


def test_store_creates_once_and_keeps_keys(tmp_path):
    store = KeyStore(tmp_path / "secrets")
    router = store.router_private_key()
    psk = store.peer_preshared_key("alice")
    assert KeyStore(tmp_path / "secrets").router_private_key() == router
    assert KeyStore(tmp_path / "secrets").peer_preshared_key("alice") == psk
    for path in (tmp_path / "secrets").rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700


def test_store_refuses_a_corrupt_key_file(tmp_path):
    store = KeyStore(tmp_path)
    store.router_private_key()
    (tmp_path / "wireguard" / "router.key").write_text("garbage\n")
    with pytest.raises(ValueError):
        store.router_private_key()


def test_archive_moves_keys_and_never_deletes(tmp_path):
    store = KeyStore(tmp_path)
    key = store.peer_private_key("bob")
    store.peer_preshared_key("bob")
    target = store.archive_peer("bob", reason="rotated")
    assert target is not None and (target / "bob.key").read_text().strip() == key.reveal()
    assert not store.has_peer("bob")
    assert store.peer_private_key("bob") != key  # a new key after rotation


def test_secret_never_prints_its_value():
    private = generate_private_key()
    text = private.reveal()
    for shown in (str(private), repr(private), repr({"k": [private]}), f"{private}"):
        assert text not in shown and "<secret sha256:" in shown
    assert Secret(text) == private
