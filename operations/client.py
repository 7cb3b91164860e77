"""Operations of the macOS client role: WireGuard tunnel, managed files, profile blocks, pipx.

All take everything as arguments (paths, contents, the state already read by
:class:`facts.client.ClientState` / :class:`facts.client.TunnelState`), yield the fewest
commands and call ``host.noop`` when nothing differs. Values reaching a shell are quoted.

* :func:`wireguard_tunnel`: the wg-quick config (holds the private key) as a root-owned 600
  file, an optional LaunchDaemon that brings the tunnel up at boot, and the tunnel itself
  (up / restarted on change / down). The config is uploaded into a directory of the SSH user
  with mode 700, then moved into place by ``sudo install -m 600 -o root -g wheel``: it is
  never readable by anyone else, not even for a moment, and never on a command line.
* :func:`private_directory`: a mode-700 directory of the SSH user (upload staging, env file).
* :func:`managed_file`: a user file with our header (env file, Aider configs), compared by
  sha256, uploaded next to it and renamed into place; a file of the user's that is not ours
  is backed up once before it is replaced.
* :func:`profile_block`: exactly one marker-delimited block in a shell profile (``# >>> name
  >>>`` ... ``# <<< name <<<``), replaced in place, legacy blocks removed; a file with an
  unterminated marker is refused rather than guessed at. BSD awk, no ``sed -i``; the new
  profile is written next to the real file and renamed over it.
* :func:`pipx_package`: install / pin / remove a pipx application (Aider).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pyinfra import host
from pyinfra.api import (
    FileUploadCommand,
    FunctionCommand,
    OperationError,
    QuoteString,
    StringCommand,
    operation,
)

from facts.client import LEGACY_MARKERS, MARKER, begin_marker, end_marker
from operations.secret import Secret, reveal

#: Suffix of the temp file a managed file is uploaded to before it is renamed into place.
NEW_SUFFIX = ".ssollama-new"


def sha256(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def _q(value: str) -> str:
    """Shell-quote for text assembled into a script (``QuoteString`` for single commands)."""
    import shlex

    return shlex.quote(str(value))


# -- WireGuard ------------------------------------------------------------------------------


def _root_file_ok(info: Mapping[str, Any] | None, mode: str) -> bool:
    return bool(info) and info.get("mode") == mode and info.get("uid") == "0" \
        and info.get("gid") == "0"


@operation()
def wireguard_tunnel(
    interface: str,
    config: Secret | None,
    config_path: str,
    staging_dir: str,
    state: Mapping[str, Any] | None = None,
    at_boot: bool = True,
    daemon_label: str | None = None,
    daemon_plist_path: str | None = None,
    daemon_plist: str | None = None,
    prefix: str = "/opt/homebrew",
    present: bool = True,
    key_path: str | None = None,
    key_changed: bool = False,
    on_public_key: Callable[[str], None] | None = None,
    forget_key: bool = False,
):
    """Converge a wg-quick tunnel on macOS: config, boot LaunchDaemon, the tunnel itself.

    + interface: the tunnel name (``<config_path>`` is ``.../<interface>.conf``)
    + config: the complete wg-quick config (:class:`Secret`, from ``deploys.peers.peer_config``)
    + config_path: where wg-quick finds it, e.g. ``/opt/homebrew/etc/wireguard/wg-ollama.conf``
    + staging_dir: a mode-700 directory of the SSH user (see :func:`private_directory`) the
      config is uploaded to before ``sudo install`` moves it into place
    + state: :class:`facts.client.TunnelState` (read with ``_sudo=True`` when not given)
    + at_boot: install the LaunchDaemon (launchd loads it at boot) and keep the tunnel up now;
      ``False``: remove the daemon, restart a running tunnel on change, never start one
    + daemon_label / daemon_plist_path / daemon_plist: the daemon's label, path, rendered text
    + prefix: Homebrew's prefix (``bash`` >= 4 and ``wg-quick`` are called from there)
    + present: ``False`` takes the tunnel down and removes the daemon and the config
    + key_path: the Mac makes and keeps its own private key there (``key_on_mac``): ``config``
      has no ``PrivateKey`` line, the Mac adds it from this file (made with ``wg genkey`` if
      missing) while installing; the key never leaves the Mac and is on no command line
    + key_changed: the key file was replaced in this run (rotation): re-install the config
    + on_public_key: called at execution with the Mac's public key (when the controller did
      not know it before the run: a key made by this operation)
    + forget_key: with ``present=False``, delete the Mac's key file too (uninstall); a
      disabled peer keeps it, so that enabling it again needs no new key

    Files are replaced atomically (a temp file in the same root-only directory, then a
    rename): an interruption never leaves a truncated config or plist. Tunnel configs, keys
    and LaunchDaemons this project made for another interface name (``state["others"]``: a
    renamed tunnel) are taken down and removed.

    The daemon is not bootstrapped now (its only job is ``wg-quick up`` at boot, which would
    race the deploy's own ``up``): the deploy brings the tunnel up itself, so a failing
    ``wg-quick`` fails the run with its message. One exec when something changes (plus an
    upload and a ``mkdir`` when a file's content changed); none when nothing did.

    **Example:**

    .. code:: python

        client.wireguard_tunnel(
            name="WireGuard tunnel", interface="wg-ollama", config=peer_config(plan, peer),
            config_path="/opt/homebrew/etc/wireguard/wg-ollama.conf",
            staging_dir="/Users/alice/.config/self-sovereign-ollama", state=tunnel_state,
            daemon_label="org.self-sovereign-ollama.wireguard.wg-ollama",
            daemon_plist_path="/Library/LaunchDaemons/org.self-sovereign-ollama.wireguard.wg-ollama.plist",
            daemon_plist=plist_text,
        )
    """
    if state is None:
        from facts.client import TunnelState

        state = host.get_fact(TunnelState, interface=interface, config=config_path,
                              label=daemon_label or "", plist=daemon_plist_path, _sudo=True)
    state = state or {}
    files = state.get("files", {})
    conf_info = files.get(config_path)
    plist_info = files.get(daemon_plist_path) if daemon_plist_path else None
    tunnel = state.get("tunnel")
    was_up = bool(tunnel and tunnel.get("socket"))
    loaded = bool(state.get("daemon_loaded"))
    disabled = bool(state.get("daemon_disabled"))
    conf_dir = config_path.rsplit("/", 1)[0]
    bash, wg_quick = f"{prefix}/bin/bash", f"{prefix}/bin/wg-quick"
    wg = f"{_q(bash)} {_q(wg_quick)}"
    label_target = f"system/{daemon_label}" if daemon_label else None

    # Homebrew first (bash >= 4, wg, wireguard-go), then whatever sudo left (secure_path)
    brew_path = _q(f"{prefix}/bin:{prefix}/sbin")
    lines = [f'export PATH={brew_path}:"$PATH":/usr/bin:/bin:/usr/sbin:/sbin', "umask 077"]
    uploads: list[tuple[bytes, str]] = []
    done: list[str] = []

    for other in state.get("others", []):  # a renamed tunnel's leftovers (ours only)
        if other.endswith(".plist"):
            other_label = other.rsplit("/", 1)[-1][: -len(".plist")]
            lines.append(f"launchctl bootout {_q('system/' + other_label)} 2>/dev/null || true")
        elif other.endswith(".conf"):
            other_if = other.rsplit("/", 1)[-1][: -len(".conf")]
            other_name = _q(f"/var/run/wireguard/{other_if}.name")
            lines.append(f"if [ -f {other_name} ]; then {wg} down {_q(other)} ||"
                         f" rm -f \"/var/run/wireguard/$(cat {other_name}).sock\" {other_name}; fi")
        lines.append(f"rm -f {_q(other)}")
        done.append(f"removed {other} (another tunnel name of ours)")

    if not present:
        if label_target and loaded:
            lines.append(f"launchctl bootout {_q(label_target)} 2>/dev/null || true")
            done.append("boot daemon unloaded")
        if plist_info:
            lines.append(f"rm -f {_q(daemon_plist_path)}")
            done.append("boot daemon removed")
        if tunnel:
            sock = _q(f"/var/run/wireguard/{tunnel.get('device', '')}.sock")
            name_file = _q(f"/var/run/wireguard/{interface}.name")
            down = f"{wg} down {_q(config_path)}" if conf_info else "false"
            lines.append(f"{down} || rm -f {sock} {name_file}")
            done.append("tunnel down")
        if conf_info:
            lines.append(f"rm -f {_q(config_path)}")
            done.append("config removed")
        if forget_key and key_path and state.get("key_file"):
            lines.append(f"rm -f {_q(key_path)}")
            done.append("the Mac's WireGuard key removed")
        if not done:
            host.noop(f"WireGuard tunnel {interface} is absent")
            return
        yield StringCommand("\n".join(lines), _sudo=True)
        return

    if config is None:
        raise OperationError(f"wireguard_tunnel {interface}: no config to install")
    if at_boot and not (daemon_label and daemon_plist_path and daemon_plist):
        raise OperationError("wireguard_tunnel: at_boot needs daemon_label, daemon_plist_path "
                             "and daemon_plist")
    staged_conf = f"{staging_dir}/{interface}.conf"
    staged_plist = f"{staging_dir}/{daemon_label}.plist" if daemon_label else None
    cleanup = " ".join(_q(p) for p in (staged_conf, staged_plist) if p)
    lines.append(f"fail() {{ echo \"wireguard_tunnel: $1\" >&2; rm -f {cleanup}; exit 1; }}")

    dir_info = state.get("dirs", {}).get(conf_dir)
    if not (dir_info and dir_info.get("mode") == "drwx------" and dir_info.get("uid") == "0"):
        lines.append(f"mkdir -p {_q(conf_dir)} && chown root:wheel {_q(conf_dir)} &&"
                     f" chmod 700 {_q(conf_dir)} || fail 'cannot create {conf_dir}'")
        done.append(f"{conf_dir} (700)")
    conf_text = str(reveal(config))  # a Secret; plain text only in fixtures
    if key_path:  # compared without the PrivateKey line, which only the Mac knows
        conf_changed = (not conf_info or key_changed or not state.get("key_in_config")
                        or state.get("config_sha256_nokey") != sha256(conf_text))
    else:
        conf_changed = not conf_info or conf_info.get("sha256") != sha256(conf_text)
    restart = was_up and conf_changed
    if restart:  # down with the config it was brought up with (its hooks, DNS)
        assert tunnel is not None
        sock = _q(f"/var/run/wireguard/{tunnel.get('device', '')}.sock")
        name_file = _q(f"/var/run/wireguard/{interface}.name")
        lines.append(f"{wg} down {_q(config_path)} || rm -f {sock} {name_file}")
    tmp_conf = _q(f"{conf_dir}/.{interface}.conf.new")
    if conf_changed and key_path:
        k, k_new = _q(key_path), _q(key_path + ".new")
        uploads.append((conf_text.encode(), staged_conf))
        lines.append(f"[ -s {k} ] || {{ {_q(prefix + '/bin/wg')} genkey > {k_new} &&"
                     f" chown root:wheel {k_new} && chmod 600 {k_new} && mv -f {k_new} {k}; }}"
                     " || fail 'cannot make the WireGuard key'")
        # the key goes from its file into the config by cat: never on a command line
        lines.append(f"{{ awk 'NR==1,/^\\[Interface\\]$/' {_q(staged_conf)} &&"
                     f" printf 'PrivateKey = ' && cat {k} &&"
                     f" awk 'f; /^\\[Interface\\]$/ {{ f = 1 }}' {_q(staged_conf)}; }} > {tmp_conf}"
                     f" && chown root:wheel {tmp_conf} && chmod 600 {tmp_conf}"
                     f" && mv -f {tmp_conf} {_q(config_path)}"
                     f" || fail 'cannot install {config_path}'")
        lines.append(f"rm -f {_q(staged_conf)}")
        done.append("config " + ("updated" if conf_info else "installed")
                    + " (with the Mac's own key)")
    elif conf_changed:
        uploads.append((conf_text.encode(), staged_conf))
        lines.append(f"install -m 600 -o root -g wheel {_q(staged_conf)} {tmp_conf}"
                     f" && mv -f {tmp_conf} {_q(config_path)}"
                     f" || fail 'cannot install {config_path}'")
        lines.append(f"rm -f {_q(staged_conf)}")
        done.append("config " + ("updated" if conf_info else "installed"))
    elif not _root_file_ok(conf_info, "-rw-------"):
        lines.append(f"chown root:wheel {_q(config_path)} && chmod 600 {_q(config_path)}"
                     " || fail 'cannot fix the config permissions'")
        done.append("config permissions (600 root:wheel)")

    if at_boot:
        assert daemon_plist is not None and daemon_plist_path is not None
        plist_changed = not plist_info or plist_info.get("sha256") != sha256(daemon_plist)
        if plist_changed:
            if loaded:  # an old definition is loaded: unload it, launchd loads the new at boot
                lines.append(f"launchctl bootout {_q(label_target)} 2>/dev/null || true")
            uploads.append((daemon_plist.encode(), staged_plist))
            tmp_plist = _q(f"{daemon_plist_path}.new")
            lines.append(f"install -m 644 -o root -g wheel {_q(staged_plist)} {tmp_plist}"
                         f" && mv -f {tmp_plist} {_q(daemon_plist_path)}"
                         f" || fail 'cannot install {daemon_plist_path}'")
            lines.append(f"rm -f {_q(staged_plist)}")
            done.append("boot daemon " + ("updated" if plist_info else "installed"))
        elif not _root_file_ok(plist_info, "-rw-r--r--"):
            lines.append(f"chown root:wheel {_q(daemon_plist_path)} &&"
                         f" chmod 644 {_q(daemon_plist_path)} || fail 'cannot fix the plist'")
            done.append("boot daemon permissions")
        if disabled:
            lines.append(f"launchctl enable {_q(label_target)}")
            done.append("boot daemon enabled")
    elif daemon_plist_path and (plist_info or loaded):
        if loaded:
            lines.append(f"launchctl bootout {_q(label_target)} 2>/dev/null || true")
        lines.append(f"rm -f {_q(daemon_plist_path)}")
        done.append("boot daemon removed")

    if (at_boot and not was_up) or restart:
        if tunnel and not was_up:  # a name file without its socket: a dead tunnel's leftover
            lines.append(f"rm -f {_q(f'/var/run/wireguard/{interface}.name')}")
        lines.append(f"{wg} up {_q(config_path)} || fail 'wg-quick up failed'")
        done.append("tunnel restarted" if restart else "tunnel up")

    if not done:
        state_text = "up" if was_up else "down (tunnel_at_boot is off)"
        host.noop(f"WireGuard tunnel {interface} is configured and {state_text}")
        return
    if uploads:
        staging = _q(staging_dir)
        yield StringCommand(f"umask 077 && mkdir -p {staging} && chmod 700 {staging}")
        for data, dest in uploads:
            # never with sudo: pyinfra's sudo upload goes through a temp file in /tmp
            yield FileUploadCommand(io.BytesIO(data), dest, _sudo=False)
    yield StringCommand("\n".join(lines), _sudo=True)
    if key_path and on_public_key is not None:
        yield FunctionCommand(_report_public_key, (key_path, prefix, on_public_key), {})


def _report_public_key(state, host, key_path: str, prefix: str,
                       callback: Callable[[str], None]) -> None:
    """Read the Mac's public key (``wg pubkey < key``) and hand it to ``callback``."""
    ok, output = host.run_shell_command(
        StringCommand(f"{_q(prefix + '/bin/wg')} pubkey < {_q(key_path)}"), _sudo=True)
    public = output.stdout.strip() if ok else ""
    if not public:
        raise OperationError(f"cannot read the public key of {key_path}")
    callback(public)


# -- files of the SSH user ------------------------------------------------------------------


@operation()
def private_directory(path: str, state: Mapping[str, Any] | None):
    """A directory of the SSH user with mode 700 (created with its parents if missing).

    + path: absolute path, e.g. ``/Users/alice/.config/self-sovereign-ollama``
    + state: ``ClientState["dirs"].get(path)`` (``{"mode", "uid"}``) or ``None`` if absent

    **Example:**

    .. code:: python

        client.private_directory(name="Private dir", path=d, state=client_state["dirs"].get(d))
    """
    if state and state.get("mode") == "drwx------":
        host.noop(f"{path} exists, mode 700")
        return
    yield StringCommand("mkdir", "-p", QuoteString(path), "&&", "chmod", "700", QuoteString(path))


@operation()
def managed_file(
    path: str,
    content: str,
    state: Mapping[str, Any] | None,
    has_backup: bool = False,
    present: bool = True,
    restore_backup: bool = True,
    backup_suffix: str = ".before-self-sovereign-ollama",
    mode: str | None = None,
):
    """A file of the SSH user that this project writes (it starts with our header).

    + path: absolute path
    + content: the wanted text (ignored when ``present=False``)
    + state: ``ClientState["files"].get(path)`` (``{"sha256", "managed"}``) or ``None``
    + has_backup: a backup ``<path><backup_suffix>`` exists already
    + present: ``False`` removes the file if it is ours (and puts a backup back)
    + restore_backup: with ``present=False``, move the backup back into place
    + mode: e.g. ``"600"`` (a file with a secret): the temp file is made with that mode before
      anything is uploaded into it; ``None``: the upload's default (the SSH user's umask)

    The content is uploaded to ``<path>.ssollama-new`` next to the file, then renamed over it:
    an interruption leaves the old or the new file, never a truncated one (and at most that
    temp file, overwritten and renamed by the next run). A file that exists but is not ours
    (no header: e.g. the user's own ``~/.aider.conf.yml``) is copied to
    ``<path>.before-self-sovereign-ollama`` once (by a rename too) before it is replaced.

    **Example:**

    .. code:: python

        client.managed_file(name="Aider config", path="/Users/alice/.aider.conf.yml",
                            content=text, state=client_state["files"].get(path))
    """
    backup = path + backup_suffix
    if not present:
        if state and state.get("managed"):
            if restore_backup and has_backup:
                yield StringCommand("mv", "-f", QuoteString(backup), QuoteString(path))
            else:
                yield StringCommand("rm", "-f", QuoteString(path))
            return
        host.noop(f"{path} is not ours (absent or written by someone else): left alone")
        return
    if state and state.get("sha256") == sha256(content):
        host.noop(f"{path} is up to date")
        return
    if mode is not None and not (mode.isdigit() and len(mode) in (3, 4)):
        raise OperationError(f"managed_file {path}: bad mode {mode!r}")
    new = path + NEW_SUFFIX
    prepare = []
    if state and not state.get("managed") and not has_backup:  # the backup, also by a rename
        prepare.append(f"cp -p {_q(path)} {_q(backup + NEW_SUFFIX)} &&"
                       f" mv -f {_q(backup + NEW_SUFFIX)} {_q(backup)}")
    if mode is not None:  # the upload keeps the mode of the file it overwrites
        prepare.append(f"rm -f {_q(new)} && (umask 077 && : > {_q(new)}) && chmod {mode} {_q(new)}")
    if prepare:
        yield StringCommand(" && ".join(prepare))
    # next to it, then renamed: an interruption never leaves a truncated file
    yield FileUploadCommand(io.BytesIO(content.encode()), new)
    yield StringCommand("mv", "-f", QuoteString(new), QuoteString(path))


def _block_text(marker: str, body: str) -> str:
    return "\n".join([begin_marker(marker), body.rstrip("\n"), end_marker(marker)])


#: awk program of :func:`profile_block`: drop every block named in ``m`` or ``drop``, put the
#: new block (``ENVIRON["SSOLLAMA_BLOCK"]``, may be empty) where the first of them was, or
#: append it after a blank line; a removed block takes one blank line before it along (so an
#: uninstall gives back the file as it was). BSD awk (macOS), mawk, gawk, BusyBox awk.
_BLOCK_AWK = r"""
function flush() { while (nb > 0) { print ""; nb-- } }
BEGIN { n = split(drop, d, " "); for (i = 1; i <= n; i++) dr[d[i]] = 1
        blk = ENVIRON["SSOLLAMA_BLOCK"]; skip = ""; last = ""; nb = 0 }
skip == "" && $0 ~ /^# >>> [A-Za-z0-9_.-]+ >>>$/ && ($3 == m || ($3 in dr)) {
    if (!done && blk != "") { flush(); print blk; done = 1; last = "x" }
    else if (nb > 0) nb--
    skip = $3; next
}
skip != "" { if ($0 == "# <<< " skip " <<<") skip = ""; next }
$0 == "" { nb++; next }
{ flush(); print; last = $0 }
END {
    if (!done && blk != "") { if (nb == 0 && last != "") print ""; flush(); print blk }
    else flush()
}
"""


@operation()
def profile_block(
    path: str,
    body: str,
    state: Mapping[str, Any] | None,
    marker: str = MARKER,
    remove_markers: Iterable[str] = LEGACY_MARKERS,
    present: bool = True,
    create: bool = True,
):
    """Exactly one ``# >>> marker >>>`` ... ``# <<< marker <<<`` block in a shell profile.

    + path: absolute path of the profile (a symlink is written through, mode kept)
    + body: the lines between the markers
    + state: ``ClientState["profiles"].get(<name>)`` (``{"blocks", "unterminated"}``) or
      ``None`` when the file does not exist
    + marker: the block's name
    + remove_markers: names of other blocks to remove (the original installer's)
    + present: ``False`` removes our block (and the ``remove_markers`` ones)
    + create: create the file when it does not exist

    Our block is replaced where it is (the first one; duplicates are dropped) or appended.
    Refuses (fails) when a marker in the file has no end marker: deleting up to the end of
    someone's profile is not a guess to make. No-op when the file already has exactly one
    identical block and none to remove.

    **Example:**

    .. code:: python

        client.profile_block(name="~/.zshrc", path="/Users/alice/.zshrc",
                             body='. "$HOME/.config/self-sovereign-ollama/env.sh"',
                             state=client_state["profiles"].get(".zshrc"))
    """
    remove = tuple(remove_markers)
    if state is None:
        if not present:
            host.noop(f"{path} does not exist")
            return
        if not create:
            host.noop(f"{path} does not exist (not created)")
            return
        blocks: list[Mapping[str, Any]] = []
    else:
        broken = [u for u in state.get("unterminated", []) if u["marker"] in (marker, *remove)]
        if broken:
            first = broken[0]
            raise OperationError(
                f"{path}: line {first['begin']}: '{begin_marker(first['marker'])}' has no "
                f"'{end_marker(first['marker'])}' line; fix the file by hand and run again"
            )
        blocks = [b for b in state.get("blocks", []) if b["marker"] in (marker, *remove)]
    ours = [b for b in blocks if b["marker"] == marker]
    others = [b for b in blocks if b["marker"] != marker]
    wanted = body.rstrip("\n")
    if present and len(ours) == 1 and ours[0]["body"] == wanted and not others:
        host.noop(f"{path}: the {marker} block is in place")
        return
    if not present and not blocks:
        host.noop(f"{path}: no {marker} block")
        return
    block = _block_text(marker, wanted) if present else ""
    yield StringCommand(_profile_script(path, block, marker, remove))


def _profile_script(path: str, block: str, marker: str, remove: tuple[str, ...]) -> str:
    """Shell that rewrites the profile at ``path`` (through its symlinks) with ``block``: the
    new text goes to ``<file>.ssollama-new`` next to the real file, a ``cp -p`` of it (its mode
    and owner; a new file: the user's umask), then replaces it by a rename: an interruption
    never leaves a truncated profile, only the old or the new one (and at most that temp file,
    which the next run that changes the profile overwrites and renames)."""
    return (
        f'f={_q(path)}; n=0\n'
        'while [ -L "$f" ] && [ $n -lt 40 ]; do l=$(readlink "$f") || exit 1\n'
        '  case $l in /*) f=$l ;; *) f=${f%/*}/$l ;; esac; n=$((n+1)); done\n'
        f't="$f{NEW_SUFFIX}"; s=/dev/null\n'
        'if [ -e "$f" ]; then s=$f; cp -p "$f" "$t" || exit 1; fi\n'
        f"SSOLLAMA_BLOCK={_q(block)} awk -v m={_q(marker)} -v drop={_q(' '.join(remove))}"
        f' {_q(_BLOCK_AWK)} "$s" > "$t" && mv -f "$t" "$f" || {{ rm -f "$t"; exit 1; }}'
    )


@operation()
def remove_paths(paths: Iterable[str]):
    """Delete files and directories of the SSH user (``rm -rf``), e.g. on uninstall.

    + paths: absolute paths at least three levels deep (``/Users/alice/x``), found to exist
      by a fact; nothing to do when empty

    **Example:**

    .. code:: python

        client.remove_paths(name="Leftovers", paths=["/Users/alice/.ai-client"])
    """
    paths = list(paths)
    for path in paths:
        if not path.startswith("/") or len([p for p in path.split("/") if p]) < 3 \
                or "/../" in path + "/":
            raise OperationError(f"remove_paths: refusing to delete {path!r}")
    if not paths:
        host.noop("nothing to remove")
        return
    yield StringCommand("rm", "-rf", *(QuoteString(p) for p in paths))


# -- pipx -----------------------------------------------------------------------------------


@operation()
def pipx_package(
    package: str,
    installed_version: str | None,
    version: str | None = None,
    python: str | None = None,
    pipx: str = "/opt/homebrew/bin/pipx",
    present: bool = True,
):
    """A pipx application of the SSH user (Aider: ``aider-chat``).

    + package: the PyPI name
    + installed_version: from ``ClientState["aider"]`` (``None``: not installed)
    + version: pin this version (``pipx install --force pkg==version`` when it differs);
      ``None``: any version, installed once, never upgraded behind the user's back
    + python: the interpreter for the venv (Aider needs Python <= 3.12)
    + pipx: pipx's absolute path (not on PATH over SSH)
    + present: ``False`` uninstalls

    **Example:**

    .. code:: python

        client.pipx_package(name="Aider", package="aider-chat", installed_version=None,
                            python="/opt/homebrew/opt/python@3.12/bin/python3.12")
    """
    if not present:
        if installed_version is None:
            host.noop(f"{package} is not installed")
            return
        yield StringCommand(QuoteString(pipx), "uninstall", QuoteString(package))
        return
    if installed_version is not None and (version is None or installed_version == version):
        host.noop(f"{package} {installed_version} is installed")
        return
    spec = f"{package}=={version}" if version else package
    args: list[Any] = [QuoteString(pipx), "install"]
    if installed_version is not None:
        args.append("--force")
    if python:
        args += ["--python", QuoteString(python)]
    args.append(QuoteString(spec))
    yield StringCommand(*args)
