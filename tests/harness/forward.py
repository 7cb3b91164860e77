"""TCP forwarder between network namespaces (TEST ONLY; stdlib only): the one forwarder of the
harness and the lab.

    python3 forward.py LISTEN_NETNS LISTEN_ADDR LISTEN_PORT CONNECT_NETNS CONNECT_ADDR \\
        CONNECT_PORT READY_FILE

Listens on ``LISTEN_ADDR:LISTEN_PORT`` in ``LISTEN_NETNS`` and, for every connection accepted
there, opens one to ``CONNECT_ADDR:CONNECT_PORT`` from ``CONNECT_NETNS``, and copies bytes both
ways. A namespace is a file (``/run/netns/<name>``, ``/proc/<pid>/ns/net``) or ``-``: the one
the forwarder started in. How: ``setns`` is per thread and a new thread inherits its creator's
namespace, so the main thread joins the listening side, binds (``IP_FREEBIND``: the address may
appear later, e.g. the router's LAN address), then joins the connecting side before it accepts
and starts any worker: every upstream socket is made in ``CONNECT_NETNS``.

``LISTEN_PORT`` 0 takes a free port. READY_FILE is written atomically (tmp + rename) once
listening: ``<pid> <listening port>``. A bind error prints one line (with "Address already in
use" when taken) and exits 1.

Uses: a lab Mac's ``sshd`` (``tests/harness/fake_mac.py``: host ``127.0.0.1:P`` -> the Mac's
namespace ``127.0.0.1:P``), the fake router's SSH on ``:22`` inside its network namespace
(``tests/harness/lockout.py``, ``tests/lab/router.py``: -> the harness's sshd on the host's
loopback) and the lab controller's way to it through the LAN (``tests/lab/lab.py``: host
``127.0.0.1:P`` -> from the ``lan`` namespace to ``192.168.1.1:22``). :class:`Forwarder`
starts one from Python.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

CLONE_NEWNET = 0x40000000
IP_FREEBIND = 15  # Linux; not exported by every Python's socket module
HERE = "-"


def setns(path: str | int) -> None:
    """Move the calling thread into the network namespace of ``path`` (or an open fd of it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY) if isinstance(path, str) else path
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns {path}: {os.strerror(errno)}")
    finally:
        if isinstance(path, str):
            os.close(fd)


def pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


def serve(conn: socket.socket, target: tuple[str, int]) -> None:
    try:
        up = socket.create_connection(target, timeout=10)
        up.settimeout(None)
    except OSError:
        conn.close()
        return
    t = threading.Thread(target=pipe, args=(up, conn), daemon=True)
    t.start()
    pipe(conn, up)
    t.join()
    conn.close()
    up.close()


def main(argv: list[str]) -> int:
    if len(argv) != 7:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    listen_ns, listen_addr, listen_port, connect_ns, connect_addr, connect_port, ready = argv
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if listen_ns != HERE:
            setns(listen_ns)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        listener.bind((listen_addr, int(listen_port)))
        listener.listen(128)
        if connect_ns != HERE:
            setns(connect_ns)
        elif listen_ns != HERE:
            setns(home)
    except OSError as exc:
        where = f"{listen_addr}:{listen_port} in {listen_ns}"
        print(f"forward: {where}: {exc.strerror or exc}", flush=True)  # "Address already in use"
        return 1
    port = listener.getsockname()[1]
    with open(ready + ".tmp", "w") as f:  # complete before it is seen: write, then rename
        f.write(f"{os.getpid()} {port}\n")
    os.replace(ready + ".tmp", ready)
    print(f"forward: {listen_ns} {listen_addr}:{port} -> {connect_ns} "
          f"{connect_addr}:{connect_port}", flush=True)
    target = (connect_addr, int(connect_port))
    while True:
        conn, _addr = listener.accept()
        threading.Thread(target=serve, args=(conn, target), daemon=True).start()


class Forwarder:
    """This forwarder as a child process (killed with the thread that started it, and by
    :meth:`stop`). ``listen``/``connect`` are ``(netns or None, address, port)``; after
    :meth:`start`, ``port`` is the listening port (useful with port 0)."""

    def __init__(self, listen: tuple[str | None, str, int],
                 connect: tuple[str | None, str, int], ready: str | os.PathLike[str]) -> None:
        self.listen = listen
        self.connect = connect
        self.ready = Path(ready)
        self.port = listen[2]
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10) -> Forwarder:
        from tests.harness.sshd_host import HarnessError, _die_with_parent

        self.ready.unlink(missing_ok=True)
        argv = [sys.executable, str(Path(__file__).resolve())]
        for ns, addr, port in (self.listen, self.connect):
            argv += [str(ns) if ns else HERE, addr, str(port)]
        self._proc = subprocess.Popen([*argv, str(self.ready)], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while not self.ready.exists():
            if time.monotonic() > deadline or self._proc.poll() is not None:
                self.stop()
                out = self._proc.stdout.read().decode(errors="replace") if self._proc else ""
                raise HarnessError(f"the forwarder {' '.join(argv[2:])} did not start: {out}")
            time.sleep(0.01)
        self.port = int(self.ready.read_text().split()[1])
        return self

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> Forwarder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
