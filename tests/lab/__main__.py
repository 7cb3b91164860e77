"""``python3 -m tests.lab up|down|status|ssh|exec|tunnel`` -- the lab on this machine (needs root).

    python3 -m tests.lab up         # build the namespaces, boot the router, start the SSH servers
    pyinfra inventories/lab.py deploys/all.py
    python3 -m tests.lab ssh router 'wg show'     # a counted exec, like pyinfra's
    python3 -m tests.lab status
    python3 -m tests.lab tunnel phone up          # the phone's tunnel, from its generated config
    python3 -m tests.lab exec phone ping -c1 192.168.100.10   # inside the phone's namespace
    python3 -m tests.lab down       # stop everything, remove every namespace (also after a crash)

``up`` starts a detached supervisor (``serve``) that owns the SSH servers and keeps the lab
running until ``down``; it writes ``<dir>/state.json`` (default dir ``.lab`` in the repository,
or ``$SSOL_LAB_DIR``) when the lab is ready, and logs to ``<dir>/lab.log``. Secrets of the lab's
inventory live in ``<dir>/secrets``, the phone's config and QR code in ``<dir>/out/peers``.

Each lab directory owns its namespaces: their prefix defaults to ``ssol-<6 hex of the
directory's path>-``, is recorded in ``<dir>/prefix`` and the state file, and ``down`` removes
only that lab's, so two clones (or two directories) run labs side by side.

``ssh HOST`` logs in to a managed host (router, server, client1, client2); the other roles
(inet, lan, phone) have no SSH server, so ``ssh`` gives a shell (or runs the command) in their
network namespace, as ``exec`` does for any role.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.lab import topology as t
from tests.lab.lab import (
    STATE_FILE,
    Lab,
    LabState,
    lab_dir,
    lab_prefix,
    record_prefix,
    stop_supervisor,
)


def _key_value(text: str) -> str:
    if "=" not in text or not text.split("=", 1)[0]:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return text


def _prefix(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,24}", text):
        raise argparse.ArgumentTypeError(
            f"expected 1-24 letters, digits, '_', '.' or '-' (a namespace name prefix), "
            f"got {text!r}")
    return text


def _directory(text: str) -> str:
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"not a directory: {text!r}")
    return text


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    p = argparse.ArgumentParser(prog="python3 -m tests.lab", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    subs = {}
    helps = {"up": "build and start the lab", "serve": "(internal) run the lab in this process",
             "down": "stop the lab and remove its namespaces", "status": "is it running?",
             "ssh": "log in to a host (or a shell in a role's namespace)",
             "exec": "run a command in a role's network namespace",
             "tunnel": "bring a remote peer's WireGuard tunnel up/down from its config"}
    for name in ("up", "serve", "down", "status", "ssh", "exec", "tunnel"):
        s = subs[name] = sub.add_parser(name, help=helps[name])
        s.add_argument("--dir", default=None, help="lab directory (default .lab or "
                       "$SSOL_LAB_DIR)")
        if name in ("up", "serve", "down"):
            s.add_argument("--prefix", default=None, type=_prefix,
                           help="namespace name prefix (default ssol-<hash of --dir>-)")
        if name in ("up", "serve"):
            s.add_argument("--path-prepend", action="append", default=[], metavar="DIR",
                           type=_directory,
                           help="put DIR first on PATH of the server and clients")
            s.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                           type=_key_value,
                           help="environment of the server's and clients' commands; {name}, "
                           "{dir} and {home} expand per host")
            s.add_argument("--bare-server", action="store_true",
                           help="leave the server without its static DMZ address")
            s.add_argument("--plain", action="store_true",
                           help="server and clients as plain namespaces logging in as root "
                           "(not fake Macs)")
            s.add_argument("--watch-pid", type=int, default=None,
                           help="stop the lab when this process exits (for test runs)")
        if name == "ssh":
            s.add_argument("host", choices=t.ROLES, metavar="HOST",
                           help=f"one of {', '.join(t.ROLES)}")
            s.add_argument("command", nargs="?")
        if name == "exec":
            s.add_argument("role", choices=t.ROLES, metavar="ROLE",
                           help=f"one of {', '.join(t.ROLES)}")
            s.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND ...")
        if name == "tunnel":
            s.add_argument("role", choices=t.REMOTE_PEERS, metavar="PEER",
                           help=f"one of {', '.join(t.REMOTE_PEERS)}")
            s.add_argument("updown", choices=("up", "down"), metavar="up|down")
            s.add_argument("--config", default=None, metavar="FILE",
                           help="wg-quick config (default <dir>/out/peers/<PEER>.conf, where "
                           "the router role writes the phone's)")
    return p, subs


def _args(argv: list[str] | None) -> argparse.Namespace:
    p, subs = _parser()
    args = p.parse_args(argv)  # a bad argument: usage and exit 2 (argparse)
    if args.action == "exec":
        if args.command[:1] == ["--"]:
            args.command = args.command[1:]
        if not args.command:
            subs["exec"].error("a COMMAND to run is required")
    return args


def _dir(args: argparse.Namespace) -> Path:
    return Path(args.dir).resolve() if args.dir else lab_dir()


def up(args: argparse.Namespace) -> int:
    d = _dir(args)
    d.mkdir(parents=True, exist_ok=True)
    stop_supervisor(d, args.prefix)
    prefix = lab_prefix(d, args.prefix)
    record_prefix(d, prefix)
    argv = [sys.executable, "-m", "tests.lab", "serve", "--dir", str(d), "--prefix", prefix]
    for p in args.path_prepend:
        argv += ["--path-prepend", str(Path(p).resolve())]
    for item in args.env:
        argv += ["--env", item]
    if args.bare_server:
        argv.append("--bare-server")
    if args.plain:
        argv.append("--plain")
    if args.watch_pid:
        argv += ["--watch-pid", str(args.watch_pid)]
    log = open(d / "lab.log", "wb")  # noqa: SIM115 - handed to the child
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True, cwd=repo)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (d / STATE_FILE).exists():
            print(f"lab up (namespaces {prefix}*): state in {d / STATE_FILE}; "
                  "run `pyinfra inventories/lab.py deploys/all.py`")
            return 0
        if proc.poll() is not None:
            sys.stderr.write((d / "lab.log").read_text(errors="replace"))
            print("lab up: failed", file=sys.stderr)
            return 1
        time.sleep(0.05)
    proc.kill()
    print("lab up: timed out", file=sys.stderr)
    return 1


def serve(args: argparse.Namespace) -> int:
    env = dict(item.split("=", 1) for item in args.env)
    lab = Lab(_dir(args), args.prefix, path_prepend=args.path_prepend,
              env=env, server_address=not args.bare_server, macs=not args.plain)
    stopping = []

    def on_signal(signum, _frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    lab.up(supervisor_pid=os.getpid())
    print(f"lab ready (pid {os.getpid()})", flush=True)
    try:
        while not stopping:
            if args.watch_pid:
                try:
                    os.kill(args.watch_pid, 0)
                except OSError:
                    print(f"process {args.watch_pid} is gone: stopping", flush=True)
                    break
            time.sleep(0.2)
    finally:
        lab.down()
        print("lab down", flush=True)
    return 0


def down(args: argparse.Namespace) -> int:
    found = stop_supervisor(_dir(args), args.prefix)
    print("lab down" if found else "lab down (nothing was running; leftovers removed)")
    return 0


def status(args: argparse.Namespace) -> int:
    state = LabState(_dir(args))
    print(json.dumps({"alive": state.alive(), "prefix": state.data["prefix"],
                      "hosts": {n: h["ssh"]["ssh_port"] for n, h in state.data["hosts"].items()},
                      "router_devices": state.live_devices()}, indent=1))
    return 0 if state.alive() else 1


def _in_namespace(state: LabState, role: str, command: list[str]) -> int:
    ip = shutil.which("ip", path="/usr/sbin:/usr/bin:/sbin:/bin") or "ip"
    return subprocess.call([ip, "netns", "exec", state.topology.ns(role), *command])


def ssh(args: argparse.Namespace) -> int:
    state = LabState(_dir(args))
    if args.host not in state.data["hosts"]:
        print(f"lab ssh: {args.host} has no SSH server (not a managed host): "
              f"{'running' if args.command else 'a shell'} in its network namespace "
              f"{state.topology.ns(args.host)}", file=sys.stderr)
        return _in_namespace(state, args.host,
                             ["sh", "-c", args.command] if args.command else ["sh", "-i"])
    h = state.data["hosts"][args.host]["ssh"]
    argv = ["ssh", "-F", "/dev/null", "-p", str(h["ssh_port"]), "-i", h["ssh_key"],
            "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={h['ssh_known_hosts_file']}",
            "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
            f"{h.get('ssh_user', 'root')}@127.0.0.1"]
    if args.command:
        argv += ["--", args.command]
    return subprocess.call(argv)


def exec_(args: argparse.Namespace) -> int:
    return _in_namespace(LabState(_dir(args)), args.role, args.command)


def tunnel(args: argparse.Namespace) -> int:
    from tests.lab.tunnels import PeerTunnel

    state = LabState(_dir(args))
    config = Path(args.config) if args.config else state.dir / "out" / "peers" / f"{args.role}.conf"
    if not config.is_file():
        print(f"lab tunnel: {config} not found (the router role writes the phone's config: "
              "run `pyinfra inventories/lab.py deploys/all.py` first)", file=sys.stderr)
        return 1
    peer = PeerTunnel.from_config(state.topology, args.role, config)
    if args.updown == "down":
        peer.down()
        print(f"lab tunnel: {args.role} down ({peer.dev})")
        return 0
    peer.up()
    handshake = peer.wait_handshake(timeout=5)
    print(f"lab tunnel: {args.role} up ({peer.dev}, {peer.address}, from {config}); "
          f"handshake with the router: {'yes' if handshake else 'NOT YET'}")
    return 0 if handshake else 1


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    actions = {"up": up, "serve": serve, "down": down, "status": status, "ssh": ssh,
               "exec": exec_, "tunnel": tunnel}
    try:
        return actions[args.action](args)
    except FileNotFoundError as exc:  # no state file: no running lab in that directory
        print(f"lab {args.action}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
