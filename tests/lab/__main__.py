"""``python3 -m tests.lab up|down|status|ssh`` -- the lab on this machine (needs root).

    python3 -m tests.lab up         # build the namespaces, boot the router, start the SSH servers
    pyinfra inventories/lab.py deploys/all.py
    python3 -m tests.lab ssh router 'wg show'     # a counted exec, like pyinfra's
    python3 -m tests.lab status
    python3 -m tests.lab down       # stop everything, remove every namespace (also after a crash)

``up`` starts a detached supervisor (``serve``) that owns the SSH servers and keeps the lab
running until ``down``; it writes ``<dir>/state.json`` (default dir ``.lab`` in the repository,
or ``$SSOL_LAB_DIR``) when the lab is ready, and logs to ``<dir>/lab.log``. Secrets of the lab's
inventory live in ``<dir>/secrets``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.lab import topology as t
from tests.lab.lab import STATE_FILE, Lab, LabState, lab_dir, stop_supervisor


def _key_value(text: str) -> str:
    if "=" not in text or not text.split("=", 1)[0]:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return text


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m tests.lab", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="action", required=True)
    for name in ("up", "serve", "down", "status", "ssh"):
        s = sub.add_parser(name)
        s.add_argument("--dir", default=None, help="lab directory (default .lab or "
                       "$SSOL_LAB_DIR)")
        if name in ("up", "serve", "down"):
            s.add_argument("--prefix", default=None,
                           help=f"namespace name prefix (default {t.DEFAULT_PREFIX})")
        if name in ("up", "serve"):
            s.add_argument("--path-prepend", action="append", default=[], metavar="DIR",
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
            s.add_argument("host")
            s.add_argument("command", nargs="?")
    return p.parse_args(argv)


def _dir(args: argparse.Namespace) -> Path:
    return Path(args.dir).resolve() if args.dir else lab_dir()


def up(args: argparse.Namespace) -> int:
    d = _dir(args)
    d.mkdir(parents=True, exist_ok=True)
    stop_supervisor(d, args.prefix)
    argv = [sys.executable, "-m", "tests.lab", "serve", "--dir", str(d)]
    if args.prefix:
        argv += ["--prefix", args.prefix]
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
            print(f"lab up: state in {d / STATE_FILE}; "
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
    lab = Lab(_dir(args), args.prefix or t.DEFAULT_PREFIX, path_prepend=args.path_prepend,
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
    try:
        state = LabState(_dir(args))
    except FileNotFoundError as exc:
        print(exc)
        return 1
    print(json.dumps({"alive": state.alive(), "prefix": state.data["prefix"],
                      "hosts": {n: h["ssh"]["ssh_port"] for n, h in state.data["hosts"].items()},
                      "router_devices": state.live_devices()}, indent=1))
    return 0 if state.alive() else 1


def ssh(args: argparse.Namespace) -> int:
    state = LabState(_dir(args))
    h = state.data["hosts"][args.host]["ssh"]
    argv = ["ssh", "-F", "/dev/null", "-p", str(h["ssh_port"]), "-i", h["ssh_key"],
            "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={h['ssh_known_hosts_file']}",
            "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
            f"{h.get('ssh_user', 'root')}@127.0.0.1"]
    if args.command:
        argv += ["--", args.command]
    return subprocess.call(argv)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    return {"up": up, "serve": serve, "down": down, "status": status, "ssh": ssh}[args.action](
        args)


if __name__ == "__main__":
    sys.exit(main())
