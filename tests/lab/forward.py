"""TCP forwarder of a lab Mac's SSH server (TEST ONLY; stdlib only).

    python3 forward.py PORT NETNS_PATH READY_FILE

Binds ``127.0.0.1:PORT`` in the network namespace it starts in (the controller's), then joins
``NETNS_PATH`` (``setns``) and forwards every connection to ``127.0.0.1:PORT`` there, where the
Mac's ``sshd`` listens. So ``sshd`` and everything it starts (the SSH user's commands, sudo,
launchd jobs) live in the host's network namespace without any privilege, while the controller
reaches it on its own loopback. Writes READY_FILE once listening; prints the bind error
("Address already in use") and exits 1 otherwise.
"""

import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


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
        up = socket.create_connection(("127.0.0.1", port), timeout=10)
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


def main() -> int:
    port, netns, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", port))
    except OSError as exc:
        print(f"forward: bind 127.0.0.1:{port}: {exc.strerror} (Address already in use)"
              if exc.errno == 98 else f"forward: bind 127.0.0.1:{port}: {exc}", flush=True)
        return 1
    listener.listen(128)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(netns, os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        print(f"forward: setns {netns}: {os.strerror(ctypes.get_errno())}", flush=True)
        return 1
    os.close(fd)
    with open(ready + ".tmp", "w") as f:  # complete before it is seen: write, then rename
        f.write(str(os.getpid()))
    os.replace(ready + ".tmp", ready)
    print(f"forward: 127.0.0.1:{port} -> {netns} 127.0.0.1:{port}", flush=True)
    while True:
        conn, _addr = listener.accept()
        threading.Thread(target=serve, args=(conn, port), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
