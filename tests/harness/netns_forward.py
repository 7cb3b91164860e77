"""TCP forwarder INTO the fake router's network namespace (TEST ONLY; stdlib only).

    python3 netns_forward.py NETNS_FILE LISTEN_ADDR LISTEN_PORT TARGET_PORT READY_FILE

Starts in the host's network namespace, joins ``NETNS_FILE`` (``setns``) just long enough to
bind ``LISTEN_ADDR:LISTEN_PORT`` there, and returns to the host's namespace: every connection
accepted *inside the router's network* is forwarded to ``127.0.0.1:TARGET_PORT`` on the host,
where the fake router's sshd listens. So a controller reaches the router's SSH only through the
router's own addresses and ports: when the router loses the address (or a firewall drops the
packets) the controller is really cut off. Writes READY_FILE once listening.
"""

import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")


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


def serve(conn: socket.socket, port: int) -> None:
    try:
        upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
        upstream.settimeout(None)
    except OSError:
        conn.close()
        return
    threading.Thread(target=pipe, args=(conn, upstream), daemon=True).start()
    pipe(upstream, conn)


def main() -> int:
    netns, addr, port, target, ready = sys.argv[1:6]
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    router = os.open(netns, os.O_RDONLY)
    setns(router)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_IP, 15, 1)  # IP_FREEBIND: the address may come later
    listener.bind((addr, int(port)))
    listener.listen(64)
    setns(home)  # sockets made from now on (the upstream ones) are in the host's namespace
    with open(ready, "w") as f:
        f.write("ready\n")
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, int(target)), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
