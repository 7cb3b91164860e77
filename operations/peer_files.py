"""Config files and QR codes for VPN peers without SSH (phones, tablets), on the controller.

For each peer: ``<dir>/<name>.conf`` (the wg-quick config), ``<dir>/<name>.png`` (QR code to
scan with the WireGuard app) and ``<dir>/<name>.qr.txt`` (the same QR code for a terminal:
``cat out/peers/alice_phone.qr.txt``). Directory mode 700, files mode 600: they hold the device's
private key. Files are written at execution time only (never by ``--dry``), and only when the
config changed (new peer or rotated key).

The folder may be one of the user's: the files this operation wrote are listed in a manifest
(``<dir>/.self-sovereign-ollama-peers.json``) and only those are ever deleted (a peer that is
no longer declared, or ``forget`` after the phone imported its config); nothing else in the
folder is touched, and an existing folder's mode is never changed (the plan refuses one that is
open to group or others, see ``deploys.keys.private_dir_problems``).

Example::

    peer_files.write(
        name="Phone configs and QR codes",
        configs={"alice_phone": peer_config(plan, plan.peer("alice_phone"))},
        directory="out/peers",
    )
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, OperationError, operation

from operations.secret import Secret

SUFFIXES = (".conf", ".png", ".qr.txt")
MANIFEST = ".self-sovereign-ollama-peers.json"
#: Terminal QR codes wider than this are refused (a standard terminal is 80 columns).
MAX_COLUMNS = 80


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


def config_without_comments(text: str) -> str:
    """A wg-quick config without comment lines (what the terminal QR code holds)."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.lstrip().startswith("#"))


def qr_terminal(text: str) -> bytes:
    """The QR code of ``text`` for ``cat`` in a terminal: two modules per character cell
    (Unicode half blocks: one column per module, one row per two), quiet zone of 2 modules,
    so a WireGuard config fits in 80 columns. Black on white whatever the terminal's colours.
    The code holds the config without its comment lines (the WireGuard apps ignore them; the
    PNG keeps the full text).

    ``ValueError`` if the code would be wider than :data:`MAX_COLUMNS` (the PNG is still
    written: scan that one).
    """
    import segno

    qr = segno.make(config_without_comments(text), error="m", micro=False)
    border = 2
    rows = [list(row) for row in qr.matrix_iter(scale=1, border=border)]
    width = len(rows[0])
    if width > MAX_COLUMNS:
        raise ValueError(f"terminal QR code would be {width} columns wide (> {MAX_COLUMNS})")
    if len(rows) % 2:
        rows.append([0] * width)
    # dark module = black; we draw light modules as the "ink" (full/half blocks) on a black
    # background so the code is dark-on-light as scanners expect
    glyphs = {(0, 0): "\u2588", (0, 1): "\u2580", (1, 0): "\u2584", (1, 1): " "}
    out = []
    for top, bottom in zip(rows[0::2], rows[1::2], strict=True):
        line = "".join(glyphs[(bool(t), bool(b))] for t, b in zip(top, bottom, strict=True))
        out.append("\x1b[40;97m" + line + "\x1b[0m")
    return ("\n".join(out) + "\n").encode()


def _current(directory: Path, name: str) -> str | None:
    path = directory / f"{name}.conf"
    try:
        return path.read_text()
    except OSError:
        return None


def read_manifest(directory: Path) -> dict:
    """What this operation wrote in ``directory``: ``{"files": set of file names,
    "forgotten": {peer: fingerprint of the config whose files were deleted on request}}``."""
    try:
        data = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        data = {}
    files = {str(n) for n in data.get("files", []) if isinstance(n, str) and "/" not in n}
    forgotten = data.get("forgotten", {})
    if not isinstance(forgotten, dict):
        forgotten = {}
    return {"files": files, "forgotten": {str(k): str(v) for k, v in forgotten.items()}}


def _files_of(name: str) -> list[str]:
    return [f"{name}{suffix}" for suffix in SUFFIXES]


def _write_manifest(folder: Path, manifest: dict) -> None:
    text = json.dumps({"written_by": "self-sovereign-ollama (operations/peer_files.py)",
                       "files": sorted(manifest["files"]),
                       "forgotten": dict(sorted(manifest["forgotten"].items()))},
                      indent=2) + "\n"
    _atomic_write(folder / MANIFEST, text.encode())


def _ours(folder: Path, manifest: dict, name: str) -> list[Path]:
    return [folder / f for f in _files_of(name)
            if f in manifest["files"] and (folder / f).exists()]


def plan_files(directory: str, configs: Mapping[str, Secret], forget: set[str]) -> dict:
    """What :func:`write` has to do (reads the folder only): ``write`` and ``forget`` (peer
    names), ``stale`` (file names), the new ``forgotten`` record and whether the manifest
    changes."""
    folder = Path(directory)
    manifest = read_manifest(folder)
    forgotten = {n: f for n, f in manifest["forgotten"].items() if n in configs}
    todo: dict = {"write": [], "forget": [], "stale": []}
    for name in sorted(configs):
        fp = configs[name].fingerprint
        if name in forget:
            if _ours(folder, manifest, name) or forgotten.get(name) != fp:
                todo["forget"].append(name)
            forgotten[name] = fp
            continue
        if forgotten.get(name) == fp:  # imported and deleted on request; unchanged since
            continue
        forgotten.pop(name, None)
        if (_current(folder, name) != configs[name].reveal()
                or not set(_files_of(name)[:2]) <= manifest["files"]
                or not all((folder / f).exists() for f in _files_of(name)[:2])):
            todo["write"].append(name)
    declared = {f for name in configs for f in _files_of(name)}
    todo["stale"] = sorted(f for f in manifest["files"] - declared if (folder / f).exists())
    todo["forgotten"] = forgotten
    todo["manifest"] = forgotten != manifest["forgotten"]
    return todo


def _apply(directory: str, configs: Mapping[str, Secret], todo: dict) -> None:
    folder = Path(directory)
    if not folder.is_dir():
        folder.mkdir(mode=0o700, parents=True)
        os.chmod(folder, 0o700)  # ours, just made (the umask may have narrowed it)
    manifest = read_manifest(folder)
    for name in todo["write"]:
        text = configs[name].reveal()
        manifest["files"] |= set(_files_of(name))
        _write_manifest(folder, manifest)  # first: an interruption never orphans our files
        _atomic_write(folder / f"{name}.conf", text.encode())
        _atomic_write(folder / f"{name}.png", qr_png(text))
        try:
            _atomic_write(folder / f"{name}.qr.txt", qr_terminal(text))
        except ValueError as exc:
            logger.warning(f"    {name}: {exc}: scan {name}.png instead")
            (folder / f"{name}.qr.txt").unlink(missing_ok=True)
        logger.info(f"    peer config written: {folder / name}.conf  (QR: {name}.png, "
                    f"{name}.qr.txt)")
    for name in todo["forget"]:
        for path in _ours(folder, manifest, name):
            path.unlink()
        manifest["files"] -= set(_files_of(name))
        logger.info(f"    peer config of {name} deleted from {folder} as asked (the device "
                    "keeps its copy; a new one is written when its keys change)")
    for f in todo["stale"]:
        (folder / f).unlink(missing_ok=True)
        manifest["files"].discard(f)
        logger.info(f"    peer config removed (no longer declared): {folder / f}")
    manifest["forgotten"] = todo["forgotten"]
    _write_manifest(folder, manifest)


def forget_list(value: object, configs: Mapping[str, Secret]) -> list[str]:
    """The peers named by ``forget_peer_files`` (a list or a comma-separated string);
    ``OperationError`` naming a peer that has no controller-made config."""
    if value in (None, "", []):
        return []
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise OperationError(f"network: forget_peer_files: {value!r} (expected peer names, "
                             "e.g. alice_phone,bob_tablet)")
    unknown = [n for n in names if n and n not in configs]
    if unknown:
        raise OperationError(
            f"network: forget_peer_files: {', '.join(unknown)!r} (not an enabled peer with a "
            f"controller-made config; those are: {', '.join(sorted(configs)) or 'none'})")
    return [n for n in names if n]


@operation()
def write(configs: Mapping[str, Secret], directory: str = "out/peers",
          forget: Iterable[str] = ()):
    """Converge the configs and QR codes of peers without SSH on the controller.

    + configs: ``{peer name: config text}`` (:class:`Secret` values)
    + directory: output folder (git-ignored; created mode 700 when missing)
    + forget: peers whose files are deleted now (their phone imported the config); they are
      written again only when the config changes (new keys, address, endpoint)

    Only files listed in the folder's manifest are ever deleted or replaced by a removal.
    """
    todo = plan_files(directory, configs, set(forget))
    if not (todo["write"] or todo["forget"] or todo["stale"] or todo["manifest"]):
        host.noop(f"peer configs in {directory} are up to date ({len(configs)})")
        return
    yield FunctionCommand(_apply, (directory, dict(configs), todo), {})
