"""Config files and QR codes for VPN peers without SSH (phones, tablets), on the controller.

For each peer: ``<dir>/<name>.conf`` (the wg-quick config), ``<dir>/<name>.png`` (QR code to
scan with the WireGuard app) and ``<dir>/<name>.qr.txt`` (the same QR code for a terminal:
``cat out/peers/alice_phone.qr.txt``). Directory mode 700, files mode 600: they hold the device's
private key. Files are written at execution time only (never by ``--dry``), and only when the
config changed; files of peers that are no longer declared are removed.

Example::

    peer_files.write(
        name="Phone configs and QR codes",
        configs={"alice_phone": peer_config(plan, plan.peer("alice_phone"))},
        directory="out/peers",
    )
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, operation

from operations.secret import Secret

SUFFIXES = (".conf", ".png", ".qr.txt")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def qr_png(text: str) -> bytes:
    """The QR code of ``text`` as PNG bytes (segno; error correction M, as phone apps expect)."""
    import segno

    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=6, border=4)
    return buffer.getvalue()


def qr_terminal(text: str) -> bytes:
    """The QR code of ``text`` drawn with Unicode half blocks, for ``cat`` in a terminal."""
    import segno

    buffer = io.StringIO()
    segno.make(text, error="m", micro=False).terminal(out=buffer, compact=True, border=2)
    return buffer.getvalue().encode()


def _current(directory: Path, name: str) -> str | None:
    path = directory / f"{name}.conf"
    try:
        return path.read_text()
    except OSError:
        return None


def _stale(directory: Path, names: set[str]) -> list[Path]:
    if not directory.is_dir():
        return []
    stale = []
    for path in sorted(directory.iterdir()):
        for suffix in SUFFIXES:
            if path.name.endswith(suffix) and path.name[: -len(suffix)] not in names:
                stale.append(path)
    return stale


def _write_files(directory: str, changed: list[str], configs: Mapping[str, Secret],
                 stale: list[str]) -> None:
    folder = Path(directory)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    for name in changed:
        text = configs[name].reveal()
        _atomic_write(folder / f"{name}.conf", text.encode())
        _atomic_write(folder / f"{name}.png", qr_png(text))
        _atomic_write(folder / f"{name}.qr.txt", qr_terminal(text))
    for path in stale:
        Path(path).unlink(missing_ok=True)
    for name in sorted(configs):
        state = "written" if name in changed else "unchanged"
        logger.info(f"    peer config ({state}): {folder / name}.conf  (QR: {name}.png, "
                    f"{name}.qr.txt)")


@operation()
def write(configs: Mapping[str, Secret], directory: str = "out/peers"):
    """Write the configs and QR codes of peers without SSH on the controller.

    + configs: ``{peer name: config text}`` (:class:`Secret` values)
    + directory: output folder (git-ignored; created mode 700)
    """
    folder = Path(directory)
    changed = [
        name for name in sorted(configs)
        if _current(folder, name) != configs[name].reveal()
        or not all((folder / f"{name}{s}").exists() for s in SUFFIXES)
    ]
    stale = [str(p) for p in _stale(folder, set(configs))]
    if not changed and not stale:
        host.noop(f"peer configs in {directory} are up to date ({len(configs)})")
        return
    yield FunctionCommand(_write_files, (directory, changed, dict(configs), stale), {})
